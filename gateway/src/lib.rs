//! # huiliu-gateway — the Huiliu daemon
//!
//! The gateway owns every socket, timer, database row and agent; connector plugins own the
//! platforms' wire formats. See `ARCHITECTURE.md` at the repository root for the code map.
//!
//! Architecture invariant: the gateway knows no platform wire format. Everything it learns of
//! a platform arrives as `huiliu_sdk` types through [`plugins::ShopConnector`].

// `unsafe` is allowed in exactly one module: `plugins::loader`.
#![deny(unsafe_code)]

pub mod api;
pub mod auth;
pub mod config;
pub mod demo;
pub mod events;
pub mod flow;
pub mod ingress;
pub mod metrics;
pub mod outbox;
pub mod plugins;
pub mod reload;
pub mod services;
pub mod telemetry;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use config::GatewayConfig;
use flow::Flow;
use huiliu_privacy::Filters;
use huiliu_store::{Store, StoreError, StoreOptions};
use metrics::Metrics;
use plugins::{PluginHost, ShopConnector};
use services::blacklist::Blacklist;

/// The running gateway's shared state.
#[derive(Debug)]
pub struct Gateway {
    pub config: GatewayConfig,
    pub host: PluginHost,
    /// One connector per enabled shop, keyed by (platform, shop id).
    pub connectors: BTreeMap<(String, String), Arc<ShopConnector>>,
    /// Enabled shops whose connector could not be created, with the reason.
    pub shop_errors: Vec<(String, String)>,
    pub metrics: Arc<Metrics>,
    pub store: Store,
    /// The inbound flow and the reply door (with live routing, when `routing.toml` exists).
    pub flow: Arc<Flow>,
    /// The HTTP client every platform call goes through.
    pub http: reqwest::Client,
    /// Channel states for `/readyz` and the status API, by `platform/shop/channel`.
    pub channel_status: Mutex<BTreeMap<String, String>>,
    /// The blacklist (also the pipeline's screen stage).
    pub blacklist: Arc<Blacklist>,
    /// Workbench users and the login limiter.
    pub auth: auth::Auth,
    /// Actions the routing restore produced, executed once background work starts.
    restore_actions: Mutex<Vec<huiliu_routing::Action>>,
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
}

impl Gateway {
    /// Opens the store, loads the plugins and creates a connector for every enabled shop
    /// (with tokens refreshed earlier taking precedence over the configured ones). Shop
    /// problems are logged and kept for `/readyz`; they never stop the other shops.
    pub async fn start(config: GatewayConfig) -> Result<Arc<Gateway>, StartError> {
        let filters = Filters::new(&config.filters).map_err(|errors| {
            StartError::Filters(errors.into_iter().map(|(k, m)| format!("{k}: {m}")).collect::<Vec<_>>().join("; "))
        })?;
        let metrics = Arc::new(Metrics::new());
        let url = config.store_url();
        if let Some(path) = url.strip_prefix("sqlite://")
            && let Some(dir) = std::path::Path::new(path).parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| StartError::DataDir(dir.display().to_string(), e))?;
        }
        let options = StoreOptions { group_commit: config.store.group_commit, ..StoreOptions::default() };
        let store =
            Store::open(&url, options).await.map_err(|source| StartError::Store { url: redact_url(&url), source })?;
        let tokens = store.tokens().await.unwrap_or_default();
        let blacklist = Arc::new(
            Blacklist::load(store.clone())
                .await
                .map_err(|source| StartError::Store { url: redact_url(&url), source })?,
        );

        let host = PluginHost::load_dir(&config.plugins_dir());
        metrics.plugins_loaded.set(host.loaded.len() as i64);
        metrics.plugins_rejected.set(host.rejected.len() as i64);
        let mut connectors = BTreeMap::new();
        let mut shop_errors = Vec::new();
        for shop in config.shops.iter().filter(|s| s.enabled) {
            let mut shop = shop.clone();
            if let Some(t) = tokens.iter().find(|t| t.platform == shop.platform && t.shop == shop.id) {
                shop.settings.insert("access_token".into(), t.grant.access_token.clone());
                shop.settings.insert("token_expires_at".into(), t.grant.expires_at.to_string());
                if let Some(r) = &t.grant.refresh_token {
                    shop.settings.insert("refresh_token".into(), r.clone());
                }
            }
            match host.instantiate(&shop, metrics.clone()) {
                Ok(c) => {
                    tracing::info!(shop = %shop.id, plugin = %c.plugin_id, "shop connector ready");
                    connectors.insert((c.platform.clone(), shop.id.clone()), Arc::new(c));
                }
                Err(reason) => {
                    tracing::error!(shop = %shop.id, platform = %shop.platform, "shop not served: {reason}");
                    shop_errors.push((shop.id.clone(), reason));
                }
            }
        }
        let events = events::EventHub::new();
        events.seed(
            store
                .open_sessions()
                .await
                .map_err(|source| StartError::Store { url: redact_url(&url), source })?
                .into_iter()
                .map(|s| (s.id, s.agent, s.skill_group)),
        );
        let sealer = (!config.privacy.seal_key.is_empty())
            .then(|| huiliu_privacy::seal::Sealer::from_hex(&config.privacy.seal_key))
            .transpose()
            .map_err(|e| StartError::Filters(format!("privacy.seal_key: {e}")))?;
        let (routing, restore_actions) = match &config.routing {
            Some(routing) => {
                let (r, actions) = services::routing::Routing::restore(
                    routing.clone(),
                    &store,
                    metrics.clone(),
                    events.clone(),
                    huiliu_domain::now_millis(),
                )
                .await
                .map_err(StartError::Routing)?;
                (Some(Arc::new(r)), actions)
            }
            None => (None, Vec::new()),
        };
        let flow = Arc::new(Flow::new(flow::Parts {
            store: store.clone(),
            mask: Arc::new(filters.masker),
            screen: blacklist.clone(),
            compliance: Arc::new(filters.compliance),
            metrics: metrics.clone(),
            events,
            idle_close_ms: i64::from(config.sessions.idle_close_minutes) * 60_000,
            sealer,
            restrict_reply: config.filters.blacklist.restrict_reply.clone(),
            routing,
        }));
        let auth = auth::Auth::new(config.users.clone(), &config.api);
        Ok(Arc::new(Gateway {
            auth,
            config,
            host,
            connectors,
            shop_errors,
            metrics,
            store,
            flow,
            http: outbox::http::client(),
            channel_status: Mutex::default(),
            blacklist,
            restore_actions: Mutex::new(restore_actions),
        }))
    }

    /// Starts the channels, the outbox worker, the token refresher and the idle-session sweeper.
    pub fn spawn_background(self: &Arc<Self>) {
        ingress::channels::spawn_all(self);
        tokio::spawn(reload::watch(self.clone()));
        let (flow, restored) =
            (self.flow.clone(), std::mem::take(&mut *self.restore_actions.lock().unwrap_or_else(|p| p.into_inner())));
        tokio::spawn(async move {
            flow.apply(restored).await;
            flow.run_deadlines().await;
        });
        tokio::spawn(outbox::run(self.clone()));
        tokio::spawn(outbox::tokens::run(self.clone()));
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

    /// Whether every enabled shop is served.
    pub fn is_ready(&self) -> bool {
        self.shop_errors.is_empty()
    }

    /// The connector of `shop` on `platform`.
    pub fn connector(&self, platform: &str, shop: &str) -> Option<&Arc<ShopConnector>> {
        self.connectors.get(&(platform.to_owned(), shop.to_owned()))
    }
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
