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
//!
//! In a cluster (`[cluster]`) one node at a time runs the engine: the holder of the routing
//! lease ([`crate::cluster::ROUTING_LEASE`]), whose engine was rebuilt from the store when it took
//! the lease ([`Routing::take_over`]). On the other nodes the same calls are forwarded to it
//! over NATS ([`RoutingRequest`]) and answer nothing to apply. The leader records every
//! assignment, unassignment and queueing under its epoch (`huiliu_store::Fence`): the store
//! refuses them once another node took over, and an assignment above the agent's cap or of a
//! session assigned already.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use huiliu_domain::session::SessionState;
use huiliu_routing::{Action, AgentStatus, Conversation, Engine, RestoredAgent, RestoredSession, RoutingConfig};
use huiliu_sdk::Millis;
use huiliu_store::{Fence, FencedAssign, Store, StoreError};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, Notify};

use crate::cluster::{Bus, Leases, ROUTING_LEASE};
use crate::events::{EventHub, GatewayEvent};
use crate::metrics::{GroupLabels, KindLabels, KindResultLabels, Metrics};

/// What a node asks the routing leader (JSON over NATS, `{cluster}.routing`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum RoutingRequest {
    /// A session needs an agent (no answer awaited).
    Arrive {
        session: i64,
    },
    /// An agent replied (no answer awaited).
    FirstResponse {
        session: i64,
    },
    /// A session closed (no answer awaited).
    Close {
        session: i64,
    },
    SetStatus {
        agent: String,
        status: AgentStatus,
    },
    Transfer {
        session: i64,
        to: huiliu_routing::TransferTo,
        note: huiliu_routing::HandoverNote,
    },
    State,
    AgentState {
        agent: String,
    },
}

impl RoutingRequest {
    /// The operation's word (metrics).
    pub fn op(&self) -> &'static str {
        match self {
            RoutingRequest::Arrive { .. } => "arrive",
            RoutingRequest::FirstResponse { .. } => "first_response",
            RoutingRequest::Close { .. } => "close",
            RoutingRequest::SetStatus { .. } => "set_status",
            RoutingRequest::Transfer { .. } => "transfer",
            RoutingRequest::State => "state",
            RoutingRequest::AgentState { .. } => "agent_state",
        }
    }

    /// Whether the sender waits for an answer.
    pub fn awaits_answer(&self) -> bool {
        !matches!(
            self,
            RoutingRequest::Arrive { .. } | RoutingRequest::FirstResponse { .. } | RoutingRequest::Close { .. }
        )
    }
}

/// How long a forwarded arrival, first reply or close is tried before it is left to the store.
pub const FORWARD_PATIENCE: std::time::Duration = std::time::Duration::from_secs(120);

/// The leader's answer: `Ok(body)` or the refusal in words.
pub type RoutingAnswer = Result<serde_json::Value, String>;

/// The cluster side of routing: the bus to the leader and this node's leases.
#[derive(Debug)]
pub struct RoutingCluster {
    pub bus: Bus,
    pub leases: Arc<Leases>,
}

enum Mode<'a> {
    /// One node, or this node leads.
    Local,
    /// Another node leads: forward.
    Follow(&'a RoutingCluster),
}

/// The live routing engine and what it records.
#[derive(Debug)]
pub struct Routing {
    engine: Mutex<Engine>,
    /// Wakes the deadline task when deadlines may have moved.
    pub wake: Notify,
    store: Store,
    metrics: Arc<Metrics>,
    events: EventHub,
    cluster: Option<RoutingCluster>,
    /// In a cluster: the routing lease's epoch the engine was rebuilt under (0: not leading).
    led: AtomicI64,
    /// Handle times learned from the conversations closed recently (for the wait the bot's
    /// `long_wait` mode reads), refreshed by [`Routing::learn_handle_times`].
    handle_times: std::sync::RwLock<Option<huiliu_routing::HandleTimes>>,
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

/// What routing may look at for a session, from its routing inputs (all text masked).
fn conversation_of(session_id: i64, inputs: huiliu_store::RoutingInputs) -> Conversation {
    Conversation {
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
    }
}

/// Whether a database error is one a retry may not meet again (deadlock, serialization).
fn transient(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("40P01" | "40001")))
}

/// The engine rebuilt from the store: agents' recorded presence, assignments and waiting
/// sessions with their arrival times, and the actions the rebuild produced.
async fn rebuild(config: RoutingConfig, store: &Store, now: Millis) -> Result<(Engine, Vec<Action>), String> {
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
    // Two reads, not three per session: a takeover waits for this.
    let mut inputs = store.open_routing_inputs().await.map_err(|e| e.to_string())?;
    for s in store.open_sessions().await.map_err(|e| e.to_string())? {
        if matches!(s.state, SessionState::Bot) {
            continue; // held by the auto-reply: no agent work
        }
        let conversation = match inputs.remove(&s.id) {
            Some(i) => conversation_of(s.id, i),
            // Opened between the two reads.
            None => match store.routing_inputs(s.id).await.map_err(|e| e.to_string())? {
                Some(i) => conversation_of(s.id, i),
                None => continue, // gone meanwhile (erased)
            },
        };
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
    Ok((engine, actions))
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
        let (engine, actions) = rebuild(config, store, now).await?;
        Ok((Routing::around(engine, store, metrics, events), actions))
    }

    /// Routing around `engine`, on this node alone ([`Routing::in_cluster`] makes it a node's).
    fn around(engine: Engine, store: &Store, metrics: Arc<Metrics>, events: EventHub) -> Routing {
        Routing {
            engine: Mutex::new(engine),
            wake: Notify::new(),
            store: store.clone(),
            metrics,
            events,
            cluster: None,
            led: AtomicI64::new(0),
            handle_times: Default::default(),
        }
    }

    /// A cluster node's routing before it leads: the configuration only, nothing read from the
    /// store — the engine is rebuilt when this node takes the routing lease
    /// ([`Routing::take_over`]), so reading every open session at start would be thrown away.
    pub fn following(
        config: RoutingConfig,
        store: &Store,
        metrics: Arc<Metrics>,
        events: EventHub,
        now: Millis,
    ) -> Result<Routing, String> {
        let (engine, _) = Engine::restore(config, &[], Vec::new(), now)
            .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))?;
        Ok(Routing::around(engine, store, metrics, events))
    }

    /// The handle times learned so far (empty until the first [`Routing::learn_handle_times`]:
    /// the configured one everywhere).
    pub fn handle_times(&self) -> huiliu_routing::HandleTimes {
        self.handle_times.read().unwrap_or_else(|p| p.into_inner()).clone().unwrap_or_default()
    }

    /// Reads from the store how long the conversations closed in the last
    /// `huiliu_routing::LEARN_WINDOW_DAYS` days held their agent, per group, and keeps it for
    /// the wait estimates (the bot's `long_wait` and the engine's queue position); logs a group's handle time in use when it changes source or moves by
    /// more than 10 %. Every node reads for itself (the store is shared).
    pub async fn learn_handle_times(&self, now: Millis) -> Result<(), StoreError> {
        let since = now - huiliu_routing::LEARN_WINDOW_DAYS * 86_400_000;
        let mut learned = huiliu_routing::HandleTimes::default();
        for g in self.store.closed_handling(since).await? {
            learned.groups.insert(g.group, huiliu_routing::ClosedSample::from_total_ms(g.closed, g.total_ms));
        }
        // The queue-position estimate the engine tells a waiting buyer starts from it too.
        self.engine.lock().await.adopt_handle_times(learned.learned_ms());
        let (before, after) = {
            let mut kept = self.handle_times.write().unwrap_or_else(|p| p.into_inner());
            let before = kept.replace(learned.clone());
            (before, learned)
        };
        // Said at the first reading, then when a group's value changes source or moves by more
        // than 10 %.
        let said: Vec<(String, huiliu_routing::HandleTime)> = self
            .with_config(|c| {
                c.groups
                    .iter()
                    .filter_map(|g| {
                        let new = after.for_group(c, &g.id);
                        let Some(before) = &before else { return Some((g.id.clone(), new)) };
                        let old = before.for_group(c, &g.id);
                        let moved = old.seconds().abs_diff(new.seconds()) * 10 > old.seconds();
                        (std::mem::discriminant(&old) != std::mem::discriminant(&new) || moved)
                            .then(|| (g.id.clone(), new))
                    })
                    .collect()
            })
            .await;
        for (group, handle) in said {
            tracing::info!(group = %group, "handle time for the wait estimate: {}", handle.describe());
        }
        Ok(())
    }

    /// Makes this a cluster node's routing: it forwards to the leader until it leads.
    pub fn in_cluster(mut self, cluster: RoutingCluster) -> Routing {
        self.cluster = Some(cluster);
        self
    }

    fn mode(&self) -> Mode<'_> {
        let Some(cluster) = &self.cluster else { return Mode::Local };
        let led = self.led.load(Ordering::SeqCst);
        match cluster.leases.fence(ROUTING_LEASE) {
            Some(f) if led != 0 && f.epoch == led => Mode::Local,
            _ => Mode::Follow(cluster),
        }
    }

    /// Whether this node runs the engine (always, on one node).
    pub fn leads(&self) -> bool {
        matches!(self.mode(), Mode::Local)
    }

    /// This node took the routing lease under `epoch`: the engine is rebuilt from the store (the
    /// agents' recorded presence, every open session), and the actions of the rebuild returned,
    /// to apply.
    pub async fn take_over(&self, epoch: i64, now: Millis) -> Result<Vec<Action>, String> {
        let started = std::time::Instant::now();
        let mut engine = self.engine.lock().await;
        let (fresh, actions) = rebuild(engine.config().clone(), &self.store, now).await?;
        *engine = fresh;
        engine.adopt_handle_times(self.handle_times().learned_ms());
        self.led.store(epoch, Ordering::SeqCst);
        tracing::info!(epoch, rebuilt_ms = started.elapsed().as_millis() as u64, "routing: this node leads");
        Ok(actions)
    }

    /// This node no longer holds the routing lease: it stops deciding.
    pub fn step_down(&self) {
        if self.led.swap(0, Ordering::SeqCst) != 0 {
            tracing::warn!("routing: this node no longer leads");
        }
    }

    /// Sends `request` to the routing leader. A request whose caller waits (status, transfer,
    /// state) is answered or refused now; one whose caller does not (an arrival, a first reply,
    /// a close) is sent in the background until the leader confirms it — through a NATS outage or
    /// a takeover — for up to [`FORWARD_PATIENCE`] (after that the store still holds it, and the
    /// next leader's rebuild finds it).
    async fn forward(&self, cluster: &RoutingCluster, request: RoutingRequest) -> RoutingAnswer {
        let op = request.op();
        let payload: bytes::Bytes = serde_json::to_vec(&request).map_err(|e| e.to_string())?.into();
        let subject = cluster.bus.routing_subject();
        if !request.awaits_answer() {
            let (client, metrics) = (cluster.bus.client.clone(), self.metrics.clone());
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                let mut pause = std::time::Duration::from_millis(100);
                let result = loop {
                    match client.request(subject.clone(), payload.clone()).await {
                        Ok(_) => break "ok",
                        Err(e) if started.elapsed() < FORWARD_PATIENCE => {
                            tracing::debug!(op, "routing request not confirmed yet: {e}");
                            tokio::time::sleep(pause).await;
                            pause = (pause * 2).min(std::time::Duration::from_secs(2));
                        }
                        Err(e) => {
                            tracing::warn!(
                                op,
                                "routing request given up (the store keeps it for the next leader): {e}"
                            );
                            break "error";
                        }
                    }
                };
                metrics
                    .cluster_forwarded
                    .get_or_create(&KindResultLabels { kind: op.into(), result: result.into() })
                    .inc();
            });
            return Ok(serde_json::Value::Null);
        }
        let result = match cluster.bus.client.request(subject, payload).await {
            Ok(reply) => serde_json::from_slice::<RoutingAnswer>(&reply.payload)
                .unwrap_or_else(|e| Err(format!("the routing leader's answer was not understood: {e}"))),
            Err(e) => Err(format!("no routing leader answered ({e}); try again in a few seconds")),
        };
        let word = if result.is_ok() { "ok" } else { "error" };
        self.metrics.cluster_forwarded.get_or_create(&KindResultLabels { kind: op.into(), result: word.into() }).inc();
        if let Err(e) = &result {
            tracing::warn!(op, "routing request to the leader failed: {e}");
        }
        result
    }

    /// A session needs an agent: the actions that place it (none when the engine already holds
    /// it, or the session is closed, held by the auto-reply or assigned).
    pub async fn arrive(&self, session_id: i64, now: Millis) -> Vec<Action> {
        if let Mode::Follow(c) = self.mode() {
            let _ = self.forward(c, RoutingRequest::Arrive { session: session_id }).await;
            return Vec::new();
        }
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
        let conversation = conversation_of(session_id, inputs);
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
        if let Mode::Follow(c) = self.mode() {
            let _ = self.forward(c, RoutingRequest::FirstResponse { session: session_id }).await;
            return Vec::new();
        }
        self.engine.lock().await.first_response(session_id as u64, now).unwrap_or_default()
    }

    /// The session closed (frees the agent's capacity).
    pub async fn close(&self, session_id: i64, now: Millis) -> Vec<Action> {
        if let Mode::Follow(c) = self.mode() {
            let _ = self.forward(c, RoutingRequest::Close { session: session_id }).await;
            return Vec::new();
        }
        self.engine.lock().await.close(session_id as u64, now).unwrap_or_default()
    }

    /// An agent's status changes; the presence is recorded for restarts.
    pub async fn set_status(&self, agent: &str, status: AgentStatus, now: Millis) -> Result<Vec<Action>, String> {
        if let Mode::Follow(c) = self.mode() {
            // Recorded here first: a leader taking over later restores it from the store.
            if !self.with_config(|cfg| cfg.agents.iter().any(|a| a.id == agent)).await {
                return Err(format!("unknown agent `{agent}`"));
            }
            if let Err(e) = self.store.save_presence(agent, status_word(status), None, Some(now), now).await {
                return Err(format!("presence not recorded: {e}"));
            }
            let request = RoutingRequest::SetStatus { agent: agent.to_owned(), status };
            if let Err(e) = self.forward(c, request).await {
                if !e.starts_with("no routing leader") {
                    return Err(e);
                }
                // No leader right now: the status stands in the store for the next one.
                self.events
                    .send(GatewayEvent::AgentStatus { agent: agent.to_owned(), status: status_word(status).into() });
            }
            return Ok(Vec::new());
        }
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
        if let Mode::Follow(c) = self.mode() {
            return self
                .forward(c, RoutingRequest::Transfer { session: session_id, to, note })
                .await
                .map(|_| Vec::new());
        }
        self.engine.lock().await.transfer(session_id as u64, to, note, now).map_err(|e| e.to_string())
    }

    /// Swaps in a new routing configuration; `Err` keeps the running one.
    pub async fn reload(&self, config: RoutingConfig, now: Millis) -> Result<Vec<Action>, Vec<String>> {
        let leads = self.leads();
        let actions = self
            .engine
            .lock()
            .await
            .reload(config, now)
            .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>())?;
        // A follower keeps the configuration (for the API) and decides nothing.
        Ok(if leads { actions } else { Vec::new() })
    }

    /// What fell due at `now` (overflow waits, first-response limits, opening hours, sticky waits).
    pub async fn tick(&self, now: Millis) -> Vec<Action> {
        if !self.leads() {
            return Vec::new();
        }
        self.engine.lock().await.tick(now)
    }

    /// When the engine next needs [`Routing::tick`] (never on a follower).
    pub async fn next_deadline(&self) -> Option<Millis> {
        if !self.leads() {
            return None;
        }
        self.engine.lock().await.next_deadline()
    }

    /// Where the engine has a session (assigned and whether answered, or waiting); a follower
    /// knows nothing (callers read the store).
    pub async fn session(&self, session_id: i64) -> Option<huiliu_routing::SessionView> {
        if !self.leads() {
            return None;
        }
        self.engine.lock().await.session(session_id as u64)
    }

    /// A snapshot of the engine's state (queues, agents) for the API and the dashboard (on a
    /// follower, the leader's; its own stale one when no leader answers).
    pub async fn state(&self) -> huiliu_routing::RouterState {
        if let Mode::Follow(c) = self.mode()
            && let Ok(body) = self.forward(c, RoutingRequest::State).await
            && let Ok(state) = serde_json::from_value(body)
        {
            return state;
        }
        self.engine.lock().await.state()
    }

    /// One agent's live state, without a snapshot of every agent.
    pub async fn agent_state(&self, agent: &str) -> Option<huiliu_routing::AgentState> {
        if let Mode::Follow(c) = self.mode()
            && let Ok(body) = self.forward(c, RoutingRequest::AgentState { agent: agent.to_owned() }).await
            && let Ok(state) = serde_json::from_value(body)
        {
            return state;
        }
        self.engine.lock().await.agent_state(agent)
    }

    /// Answers a request forwarded by another node; only the leader is asked. The actions are
    /// returned for the caller (the flow) to apply.
    pub async fn serve(&self, request: RoutingRequest, now: Millis) -> (RoutingAnswer, Vec<Action>) {
        let none = |r: Result<Vec<Action>, String>| match r {
            Ok(actions) => (Ok(serde_json::Value::Null), actions),
            Err(e) => (Err(e), Vec::new()),
        };
        match request {
            RoutingRequest::Arrive { session } => none(Ok(self.arrive(session, now).await)),
            RoutingRequest::FirstResponse { session } => none(Ok(self.first_response(session, now).await)),
            RoutingRequest::Close { session } => none(Ok(self.close(session, now).await)),
            RoutingRequest::SetStatus { agent, status } => none(self.set_status(&agent, status, now).await),
            RoutingRequest::Transfer { session, to, note } => none(self.transfer(session, to, note, now).await),
            RoutingRequest::State => {
                (serde_json::to_value(self.engine.lock().await.state()).map_err(|e| e.to_string()), Vec::new())
            }
            RoutingRequest::AgentState { agent } => (
                serde_json::to_value(self.engine.lock().await.agent_state(&agent)).map_err(|e| e.to_string()),
                Vec::new(),
            ),
        }
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
        let fence = self.cluster.as_ref().map(|c| Fence {
            lease: ROUTING_LEASE.into(),
            holder: c.leases.node().to_owned(),
            // The epoch the engine decided under, even if the lease has lapsed since: the store
            // is the judge.
            epoch: self.led.load(Ordering::SeqCst),
        });
        let mut recorded = self.record_in_store(action, fence.as_ref(), now).await;
        // A deadlock or serialization failure against a concurrent transaction (intake on
        // another node) wrote nothing: tried again, a few times.
        for _ in 0..3 {
            match &recorded {
                Err(StoreError::Db(sqlx_error)) if fence.is_some() && transient(sqlx_error) => {
                    tracing::debug!(session = session_id, "routing write tried again: {sqlx_error}");
                    recorded = self.record_in_store(action, fence.as_ref(), now).await;
                }
                _ => break,
            }
        }
        match recorded {
            Err(e @ (StoreError::Fenced(_) | StoreError::OverCap { .. } | StoreError::Claimed(_))) => {
                let kind = match (&e, action) {
                    (StoreError::Fenced(_), Action::Assign { .. }) => "assign",
                    (StoreError::Fenced(_), Action::Unassign { .. }) => "unassign",
                    (StoreError::Fenced(_), _) => "queue",
                    (StoreError::OverCap { .. }, _) => "over_cap",
                    _ => "claimed",
                };
                self.metrics.cluster_fenced_writes.get_or_create(&KindLabels { kind: kind.into() }).inc();
                tracing::error!(session = session_id, "routing write refused by the store ({kind}): {e}");
                // This node's engine no longer matches the store: stop deciding and let the
                // lease be taken again (by any node), from the store.
                self.step_down();
                if let (Some(c), Some(f)) = (&self.cluster, &fence) {
                    c.leases.relinquish(f).await;
                }
                return Err(e);
            }
            Err(e) => {
                if let (Some(c), Some(f)) = (&self.cluster, &fence) {
                    // The engine decided something the store does not hold: rebuild from the
                    // store rather than go on with a different picture.
                    tracing::error!(session = session_id, "routing write failed, rebuilding from the store: {e}");
                    self.step_down();
                    c.leases.relinquish(f).await;
                }
                return Err(e);
            }
            Ok(()) => {}
        }
        self.announce(action, now).await;
        Ok(())
    }

    /// What recording `action` writes (under `fence` in a cluster).
    async fn record_in_store(&self, action: &Action, fence: Option<&Fence>, now: Millis) -> Result<(), StoreError> {
        let session_id = action.session() as i64;
        match action {
            Action::Assign { agent, decision, .. } => {
                let recorded = serde_json::to_value(decision).unwrap_or_default();
                let priority = i64::from(decision.priority);
                match fence {
                    None => {
                        self.store
                            .assign(session_id, Some(&decision.group), agent, priority, Some(&recorded), now)
                            .await
                    }
                    Some(fence) => {
                        let cap = self.engine.lock().await.agent_cap(agent);
                        let a = FencedAssign {
                            session_id,
                            group: Some(&decision.group),
                            agent,
                            priority,
                            decision: Some(&recorded),
                            cap,
                            now,
                        };
                        self.store.assign_fenced(fence, &a).await
                    }
                }
            }
            Action::Queue { group, wait, decision, .. } => {
                let state = match wait {
                    huiliu_routing::WaitState::OffHours { .. } => SessionState::OffHours,
                    _ => SessionState::Queued,
                };
                let recorded = serde_json::to_value(decision).unwrap_or_default();
                let priority = i64::from(decision.priority);
                match fence {
                    None => {
                        self.store.record_decision(session_id, &recorded, now).await?;
                        self.store.set_waiting(session_id, state, Some(group), priority, Some(&decision.category)).await
                    }
                    Some(fence) => {
                        self.store
                            .queue_fenced(
                                fence,
                                session_id,
                                state,
                                Some(group),
                                priority,
                                Some(&decision.category),
                                &recorded,
                                now,
                            )
                            .await
                    }
                }
            }
            Action::Unassign { agent, .. } => match fence {
                None => Ok(()),
                Some(fence) => self.store.unassign_fenced(fence, session_id, agent).await.map(|_| ()),
            },
            Action::NotifyBuyer { .. } | Action::FirstResponseOverdue { .. } => Ok(()),
        }
    }

    /// Tells the event hub (and the metrics) what was recorded.
    async fn announce(&self, action: &Action, now: Millis) {
        let session_id = action.session() as i64;
        match action {
            Action::Assign { agent, decision, .. } => {
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
            Action::Queue { group, position, .. } => {
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
    }
}
