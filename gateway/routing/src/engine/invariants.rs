//! Test oracles: the engine's invariants, and a brute-force check that each drain serves
//! the most urgent conversation the agent could take.

use std::collections::HashMap;

use crate::treap::NIL;
use crate::types::SessionId;

use super::{Engine, LaneKey, Place};

impl Engine {
    /// Checks the engine's invariants; returns the first violation.
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
    pub(super) fn oracle_most_urgent(&mut self, sid: SessionId, agent: u32, now: i64) {
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
