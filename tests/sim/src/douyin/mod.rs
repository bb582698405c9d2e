//! # Douyin Shop (抖店) simulator
//!
//! Plays the platform side of PROTOCOLS.md §2 on loopback, written from the protocol text
//! alone (no code shared with `plugins/douyin`):
//!
//! - **Push (§2.2)**: [`DouyinSim::deliver_chat`] / [`DouyinSim::deliver_trade`] POST the array
//!   envelope `[{"tag","msg_id","data":"<json string>"}]` to the gateway's hook URL (set with
//!   [`DouyinSim::set_gateway`]) with the `app-id` and `event-sign` headers. A push counts as
//!   acknowledged only on HTTP 200 with the body exactly `{"code":0,"msg":"success"}`; anything
//!   else is retried like the real platform ([`DEFAULT_PUSH_RETRIES`] retries, backoff
//!   [`DEFAULT_PUSH_BACKOFF`], see [`DouyinSim::set_push_retry`]).
//! - **OpenAPI (§2.1)**: `POST /{path}?app_key&method&access_token&timestamp&v=2&sign_method&sign`
//!   with the canonical `param_json` as body. Every request is verified (app key, `v`, method vs
//!   path, timestamp within 10 min, canonical body, signature, token) and refused with Douyin's
//!   error envelope. Methods: `im.sendMsg` (**modeled**, §2.3) and `token.refresh`.
//! - **Tokens**: access tokens live 7 days, refresh tokens 14 days on the simulator's clock
//!   (real time + [`DouyinSim::advance_clock`]). `token.refresh` more than 1 h before expiry
//!   returns the same token (as documented); within the last hour, after expiry, or while
//!   [`Faults::token_expired`] is set it issues `<original>-r<n>`. After a rotation the old
//!   token stays valid for 1 h, unless it was already expired (fault or clock), in which case it
//!   is refused as expired at once.
//!
//! Faults: see [`DouyinSim`]. Not used: `Journal::connections` (no long-lived connection).

mod api;
mod push;
pub use push::trade_tag;
pub mod sign;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{BuyerChat, Delivery, Faults, Journal, SimConfig, TradeEvent};

/// Push tag of a buyer chat message (**modeled**, connector setting `chat_tag`).
pub const CHAT_TAG: &str = "9001";
/// Method that sends a reply (**modeled**, connector setting `send_method`).
pub const SEND_METHOD: &str = "im.sendMsg";
/// The public order-detail method: `{"shop_order_id"}` → `data.shop_order_detail` with the
/// buyer's `doudian_open_id` (the field real order pushes lack).
pub const ORDER_DETAIL_METHOD: &str = "order.orderDetail";
/// Token refresh method (public).
pub const REFRESH_METHOD: &str = "token.refresh";
/// Retries of an unacknowledged push (after the first attempt).
pub const DEFAULT_PUSH_RETRIES: u32 = 3;
/// Pause between push attempts.
pub const DEFAULT_PUSH_BACKOFF: Duration = Duration::from_millis(200);
/// The body that acknowledges a push.
pub const PUSH_SUCCESS: &str = r#"{"code":0,"msg":"success"}"#;
/// Timestamp tolerance of the OpenAPI.
pub const TIMESTAMP_TOLERANCE_S: i64 = 600;
/// Access token life.
pub const ACCESS_TOKEN_LIFE_MS: i64 = 7 * 24 * 3600 * 1000;
/// Refresh token life.
pub const REFRESH_TOKEN_LIFE_MS: i64 = 14 * 24 * 3600 * 1000;
/// Refresh window before expiry, and the old token's grace period after a rotation.
pub const HOUR_MS: i64 = 3600 * 1000;

/// One HTTP push attempt made to the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushAttempt {
    /// First tag of the batch (`"0"`, `"9001"`, `"101"`, …; empty for an unreadable raw body).
    pub tag: String,
    /// First envelope `msg_id` of the batch.
    pub msg_id: String,
    /// Whether `event-sign` was correct.
    pub signed_ok: bool,
    /// HTTP status (0 when the request failed).
    pub status: u16,
    /// The gateway's answer body, or the transport error.
    pub response: String,
    pub acked: bool,
}

/// The Douyin Shop simulator. Cheap to clone; the servers stop when the last clone is dropped.
///
/// Faults honoured ([`Faults`]):
/// - `duplicate_deliveries`: the next N `deliver_chat` / `deliver_trade` calls push the same
///   envelope (same `msg_id`, same bytes) twice; the result is acked only if both were.
/// - `bad_signature_pushes`: the next N push *attempts* carry a wrong `event-sign` (MD5 with a
///   wrong secret). An attempt that the gateway refuses is retried like any unacked push, and the
///   retry is signed correctly unless the counter still has attempts left.
/// - `rate_limit_sends`: the next N verified `im.sendMsg` calls answer 60000 `isv.traffic-limited`
///   and are not recorded as received; `rate_limit_nth_send`: the Nth call from now does, once.
/// - `token_expired`: every call with an access token answers 40003 `isv.access-token-expired`
///   until a `token.refresh` succeeds (which rotates the token and clears the flag).
/// - `api_down`: every OpenAPI call answers 20000 `isp.service-unavailable` (HTTP 200, as Douyin
///   does), before any verification.
/// - `slow_api_ms`: every OpenAPI answer is delayed by that many ms.
/// - `drop_connections`: **not applicable** — Douyin pushes are plain HTTP requests; there is
///   no long-lived connection to drop. The counter is left untouched.
#[derive(Clone)]
pub struct DouyinSim {
    handle: Arc<Handle>,
}

struct Handle {
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// State shared by the API server and the push client.
pub(crate) struct Shared {
    pub(crate) cfg: SimConfig,
    pub(crate) faults: Arc<Faults>,
    pub(crate) journal: Journal,
    pub(crate) addr: SocketAddr,
    pub(crate) hook_url: Mutex<Option<String>>,
    /// Several gateway nodes behind a round-robin balancer (`set_gateways`), when set.
    pub(crate) hook_urls: Mutex<Vec<String>>,
    pub(crate) next_hook: AtomicU64,
    pub(crate) tokens: Mutex<Tokens>,
    /// client_msg_id → msg_id, for the platform's dedupe.
    pub(crate) sent_ids: Mutex<HashMap<String, String>>,
    pub(crate) seq: AtomicU64,
    pub(crate) clock_offset_ms: AtomicI64,
    pub(crate) retry: Mutex<(u32, Duration)>,
    pub(crate) pushes: Mutex<Vec<PushAttempt>>,
    pub(crate) http: reqwest::Client,
    /// Orders the simulator has pushed: order id → buyer open id, for `order.orderDetail`.
    pub(crate) orders: Mutex<HashMap<String, String>>,
    /// `order.orderDetail` calls served.
    pub(crate) order_lookups: AtomicU64,
}

/// The simulator's token book.
#[derive(Debug, Clone)]
pub(crate) struct Tokens {
    pub(crate) access: String,
    pub(crate) access_expires_at: i64,
    pub(crate) refresh: String,
    pub(crate) refresh_expires_at: i64,
    /// Rotations so far (the `n` of `-r<n>`).
    pub(crate) rotations: u32,
    /// Replaced access tokens and the sim-clock ms until which they are still accepted.
    pub(crate) retired: Vec<(String, i64)>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    /// The simulator's clock (epoch ms): real time plus [`DouyinSim::advance_clock`].
    pub(crate) fn now_ms(&self) -> i64 {
        crate::now_ms() + self.clock_offset_ms.load(Ordering::SeqCst)
    }

    pub(crate) fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::SeqCst) + 1
    }
}

impl DouyinSim {
    /// Binds the OpenAPI server on `127.0.0.1:cfg.port` (0 = a free port) and starts serving it
    /// inside the caller's tokio runtime.
    pub async fn start(cfg: SimConfig, faults: Arc<Faults>) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", cfg.port)).await?;
        let addr = listener.local_addr()?;
        let _ = crate::http_client(); // installs the crypto provider reqwest may need
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(5)).build()?;
        let now = crate::now_ms();
        let tokens = Tokens {
            access: cfg.access_token.clone(),
            access_expires_at: now + ACCESS_TOKEN_LIFE_MS,
            refresh: cfg.refresh_token.clone(),
            refresh_expires_at: now + REFRESH_TOKEN_LIFE_MS,
            rotations: 0,
            retired: Vec::new(),
        };
        let shared = Arc::new(Shared {
            cfg,
            faults,
            journal: Journal::default(),
            addr,
            hook_url: Mutex::new(None),
            hook_urls: Mutex::new(Vec::new()),
            next_hook: AtomicU64::new(0),
            tokens: Mutex::new(tokens),
            sent_ids: Mutex::new(HashMap::new()),
            seq: AtomicU64::new(0),
            clock_offset_ms: AtomicI64::new(0),
            retry: Mutex::new((DEFAULT_PUSH_RETRIES, DEFAULT_PUSH_BACKOFF)),
            pushes: Mutex::new(Vec::new()),
            http,
            orders: Mutex::new(HashMap::new()),
            order_lookups: AtomicU64::new(0),
        });
        let router = api::router(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                eprintln!("douyin sim: server stopped: {e}");
            }
        });
        Ok(DouyinSim { handle: Arc::new(Handle { shared, server }) })
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// The OpenAPI server's address.
    pub fn addr(&self) -> SocketAddr {
        self.shared().addr
    }

    /// The OpenAPI base URL (`http://127.0.0.1:<port>`).
    pub fn api_url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// The `[shop.settings]` for the gateway's douyin connector (keys of plugins/douyin/README.md):
    /// `app_key`, `app_secret`, `access_token`, `refresh_token`, `token_expires_at` (epoch ms, on
    /// the real clock), `api_url`, and the modeled names `chat_tag` / `send_method` spelled out.
    /// The tokens are the current ones (after any refresh).
    pub fn shop_settings(&self) -> BTreeMap<String, String> {
        let s = self.shared();
        let t = lock(&s.tokens).clone();
        let offset = s.clock_offset_ms.load(Ordering::SeqCst);
        let mut m = BTreeMap::new();
        m.insert("app_key".into(), s.cfg.app_key.clone());
        m.insert("app_secret".into(), s.cfg.app_secret.clone());
        m.insert("access_token".into(), t.access);
        m.insert("refresh_token".into(), t.refresh);
        m.insert("token_expires_at".into(), (t.access_expires_at - offset).to_string());
        m.insert("api_url".into(), self.api_url());
        m.insert("chat_tag".into(), CHAT_TAG.into());
        m.insert("send_method".into(), SEND_METHOD.into());
        m
    }

    /// Sets the gateway's push URL, e.g. `http://127.0.0.1:8080/hooks/douyin/dy-shop-1`.
    pub fn set_gateway(&self, hook_url: String) {
        *lock(&self.shared().hook_url) = Some(hook_url);
        lock(&self.shared().hook_urls).clear();
    }

    /// Pushes go to these hook URLs in turn, as through a round-robin load balancer in front of
    /// several gateway nodes (a retry goes to the next one).
    pub fn set_gateways(&self, hook_urls: Vec<String>) {
        *lock(&self.shared().hook_url) = hook_urls.first().cloned();
        *lock(&self.shared().hook_urls) = hook_urls;
    }

    /// Retries after an unacked push and the pause between attempts (default 3 and 200 ms).
    pub fn set_push_retry(&self, retries: u32, backoff: Duration) {
        *lock(&self.shared().retry) = (retries, backoff);
    }

    /// Pushes a buyer chat message (tag [`CHAT_TAG`], modeled `data` of PROTOCOLS.md §2.3),
    /// retrying until acked or out of retries; reports the final attempt.
    pub async fn deliver_chat(&self, chat: &BuyerChat) -> Delivery {
        let body = push::chat_envelope(&self.shared().cfg, chat);
        push::deliver(self.shared(), body).await
    }

    /// Pushes an order or refund event with the same retries as chat. Tags: 100 created,
    /// 101 paid, 102 shipped, 103 received, 106 closed, 200 refund requested, 201 refund agreed,
    /// 206 refund succeeded (102/106/206 are Douyin tags the connector acknowledges without an
    /// event). `data`: Douyin's public fields (`p_id`, `s_ids`, `shop_id`, `order_status`,
    /// `pay_amount` in fen, `create_time` / `pay_time` / `complete_time` in Unix s; refunds
    /// `aftersale_id` (= `refund_id`, else `event_id`), `s_id`, `refund_amount`, `apply_time` /
    /// `agree_time`) plus `buyer_open_id`, which real trade pushes lack but the modeled mapping
    /// needs. Numeric ids go out as JSON numbers. The envelope `msg_id` is `event_id`.
    pub async fn deliver_trade(&self, event: &TradeEvent) -> Delivery {
        lock(&self.shared().orders).insert(event.order_id.clone(), event.buyer_id.clone());
        let body = push::trade_envelope(&self.shared().cfg, event);
        push::deliver(self.shared(), body).await
    }

    /// An order or refund push as the live platform sends it: without `buyer_open_id` (the
    /// gateway must ask `order.orderDetail` for the buyer). `known` false: the order is unknown
    /// to `order.orderDetail` (it answers "order not found").
    pub async fn deliver_trade_without_buyer(&self, event: &TradeEvent, known: bool) -> Delivery {
        if known {
            lock(&self.shared().orders).insert(event.order_id.clone(), event.buyer_id.clone());
        }
        let body = push::trade_envelope_without_buyer(&self.shared().cfg, event);
        push::deliver(self.shared(), body).await
    }

    /// `order.orderDetail` calls served so far.
    pub fn order_lookups(&self) -> u64 {
        self.shared().order_lookups.load(Ordering::SeqCst)
    }

    /// One push of exactly `body` (no retry, no duplicate fault), signed correctly or not; for
    /// malformed, oversized or replayed pushes.
    pub async fn push_raw(&self, body: Vec<u8>, sign_ok: bool) -> Delivery {
        push::attempt(self.shared(), &body, sign_ok).await
    }

    /// The platform's address check: tag `"0"`, one attempt.
    pub async fn address_check(&self) -> Delivery {
        push::attempt(self.shared(), push::ADDRESS_CHECK_BODY.as_bytes(), true).await
    }

    /// Every push attempt made so far, in order.
    pub fn push_log(&self) -> Vec<PushAttempt> {
        lock(&self.shared().pushes).clone()
    }

    /// What the simulator saw: accepted sends, refused requests, refreshes.
    pub fn journal(&self) -> &Journal {
        &self.shared().journal
    }

    /// The access token currently issued.
    pub fn current_access_token(&self) -> String {
        lock(&self.shared().tokens).access.clone()
    }

    /// The refresh token currently issued.
    pub fn current_refresh_token(&self) -> String {
        lock(&self.shared().tokens).refresh.clone()
    }

    /// Moves the current access token's expiry to `epoch_ms` (real clock), e.g. into the last
    /// hour so that a refresh rotates it.
    pub fn set_token_expires_at(&self, epoch_ms: i64) {
        let offset = self.shared().clock_offset_ms.load(Ordering::SeqCst);
        lock(&self.shared().tokens).access_expires_at = epoch_ms + offset;
    }

    /// Moves the simulator's token clock forward (token lives, the 1 h grace). Request
    /// timestamps are still checked against real time.
    pub fn advance_clock(&self, by: Duration) {
        self.shared().clock_offset_ms.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
}
