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
//!
//! # Files
//!
//! - `mod.rs` (this file): the data model ([`Engine`], sessions, lanes, plans), the
//!   constructor, the call wrapper and the event entry points.
//! - `agents`: the availability index; caps, counters, eligibility, status changes.
//! - `plan`: facts, targets, sticky routing and the walk through the targets (reads only).
//! - `apply`: carrying a plan out (assign or queue, with the buyer's messages), detaching,
//!   re-routing a session that lost its place.
//! - `queue`: lanes, positions, wait states and estimates; draining freed capacity.
//! - `deadlines`: the deadline index, advancing time, overflow waits, first-response limits.
//! - `transfer`: transfers to a named agent or a group.
//! - `restore`: [`Engine::restore`] after a restart and [`Engine::reload`].
//! - `describe`: the decision records (candidates, eligibility, why).
//! - `inspect`: views of sessions, agents and queues; [`RouterState`]; dry runs.
//! - `invariants` (tests only): the invariant check and the drain-order oracle.

mod agents;
mod apply;
mod deadlines;
mod describe;
mod inspect;
#[cfg(test)]
mod invariants;
mod plan;
mod queue;
mod restore;
mod transfer;

use std::collections::{BTreeSet, HashMap};

use super::compiled::{Compiled, Facts, Interner};
use super::config::{ROUTING_FILE, RoutingConfig};
use super::treap::Arena;
use super::types::*;
use huiliu_domain::ConfigError;

use agents::{GroupIndex, Snapshot};
pub use inspect::{AgentState, RouterState};
pub use restore::{RestoredAgent, RestoredSession};

pub(crate) const NONE: u32 = u32::MAX;
const LIMIT_MS: i64 = 1_000_000_000_000_000;

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

fn clamp_time(t: i64) -> i64 {
    t.clamp(-LIMIT_MS, LIMIT_MS)
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

    /// Starts each listed group's handle time (what the queue-position estimate told to a
    /// waiting buyer divides by) from `(group, ms)`: the handle times learned from the store
    /// (`HandleTimes::learned_ms`). Closes in this process move it on from there. Without it the
    /// engine starts from the configured `default_handle_time_s` after every restart, and each
    /// node from its own closes. Unknown groups are skipped.
    pub fn adopt_handle_times<'a>(&mut self, learned: impl IntoIterator<Item = (&'a str, i64)>) {
        for (id, ms) in learned {
            if let Some(&g) = self.cfg.group_ix.get(id)
                && let Some(live) = self.groups.get_mut(g as usize)
            {
                live.handle_ms = ms.max(1000);
            }
        }
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
}
