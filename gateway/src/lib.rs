//! # huiliu-gateway — the Huiliu daemon
//!
//! The gateway owns every socket, timer, database row and agent; connector plugins own the
//! platforms' wire formats. See `ARCHITECTURE.md` at the repository root for the code map.
//!
//! This crate is the composition root: [`Gateway::start`] reads nothing but the loaded
//! configuration and wires every part with exactly what it needs. Layers, top to bottom (a
//! module imports only from its own layer's dependencies below it; `tests/tests/architecture.rs`
//! checks it):
//!
//! 1. the root: `lib.rs`, `main.rs`, `config/` (the loader), `reload.rs`, `demo.rs`, `telemetry.rs`,
//!    `ops.rs` (backup, restore, migrate);
//! 2. the edge: `api/` (the HTTP surface and `/api/v1`), `ingress/` (pushes and channels);
//! 3. the flow: `flow/` — the one inbound flow and the one reply door;
//! 4. services and workers: `services/`, `outbox/`;
//! 5. infrastructure: `plugins/` (the plugin host), `events.rs`, `metrics.rs`, `cluster/`
//!    (leases and NATS, for several nodes);
//!
//! and below them the crates `huiliu-store`, `huiliu-routing`, `huiliu-privacy`, `huiliu-domain`,
//! `huiliu-sdk`.
//!
//! Architecture invariant: the gateway knows no platform wire format. Everything it learns of
//! a platform arrives as `huiliu_sdk` types through [`plugins::ShopConnector`].

// `unsafe` is allowed in exactly one module: `plugins::loader`.
#![deny(unsafe_code)]

pub mod api;
pub mod cluster;
pub mod config;
pub mod demo;
pub mod events;
pub mod flow;
pub mod ingress;
pub mod metrics;
pub mod ops;
pub mod outbox;
pub mod plugins;
pub mod reload;
pub mod services;
pub mod telemetry;

use std::sync::{Arc, Mutex};

use config::GatewayConfig;
use flow::Flow;
use huiliu_privacy::Filters;
use huiliu_store::{Store, StoreError, StoreOptions};
use metrics::Metrics;
use plugins::{Connectors, PluginHost};
use services::blacklist::Blacklist;
use services::status::Status;

/// The running gateway: every part, wired.
#[derive(Debug)]
pub struct Gateway {
    pub config: GatewayConfig,
    pub host: Arc<PluginHost>,
    pub connectors: Arc<Connectors>,
    /// Plugins, shops, shops that could not start, channel states.
    pub status: Arc<Status>,
    pub metrics: Arc<Metrics>,
    pub store: Store,
    /// The inbound flow and the reply door (with live routing, when `routing.toml` exists).
    pub flow: Arc<Flow>,
    /// The blacklist (also the flow's screen stage).
    pub blacklist: Arc<Blacklist>,
    outbox: Arc<outbox::Outbox>,
    channels: Arc<ingress::channels::Channels>,
    reload: Arc<reload::Reload>,
    /// The lead's dashboard (its per-minute sampler runs in the background).
    dashboard: Arc<services::dashboard::Dashboard>,
    /// The whole HTTP surface.
    router: axum::Router,
    /// Actions the routing restore produced, applied once background work starts.
    restore_actions: Mutex<Vec<huiliu_routing::Action>>,
    /// In a cluster: this node's leases and its NATS connection.
    pub cluster: Option<(Arc<cluster::Leases>, cluster::Bus)>,
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the store at {url}: {source}")]
    Store { url: String, source: StoreError },
    #[error("cannot create the data directory {0}: {1}")]
    DataDir(String, std::io::Error),
    #[error("the filters configuration is invalid: {0}")]
    Filters(String),
    #[error("routing could not be restored: {0}")]
    Routing(String),
    #[error("cannot join the cluster: {0}")]
    Cluster(String),
}

impl Gateway {
    /// Opens the store, loads the plugins and creates a connector for every enabled shop
    /// (with tokens refreshed earlier taking precedence over the configured ones), restores
    /// routing, and wires the flow, the services, the workers and the HTTP surface. Shop
    /// problems are logged and kept for `/readyz`; they never stop the other shops.
    pub async fn start(config: GatewayConfig) -> Result<Arc<Gateway>, StartError> {
        let filters = Filters::new(&config.filters).map_err(|errors| {
            StartError::Filters(errors.into_iter().map(|(k, m)| format!("{k}: {m}")).collect::<Vec<_>>().join("; "))
        })?;
        let metrics = Arc::new(Metrics::new());
        let store = open_store(&config).await?;
        let store_error = |source| StartError::Store { url: redact_url(&config.store_url()), source };
        let blacklist = Arc::new(Blacklist::load(store.clone()).await.map_err(store_error)?);
        let host = Arc::new(PluginHost::load_dir(&config.plugins_dir()));
        metrics.plugins_loaded.set(host.loaded.len() as i64);
        metrics.plugins_rejected.set(host.rejected.len() as i64);
        let connectors = Arc::new(Connectors::default());
        let status =
            Arc::new(Status::new(host.loaded.iter().map(|l| l.manifest.id.clone()).collect(), Default::default()));

        let events = events::EventHub::new();
        let open = store.open_sessions().await.map_err(store_error)?;
        events.seed(open.into_iter().map(|s| (s.id, s.agent, s.skill_group)));
        let sealer = (!config.privacy.seal_key.is_empty())
            .then(|| huiliu_privacy::seal::Sealer::from_hex(&config.privacy.seal_key))
            .transpose()
            .map_err(|e| StartError::Filters(format!("privacy.seal_key: {e}")))?;
        let cluster = match &config.cluster {
            Some(c) => {
                let bus = cluster::Bus::connect(c).await.map_err(StartError::Cluster)?;
                let address = if c.advertise.is_empty() { config.server.listen.clone() } else { c.advertise.clone() };
                let leases = Arc::new(cluster::Leases::new(store.clone(), c, address, metrics.clone()));
                bus.carry_events(&events, metrics.clone());
                tracing::info!(node = %c.node_id, nats = %c.nats_url, cluster = %c.name, "cluster node");
                Some((leases, bus))
            }
            None => None,
        };
        let (routing, restore_actions) = match &config.routing {
            Some(routing) => {
                let now = huiliu_domain::now_millis();
                match &cluster {
                    // The routing leader rebuilds the engine from the store when it takes the lease.
                    Some((leases, bus)) => {
                        let r = services::routing::Routing::following(
                            routing.clone(),
                            &store,
                            metrics.clone(),
                            events.clone(),
                            now,
                        )
                        .map_err(StartError::Routing)?;
                        let cluster = services::routing::RoutingCluster { bus: bus.clone(), leases: leases.clone() };
                        (Some(Arc::new(r.in_cluster(cluster))), Vec::new())
                    }
                    None => {
                        let (r, actions) = services::routing::Routing::restore(
                            routing.clone(),
                            &store,
                            metrics.clone(),
                            events.clone(),
                            now,
                        )
                        .await
                        .map_err(StartError::Routing)?;
                        (Some(Arc::new(r)), actions)
                    }
                }
            }
            None => (None, Vec::new()),
        };
        let http = outbox::http::client();
        let outbox = Arc::new(outbox::Outbox {
            store: store.clone(),
            connectors: connectors.clone(),
            metrics: metrics.clone(),
            events: events.clone(),
            wake: Arc::default(),
            config: config.outbox.clone(),
            http: http.clone(),
            status: status.clone(),
            leases: cluster.as_ref().map(|(l, _)| l.clone()),
        });
        let flow = Arc::new(Flow::new(flow::Parts {
            store: store.clone(),
            mask: Arc::new(filters.masker),
            screen: blacklist.clone(),
            compliance: Arc::new(filters.compliance),
            metrics: metrics.clone(),
            events: events.clone(),
            idle_close_ms: i64::from(config.sessions.idle_close_minutes) * 60_000,
            sealer: sealer.clone(),
            restrict_reply: config.filters.blacklist.restrict_reply.clone(),
            routing: routing.clone(),
            outbox: outbox.clone(),
        }));

        let channels = Arc::new(ingress::channels::Channels {
            flow: flow.clone(),
            connectors: connectors.clone(),
            metrics: metrics.clone(),
            http,
            status: status.clone(),
            request_timeout_ms: config.outbox.request_timeout_ms,
            leases: cluster.as_ref().map(|(l, _)| l.clone()),
        });
        let serving = reload::Serving {
            host: host.clone(),
            connectors: connectors.clone(),
            channels: channels.clone(),
            store: store.clone(),
            status: status.clone(),
            metrics: metrics.clone(),
        };
        serving.start_all(&config.shops).await;
        let knowledge = Arc::new(services::knowledge::Knowledge::new(config.knowledge.as_ref(), store.clone()));
        flow.set_knowledge(knowledge.clone());
        // Quick replies: shared by the desk and the reloader (quick_replies.toml reloads live).
        let quick_replies = Arc::new(std::sync::RwLock::new(config.quick_replies.clone()));
        // Users: shared by the logins and the reloader (users.toml reloads live).
        let users = Arc::new(services::auth::Auth::new(config.users.clone(), &config.api));
        let reload = Arc::new(reload::Reload {
            dir: config.dir.clone(),
            shops: Mutex::new(config.shops.clone()),
            users: users.clone(),
            quick_replies: quick_replies.clone(),
            flow: flow.clone(),
            metrics: metrics.clone(),
            serving,
            knowledge: knowledge.clone(),
        });
        let dashboard = Arc::new(services::dashboard::Dashboard {
            config: config.dashboard.clone(),
            store: store.clone(),
            routing: routing.clone(),
            blacklist: blacklist.clone(),
            metrics: metrics.clone(),
            status: status.clone(),
            timeline: services::timeline::Timeline::new(),
        });
        let api = api::ApiState {
            flow: flow.clone(),
            desk: services::desk::Desk::new(
                store.clone(),
                flow.outbox_wake.clone(),
                sealer,
                quick_replies,
                status.clone(),
            )
            .with_knowledge(knowledge.clone()),
            logins: services::logins::Logins::new(
                users.clone(),
                config.dir.join(services::auth::USERS_FILE),
                store.clone(),
                config.api.admin_token.clone(),
                routing.clone(),
                config.routing.clone(),
                metrics.clone(),
            ),
            blacklist: blacklist.clone(),
            dashboard: dashboard.clone(),
            metrics: metrics.clone(),
            status: status.clone(),
            reloader: reload.clone(),
            faq: Arc::new(services::faq_file::FaqFile::new(
                config.dir.join(huiliu_knowledge::FAQ_FILE),
                store.clone(),
                reload.clone(),
            )),
            image_origins: config.api.image_origins.clone(),
            cluster: cluster.clone(),
        };
        let push = Arc::new(ingress::push::PushState {
            flow: flow.clone(),
            connectors: connectors.clone(),
            metrics: metrics.clone(),
            max_push_bytes: config.server.max_push_bytes,
            http: outbox.http.clone(),
            lookup_timeout_ms: config.outbox.request_timeout_ms.min(2_000),
        });
        let router = api::app(api, push);
        Ok(Arc::new(Gateway {
            config,
            host,
            connectors,
            status,
            metrics,
            store,
            flow,
            blacklist,
            outbox,
            channels,
            reload,
            dashboard,
            router,
            restore_actions: Mutex::new(restore_actions),
            cluster,
        }))
    }

    /// The lead's dashboard (figures, the day's per-minute series).
    pub fn dashboard(&self) -> Arc<services::dashboard::Dashboard> {
        self.dashboard.clone()
    }

    /// The whole HTTP surface: hooks, health, metrics, `/api/v1`, the workbench.
    pub fn app(&self) -> axum::Router {
        self.router.clone()
    }

    /// Starts the channels, the live reload, routing's deadlines, the outbox worker, the token
    /// refresher, the follow-ups on order events, the settling of the bot's conversations and
    /// the idle-session sweeper.
    pub fn spawn_background(self: &Arc<Self>) {
        if let Some((leases, bus)) = &self.cluster {
            tokio::spawn(leases.clone().run());
            tokio::spawn(self.flow.clone().lead_routing(leases.clone(), bus.clone()));
            if let Some(config) = &self.config.cluster {
                tokio::spawn(self.flow.clone().keep_presence(config.clone()));
            }
            carry_blacklist(self.blacklist.clone(), bus.clone());
            tokio::spawn(reload::adopt_tokens(self.reload.clone(), leases.clone()));
        }
        ingress::channels::spawn_all(&self.channels);
        tokio::spawn(reload::watch(self.reload.clone()));
        let (flow, restored) =
            (self.flow.clone(), std::mem::take(&mut *self.restore_actions.lock().unwrap_or_else(|p| p.into_inner())));
        tokio::spawn(async move {
            flow.apply(restored).await;
            flow.run_deadlines().await;
        });
        tokio::spawn(outbox::run(self.outbox.clone()));
        tokio::spawn(flow::followup::run(self.flow.clone()));
        let flow = self.flow.clone();
        tokio::spawn(async move {
            // The bot's conversations resolved by the buyer's silence (faq.toml
            // `resolved_after_minutes`); the interval follows a reloaded setting.
            loop {
                tokio::time::sleep(flow.settle_interval()).await;
                flow.settle_bot_conversations().await;
            }
        });
        if let Some(routing) = self.flow.routing.clone() {
            // The handle time of the bot's long_wait estimate, learned from recently closed
            // conversations: at start, then every 10 minutes (not per message).
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
                loop {
                    tick.tick().await;
                    if let Err(e) = routing.learn_handle_times(huiliu_domain::now_millis()).await {
                        tracing::warn!("handle times not learned (the last ones stay): {e}");
                    }
                }
            });
        }
        tokio::spawn(sweep_retention(self.store.clone(), self.config.retention, self.metrics.clone()));
        tokio::spawn(outbox::tokens::run(self.outbox.clone()));
        tokio::spawn(services::dashboard::sample_every_minute(self.dashboard.clone()));
        let flow = self.flow.clone();
        tokio::spawn(async move {
            const SUMMARY_SECS: u64 = 60;
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(SUMMARY_SECS));
            tick.tick().await;
            loop {
                tick.tick().await;
                flow.tally.log_summary(SUMMARY_SECS);
            }
        });
        let gw = self.clone();
        tokio::spawn(async move {
            let idle = gw.flow.idle_close_ms();
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(30));
            loop {
                tick.tick().await;
                let now = huiliu_domain::now_millis();
                if let Err(e) = gw.blacklist.expire(now).await {
                    tracing::warn!("blacklist expiry sweep failed: {e}");
                }
                // Decisions made by the CLI or another node.
                if let Err(e) = gw.blacklist.reload().await {
                    tracing::warn!("blacklist reload failed: {e}");
                }
                match gw.store.close_idle(now - idle, now).await {
                    Ok(closed) if !closed.is_empty() => {
                        tracing::info!(count = closed.len(), "closed idle sessions");
                        for session_id in closed {
                            gw.flow.closed(session_id, "idle").await;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!("idle-session sweep failed: {e}"),
                }
            }
        });
    }
}

/// In a cluster, a blacklist decision made through one node reaches every node at once (NATS
/// `{cluster}.blacklist`), not at their next 30-second reload: a blocked buyer creates no work
/// anywhere.
fn carry_blacklist(blacklist: Arc<Blacklist>, bus: cluster::Bus) {
    let (subject, client) = (bus.blacklist_subject(), bus.client.clone());
    let mut changes = blacklist.changes();
    let publish = (subject.clone(), client.clone());
    tokio::spawn(async move {
        while changes.changed().await.is_ok() {
            if let Err(e) = publish.1.publish(publish.0.clone(), "changed".into()).await {
                tracing::warn!("blacklist change not announced to the other nodes: {e}");
            }
        }
    });
    tokio::spawn(async move {
        use futures_util::StreamExt;
        let mut told = match client.subscribe(subject).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("cannot listen for blacklist changes (each node reloads every 30 s): {e}");
                return;
            }
        };
        while told.next().await.is_some() {
            if let Err(e) = blacklist.reload().await {
                tracing::warn!("blacklist reload failed: {e}");
            }
        }
    });
}

/// Applies the retention policy at start and then every hour.
async fn sweep_retention(store: Store, policy: huiliu_store::Retention, metrics: Arc<Metrics>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tick.tick().await;
        match store.sweep(&policy, huiliu_domain::now_millis()).await {
            Ok(report) => {
                for (kind, n) in report.kinds() {
                    metrics.retention_deleted.get_or_create(&metrics::KindLabels { kind: kind.into() }).inc_by(n);
                }
                if report != huiliu_store::SweepReport::default() {
                    tracing::info!(?report, "retention sweep");
                }
            }
            Err(e) => tracing::warn!("retention sweep failed: {e}"),
        }
    }
}

/// The listener every server of the daemon (`huiliu serve`, the demo) accepts on: each accepted
/// connection has `TCP_NODELAY` set. The agents' event stream writes small WebSocket frames, and
/// with Nagle's algorithm one could wait for the previous one's delayed ACK (up to 40 ms:
/// docs/performance.md, issue 16 sixth round); `axum::serve` leaves it off.
pub fn nodelay_listener(
    listener: tokio::net::TcpListener,
) -> axum::serve::TapIo<tokio::net::TcpListener, fn(&mut tokio::net::TcpStream)> {
    use axum::serve::ListenerExt;
    fn set_nodelay(tcp: &mut tokio::net::TcpStream) {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
    }
    // A named type, not `impl Listener`: axum gives a `TapIo` the peer's address
    // (`into_make_service_with_connect_info`), an opaque listener it cannot.
    listener.tap_io(set_nodelay as fn(&mut tokio::net::TcpStream))
}

/// Opens the store at the configured URL (creating an SQLite file's folder).
async fn open_store(config: &GatewayConfig) -> Result<Store, StartError> {
    let url = config.store_url();
    if let Some(path) = url.strip_prefix("sqlite://")
        && let Some(dir) = std::path::Path::new(path).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|e| StartError::DataDir(dir.display().to_string(), e))?;
    }
    let options = StoreOptions {
        group_commit: config.store.group_commit,
        pg_writers: config.store.pg_writers,
        ..StoreOptions::default()
    };
    Store::open(&url, options).await.map_err(|source| StartError::Store { url: redact_url(&url), source })
}

/// A URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use axum::serve::Listener;

    #[tokio::test]
    async fn every_accepted_connection_has_nodelay() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut listener = super::nodelay_listener(listener);
        for _ in 0..2 {
            let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (server_side, _) = listener.accept().await;
            assert!(server_side.nodelay().unwrap(), "the server's side of the connection has TCP_NODELAY");
        }
    }
}
