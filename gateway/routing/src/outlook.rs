//! What a new conversation from a shop would meet at the desk right now — which group would
//! take it, whether that group is open, and roughly how long the buyer would wait — read from
//! the configuration and a [`RouterState`] snapshot, without touching the engine. The
//! knowledge-base bot uses it to answer first only when the desk is closed or slow
//! (`faq.toml` `bot = "off_hours"` / `"long_wait"`).
//!
//! The estimate is deliberately simple, and says so:
//!
//! - **group**: the first target of the first rule an ordinary buyer of the shop would match —
//!   a rule's platform and shop lists must hold, its category list must be empty or hold
//!   `routing.default_category`, and a rule for particular buyers (VIP or fan level, tags,
//!   returning buyers, open refunds) does not apply; no such rule: `routing.fallback_group`.
//!   A closed group whose `off_hours_group` is open hands over to that one, as routing does.
//! - **wait**: nobody waits when the members' free room (online, serving the shop, under their
//!   cap) exceeds the conversations already queued in the group; otherwise
//!   `(queued + 1) × the group's handle time ÷ the online members' total cap` — the same shape
//!   as the engine's queue estimate. A closed group adds the time until it opens. Nobody online
//!   and nobody on the way: no estimate (`wait_s` = `None`: an unbounded wait).
//! - **handle time** ([`HandleTimes::for_group`]): the mean time from assignment to close of the
//!   group's conversations closed in the last [`LEARN_WINDOW_DAYS`] days, read from the store by
//!   the daemon, once there are at least [`LEARN_MIN_CLOSED`] of them; before that
//!   `routing.default_handle_time_s`. The mean, not the median: a seat frees at the rate of
//!   cap ÷ mean occupation, long conversations included.

use std::collections::BTreeMap;

use crate::calendar::Calendar;
use crate::config::{MatchConfig, RoutingConfig};
use crate::engine::RouterState;
use crate::types::AgentStatus;

/// What a new conversation would meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outlook {
    /// The group that would take it (after an off-hours hand-over to an open on-duty group).
    pub group: String,
    /// Whether that group is open now (Beijing-time business hours).
    pub open: bool,
    /// When it opens, if closed.
    pub opens_at: Option<i64>,
    /// Conversations already waiting in the group.
    pub queued: u32,
    /// Free room among its members who are online and serve the shop.
    pub free: u64,
    /// The expected wait in seconds; `None` when nobody could take it (no member online).
    pub wait_s: Option<u64>,
    /// The handle time the wait is estimated with, and where it comes from.
    pub handle: HandleTime,
}

/// How many conversations of a group closed in the window it takes before their mean handle
/// time replaces `routing.default_handle_time_s`.
pub const LEARN_MIN_CLOSED: u64 = 20;
/// The window the handle time is learned over, in days.
pub const LEARN_WINDOW_DAYS: i64 = 7;

/// Handle times measured from recently closed conversations, per group id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandleTimes {
    pub groups: BTreeMap<String, ClosedSample>,
}

/// A group's conversations closed in the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClosedSample {
    /// How many closed (after an assignment).
    pub closed: u64,
    /// Their mean time from assignment to close, seconds.
    pub mean_s: u64,
}

impl ClosedSample {
    /// From a count and a total time (ms), rounded up to whole seconds.
    pub fn from_total_ms(closed: i64, total_ms: i64) -> ClosedSample {
        let closed = closed.max(0) as u64;
        let mean_s = (total_ms.max(0) as u64).checked_div(closed).map_or(0, |ms| ms.div_ceil(1000));
        ClosedSample { closed, mean_s }
    }
}

/// The handle time an estimate uses for a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandleTime {
    /// The mean of the group's conversations closed in the window (at least
    /// [`LEARN_MIN_CLOSED`] of them).
    Learned { seconds: u64, closed: u64 },
    /// `routing.default_handle_time_s`: fewer than [`LEARN_MIN_CLOSED`] closed in the window.
    Configured { seconds: u64, closed: u64 },
}

impl HandleTime {
    pub fn seconds(self) -> u64 {
        match self {
            HandleTime::Learned { seconds, .. } | HandleTime::Configured { seconds, .. } => seconds,
        }
    }

    /// In words, for `huiliu check` and the logs.
    pub fn describe(self) -> String {
        match self {
            HandleTime::Learned { seconds, closed } => format!(
                "{seconds} s learned (mean assignment-to-close of {closed} conversations closed in the last {LEARN_WINDOW_DAYS} days)"
            ),
            HandleTime::Configured { seconds, closed } => format!(
                "{seconds} s configured (routing.default_handle_time_s: {closed} conversations closed in the last {LEARN_WINDOW_DAYS} days, {LEARN_MIN_CLOSED} needed to learn it)"
            ),
        }
    }
}

impl HandleTimes {
    /// The groups whose handle time is learned (at least [`LEARN_MIN_CLOSED`] closed), with
    /// their mean in milliseconds: what the engine's queue-position estimate adopts.
    pub fn learned_ms(&self) -> impl Iterator<Item = (&str, i64)> {
        self.groups
            .iter()
            .filter(|(_, s)| s.closed >= LEARN_MIN_CLOSED)
            .map(|(g, s)| (g.as_str(), (s.mean_s.max(1) as i64).saturating_mul(1000)))
    }

    /// The handle time for `group`: learned when enough of its conversations closed in the
    /// window, else the configured default.
    pub fn for_group(&self, config: &RoutingConfig, group: &str) -> HandleTime {
        let sample = self.groups.get(group).copied().unwrap_or_default();
        if sample.closed >= LEARN_MIN_CLOSED {
            HandleTime::Learned { seconds: sample.mean_s.max(1), closed: sample.closed }
        } else {
            HandleTime::Configured { seconds: config.routing.default_handle_time_s.max(1), closed: sample.closed }
        }
    }
}

/// Whether a rule applies to an ordinary buyer of `platform`/`shop` (see the module doc).
fn applies(m: &MatchConfig, platform: &str, shop: &str, category: &str) -> bool {
    let listed = |list: &[String], v: &str| list.is_empty() || list.iter().any(|x| x == v);
    listed(&m.platform, platform)
        && listed(&m.shop, shop)
        && listed(&m.category, category)
        && m.vip_min.is_none_or(|v| v == 0)
        && m.fans_min.is_none_or(|v| v == 0)
        && m.tags.is_empty()
        && m.returning != Some(true)
        && m.open_refund != Some(true)
}

/// The group a new conversation from the shop would go to, before business hours.
pub fn shop_group<'a>(config: &'a RoutingConfig, platform: &str, shop: &str) -> Option<&'a str> {
    let category = config.routing.default_category.as_str();
    config
        .rules
        .iter()
        .find(|r| applies(&r.when, platform, shop, category))
        .and_then(|r| r.targets.first())
        .map(|t| t.group.as_str())
        .or(config.routing.fallback_group.as_deref())
}

/// What a new conversation from `platform`/`shop` would meet at `now`; `None` when no group
/// would take it. Without `state` (the hours alone are wanted) the queue figures are zero and
/// `wait_s` is `None`. `learned`: the handle times measured from the store (empty: the
/// configured one everywhere).
pub fn outlook(
    config: &RoutingConfig,
    state: Option<&RouterState>,
    learned: &HandleTimes,
    platform: &str,
    shop: &str,
    now: i64,
) -> Option<Outlook> {
    let group_cfg = |id: &str| config.groups.iter().find(|g| g.id == id);
    let mut group = group_cfg(shop_group(config, platform, shop)?)?;
    let mut calendar = Calendar::compile(group.hours.as_ref());
    if !calendar.is_open(now)
        && let Some(duty) = group.off_hours_group.as_deref().and_then(group_cfg)
    {
        let duty_calendar = Calendar::compile(duty.hours.as_ref());
        if duty_calendar.is_open(now) {
            (group, calendar) = (duty, duty_calendar);
        }
    }
    let open = calendar.is_open(now);
    let opens_at = if open { None } else { calendar.next_open(now) };
    let handle = learned.for_group(config, &group.id);
    let mut outlook = Outlook { group: group.id.clone(), open, opens_at, queued: 0, free: 0, wait_s: None, handle };
    let Some(state) = state else { return Some(outlook) };
    outlook.queued = state.queued.get(&group.id).copied().unwrap_or(0);
    let mut online_cap = 0u64;
    for agent in &config.agents {
        let serves = agent.shops.as_ref().is_none_or(|s| s.iter().any(|x| x == shop));
        let Some(live) = state.agents.get(&agent.id) else { continue };
        if !serves || !agent.groups.contains_key(&group.id) || live.status != AgentStatus::Online {
            continue;
        }
        let cap = u64::from(live.max_sessions.unwrap_or(agent.max_sessions));
        online_cap += cap;
        outlook.free += cap.saturating_sub(u64::from(live.active));
    }
    let until_open = opens_at.map_or(0, |at| (at.saturating_sub(now).max(0) as u64).div_ceil(1000));
    outlook.wait_s = if open && outlook.free > u64::from(outlook.queued) {
        Some(0)
    } else if online_cap == 0 && open {
        None
    } else {
        // Closed: members come online at opening; until then their configured caps are the
        // best guess of the capacity that will serve the queue.
        let cap = if online_cap > 0 {
            online_cap
        } else {
            config
                .agents
                .iter()
                .filter(|a| {
                    a.groups.contains_key(&group.id) && a.shops.as_ref().is_none_or(|s| s.iter().any(|x| x == shop))
                })
                .map(|a| u64::from(a.max_sessions))
                .sum()
        };
        // No capacity at all (cap 0): no estimate.
        (u64::from(outlook.queued) + 1)
            .saturating_mul(handle.seconds())
            .checked_div(cap)
            .map(|queue_s| until_open.saturating_add(queue_s))
    };
    Some(outlook)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::AgentState;

    const CONFIG: &str = r#"
[routing]
fallback_group = "presales"
default_handle_time_s = 240
[[group]]
id = "presales"
[group.hours]
daily = ["09:00-18:00"]
[[group]]
id = "night"
[[group]]
id = "vip"
[[group]]
id = "jd-desk"
off_hours_group = "night"
[group.hours]
daily = ["09:00-18:00"]
[[agent]]
id = "a1"
groups = { presales = 5 }
max_sessions = 2
[[agent]]
id = "a2"
groups = { presales = 5, jd-desk = 3 }
max_sessions = 2
[[agent]]
id = "a3"
groups = { presales = 5 }
shops = ["other"]
[[agent]]
id = "a4"
groups = { night = 3, vip = 3 }
[[rule]]
name = "vip"
[rule.match]
vip_min = 3
[[rule.target]]
group = "vip"
[[rule]]
name = "complaints"
[rule.match]
category = ["complaint"]
[[rule.target]]
group = "vip"
[[rule]]
name = "jd"
[rule.match]
platform = ["jd"]
[[rule.target]]
group = "jd-desk"
"#;

    /// 2026-12-07 12:00 Beijing time, and 20:00 the same day.
    const NOON: i64 = 1_796_616_000_000;
    const EVENING: i64 = NOON + 8 * 3_600_000;

    fn config() -> RoutingConfig {
        crate::parse(CONFIG, "routing.toml").unwrap()
    }

    fn state(agents: &[(&str, AgentStatus, u32)], queued: u32) -> RouterState {
        RouterState {
            now: NOON,
            agents: agents
                .iter()
                .map(|&(id, status, active)| {
                    (id.to_owned(), AgentState { status, active, max_sessions: None, idle_since: 0, last_assigned: 0 })
                })
                .collect(),
            queued: [("presales".to_owned(), queued)].into(),
        }
    }

    #[test]
    fn rules_for_particular_buyers_are_skipped_and_the_platform_decides() {
        let cfg = config();
        assert_eq!(shop_group(&cfg, "taobao", "tb"), Some("presales"));
        assert_eq!(shop_group(&cfg, "jd", "jd-1"), Some("jd-desk"));
    }

    #[test]
    fn the_groups_hours_and_its_on_duty_group_decide_whether_the_desk_is_open() {
        let cfg = config();
        let noon = outlook(&cfg, None, &HandleTimes::default(), "taobao", "tb", NOON).unwrap();
        assert!(noon.open && noon.opens_at.is_none() && noon.wait_s.is_none());
        let evening = outlook(&cfg, None, &HandleTimes::default(), "taobao", "tb", EVENING).unwrap();
        assert!(!evening.open);
        assert_eq!(evening.opens_at, Some(NOON + 21 * 3_600_000), "09:00 the next day");
        // jd-desk is closed in the evening, but its on-duty group (always open) takes over.
        let jd = outlook(&cfg, None, &HandleTimes::default(), "jd", "jd-1", EVENING).unwrap();
        assert_eq!((jd.group.as_str(), jd.open), ("night", true));
    }

    #[test]
    fn the_wait_is_the_queue_ahead_over_the_online_capacity() {
        let cfg = config();
        let on = AgentStatus::Online;
        // Room to spare: no wait.
        let none = HandleTimes::default();
        let o = outlook(&cfg, Some(&state(&[("a1", on, 1), ("a2", on, 2)], 0)), &none, "taobao", "tb", NOON).unwrap();
        assert_eq!((o.free, o.wait_s), (1, Some(0)));
        // Full, 5 waiting: 6 × 240 s over a capacity of 4 = 360 s. a3 does not serve this shop.
        let full = state(&[("a1", on, 2), ("a2", on, 2), ("a3", on, 0)], 5);
        let o = outlook(&cfg, Some(&full), &none, "taobao", "tb", NOON).unwrap();
        assert_eq!((o.queued, o.free, o.wait_s), (5, 0, Some(360)));
        // Nobody online while open: no estimate.
        let o = outlook(&cfg, Some(&state(&[("a1", AgentStatus::Busy, 0)], 0)), &none, "taobao", "tb", NOON).unwrap();
        assert_eq!(o.wait_s, None);
        // Closed: the time until opening (13 h) plus the queue over the configured caps.
        let o = outlook(&cfg, Some(&state(&[], 0)), &none, "taobao", "tb", EVENING).unwrap();
        assert_eq!(o.wait_s, Some(13 * 3600 + 240 / 4));
    }

    /// The handle time: the configured one until a group has 20 conversations closed in the
    /// window, then their mean; the wait follows it.
    #[test]
    fn the_handle_time_is_learned_from_enough_closed_conversations_else_configured() {
        let cfg = config();
        let on = AgentStatus::Online;
        let full = state(&[("a1", on, 2), ("a2", on, 2)], 5);
        let learned =
            |closed, mean_s| HandleTimes { groups: [("presales".to_owned(), ClosedSample { closed, mean_s })].into() };
        // 19 closed: not enough, the configured 240 s (6 × 240 s ÷ 4 = 360 s).
        let o = outlook(&cfg, Some(&full), &learned(19, 600), "taobao", "tb", NOON).unwrap();
        assert_eq!((o.handle, o.wait_s), (HandleTime::Configured { seconds: 240, closed: 19 }, Some(360)));
        assert!(o.handle.describe().contains("19 conversations closed") && o.handle.describe().contains("20 needed"));
        // 20 closed, 600 s on average: 6 × 600 s ÷ 4 = 900 s.
        let o = outlook(&cfg, Some(&full), &learned(20, 600), "taobao", "tb", NOON).unwrap();
        assert_eq!((o.handle, o.wait_s), (HandleTime::Learned { seconds: 600, closed: 20 }, Some(900)));
        assert!(o.handle.describe().starts_with("600 s learned"), "{}", o.handle.describe());
        // Another group's figures do not count for this one; a mean of 0 s is taken as 1 s.
        let other = HandleTimes { groups: [("vip".to_owned(), ClosedSample { closed: 99, mean_s: 60 })].into() };
        assert_eq!(other.for_group(&cfg, "presales"), HandleTime::Configured { seconds: 240, closed: 0 });
        assert_eq!(learned(25, 0).for_group(&cfg, "presales"), HandleTime::Learned { seconds: 1, closed: 25 });
        // From the store's totals: 3 conversations, 1000.5 s in all, a mean of 334 s (rounded up).
        assert_eq!(ClosedSample::from_total_ms(3, 1_000_500), ClosedSample { closed: 3, mean_s: 334 });
        assert_eq!(ClosedSample::from_total_ms(0, 0), ClosedSample::default());
    }
}
