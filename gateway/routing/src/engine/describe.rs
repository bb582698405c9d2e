//! Decision records: the [`Decision`] of every assignment and wait, with the group, the
//! candidates and their eligibility, and why the chosen agent was chosen.

use crate::compiled::Facts;
use crate::config::Policy;
use crate::reason::Reason;
use crate::types::{AgentStatus, Candidate, Decision, DecisionReasons, Eligibility, RuleRef, SessionId, Trigger};

use super::Engine;
use super::agents::{AgentKey, key_of, sort_candidates};

impl Engine {
    pub(super) fn base_decision(
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
            reasons: DecisionReasons { category: Reason::new("category.at_arrival"), ..DecisionReasons::default() },
        }
    }

    /// Agent `a` as a candidate of group `g`: why they are or are not eligible, their load and cap.
    pub(super) fn candidate(&self, a: u32, g: u16, shop: u32, min_prof: u8, exclude: u32) -> Candidate {
        let (eligibility, proficiency) = self.eligibility(a, g, shop, min_prof, exclude);
        Candidate {
            agent: self.cfg.agents[a as usize].id.clone(),
            name: self.cfg.agents[a as usize].name.clone(),
            eligibility,
            active: self.agents[a as usize].active,
            cap: self.cap(a),
            proficiency,
        }
    }

    /// Fills the decision's group, candidates, chosen agent and reason.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn describe_group(
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
        let candidate = |a: u32| self.candidate(a, g, shop, min_prof, exclude);
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
            d.set_why(self.why_chosen(group.policy, &ranked, a));
        } else {
            let online = live.online;
            d.set_why(if !group.calendar.is_open(now) {
                Reason::new("why.group_closed")
            } else if online == 0 {
                Reason::new("why.nobody_online")
            } else {
                Reason::new("why.no_room")
                    .with("members", d.members)
                    .with("online", online)
                    .with("with_room", live.with_room)
            });
        }
    }

    fn why_chosen(&self, policy: Policy, ranked: &[(u8, AgentKey)], a: u32) -> Reason {
        let name = |a: u32| self.cfg.agents[a as usize].id.as_str();
        let me = ranked.iter().find(|(_, k)| k.agent == a);
        let next = ranked.iter().find(|(_, k)| k.agent != a);
        let (Some((my_prof, me)), Some((next_prof, next))) = (me, next) else {
            return Reason::new("why.only_agent");
        };
        let time = |t: i64| huiliu_sdk::time::beijing_datetime(t).get(11..).unwrap_or_default().to_owned();
        match policy {
            Policy::RoundRobin => Reason::new("why.round_robin").with("next", name(next.agent)),
            Policy::ProficiencyFirst if my_prof != next_prof => Reason::new("why.highest_proficiency")
                .with("has", my_prof)
                .with("next", name(next.agent))
                .with("next_has", next_prof),
            _ => {
                let prefix = if policy == Policy::ProficiencyFirst { "why.prefix_proficiency" } else { "" };
                let (ml, nl) = (self.load_of(me), self.load_of(next));
                let r = if me.load == next.load {
                    Reason::new("why.least_load_tied").with("idle", time(me.tie)).with("next_idle", time(next.tie))
                } else {
                    Reason::new("why.least_load")
                };
                let r = r.with("prefix", prefix).with("load", ml).with("next", name(next.agent)).with("next_load", nl);
                if prefix.is_empty() { r } else { r.with("has", my_prof) }
            }
        }
    }

    fn load_of(&self, k: &AgentKey) -> String {
        let l = &self.agents[k.agent as usize];
        format!("{}/{}", l.active, self.cap(k.agent))
    }
}
