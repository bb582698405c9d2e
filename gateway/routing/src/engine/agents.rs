//! The availability index and agent presence: per group, per proficiency level, per shop
//! scope, the agents who are online and under their cap, ordered by the group's policy key;
//! caps, counters, eligibility, and what a status change does to an agent's sessions.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};

use crate::config::{OnLeave, Policy};
use crate::types::{Action, AgentStatus, Eligibility, RouterError, Trigger, UnassignReason};

use super::{Engine, LaneKey, NONE};

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
pub(super) struct Snapshot {
    active: u32,
    cap: u32,
    idle_since: i64,
    rr: u64,
}

pub(super) fn key_of(policy: Policy, s: Snapshot, agent: u32) -> AgentKey {
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
pub(super) struct GroupIndex {
    /// `levels[p - 1]`: members with proficiency exactly `p`.
    levels: [Scoped; 5],
}

impl Engine {
    pub(super) fn agent_ix(&self, id: &str) -> Result<u32, RouterError> {
        self.cfg.agent_ix.get(id).copied().ok_or_else(|| RouterError::UnknownAgent(id.to_owned()))
    }

    /// An agent's cap in force (configured, or set at run time); `None` for an unknown agent.
    pub fn agent_cap(&self, id: &str) -> Option<u32> {
        self.agent_ix(id).ok().map(|a| self.cap(a))
    }

    pub(crate) fn cap(&self, a: u32) -> u32 {
        let i = a as usize;
        self.agents[i].cap_override.unwrap_or(self.cfg.agents[i].cap)
    }

    pub(super) fn available(&self, a: u32) -> bool {
        let l = &self.agents[a as usize];
        l.status == AgentStatus::Online && l.active < self.cap(a)
    }

    pub(super) fn leaves_requeue(&self, status: AgentStatus) -> bool {
        match status {
            AgentStatus::Away => self.cfg.settings.on_away == OnLeave::Requeue,
            AgentStatus::Offline => self.cfg.settings.on_offline == OnLeave::Requeue,
            AgentStatus::Online | AgentStatus::Busy => false,
        }
    }

    /// Adds `cap_delta` to the online capacity and `online_delta` to the online count of
    /// every group of agent `a`.
    pub(super) fn adjust_online(&mut self, a: u32, cap_delta: i64, online_delta: i64) {
        for &(g, _) in &self.cfg.agents[a as usize].groups {
            let live = &mut self.groups[g as usize];
            live.online_cap = (live.online_cap as i64 + cap_delta).max(0) as u64;
            live.online = (i64::from(live.online) + online_delta).max(0) as u32;
        }
    }

    /// Recomputes group counters and the whole index from the agents' states.
    pub(super) fn recount(&mut self) {
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
    pub(super) fn reindex(&mut self, a: u32) {
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

    pub(super) fn snapshot(&self, a: u32) -> Snapshot {
        let l = &self.agents[a as usize];
        Snapshot { active: l.active, cap: self.cap(a), idle_since: l.idle_since, rr: l.rr }
    }

    /// The best agents with room for (group, shop, min proficiency), not `exclude`, best first.
    pub(super) fn top_agents(&self, g: u16, shop: u32, min_prof: u8, exclude: u32, k: usize) -> Vec<(u8, AgentKey)> {
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
    pub(super) fn best_agent(&self, g: u16, shop: u32, min_prof: u8, exclude: u32) -> Option<u32> {
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

    pub(super) fn change_status(&mut self, a: u32, status: AgentStatus, now: i64, out: &mut Vec<Action>) {
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
}

pub(super) fn sort_candidates(policy: Policy, v: &mut [(u8, AgentKey)]) {
    match policy {
        Policy::ProficiencyFirst => v.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1))),
        _ => v.sort_unstable_by_key(|a| a.1),
    }
}
