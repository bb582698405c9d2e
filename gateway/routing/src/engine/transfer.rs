//! Transfers to a named agent or to a group, with a handover note.

use crate::reason::Reason;
use crate::types::{
    Action, AgentStatus, Handover, HandoverNote, RouterError, SessionId, TransferTo, Trigger, UnassignReason,
};

use super::{Engine, LaneKey, NONE, Outcome, Place, Plan, Route, Wait};

impl Engine {
    pub(super) fn do_transfer(
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
        self.check_transfer(&to, from, shop)?;
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
                let Some(plan) = self.plan_transfer_to_agent(sid, a, &id, shop, exclude, now) else { return Ok(()) };
                if let Some(s) = self.sessions.get_mut(&sid) {
                    s.exclude = exclude;
                }
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

    /// Refuses a transfer that cannot be made; nothing has changed when it does.
    fn check_transfer(&self, to: &TransferTo, from: Option<u32>, shop: u32) -> Result<(), RouterError> {
        match to {
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
        Ok(())
    }

    /// A transfer to agent `a` by name: assigned if they have room, else a wait for them.
    /// `None` if the session is gone.
    fn plan_transfer_to_agent(
        &self,
        sid: SessionId,
        a: u32,
        id: &str,
        shop: u32,
        exclude: u32,
        now: i64,
    ) -> Option<Plan> {
        let s = self.sessions.get(&sid)?;
        let mut d = self.base_decision(sid, &s.facts, s.rule, now, Trigger::Transfer);
        let g = s.group;
        d.target = usize::from(s.target);
        let (group, target, min_prof, pinned) = (s.group, s.target, s.min_prof, s.pinned);
        d.group = self.cfg.groups[g as usize].id.clone();
        let live = &self.agents[a as usize];
        d.candidates = vec![self.candidate(a, g, shop, 1, exclude)];
        let outcome = if self.available(a) {
            d.chosen = Some(id.to_owned());
            d.set_why(Reason::new("why.transfer_to_agent").with("agent", id));
            Outcome::Assign(a)
        } else {
            let until = now.saturating_add(self.cfg.settings.transfer_wait_ms);
            let state = if live.status == AgentStatus::Busy {
                Reason::new("eligibility.busy_short")
            } else {
                Reason::new("eligibility.at_cap").with("active", live.active).with("cap", self.cap(a))
            };
            d.set_why(
                Reason::new("why.transfer_wait")
                    .with("agent", id)
                    .with("wait_s", self.cfg.settings.transfer_wait_ms / 1000)
                    .inner(state),
            );
            Outcome::Wait { lane: LaneKey::Agent(a), wait: Wait::ForTransfer, deadline: until }
        };
        Some(Plan { outcome, group, target, min_prof, pinned, decision: d })
    }
}
