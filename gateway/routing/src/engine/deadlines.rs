//! Time: the deadline index, advancing to `now` (deadlines and group openings in time order),
//! overflow and personal waits that expire, and first-response limits.

use crate::reason::Reason;
use crate::types::{Action, SessionId, Trigger, UnassignReason};

use super::{Engine, LaneKey, Outcome, Place, Plan, Route, clamp_time};

impl Engine {
    pub(super) fn set_deadline(&mut self, sid: SessionId, at: i64) {
        let Some(s) = self.sessions.get_mut(&sid) else { return };
        if s.deadline != i64::MAX {
            self.deadlines.remove(&(s.deadline, sid));
        }
        s.deadline = at;
        if at != i64::MAX {
            self.deadlines.insert((at, sid));
        }
    }

    /// Processes due deadlines and group openings in time order; returns the clamped `now`.
    pub(super) fn advance(&mut self, now: i64, out: &mut Vec<Action>) -> i64 {
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
                    let path = vec![Reason::new("path.overflow").with("group", &from).with("waited_s", waited)];
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
        d.set_path(vec![
            Reason::new("path.no_first_response")
                .with("agent", &agent_id)
                .with("limit_s", self.cfg.settings.response_ms / 1000),
        ]);
        self.detach(sid);
        out.push(Action::Unassign { session: sid, agent: agent_id, reason: UnassignReason::NoFirstResponse });
        self.describe_group(&mut d, g, shop, 1, agent, Some(other), at);
        let (target, pinned) = self.sessions.get(&sid).map_or((0, false), |s| (s.target, s.pinned));
        let plan = Plan { outcome: Outcome::Assign(other), group: g, target, min_prof: 1, pinned, decision: d };
        self.apply(sid, plan, at, Trigger::FirstResponseTimeout, out);
        self.drain_for_agent(agent, at, out);
    }
}
