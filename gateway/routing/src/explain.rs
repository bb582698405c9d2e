//! Dry runs: "where would this message go, and why" — `huiliu route explain`.
//!
//! The event file is JSON: see [`SampleEvent`]. Nothing is changed anywhere: the run
//! happens on a throw-away router.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};

use super::config::{Policy, RoutingConfig};
use super::engine::{AgentState, Engine, RouterState};
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

/// "Where would this message go, and why", for people: the text `huiliu route explain
/// --config DIR --event FILE` prints. Errors (bad config, bad event time) are explained too.
pub fn explain(config: &RoutingConfig, state: &RouterState, event: &SampleEvent) -> String {
    match dry_run(config, state, event) {
        Ok(d) => d.to_string(),
        Err(e) => e.to_string(),
    }
}

fn policy_name(p: Policy) -> &'static str {
    match p {
        Policy::LeastLoad => "least_load",
        Policy::RoundRobin => "round_robin",
        Policy::ProficiencyFirst => "proficiency_first",
    }
}

fn trigger_name(t: Trigger) -> String {
    serde_json::to_value(t).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// The human form of a decision (several lines).
impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Session {} at {} (Beijing), {}",
            self.session,
            huiliu_sdk::time::beijing_datetime(self.at),
            trigger_name(self.trigger)
        );
        let _ = writeln!(s, "Category: {} — {}", self.category, self.category_why);
        for skipped in &self.rules_skipped {
            let _ = writeln!(s, "  not {skipped}");
        }
        match &self.rule {
            Some(r) => {
                let _ = writeln!(s, "Rule: #{} {} (priority {})", r.index, r.name, self.priority);
            }
            None => {
                let _ = writeln!(s, "Rule: none matched — fallback group");
            }
        }
        if let Some(sticky) = &self.sticky {
            let _ = writeln!(s, "Sticky: {sticky}");
        }
        for step in &self.path {
            let _ = writeln!(s, "Path: {step}");
        }
        let _ = writeln!(s, "Group: {} (target #{}), policy {}", self.group, self.target, policy_name(self.policy));
        if self.members > 0 {
            let _ = writeln!(
                s,
                "Members: {}, online {}, with room {}",
                self.members, self.members_online, self.members_with_room
            );
        }
        for c in &self.candidates {
            let mark = if c.eligibility == Eligibility::Eligible { "+" } else { "-" };
            let prof = if c.proficiency > 0 { format!(" proficiency {}", c.proficiency) } else { String::new() };
            let name = if c.name == c.agent { String::new() } else { format!(" {}", c.name) };
            let _ = writeln!(s, "  {mark} {}{name} {}/{}{prof}: {}", c.agent, c.active, c.cap, c.eligibility);
        }
        match (&self.chosen, &self.wait) {
            (Some(agent), _) => {
                let _ = writeln!(s, "Chosen: {agent} — {}", self.why);
            }
            (None, Some(WaitState::ForAgent { agent, until })) => {
                let _ = writeln!(
                    s,
                    "Waits for {agent} until {} — {}",
                    huiliu_sdk::time::beijing_datetime(*until),
                    self.why
                );
            }
            (None, Some(WaitState::OffHours { opens_at })) => {
                let when = opens_at.map_or("never (no opening within two years)".to_owned(), |o| {
                    huiliu_sdk::time::beijing_datetime(o)
                });
                let _ = writeln!(s, "Waits: off hours, opens {when} — {}", self.why);
            }
            (None, Some(WaitState::Overflow)) => {
                let _ = writeln!(s, "Waits: overflow (queue full) — {}", self.why);
            }
            (None, _) => {
                let _ = writeln!(s, "Waits in the queue — {}", self.why);
            }
        }
        if let Some(h) = &self.handover {
            let _ = writeln!(
                s,
                "Handover from {}: problem: {}; tried: {}; buyer expects: {}",
                h.from_agent.as_deref().unwrap_or("the queue"),
                h.note.problem,
                h.note.tried,
                h.note.expectation
            );
        }
        f.write_str(&s)
    }
}
