//! Routing as a service (派单): the live side of the [`huiliu_routing`] engine. The engine is pure
//! and synchronous; this service owns it behind a lock, feeds it what happens (a session needing
//! an agent, a first reply, a close, an agent's status, a transfer, a reload, the engine's own
//! deadlines) and returns the actions it decides. [`Routing::record`] records one action against
//! the store (assignment, queue state, the decision) and announces it on the event hub; notices
//! to the buyer are not sent here: the flow sends them through the one reply door
//! (`flow::Flow::apply`).
//!
//! Architecture invariant: every routing decision is recorded on its session
//! (`routing_decisions`) with its reason before anyone is told about it.

use std::sync::Arc;

use huiliu_domain::session::{Session, SessionState};
use huiliu_routing::{Action, AgentStatus, Conversation, Engine, RestoredAgent, RestoredSession, RoutingConfig};
use huiliu_sdk::Millis;
use huiliu_store::{Store, StoreError};
use tokio::sync::{Mutex, Notify};

use crate::events::{EventHub, GatewayEvent};
use crate::metrics::{GroupLabels, Metrics};

/// The live routing engine and what it records.
#[derive(Debug)]
pub struct Routing {
    engine: Mutex<Engine>,
    /// Wakes the deadline task when deadlines may have moved.
    pub wake: Notify,
    store: Store,
    metrics: Arc<Metrics>,
    events: EventHub,
}

fn status_word(s: AgentStatus) -> &'static str {
    match s {
        AgentStatus::Online => "online",
        AgentStatus::Busy => "busy",
        AgentStatus::Away => "away",
        AgentStatus::Offline => "offline",
    }
}

/// Parses an agent status word.
pub fn parse_status(s: &str) -> Option<AgentStatus> {
    Some(match s {
        "online" => AgentStatus::Online,
        "busy" => AgentStatus::Busy,
        "away" => AgentStatus::Away,
        "offline" => AgentStatus::Offline,
        _ => return None,
    })
}

/// What routing may look at for a session, read from the store (all text masked).
pub async fn conversation(store: &Store, session: &Session) -> Result<Conversation, StoreError> {
    let customer = store.customer(session.customer_id).await?;
    let (buyer, vip, fans, tags, last_agent, last_agent_at) = match customer {
        Some(c) => (c.buyer_id, c.vip_level, c.fans_level, c.tags, c.last_agent, c.last_agent_at),
        None => (String::new(), 0, 0, Vec::new(), None, None),
    };
    Ok(Conversation {
        session: session.id as u64,
        platform: session.platform.clone(),
        shop: session.shop.clone(),
        buyer,
        text: store.first_inbound_text(session.id).await?,
        vip_level: vip.clamp(0, i64::from(u32::MAX)) as u32,
        fans_level: fans.clamp(0, i64::from(u32::MAX)) as u32,
        tags,
        has_open_refund: store.has_open_refund(session.customer_id).await?,
        returning: last_agent.is_some(),
        last_agent,
        last_agent_at,
    })
}

impl Routing {
    /// Rebuilds the engine from the store: agents' recorded presence, assignments and waiting
    /// sessions with their arrival times. Returns the actions the restore produced (to apply
    /// once the gateway is up).
    pub async fn restore(
        config: RoutingConfig,
        store: &Store,
        metrics: Arc<Metrics>,
        events: EventHub,
        now: Millis,
    ) -> Result<(Routing, Vec<Action>), String> {
        let agents: Vec<RestoredAgent> = store
            .presences()
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|(id, status, max, idle)| RestoredAgent {
                id,
                status: parse_status(&status).unwrap_or_default(),
                max_sessions: max.map(|m| m.clamp(0, 1000) as u32),
                idle_since: idle,
            })
            .collect();
        let mut sessions = Vec::new();
        for s in store.open_sessions().await.map_err(|e| e.to_string())? {
            if matches!(s.state, SessionState::Bot) {
                continue; // held by the auto-reply: no agent work
            }
            let conversation = conversation(store, &s).await.map_err(|e| e.to_string())?;
            sessions.push(RestoredSession {
                conversation,
                enqueued_at: s.opened_at,
                agent: s.agent.clone().filter(|_| s.state == SessionState::Assigned),
                assigned_at: s.assigned_at,
                responded: s.first_response_at.is_some(),
            });
        }
        let restored = sessions.len();
        let (engine, actions) = Engine::restore(config, &agents, sessions, now)
            .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))?;
        tracing::info!(sessions = restored, agents = agents.len(), "routing state rebuilt from the store");
        let routing =
            Routing { engine: Mutex::new(engine), wake: Notify::new(), store: store.clone(), metrics, events };
        Ok((routing, actions))
    }

    /// A session needs an agent: the actions that place it (none when the engine already holds
    /// it, or the session is closed, held by the auto-reply or assigned).
    pub async fn arrive(&self, session_id: i64, now: Millis) -> Vec<Action> {
        // Most messages belong to a conversation the engine already holds: answer that from
        // memory, without a store read per message.
        if self.engine.lock().await.session(session_id as u64).is_some() {
            return Vec::new();
        }
        let inputs = match self.store.routing_inputs(session_id).await {
            Ok(Some(i)) => i,
            Ok(None) => return Vec::new(),
            Err(e) => {
                tracing::error!(session = session_id, "cannot read the session for routing: {e}");
                return Vec::new();
            }
        };
        if matches!(inputs.state, SessionState::Closed | SessionState::Bot | SessionState::Assigned) {
            return Vec::new();
        }
        let conversation = Conversation {
            session: session_id as u64,
            platform: inputs.platform,
            shop: inputs.shop,
            buyer: inputs.buyer_id,
            text: inputs.first_text,
            vip_level: inputs.vip_level.clamp(0, i64::from(u32::MAX)) as u32,
            fans_level: inputs.fans_level.clamp(0, i64::from(u32::MAX)) as u32,
            tags: inputs.tags,
            has_open_refund: inputs.has_open_refund,
            returning: inputs.last_agent.is_some(),
            last_agent: inputs.last_agent,
            last_agent_at: inputs.last_agent_at,
        };
        let mut engine = self.engine.lock().await;
        // A session the engine took meanwhile (a second message) is not a new arrival.
        if engine.session(session_id as u64).is_some() {
            return Vec::new();
        }
        engine.arrive(conversation, now).unwrap_or_else(|e| {
            tracing::error!(session = session_id, "routing refused the session: {e}");
            Vec::new()
        })
    }

    /// The agent replied (stops the first-response clock).
    pub async fn first_response(&self, session_id: i64, now: Millis) -> Vec<Action> {
        self.engine.lock().await.first_response(session_id as u64, now).unwrap_or_default()
    }

    /// The session closed (frees the agent's capacity).
    pub async fn close(&self, session_id: i64, now: Millis) -> Vec<Action> {
        self.engine.lock().await.close(session_id as u64, now).unwrap_or_default()
    }

    /// An agent's status changes; the presence is recorded for restarts.
    pub async fn set_status(&self, agent: &str, status: AgentStatus, now: Millis) -> Result<Vec<Action>, String> {
        let actions = self.engine.lock().await.set_status(agent, status, now).map_err(|e| e.to_string())?;
        if let Err(e) = self.store.save_presence(agent, status_word(status), None, Some(now), now).await {
            tracing::warn!(agent, "presence not recorded: {e}");
        }
        tracing::info!(agent, status = status_word(status), "agent status");
        self.events.send(GatewayEvent::AgentStatus { agent: agent.to_owned(), status: status_word(status).into() });
        Ok(actions)
    }

    /// Moves a session to an agent or a group: the engine's actions, nothing recorded yet.
    pub async fn transfer(
        &self,
        session_id: i64,
        to: huiliu_routing::TransferTo,
        note: huiliu_routing::HandoverNote,
        now: Millis,
    ) -> Result<Vec<Action>, String> {
        self.engine.lock().await.transfer(session_id as u64, to, note, now).map_err(|e| e.to_string())
    }

    /// Swaps in a new routing configuration; `Err` keeps the running one.
    pub async fn reload(&self, config: RoutingConfig, now: Millis) -> Result<Vec<Action>, Vec<String>> {
        self.engine
            .lock()
            .await
            .reload(config, now)
            .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>())
    }

    /// What fell due at `now` (overflow waits, first-response limits, opening hours, sticky waits).
    pub async fn tick(&self, now: Millis) -> Vec<Action> {
        self.engine.lock().await.tick(now)
    }

    /// When the engine next needs [`Routing::tick`].
    pub async fn next_deadline(&self) -> Option<Millis> {
        self.engine.lock().await.next_deadline()
    }

    /// Where the engine has a session (assigned and whether answered, or waiting).
    pub async fn session(&self, session_id: i64) -> Option<huiliu_routing::SessionView> {
        self.engine.lock().await.session(session_id as u64)
    }

    /// A snapshot of the engine's state (queues, agents) for the API and the dashboard.
    pub async fn state(&self) -> huiliu_routing::RouterState {
        self.engine.lock().await.state()
    }

    /// One agent's live state, without a snapshot of every agent.
    pub async fn agent_state(&self, agent: &str) -> Option<huiliu_routing::AgentState> {
        self.engine.lock().await.agent_state(agent)
    }

    /// The configuration in force.
    pub async fn config(&self) -> RoutingConfig {
        self.engine.lock().await.config().clone()
    }

    /// Reads the configuration in force without copying it (a copy costs O(agents), too much
    /// for every API call once thousands of agents are configured).
    pub async fn with_config<T>(&self, f: impl FnOnce(&RoutingConfig) -> T) -> T {
        f(self.engine.lock().await.config())
    }

    /// Records one action (store first, then the event hub). [`Action::NotifyBuyer`] records
    /// nothing here: its text goes to the buyer through the flow's reply door.
    pub async fn record(&self, action: &Action, now: Millis) -> Result<(), StoreError> {
        tracing::debug!(session = action.session(), "routing: {action}");
        let session_id = action.session() as i64;
        match action {
            Action::Assign { agent, decision, .. } => {
                let recorded = serde_json::to_value(decision).unwrap_or_default();
                let priority = i64::from(decision.priority);
                self.store.assign(session_id, Some(&decision.group), agent, priority, Some(&recorded), now).await?;
                self.metrics.assigned.get_or_create(&GroupLabels { group: decision.group.clone() }).inc();
                if let Ok(Some(s)) = self.store.session(session_id).await
                    && s.assigned_at == Some(now)
                    && s.first_response_at.is_none()
                {
                    self.metrics.assign_seconds.observe((now - s.opened_at).max(0) as f64 / 1000.0);
                }
                self.events.send(GatewayEvent::Assigned {
                    session_id,
                    agent: agent.clone(),
                    group: decision.group.clone(),
                    trigger: serde_json::to_value(decision.trigger)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                });
            }
            Action::Queue { group, wait, position, decision, .. } => {
                self.store
                    .record_decision(session_id, &serde_json::to_value(decision).unwrap_or_default(), now)
                    .await?;
                let state = match wait {
                    huiliu_routing::WaitState::OffHours { .. } => SessionState::OffHours,
                    _ => SessionState::Queued,
                };
                self.store
                    .set_waiting(session_id, state, Some(group), i64::from(decision.priority), Some(&decision.category))
                    .await?;
                self.events.send(GatewayEvent::Queued { session_id, group: group.clone(), position: *position });
            }
            Action::NotifyBuyer { .. } => {}
            Action::Unassign { agent, .. } => {
                self.events.send(GatewayEvent::Unassigned { session_id, agent: agent.clone() });
            }
            Action::FirstResponseOverdue { agent, .. } => {
                tracing::warn!(session = session_id, agent, "first response overdue and nobody else has room");
                self.events.send(GatewayEvent::Alert {
                    kind: "first_response_overdue".into(),
                    session_id: Some(session_id),
                    detail: agent.clone(),
                });
            }
        }
        Ok(())
    }
}
