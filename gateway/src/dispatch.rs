//! Dispatch (派单): the live side of routing. The [`crate::router`] engine is pure and
//! synchronous; this module owns it behind a lock, feeds it what happens (a session needing an
//! agent, a first reply, a close, an agent's status, a transfer, a reload, the engine's own
//! deadlines) and executes the actions it returns, in order, against the store (assignment,
//! queue state and the decision record), the outbox (notices to the buyer) and the event bus.
//!
//! Architecture invariant: every routing decision is recorded on its session
//! (`routing_decisions`) with its reason before anyone is told about it.

use std::sync::Arc;
use std::time::Duration;

use huiliu_sdk::{Content, Millis};
use tokio::sync::{Mutex, Notify};

use crate::Gateway;
use crate::events::GatewayEvent;
use crate::metrics::GroupLabels;
use crate::pipeline::ReplyRequest;
use huiliu_domain::session::{Session, SessionState};
use huiliu_routing::{Action, AgentStatus, Conversation, Engine, RestoredAgent, RestoredSession, RoutingConfig};
use huiliu_store::{Store, StoreError};

/// The live router.
#[derive(Debug)]
pub struct Dispatch {
    router: Mutex<Engine>,
    /// Wakes the deadline task when deadlines may have moved.
    wake: Notify,
}

/// The author of notices the router sends buyers.
pub const SYSTEM_AUTHOR: &str = "system";

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

impl Dispatch {
    /// Rebuilds the router from the store: agents' recorded presence, assignments and waiting
    /// sessions with their arrival times. Returns the actions the restore produced (to execute
    /// once the gateway is up).
    pub async fn restore(config: RoutingConfig, store: &Store, now: Millis) -> Result<(Dispatch, Vec<Action>), String> {
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
        let (router, actions) = Engine::restore(config, &agents, sessions, now)
            .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))?;
        tracing::info!(sessions = restored, agents = agents.len(), "routing state rebuilt from the store");
        Ok((Dispatch { router: Mutex::new(router), wake: Notify::new() }, actions))
    }

    /// Routes a session that needs an agent.
    pub async fn arrive(&self, gw: &Gateway, session_id: i64) {
        // Most messages belong to a conversation the router already holds: answer that from
        // memory, without a store read per message.
        if self.router.lock().await.session(session_id as u64).is_some() {
            return;
        }
        let Ok(Some(session)) = gw.store.session(session_id).await else { return };
        if matches!(session.state, SessionState::Closed | SessionState::Bot | SessionState::Assigned) {
            return;
        }
        let conversation = match conversation(&gw.store, &session).await {
            Ok(c) => c,
            Err(e) => return tracing::error!(session = session_id, "cannot read the session for routing: {e}"),
        };
        let actions = {
            let mut router = self.router.lock().await;
            // A session the router already holds (a second message) is not a new arrival.
            if router.session(session_id as u64).is_some() {
                return;
            }
            router.arrive(conversation, huiliu_domain::now_millis())
        };
        match actions {
            Ok(actions) => self.execute(gw, actions).await,
            Err(e) => tracing::error!(session = session_id, "routing refused the session: {e}"),
        }
    }

    /// The agent replied (stops the first-response clock).
    pub async fn first_response(&self, gw: &Gateway, session_id: i64) {
        let actions = self.router.lock().await.first_response(session_id as u64, huiliu_domain::now_millis());
        if let Ok(actions) = actions {
            self.execute(gw, actions).await;
        }
    }

    /// The session closed (frees the agent's capacity).
    pub async fn close(&self, gw: &Gateway, session_id: i64) {
        let actions = self.router.lock().await.close(session_id as u64, huiliu_domain::now_millis());
        if let Ok(actions) = actions {
            self.execute(gw, actions).await;
        }
    }

    /// An agent's status changes; the presence is recorded for restarts.
    pub async fn set_status(&self, gw: &Gateway, agent: &str, status: AgentStatus) -> Result<(), String> {
        let now = huiliu_domain::now_millis();
        let actions = self.router.lock().await.set_status(agent, status, now).map_err(|e| e.to_string())?;
        if let Err(e) = gw.store.save_presence(agent, status_word(status), None, Some(now), now).await {
            tracing::warn!(agent, "presence not recorded: {e}");
        }
        tracing::info!(agent, status = status_word(status), "agent status");
        self.execute(gw, actions).await;
        Ok(())
    }

    /// Transfers a session to an agent or a group with a handover note.
    pub async fn transfer(
        &self,
        gw: &Gateway,
        session_id: i64,
        to: huiliu_routing::TransferTo,
        note: huiliu_routing::HandoverNote,
    ) -> Result<(), String> {
        let actions = self
            .router
            .lock()
            .await
            .transfer(session_id as u64, to, note, huiliu_domain::now_millis())
            .map_err(|e| e.to_string())?;
        self.execute(gw, actions).await;
        Ok(())
    }

    /// Swaps in a new routing configuration; `Err` keeps the running one.
    pub async fn reload(&self, gw: &Gateway, config: RoutingConfig) -> Result<(), Vec<String>> {
        let actions = self
            .router
            .lock()
            .await
            .reload(config, huiliu_domain::now_millis())
            .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>())?;
        self.execute(gw, actions).await;
        Ok(())
    }

    /// A snapshot of the router's state (queues, agents) for the API and the dashboard.
    pub async fn state(&self) -> huiliu_routing::RouterState {
        self.router.lock().await.state()
    }

    /// The configuration in force.
    pub async fn config(&self) -> RoutingConfig {
        self.router.lock().await.config().clone()
    }

    /// Reads the configuration in force without copying it (a copy costs O(agents), too much
    /// for every API call once thousands of agents are configured).
    pub async fn with_config<T>(&self, f: impl FnOnce(&RoutingConfig) -> T) -> T {
        f(self.router.lock().await.config())
    }

    /// Executes the router's actions in order.
    pub async fn execute(&self, gw: &Gateway, actions: Vec<Action>) {
        let now = huiliu_domain::now_millis();
        for action in actions {
            tracing::info!(session = action.session(), "routing: {action}");
            let session_id = action.session() as i64;
            let result: Result<(), StoreError> = async {
                match &action {
                    Action::Assign { agent, decision, .. } => {
                        let recorded = serde_json::to_value(decision).unwrap_or_default();
                        let priority = i64::from(decision.priority);
                        gw.store
                            .assign(session_id, Some(&decision.group), agent, priority, Some(&recorded), now)
                            .await?;
                        gw.metrics.assigned.get_or_create(&GroupLabels { group: decision.group.clone() }).inc();
                        if let Ok(Some(s)) = gw.store.session(session_id).await
                            && s.assigned_at == Some(now)
                            && s.first_response_at.is_none()
                        {
                            gw.metrics.assign_seconds.observe((now - s.opened_at).max(0) as f64 / 1000.0);
                        }
                        gw.pipeline.events.send(GatewayEvent::Assigned {
                            session_id,
                            agent: agent.clone(),
                            group: decision.group.clone(),
                        });
                    }
                    Action::Queue { group, wait, position, decision, .. } => {
                        gw.store
                            .record_decision(session_id, &serde_json::to_value(decision).unwrap_or_default(), now)
                            .await?;
                        let state = match wait {
                            huiliu_routing::WaitState::OffHours { .. } => SessionState::OffHours,
                            _ => SessionState::Queued,
                        };
                        gw.store
                            .set_waiting(
                                session_id,
                                state,
                                Some(group),
                                i64::from(decision.priority),
                                Some(&decision.category),
                            )
                            .await?;
                        gw.pipeline.events.send(GatewayEvent::Queued {
                            session_id,
                            group: group.clone(),
                            position: *position,
                        });
                    }
                    Action::NotifyBuyer { text, .. } => {
                        let request = ReplyRequest {
                            session_id,
                            author: SYSTEM_AUTHOR.into(),
                            content: vec![Content::text(text.clone())],
                        };
                        if let Err(e) = gw.pipeline.reply(request, now).await {
                            tracing::warn!(session = session_id, "routing notice not sent: {e}");
                        }
                    }
                    Action::Unassign { agent, .. } => {
                        gw.pipeline.events.send(GatewayEvent::Unassigned { session_id, agent: agent.clone() });
                    }
                    Action::FirstResponseOverdue { agent, .. } => {
                        tracing::warn!(session = session_id, agent, "first response overdue and nobody else has room");
                        gw.pipeline.events.send(GatewayEvent::Alert {
                            kind: "first_response_overdue".into(),
                            session_id: Some(session_id),
                            detail: agent.clone(),
                        });
                    }
                }
                Ok(())
            }
            .await;
            if let Err(e) = result {
                tracing::error!(session = session_id, "routing action not recorded: {e}");
            }
        }
        self.wake.notify_one();
    }

    /// Calls the router at each of its deadlines (overflow waits, first-response limits,
    /// opening hours, sticky waits) for the life of the process.
    pub async fn run_deadlines(self: Arc<Self>, gw: Arc<Gateway>) {
        loop {
            let next = self.router.lock().await.next_deadline();
            let sleep = match next {
                Some(at) => Duration::from_millis((at - huiliu_domain::now_millis()).clamp(0, 60_000) as u64),
                None => Duration::from_secs(60),
            };
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {
                    let actions = self.router.lock().await.tick(huiliu_domain::now_millis());
                    if !actions.is_empty() {
                        self.execute(&gw, actions).await;
                    }
                }
                _ = self.wake.notified() => {}
            }
        }
    }
}
