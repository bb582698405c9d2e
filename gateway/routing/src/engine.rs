//! The routing engine: live agent state, queues ("lanes"), assignments, deadlines.
//!
//! Data structures (every per-decision operation is O(log n)):
//! - **Availability index**: per group, per proficiency level 1–5, per shop scope (every
//!   shop, or one shop), a `BTreeSet` of the agents who are online *and* under their cap,
//!   ordered by the group's policy key (load as an exact fraction, then idle time or
//!   rotation). The best agent for a conversation is the smallest key over at most ten sets.
//! - **Lanes**: a conversation waits in the lane of its eligibility class
//!   (group, shop, minimum proficiency, excluded agent), or in one agent's personal lane
//!   (sticky and transfer waits). Every entry of a lane can be served by exactly the same
//!   agents, so a lane's head is the only entry that matters. Lanes are order-statistic
//!   treaps keyed by `(enqueued_at − priority × ms_per_point, session)`: aging at a common
//!   rate makes this key time-invariant, and rank gives the buyer's position in O(log n).
//! - **Deadlines**: one `BTreeSet<(instant, session)>`; a session has at most one deadline
//!   (its overflow/sticky/transfer wait while waiting, its first-response limit while assigned).
//!
//! Invariants after every call (checked by `check_invariants` in the tests):
//! 1. Each session is in exactly one place: one lane, or one agent's session list.
//! 2. An agent's `active` equals the length of their session list; no assignment is made to
//!    an agent who is not `online` or is at/over their cap.
//! 3. Work-conserving: no waiting conversation in an open group could be served by an agent
//!    who is online with room (capacity is always given to the queue first).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::compiled::{Compiled, Facts, Interner, Target};
use super::config::{OnLeave, Policy, ROUTING_FILE, RoutingConfig};
use super::treap::{Arena, Key, NIL};
use super::types::*;
use huiliu_domain::ConfigError;

pub(crate) const NONE: u32 = u32::MAX;
const LIMIT_MS: i64 = 1_000_000_000_000_000;

/// A load `active / cap`, compared as an exact fraction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Load {
    pub active: u32,
    pub cap: u32,
}

impl Ord for Load {
    fn cmp(&self, o: &Self) -> Ordering {
        (u64::from(self.active) * u64::from(o.cap)).cmp(&(u64::from(o.active) * u64::from(self.cap)))
    }
}
impl PartialOrd for Load {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl PartialEq for Load {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Load {}

/// An agent's place in a group's availability order: smaller is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct AgentKey {
    pub load: Load,
    pub tie: i64,
    pub agent: u32,
}

/// The agent fields a key was computed from (exact, for removal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Snapshot {
    active: u32,
    cap: u32,
    idle_since: i64,
    rr: u64,
}

fn key_of(policy: Policy, s: Snapshot, agent: u32) -> AgentKey {
    match policy {
        Policy::RoundRobin => {
            AgentKey { load: Load { active: 0, cap: 1 }, tie: i64::try_from(s.rr).unwrap_or(i64::MAX), agent }
        }
        Policy::LeastLoad | Policy::ProficiencyFirst => {
            AgentKey { load: Load { active: s.active, cap: s.cap }, tie: s.idle_since, agent }
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Scoped {
    all: BTreeSet<AgentKey>,
    shops: HashMap<u32, BTreeSet<AgentKey>>,
}

#[derive(Debug, Clone, Default)]
struct GroupIndex {
    /// `levels[p - 1]`: members with proficiency exactly `p`.
    levels: [Scoped; 5],
}

#[derive(Debug, Clone)]
pub(crate) struct AgentLive {
    pub status: AgentStatus,
    pub active: u32,
    pub cap_override: Option<u32>,
    pub idle_since: i64,
    pub rr: u64,
    pub sessions: Vec<SessionId>,
    indexed: Option<Snapshot>,
}

impl AgentLive {
    fn new(now: i64) -> Self {
        AgentLive {
            status: AgentStatus::Offline,
            active: 0,
            cap_override: None,
            idle_since: now,
            rr: 0,
            sessions: Vec::new(),
            indexed: None,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct GroupLive {
    pub queued: u32,
    pub online: u32,
    pub with_room: u32,
    pub online_cap: u64,
    pub handle_ms: i64,
    open: bool,
    until: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum LaneKey {
    Group { group: u16, shop: u32, min_prof: u8, exclude: u32 },
    Agent(u32),
}

#[derive(Debug, Clone)]
struct Lane {
    key: LaneKey,
    root: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    Queued,
    Overflow,
    Sticky,
    ForTransfer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    Detached,
    Lane(u32),
    Agent { agent: u32, since: i64, responded: bool },
}

#[derive(Debug, Clone)]
pub(crate) struct Sess {
    pub facts: Facts,
    pub rule: Option<u16>,
    pub target: u8,
    pub group: u16,
    pub min_prof: u8,
    /// Set by a transfer to a group: no overflow chain any more.
    pub pinned: bool,
    pub priority: i32,
    pub enqueued_at: i64,
    pub key: i64,
    pub place: Place,
    pub wait: Wait,
    pub deadline: i64,
    pub exclude: u32,
    pub handover: Option<Box<Handover>>,
}

/// Where routing starts for a session.
#[derive(Debug, Clone, Copy)]
struct Route {
    rule: Option<u16>,
    target: u8,
    pinned: Option<u16>,
}

#[derive(Debug)]
enum Outcome {
    Assign(u32),
    Wait { lane: LaneKey, wait: Wait, deadline: i64 },
}

#[derive(Debug)]
struct Plan {
    outcome: Outcome,
    group: u16,
    target: u8,
    min_prof: u8,
    pinned: bool,
    decision: Decision,
}

/// The routing engine. Single-threaded (`&mut self`); the gateway serializes calls. Every
/// method takes `now` (epoch ms); time never runs backwards inside (an earlier `now` is
/// treated as the latest seen). Before doing its own work, every call processes the
/// deadlines that are due (as [`Engine::tick`] would), so a late tick loses nothing.
#[derive(Debug, Clone)]
pub struct Engine {
    source: RoutingConfig,
    pub(crate) cfg: Compiled,
    pub(crate) strings: Interner,
    now: i64,
    counter: u64,
    pub(crate) agents: Vec<AgentLive>,
    pub(crate) sessions: HashMap<SessionId, Sess>,
    arena: Arena,
    lanes: Vec<Lane>,
    lane_ix: HashMap<LaneKey, u32>,
    free_lanes: Vec<u32>,
    /// Non-empty group lanes per group.
    group_lanes: Vec<BTreeSet<u32>>,
    pub(crate) groups: Vec<GroupLive>,
    index: Vec<GroupIndex>,
    deadlines: BTreeSet<(i64, SessionId)>,
    /// Actions produced by due deadlines during a call that then failed; returned next time.
    pending: Vec<Action>,
    /// Dry runs list every member in decisions.
    full_decisions: bool,
    /// The `now` of the call being processed (deadlines may be handled at earlier instants).
    horizon: i64,
    /// Test oracle: violations of "most urgent first" seen at drain time.
    #[cfg(test)]
    pub(crate) violations: Vec<String>,
}

/// An agent's state for [`Engine::restore`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoredAgent {
    pub id: String,
    pub status: AgentStatus,
    /// A cap set at run time (overrides `max_sessions`).
    #[serde(default)]
    pub max_sessions: Option<u32>,
    #[serde(default)]
    pub idle_since: Option<i64>,
}

/// A session for [`Engine::restore`]: its conversation and where it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoredSession {
    pub conversation: Conversation,
    /// When it first waited (keeps its place in the queue).
    pub enqueued_at: i64,
    /// The agent it is assigned to, if any.
    #[serde(default)]
    pub agent: Option<String>,
    #[serde(default)]
    pub assigned_at: Option<i64>,
    /// Whether the agent has replied (no first-response deadline then).
    #[serde(default)]
    pub responded: bool,
}

fn clamp_time(t: i64) -> i64 {
    t.clamp(-LIMIT_MS, LIMIT_MS)
}

/// Fills `{name}` variables.
pub(crate) fn render(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match vars.iter().find(|(n, _)| *n == name) {
                    Some((_, v)) => out.push_str(v),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

impl Engine {
    /// A router for a configuration, every agent offline and nothing queued.
    pub fn new(config: RoutingConfig, now: i64) -> Result<Engine, Vec<ConfigError>> {
        let errors = config.validate(ROUTING_FILE);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Engine::empty(config, Interner::default(), clamp_time(now)))
    }

    fn empty(config: RoutingConfig, mut strings: Interner, now: i64) -> Engine {
        let cfg = Compiled::new(&config, &mut strings);
        let groups = cfg
            .groups
            .iter()
            .map(|g| {
                let (open, until) = g.calendar.state(now);
                GroupLive {
                    queued: 0,
                    online: 0,
                    with_room: 0,
                    online_cap: 0,
                    handle_ms: cfg.settings.handle_ms,
                    open,
                    until,
                }
            })
            .collect();
        Engine {
            agents: vec![AgentLive::new(now); cfg.agents.len()],
            index: vec![GroupIndex::default(); cfg.groups.len()],
            group_lanes: vec![BTreeSet::new(); cfg.groups.len()],
            groups,
            cfg,
            source: config,
            strings,
            now,
            counter: 1,
            sessions: HashMap::new(),
            arena: Arena::default(),
            lanes: Vec::new(),
            lane_ix: HashMap::new(),
            free_lanes: Vec::new(),
            deadlines: BTreeSet::new(),
            pending: Vec::new(),
            full_decisions: false,
            horizon: now,
            #[cfg(test)]
            violations: Vec::new(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &RoutingConfig {
        &self.source
    }

    /// The latest instant the router has seen.
    pub fn now(&self) -> i64 {
        self.now
    }

    /// When the gateway must call [`Engine::tick`] next (`None`: nothing pending). Includes
    /// overflow, sticky and transfer waits, first-response limits, and the opening of closed
    /// groups that have conversations waiting.
    pub fn next_deadline(&self) -> Option<i64> {
        if !self.pending.is_empty() {
            return Some(self.now);
        }
        let d = self.deadlines.first().map(|d| d.0);
        let g = self
            .groups
            .iter()
            .enumerate()
            .filter(|(i, g)| !g.open && !self.group_lanes[*i].is_empty() && g.until != i64::MAX)
            .map(|(_, g)| g.until)
            .min();
        match (d, g) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // ----- the call wrapper -------------------------------------------------------------

    fn run(
        &mut self,
        now: i64,
        f: impl FnOnce(&mut Engine, i64, &mut Vec<Action>) -> Result<(), RouterError>,
    ) -> Result<Vec<Action>, RouterError> {
        let mut out = std::mem::take(&mut self.pending);
        let now = self.advance(now, &mut out);
        match f(self, now, &mut out) {
            Ok(()) => Ok(out),
            Err(e) => {
                self.pending = out;
                Err(e)
            }
        }
    }

    /// Processes due deadlines and group openings in time order; returns the clamped `now`.
    fn advance(&mut self, now: i64, out: &mut Vec<Action>) -> i64 {
        let now = clamp_time(now).max(self.now);
        self.horizon = now;
        loop {
            let deadline = self.deadlines.first().map_or(i64::MAX, |d| d.0);
            let transition = self.groups.iter().map(|g| g.until).min().unwrap_or(i64::MAX);
            let t = deadline.min(transition);
            if t > now {
                break;
            }
            self.now = self.now.max(t);
            if transition <= deadline {
                // After a long silence, only the last two days of openings are replayed.
                self.refresh_hours(t.max(now.saturating_sub(2 * 86_400_000)), out);
            } else if let Some((at, sid)) = self.deadlines.pop_first() {
                if let Some(s) = self.sessions.get_mut(&sid) {
                    s.deadline = i64::MAX;
                }
                self.on_deadline(sid, at, out);
            }
        }
        self.now = now;
        now
    }

    fn refresh_hours(&mut self, t: i64, out: &mut Vec<Action>) {
        let mut opened = Vec::new();
        for (g, live) in self.groups.iter_mut().enumerate() {
            if live.until <= t {
                let (open, until) = self.cfg.groups[g].calendar.state(t);
                if open && !live.open {
                    opened.push(g as u16);
                }
                live.open = open;
                live.until = until.max(t.saturating_add(1));
            }
        }
        if !opened.is_empty() {
            self.drain(&opened, &[], t, out);
        }
    }

    // ----- public calls -----------------------------------------------------------------

    /// Processes everything due at `now`: overflow waits, sticky and transfer waits,
    /// first-response limits, group openings.
    pub fn tick(&mut self, now: i64) -> Vec<Action> {
        self.run(now, |_, _, _| Ok(())).unwrap_or_default()
    }

    /// A new conversation needs an agent.
    pub fn arrive(&mut self, conv: Conversation, now: i64) -> Result<Vec<Action>, RouterError> {
        self.run(now, |r, now, out| {
            if r.sessions.contains_key(&conv.session) {
                return Err(RouterError::DuplicateSession(conv.session));
            }
            let (facts, why) = r.facts(&conv);
            let plan = r.plan_arrival(&conv, &facts, why, now);
            let priority = plan.decision.priority;
            let sess = r.new_sess(facts, plan.decision.rule.as_ref().map(|x| x.index as u16), priority, now);
            r.sessions.insert(conv.session, sess);
            r.apply(conv.session, plan, now, Trigger::Arrival, out);
            Ok(())
        })
    }

    /// The conversation ended (closed by the agent, idle, or the buyer left while waiting).
    pub fn close(&mut self, session: SessionId, now: i64) -> Result<Vec<Action>, RouterError> {
        self.run(now, |r, now, out| {
            let place = r.sessions.get(&session).map(|s| s.place).ok_or(RouterError::UnknownSession(session))?;
            let group = r.sessions.get(&session).map_or(0, |s| s.group);
            r.detach(session);
            r.sessions.remove(&session);
            if let Place::Agent { agent, since, .. } = place {
                if let Some(g) = r.groups.get_mut(group as usize) {
                    let sample = now.saturating_sub(since).clamp(0, 86_400_000);
                    g.handle_ms += (sample - g.handle_ms) / 8;
                }
                r.drain_for_agent(agent, now, out);
            }
            Ok(())
        })
    }

    /// The assigned agent sent their first reply: the first-response limit no longer applies.
    pub fn first_response(&mut self, session: SessionId, now: i64) -> Result<Vec<Action>, RouterError> {
        self.run(now, |r, _, _| {
            let s = r.sessions.get_mut(&session).ok_or(RouterError::UnknownSession(session))?;
            if let Place::Agent { agent, since, .. } = s.place {
                s.place = Place::Agent { agent, since, responded: true };
                r.set_deadline(session, i64::MAX);
            }
            Ok(())
        })
    }

    /// An agent's presence changed.
    pub fn set_status(&mut self, agent: &str, status: AgentStatus, now: i64) -> Result<Vec<Action>, RouterError> {
        self.run(now, |r, now, out| {
            let a = r.agent_ix(agent)?;
            r.change_status(a, status, now, out);
            Ok(())
        })
    }

    /// Sets an agent's cap at run time (`None`: back to the configured `max_sessions`).
    /// Lowering it below the agent's current load keeps their sessions; they just get no new
    /// ones until under it.
    pub fn set_max_sessions(&mut self, agent: &str, cap: Option<u32>, now: i64) -> Result<Vec<Action>, RouterError> {
        self.run(now, |r, now, out| {
            let a = r.agent_ix(agent)?;
            let before = r.cap(a);
            r.agents[a as usize].cap_override = cap.map(|c| c.min(1000));
            let after = r.cap(a);
            if r.agents[a as usize].status == AgentStatus::Online {
                r.adjust_online(a, i64::from(after) - i64::from(before), 0);
            }
            r.reindex(a);
            if after > before {
                r.drain_for_agent(a, now, out);
            }
            Ok(())
        })
    }

    /// Transfers a session (assigned or waiting) to an agent or a group, with a handover note.
    /// The transferring agent does not get it back from the queue.
    pub fn transfer(
        &mut self,
        session: SessionId,
        to: TransferTo,
        note: HandoverNote,
        now: i64,
    ) -> Result<Vec<Action>, RouterError> {
        self.run(now, |r, now, out| r.do_transfer(session, to, note, now, out))
    }

    /// Swaps in a new configuration atomically. An invalid one is refused with every error
    /// and the running one stays. Conversations in flight are kept: assignments stay with
    /// agents who still exist (others are requeued), waiting conversations are re-routed
    /// through the new rules keeping their place (arrival time and priority).
    pub fn reload(&mut self, config: RoutingConfig, now: i64) -> Result<Vec<Action>, Vec<ConfigError>> {
        let errors = config.validate(ROUTING_FILE);
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut out = std::mem::take(&mut self.pending);
        let now = self.advance(now, &mut out);
        let strings = std::mem::take(&mut self.strings);
        let old = std::mem::replace(self, Engine::empty(config, strings, now));
        self.carry_agents(&old);
        self.counter = old.counter;
        for (g, live) in self.groups.iter_mut().enumerate() {
            if let Some(&og) = old.cfg.group_ix.get(&self.cfg.groups[g].id) {
                live.handle_ms = old.groups[og as usize].handle_ms;
            }
        }
        let mut sessions: Vec<(SessionId, Sess)> = old.sessions.into_iter().collect();
        sessions.sort_unstable_by_key(|(id, s)| (s.key, *id));
        let mut waiting = Vec::new();
        for (id, s) in sessions {
            let old_group = old.cfg.groups.get(s.group as usize).map(|g| g.id.clone()).unwrap_or_default();
            let seed = self.reseed(&old.cfg, s);
            match seed.place {
                Place::Agent { agent, .. } => {
                    let id_str = &old.cfg.agents[agent as usize].id;
                    match self.cfg.agent_ix.get(id_str).copied() {
                        Some(na) => self.place_assigned(id, seed, na),
                        None => {
                            out.push(Action::Unassign {
                                session: id,
                                agent: id_str.clone(),
                                reason: UnassignReason::AgentRemoved,
                            });
                            let mut seed = seed;
                            seed.deadline = i64::MAX;
                            // Always reported: the gateway must learn where it went.
                            waiting.push((id, seed, String::new(), None));
                        }
                    }
                }
                Place::Lane(l) => {
                    let personal = match old.lanes.get(l as usize).map(|l| l.key) {
                        Some(LaneKey::Agent(a)) => {
                            old.cfg.agents.get(a as usize).and_then(|d| self.cfg.agent_ix.get(&d.id).copied())
                        }
                        _ => None,
                    };
                    waiting.push((id, seed, old_group, personal));
                }
                Place::Detached => waiting.push((id, seed, old_group, None)),
            }
        }
        self.place_waiting(waiting, now, Trigger::Reload, &mut out);
        Ok(out)
    }

    /// Rebuilds a router after a restart from the store: agents' states, assignments, and
    /// waiting conversations with their original arrival times. Assignments to unknown agents,
    /// and to agents offline/away whose sessions requeue, are re-routed (with `Unassign`
    /// actions); duplicate session ids keep the first.
    pub fn restore(
        config: RoutingConfig,
        agents: &[RestoredAgent],
        sessions: Vec<RestoredSession>,
        now: i64,
    ) -> Result<(Engine, Vec<Action>), Vec<ConfigError>> {
        let mut r = Engine::new(config, now)?;
        let now = r.now;
        let mut out = Vec::new();
        for ra in agents {
            let Some(&a) = r.cfg.agent_ix.get(&ra.id) else { continue };
            let live = &mut r.agents[a as usize];
            live.status = ra.status;
            live.cap_override = ra.max_sessions.map(|c| c.min(1000));
            live.idle_since = ra.idle_since.map_or(now, clamp_time);
        }
        r.recount();
        let mut seen = BTreeSet::new();
        let mut waiting = Vec::new();
        let mut list: Vec<RestoredSession> =
            sessions.into_iter().filter(|s| seen.insert(s.conversation.session)).collect();
        list.sort_by_key(|s| (s.enqueued_at, s.conversation.session));
        for rs in list {
            let id = rs.conversation.session;
            let (facts, _) = r.facts(&rs.conversation);
            let rule = r.cfg.first_rule(&facts).map(|i| i as u16);
            let priority = rule.and_then(|i| r.cfg.rules.get(i as usize)).map_or(0, |x| x.priority);
            let mut seed = r.new_sess(facts, rule, priority, clamp_time(rs.enqueued_at));
            let first = r.targets(rule, None).first().copied();
            if let Some(t) = first {
                seed.group = t.group;
                seed.min_prof = t.min_prof;
            }
            let agent = rs.agent.as_ref().map(|a| (a, r.cfg.agent_ix.get(a).copied()));
            match agent {
                Some((_, Some(a))) if !r.leaves_requeue(r.agents[a as usize].status) => {
                    let since = clamp_time(rs.assigned_at.unwrap_or(now));
                    seed.place = Place::Agent { agent: a, since, responded: rs.responded };
                    r.place_assigned(id, seed, a);
                }
                Some((name, known)) => {
                    let reason = match known.map(|a| r.agents[a as usize].status) {
                        None => UnassignReason::AgentRemoved,
                        Some(AgentStatus::Away) => UnassignReason::AgentAway,
                        Some(_) => UnassignReason::AgentOffline,
                    };
                    out.push(Action::Unassign { session: id, agent: name.clone(), reason });
                    waiting.push((id, seed, String::new(), None));
                }
                None => waiting.push((id, seed, String::new(), None)),
            }
        }
        r.place_waiting(waiting, now, Trigger::Restore, &mut out);
        Ok((r, out))
    }

    // ----- inspection -------------------------------------------------------------------

    /// Where a session is.
    pub fn session(&self, id: SessionId) -> Option<SessionView> {
        let s = self.sessions.get(&id)?;
        let group = self.cfg.groups.get(s.group as usize).map(|g| g.id.clone()).unwrap_or_default();
        Some(match s.place {
            Place::Agent { agent, since, responded } => SessionView::Assigned {
                agent: self.cfg.agents[agent as usize].id.clone(),
                group,
                assigned_at: since,
                responded,
                priority: s.priority,
            },
            Place::Lane(_) | Place::Detached => SessionView::Waiting {
                group,
                wait: self.wait_state(s),
                position: self.position(id),
                enqueued_at: s.enqueued_at,
                priority: s.priority,
            },
        })
    }

    /// An agent's live state.
    pub fn agent(&self, id: &str) -> Option<AgentView> {
        let a = *self.cfg.agent_ix.get(id)?;
        let live = &self.agents[a as usize];
        let def = &self.cfg.agents[a as usize];
        Some(AgentView {
            id: def.id.clone(),
            name: def.name.clone(),
            role: def.role,
            status: live.status,
            active: live.active,
            cap: self.cap(a),
            sessions: live.sessions.clone(),
            idle_since: live.idle_since,
        })
    }

    /// How many conversations wait in a group (all lanes, any shop).
    pub fn queue_len(&self, group: &str) -> usize {
        self.cfg.group_ix.get(group).map_or(0, |&g| self.groups[g as usize].queued as usize)
    }

    /// The sessions waiting in a group, next first (O(n): for dashboards, not the hot path).
    pub fn queued(&self, group: &str) -> Vec<SessionId> {
        let Some(&g) = self.cfg.group_ix.get(group) else { return Vec::new() };
        let mut keys: Vec<Key> =
            self.group_lanes[g as usize].iter().flat_map(|&l| self.arena.keys(self.lanes[l as usize].root)).collect();
        keys.sort_unstable();
        keys.into_iter().map(|k| k.1).collect()
    }

    /// Number of sessions the router holds (assigned and waiting).
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether the router holds no session.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// A snapshot of agents and queue lengths, for [`super::explain`] and dashboards.
    pub fn state(&self) -> RouterState {
        RouterState {
            now: self.now,
            agents: self
                .cfg
                .agents
                .iter()
                .zip(&self.agents)
                .map(|(d, l)| {
                    (
                        d.id.clone(),
                        AgentState {
                            status: l.status,
                            active: l.active,
                            max_sessions: l.cap_override,
                            idle_since: l.idle_since,
                            last_assigned: l.rr,
                        },
                    )
                })
                .collect(),
            queued: self.cfg.groups.iter().zip(&self.groups).map(|(d, g)| (d.id.clone(), g.queued)).collect(),
        }
    }

    // ----- internals: agents ------------------------------------------------------------

    fn agent_ix(&self, id: &str) -> Result<u32, RouterError> {
        self.cfg.agent_ix.get(id).copied().ok_or_else(|| RouterError::UnknownAgent(id.to_owned()))
    }

    pub(crate) fn cap(&self, a: u32) -> u32 {
        let i = a as usize;
        self.agents[i].cap_override.unwrap_or(self.cfg.agents[i].cap)
    }

    fn available(&self, a: u32) -> bool {
        let l = &self.agents[a as usize];
        l.status == AgentStatus::Online && l.active < self.cap(a)
    }

    fn leaves_requeue(&self, status: AgentStatus) -> bool {
        match status {
            AgentStatus::Away => self.cfg.settings.on_away == OnLeave::Requeue,
            AgentStatus::Offline => self.cfg.settings.on_offline == OnLeave::Requeue,
            AgentStatus::Online | AgentStatus::Busy => false,
        }
    }

    /// Adds `cap_delta` to the online capacity and `online_delta` to the online count of
    /// every group of agent `a`.
    fn adjust_online(&mut self, a: u32, cap_delta: i64, online_delta: i64) {
        for &(g, _) in &self.cfg.agents[a as usize].groups {
            let live = &mut self.groups[g as usize];
            live.online_cap = (live.online_cap as i64 + cap_delta).max(0) as u64;
            live.online = (i64::from(live.online) + online_delta).max(0) as u32;
        }
    }

    /// Recomputes group counters and the whole index from the agents' states.
    fn recount(&mut self) {
        for g in &mut self.groups {
            g.online = 0;
            g.online_cap = 0;
        }
        for a in 0..self.agents.len() as u32 {
            if self.agents[a as usize].status == AgentStatus::Online {
                let cap = self.cap(a);
                self.adjust_online(a, i64::from(cap), 1);
            }
            self.reindex(a);
        }
    }

    /// Puts agent `a` in (or out of) the availability index per their current state.
    fn reindex(&mut self, a: u32) {
        let cap = self.cap(a);
        let live = &self.agents[a as usize];
        let now_state = (live.status == AgentStatus::Online && live.active < cap).then_some(Snapshot {
            active: live.active,
            cap,
            idle_since: live.idle_since,
            rr: live.rr,
        });
        let before = live.indexed;
        if before == now_state {
            return;
        }
        let def = &self.cfg.agents[a as usize];
        for &(g, prof) in &def.groups {
            let policy = self.cfg.groups[g as usize].policy;
            let level = &mut self.index[g as usize].levels[usize::from(prof.clamp(1, 5) - 1)];
            if let Some(old) = before {
                let k = key_of(policy, old, a);
                match &def.shops {
                    None => {
                        level.all.remove(&k);
                    }
                    Some(shops) => {
                        for s in shops {
                            if let Some(set) = level.shops.get_mut(s) {
                                set.remove(&k);
                            }
                        }
                    }
                }
            }
            if let Some(new) = now_state {
                let k = key_of(policy, new, a);
                match &def.shops {
                    None => {
                        level.all.insert(k);
                    }
                    Some(shops) => {
                        for s in shops {
                            level.shops.entry(*s).or_default().insert(k);
                        }
                    }
                }
            }
            let live_g = &mut self.groups[g as usize];
            match (before.is_some(), now_state.is_some()) {
                (false, true) => live_g.with_room += 1,
                (true, false) => live_g.with_room = live_g.with_room.saturating_sub(1),
                _ => {}
            }
        }
        self.agents[a as usize].indexed = now_state;
    }

    /// The best agents with room for (group, shop, min proficiency), not `exclude`, best first.
    fn top_agents(&self, g: u16, shop: u32, min_prof: u8, exclude: u32, k: usize) -> Vec<(u8, AgentKey)> {
        let Some(idx) = self.index.get(g as usize) else { return Vec::new() };
        let policy = self.cfg.groups[g as usize].policy;
        let mut found: Vec<(u8, AgentKey)> = Vec::new();
        for level in min_prof.clamp(1, 5)..=5 {
            let s = &idx.levels[usize::from(level - 1)];
            let sets = [Some(&s.all), s.shops.get(&shop)];
            for set in sets.into_iter().flatten() {
                found.extend(set.iter().filter(|key| key.agent != exclude).take(k).map(|key| (level, *key)));
            }
        }
        sort_candidates(policy, &mut found);
        found.truncate(k);
        found
    }

    /// The best agent with room.
    fn best_agent(&self, g: u16, shop: u32, min_prof: u8, exclude: u32) -> Option<u32> {
        let idx = self.index.get(g as usize)?;
        let policy = self.cfg.groups[g as usize].policy;
        let pick = |set: &BTreeSet<AgentKey>| set.iter().find(|k| k.agent != exclude).copied();
        let best_in = |level: u8| {
            let s = &idx.levels[usize::from(level - 1)];
            let a = pick(&s.all);
            let b = s.shops.get(&shop).and_then(pick);
            match (a, b) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        };
        let min_prof = min_prof.clamp(1, 5);
        match policy {
            Policy::ProficiencyFirst => (min_prof..=5).rev().find_map(best_in).map(|k| k.agent),
            _ => (min_prof..=5).filter_map(best_in).min().map(|k| k.agent),
        }
    }

    pub(crate) fn eligibility(&self, a: u32, g: u16, shop: u32, min_prof: u8, exclude: u32) -> (Eligibility, u8) {
        let def = &self.cfg.agents[a as usize];
        let live = &self.agents[a as usize];
        let prof = def.proficiency(g).unwrap_or(0);
        let e = if prof == 0 {
            Eligibility::NotInGroup
        } else if a == exclude {
            Eligibility::Excluded
        } else if !def.serves(shop) {
            Eligibility::NotServingShop
        } else if prof < min_prof {
            Eligibility::BelowProficiency { has: prof, needs: min_prof }
        } else {
            match live.status {
                AgentStatus::Offline => Eligibility::Offline,
                AgentStatus::Away => Eligibility::Away,
                AgentStatus::Busy => Eligibility::Busy,
                AgentStatus::Online if live.active >= self.cap(a) => {
                    Eligibility::AtCap { active: live.active, cap: self.cap(a) }
                }
                AgentStatus::Online => Eligibility::Eligible,
            }
        };
        (e, prof)
    }

    fn change_status(&mut self, a: u32, status: AgentStatus, now: i64, out: &mut Vec<Action>) {
        let before = self.agents[a as usize].status;
        if before == status {
            return;
        }
        let cap = i64::from(self.cap(a));
        if before == AgentStatus::Online {
            self.adjust_online(a, -cap, -1);
        }
        if status == AgentStatus::Online {
            self.adjust_online(a, cap, 1);
            let live = &mut self.agents[a as usize];
            live.idle_since = live.idle_since.max(now);
        }
        self.agents[a as usize].status = status;
        self.reindex(a);
        if matches!(status, AgentStatus::Away | AgentStatus::Offline) {
            // Whoever waits for this agent in person goes the normal way now.
            if let Some(&l) = self.lane_ix.get(&LaneKey::Agent(a)) {
                for (_, sid) in self.arena.keys(self.lanes[l as usize].root) {
                    self.release_personal(sid, now, out);
                }
            }
            if self.leaves_requeue(status) {
                let reason =
                    if status == AgentStatus::Away { UnassignReason::AgentAway } else { UnassignReason::AgentOffline };
                let agent_id = self.cfg.agents[a as usize].id.clone();
                let mut list = self.agents[a as usize].sessions.clone();
                list.sort_unstable_by_key(|sid| (self.sessions.get(sid).map_or(0, |s| s.key), *sid));
                for sid in list {
                    self.detach(sid);
                    out.push(Action::Unassign { session: sid, agent: agent_id.clone(), reason });
                    self.reroute_current(sid, now, Trigger::AgentLeft, NONE, out);
                }
            }
        }
        if status == AgentStatus::Online {
            self.drain_for_agent(a, now, out);
        }
    }

    /// Moves a personal-lane waiter (sticky or transfer) to its normal path.
    fn release_personal(&mut self, sid: SessionId, now: i64, out: &mut Vec<Action>) {
        let Some(s) = self.sessions.get(&sid) else { return };
        let (wait, exclude) = (s.wait, s.exclude);
        self.detach(sid);
        if wait == Wait::Sticky {
            let Some(s) = self.sessions.get(&sid) else { return };
            let route = Route { rule: s.rule, target: 0, pinned: None };
            self.route_and_apply(sid, route, NONE, now, Trigger::StickyExpired, Vec::new(), out);
        } else {
            self.reroute_current(sid, now, Trigger::TransferWaitExpired, exclude, out);
        }
    }

    /// Routes a detached session again from where it was (its current target or pinned group).
    fn reroute_current(&mut self, sid: SessionId, now: i64, trigger: Trigger, exclude: u32, out: &mut Vec<Action>) {
        let Some(s) = self.sessions.get(&sid) else { return };
        let route = if s.pinned {
            Route { rule: s.rule, target: 0, pinned: Some(s.group) }
        } else {
            Route { rule: s.rule, target: s.target, pinned: None }
        };
        self.route_and_apply(sid, route, exclude, now, trigger, Vec::new(), out);
    }

    // ----- internals: sessions and lanes ------------------------------------------------

    fn facts(&mut self, c: &Conversation) -> (Facts, String) {
        let (category, why) = self.cfg.categorize(&c.text, c.has_open_refund);
        let mut tags: Vec<u32> = c.tags.iter().map(|t| self.strings.intern(t)).collect();
        tags.sort_unstable();
        tags.dedup();
        let facts = Facts {
            platform: self.strings.intern(&c.platform),
            shop: self.strings.intern(&c.shop),
            vip: c.vip_level,
            fans: c.fans_level,
            open_refund: c.has_open_refund,
            returning: c.returning || c.last_agent.is_some(),
            category,
            tags: tags.into_boxed_slice(),
        };
        (facts, why)
    }

    fn new_sess(&self, facts: Facts, rule: Option<u16>, priority: i32, enqueued_at: i64) -> Sess {
        let key = enqueued_at.saturating_sub(i64::from(priority).saturating_mul(self.cfg.settings.ms_per_point));
        Sess {
            facts,
            rule,
            target: 0,
            group: 0,
            min_prof: 1,
            pinned: false,
            priority,
            enqueued_at,
            key,
            place: Place::Detached,
            wait: Wait::Queued,
            deadline: i64::MAX,
            exclude: NONE,
            handover: None,
        }
    }

    fn targets(&self, rule: Option<u16>, pinned: Option<u16>) -> Vec<Target> {
        if let Some(group) = pinned {
            return vec![Target { group, wait_ms: 0, min_prof: 1 }];
        }
        match rule.and_then(|r| self.cfg.rules.get(r as usize)) {
            Some(r) => r.targets.clone(),
            None => self.cfg.fallback.into_iter().collect(),
        }
    }

    fn set_deadline(&mut self, sid: SessionId, at: i64) {
        let Some(s) = self.sessions.get_mut(&sid) else { return };
        if s.deadline != i64::MAX {
            self.deadlines.remove(&(s.deadline, sid));
        }
        s.deadline = at;
        if at != i64::MAX {
            self.deadlines.insert((at, sid));
        }
    }

    fn lane_id(&mut self, key: LaneKey) -> u32 {
        if let Some(&l) = self.lane_ix.get(&key) {
            return l;
        }
        let lane = Lane { key, root: NIL };
        let id = match self.free_lanes.pop() {
            Some(id) => {
                self.lanes[id as usize] = lane;
                id
            }
            None => {
                self.lanes.push(lane);
                (self.lanes.len() - 1) as u32
            }
        };
        self.lane_ix.insert(key, id);
        id
    }

    fn lane_insert(&mut self, l: u32, key: Key) {
        let lane = &mut self.lanes[l as usize];
        let was_empty = lane.root == NIL;
        lane.root = self.arena.insert(lane.root, key);
        if let LaneKey::Group { group, .. } = lane.key {
            self.groups[group as usize].queued += 1;
            if was_empty {
                self.group_lanes[group as usize].insert(l);
            }
        }
    }

    fn lane_remove(&mut self, l: u32, key: Key) {
        let Some(lane) = self.lanes.get_mut(l as usize) else { return };
        let (root, removed) = self.arena.remove(lane.root, key);
        lane.root = root;
        let lane_key = lane.key;
        if removed && let LaneKey::Group { group, .. } = lane_key {
            let g = &mut self.groups[group as usize];
            g.queued = g.queued.saturating_sub(1);
        }
        if root == NIL {
            if let LaneKey::Group { group, .. } = lane_key {
                self.group_lanes[group as usize].remove(&l);
            }
            self.lane_ix.remove(&lane_key);
            self.free_lanes.push(l);
        }
    }

    /// Takes a session out of its lane or off its agent (counters updated, no drain).
    fn detach(&mut self, sid: SessionId) {
        let Some(s) = self.sessions.get(&sid) else { return };
        let (place, key) = (s.place, (s.key, sid));
        self.set_deadline(sid, i64::MAX);
        match place {
            Place::Lane(l) => self.lane_remove(l, key),
            Place::Agent { agent, .. } => {
                let live = &mut self.agents[agent as usize];
                live.active = live.active.saturating_sub(1);
                if let Some(p) = live.sessions.iter().position(|x| *x == sid) {
                    live.sessions.swap_remove(p);
                }
                self.reindex(agent);
            }
            Place::Detached => {}
        }
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.place = Place::Detached;
        }
    }

    /// A waiting session's position: 1 + entries ahead of it in its group (or agent's lane).
    fn position(&self, sid: SessionId) -> u32 {
        let Some(s) = self.sessions.get(&sid) else { return 0 };
        let Place::Lane(l) = s.place else { return 0 };
        let key = (s.key, sid);
        match self.lanes.get(l as usize).map(|l| l.key) {
            Some(LaneKey::Group { group, .. }) => {
                1 + self.group_lanes[group as usize]
                    .iter()
                    .map(|&x| self.arena.rank(self.lanes[x as usize].root, key))
                    .sum::<u32>()
            }
            Some(LaneKey::Agent(_)) => 1 + self.arena.rank(self.lanes[l as usize].root, key),
            None => 0,
        }
    }

    fn wait_state(&self, s: &Sess) -> WaitState {
        let lane = match s.place {
            Place::Lane(l) => self.lanes.get(l as usize).map(|l| l.key),
            _ => None,
        };
        match (s.wait, lane) {
            (Wait::Sticky | Wait::ForTransfer, Some(LaneKey::Agent(a))) => WaitState::ForAgent {
                agent: self.cfg.agents.get(a as usize).map(|d| d.id.clone()).unwrap_or_default(),
                until: s.deadline,
            },
            _ => {
                let g = s.group as usize;
                if !self.cfg.groups[g].calendar.is_open(self.now) {
                    WaitState::OffHours { opens_at: self.cfg.groups[g].calendar.next_open(self.now) }
                } else if s.wait == Wait::Overflow {
                    WaitState::Overflow
                } else {
                    WaitState::Queued
                }
            }
        }
    }

    fn estimate_s(&self, g: u16, position: u32, now: i64) -> u64 {
        let live = &self.groups[g as usize];
        let per = live.handle_ms.max(1000) as u128 * u128::from(position);
        let cap = u128::from(live.online_cap.max(1));
        let mut ms = (per / cap) as i64;
        let cal = &self.cfg.groups[g as usize].calendar;
        if !cal.is_open(now) {
            ms = ms.saturating_add(cal.next_open(now).map_or(0, |o| o.saturating_sub(now)));
        }
        (ms.max(0) as u64).div_ceil(1000)
    }

    // ----- planning ---------------------------------------------------------------------

    fn base_decision(
        &self,
        sid: SessionId,
        s_facts: &Facts,
        rule: Option<u16>,
        now: i64,
        trigger: Trigger,
    ) -> Decision {
        let rule_ref = rule
            .and_then(|r| self.cfg.rules.get(r as usize).map(|x| (r, x)))
            .map(|(r, x)| RuleRef { index: usize::from(r), name: x.name.clone() });
        Decision {
            at: now,
            session: sid,
            trigger,
            priority: rule.and_then(|r| self.cfg.rules.get(r as usize)).map_or(0, |x| x.priority),
            rule: rule_ref,
            rules_skipped: Vec::new(),
            category: self.cfg.category_id(s_facts.category).to_owned(),
            category_why: "decided at arrival".into(),
            group: String::new(),
            target: 0,
            policy: Policy::LeastLoad,
            sticky: None,
            candidates: Vec::new(),
            members: 0,
            members_online: 0,
            members_with_room: 0,
            chosen: None,
            wait: None,
            why: String::new(),
            handover: None,
            path: Vec::new(),
        }
    }

    /// Fills the decision's group, candidates, chosen agent and reason.
    #[allow(clippy::too_many_arguments)]
    fn describe_group(
        &self,
        d: &mut Decision,
        g: u16,
        shop: u32,
        min_prof: u8,
        exclude: u32,
        chosen: Option<u32>,
        now: i64,
    ) {
        let group = &self.cfg.groups[g as usize];
        let live = &self.groups[g as usize];
        d.group = group.id.clone();
        d.policy = group.policy;
        d.members = group.members.len();
        d.members_online = live.online as usize;
        d.members_with_room = live.with_room as usize;
        let candidate = |a: u32| {
            let (eligibility, proficiency) = self.eligibility(a, g, shop, min_prof, exclude);
            Candidate {
                agent: self.cfg.agents[a as usize].id.clone(),
                name: self.cfg.agents[a as usize].name.clone(),
                eligibility,
                active: self.agents[a as usize].active,
                cap: self.cap(a),
                proficiency,
            }
        };
        let ranked: Vec<(u8, AgentKey)> = if self.full_decisions {
            let mut v: Vec<(u8, AgentKey)> = group
                .members
                .iter()
                .filter(|(a, _)| self.eligibility(*a, g, shop, min_prof, exclude).0 == Eligibility::Eligible)
                .map(|&(a, p)| (p, key_of(group.policy, self.snapshot(a), a)))
                .collect();
            sort_candidates(group.policy, &mut v);
            v
        } else {
            self.top_agents(g, shop, min_prof, exclude, self.cfg.settings.candidates.max(2))
        };
        d.candidates = ranked.iter().map(|(_, k)| candidate(k.agent)).collect();
        if self.full_decisions {
            d.candidates.extend(
                group
                    .members
                    .iter()
                    .filter(|(a, _)| self.eligibility(*a, g, shop, min_prof, exclude).0 != Eligibility::Eligible)
                    .map(|&(a, _)| candidate(a)),
            );
            // Agents at work in other groups: the ones an operator may have expected here.
            d.candidates.extend(
                (0..self.agents.len() as u32)
                    .filter(|&a| matches!(self.agents[a as usize].status, AgentStatus::Online | AgentStatus::Busy))
                    .filter(|&a| self.cfg.agents[a as usize].proficiency(g).is_none())
                    .map(candidate),
            );
        } else {
            // Nobody eligible: say why for the first few members (bounded work).
            let k = self.cfg.settings.candidates;
            if d.candidates.is_empty() {
                d.candidates = group.members.iter().take(k).map(|&(a, _)| candidate(a)).collect();
            }
            d.candidates.truncate(k);
        }
        if let Some(a) = chosen {
            d.chosen = Some(self.cfg.agents[a as usize].id.clone());
            d.why = self.why_chosen(group.policy, &ranked, a);
        } else {
            let online = live.online;
            d.why = if !group.calendar.is_open(now) {
                "the group is closed".to_owned()
            } else if online == 0 {
                "no member is online".to_owned()
            } else {
                format!(
                    "no eligible agent has room ({} members, {online} online, {} with room)",
                    d.members, live.with_room
                )
            };
        }
    }

    fn snapshot(&self, a: u32) -> Snapshot {
        let l = &self.agents[a as usize];
        Snapshot { active: l.active, cap: self.cap(a), idle_since: l.idle_since, rr: l.rr }
    }

    fn why_chosen(&self, policy: Policy, ranked: &[(u8, AgentKey)], a: u32) -> String {
        let name = |a: u32| self.cfg.agents[a as usize].id.as_str();
        let me = ranked.iter().find(|(_, k)| k.agent == a);
        let next = ranked.iter().find(|(_, k)| k.agent != a);
        let (Some((my_prof, me)), Some((next_prof, next))) = (me, next) else {
            return "the only agent with room".to_owned();
        };
        let time = |t: i64| huiliu_sdk::time::beijing_datetime(t).get(11..).unwrap_or_default().to_owned();
        match policy {
            Policy::RoundRobin => format!("round robin: assigned least recently (next in turn: {})", name(next.agent)),
            Policy::ProficiencyFirst if my_prof != next_prof => {
                format!("highest proficiency {my_prof} (next: {} with {next_prof})", name(next.agent))
            }
            _ => {
                let prefix = if policy == Policy::ProficiencyFirst {
                    format!("proficiency {my_prof} like {}; ", name(next.agent))
                } else {
                    String::new()
                };
                let (ml, nl) = (self.load_of(me), self.load_of(next));
                if me.load == next.load {
                    format!(
                        "{prefix}least load {} tied with {} {}, broken by idle time (idle since {} vs {})",
                        ml,
                        name(next.agent),
                        nl,
                        time(me.tie),
                        time(next.tie)
                    )
                } else {
                    format!("{prefix}least load {ml} (next: {} {nl})", name(next.agent))
                }
            }
        }
    }

    fn load_of(&self, k: &AgentKey) -> String {
        let l = &self.agents[k.agent as usize];
        format!("{}/{}", l.active, self.cap(k.agent))
    }

    fn plan_arrival(&self, conv: &Conversation, facts: &Facts, category_why: String, now: i64) -> Plan {
        let (rule, skipped) = if self.full_decisions {
            let (r, s) = self.cfg.match_rule(facts, &self.strings);
            (r.map(|r| r as u16), s)
        } else {
            (self.cfg.first_rule(facts).map(|r| r as u16), Vec::new())
        };
        let mut sticky_note = None;
        if let Some(last) = &conv.last_agent {
            match self.plan_sticky(conv.session, last, conv.last_agent_at, facts, rule, now) {
                Ok(mut plan) => {
                    plan.decision.category_why = category_why;
                    plan.decision.rules_skipped = skipped;
                    return plan;
                }
                Err(note) => sticky_note = Some(note),
            }
        }
        let mut plan = self.plan_route(
            conv.session,
            facts,
            Route { rule, target: 0, pinned: None },
            NONE,
            now,
            Trigger::Arrival,
            Vec::new(),
        );
        plan.decision.category_why = category_why;
        plan.decision.rules_skipped = skipped;
        plan.decision.sticky = sticky_note;
        plan
    }

    /// Sticky routing: back to the last agent, or a short wait for them. `Err` says why not.
    fn plan_sticky(
        &self,
        sid: SessionId,
        last: &str,
        last_at: Option<i64>,
        facts: &Facts,
        rule: Option<u16>,
        now: i64,
    ) -> Result<Plan, String> {
        let s = &self.cfg.settings;
        if s.sticky_ttl_ms == 0 {
            return Err("sticky routing is off (sticky_ttl_s = 0)".into());
        }
        if rule.and_then(|r| self.cfg.rules.get(r as usize)).is_some_and(|r| !r.sticky) {
            return Err("the rule turns sticky routing off".into());
        }
        let Some(&a) = self.cfg.agent_ix.get(last) else {
            return Err(format!("last agent {last} is not in the configuration"));
        };
        if let Some(at) = last_at
            && now.saturating_sub(at) > s.sticky_ttl_ms
        {
            return Err(format!("last agent {last} served this buyer more than {} s ago", s.sticky_ttl_ms / 1000));
        }
        let def = &self.cfg.agents[a as usize];
        // Only the rule's primary group: later targets are overflow, not where the buyer belongs.
        let targets = self.targets(rule, None);
        let Some(&t) = targets.first() else { return Err("the rule has no target".into()) };
        let ti = 0;
        if def.proficiency(t.group).is_none() {
            let g = &self.cfg.groups[t.group as usize].id;
            return Err(format!("last agent {last} is not in the rule's first group {g}"));
        }
        if !def.serves(facts.shop) {
            return Err(format!("last agent {last} does not serve this shop"));
        }
        let live = &self.agents[a as usize];
        let mut d = self.base_decision(sid, facts, rule, now, Trigger::Arrival);
        d.target = ti;
        d.group = self.cfg.groups[t.group as usize].id.clone();
        d.policy = self.cfg.groups[t.group as usize].policy;
        let (eligibility, proficiency) = self.eligibility(a, t.group, facts.shop, 1, NONE);
        d.candidates = vec![Candidate {
            agent: def.id.clone(),
            name: def.name.clone(),
            eligibility,
            active: live.active,
            cap: self.cap(a),
            proficiency,
        }];
        let plan = |outcome, d| Plan {
            outcome,
            group: t.group,
            target: ti as u8,
            min_prof: t.min_prof,
            pinned: false,
            decision: d,
        };
        match eligibility {
            Eligibility::Eligible => {
                d.sticky = Some(format!("returning buyer: back to their last agent {last}"));
                d.chosen = Some(def.id.clone());
                d.why = format!("sticky: last agent {last} is online with room ({}/{})", live.active, self.cap(a));
                Ok(plan(Outcome::Assign(a), d))
            }
            Eligibility::AtCap { .. } | Eligibility::Busy if s.sticky_wait_ms > 0 => {
                d.sticky = Some(format!(
                    "returning buyer: waiting up to {} s for their last agent {last} ({eligibility})",
                    s.sticky_wait_ms / 1000
                ));
                d.why = format!("sticky wait for {last}");
                let until = now.saturating_add(s.sticky_wait_ms);
                d.wait = Some(WaitState::ForAgent { agent: def.id.clone(), until });
                Ok(plan(Outcome::Wait { lane: LaneKey::Agent(a), wait: Wait::Sticky, deadline: until }, d))
            }
            other => Err(format!("last agent {last} is {other}: normal routing")),
        }
    }

    /// Walks the targets from `route`: assign, wait, or overflow onwards.
    #[allow(clippy::too_many_arguments)]
    fn plan_route(
        &self,
        sid: SessionId,
        facts: &Facts,
        route: Route,
        exclude: u32,
        now: i64,
        trigger: Trigger,
        mut path: Vec<String>,
    ) -> Plan {
        let targets = self.targets(route.rule, route.pinned);
        let mut d = self.base_decision(sid, facts, route.rule, now, trigger);
        if route.pinned.is_some() {
            path.push("transferred to the group".into());
        }
        let n = targets.len();
        let mut i = usize::from(route.target).min(n.saturating_sub(1));
        let pinned = route.pinned.is_some();
        let Some(_) = targets.get(i) else {
            // Impossible after validation (there is always a fallback); wait in group 0.
            d.why = "no target".into();
            return Plan {
                outcome: Outcome::Wait {
                    lane: LaneKey::Group { group: 0, shop: facts.shop, min_prof: 1, exclude },
                    wait: Wait::Queued,
                    deadline: i64::MAX,
                },
                group: 0,
                target: 0,
                min_prof: 1,
                pinned,
                decision: d,
            };
        };
        loop {
            let t = targets[i];
            let last = i + 1 >= n;
            let g = t.group;
            let gname = &self.cfg.groups[g as usize].id;
            let cal = &self.cfg.groups[g as usize].calendar;
            let mut serve = (g, t.min_prof, cal.is_open(now));
            if !serve.2
                && let Some(duty) = self.cfg.groups[g as usize].on_duty
                && self.cfg.groups[duty as usize].calendar.is_open(now)
            {
                path.push(format!("{gname} is closed: on-duty group {}", self.cfg.groups[duty as usize].id));
                serve = (duty, 1, true);
            }
            let (sg, min_prof, open) = serve;
            let done =
                move |outcome, d: Decision| Plan { outcome, group: sg, target: i as u8, min_prof, pinned, decision: d };
            d.target = i;
            if open {
                if let Some(a) = self.best_agent(sg, facts.shop, min_prof, exclude) {
                    self.describe_group(&mut d, sg, facts.shop, min_prof, exclude, Some(a), now);
                    d.path = path;
                    return done(Outcome::Assign(a), d);
                }
                if !last && t.wait_ms == 0 {
                    path.push(format!("nobody in {gname} has room and the target's wait is 0: next target"));
                    i += 1;
                    continue;
                }
                let queued = self.groups[sg as usize].queued;
                let limit = self.cfg.groups[sg as usize].queue_limit;
                let lane = LaneKey::Group { group: sg, shop: facts.shop, min_prof, exclude };
                if limit.is_none_or(|l| queued < l) {
                    self.describe_group(&mut d, sg, facts.shop, min_prof, exclude, None, now);
                    d.path = path;
                    d.wait = Some(WaitState::Queued);
                    let deadline = if last || pinned { i64::MAX } else { now.saturating_add(t.wait_ms) };
                    return done(Outcome::Wait { lane, wait: Wait::Queued, deadline }, d);
                }
                let l = limit.unwrap_or(0);
                if !last {
                    path.push(format!("the queue of {gname} is full ({queued}/{l}): next target"));
                    i += 1;
                    continue;
                }
                self.describe_group(&mut d, sg, facts.shop, min_prof, exclude, None, now);
                d.why = format!("{}; the queue is full ({queued}/{l}): kept, served in turn", d.why);
                d.path = path;
                d.wait = Some(WaitState::Overflow);
                return done(Outcome::Wait { lane, wait: Wait::Overflow, deadline: i64::MAX }, d);
            }
            if !last && t.wait_ms == 0 {
                path.push(format!("{gname} is closed and the target's wait is 0: next target"));
                i += 1;
                continue;
            }
            let opens = cal.next_open(now);
            self.describe_group(&mut d, g, facts.shop, t.min_prof, exclude, None, now);
            d.path = path;
            d.wait = Some(WaitState::OffHours { opens_at: opens });
            let deadline =
                if last || pinned { i64::MAX } else { opens.map_or(i64::MAX, |o| o.saturating_add(t.wait_ms)) };
            let lane = LaneKey::Group { group: g, shop: facts.shop, min_prof: t.min_prof, exclude };
            return Plan {
                outcome: Outcome::Wait { lane, wait: Wait::Queued, deadline },
                group: g,
                target: i as u8,
                min_prof: t.min_prof,
                pinned,
                decision: d,
            };
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn route_and_apply(
        &mut self,
        sid: SessionId,
        route: Route,
        exclude: u32,
        now: i64,
        trigger: Trigger,
        path: Vec<String>,
        out: &mut Vec<Action>,
    ) {
        let Some(s) = self.sessions.get(&sid) else { return };
        let plan = self.plan_route(sid, &s.facts, route, exclude, now, trigger, path);
        self.apply(sid, plan, now, trigger, out);
    }

    /// Carries out a plan for a detached session.
    fn apply(&mut self, sid: SessionId, mut plan: Plan, now: i64, trigger: Trigger, out: &mut Vec<Action>) {
        let Some(s) = self.sessions.get_mut(&sid) else { return };
        s.group = plan.group;
        s.target = plan.target;
        s.min_prof = plan.min_prof;
        s.pinned = plan.pinned;
        plan.decision.handover = s.handover.as_deref().cloned();
        let gi = plan.group as usize;
        let notify = !matches!(trigger, Trigger::Reload | Trigger::Restore);
        match plan.outcome {
            Outcome::Assign(a) => {
                s.exclude = NONE;
                s.handover = None;
                s.place = Place::Agent { agent: a, since: now, responded: false };
                #[cfg(test)]
                if !self.available(a) {
                    let l = &self.agents[a as usize];
                    let v = format!("assigned {sid} to agent {a} ({} {}/{})", l.status, l.active, self.cap(a));
                    self.violations.push(v);
                }
                let live = &mut self.agents[a as usize];
                live.active += 1;
                live.sessions.push(sid);
                live.idle_since = now;
                live.rr = self.counter;
                self.counter += 1;
                self.reindex(a);
                let respond_by = now.saturating_add(self.cfg.settings.response_ms);
                self.set_deadline(sid, respond_by);
                let def = &self.cfg.agents[a as usize];
                let group = &self.cfg.groups[gi];
                let welcome = (trigger == Trigger::Arrival && !group.messages.welcome.is_empty())
                    .then(|| render(&group.messages.welcome, &[("agent", &def.name), ("group", &group.name)]));
                out.push(Action::Assign {
                    session: sid,
                    agent: def.id.clone(),
                    respond_by,
                    decision: Box::new(plan.decision),
                });
                if let Some(text) = welcome {
                    out.push(Action::NotifyBuyer { session: sid, text });
                }
            }
            Outcome::Wait { lane, wait, deadline } => {
                if let LaneKey::Group { exclude, .. } = lane {
                    s.exclude = exclude;
                }
                s.wait = wait;
                let key = (s.key, sid);
                let l = self.lane_id(lane);
                self.lane_insert(l, key);
                if let Some(s) = self.sessions.get_mut(&sid) {
                    s.place = Place::Lane(l);
                }
                self.set_deadline(sid, deadline);
                let position = self.position(sid);
                let Some(s) = self.sessions.get(&sid) else { return };
                let state = self.wait_state(s);
                let group = &self.cfg.groups[gi];
                let estimate_s = match &state {
                    WaitState::ForAgent { until, .. } => (until.saturating_sub(now).max(0) as u64).div_ceil(1000),
                    _ => self.estimate_s(plan.group, position, now),
                };
                let text = match &state {
                    WaitState::ForAgent { .. } => None,
                    WaitState::Queued => {
                        let minutes = estimate_s.div_ceil(60).max(1).to_string();
                        let position = position.to_string();
                        let vars =
                            [("position", position.as_str()), ("wait_minutes", &minutes), ("group", &group.name)];
                        Some(render(&group.messages.queue_position, &vars))
                    }
                    WaitState::OffHours { opens_at } => {
                        let open_time = opens_at
                            .map_or_else(|| "另行通知".to_owned(), |o| super::calendar::describe_open_time(now, o));
                        Some(render(&group.messages.off_hours, &[("group", &group.name), ("open_time", &open_time)]))
                    }
                    WaitState::Overflow => Some(render(&group.messages.overflow, &[("group", &group.name)])),
                };
                plan.decision.wait = Some(state.clone());
                out.push(Action::Queue {
                    session: sid,
                    group: group.id.clone(),
                    wait: state,
                    position,
                    estimate_s,
                    decision: Box::new(plan.decision),
                });
                if let Some(text) = text.filter(|t| notify && !t.is_empty()) {
                    out.push(Action::NotifyBuyer { session: sid, text });
                }
            }
        }
    }

    // ----- deadlines --------------------------------------------------------------------

    fn on_deadline(&mut self, sid: SessionId, at: i64, out: &mut Vec<Action>) {
        let Some(s) = self.sessions.get(&sid) else { return };
        match s.place {
            Place::Lane(l) => match self.lanes.get(l as usize).map(|l| l.key) {
                Some(LaneKey::Agent(_)) => self.release_personal(sid, at, out),
                Some(LaneKey::Group { .. }) => {
                    let n = self.targets(s.rule, None).len();
                    if s.pinned || usize::from(s.target) + 1 >= n {
                        return;
                    }
                    let waited = at.saturating_sub(s.enqueued_at) / 1000;
                    let from = self.cfg.groups[s.group as usize].id.clone();
                    let route = Route { rule: s.rule, target: s.target + 1, pinned: None };
                    let exclude = s.exclude;
                    self.detach(sid);
                    let path = vec![format!("waited at {from} (in queue {waited} s): overflow to the next target")];
                    self.route_and_apply(sid, route, exclude, at, Trigger::Overflow, path, out);
                }
                None => {}
            },
            Place::Agent { agent, since, responded: false } => self.first_response_timeout(sid, agent, since, at, out),
            Place::Agent { .. } | Place::Detached => {}
        }
    }

    fn first_response_timeout(&mut self, sid: SessionId, agent: u32, since: i64, at: i64, out: &mut Vec<Action>) {
        let Some(s) = self.sessions.get(&sid) else { return };
        let (g, shop) = (s.group, s.facts.shop);
        let agent_id = self.cfg.agents[agent as usize].id.clone();
        let Some(other) = self.best_agent(g, shop, 1, agent) else {
            // Re-armed from the present, so a long silence yields one alert, not one per limit.
            self.set_deadline(sid, at.max(self.horizon).saturating_add(self.cfg.settings.response_ms));
            out.push(Action::FirstResponseOverdue { session: sid, agent: agent_id, assigned_at: since });
            return;
        };
        let rule = s.rule;
        let mut d = self.base_decision(sid, &s.facts, rule, at, Trigger::FirstResponseTimeout);
        d.target = usize::from(s.target);
        d.path = vec![format!("{agent_id} did not answer within {} s", self.cfg.settings.response_ms / 1000)];
        self.detach(sid);
        out.push(Action::Unassign { session: sid, agent: agent_id, reason: UnassignReason::NoFirstResponse });
        self.describe_group(&mut d, g, shop, 1, agent, Some(other), at);
        let (target, pinned) = self.sessions.get(&sid).map_or((0, false), |s| (s.target, s.pinned));
        let plan = Plan { outcome: Outcome::Assign(other), group: g, target, min_prof: 1, pinned, decision: d };
        self.apply(sid, plan, at, Trigger::FirstResponseTimeout, out);
        self.drain_for_agent(agent, at, out);
    }

    // ----- transfer ---------------------------------------------------------------------

    fn do_transfer(
        &mut self,
        sid: SessionId,
        to: TransferTo,
        note: HandoverNote,
        now: i64,
        out: &mut Vec<Action>,
    ) -> Result<(), RouterError> {
        let s = self.sessions.get(&sid).ok_or(RouterError::UnknownSession(sid))?;
        let from = match s.place {
            Place::Agent { agent, .. } => Some(agent),
            _ => None,
        };
        let shop = s.facts.shop;
        let from_id = from.map(|a| self.cfg.agents[a as usize].id.clone());
        match &to {
            TransferTo::Agent(id) => {
                let a = self.agent_ix(id)?;
                if from == Some(a) {
                    return Err(RouterError::SameAgent(id.clone()));
                }
                if !self.cfg.agents[a as usize].serves(shop) {
                    return Err(RouterError::AgentNotServingShop(id.clone(), self.strings.name(shop).to_owned()));
                }
                let status = self.agents[a as usize].status;
                if !matches!(status, AgentStatus::Online | AgentStatus::Busy) {
                    return Err(RouterError::AgentUnavailable(id.clone(), status));
                }
            }
            TransferTo::Group(name) => {
                let g = *self.cfg.group_ix.get(name).ok_or_else(|| RouterError::UnknownGroup(name.clone()))?;
                let someone = self.cfg.groups[g as usize]
                    .members
                    .iter()
                    .any(|&(a, _)| Some(a) != from && self.cfg.agents[a as usize].serves(shop));
                if !someone {
                    return Err(RouterError::NobodyElse(name.clone()));
                }
            }
        }
        // Checks done: from here on nothing fails.
        self.detach(sid);
        if let Some(a) = &from_id {
            out.push(Action::Unassign { session: sid, agent: a.clone(), reason: UnassignReason::Transfer });
        }
        let exclude = from.unwrap_or(NONE);
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.handover = Some(Box::new(Handover { from_agent: from_id, note }));
        }
        match to {
            TransferTo::Agent(id) => {
                let a = self.agent_ix(&id).unwrap_or(0);
                let Some(s) = self.sessions.get(&sid) else { return Ok(()) };
                let mut d = self.base_decision(sid, &s.facts, s.rule, now, Trigger::Transfer);
                let g = s.group;
                d.target = usize::from(s.target);
                let (group, target, min_prof, pinned) = (s.group, s.target, s.min_prof, s.pinned);
                d.group = self.cfg.groups[g as usize].id.clone();
                let def = &self.cfg.agents[a as usize];
                let (eligibility, proficiency) = self.eligibility(a, g, shop, 1, exclude);
                let live = &self.agents[a as usize];
                d.candidates = vec![Candidate {
                    agent: def.id.clone(),
                    name: def.name.clone(),
                    eligibility,
                    active: live.active,
                    cap: self.cap(a),
                    proficiency,
                }];
                let outcome = if self.available(a) {
                    d.chosen = Some(id.clone());
                    d.why = format!("transferred to {id} by name");
                    Outcome::Assign(a)
                } else {
                    let until = now.saturating_add(self.cfg.settings.transfer_wait_ms);
                    d.why = format!(
                        "transferred to {id}, who is {}: waiting up to {} s, then the group",
                        if live.status == AgentStatus::Busy {
                            "busy".to_owned()
                        } else {
                            format!("at cap {}/{}", live.active, self.cap(a))
                        },
                        self.cfg.settings.transfer_wait_ms / 1000
                    );
                    Outcome::Wait { lane: LaneKey::Agent(a), wait: Wait::ForTransfer, deadline: until }
                };
                if let Some(s) = self.sessions.get_mut(&sid) {
                    s.exclude = exclude;
                }
                let plan = Plan { outcome, group, target, min_prof, pinned, decision: d };
                self.apply(sid, plan, now, Trigger::Transfer, out);
            }
            TransferTo::Group(name) => {
                let g = self.cfg.group_ix.get(&name).copied().unwrap_or(0);
                let rule = self.sessions.get(&sid).and_then(|s| s.rule);
                let route = Route { rule, target: 0, pinned: Some(g) };
                self.route_and_apply(sid, route, exclude, now, Trigger::Transfer, Vec::new(), out);
            }
        }
        if let Some(a) = from {
            self.drain_for_agent(a, now, out);
        }
        Ok(())
    }

    // ----- draining ---------------------------------------------------------------------

    fn drain_for_agent(&mut self, a: u32, now: i64, out: &mut Vec<Action>) {
        if !self.available(a) {
            return;
        }
        let groups: Vec<u16> = self.cfg.agents[a as usize].groups.iter().map(|(g, _)| *g).collect();
        self.drain(&groups, &[a], now, out);
    }

    /// Gives free capacity to waiting conversations, most urgent first, until no waiting
    /// conversation in `groups` (or in the personal lanes of `agents`) can be served. Each
    /// step picks the most urgent lane head that some agent can take, and gives it to the
    /// best such agent by policy, so several free agents take turns (least loaded first).
    fn drain(&mut self, groups: &[u16], agents: &[u32], now: i64, out: &mut Vec<Action>) {
        loop {
            let mut best: Option<(Key, u32, u32)> = None;
            for &g in groups {
                if !self.cfg.groups.get(g as usize).is_some_and(|x| x.calendar.is_open(now)) {
                    continue;
                }
                for &l in &self.group_lanes[g as usize] {
                    let lane = &self.lanes[l as usize];
                    let Some(head) = self.arena.first(lane.root) else { continue };
                    if best.is_some_and(|b| b.0 <= head) {
                        continue;
                    }
                    if let LaneKey::Group { group, shop, min_prof, exclude } = lane.key
                        && let Some(agent) = self.best_agent(group, shop, min_prof, exclude)
                    {
                        best = Some((head, l, agent));
                    }
                }
            }
            for &a in agents {
                if !self.available(a) {
                    continue;
                }
                let Some(&l) = self.lane_ix.get(&LaneKey::Agent(a)) else { continue };
                let Some(head) = self.arena.first(self.lanes[l as usize].root) else { continue };
                if best.is_none_or(|b| head < b.0) {
                    best = Some((head, l, a));
                }
            }
            let Some(((_, sid), l, agent)) = best else { break };
            #[cfg(test)]
            self.oracle_most_urgent(sid, agent, now);
            let Some(s) = self.sessions.get(&sid) else {
                // Defensive: an orphan key; drop it so the loop ends.
                self.lane_remove(l, best.map_or((0, 0), |b| b.0));
                continue;
            };
            let (g, shop, min_prof, exclude, target, pinned) =
                (s.group, s.facts.shop, s.min_prof, s.exclude, s.target, s.pinned);
            let personal = matches!(self.lanes.get(l as usize).map(|x| x.key), Some(LaneKey::Agent(_)));
            let mut d = self.base_decision(sid, &s.facts, s.rule, now, Trigger::Drain);
            d.target = usize::from(target);
            let waited = now.saturating_sub(s.enqueued_at) / 1000;
            if personal {
                let who = self.cfg.agents[agent as usize].id.clone();
                let (eligibility, proficiency) = self.eligibility(agent, g, shop, 1, NONE);
                d.group = self.cfg.groups[g as usize].id.clone();
                d.candidates = vec![Candidate {
                    agent: who.clone(),
                    name: self.cfg.agents[agent as usize].name.clone(),
                    eligibility,
                    active: self.agents[agent as usize].active,
                    cap: self.cap(agent),
                    proficiency,
                }];
                d.chosen = Some(who.clone());
                d.why = format!("{who}, whom it was waiting for, has room now (waited {waited} s)");
            } else {
                self.describe_group(&mut d, g, shop, min_prof, exclude, Some(agent), now);
                d.why = format!("capacity freed after {waited} s waiting: {}", d.why);
            }
            self.detach(sid);
            let plan = Plan { outcome: Outcome::Assign(agent), group: g, target, min_prof, pinned, decision: d };
            self.apply(sid, plan, now, Trigger::Drain, out);
        }
    }

    // ----- reload and restore -----------------------------------------------------------

    fn carry_agents(&mut self, old: &Engine) {
        for (i, def) in self.cfg.agents.iter().enumerate() {
            if let Some(&oa) = old.cfg.agent_ix.get(&def.id) {
                let o = &old.agents[oa as usize];
                let live = &mut self.agents[i];
                live.status = o.status;
                live.cap_override = o.cap_override;
                live.idle_since = o.idle_since;
                live.rr = o.rr;
            }
        }
        self.recount();
    }

    /// A session of the old configuration, re-derived for this one (place kept for reference).
    fn reseed(&self, old: &Compiled, mut s: Sess) -> Sess {
        let cat = old.categories.get(s.facts.category as usize).map(|c| c.id.as_str());
        s.facts.category = cat
            .and_then(|id| self.cfg.categories.iter().position(|c| c.id == id))
            .map_or(self.cfg.default_category, |i| i as u16);
        let old_group = old.groups.get(s.group as usize).map(|g| g.id.as_str()).unwrap_or("");
        let new_group = self.cfg.group_ix.get(old_group).copied();
        let rule = self.cfg.first_rule(&s.facts).map(|r| r as u16);
        let priority = rule.and_then(|r| self.cfg.rules.get(r as usize)).map_or(0, |r| r.priority);
        s.priority = priority;
        s.key = s.enqueued_at.saturating_sub(i64::from(priority).saturating_mul(self.cfg.settings.ms_per_point));
        s.rule = rule;
        s.exclude = match s.exclude {
            NONE => NONE,
            e => old.agents.get(e as usize).and_then(|d| self.cfg.agent_ix.get(&d.id).copied()).unwrap_or(NONE),
        };
        let targets = self.targets(rule, None);
        match (s.pinned, new_group) {
            (true, Some(g)) => {
                s.group = g;
                s.min_prof = 1;
            }
            _ => {
                s.pinned = false;
                let at = new_group.and_then(|g| targets.iter().position(|t| t.group == g));
                let t = at.unwrap_or(0);
                s.target = t as u8;
                if let Some(tg) = targets.get(t) {
                    s.group = tg.group;
                    s.min_prof = tg.min_prof;
                } else {
                    s.group = 0;
                    s.min_prof = 1;
                }
            }
        }
        s
    }

    fn place_assigned(&mut self, id: SessionId, mut s: Sess, a: u32) {
        let (since, responded) = match s.place {
            Place::Agent { since, responded, .. } => (since, responded),
            _ => (self.now, false),
        };
        let deadline = if responded { i64::MAX } else { since.saturating_add(self.cfg.settings.response_ms) };
        s.place = Place::Agent { agent: a, since, responded };
        s.deadline = i64::MAX;
        self.sessions.insert(id, s);
        let live = &mut self.agents[a as usize];
        live.active += 1;
        live.sessions.push(id);
        self.reindex(a);
        self.set_deadline(id, deadline);
    }

    /// Places re-derived waiting sessions (already sorted by key) in lanes without assigning,
    /// then drains everything, then reports the new group of those still waiting.
    fn place_waiting(
        &mut self,
        list: Vec<(SessionId, Sess, String, Option<u32>)>,
        now: i64,
        trigger: Trigger,
        out: &mut Vec<Action>,
    ) {
        let mut report = Vec::new();
        for (id, mut s, old_group, personal) in list {
            let old_deadline = s.deadline;
            s.place = Place::Detached;
            s.deadline = i64::MAX;
            let (lane, deadline) = match personal {
                Some(a) if matches!(s.wait, Wait::Sticky | Wait::ForTransfer) => (LaneKey::Agent(a), old_deadline),
                _ => {
                    if matches!(s.wait, Wait::Sticky | Wait::ForTransfer) {
                        s.wait = Wait::Queued;
                    }
                    let targets = self.targets(s.rule, None);
                    let last = s.pinned || usize::from(s.target) + 1 >= targets.len();
                    let same = self.cfg.groups.get(s.group as usize).is_some_and(|g| g.id == old_group);
                    let deadline = if last {
                        i64::MAX
                    } else if same && old_deadline != i64::MAX {
                        old_deadline
                    } else {
                        let wait = targets.get(usize::from(s.target)).map_or(0, |t| t.wait_ms);
                        let cal = &self.cfg.groups[s.group as usize].calendar;
                        cal.next_open(now).map_or(i64::MAX, |o| o.saturating_add(wait))
                    };
                    (
                        LaneKey::Group { group: s.group, shop: s.facts.shop, min_prof: s.min_prof, exclude: s.exclude },
                        deadline,
                    )
                }
            };
            let key = (s.key, id);
            let moved = self.cfg.groups.get(s.group as usize).is_none_or(|g| g.id != old_group);
            self.sessions.insert(id, s);
            let l = self.lane_id(lane);
            self.lane_insert(l, key);
            if let Some(s) = self.sessions.get_mut(&id) {
                s.place = Place::Lane(l);
            }
            self.set_deadline(id, deadline);
            if moved {
                report.push(id);
            }
        }
        let groups: Vec<u16> = (0..self.cfg.groups.len() as u16).collect();
        let agents: Vec<u32> = (0..self.cfg.agents.len() as u32).collect();
        self.drain(&groups, &agents, now, out);
        for id in report {
            let Some(s) = self.sessions.get(&id) else { continue };
            if !matches!(s.place, Place::Lane(_)) {
                continue;
            }
            let mut d = self.base_decision(id, &s.facts, s.rule, now, trigger);
            d.target = usize::from(s.target);
            let (g, shop, min_prof, exclude) = (s.group, s.facts.shop, s.min_prof, s.exclude);
            self.describe_group(&mut d, g, shop, min_prof, exclude, None, now);
            let wait = self.wait_state(s);
            d.wait = Some(wait.clone());
            let position = self.position(id);
            out.push(Action::Queue {
                session: id,
                group: self.cfg.groups[g as usize].id.clone(),
                wait,
                position,
                estimate_s: self.estimate_s(g, position, now),
                decision: Box::new(d),
            });
        }
    }

    // ----- dry runs ---------------------------------------------------------------------

    /// A throw-away router for a dry run: agents and queue lengths from `state`.
    pub(crate) fn for_dry_run(
        config: RoutingConfig,
        state: &RouterState,
        now: i64,
    ) -> Result<Engine, Vec<ConfigError>> {
        let mut r = Engine::new(config, now)?;
        r.full_decisions = true;
        for (i, def) in r.cfg.agents.iter().enumerate() {
            if let Some(st) = state.agents.get(&def.id) {
                let live = &mut r.agents[i];
                live.status = st.status;
                live.active = st.active;
                live.cap_override = st.max_sessions;
                live.idle_since = st.idle_since;
                live.rr = st.last_assigned;
            }
        }
        r.recount();
        for (g, def) in r.cfg.groups.iter().enumerate() {
            r.groups[g].queued = state.queued.get(&def.id).copied().unwrap_or(0);
        }
        Ok(r)
    }

    /// The decision an arrival would get, with every member listed; no side effects on `self`
    /// beyond interning the conversation's strings.
    pub(crate) fn dry_decision(&mut self, conv: &Conversation, now: i64) -> Decision {
        let (facts, why) = self.facts(conv);
        let mut plan = self.plan_arrival(conv, &facts, why, now);
        if let Outcome::Assign(_) = plan.outcome {
            plan.decision.wait = None;
        }
        plan.decision
    }

    // ----- invariants (tests) -----------------------------------------------------------

    /// Checks the engine's invariants; returns the first violation.
    #[cfg(test)]
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        let mut seen: HashMap<SessionId, &str> = HashMap::new();
        for (a, live) in self.agents.iter().enumerate() {
            if live.active as usize != live.sessions.len() {
                return Err(format!("agent {a}: active {} != {} sessions", live.active, live.sessions.len()));
            }
            for sid in &live.sessions {
                if seen.insert(*sid, "agent").is_some() {
                    return Err(format!("session {sid} twice"));
                }
                match self.sessions.get(sid).map(|s| s.place) {
                    Some(Place::Agent { agent, .. }) if agent as usize == a => {}
                    other => return Err(format!("session {sid} on agent {a} but place {other:?}")),
                }
            }
            let indexed = live.indexed.is_some();
            if indexed != self.available(a as u32) {
                return Err(format!("agent {a}: indexed {indexed} but available {}", self.available(a as u32)));
            }
        }
        let mut queued = vec![0u32; self.groups.len()];
        for (l, lane) in self.lanes.iter().enumerate() {
            if self.lane_ix.get(&lane.key).is_none_or(|x| *x as usize != l) {
                if lane.root != NIL {
                    return Err(format!("lane {l} not registered but not empty"));
                }
                continue;
            }
            for (key, sid) in self.arena.keys(lane.root) {
                if seen.insert(sid, "lane").is_some() {
                    return Err(format!("session {sid} twice"));
                }
                let Some(s) = self.sessions.get(&sid) else { return Err(format!("orphan {sid} in lane {l}")) };
                if s.place != Place::Lane(l as u32) || s.key != key {
                    return Err(format!("session {sid} in lane {l} but place {:?}", s.place));
                }
                if let LaneKey::Group { group, shop, min_prof, exclude } = lane.key {
                    queued[group as usize] += 1;
                    if (group, shop, min_prof, exclude) != (s.group, s.facts.shop, s.min_prof, s.exclude) {
                        return Err(format!("session {sid} in the wrong lane"));
                    }
                    // Work conservation.
                    if self.cfg.groups[group as usize].calendar.is_open(self.now)
                        && self.best_agent(group, shop, min_prof, exclude).is_some()
                    {
                        return Err(format!("session {sid} waits in {group} while an agent has room"));
                    }
                } else if let LaneKey::Agent(a) = lane.key
                    && self.available(a)
                {
                    return Err(format!("session {sid} waits for agent {a} who has room"));
                }
            }
        }
        for (g, live) in self.groups.iter().enumerate() {
            if live.queued != queued[g] {
                return Err(format!("group {g}: queued counter {} != {}", live.queued, queued[g]));
            }
            let with_room = self.cfg.groups[g].members.iter().filter(|(a, _)| self.available(*a)).count() as u32;
            if live.with_room != with_room {
                return Err(format!("group {g}: with_room {} != {with_room}", live.with_room));
            }
        }
        if seen.len() != self.sessions.len() {
            return Err(format!("{} sessions placed, {} known", seen.len(), self.sessions.len()));
        }
        for (id, s) in &self.sessions {
            if (s.deadline != i64::MAX) != self.deadlines.contains(&(s.deadline, *id)) {
                return Err(format!("session {id}: deadline not indexed"));
            }
        }
        if self.deadlines.len() != self.sessions.values().filter(|s| s.deadline != i64::MAX).count() {
            return Err("stray deadlines".into());
        }
        Ok(())
    }

    /// Brute force: no waiting conversation that `agent` could serve is more urgent than `sid`.
    #[cfg(test)]
    fn oracle_most_urgent(&mut self, sid: SessionId, agent: u32, now: i64) {
        let Some(chosen) = self.sessions.get(&sid).map(|s| s.key) else { return };
        let mut found = Vec::new();
        for (id, w) in &self.sessions {
            let Place::Lane(l) = w.place else { continue };
            if *id == sid || (w.key, *id) >= (chosen, sid) {
                continue;
            }
            let servable = match self.lanes[l as usize].key {
                LaneKey::Agent(a) => a == agent,
                LaneKey::Group { group, shop, min_prof, exclude } => {
                    self.cfg.groups[group as usize].calendar.is_open(now)
                        && agent != exclude
                        && self.cfg.agents[agent as usize].serves(shop)
                        && self.cfg.agents[agent as usize].proficiency(group).is_some_and(|p| p >= min_prof)
                }
            };
            if servable {
                found.push(format!("drain gave {sid} (key {chosen}) to agent {agent} before {id} (key {})", w.key));
            }
        }
        self.violations.extend(found);
    }
}

fn sort_candidates(policy: Policy, v: &mut [(u8, AgentKey)]) {
    match policy {
        Policy::ProficiencyFirst => v.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1))),
        _ => v.sort_unstable_by_key(|a| a.1),
    }
}

/// A snapshot of the agents and queues, for dry runs ([`super::explain`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterState {
    /// The instant of the snapshot.
    pub now: i64,
    /// Agents by id; an agent not listed is offline with no sessions.
    pub agents: BTreeMap<String, AgentState>,
    /// Waiting conversations per group id.
    pub queued: BTreeMap<String, u32>,
}

/// One agent in a [`RouterState`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentState {
    pub status: AgentStatus,
    pub active: u32,
    /// A cap set at run time, overriding the configured one.
    #[serde(default)]
    pub max_sessions: Option<u32>,
    #[serde(default)]
    pub idle_since: i64,
    /// Rotation counter of the last assignment (round robin).
    #[serde(default)]
    pub last_assigned: u64,
}
