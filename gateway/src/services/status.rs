//! What is running: plugins, served shops, shops that could not start, and each long-lived
//! channel's state. Written by the composition root and the channels, read by readiness and the
//! status API.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;
use utoipa::ToSchema;

/// Where a long-lived channel stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChannelState {
    /// The platform accepted the session; data flows.
    Connected,
    /// A connection is being opened.
    Connecting,
    /// The session ended; the next attempt is at `next_attempt_ms`.
    BackingOff,
    /// The platform refused what only an operator can fix (`operator_must_act`), or the channel
    /// cannot run; it is retried slowly, at `next_attempt_ms`.
    Stopped,
}

impl ChannelState {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelState::Connected => "connected",
            ChannelState::Connecting => "connecting",
            ChannelState::BackingOff => "backing_off",
            ChannelState::Stopped => "stopped",
        }
    }
}

/// One channel's state as data, as `/readyz` and `/api/v1/status` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ChannelStatus {
    pub state: ChannelState,
    /// What the connector or the host last said about the channel, in words (the reason of a
    /// reconnect or a stop).
    pub detail: String,
    /// Whether an operator must change something (credentials, permissions) for the channel to
    /// recover.
    pub operator_must_act: bool,
    /// When the next connection attempt is due (epoch ms), while backing off or stopped.
    pub next_attempt_ms: Option<i64>,
    /// When the channel entered this state (epoch ms).
    pub since_ms: i64,
}

impl ChannelStatus {
    /// The one-line summary `channels` has always shown: `connected`, `connecting`,
    /// `reconnecting in … ms: reason`, `stopped: reason`.
    pub fn summary(&self) -> String {
        match self.state {
            ChannelState::Connected | ChannelState::Connecting => self.state.as_str().to_owned(),
            ChannelState::BackingOff => {
                let delay = self.next_attempt_ms.map_or(0, |at| at.saturating_sub(self.since_ms).max(0));
                format!("reconnecting in {delay} ms: {}", self.detail)
            }
            ChannelState::Stopped => format!("stopped: {}", self.detail),
        }
    }
}

/// Where a shop's platform authorization stands, after its last token refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenState {
    /// The last refresh succeeded.
    Ok,
    /// The last refresh failed for a reason that passes (platform error, unreachable); it is
    /// tried again.
    TemporaryFailure,
    /// The platform refused the grant itself (or the token cannot be refreshed): an operator must
    /// authorize the shop again. Refreshing stops until the shop's settings change.
    ReauthorizeNeeded,
}

/// A shop's token state as data, as `/readyz`, `/api/v1/status` and the dashboard show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TokenStatus {
    pub state: TokenState,
    /// What the platform or the connector said.
    pub detail: String,
    /// When the shop entered this state (epoch ms).
    pub since_ms: i64,
}

/// The shops part of the running state; replaced whole when `shops.toml` is reloaded.
#[derive(Debug, Clone, Default)]
pub struct ShopsState {
    /// Served shops as `platform/shop`.
    pub served: Vec<String>,
    /// Enabled shops whose connector could not be created, with the reason.
    pub errors: Vec<(String, String)>,
    /// Each configured shop's display name, by shop id.
    pub names: BTreeMap<String, String>,
}

/// The gateway's running state.
#[derive(Debug, Default)]
pub struct Status {
    /// Loaded plugin ids.
    pub plugins: Vec<String>,
    shops: Mutex<ShopsState>,
    /// Channel states by `platform/shop/channel`.
    channels: Mutex<BTreeMap<String, ChannelStatus>>,
    /// Token states by `platform/shop` (shops whose token was refreshed or failed to be).
    tokens: Mutex<BTreeMap<String, TokenStatus>>,
}

impl Status {
    pub fn new(plugins: Vec<String>, shops: ShopsState) -> Status {
        Status { plugins, shops: Mutex::new(shops), channels: Mutex::default(), tokens: Mutex::default() }
    }

    fn shops_state(&self) -> std::sync::MutexGuard<'_, ShopsState> {
        self.shops.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Served shops as `platform/shop`.
    pub fn shops(&self) -> Vec<String> {
        self.shops_state().served.clone()
    }

    /// Enabled shops whose connector could not be created, with the reason.
    pub fn shop_errors(&self) -> Vec<(String, String)> {
        self.shops_state().errors.clone()
    }

    /// Every configured shop's display name, by shop id.
    pub fn shop_names(&self) -> BTreeMap<String, String> {
        self.shops_state().names.clone()
    }

    /// The display name of shop `id` (the id when it has none or is not configured).
    pub fn shop_name(&self, id: &str) -> String {
        self.shops_state().names.get(id).cloned().unwrap_or_else(|| id.to_owned())
    }

    /// The shops after a reload.
    pub fn set_shops(&self, shops: ShopsState) {
        *self.shops_state() = shops;
    }

    /// Whether every enabled shop is served.
    pub fn shops_ready(&self) -> bool {
        self.shops_state().errors.is_empty()
    }

    pub fn set_channel(&self, key: String, status: ChannelStatus) {
        self.channels.lock().unwrap_or_else(|p| p.into_inner()).insert(key, status);
    }

    /// Forgets the channel and token states of `platform/shop` (the shop was removed or its
    /// connector replaced with new settings).
    pub fn forget_shop(&self, platform: &str, shop: &str) {
        let prefix = format!("{platform}/{shop}/");
        self.channels.lock().unwrap_or_else(|p| p.into_inner()).retain(|k, _| !k.starts_with(&prefix));
        self.tokens.lock().unwrap_or_else(|p| p.into_inner()).remove(&format!("{platform}/{shop}"));
    }

    /// Records the outcome of a token refresh for `platform/shop` (a state unchanged keeps its
    /// `since_ms`).
    pub fn set_token(&self, platform: &str, shop: &str, state: TokenState, detail: &str) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let key = format!("{platform}/{shop}");
        if tokens.get(&key).is_some_and(|t| t.state == state && t.detail == detail) {
            return;
        }
        tokens.insert(key, TokenStatus { state, detail: detail.to_owned(), since_ms: huiliu_domain::now_millis() });
    }

    /// The token state of `platform/shop`, if a refresh happened or failed.
    pub fn token(&self, platform: &str, shop: &str) -> Option<TokenStatus> {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner()).get(&format!("{platform}/{shop}")).cloned()
    }

    /// Every shop's token state by `platform/shop`.
    pub fn tokens(&self) -> BTreeMap<String, TokenStatus> {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Each channel's one-line summary (`connected`, `reconnecting in … ms: …`, `stopped: …`).
    pub fn channels(&self) -> BTreeMap<String, String> {
        self.channel_states().into_iter().map(|(k, v)| (k, v.summary())).collect()
    }

    /// Each channel's state as data.
    pub fn channel_states(&self) -> BTreeMap<String, ChannelStatus> {
        self.channels.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(state: ChannelState, detail: &str, next: Option<i64>) -> ChannelStatus {
        ChannelStatus { state, detail: detail.into(), operator_must_act: false, next_attempt_ms: next, since_ms: 1_000 }
    }

    #[test]
    fn summaries_keep_the_old_words() {
        assert_eq!(at(ChannelState::Connected, "connected to TMC as group `default`", None).summary(), "connected");
        assert_eq!(at(ChannelState::Connecting, "", None).summary(), "connecting");
        assert_eq!(at(ChannelState::BackingOff, "closed", Some(1_500)).summary(), "reconnecting in 500 ms: closed");
        assert_eq!(at(ChannelState::Stopped, "invalid sign", Some(601_000)).summary(), "stopped: invalid sign");
        let status = Status::default();
        status.set_channel("taobao/s/tmc".into(), at(ChannelState::Connected, "x", None));
        assert_eq!(status.channels()["taobao/s/tmc"], "connected");
        assert_eq!(status.channel_states()["taobao/s/tmc"].state, ChannelState::Connected);
    }
}
