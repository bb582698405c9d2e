//! Carrying out plans: assigning a session to an agent or putting it in a lane (with the
//! actions and buyer messages that go with it), taking it off again, and re-routing
//! sessions that lost their place.

use crate::types::{Action, SessionId, Trigger, WaitState};

use super::{Engine, LaneKey, NONE, Outcome, Place, Plan, Route, Wait};

impl Engine {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn route_and_apply(
        &mut self,
        sid: SessionId,
        route: Route,
        exclude: u32,
        now: i64,
        trigger: Trigger,
        path: Vec<crate::reason::Reason>,
        out: &mut Vec<Action>,
    ) {
        let Some(s) = self.sessions.get(&sid) else { return };
        let plan = self.plan_route(sid, &s.facts, route, exclude, now, trigger, path);
        self.apply(sid, plan, now, trigger, out);
    }

    /// Carries out a plan for a detached session.
    pub(super) fn apply(&mut self, sid: SessionId, mut plan: Plan, now: i64, trigger: Trigger, out: &mut Vec<Action>) {
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
                let text = self.wait_message(gi, &state, position, estimate_s, now);
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

    /// The buyer's message about a wait: position and estimate, opening time, or overflow
    /// (`None` while waiting for one agent in person).
    fn wait_message(&self, gi: usize, state: &WaitState, position: u32, estimate_s: u64, now: i64) -> Option<String> {
        let group = &self.cfg.groups[gi];
        match state {
            WaitState::ForAgent { .. } => None,
            WaitState::Queued => {
                let minutes = estimate_s.div_ceil(60).max(1).to_string();
                let position = position.to_string();
                let vars = [("position", position.as_str()), ("wait_minutes", &minutes), ("group", &group.name)];
                Some(render(&group.messages.queue_position, &vars))
            }
            WaitState::OffHours { opens_at } => {
                let open_time =
                    opens_at.map_or_else(|| "另行通知".to_owned(), |o| crate::calendar::describe_open_time(now, o));
                Some(render(&group.messages.off_hours, &[("group", &group.name), ("open_time", &open_time)]))
            }
            WaitState::Overflow => Some(render(&group.messages.overflow, &[("group", &group.name)])),
        }
    }

    /// Takes a session out of its lane or off its agent (counters updated, no drain).
    pub(super) fn detach(&mut self, sid: SessionId) {
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

    /// Moves a personal-lane waiter (sticky or transfer) to its normal path.
    pub(super) fn release_personal(&mut self, sid: SessionId, now: i64, out: &mut Vec<Action>) {
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
    pub(super) fn reroute_current(
        &mut self,
        sid: SessionId,
        now: i64,
        trigger: Trigger,
        exclude: u32,
        out: &mut Vec<Action>,
    ) {
        let Some(s) = self.sessions.get(&sid) else { return };
        let route = if s.pinned {
            Route { rule: s.rule, target: 0, pinned: Some(s.group) }
        } else {
            Route { rule: s.rule, target: s.target, pinned: None }
        };
        self.route_and_apply(sid, route, exclude, now, trigger, Vec::new(), out);
    }
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
