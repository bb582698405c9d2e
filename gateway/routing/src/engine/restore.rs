//! Rebuilding state: [`Engine::restore`] after a restart and [`Engine::reload`] of a new
//! configuration; both re-derive sessions, keep assignments where they can and place the
//! waiting conversations again keeping their arrival time.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::compiled::Compiled;
use crate::config::{ROUTING_FILE, RoutingConfig};
use crate::types::{Action, AgentStatus, Conversation, SessionId, Trigger, UnassignReason};
use huiliu_domain::ConfigError;

use super::{Engine, LaneKey, NONE, Place, Sess, Wait, clamp_time};

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

impl Engine {
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
}
