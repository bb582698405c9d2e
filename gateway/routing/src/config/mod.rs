//! `routing.toml`: skill groups, agents, rules, categories and the routing policy.
//!
//! The doc comments on these structs are the reference for every key; `config/routing.toml`
//! repeats them as comments. [`parse()`] reads the file's text (the caller reads the file) and
//! [`RoutingConfig::validate`] reports **every** problem with its dotted key, e.g.
//! `rule[2].target[0].group` or `agent[4].groups.售后`.
//!
//! Files: this one holds the structs and their defaults; `parse` reads the text section by
//! section and locates serde errors, and parses the values (time ranges, dates, message
//! templates); `validate` checks one section at a time.

mod parse;
#[cfg(test)]
mod tests;
mod validate;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use parse::parse;
pub(crate) use parse::{parse_date, parse_range};

/// The routing file's name in the config directory.
pub const ROUTING_FILE: &str = "routing.toml";

/// The whole routing configuration: one `routing.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    /// `[routing]`: global policy and timings.
    #[serde(default)]
    pub routing: RoutingSettings,
    /// `[messages]`: the texts sent to buyers, unless a group overrides them.
    #[serde(default)]
    pub messages: Messages,
    /// `[[category]]`: message categories, checked in order; the first whose keyword appears in
    /// the buyer's text wins. Absent: the built-in four (complaint, aftersales, order, presales).
    /// Present: the list replaces the built-in one entirely.
    #[serde(default, rename = "category")]
    pub categories: Vec<CategoryConfig>,
    /// `[[group]]`: skill groups (技能组). At least one.
    #[serde(default, rename = "group")]
    pub groups: Vec<GroupConfig>,
    /// `[[agent]]`: the human agents (客服) and the groups they work in.
    #[serde(default, rename = "agent")]
    pub agents: Vec<AgentConfig>,
    /// `[[rule]]`: routing rules, tried in order; the first that matches decides.
    #[serde(default, rename = "rule")]
    pub rules: Vec<RuleConfig>,
}

/// How a group picks among the agents who have room.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// The lowest load (active sessions ÷ cap) first; ties go to the agent idle the longest
    /// (idle since their last assignment, or since coming online if later).
    #[default]
    LeastLoad,
    /// The agent who received a conversation least recently first (a rotation).
    RoundRobin,
    /// The highest proficiency in the group first; ties by least load, then idle time.
    ProficiencyFirst,
}

/// What happens to an agent's sessions when they go away or offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnLeave {
    /// The sessions go back to the queue (keeping their place by original arrival time) and
    /// are routed to someone else.
    Requeue,
    /// The sessions stay with the agent; the first-response limit still applies to unanswered ones.
    Keep,
}

/// An agent's permission level (飞鸽's 普通客服 / 组长 / 管理员): the API's roles.
pub use huiliu_domain::Role;

/// `[routing]`: global routing policy and timings.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingSettings {
    /// Default assignment policy for groups that set none: `least_load` (default),
    /// `round_robin` or `proficiency_first`.
    pub policy: Policy,
    /// The group for conversations no rule matches. Required unless some rule has no
    /// conditions (a catch-all).
    pub fallback_group: Option<String>,
    /// The category when no keyword or fact decides. Must be a category id. Default `presales`.
    pub default_category: String,
    /// The category an open refund puts a conversation in (unless a category listed before it
    /// matches, e.g. a complaint). Empty: refunds do not decide. Default `aftersales`.
    pub open_refund_category: String,
    /// How long a returning buyer goes back to their last agent, counted from that agent's
    /// last contact with them, in seconds; only when that agent is in the matched rule's first
    /// target group. 0 disables stickiness. Default 86400 (one day).
    pub sticky_ttl_s: u64,
    /// How long a returning buyer waits for their last agent when that agent is online but
    /// busy or at their cap, before the normal path, in seconds. Default 20.
    pub sticky_wait_s: u64,
    /// An assigned agent must send a first reply within this many seconds, or the session is
    /// given to another agent with room (飞鸽 target: 30 s). Default 30.
    pub first_response_limit_s: u64,
    /// Aging: priority points a waiting conversation gains per minute of waiting. A rule's
    /// `priority = 5` is therefore worth 5 minutes of waiting at rate 1.0. Must be > 0, so
    /// nobody starves. Default 1.0.
    pub aging_rate: f64,
    /// What an agent's sessions do when the agent goes `away` (小休): `keep` (default) or `requeue`.
    pub on_away: OnLeave,
    /// What an agent's sessions do when the agent goes `offline`: `requeue` (default) or `keep`.
    pub on_offline: OnLeave,
    /// A transfer to a named agent who is busy or at their cap waits this many seconds for
    /// them, then goes to the session's group. Default 60.
    pub transfer_wait_s: u64,
    /// Handle time assumed for queue estimates before any conversation has closed, in seconds.
    /// Estimates then follow recent handle times per group. Default 300.
    pub default_handle_time_s: u64,
    /// How many candidate agents a live decision lists (the dry run lists all). Default 5.
    pub decision_candidates: usize,
}

impl Default for RoutingSettings {
    fn default() -> Self {
        RoutingSettings {
            policy: Policy::LeastLoad,
            fallback_group: None,
            default_category: "presales".into(),
            open_refund_category: "aftersales".into(),
            sticky_ttl_s: 86_400,
            sticky_wait_s: 20,
            first_response_limit_s: 30,
            aging_rate: 1.0,
            on_away: OnLeave::Keep,
            on_offline: OnLeave::Requeue,
            transfer_wait_s: 60,
            default_handle_time_s: 300,
            decision_candidates: 5,
        }
    }
}

/// Texts sent to buyers. Variables in braces are filled in; an unknown variable is a config
/// error. An empty text sends nothing.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Messages {
    /// Sent when a new conversation is assigned at once. Variables: `{agent}` (agent name),
    /// `{group}` (group name).
    pub welcome: String,
    /// Sent when a conversation waits in a queue. Variables: `{position}` (1 = next),
    /// `{wait_minutes}` (estimate, at least 1), `{group}`.
    pub queue_position: String,
    /// Sent when a conversation arrives outside the group's hours. Variables: `{group}`,
    /// `{open_time}` (next opening, Beijing time, e.g. `明天 09:00`).
    pub off_hours: String,
    /// Sent when every target's queue is full. The conversation is still kept and served in
    /// turn; the buyer is just not promised a position. Variables: `{group}`.
    pub overflow: String,
}

impl Default for Messages {
    fn default() -> Self {
        Messages {
            welcome: "您好，我是{agent}，很高兴为您服务～".into(),
            queue_position: "当前咨询人数较多，您前面还有{position}位，预计等待约{wait_minutes}分钟，请稍候。".into(),
            off_hours: "您好，现在是非工作时间，{group}将于{open_time}上线。您可以先留言，客服上线后会第一时间回复您。"
                .into(),
            overflow: "非常抱歉，当前咨询量较大，您的消息已记录，客服会按顺序尽快回复您。".into(),
        }
    }
}

/// Per-group overrides of [`Messages`]; an absent key uses `[messages]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GroupMessages {
    pub welcome: Option<String>,
    pub queue_position: Option<String>,
    pub off_hours: Option<String>,
    pub overflow: Option<String>,
}

/// One `[[category]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryConfig {
    /// Id used by rules (`match.category`): letters, digits, `-`, `_`, `.`.
    pub id: String,
    /// Display name. Defaults to the id.
    #[serde(default)]
    pub name: Option<String>,
    /// Words that put a buyer's text in this category, compared after Unicode NFKC folding
    /// and lowercasing (so `１２３１５` matches `12315`).
    #[serde(default)]
    pub keywords: Vec<String>,
}

/// The built-in categories (used when the file has no `[[category]]`), from the seeds'
/// training material: complaints first so a complaint word wins over everything.
pub fn default_categories() -> Vec<CategoryConfig> {
    let c = |id: &str, name: &str, words: &[&str]| CategoryConfig {
        id: id.into(),
        name: Some(name.into()),
        keywords: words.iter().map(|w| (*w).to_owned()).collect(),
    };
    vec![
        c("complaint", "投诉", &["投诉", "12315", "差评", "骗子", "举报", "工商"]),
        c("aftersales", "售后", &["退款", "退货", "换货", "售后", "坏了", "破损", "质量问题", "维修"]),
        c("order", "售中", &["物流", "发货", "快递", "到哪", "单号", "改地址"]),
        c("presales", "售前", &[]),
    ]
}

/// One `[[group]]`: a skill group (技能组). Its members are the agents that list it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// Id used by rules and agents: letters (Chinese included), digits, `-`, `_`, `.`.
    pub id: String,
    /// Display name (shown to buyers as `{group}`). Defaults to the id.
    #[serde(default)]
    pub name: Option<String>,
    /// Assignment policy; default `routing.policy`.
    #[serde(default)]
    pub policy: Option<Policy>,
    /// How many conversations may wait in this group with a promised position. Absent:
    /// unlimited. When full, a conversation overflows to the rule's next target at once, or,
    /// at the last target, gets the `overflow` message and is kept, served in turn.
    /// 0: never wait here (useful for a 专属客服 group that overflows at once).
    #[serde(default)]
    pub queue_limit: Option<u32>,
    /// Business hours (Beijing time). Absent: always open.
    #[serde(default)]
    pub hours: Option<HoursConfig>,
    /// An on-duty group that takes this group's conversations while this one is closed (and
    /// the on-duty group is open). Absent: conversations wait for opening time.
    #[serde(default)]
    pub off_hours_group: Option<String>,
    /// Overrides of `[messages]` for this group.
    #[serde(default)]
    pub messages: GroupMessages,
}

/// `[group.hours]`: a weekly calendar in Beijing time (UTC+8, no daylight saving).
///
/// Each day holds ranges `"HH:MM-HH:MM"` (end may be `24:00`; a range over midnight is written
/// as two: `"22:00-24:00"` on one day, `"00:00-02:00"` on the next). A day that is not listed
/// uses `daily`; a day with `[]` is closed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HoursConfig {
    pub mon: Option<Vec<String>>,
    pub tue: Option<Vec<String>>,
    pub wed: Option<Vec<String>>,
    pub thu: Option<Vec<String>>,
    pub fri: Option<Vec<String>>,
    pub sat: Option<Vec<String>>,
    pub sun: Option<Vec<String>>,
    /// Hours for every day not listed above. Absent: unlisted days are closed.
    pub daily: Option<Vec<String>>,
    /// Dates (`2025-10-01`) closed all day (法定节假日).
    pub holidays: Vec<String>,
    /// Dates that are working days although their weekday is not (调休), with
    /// `extra_workday_hours`.
    pub extra_workdays: Vec<String>,
    /// Hours on `extra_workdays`. Absent: Monday's hours.
    pub extra_workday_hours: Option<Vec<String>>,
}

/// One `[[agent]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The agent's login id; unique.
    pub id: String,
    /// Display name (shown to buyers as `{agent}`, e.g. 小美). Defaults to the id.
    #[serde(default)]
    pub name: Option<String>,
    /// The groups the agent works in, with proficiency 1 (learning) to 5 (expert):
    /// `groups = { presales = 5, aftersales = 3 }`.
    pub groups: BTreeMap<String, i64>,
    /// Concurrent-session cap (接待上限): no new conversation is assigned at or above it.
    /// Default 5.
    #[serde(default = "default_cap")]
    pub max_sessions: u32,
    /// The shop ids (from shops.toml) the agent serves. Absent: every shop.
    #[serde(default)]
    pub shops: Option<Vec<String>>,
    /// `agent` (default), `lead` or `admin`.
    #[serde(default)]
    pub role: Role,
    /// The agent's own platform staff account per shop id: `accounts = { tb-1 = "旗舰店:小美",
    /// jd-1 = "xm_waiter" }` (a Taobao sub-account nick, a JD waiter). The agent's replies go
    /// out as this account, and a transfer between two agents who both have one on the shop
    /// also hands the buyer over on the platform (where the platform has a transfer API). A
    /// shop without an entry: the connector's usual account.
    #[serde(default)]
    pub accounts: BTreeMap<String, String>,
}

fn default_cap() -> u32 {
    5
}

/// One `[[rule]]`: conditions and where matching conversations go.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// A name for decisions and logs (e.g. `投诉优先`).
    pub name: String,
    /// `[rule.match]`: every condition given must hold. Absent: the rule matches everything.
    #[serde(default, rename = "match")]
    pub when: MatchConfig,
    /// `[[rule.target]]`: where to go, in order. A conversation waits at a target for its
    /// `wait_s`, then overflows to the next one; it stays at the last target.
    #[serde(default, rename = "target")]
    pub targets: Vec<TargetConfig>,
    /// Queue priority, -1000 to 1000 (default 0). Higher is served first; one point equals
    /// `1 / routing.aging_rate` minutes of waiting.
    #[serde(default)]
    pub priority: i32,
    /// Whether a returning buyer goes back to their last agent (if that agent is in this
    /// rule's first target group). Default true.
    #[serde(default = "yes")]
    pub sticky: bool,
}

fn yes() -> bool {
    true
}

/// `[rule.match]`. Lists match any of their entries; absent or empty means "any".
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MatchConfig {
    /// Platforms: `taobao`, `douyin`, `jd`.
    pub platform: Vec<String>,
    /// Shop ids from shops.toml.
    pub shop: Vec<String>,
    /// VIP (member) level at least this.
    pub vip_min: Option<u32>,
    /// Shop fan level (抖音 `fans_level`) at least this.
    pub fans_min: Option<u32>,
    /// Message categories (ids of `[[category]]`).
    pub category: Vec<String>,
    /// Customer tags; any one suffices.
    pub tags: Vec<String>,
    /// true: only returning customers (有历史会话); false: only new ones.
    pub returning: Option<bool>,
    /// true: only buyers with an open refund; false: only buyers without.
    pub open_refund: Option<bool>,
}

impl MatchConfig {
    /// Whether the match has no condition at all.
    pub fn is_catch_all(&self) -> bool {
        self.platform.is_empty()
            && self.shop.is_empty()
            && self.vip_min.is_none()
            && self.fans_min.is_none()
            && self.category.is_empty()
            && self.tags.is_empty()
            && self.returning.is_none()
            && self.open_refund.is_none()
    }
}

/// One `[[rule.target]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// The group.
    pub group: String,
    /// Seconds to wait here for an agent before overflowing to the next target (ignored at
    /// the last target). 0: overflow at once when nobody has room. Counted from the group's
    /// opening when it is closed. Default 0.
    #[serde(default)]
    pub wait_s: u64,
    /// Only agents with at least this proficiency in the group (1–5, default 1), as in
    /// Amazon Connect's proficiency steps: e.g. experts for 30 s, then anyone.
    #[serde(default = "one")]
    pub min_proficiency: i64,
}

fn one() -> i64 {
    1
}

impl HoursConfig {
    /// The configured day lists by index (0 = Monday).
    pub(crate) fn day(&self, i: usize) -> Option<&Vec<String>> {
        [&self.mon, &self.tue, &self.wed, &self.thu, &self.fri, &self.sat, &self.sun]
            .get(i)
            .and_then(|d| d.as_ref())
            .or(self.daily.as_ref())
    }
}

impl RoutingConfig {
    /// A configuration with defaults and no groups, agents or rules (not valid by itself).
    pub fn default_empty() -> Self {
        RoutingConfig {
            routing: RoutingSettings::default(),
            messages: Messages::default(),
            categories: Vec::new(),
            groups: Vec::new(),
            agents: Vec::new(),
            rules: Vec::new(),
        }
    }

    /// The categories in effect: the configured list, or the built-in one when none is set.
    pub fn effective_categories(&self) -> Vec<CategoryConfig> {
        if self.categories.is_empty() { default_categories() } else { self.categories.clone() }
    }
}
