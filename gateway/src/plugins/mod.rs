//! The plugin host: loads connector libraries from the plugins directory and creates one
//! connector instance per configured shop.
//!
//! Architecture invariant: a bad plugin never takes the daemon down. A file that is not a
//! library, lacks the entry symbol, speaks another ABI version or fails/panics in init is
//! rejected with a one-line reason and the others load. A panic inside any later call becomes
//! an error for that call only, logged with the plugin id and counted in
//! `huiliu_plugin_panics_total`.

#[allow(unsafe_code)]
mod loader;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use huiliu_sdk::abi::host::{CallError, Instance, Plugin};
use huiliu_sdk::{
    Capability, ChannelData, ChannelOpen, ChannelOutcome, ConnectionNeed, Frame, HttpPush, HttpRequest, HttpResponse,
    Manifest, Millis, OutgoingMessage, PushOutcome, SendOutcome, ShopConfig, TokenGrant, TransferRequest,
};

use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// A validated shop, settings resolved to strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shop {
    pub id: String,
    pub platform: String,
    pub name: String,
    pub enabled: bool,
    pub settings: BTreeMap<String, String>,
}

/// A plugin library that loaded and initialized.
#[derive(Debug, Clone)]
pub struct LoadedPlugin {
    pub path: PathBuf,
    pub plugin: Plugin,
    pub manifest: Manifest,
}

/// A file in the plugins directory that was not loaded, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedFile {
    pub path: PathBuf,
    pub reason: String,
}

/// Every plugin found in the plugins directory.
#[derive(Debug, Clone, Default)]
pub struct PluginHost {
    pub loaded: Vec<LoadedPlugin>,
    pub rejected: Vec<RejectedFile>,
}

/// Whether `path` looks like a shared library by name (`*.so`, `*.dylib`, `*.dll`).
fn is_library_name(path: &Path) -> bool {
    let suffix = std::env::consts::DLL_SUFFIX.trim_start_matches('.');
    path.extension().and_then(|e| e.to_str()) == Some(suffix)
}

impl PluginHost {
    /// Loads every `*.so` (platform library suffix) file in `dir`, in name order.
    pub fn load_dir(dir: &Path) -> PluginHost {
        let mut host = PluginHost::default();
        let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) => {
                host.rejected
                    .push(RejectedFile { path: dir.to_path_buf(), reason: format!("cannot read directory: {e}") });
                return host;
            }
        };
        paths.retain(|p| p.is_file() && is_library_name(p));
        paths.sort();
        for path in paths {
            match load_one(&path) {
                Ok(loaded) => match host.loaded.iter().find(|l| l.manifest.id == loaded.manifest.id) {
                    Some(first) => host.rejected.push(RejectedFile {
                        reason: format!(
                            "duplicate plugin id `{}` (already loaded from {})",
                            loaded.manifest.id,
                            first.path.display()
                        ),
                        path,
                    }),
                    None => host.loaded.push(loaded),
                },
                Err(reason) => host.rejected.push(RejectedFile { path, reason }),
            }
        }
        for r in &host.rejected {
            tracing::warn!(path = %r.path.display(), "plugin rejected: {}", r.reason);
        }
        for l in &host.loaded {
            tracing::info!(plugin = %l.manifest.id, version = %l.manifest.version, path = %l.path.display(), "plugin loaded");
        }
        host
    }

    /// The plugin serving `platform`.
    pub fn for_platform(&self, platform: &str) -> Option<&LoadedPlugin> {
        self.loaded.iter().find(|l| l.manifest.platform == platform || l.manifest.id == platform)
    }

    /// Problems with `shop` against its plugin's declared keys (unknown plugin, missing
    /// required key, unknown key), each as `(key, message)`.
    pub fn validate_shop(&self, shop: &Shop) -> Vec<(String, String)> {
        let Some(plugin) = self.for_platform(&shop.platform) else {
            let known: Vec<&str> = self.loaded.iter().map(|l| l.manifest.id.as_str()).collect();
            return vec![(
                "platform".into(),
                format!("no loaded plugin serves platform `{}` (loaded: {})", shop.platform, known.join(", ")),
            )];
        };
        let keys = &plugin.manifest.config_keys;
        let mut problems = Vec::new();
        for k in keys.iter().filter(|k| k.required) {
            if shop.settings.get(&k.name).is_none_or(|v| v.is_empty()) {
                problems.push((
                    format!("settings.{}", k.name),
                    format!("required by the {} plugin: {}", plugin.manifest.id, k.doc),
                ));
            }
        }
        // Keys a shop can receive without but not reply without: a shop that cannot answer
        // buyers is a configuration error for `huiliu check`, not something to find in production.
        if plugin.manifest.capabilities.contains(&Capability::Send) {
            for k in keys.iter().filter(|k| k.required_to_send && !k.required) {
                if shop.settings.get(&k.name).is_none_or(|v| v.is_empty()) {
                    problems.push((
                        format!("settings.{}", k.name),
                        format!(
                            "required to send replies by the {} plugin (the shop could receive but never answer): {}",
                            plugin.manifest.id, k.doc
                        ),
                    ));
                }
            }
        }
        for name in shop.settings.keys() {
            if !keys.iter().any(|k| &k.name == name) {
                let known: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
                problems.push((
                    format!("settings.{name}"),
                    format!("unknown key for the {} plugin (known: {})", plugin.manifest.id, known.join(", ")),
                ));
            }
        }
        problems
    }

    /// Creates the connector instance for `shop` as configured (`configured`) with `settings`
    /// (the configured ones, overlaid with tokens refreshed earlier).
    pub fn instantiate(
        &self,
        configured: &Shop,
        settings: BTreeMap<String, String>,
        metrics: Arc<Metrics>,
    ) -> Result<ShopConnector, String> {
        let shop = configured;
        let plugin =
            self.for_platform(&shop.platform).ok_or_else(|| format!("no plugin for platform `{}`", shop.platform))?;
        let config = ShopConfig { shop_id: shop.id.clone(), values: settings };
        match plugin.plugin.create(&config) {
            Ok(instance) => Ok(ShopConnector {
                shop: shop.id.clone(),
                plugin_id: plugin.manifest.id.clone(),
                platform: plugin.manifest.platform.clone(),
                capabilities: plugin.manifest.capabilities.clone(),
                configured: shop.clone(),
                retired: CancellationToken::new(),
                instance,
                metrics,
                token_expires_at: std::sync::atomic::AtomicI64::new(0),
            }),
            Err(e) => {
                if e.is_panic() {
                    metrics.plugin_panic(&plugin.manifest.id, "create");
                }
                Err(e.to_string())
            }
        }
    }
}

/// Loads, validates and initializes one library.
fn load_one(path: &Path) -> Result<LoadedPlugin, String> {
    let plugin = loader::open(path)?;
    let manifest = plugin.init().map_err(|e| match e {
        CallError::Panicked(m) => format!("init panicked: {m}"),
        other => format!("init failed: {other}"),
    })?;
    if manifest.id != plugin.id() {
        return Err(format!("manifest id `{}` differs from the table's `{}`", manifest.id, plugin.id()));
    }
    Ok(LoadedPlugin { path: path.to_path_buf(), plugin, manifest })
}

/// The connectors of the served shops, by (platform, shop id). The set changes when
/// `shops.toml` is reloaded: a caller holds the `Arc` of the connector it is using, so a call in
/// flight finishes on the instance it started with.
#[derive(Debug, Default)]
pub struct Connectors(RwLock<BTreeMap<(String, String), Arc<ShopConnector>>>);

impl Connectors {
    pub fn new(map: BTreeMap<(String, String), Arc<ShopConnector>>) -> Connectors {
        Connectors(RwLock::new(map))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<(String, String), Arc<ShopConnector>>> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The connector of `shop` on `platform`.
    pub fn get(&self, platform: &str, shop: &str) -> Option<Arc<ShopConnector>> {
        self.read().get(&(platform.to_owned(), shop.to_owned())).cloned()
    }

    /// The connector serving shop id `shop` (ids are unique across platforms).
    pub fn by_shop(&self, shop: &str) -> Option<Arc<ShopConnector>> {
        self.read().values().find(|c| c.shop == shop).cloned()
    }

    /// Every connector now serving.
    pub fn all(&self) -> Vec<Arc<ShopConnector>> {
        self.read().values().cloned().collect()
    }

    /// `platform/shop` of each.
    pub fn names(&self) -> Vec<String> {
        self.read().keys().map(|(p, s)| format!("{p}/{s}")).collect()
    }

    /// Serves `connector` from now on; the connector it replaces (same platform and shop), if
    /// any, is retired and returned.
    pub fn insert(&self, connector: Arc<ShopConnector>) -> Option<Arc<ShopConnector>> {
        let key = (connector.platform.clone(), connector.shop.clone());
        let old = self.0.write().unwrap_or_else(|p| p.into_inner()).insert(key, connector);
        if let Some(old) = &old {
            old.retire();
        }
        old
    }

    /// Stops serving `shop` on `platform`; the connector is retired and returned.
    pub fn remove(&self, platform: &str, shop: &str) -> Option<Arc<ShopConnector>> {
        let old = self.0.write().unwrap_or_else(|p| p.into_inner()).remove(&(platform.to_owned(), shop.to_owned()));
        if let Some(old) = &old {
            old.retire();
        }
        old
    }
}

/// One shop's connector: the plugin instance plus the bookkeeping every call needs.
#[derive(Debug)]
pub struct ShopConnector {
    pub shop: String,
    pub plugin_id: String,
    pub platform: String,
    pub capabilities: Vec<Capability>,
    /// The shop as `shops.toml` configured it (a reload compares it to decide what changed).
    pub configured: Shop,
    /// Cancelled when a reload replaces or removes this connector: its channels close, and
    /// nothing new starts on it.
    retired: CancellationToken,
    instance: Instance,
    metrics: Arc<Metrics>,
    /// The expiry of the stored access token this connector runs with (0: the configured one):
    /// a cluster node whose connector runs an older one than the store holds adopts the new one.
    pub token_expires_at: std::sync::atomic::AtomicI64,
}

impl ShopConnector {
    /// Marks the connector as no longer serving; its channel tasks end.
    pub fn retire(&self) {
        self.retired.cancel();
    }

    pub fn is_retired(&self) -> bool {
        self.retired.is_cancelled()
    }

    /// Completes when the connector is retired.
    pub async fn until_retired(&self) {
        self.retired.cancelled().await;
    }

    /// Logs and counts a panic; passes every result through.
    fn watch<T>(&self, op: &'static str, result: Result<T, CallError>) -> Result<T, CallError> {
        if let Err(CallError::Panicked(message)) = &result {
            tracing::error!(plugin = %self.plugin_id, shop = %self.shop, op, "plugin panicked: {message}");
            self.metrics.plugin_panic(&self.plugin_id, op);
        }
        result
    }

    pub fn has(&self, capability: Capability) -> bool {
        self.capabilities.contains(&capability)
    }
    pub fn connections(&self) -> Result<Vec<ConnectionNeed>, CallError> {
        self.watch("connections", self.instance.connections())
    }
    pub fn decode_push(&self, push: &HttpPush, now: Millis) -> Result<PushOutcome, CallError> {
        self.watch("decode_push", self.instance.decode_push(push, now))
    }
    pub fn channel_open(&self, channel: &str, now: Millis) -> Result<ChannelOpen, CallError> {
        self.watch("channel_open", self.instance.channel_open(channel, now))
    }
    pub fn channel_data(&self, channel: &str, data: &ChannelData, now: Millis) -> Result<ChannelOutcome, CallError> {
        self.watch("channel_data", self.instance.channel_data(channel, data, now))
    }
    pub fn channel_tick(&self, channel: &str, now: Millis) -> Result<Vec<Frame>, CallError> {
        self.watch("channel_tick", self.instance.channel_tick(channel, now))
    }
    pub fn channel_closed(&self, channel: &str, now: Millis) -> Result<(), CallError> {
        self.watch("channel_closed", self.instance.channel_closed(channel, now))
    }
    pub fn encode_send(&self, message: &OutgoingMessage, now: Millis) -> Result<HttpRequest, CallError> {
        self.watch("encode_send", self.instance.encode_send(message, now))
    }
    pub fn classify_send(&self, response: &HttpResponse, now: Millis) -> Result<SendOutcome, CallError> {
        self.watch("classify_send", self.instance.classify_send(response, now))
    }
    pub fn encode_transfer(&self, transfer: &TransferRequest, now: Millis) -> Result<HttpRequest, CallError> {
        self.watch("encode_transfer", self.instance.encode_transfer(transfer, now))
    }
    pub fn classify_transfer(&self, response: &HttpResponse, now: Millis) -> Result<SendOutcome, CallError> {
        self.watch("classify_transfer", self.instance.classify_transfer(response, now))
    }
    /// What `message` needs before `encode_send`; a plugin built before the op existed (it
    /// answers "unknown op") needs nothing.
    pub fn prepare_send(&self, message: &OutgoingMessage, now: Millis) -> Result<huiliu_sdk::SendPrep, CallError> {
        match self.instance.prepare_send(message, now) {
            Err(CallError::Status { code, .. }) if code == huiliu_sdk::abi::status::UNKNOWN_OP => {
                Ok(huiliu_sdk::SendPrep::Ready)
            }
            other => self.watch("prepare_send", other),
        }
    }
    pub fn encode_upload(
        &self,
        message: &OutgoingMessage,
        element: u32,
        media: &[u8],
        now: Millis,
    ) -> Result<HttpRequest, CallError> {
        self.watch("encode_upload", self.instance.encode_upload(message, element, media, now))
    }
    pub fn uploaded(
        &self,
        message: &OutgoingMessage,
        element: u32,
        response: &HttpResponse,
        now: Millis,
    ) -> Result<huiliu_sdk::UploadOutcome, CallError> {
        self.watch("uploaded", self.instance.uploaded(message, element, response, now))
    }
    pub fn complete_lookup(
        &self,
        context: &[u8],
        response: &HttpResponse,
        now: Millis,
    ) -> Result<huiliu_sdk::LookupOutcome, CallError> {
        self.watch("complete_lookup", self.instance.complete_lookup(context, response, now))
    }
    pub fn token_refresh(&self, now: Millis, force: bool) -> Result<Option<HttpRequest>, CallError> {
        self.watch("token_refresh", self.instance.token_refresh(now, force))
    }
    pub fn token_refreshed(&self, response: &HttpResponse, now: Millis) -> Result<TokenGrant, CallError> {
        self.watch("token_refreshed", self.instance.token_refreshed(response, now))
    }
}
