//! Reading the engine: views of sessions, agents and queues, the [`RouterState`] snapshot,
//! and the throw-away routers of dry runs (`explain`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::RoutingConfig;
use crate::treap::Key;
use crate::types::{AgentStatus, AgentView, Conversation, Decision, SessionId, SessionView};
use huiliu_domain::ConfigError;

use super::{Engine, Outcome, Place};

impl Engine {
    /// Where a session is.
    pub fn session(&self, id: SessionId) -> Option<SessionView> {
        let s = self.sessions.get(&id)?;
        let group = self.cfg.groups.get(s.group as usize).map(|g| g.id.clone()).unwrap_or_default();
        Some(match s.place {
            Place::Agent { agent, since, responded } => SessionView::Assigned {
                agent: self.cfg.agents[agent as usize].id.clone(),
                group,
                assigned_at: since,
                responded,
                priority: s.priority,
            },
            Place::Lane(_) | Place::Detached => SessionView::Waiting {
                group,
                wait: self.wait_state(s),
                position: self.position(id),
                enqueued_at: s.enqueued_at,
                priority: s.priority,
            },
        })
    }

    /// An agent's live state.
    pub fn agent(&self, id: &str) -> Option<AgentView> {
        let a = *self.cfg.agent_ix.get(id)?;
        let live = &self.agents[a as usize];
        let def = &self.cfg.agents[a as usize];
        Some(AgentView {
            id: def.id.clone(),
            name: def.name.clone(),
            role: def.role,
            status: live.status,
            active: live.active,
            cap: self.cap(a),
            sessions: live.sessions.clone(),
            idle_since: live.idle_since,
        })
    }

    /// How many conversations wait in a group (all lanes, any shop).
    pub fn queue_len(&self, group: &str) -> usize {
        self.cfg.group_ix.get(group).map_or(0, |&g| self.groups[g as usize].queued as usize)
    }

    /// The sessions waiting in a group, next first (O(n): for dashboards, not the hot path).
    pub fn queued(&self, group: &str) -> Vec<SessionId> {
        let Some(&g) = self.cfg.group_ix.get(group) else { return Vec::new() };
        let mut keys: Vec<Key> =
            self.group_lanes[g as usize].iter().flat_map(|&l| self.arena.keys(self.lanes[l as usize].root)).collect();
        keys.sort_unstable();
        keys.into_iter().map(|k| k.1).collect()
    }

    /// Number of sessions the router holds (assigned and waiting).
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether the router holds no session.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// A snapshot of agents and queue lengths, for [`crate::explain`] and dashboards.
    pub fn state(&self) -> RouterState {
        RouterState {
            now: self.now,
            agents: self.cfg.agents.iter().zip(&self.agents).map(|(d, l)| (d.id.clone(), agent_state(l))).collect(),
            queued: self.cfg.groups.iter().zip(&self.groups).map(|(d, g)| (d.id.clone(), g.queued)).collect(),
        }
    }

    /// One agent's live state (what [`Engine::state`] holds for them), without a snapshot of
    /// everyone: `/api/v1/me` asks on every workbench load.
    pub fn agent_state(&self, id: &str) -> Option<AgentState> {
        let i = self.agent_ix(id).ok()? as usize;
        self.agents.get(i).map(agent_state)
    }

    // ----- dry runs ---------------------------------------------------------------------

    /// A throw-away router for a dry run: agents and queue lengths from `state`.
    pub(crate) fn for_dry_run(
        config: RoutingConfig,
        state: &RouterState,
        now: i64,
    ) -> Result<Engine, Vec<ConfigError>> {
        let mut r = Engine::new(config, now)?;
        r.full_decisions = true;
        for (i, def) in r.cfg.agents.iter().enumerate() {
            if let Some(st) = state.agents.get(&def.id) {
                let live = &mut r.agents[i];
                live.status = st.status;
                live.active = st.active;
                live.cap_override = st.max_sessions;
                live.idle_since = st.idle_since;
                live.rr = st.last_assigned;
            }
        }
        r.recount();
        for (g, def) in r.cfg.groups.iter().enumerate() {
            r.groups[g].queued = state.queued.get(&def.id).copied().unwrap_or(0);
        }
        Ok(r)
    }

    /// The decision an arrival would get, with every member listed; no side effects on `self`
    /// beyond interning the conversation's strings.
    pub(crate) fn dry_decision(&mut self, conv: &Conversation, now: i64) -> Decision {
        let (facts, why) = self.facts(conv);
        let mut plan = self.plan_arrival(conv, &facts, why, now);
        if let Outcome::Assign(_) = plan.outcome {
            plan.decision.wait = None;
        }
        plan.decision
    }
}

/// A snapshot of the agents and queues, for dry runs ([`crate::explain`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RouterState {
    /// The instant of the snapshot.
    pub now: i64,
    /// Agents by id; an agent not listed is offline with no sessions.
    pub agents: BTreeMap<String, AgentState>,
    /// Waiting conversations per group id.
    pub queued: BTreeMap<String, u32>,
}

/// One agent in a [`RouterState`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentState {
    pub status: AgentStatus,
    pub active: u32,
    /// A cap set at run time, overriding the configured one.
    #[serde(default)]
    pub max_sessions: Option<u32>,
    #[serde(default)]
    pub idle_since: i64,
    /// Rotation counter of the last assignment (round robin).
    #[serde(default)]
    pub last_assigned: u64,
}

fn agent_state(l: &super::AgentLive) -> AgentState {
    AgentState {
        status: l.status,
        active: l.active,
        max_sessions: l.cap_override,
        idle_since: l.idle_since,
        last_assigned: l.rr,
    }
}
