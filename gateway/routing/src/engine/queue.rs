//! The queue: lanes (order-statistic treaps keyed by the aged priority key), positions,
//! wait states and estimates, and draining freed capacity to the most urgent conversation.

use crate::reason::Reason;
use crate::treap::{Key, NIL};
use crate::types::{Action, SessionId, Trigger, WaitState};

use super::{Engine, Lane, LaneKey, NONE, Outcome, Place, Plan, Sess, Wait};

impl Engine {
    pub(super) fn lane_id(&mut self, key: LaneKey) -> u32 {
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

    pub(super) fn lane_insert(&mut self, l: u32, key: Key) {
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

    pub(super) fn lane_remove(&mut self, l: u32, key: Key) {
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

    /// A waiting session's position: 1 + entries ahead of it in its group (or agent's lane).
    pub(super) fn position(&self, sid: SessionId) -> u32 {
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

    pub(super) fn wait_state(&self, s: &Sess) -> WaitState {
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

    pub(super) fn estimate_s(&self, g: u16, position: u32, now: i64) -> u64 {
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

    // ----- draining ---------------------------------------------------------------------

    pub(super) fn drain_for_agent(&mut self, a: u32, now: i64, out: &mut Vec<Action>) {
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
    pub(super) fn drain(&mut self, groups: &[u16], agents: &[u32], now: i64, out: &mut Vec<Action>) {
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
                d.group = self.cfg.groups[g as usize].id.clone();
                d.candidates = vec![self.candidate(agent, g, shop, 1, NONE)];
                d.chosen = Some(who.clone());
                d.set_why(Reason::new("why.waited_agent_free").with("agent", &who).with("waited_s", waited));
            } else {
                self.describe_group(&mut d, g, shop, min_prof, exclude, Some(agent), now);
                let inner = std::mem::take(&mut d.reasons.why);
                d.set_why(Reason::new("why.capacity_freed").with("waited_s", waited).inner(inner));
            }
            self.detach(sid);
            let plan = Plan { outcome: Outcome::Assign(agent), group: g, target, min_prof, pinned, decision: d };
            self.apply(sid, plan, now, Trigger::Drain, out);
        }
    }
}
