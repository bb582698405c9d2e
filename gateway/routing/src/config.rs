//! `routing.toml`: skill groups, agents, rules, categories and the routing policy.
//!
//! The doc comments on these structs are the reference for every key; `config/routing.toml`
//! repeats them as comments. [`parse`] reads the file's text (the caller reads the file) and
//! [`RoutingConfig::validate`] reports **every** problem with its dotted key, e.g.
//! `rule[2].target[0].group` or `agent[4].groups.售后`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use huiliu_domain::ConfigError;

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

/// Parses and validates the text of `routing.toml`, reporting every problem. `file` names
/// the file in the errors. Each section and each `[[…]]` entry is read on its own, so one
/// bad entry does not hide the problems of the others; the cross-checks of
/// [`RoutingConfig::validate`] (unknown groups, duplicate ids, …) run once every entry reads.
pub fn parse(text: &str, file: &str) -> Result<RoutingConfig, Vec<ConfigError>> {
    let err = |key: String, message: String| ConfigError { file: file.into(), key, message };
    let table = match config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize::<config::Map<String, config::Value>>())
    {
        Ok(t) => t,
        Err(e) => return Err(vec![err(String::new(), describe(&e).1)]),
    };
    let mut errors = Vec::new();
    let mut cfg = RoutingConfig::default_empty();
    let mut keys: Vec<&String> = table.keys().collect();
    keys.sort();
    for key in keys {
        let value = table.get(key).cloned().unwrap_or_else(|| config::Value::from(""));
        match key.as_str() {
            "routing" => {
                if let Some(v) = section(value, key, &mut errors, file) {
                    cfg.routing = v;
                }
            }
            "messages" => {
                if let Some(v) = section(value, key, &mut errors, file) {
                    cfg.messages = v;
                }
            }
            "category" => cfg.categories = entries(value, key, &mut errors, file),
            "group" => cfg.groups = entries(value, key, &mut errors, file),
            "agent" => cfg.agents = entries(value, key, &mut errors, file),
            "rule" => cfg.rules = entries(value, key, &mut errors, file),
            other => errors.push(err(
                other.into(),
                "unknown section; expected routing, messages, category, group, agent or rule".into(),
            )),
        }
    }
    if !errors.is_empty() {
        // Cross-checks on a partly read file would report phantoms (a group whose entry failed
        // to read would look "unknown" everywhere), so they wait until every entry reads.
        return Err(errors);
    }
    let problems = cfg.validate(file);
    if problems.is_empty() { Ok(cfg) } else { Err(problems) }
}

/// (key, message) of a `config` crate error, without its "for key … in …" decoration.
fn describe(e: &config::ConfigError) -> (Option<String>, String) {
    match e {
        config::ConfigError::Type { unexpected, expected, key, .. } => {
            (key.clone(), format!("invalid type: {unexpected}, expected {expected}"))
        }
        config::ConfigError::At { error, key, .. } => {
            let (inner_key, message) = describe(error);
            (key.clone().or(inner_key), message)
        }
        config::ConfigError::NotFound(key) => (None, format!("missing field `{key}`")),
        config::ConfigError::Message(m) => (None, m.clone()),
        other => (None, other.to_string()),
    }
}

fn located(prefix: &str, e: &config::ConfigError) -> (String, String) {
    let (key, message) = describe(e);
    // The `config` crate writes `target[0]wait_s`; we write `target[0].wait_s`.
    let key = key.map(|k| {
        let mut out = String::with_capacity(k.len() + 4);
        let mut prev = ' ';
        for c in k.chars() {
            if prev == ']' && c != '[' && c != '.' {
                out.push('.');
            }
            out.push(c);
            prev = c;
        }
        out
    });
    let key = match key {
        Some(k) if !k.is_empty() => {
            if k.starts_with('[') {
                format!("{prefix}{k}")
            } else {
                format!("{prefix}.{k}")
            }
        }
        _ => prefix.to_owned(),
    };
    (key, message)
}

fn section<T: serde::de::DeserializeOwned>(
    value: config::Value,
    key: &str,
    errors: &mut Vec<ConfigError>,
    file: &str,
) -> Option<T> {
    match value.try_deserialize::<T>() {
        Ok(v) => Some(v),
        Err(e) => {
            let (key, message) = located(key, &e);
            errors.push(ConfigError { file: file.into(), key, message });
            None
        }
    }
}

fn entries<T: serde::de::DeserializeOwned>(
    value: config::Value,
    key: &str,
    errors: &mut Vec<ConfigError>,
    file: &str,
) -> Vec<T> {
    let items = match value.into_array() {
        Ok(items) => items,
        Err(_) => {
            errors.push(ConfigError {
                file: file.into(),
                key: key.into(),
                message: format!("must be an array of tables ([[{key}]])"),
            });
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        if let Some(v) = section(item, &format!("{key}[{i}]"), errors, file) {
            out.push(v);
        }
    }
    out
}

/// Letters (any script), digits, `-`, `_`, `.`; 1 to 64 characters.
pub(crate) fn is_id(s: &str) -> bool {
    let n = s.chars().count();
    (1..=64).contains(&n) && s.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Parses `"HH:MM-HH:MM"` into minutes of the day `[start, end)`; `end` may be 24:00.
pub(crate) fn parse_range(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("`{s}` is not a range like \"09:00-18:00\"");
    let (a, b) = s.trim().split_once('-').ok_or_else(bad)?;
    let minutes = |t: &str| -> Option<u16> {
        let (h, m) = t.trim().split_once(':')?;
        if h.len() != 2 || m.len() != 2 {
            return None;
        }
        let h: u16 = h.parse().ok()?;
        let m: u16 = m.parse().ok()?;
        (h <= 24 && m <= 59 && (h < 24 || m == 0)).then_some(h * 60 + m)
    };
    let (start, end) = (minutes(a).ok_or_else(bad)?, minutes(b).ok_or_else(bad)?);
    if start >= 24 * 60 {
        return Err(format!("`{s}` starts at 24:00; write it as 00:00 of the next day"));
    }
    if start >= end {
        return Err(format!(
            "`{s}` ends before it starts; a range over midnight is two ranges: \"22:00-24:00\" and next day \"00:00-02:00\""
        ));
    }
    Ok((start, end))
}

/// Parses `YYYY-MM-DD` into days since 1970-01-01.
pub(crate) fn parse_date(s: &str) -> Option<i64> {
    let s = s.trim();
    // Strict shape first: chrono accepts wider years that we have no use for.
    if s.len() != 10 || s.as_bytes()[4] != b'-' || s.as_bytes()[7] != b'-' {
        return None;
    }
    let date = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
    Some(date.signed_duration_since(epoch).num_days())
}

/// The `{name}` variables in a template, or an error text for unbalanced braces.
pub(crate) fn template_vars(t: &str) -> Result<Vec<&str>, String> {
    let mut vars = Vec::new();
    let mut rest = t;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err("has a `}` without `{`".into());
        }
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or_else(|| "has a `{` without `}`".to_string())?;
        vars.push(&after[..close]);
        rest = &after[close + 1..];
    }
    Ok(vars)
}

/// Upper bounds that keep every millisecond computation far from overflow.
const MAX_WAIT_S: u64 = 86_400;
const MAX_TTL_S: u64 = 365 * 86_400;

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

    /// Every problem in the configuration, each with its dotted key.
    pub fn validate(&self, file: &str) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        let mut err = |key: String, message: String| errors.push(ConfigError { file: file.into(), key, message });
        let r = &self.routing;

        // Categories.
        let categories = self.effective_categories();
        let mut category_ids = BTreeSet::new();
        for (i, c) in self.categories.iter().enumerate() {
            if !is_id(&c.id) {
                err(format!("category[{i}].id"), format!("`{}` must be letters, digits, `-`, `_` or `.`", c.id));
            }
            if !category_ids.insert(c.id.as_str()) {
                err(format!("category[{i}].id"), format!("duplicate category id `{}`", c.id));
            }
            for (k, w) in c.keywords.iter().enumerate() {
                if w.trim().is_empty() {
                    err(format!("category[{i}].keywords[{k}]"), "empty keyword would match every text".into());
                }
            }
        }
        let has_category = |id: &str| categories.iter().any(|c| c.id == id);
        if !has_category(&r.default_category) {
            err("routing.default_category".into(), format!("unknown category `{}`", r.default_category));
        }
        if !r.open_refund_category.is_empty() && !has_category(&r.open_refund_category) {
            err("routing.open_refund_category".into(), format!("unknown category `{}`", r.open_refund_category));
        }

        // Settings.
        if !(r.aging_rate.is_finite() && r.aging_rate > 0.0 && r.aging_rate <= 1000.0) {
            err(
                "routing.aging_rate".into(),
                format!("{} must be above 0 (so nobody starves) and at most 1000", r.aging_rate),
            );
        }
        if r.sticky_ttl_s > MAX_TTL_S {
            err("routing.sticky_ttl_s".into(), format!("at most {MAX_TTL_S} (one year)"));
        }
        for (key, v) in [
            ("sticky_wait_s", r.sticky_wait_s),
            ("transfer_wait_s", r.transfer_wait_s),
            ("default_handle_time_s", r.default_handle_time_s),
        ] {
            if v > MAX_WAIT_S {
                err(format!("routing.{key}"), format!("{v} is more than {MAX_WAIT_S} (one day)"));
            }
        }
        if r.first_response_limit_s == 0 || r.first_response_limit_s > 3600 {
            err("routing.first_response_limit_s".into(), "must be 1 to 3600".into());
        }
        if r.default_handle_time_s == 0 {
            err("routing.default_handle_time_s".into(), "must be at least 1".into());
        }
        if r.decision_candidates > 1000 {
            err("routing.decision_candidates".into(), "at most 1000".into());
        }
        check_messages(&self.messages, "messages", &mut err);

        // Groups.
        if self.groups.is_empty() {
            err("group".into(), "at least one [[group]] is needed".into());
        }
        let mut group_ids = BTreeSet::new();
        for (i, g) in self.groups.iter().enumerate() {
            if !is_id(&g.id) {
                err(format!("group[{i}].id"), format!("`{}` must be letters, digits, `-`, `_` or `.`", g.id));
            }
            if !group_ids.insert(g.id.as_str()) {
                err(format!("group[{i}].id"), format!("duplicate group id `{}`", g.id));
            }
        }
        let has_group = |id: &str| self.groups.iter().any(|g| g.id == id);
        for (i, g) in self.groups.iter().enumerate() {
            if let Some(duty) = &g.off_hours_group {
                if duty == &g.id {
                    err(format!("group[{i}].off_hours_group"), "cannot be the group itself".into());
                } else if !has_group(duty) {
                    err(format!("group[{i}].off_hours_group"), format!("unknown group `{duty}`"));
                }
            }
            if let Some(h) = &g.hours {
                check_hours(h, &format!("group[{i}].hours"), &mut err);
            }
            let m = &g.messages;
            let overrides = Messages {
                welcome: m.welcome.clone().unwrap_or_default(),
                queue_position: m.queue_position.clone().unwrap_or_default(),
                off_hours: m.off_hours.clone().unwrap_or_default(),
                overflow: m.overflow.clone().unwrap_or_default(),
            };
            check_messages(&overrides, &format!("group[{i}].messages"), &mut err);
            if !self.agents.iter().any(|a| a.groups.contains_key(&g.id)) {
                err(
                    format!("group[{i}]"),
                    format!("no agent works in group `{}`; its conversations would wait forever", g.id),
                );
            }
        }
        if let Some(f) = &r.fallback_group {
            if !has_group(f) {
                err("routing.fallback_group".into(), format!("unknown group `{f}`"));
            }
        } else if !self.rules.iter().any(|rule| rule.when.is_catch_all()) {
            err(
                "routing.fallback_group".into(),
                "no rule matches every conversation: set a fallback group or end with a rule without [rule.match]"
                    .into(),
            );
        }

        // Agents.
        let mut agent_ids = BTreeSet::new();
        for (i, a) in self.agents.iter().enumerate() {
            let at = |k: &str| format!("agent[{i}].{k}");
            if !is_id(&a.id) {
                err(at("id"), format!("`{}` must be letters, digits, `-`, `_` or `.`", a.id));
            }
            if !agent_ids.insert(a.id.as_str()) {
                err(at("id"), format!("duplicate agent id `{}`", a.id));
            }
            if a.groups.is_empty() {
                err(at("groups"), "an agent must work in at least one group".into());
            }
            for (g, p) in &a.groups {
                if !has_group(g) {
                    err(at(&format!("groups.{g}")), format!("unknown group `{g}`"));
                }
                if !(1..=5).contains(p) {
                    err(at(&format!("groups.{g}")), format!("proficiency {p} is out of 1–5"));
                }
            }
            if a.max_sessions == 0 || a.max_sessions > 1000 {
                err(at("max_sessions"), format!("cap {} must be 1 to 1000", a.max_sessions));
            }
            if let Some(shops) = &a.shops {
                if shops.is_empty() {
                    err(at("shops"), "empty: leave the key out to serve every shop".into());
                }
                for (k, s) in shops.iter().enumerate() {
                    if s.trim().is_empty() {
                        err(at(&format!("shops[{k}]")), "empty shop id".into());
                    }
                }
            }
        }

        // Rules.
        let mut seen_catch_all: Option<usize> = None;
        for (i, rule) in self.rules.iter().enumerate() {
            let at = |k: &str| format!("rule[{i}].{k}");
            if rule.name.trim().is_empty() {
                err(at("name"), "a rule needs a name (it appears in every decision)".into());
            }
            if let Some(c) = seen_catch_all {
                err(format!("rule[{i}]"), format!("unreachable: rule[{c}] before it matches every conversation"));
            }
            if rule.when.is_catch_all() && seen_catch_all.is_none() {
                seen_catch_all = Some(i);
            }
            if rule.targets.is_empty() {
                err(at("target"), "a rule needs at least one [[rule.target]]".into());
            }
            if !(-1000..=1000).contains(&rule.priority) {
                err(at("priority"), format!("{} is out of -1000–1000", rule.priority));
            }
            let mut seen = BTreeSet::new();
            for (t, target) in rule.targets.iter().enumerate() {
                let tk = |k: &str| format!("rule[{i}].target[{t}].{k}");
                if !has_group(&target.group) {
                    err(tk("group"), format!("unknown group `{}`", target.group));
                } else if !seen.insert((target.group.as_str(), target.min_proficiency)) {
                    err(tk("group"), format!("group `{}` is already a target of this rule", target.group));
                }
                if !(1..=5).contains(&target.min_proficiency) {
                    err(tk("min_proficiency"), format!("{} is out of 1–5", target.min_proficiency));
                }
                if target.wait_s > MAX_WAIT_S {
                    err(tk("wait_s"), format!("{} is more than {MAX_WAIT_S} (one day)", target.wait_s));
                }
            }
            for (k, c) in rule.when.category.iter().enumerate() {
                if !has_category(c) {
                    err(at(&format!("match.category[{k}]")), format!("unknown category `{c}`"));
                }
            }
            for (list, name) in
                [(&rule.when.platform, "platform"), (&rule.when.shop, "shop"), (&rule.when.tags, "tags")]
            {
                for (k, v) in list.iter().enumerate() {
                    if v.trim().is_empty() {
                        err(at(&format!("match.{name}[{k}]")), "empty value".into());
                    }
                }
            }
        }
        errors
    }

    /// Problems with shop ids that are not among `known` (the shop ids of shops.toml), for
    /// `huiliu check`: routing.toml alone cannot know them.
    pub fn check_shops(&self, known: &[&str], file: &str) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        let mut check = |key: String, shop: &str| {
            if !known.contains(&shop) {
                errors.push(ConfigError { file: file.into(), key, message: format!("unknown shop `{shop}`") });
            }
        };
        for (i, a) in self.agents.iter().enumerate() {
            for (k, s) in a.shops.iter().flatten().enumerate() {
                check(format!("agent[{i}].shops[{k}]"), s);
            }
        }
        for (i, r) in self.rules.iter().enumerate() {
            for (k, s) in r.when.shop.iter().enumerate() {
                check(format!("rule[{i}].match.shop[{k}]"), s);
            }
        }
        errors
    }
}

fn check_messages(m: &Messages, prefix: &str, err: &mut impl FnMut(String, String)) {
    let list: [(&str, &str, &[&str]); 4] = [
        ("welcome", &m.welcome, &["agent", "group"]),
        ("queue_position", &m.queue_position, &["position", "wait_minutes", "group"]),
        ("off_hours", &m.off_hours, &["group", "open_time"]),
        ("overflow", &m.overflow, &["group"]),
    ];
    for (key, text, allowed) in list {
        match template_vars(text) {
            Err(e) => err(format!("{prefix}.{key}"), e),
            Ok(vars) => {
                for v in vars {
                    if !allowed.contains(&v) {
                        err(
                            format!("{prefix}.{key}"),
                            format!("unknown variable `{{{v}}}`; this message knows {}", braces(allowed)),
                        );
                    }
                }
            }
        }
    }
}

fn braces(names: &[&str]) -> String {
    names.iter().map(|n| format!("{{{n}}}")).collect::<Vec<_>>().join(" ")
}

fn check_hours(h: &HoursConfig, prefix: &str, err: &mut impl FnMut(String, String)) {
    let lists: [(&str, &Option<Vec<String>>); 9] = [
        ("mon", &h.mon),
        ("tue", &h.tue),
        ("wed", &h.wed),
        ("thu", &h.thu),
        ("fri", &h.fri),
        ("sat", &h.sat),
        ("sun", &h.sun),
        ("daily", &h.daily),
        ("extra_workday_hours", &h.extra_workday_hours),
    ];
    for (name, list) in lists {
        let mut ranges: Vec<(u16, u16, usize)> = Vec::new();
        for (k, s) in list.iter().flatten().enumerate() {
            match parse_range(s) {
                Ok((a, b)) => ranges.push((a, b, k)),
                Err(e) => err(format!("{prefix}.{name}[{k}]"), e),
            }
        }
        ranges.sort_unstable();
        for w in ranges.windows(2) {
            if w[1].0 < w[0].1 {
                err(format!("{prefix}.{name}[{}]", w[1].2), "overlaps another range of the same day".into());
            }
        }
    }
    let mut holidays = BTreeSet::new();
    for (k, d) in h.holidays.iter().enumerate() {
        match parse_date(d) {
            None => err(format!("{prefix}.holidays[{k}]"), format!("`{d}` is not a date like 2025-10-01")),
            Some(day) => {
                if !holidays.insert(day) {
                    err(format!("{prefix}.holidays[{k}]"), format!("`{d}` is listed twice"));
                }
            }
        }
    }
    for (k, d) in h.extra_workdays.iter().enumerate() {
        match parse_date(d) {
            None => err(format!("{prefix}.extra_workdays[{k}]"), format!("`{d}` is not a date like 2025-09-28")),
            Some(day) if holidays.contains(&day) => {
                err(format!("{prefix}.extra_workdays[{k}]"), format!("`{d}` is also a holiday"))
            }
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[routing]
fallback_group = "presales"

[[group]]
id = "presales"
name = "售前"

[[group]]
id = "aftersales"
[group.hours]
daily = ["09:00-12:00", "13:00-18:00"]
sun = []
holidays = [2025-10-01, "2025-10-02"]
extra_workdays = ["2025-09-28"]

[[agent]]
id = "a1"
groups = { presales = 5, aftersales = 3 }

[[rule]]
name = "refunds"
[rule.match]
category = ["aftersales"]
[[rule.target]]
group = "aftersales"
wait_s = 60
[[rule.target]]
group = "presales"
"#;

    #[test]
    fn parses_a_good_file() {
        let cfg = parse(GOOD, ROUTING_FILE).unwrap();
        assert_eq!(cfg.groups.len(), 2);
        assert_eq!(cfg.agents[0].groups["aftersales"], 3);
        assert_eq!(cfg.agents[0].max_sessions, 5);
        assert_eq!(cfg.rules[0].targets[1].min_proficiency, 1);
        let hours = cfg.groups[1].hours.as_ref().unwrap();
        assert_eq!(hours.holidays, vec!["2025-10-01", "2025-10-02"]);
        assert_eq!(hours.day(6), Some(&Vec::new()));
        assert_eq!(hours.day(0).map(Vec::len), Some(2));
    }

    #[test]
    fn every_semantic_error_is_reported_with_its_key() {
        let text = r#"
[routing]
aging_rate = 0.0
default_category = "nope"
[messages]
welcome = "hi {buyer}"

[[group]]
id = "presales"
off_hours_group = "presales"
[group.hours]
mon = ["18:00-09:00", "9-10", "08:00-12:00", "11:00-13:00"]
holidays = ["2025-13-01"]

[[group]]
id = "presales"

[[group]]
id = "empty"

[[agent]]
id = "a1"
max_sessions = 0
groups = { presales = 7, ghost = 1 }

[[agent]]
id = "a1"
groups = {}
shops = []

[[rule]]
name = "x"
[[rule.target]]
group = "ghost"
min_proficiency = 0
[[rule.target]]
group = "presales"
wait_s = 999999

[[rule]]
name = ""
[rule.match]
category = ["weird"]
"#;
        let errors = parse(text, ROUTING_FILE).unwrap_err();
        let keys: Vec<String> = errors.iter().map(|e| format!("{} — {}", e.key, e.message)).collect();
        for key in [
            "routing.aging_rate",
            "routing.default_category",
            "messages.welcome",
            "group[0].off_hours_group",
            "group[0].hours.mon[0]",
            "group[0].hours.mon[1]",
            "group[0].hours.mon[3]",
            "group[0].hours.holidays[0]",
            "group[1].id",
            "group[2]",
            "agent[0].max_sessions",
            "agent[0].groups.presales",
            "agent[0].groups.ghost",
            "agent[1].id",
            "agent[1].groups",
            "agent[1].shops",
            "rule[0].target[0].group",
            "rule[0].target[0].min_proficiency",
            "rule[0].target[1].wait_s",
            "rule[1]",
            "rule[1].name",
            "rule[1].target",
            "rule[1].match.category[0]",
        ] {
            assert!(errors.iter().any(|e| e.key == key), "missing {key}:\n{keys:#?}");
        }
        assert_eq!(errors.len(), 23, "{keys:#?}");
        assert!(errors.iter().all(|e| e.file == ROUTING_FILE));
    }

    #[test]
    fn type_errors_in_several_entries_are_all_reported() {
        let text = r#"
[routing]
policy = "fastest"
[[group]]
id = "g"
colour = "red"
[[agent]]
id = "a"
groups = { g = 1 }
max_sessions = "many"
[[rule]]
name = "r"
[[rule.target]]
group = "g"
wait_s = -5
[bogus]
"#;
        let errors = parse(text, ROUTING_FILE).unwrap_err();
        let keys: Vec<String> = errors.iter().map(|e| format!("{} — {}", e.key, e.message)).collect();
        for key in ["routing.policy", "group[0]", "agent[0].max_sessions", "rule[0].target[0].wait_s", "bogus"] {
            assert!(errors.iter().any(|e| e.key == key), "missing {key}:\n{keys:#?}");
        }
        assert!(keys.iter().any(|k| k.contains("colour")), "{keys:#?}");
    }

    #[test]
    fn syntax_error_is_one_error() {
        let errors = parse("[[group]\nid=", ROUTING_FILE).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].key.is_empty());
    }

    #[test]
    fn missing_fallback_without_catch_all_is_an_error() {
        let mut cfg = parse(GOOD, ROUTING_FILE).unwrap();
        cfg.routing.fallback_group = None;
        let errors = cfg.validate(ROUTING_FILE);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].key, "routing.fallback_group");
    }

    #[test]
    fn shop_ids_are_checked_against_known_shops() {
        let mut cfg = parse(GOOD, ROUTING_FILE).unwrap();
        cfg.agents[0].shops = Some(vec!["tb-1".into(), "dy-9".into()]);
        let errors = cfg.check_shops(&["tb-1"], ROUTING_FILE);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].key, "agent[0].shops[1]");
    }

    #[test]
    fn ranges_and_dates() {
        assert_eq!(parse_range("09:00-18:00"), Ok((540, 1080)));
        assert_eq!(parse_range("22:00-24:00"), Ok((1320, 1440)));
        for bad in ["24:00-24:00", "18:00-09:00", "9:00-10:00", "09:60-10:00", "24:30-25:00", "x", "", "09:00"] {
            assert!(parse_range(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_date("1970-01-02"), Some(1));
        assert_eq!(parse_date("2025-02-29"), None);
        assert_eq!(parse_date("+12025-01-01"), None);
        assert_eq!(template_vars("a{b}c{d}"), Ok(vec!["b", "d"]));
        assert!(template_vars("a{b").is_err());
        assert!(template_vars("a}b").is_err());
    }
}
