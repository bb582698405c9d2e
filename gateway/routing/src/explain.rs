//! Dry runs: "where would this message go, and why" — `huiliu route explain`.
//!
//! The event file is JSON: see [`SampleEvent`]. Nothing is changed anywhere: the run
//! happens on a throw-away router.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};

use super::config::{Policy, RoutingConfig};
use super::engine::{AgentState, Engine, RouterState};
use super::reason::{Lang, Names, Reason};
use super::types::{AgentStatus, Conversation, Decision, Eligibility, Trigger, WaitState};
use huiliu_domain::ConfigError;

/// The event of a dry run: the JSON file of `huiliu route explain --event FILE`.
///
/// ```json
/// {
///   "at": "2025-06-18 10:00:00",
///   "platform": "douyin", "shop": "dy-flagship", "buyer": "buyer-openid",
///   "text": "我要退款，东西坏了",
///   "vip_level": 0, "fans_level": 2, "tags": ["老客"],
///   "has_open_refund": false, "returning": true,
///   "last_agent": "a03", "last_agent_at": 1750212000000,
///   "agents_status": { "a01": { "status": "online", "active": 2 },
///                      "a03": { "status": "busy", "active": 5, "max_sessions": 6 } }
/// }
/// ```
///
/// `at` is Beijing time or epoch ms; absent, the state's time (the CLI should fill in the
/// current time). Every field but `platform` and `shop` may be left out. `agents_status`
/// overrides the state's agents (an agent in neither is offline with no sessions); `status`
/// is `online`, `busy`, `away` or `offline`; `idle_since` (epoch ms) is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleEvent {
    #[serde(default)]
    pub at: Option<EventTime>,
    pub platform: String,
    pub shop: String,
    #[serde(default)]
    pub buyer: String,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub vip_level: u32,
    #[serde(default)]
    pub fans_level: u32,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub has_open_refund: bool,
    #[serde(default)]
    pub returning: bool,
    #[serde(default)]
    pub last_agent: Option<String>,
    #[serde(default)]
    pub last_agent_at: Option<i64>,
    #[serde(default)]
    pub agents_status: BTreeMap<String, SampleAgent>,
}

/// An instant in an event file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EventTime {
    Millis(i64),
    /// `yyyy-MM-dd HH:mm:ss`, Beijing time.
    Beijing(String),
}

/// One agent's state in an event file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleAgent {
    pub status: AgentStatus,
    #[serde(default)]
    pub active: u32,
    #[serde(default)]
    pub max_sessions: Option<u32>,
    /// Epoch ms since when the agent is idle (tie-break of least load); default: the event time.
    #[serde(default)]
    pub idle_since: Option<i64>,
}

impl SampleEvent {
    /// Reads an event file's JSON.
    pub fn from_json(text: &str) -> Result<SampleEvent, String> {
        serde_json::from_str(text).map_err(|e| format!("event file: {e}"))
    }

    /// The event's instant, or `fallback`.
    pub fn instant(&self, fallback: i64) -> Result<i64, String> {
        match &self.at {
            None => Ok(fallback),
            Some(EventTime::Millis(ms)) => Ok(*ms),
            Some(EventTime::Beijing(s)) => {
                // The year must have four digits: wider ones overflow the SDK's arithmetic.
                let ok_shape = s.trim().split('-').next().is_some_and(|y| y.len() == 4);
                ok_shape
                    .then(|| huiliu_sdk::time::parse_beijing_datetime(s))
                    .flatten()
                    .ok_or_else(|| format!("`at`: `{s}` is not a time like 2025-06-18 10:00:00"))
            }
        }
    }

    /// The conversation the event describes (session id 0).
    pub fn conversation(&self) -> Conversation {
        Conversation {
            session: 0,
            platform: self.platform.clone(),
            shop: self.shop.clone(),
            buyer: self.buyer.clone(),
            text: self.text.clone(),
            vip_level: self.vip_level,
            fans_level: self.fans_level,
            tags: self.tags.clone(),
            has_open_refund: self.has_open_refund,
            returning: self.returning,
            last_agent: self.last_agent.clone(),
            last_agent_at: self.last_agent_at,
        }
    }
}

/// The decision an event would get under `config`, with `state`'s agents and queues (as
/// overridden by the event's `agents_status`). Every member of the group is listed.
pub fn dry_run(config: &RoutingConfig, state: &RouterState, event: &SampleEvent) -> Result<Decision, DryRunError> {
    let now = event.instant(state.now).map_err(DryRunError::Event)?;
    let mut state = state.clone();
    for (id, a) in &event.agents_status {
        state.agents.insert(
            id.clone(),
            AgentState {
                status: a.status,
                active: a.active,
                max_sessions: a.max_sessions,
                idle_since: a.idle_since.unwrap_or(now),
                last_assigned: state.agents.get(id).map_or(0, |s| s.last_assigned),
            },
        );
    }
    let mut router = Engine::for_dry_run(config.clone(), &state, now).map_err(DryRunError::Config)?;
    Ok(router.dry_decision(&event.conversation(), now))
}

/// Why a dry run could not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DryRunError {
    Config(Vec<ConfigError>),
    Event(String),
}

impl fmt::Display for DryRunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DryRunError::Config(errors) => {
                writeln!(f, "the routing configuration has {} error(s):", errors.len())?;
                for e in errors {
                    writeln!(f, "  {e}")?;
                }
                Ok(())
            }
            DryRunError::Event(e) => f.write_str(e),
        }
    }
}

/// "Where would this message go, and why", for people, in English with ids: see
/// [`explain_in`]. Errors (bad config, bad event time) are explained too.
pub fn explain(config: &RoutingConfig, state: &RouterState, event: &SampleEvent) -> String {
    explain_in(config, state, event, Lang::En, &Names::default())
}

/// "Where would this message go, and why" in `lang`, groups, agents, categories and shops
/// shown by `names` (to which the configuration's own names are added): the text
/// `huiliu route explain --config DIR --event FILE [--lang en]` prints.
pub fn explain_in(
    config: &RoutingConfig,
    state: &RouterState,
    event: &SampleEvent,
    lang: Lang,
    names: &Names,
) -> String {
    let mut names = names.clone();
    names.add_routing(config);
    match dry_run(config, state, event) {
        Ok(d) => render_decision(&d, lang, &names),
        Err(e) => e.to_string(),
    }
}

fn policy_name(p: Policy, lang: Lang) -> &'static str {
    match (p, lang) {
        (Policy::LeastLoad, Lang::En) => "least_load",
        (Policy::RoundRobin, Lang::En) => "round_robin",
        (Policy::ProficiencyFirst, Lang::En) => "proficiency_first",
        (Policy::LeastLoad, Lang::Zh) => "负载最低优先",
        (Policy::RoundRobin, Lang::Zh) => "轮流分配",
        (Policy::ProficiencyFirst, Lang::Zh) => "熟练度优先",
    }
}

fn trigger_name(t: Trigger, lang: Lang) -> String {
    if lang == Lang::Zh {
        return match t {
            Trigger::Arrival => "新会话进线",
            Trigger::Drain => "有空位，排队出队",
            Trigger::Overflow => "等待超时，溢出",
            Trigger::StickyExpired => "等待上次客服超时",
            Trigger::TransferWaitExpired => "等待转接对象超时",
            Trigger::FirstResponseTimeout => "首次回复超时",
            Trigger::AgentLeft => "客服离开",
            Trigger::Transfer => "转接",
            Trigger::Reload => "配置重载",
            Trigger::Restore => "重启恢复",
        }
        .to_owned();
    }
    serde_json::to_value(t).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// A reason of a decision: its code when the decision has one, else the recorded English
/// text (decisions recorded before codes existed).
fn said(code: Option<&Reason>, text: &str, lang: Lang, names: &Names) -> String {
    match code.filter(|r| !r.code.is_empty()) {
        Some(r) => r.render(lang, names),
        None => text.to_owned(),
    }
}

/// The human form of a decision (several lines) in `lang`, ids shown by `names`:
/// what `huiliu route explain` prints.
pub fn render_decision(d: &Decision, lang: Lang, names: &Names) -> String {
    let zh = lang == Lang::Zh;
    let r = &d.reasons;
    let show = |table: &std::collections::BTreeMap<String, String>, id: &str| -> String {
        match table.get(id) {
            Some(n) if zh && n != id => format!("{n}（{id}）"),
            _ => id.to_owned(),
        }
    };
    let mut s = String::new();
    let at = huiliu_sdk::time::beijing_datetime(d.at);
    let trigger = trigger_name(d.trigger, lang);
    if zh {
        let _ = writeln!(s, "会话 {}，北京时间 {at}，{trigger}", d.session);
        let _ = writeln!(
            s,
            "分类：{} — {}",
            show(&names.categories, &d.category),
            said(Some(&r.category), &d.category_why, lang, names)
        );
    } else {
        let _ = writeln!(s, "Session {} at {at} (Beijing), {trigger}", d.session);
        let _ = writeln!(s, "Category: {} — {}", d.category, said(Some(&r.category), &d.category_why, lang, names));
    }
    for (i, skipped) in d.rules_skipped.iter().enumerate() {
        let text = said(r.rules_skipped.get(i), skipped, lang, names);
        let _ = writeln!(s, "  {}{text}", if zh { "未命中 " } else { "not " });
    }
    match (&d.rule, zh) {
        (Some(rule), false) => {
            let _ = writeln!(s, "Rule: #{} {} (priority {})", rule.index, rule.name, d.priority);
        }
        (Some(rule), true) => {
            let _ = writeln!(s, "规则：#{} {}（优先级 {}）", rule.index, rule.name, d.priority);
        }
        (None, false) => {
            let _ = writeln!(s, "Rule: none matched — fallback group");
        }
        (None, true) => {
            let _ = writeln!(s, "规则：均未命中 — 使用兜底技能组");
        }
    }
    if let Some(sticky) = &d.sticky {
        let text = said(r.sticky.as_ref(), sticky, lang, names);
        let _ = writeln!(s, "{}{text}", if zh { "老客：" } else { "Sticky: " });
    }
    for (i, step) in d.path.iter().enumerate() {
        let text = said(r.path.get(i), step, lang, names);
        let _ = writeln!(s, "{}{text}", if zh { "经过：" } else { "Path: " });
    }
    let group = show(&names.groups, &d.group);
    if zh {
        let _ = writeln!(s, "技能组：{group}（第 {} 个目标），分配策略：{}", d.target, policy_name(d.policy, lang));
    } else {
        let _ = writeln!(s, "Group: {group} (target #{}), policy {}", d.target, policy_name(d.policy, lang));
    }
    if d.members > 0 {
        if zh {
            let _ =
                writeln!(s, "组员：{} 人，在线 {} 人，有空位 {} 人", d.members, d.members_online, d.members_with_room);
        } else {
            let _ =
                writeln!(s, "Members: {}, online {}, with room {}", d.members, d.members_online, d.members_with_room);
        }
    }
    for c in &d.candidates {
        let mark = if c.eligibility == Eligibility::Eligible { "+" } else { "-" };
        let prof = match (c.proficiency, zh) {
            (0, _) => String::new(),
            (p, false) => format!(" proficiency {p}"),
            (p, true) => format!(" 熟练度 {p}"),
        };
        let name = if c.name == c.agent { String::new() } else { format!(" {}", c.name) };
        let why = c.eligibility.reason().render(lang, names);
        let sep = if zh { "：" } else { ": " };
        let _ = writeln!(s, "  {mark} {}{name} {}/{}{prof}{sep}{why}", c.agent, c.active, c.cap);
    }
    let why = said(Some(&r.why), &d.why, lang, names);
    let agent = |id: &str| show(&names.agents, id);
    let line = match (&d.chosen, &d.wait, zh) {
        (Some(a), _, false) => format!("Chosen: {} — {why}", agent(a)),
        (Some(a), _, true) => format!("分配给：{} — {why}", agent(a)),
        (None, Some(WaitState::ForAgent { agent: a, until }), false) => {
            format!("Waits for {} until {} — {why}", agent(a), huiliu_sdk::time::beijing_datetime(*until))
        }
        (None, Some(WaitState::ForAgent { agent: a, until }), true) => {
            format!("等待 {} 至 {} — {why}", agent(a), huiliu_sdk::time::beijing_datetime(*until))
        }
        (None, Some(WaitState::OffHours { opens_at }), false) => {
            let when =
                opens_at.map_or("never (no opening within two years)".to_owned(), huiliu_sdk::time::beijing_datetime);
            format!("Waits: off hours, opens {when} — {why}")
        }
        (None, Some(WaitState::OffHours { opens_at }), true) => {
            let when = opens_at.map_or("两年内无接待时间".to_owned(), huiliu_sdk::time::beijing_datetime);
            format!("等待：非接待时间，{when} 开始接待 — {why}")
        }
        (None, Some(WaitState::Overflow), false) => format!("Waits: overflow (queue full) — {why}"),
        (None, Some(WaitState::Overflow), true) => format!("等待：排队已满，保留依次接待 — {why}"),
        (None, _, false) => format!("Waits in the queue — {why}"),
        (None, _, true) => format!("排队等待 — {why}"),
    };
    let _ = writeln!(s, "{line}");
    if let Some(h) = &d.handover {
        let from = h.from_agent.as_deref().map(agent);
        if zh {
            let _ = writeln!(
                s,
                "转接自 {}：问题：{}；已尝试：{}；买家期望：{}",
                from.as_deref().unwrap_or("排队"),
                h.note.problem,
                h.note.tried,
                h.note.expectation
            );
        } else {
            let _ = writeln!(
                s,
                "Handover from {}: problem: {}; tried: {}; buyer expects: {}",
                from.as_deref().unwrap_or("the queue"),
                h.note.problem,
                h.note.tried,
                h.note.expectation
            );
        }
    }
    s
}

/// The English form of a decision (several lines), ids as they are.
impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&render_decision(self, Lang::En, &Names::default()))
    }
}
