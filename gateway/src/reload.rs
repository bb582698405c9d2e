//! Live configuration reload: on SIGHUP, when a watched file changes, or on
//! `POST /api/v1/config/reload`. The new configuration is validated whole (every error
//! reported) and swapped in atomically; a bad file keeps the running configuration and the
//! reason is logged, counted and returned. Messages in flight finish with the stages they
//! started with.
//!
//! Reloadable: `filters.toml` (privacy mask, compliance, restrict auto-reply), `shops.toml`
//! (shops added, removed or changed: see [`reload_shops`]), `routing.toml` (groups, agents,
//! rules; sessions in flight keep working: see `Engine::reload`), `faq.toml` (the knowledge
//! base, with the CSV exports it names), `users.toml` (logins: a user removed or disabled there
//! loses access at once, their tokens stop resolving) and `quick_replies.toml` (the templates
//! offered from the next request on). Plugins, the store and the listener need a restart.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::config::{FILTERS_FILE, SHOPS_FILE};
use crate::flow::Flow;
use crate::ingress::channels::Channels;
use crate::metrics::Metrics;
use crate::plugins::{Connectors, PluginHost, Shop, ShopConnector};
use crate::services::status::{ShopsState, Status};
use huiliu_domain::ConfigError;
use huiliu_privacy::Filters;
use huiliu_store::Store;

/// What reloading needs: where the files are, the shops as configured now, and what takes the
/// new configuration.
#[derive(Debug)]
pub struct Reload {
    pub dir: PathBuf,
    /// The shops as `shops.toml` configured them at the last successful load.
    pub shops: Mutex<Vec<Shop>>,
    /// The workbench users, replaced when `users.toml` changes.
    pub users: Arc<crate::services::auth::Auth>,
    /// The quick-reply templates, replaced when `quick_replies.toml` changes.
    pub quick_replies: Arc<std::sync::RwLock<Vec<crate::services::quick::QuickReply>>>,
    pub flow: Arc<Flow>,
    pub metrics: Arc<Metrics>,
    /// What a shops reload changes.
    pub serving: Serving,
    /// The knowledge base (faq.toml), swapped whole on reload.
    pub knowledge: Arc<crate::services::knowledge::Knowledge>,
}

/// The parts that serve shops: the plugins, the connectors, their channels and their status.
#[derive(Debug, Clone)]
pub struct Serving {
    pub host: Arc<PluginHost>,
    pub connectors: Arc<Connectors>,
    pub channels: Arc<Channels>,
    pub store: Store,
    pub status: Arc<Status>,
    pub metrics: Arc<Metrics>,
}

impl Serving {
    /// A connector for `shop`, with access tokens refreshed earlier (`tokens`, read from the
    /// store once per start or reload) taking precedence over the configured ones.
    fn connector_with(&self, shop: &Shop, tokens: &[huiliu_store::StoredToken]) -> Result<ShopConnector, String> {
        let mut settings = shop.settings.clone();
        let stored = tokens.iter().find(|t| t.platform == shop.platform && t.shop == shop.id);
        if let Some(t) = stored {
            settings.insert("access_token".into(), t.grant.access_token.clone());
            settings.insert("token_expires_at".into(), t.grant.expires_at.to_string());
            if let Some(r) = &t.grant.refresh_token {
                settings.insert("refresh_token".into(), r.clone());
            }
        }
        let connector = self.host.instantiate(shop, settings, self.metrics.clone())?;
        if let Some(t) = stored {
            connector.token_expires_at.store(t.grant.expires_at, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(connector)
    }

    /// Creates a connector for every enabled shop; the shops that could not start are returned
    /// with the reason, and never stop the others.
    pub async fn start_all(&self, shops: &[Shop]) {
        let mut errors = Vec::new();
        let tokens = self.store.tokens().await.unwrap_or_default();
        for shop in shops.iter().filter(|s| s.enabled) {
            match self.connector_with(shop, &tokens) {
                Ok(c) => {
                    tracing::info!(shop = %shop.id, plugin = %c.plugin_id, "shop connector ready");
                    self.connectors.insert(Arc::new(c));
                }
                Err(reason) => {
                    tracing::error!(shop = %shop.id, platform = %shop.platform, "shop not served: {reason}");
                    errors.push((shop.id.clone(), reason));
                }
            }
        }
        self.publish(shops, errors);
    }

    fn publish(&self, shops: &[Shop], errors: Vec<(String, String)>) {
        self.status.set_shops(ShopsState {
            served: self.connectors.names(),
            errors,
            names: shops.iter().map(|s| (s.id.clone(), s.name.clone())).collect(),
        });
    }
}

impl crate::api::Reloader for Reload {
    fn reload_all(&self) -> crate::api::ReloadFuture<'_> {
        Box::pin(async move {
            reload_all(self)
                .await
                .map(|r| r.reloaded)
                .map_err(|errors| errors.iter().map(ToString::to_string).collect())
        })
    }
}

/// The knowledge-base editor reloads faq.toml as a change of the file does.
impl crate::services::faq_file::FaqHost for Reload {
    fn reload_knowledge(&self) -> Result<(), Vec<String>> {
        reload_knowledge(self).map(|_| ()).map_err(|errors| errors.iter().map(ToString::to_string).collect())
    }

    fn shop_ids(&self) -> Vec<String> {
        self.shops.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|s| s.id.clone()).collect()
    }
}

/// What a reload did.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadReport {
    pub reloaded: Vec<String>,
}

/// Reloads every reloadable file (filters, shops, then routing); a bad file keeps the running
/// configuration of its part, and every error is returned.
pub async fn reload_all(gw: &Reload) -> Result<ReloadReport, Vec<ConfigError>> {
    let mut report = reload(gw)?;
    if let Some(file) = reload_users(gw)? {
        report.reloaded.push(file);
    }
    if let Some(file) = reload_quick_replies(gw)? {
        report.reloaded.push(file);
    }
    if let Some(file) = reload_shops(gw).await? {
        report.reloaded.push(file);
    }
    report.reloaded.extend(reload_knowledge(gw)?);
    if gw.flow.routing.is_some() {
        let mut errors = Vec::new();
        let shops = gw.shops.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let routing = crate::config::load_routing(&gw.dir, &shops, &mut errors);
        let file = gw.dir.join(huiliu_routing::ROUTING_FILE).display().to_string();
        match routing {
            Some(r) if errors.is_empty() => match gw.flow.reload_routing(r).await {
                Ok(()) => {
                    crate::metrics::Metrics::count(&gw.metrics.config_reloads, "routing", "ok");
                    tracing::info!("configuration reloaded: {file}");
                    report.reloaded.push(file);
                }
                Err(messages) => {
                    errors.extend(messages.into_iter().map(|message| ConfigError {
                        file: file.clone(),
                        key: String::new(),
                        message,
                    }));
                }
            },
            None if errors.is_empty() => errors.push(ConfigError {
                file: file.clone(),
                key: String::new(),
                message: "routing.toml is gone; routing keeps its running configuration".into(),
            }),
            _ => {}
        }
        if !errors.is_empty() {
            crate::metrics::Metrics::count(&gw.metrics.config_reloads, "routing", "rejected");
            for e in &errors {
                tracing::error!("reload rejected, the running configuration stays: {e}");
            }
            return Err(errors);
        }
    }
    Ok(report)
}

/// Reloads `faq.toml` (and the CSV exports it names), checked whole: a file with errors keeps
/// the running knowledge base. A removed file removes the knowledge base (the bot falls silent).
fn reload_knowledge(gw: &Reload) -> Result<Option<String>, Vec<ConfigError>> {
    let shops = gw.shops.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut errors = Vec::new();
    let faq = crate::config::load_knowledge(&gw.dir, &shops, &mut errors);
    let file = gw.dir.join(huiliu_knowledge::FAQ_FILE).display().to_string();
    if !errors.is_empty() {
        crate::metrics::Metrics::count(&gw.metrics.config_reloads, "knowledge", "rejected");
        for e in &errors {
            tracing::error!("reload rejected, the running knowledge base stays: {e}");
        }
        return Err(errors);
    }
    let entries = faq.as_ref().map(|f| f.entry.len()).unwrap_or(0);
    if !gw.knowledge.swap(faq.as_ref()) {
        return Ok(None);
    }
    crate::metrics::Metrics::count(&gw.metrics.config_reloads, "knowledge", "ok");
    tracing::info!(entries, "configuration reloaded: {file}");
    Ok(Some(file))
}

/// Reloads `users.toml` when it lists other users than those in force: the file is checked
/// whole (a bad file keeps the running users). A missing file keeps them too. Returns the file
/// when the users changed.
pub fn reload_users(gw: &Reload) -> Result<Option<String>, Vec<ConfigError>> {
    let path = gw.dir.join(crate::services::auth::USERS_FILE);
    let file = path.display().to_string();
    if !path.exists() {
        return Ok(None);
    }
    let mut errors = Vec::new();
    let users = crate::config::load_users(&gw.dir, &mut errors);
    if !errors.is_empty() {
        crate::metrics::Metrics::count(&gw.metrics.config_reloads, "users", "rejected");
        for e in &errors {
            tracing::error!("reload rejected, the running users stay: {e}");
        }
        return Err(errors);
    }
    if users == gw.users.users() {
        return Ok(None);
    }
    gw.users.set_users(users);
    crate::metrics::Metrics::count(&gw.metrics.config_reloads, "users", "ok");
    tracing::info!("configuration reloaded: {file}");
    Ok(Some(file))
}

/// Reloads `quick_replies.toml` when its templates differ from those in force (a missing file
/// means the built-in templates); a bad file keeps the running ones. Returns the file when
/// the templates changed.
pub fn reload_quick_replies(gw: &Reload) -> Result<Option<String>, Vec<ConfigError>> {
    let file = gw.dir.join(crate::services::quick::QUICK_REPLIES_FILE).display().to_string();
    let mut errors = Vec::new();
    let replies = crate::config::load_quick_replies(&gw.dir, &mut errors);
    if !errors.is_empty() {
        crate::metrics::Metrics::count(&gw.metrics.config_reloads, "quick_replies", "rejected");
        for e in &errors {
            tracing::error!("reload rejected, the running quick replies stay: {e}");
        }
        return Err(errors);
    }
    let mut current = gw.quick_replies.write().unwrap_or_else(|p| p.into_inner());
    if *current == replies {
        return Ok(None);
    }
    *current = replies;
    crate::metrics::Metrics::count(&gw.metrics.config_reloads, "quick_replies", "ok");
    tracing::info!("configuration reloaded: {file}");
    Ok(Some(file))
}

/// What a reload of shops.toml changes, by shop id.
#[derive(Debug, Default, PartialEq, Eq)]
struct ShopChanges<'a> {
    /// Enabled shops with no running connector, or whose configuration changed.
    start: Vec<&'a Shop>,
    /// Running connectors whose shop is gone or disabled.
    stop: Vec<(String, String)>,
}

/// Compares the running connectors with the new configuration.
fn shop_changes<'a>(running: &[Arc<ShopConnector>], shops: &'a [Shop]) -> ShopChanges<'a> {
    let wanted: BTreeMap<(&str, &str), &Shop> =
        shops.iter().filter(|s| s.enabled).map(|s| ((s.platform.as_str(), s.id.as_str()), s)).collect();
    let mut changes = ShopChanges::default();
    for c in running {
        if !wanted.contains_key(&(c.configured.platform.as_str(), c.shop.as_str())) {
            changes.stop.push((c.platform.clone(), c.shop.clone()));
        }
    }
    for shop in wanted.values() {
        let same = running.iter().any(|c| {
            let was = &c.configured;
            was.id == shop.id && was.platform == shop.platform && was.settings == shop.settings
        });
        if !same {
            changes.start.push(shop);
        }
    }
    changes
}

/// Reloads `shops.toml`: new shops start serving, removed or disabled ones stop (their channels
/// close; replies still queued for them fail with the reason), changed ones get a new connector
/// whose channels connect at once — so fixed credentials take effect without waiting for the
/// slow retry of a stopped channel. The file is checked whole first (syntax, each shop's keys
/// against its plugin, the routing file's shop references, and every new connector created):
/// on any error nothing changes. Returns the file when something changed.
pub async fn reload_shops(gw: &Reload) -> Result<Option<String>, Vec<ConfigError>> {
    let path = gw.dir.join(SHOPS_FILE);
    let file = path.display().to_string();
    let reject = |errors: Vec<ConfigError>| {
        crate::metrics::Metrics::count(&gw.metrics.config_reloads, "shops", "rejected");
        for e in &errors {
            tracing::error!("reload rejected, the running shops stay: {e}");
        }
        errors
    };
    if !path.exists() {
        let running = gw.shops.lock().unwrap_or_else(|p| p.into_inner()).iter().any(|s| s.enabled);
        if !running {
            return Ok(None);
        }
        return Err(reject(vec![ConfigError {
            file,
            key: String::new(),
            message: "shops.toml is gone; the running shops stay (an empty file stops them all)".into(),
        }]));
    }
    let mut errors = Vec::new();
    let shops = crate::config::load_shops(&gw.dir, &|name| std::env::var(name).ok(), &mut errors);
    let previous = gw.shops.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if previous == shops && errors.is_empty() {
        return Ok(None);
    }
    for (i, shop) in shops.iter().enumerate().filter(|(_, s)| s.enabled) {
        for (key, message) in gw.serving.host.validate_shop(shop) {
            errors.push(ConfigError { file: file.clone(), key: format!("shop[{i}].{key}"), message });
        }
    }
    // The routing file must still name only configured shops.
    let mut routing_errors = Vec::new();
    if gw.flow.routing.is_some()
        && let Some(routing) = crate::config::load_routing(&gw.dir, &shops, &mut routing_errors)
    {
        let ids: Vec<&str> = shops.iter().map(|s| s.id.as_str()).collect();
        errors.extend(routing.check_shops(&ids, &file));
    }
    if !errors.is_empty() {
        return Err(reject(errors));
    }
    let running = gw.serving.connectors.all();
    let changes = shop_changes(&running, &shops);
    // Every new connector first: a new or changed shop that cannot start rejects the whole
    // file. A shop unchanged since it failed before is tried again, and stays in the shop
    // errors if it still fails.
    let mut started = Vec::new();
    let mut still_failing = Vec::new();
    let tokens = gw.serving.store.tokens().await.unwrap_or_default();
    for shop in &changes.start {
        match gw.serving.connector_with(shop, &tokens) {
            Ok(c) => started.push(Arc::new(c)),
            Err(reason) if previous.contains(shop) => still_failing.push((shop.id.clone(), reason)),
            Err(reason) => errors.push(ConfigError {
                file: file.clone(),
                key: format!("shop `{}`", shop.id),
                message: format!("the {} connector refused the settings: {reason}", shop.platform),
            }),
        }
    }
    if !errors.is_empty() {
        return Err(reject(errors));
    }
    for (platform, shop) in &changes.stop {
        gw.serving.connectors.remove(platform, shop);
        gw.serving.status.forget_shop(platform, shop);
        tracing::info!(shop = %shop, platform = %platform, "shop no longer served (shops.toml reloaded)");
    }
    for connector in started {
        let replaced = gw.serving.connectors.insert(connector.clone());
        gw.serving.status.forget_shop(&connector.platform, &connector.shop);
        crate::ingress::channels::spawn_for(&gw.serving.channels, &connector);
        let what = if replaced.is_some() { "shop connector replaced" } else { "shop connector ready" };
        tracing::info!(shop = %connector.shop, plugin = %connector.plugin_id, "{what} (shops.toml reloaded)");
    }
    gw.serving.publish(&shops, still_failing);
    *gw.shops.lock().unwrap_or_else(|p| p.into_inner()) = shops;
    crate::metrics::Metrics::count(&gw.metrics.config_reloads, "shops", "ok");
    tracing::info!("configuration reloaded: {file}");
    Ok(Some(file))
}

/// Reloads the filters; on any error nothing changes and every error is returned.
pub fn reload(gw: &Reload) -> Result<ReloadReport, Vec<ConfigError>> {
    let file = gw.dir.join(FILTERS_FILE).display().to_string();
    let mut errors = Vec::new();
    let config = crate::config::load_filters(&gw.dir, &mut errors);
    if !errors.is_empty() {
        return Err(fail(gw, errors));
    }
    let filters = Filters::new(&config).map_err(|errs| {
        fail(gw, errs.into_iter().map(|(key, message)| ConfigError { file: file.clone(), key, message }).collect())
    })?;
    gw.flow.swap_filters(
        Arc::new(filters.masker),
        Arc::new(filters.compliance),
        config.blacklist.restrict_reply.clone(),
    );
    crate::metrics::Metrics::count(&gw.metrics.config_reloads, "filters", "ok");
    tracing::info!("configuration reloaded: {file}");
    Ok(ReloadReport { reloaded: vec![file] })
}

fn fail(gw: &Reload, errors: Vec<ConfigError>) -> Vec<ConfigError> {
    crate::metrics::Metrics::count(&gw.metrics.config_reloads, "filters", "rejected");
    for e in &errors {
        tracing::error!("reload rejected, the running configuration stays: {e}");
    }
    errors
}

fn modified(path: &PathBuf) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Reloads on SIGHUP and when a watched file's modification time changes (checked every 2 s).
pub async fn watch(gw: Arc<Reload>) {
    let watched = [
        gw.dir.join(FILTERS_FILE),
        gw.dir.join(SHOPS_FILE),
        gw.dir.join(huiliu_routing::ROUTING_FILE),
        gw.dir.join(huiliu_knowledge::FAQ_FILE),
        gw.dir.join(crate::services::auth::USERS_FILE),
        gw.dir.join(crate::services::quick::QUICK_REPLIES_FILE),
    ];
    let mut last: Vec<_> = watched.iter().map(modified).collect();
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        #[cfg(unix)]
        let by_signal = async {
            match hangup.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let by_signal = std::future::pending::<()>();
        tokio::select! {
            _ = by_signal => {
                tracing::info!("SIGHUP: reloading configuration");
                let _ = reload_all(&gw).await;
            }
            _ = tick.tick() => {
                let now: Vec<_> = watched.iter().map(modified).collect();
                if now != last {
                    last = now;
                    tracing::info!("configuration files changed: reloading");
                    let _ = reload_all(&gw).await;
                }
            }
        }
    }
}

/// In a cluster, the node holding a shop's token lease refreshes its token and stores it;
/// every other node adopts the stored token (a new connector, its channels handed over)
/// within 5 s, well before the old one expires (refreshes happen ahead of expiry).
pub async fn adopt_tokens(gw: Arc<Reload>, leases: Arc<crate::cluster::Leases>) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        every.tick().await;
        let Ok(tokens) = gw.serving.store.tokens().await else { continue };
        for t in &tokens {
            let Some(current) = gw.serving.connectors.get(&t.platform, &t.shop) else { continue };
            if leases.fence(&crate::cluster::token_lease(&t.platform, &t.shop)).is_some()
                || current.token_expires_at.load(std::sync::atomic::Ordering::SeqCst) == t.grant.expires_at
            {
                continue;
            }
            let shop = gw.shops.lock().unwrap_or_else(|p| p.into_inner()).iter().find(|s| s.id == t.shop).cloned();
            let Some(shop) = shop.filter(|s| s.platform == t.platform) else { continue };
            match gw.serving.connector_with(&shop, std::slice::from_ref(t)) {
                Ok(connector) => {
                    let connector = Arc::new(connector);
                    gw.serving.connectors.insert(connector.clone());
                    crate::ingress::channels::spawn_for(&gw.serving.channels, &connector);
                    tracing::info!(shop = %t.shop, expires_at = t.grant.expires_at, "adopted the token another node refreshed");
                }
                Err(e) => tracing::warn!(shop = %t.shop, "the refreshed token could not be adopted: {e}"),
            }
        }
    }
}
