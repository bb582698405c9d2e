//! # huiliu-sim — platform simulators
//!
//! Loopback servers that play Taobao (TMC WebSocket, TOP API, OAuth), Douyin Shop (HTTP push,
//! OpenAPI) and JD (JOS message stream, routerjson, OAuth) against the gateway. They verify
//! the signature of every request they receive and answer with the platform's real error body
//! when it is wrong, and they inject faults on request.
//!
//! Architecture invariant: this crate shares **no** signing or parsing code with the
//! connectors in `plugins/`: it depends on the digest crates directly and implements each
//! platform's conventions from PROTOCOLS.md on its own, so a misunderstanding in one side
//! cannot pass the tests by being mirrored in the other.
//!
//! Every simulator has the same shape (see each module):
//! - `XSim::start(SimConfig, Arc<Faults>) -> anyhow::Result<XSim>` binds `127.0.0.1:0` (or
//!   `SimConfig::port`) inside the caller's tokio runtime;
//! - `shop_settings()` gives the `[shop.settings]` the gateway needs to talk to it;
//! - `deliver_chat` / `deliver_trade` deliver a buyer message or an order/refund event the way
//!   the platform does (push, TMC frame, stream packet) and report what the gateway answered;
//! - `received()` lists the verified API calls (replies) it accepted; `rejected()` lists the
//!   requests it refused with the reason.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

pub mod corpus;
pub mod douyin;
pub mod jd;
pub mod taobao;
pub mod wechat_shop;

/// Credentials and identity of one simulated shop.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimConfig {
    /// The platform's own shop id (Douyin `shop_id`, seller nick for Taobao, …).
    pub platform_shop_id: String,
    pub app_key: String,
    pub app_secret: String,
    /// The access token the simulator accepts until it expires or is refreshed.
    pub access_token: String,
    pub refresh_token: String,
    /// Port to bind on 127.0.0.1; 0 picks a free one.
    #[serde(default)]
    pub port: u16,
}

impl SimConfig {
    /// A config with made-up credentials for `platform_shop_id`.
    pub fn sample(platform_shop_id: &str) -> SimConfig {
        SimConfig {
            platform_shop_id: platform_shop_id.to_owned(),
            app_key: format!("{}-key", platform_shop_id),
            app_secret: format!("{}-secret-不要外传", platform_shop_id),
            access_token: format!("{}-token-1", platform_shop_id),
            refresh_token: format!("{}-refresh-1", platform_shop_id),
            port: 0,
        }
    }
}

/// A buyer's chat message, platform-neutral; each simulator renders it in its own format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuyerChat {
    /// The platform message id (unique per message; the gateway dedupes on it).
    pub msg_id: String,
    /// The platform's open buyer id.
    pub buyer_id: String,
    pub nick: String,
    /// `text`, `image`, `product` or `order` (rendered as the platform's own type names).
    pub msg_type: String,
    /// The text (or image URL for images).
    pub text: String,
    /// Product / order id for product and order messages.
    #[serde(default)]
    pub ref_id: Option<String>,
    #[serde(default)]
    pub vip_level: u32,
    #[serde(default)]
    pub fans_level: u32,
    /// When the buyer sent it (epoch ms).
    pub sent_at_ms: i64,
}

impl BuyerChat {
    /// A text message.
    pub fn text(msg_id: &str, buyer_id: &str, text: &str, sent_at_ms: i64) -> BuyerChat {
        BuyerChat {
            msg_id: msg_id.to_owned(),
            buyer_id: buyer_id.to_owned(),
            nick: format!("买家{buyer_id}"),
            msg_type: "text".into(),
            text: text.to_owned(),
            ref_id: None,
            vip_level: 0,
            fans_level: 0,
            sent_at_ms,
        }
    }
}

/// Order and refund events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TradeKind {
    OrderCreated,
    OrderPaid,
    OrderShipped,
    OrderReceived,
    OrderClosed,
    RefundRequested,
    RefundAgreed,
    RefundSucceeded,
}

/// An order or refund event, platform-neutral.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradeEvent {
    pub event_id: String,
    pub kind: TradeKind,
    pub buyer_id: String,
    pub order_id: String,
    #[serde(default)]
    pub refund_id: Option<String>,
    pub amount_fen: i64,
    pub at_ms: i64,
}

/// What happened to one delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Whether the gateway acknowledged it the way the platform requires (Douyin success body,
    /// TMC confirm; JD streams have no acknowledgement: true once written).
    pub acked: bool,
    /// HTTP status for pushes, 0 otherwise.
    pub status: u16,
    /// The gateway's response body, or a note.
    pub detail: String,
}

/// A reply the platform API accepted (signature verified, token valid).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedSend {
    /// The API method (`taobao.qianniu.cloudkefu.message.send`, `im.sendMsg`, …).
    pub method: String,
    pub buyer_id: String,
    pub msg_type: String,
    pub content: String,
    pub client_msg_id: String,
    /// Conversation id (Douyin) or session id (JD) when sent.
    #[serde(default)]
    pub conversation: Option<String>,
    /// Other business parameters, verbatim.
    #[serde(default)]
    pub extra: BTreeMap<String, String>,
    pub at_ms: i64,
    /// True when the same client_msg_id had been accepted before (the platform deduplicated
    /// it and did not show it to the buyer twice).
    pub duplicate: bool,
}

/// Faults to inject. Counters mean "the next N"; each simulator honours those that apply to
/// its platform and documents which.
#[derive(Debug, Default)]
pub struct Faults {
    /// Deliver each of the next N buyer messages/events twice.
    pub duplicate_deliveries: AtomicU32,
    /// Sign the next N pushes/frames wrongly.
    pub bad_signature_pushes: AtomicU32,
    /// Answer the next N send calls with the platform's rate-limit error.
    pub rate_limit_sends: AtomicU32,
    /// Answer the Nth send call from now (1: the next) with the rate-limit error, once
    /// (Douyin only).
    pub rate_limit_nth_send: AtomicU32,
    /// Treat the current access token as expired (token error on every call) until refreshed.
    pub token_expired: AtomicBool,
    /// The API is down: every API call answers HTTP 503 (or the platform's service error).
    pub api_down: AtomicBool,
    /// Delay every API answer by this many milliseconds.
    pub slow_api_ms: AtomicU64,
    /// Drop the next N WebSocket / stream connections right after delivering a message.
    pub drop_connections: AtomicU32,
    /// Refuse the next N correctly signed TMC CONNECTs with status 401 and
    /// `refuse_connect_phrase` (Taobao only; default phrase `server is busy`).
    pub refuse_connects: AtomicU32,
    /// The status phrase of a `refuse_connects` refusal.
    pub refuse_connect_phrase: Mutex<String>,
}

impl Faults {
    /// Takes one from a "next N" counter; true if a fault should fire now.
    pub fn take(counter: &AtomicU32) -> bool {
        counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
    }

    /// Counts one call down on an "the Nth from now" counter; true for the Nth.
    pub fn nth(counter: &AtomicU32) -> bool {
        counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)) == Ok(1)
    }
}

/// A log of what a simulator saw, shared by its handlers.
#[derive(Debug, Default)]
pub struct Journal {
    pub received: Mutex<Vec<ReceivedSend>>,
    /// Requests refused, with the reason (bad signature, expired token, …).
    pub rejected: Mutex<Vec<String>>,
    /// Token refreshes served.
    pub refreshes: AtomicU32,
    /// Connections accepted (WebSocket / stream).
    pub connections: AtomicU32,
}

impl Journal {
    pub fn received(&self) -> Vec<ReceivedSend> {
        self.received.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    pub fn rejected(&self) -> Vec<String> {
        self.rejected.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    pub fn reject(&self, reason: impl Into<String>) {
        self.rejected.lock().unwrap_or_else(|p| p.into_inner()).push(reason.into());
    }
    /// Records an accepted send; marks it duplicate if the client_msg_id was seen.
    pub fn accept(&self, mut send: ReceivedSend) -> ReceivedSend {
        let mut all = self.received.lock().unwrap_or_else(|p| p.into_inner());
        send.duplicate = all.iter().any(|s| s.client_msg_id == send.client_msg_id);
        all.push(send.clone());
        send
    }
}

/// An HTTP client for the simulators (pushes to the gateway, probes). Installs the ring
/// crypto provider first: in a workspace build reqwest's TLS features are unified with the
/// gateway's, which expect a provider to be installed.
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap_or_else(|_| reqwest::Client::new())
}

/// Milliseconds since the epoch: the simulated platforms' own clock. They stand in for outside
/// services and share no code with the gateway, so they read the system clock themselves rather
/// than through `huiliu_domain::now_millis`.
#[allow(clippy::disallowed_methods)] // the simulators' one reading of the system clock
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
