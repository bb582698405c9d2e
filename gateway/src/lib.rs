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
pub mod config;
pub mod filters;
pub mod metrics;
pub mod plugins;
pub mod router;
pub mod sessions;
pub mod store;
pub mod telemetry;

use std::collections::BTreeMap;
use std::sync::Arc;

use config::GatewayConfig;
use metrics::Metrics;
use plugins::{PluginHost, ShopConnector};

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
}

impl Gateway {
    /// Loads the plugins and creates a connector for every enabled shop. Problems are logged
    /// and kept for `/readyz`; they never stop the other shops.
    pub fn start(config: GatewayConfig) -> Gateway {
        let metrics = Arc::new(Metrics::new());
        let host = PluginHost::load_dir(&config.plugins_dir());
        metrics.plugins_loaded.set(host.loaded.len() as i64);
        metrics.plugins_rejected.set(host.rejected.len() as i64);
        let mut connectors = BTreeMap::new();
        let mut shop_errors = Vec::new();
        for shop in config.shops.iter().filter(|s| s.enabled) {
            match host.instantiate(shop, metrics.clone()) {
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
        Gateway { config, host, connectors, shop_errors, metrics }
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

/// Milliseconds since the Unix epoch: the one clock the gateway hands to connectors.
pub fn now_millis() -> huiliu_sdk::Millis {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}
