//! Planning: a conversation's facts, its targets, and the `Plan` for it: sticky routing back
//! to the last agent, or a walk through the rule's targets (assign, wait, or overflow onwards).
//! Planning only reads the engine; `apply` carries the plan out.

use crate::compiled::{Facts, Target};
use crate::reason::Reason;
use crate::types::{Conversation, Decision, Eligibility, SessionId, Trigger, WaitState};

use super::{Engine, LaneKey, NONE, Outcome, Place, Plan, Route, Sess, Wait};

impl Engine {
    pub(super) fn facts(&mut self, c: &Conversation) -> (Facts, Reason) {
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

    pub(super) fn new_sess(&self, facts: Facts, rule: Option<u16>, priority: i32, enqueued_at: i64) -> Sess {
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

    pub(super) fn targets(&self, rule: Option<u16>, pinned: Option<u16>) -> Vec<Target> {
        if let Some(group) = pinned {
            return vec![Target { group, wait_ms: 0, min_prof: 1 }];
        }
        match rule.and_then(|r| self.cfg.rules.get(r as usize)) {
            Some(r) => r.targets.clone(),
            None => self.cfg.fallback.into_iter().collect(),
        }
    }

    pub(super) fn plan_arrival(&self, conv: &Conversation, facts: &Facts, category_why: Reason, now: i64) -> Plan {
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
                    plan.decision.set_category_why(category_why);
                    plan.decision.set_rules_skipped(skipped);
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
        plan.decision.set_category_why(category_why);
        plan.decision.set_rules_skipped(skipped);
        plan.decision.set_sticky(sticky_note);
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
    ) -> Result<Plan, Reason> {
        let s = &self.cfg.settings;
        if s.sticky_ttl_ms == 0 {
            return Err(Reason::new("sticky.off"));
        }
        if rule.and_then(|r| self.cfg.rules.get(r as usize)).is_some_and(|r| !r.sticky) {
            return Err(Reason::new("sticky.rule_off"));
        }
        let Some(&a) = self.cfg.agent_ix.get(last) else {
            return Err(Reason::new("sticky.unknown_agent").with("last", last));
        };
        if let Some(at) = last_at
            && now.saturating_sub(at) > s.sticky_ttl_ms
        {
            return Err(Reason::new("sticky.expired").with("last", last).with("ttl_s", s.sticky_ttl_ms / 1000));
        }
        let def = &self.cfg.agents[a as usize];
        // Only the rule's primary group: later targets are overflow, not where the buyer belongs.
        let targets = self.targets(rule, None);
        let Some(&t) = targets.first() else { return Err(Reason::new("sticky.no_target")) };
        let ti = 0;
        if def.proficiency(t.group).is_none() {
            let g = &self.cfg.groups[t.group as usize].id;
            return Err(Reason::new("sticky.not_in_group").with("last", last).with("group", g));
        }
        if !def.serves(facts.shop) {
            return Err(Reason::new("sticky.not_serving_shop").with("last", last));
        }
        let mut d = self.base_decision(sid, facts, rule, now, Trigger::Arrival);
        d.target = ti;
        d.group = self.cfg.groups[t.group as usize].id.clone();
        d.policy = self.cfg.groups[t.group as usize].policy;
        let live = &self.agents[a as usize];
        let candidate = self.candidate(a, t.group, facts.shop, 1, NONE);
        let eligibility = candidate.eligibility;
        d.candidates = vec![candidate];
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
                d.set_sticky(Some(Reason::new("sticky.back").with("last", last)));
                d.chosen = Some(def.id.clone());
                d.set_why(
                    Reason::new("why.sticky_room")
                        .with("last", last)
                        .with("active", live.active)
                        .with("cap", self.cap(a)),
                );
                Ok(plan(Outcome::Assign(a), d))
            }
            Eligibility::AtCap { .. } | Eligibility::Busy if s.sticky_wait_ms > 0 => {
                d.set_sticky(Some(
                    Reason::new("sticky.waiting")
                        .with("wait_s", s.sticky_wait_ms / 1000)
                        .with("last", last)
                        .inner(eligibility.reason()),
                ));
                d.set_why(Reason::new("why.sticky_wait").with("last", last));
                let until = now.saturating_add(s.sticky_wait_ms);
                d.wait = Some(WaitState::ForAgent { agent: def.id.clone(), until });
                Ok(plan(Outcome::Wait { lane: LaneKey::Agent(a), wait: Wait::Sticky, deadline: until }, d))
            }
            other => Err(Reason::new("sticky.unavailable").with("last", last).inner(other.reason())),
        }
    }

    /// Walks the targets from `route`: assign, wait, or overflow onwards.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn plan_route(
        &self,
        sid: SessionId,
        facts: &Facts,
        route: Route,
        exclude: u32,
        now: i64,
        trigger: Trigger,
        mut path: Vec<Reason>,
    ) -> Plan {
        let targets = self.targets(route.rule, route.pinned);
        let mut d = self.base_decision(sid, facts, route.rule, now, trigger);
        if route.pinned.is_some() {
            path.push(Reason::new("path.transferred_to_group"));
        }
        let n = targets.len();
        let mut i = usize::from(route.target).min(n.saturating_sub(1));
        let pinned = route.pinned.is_some();
        let Some(_) = targets.get(i) else {
            // Impossible after validation (there is always a fallback); wait in group 0.
            d.set_why(Reason::new("why.no_target"));
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
                path.push(
                    Reason::new("path.on_duty").with("group", gname).with("duty", &self.cfg.groups[duty as usize].id),
                );
                serve = (duty, 1, true);
            }
            let (sg, min_prof, open) = serve;
            let done =
                move |outcome, d: Decision| Plan { outcome, group: sg, target: i as u8, min_prof, pinned, decision: d };
            d.target = i;
            if open {
                if let Some(a) = self.best_agent(sg, facts.shop, min_prof, exclude) {
                    self.describe_group(&mut d, sg, facts.shop, min_prof, exclude, Some(a), now);
                    d.set_path(path);
                    return done(Outcome::Assign(a), d);
                }
                if !last && t.wait_ms == 0 {
                    path.push(Reason::new("path.no_room_next").with("group", gname));
                    i += 1;
                    continue;
                }
                let queued = self.groups[sg as usize].queued;
                let limit = self.cfg.groups[sg as usize].queue_limit;
                let lane = LaneKey::Group { group: sg, shop: facts.shop, min_prof, exclude };
                if limit.is_none_or(|l| queued < l) {
                    self.describe_group(&mut d, sg, facts.shop, min_prof, exclude, None, now);
                    d.set_path(path);
                    d.wait = Some(WaitState::Queued);
                    let deadline = if last || pinned { i64::MAX } else { now.saturating_add(t.wait_ms) };
                    return done(Outcome::Wait { lane, wait: Wait::Queued, deadline }, d);
                }
                let l = limit.unwrap_or(0);
                if !last {
                    path.push(
                        Reason::new("path.queue_full_next")
                            .with("group", gname)
                            .with("queued", queued)
                            .with("limit", l),
                    );
                    i += 1;
                    continue;
                }
                self.describe_group(&mut d, sg, facts.shop, min_prof, exclude, None, now);
                let inner = std::mem::take(&mut d.reasons.why);
                d.set_why(Reason::new("why.queue_full_kept").with("queued", queued).with("limit", l).inner(inner));
                d.set_path(path);
                d.wait = Some(WaitState::Overflow);
                return done(Outcome::Wait { lane, wait: Wait::Overflow, deadline: i64::MAX }, d);
            }
            if !last && t.wait_ms == 0 {
                path.push(Reason::new("path.closed_next").with("group", gname));
                i += 1;
                continue;
            }
            let opens = cal.next_open(now);
            self.describe_group(&mut d, g, facts.shop, t.min_prof, exclude, None, now);
            d.set_path(path);
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
}
