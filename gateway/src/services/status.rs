//! What is running: plugins, served shops, shops that could not start, and each long-lived
//! channel's state. Written by the composition root and the channels, read by readiness and the
//! status API.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// The gateway's running state.
#[derive(Debug, Default)]
pub struct Status {
    /// Loaded plugin ids.
    pub plugins: Vec<String>,
    /// Served shops as `platform/shop`.
    pub shops: Vec<String>,
    /// Enabled shops whose connector could not be created, with the reason.
    pub shop_errors: Vec<(String, String)>,
    /// Channel states by `platform/shop/channel`.
    channels: Mutex<BTreeMap<String, String>>,
}

impl Status {
    pub fn new(plugins: Vec<String>, shops: Vec<String>, shop_errors: Vec<(String, String)>) -> Status {
        Status { plugins, shops, shop_errors, channels: Mutex::default() }
    }

    /// Whether every enabled shop is served.
    pub fn shops_ready(&self) -> bool {
        self.shop_errors.is_empty()
    }

    pub fn set_channel(&self, key: String, state: String) {
        self.channels.lock().unwrap_or_else(|p| p.into_inner()).insert(key, state);
    }

    pub fn channels(&self) -> BTreeMap<String, String> {
        self.channels.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
