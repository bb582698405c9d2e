//! Prometheus metrics, typed: one field per metric family, labels as structs.
//!
//! Architecture invariant: no label ever carries personal data or free text from a platform —
//! only plugin ids, shop ids, op names and fixed reason words.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginOpLabels {
    pub plugin: String,
    pub op: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PlatformReasonLabels {
    pub platform: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PlatformLabels {
    pub platform: String,
}

/// Every metric the gateway exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    /// Panics caught inside plugin calls.
    pub plugin_panics: Family<PluginOpLabels, Counter>,
    /// Plugin libraries loaded / rejected at start.
    pub plugins_loaded: Gauge,
    pub plugins_rejected: Gauge,
    /// Pushes received at `/hooks`, by platform.
    pub pushes_received: Family<PlatformLabels, Counter>,
    /// Pushes refused before parsing, by platform and reason (`bad_signature`, `unknown_shop`, …).
    pub pushes_rejected: Family<PlatformReasonLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("huiliu");
        let m = Metrics {
            registry: Mutex::new(Registry::default()),
            plugin_panics: Family::default(),
            plugins_loaded: Gauge::default(),
            plugins_rejected: Gauge::default(),
            pushes_received: Family::default(),
            pushes_rejected: Family::default(),
        };
        registry.register("plugin_panics", "Panics caught inside plugin calls", m.plugin_panics.clone());
        registry.register("plugins_loaded", "Plugin libraries loaded", m.plugins_loaded.clone());
        registry.register(
            "plugins_rejected",
            "Files in the plugins directory that were rejected",
            m.plugins_rejected.clone(),
        );
        registry.register("pushes_received", "Platform pushes received", m.pushes_received.clone());
        registry.register("pushes_rejected", "Platform pushes refused before parsing", m.pushes_rejected.clone());
        *m.registry.lock().unwrap_or_else(|p| p.into_inner()) = registry;
        m
    }

    /// Counts a plugin panic.
    pub fn plugin_panic(&self, plugin: &str, op: &str) {
        self.plugin_panics.get_or_create(&PluginOpLabels { plugin: plugin.into(), op: op.into() }).inc();
    }

    /// The text exposition format for `/metrics`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &registry);
        out
    }
}
