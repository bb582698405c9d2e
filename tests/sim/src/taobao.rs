//! The Taobao simulator: TMC (binary-frame WebSocket at `ws://ADDR/tmc`), the TOP router
//! (`POST /router/rest`) and the OAuth token endpoint (`POST /oauth/token`), all on one loopback
//! port. Written from PROTOCOLS.md §1 alone; it shares no code with `plugins/taobao`.
//!
//! **TMC** (at-least-once, like the real channel): a client must CONNECT with a valid
//! `app_key`/`group_name`/`timestamp`/`sign`, or it gets CONNECTACK with StatusCode 401 and
//! StatusPhrase `invalid sign` / `invalid timestamp` / `invalid app_key` and the socket closes. A
//! PullRequest (`__kind` 1) pushes every pending message plus every message left unconfirmed for
//! longer than the redelivery timeout; new messages are also pushed at once to a connected client
//! (the real server pushes too; [`TaobaoSim::set_active_push`] turns that off). Confirm
//! (`__kind` 2) settles a message, SENDACK Failed (`__kind` 20) redelivers it at once, and
//! messages in flight on a connection that closes go back to pending for the next pull.
//!
//! **TOP**: every call is verified (app key, method, `format=json`, `v=2.0`, timestamp within
//! 10 minutes of Beijing time, signature by `md5`/`hmac`/`hmac-sha256` in upper-case hex, session)
//! and refused with TOP's `error_response` body. Methods: the modeled
//! `taobao.qianniu.cloudkefu.message.send` and the public `taobao.qianniu.cloudkefu.forward`.
//!
//! Faults ([`Faults`]):
//! - `duplicate_deliveries`: the next N enqueued messages are pushed twice back to back (same TMC id).
//! - `bad_signature_pushes`: TMC signs nothing per message, so it applies to the CONNECT check: the
//!   next N CONNECTs are refused with 401 `invalid sign` even when correctly signed.
//! - `rate_limit_sends`: the next N `message.send` calls get code 7 `App Call Limited`.
//! - `token_expired`: every TOP call with a session gets code 27 until a refresh.
//! - `api_down`: TOP answers code 15 with an `isp.` sub_code; OAuth answers HTTP 503.
//! - `slow_api_ms`: TOP and OAuth answers are delayed.
//! - `drop_connections`: the next N TMC connections are dropped (TCP closed without a closing
//!   handshake) right after a data message is written to them.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Map, Value as Json, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::{BuyerChat, Delivery, Faults, Journal, SimConfig, TradeEvent, TradeKind, now_ms};

mod frame;
mod sign;
mod tmc;
mod top;

#[cfg(test)]
mod tests;

/// The chat topic (modeled, PROTOCOLS.md §1.3).
pub const CHAT_TOPIC: &str = "taobao_qianniu_BuyerMessage";
/// The send method (modeled).
pub const SEND_METHOD: &str = "taobao.qianniu.cloudkefu.message.send";
/// The transfer method (public).
pub const FORWARD_METHOD: &str = "taobao.qianniu.cloudkefu.forward";
/// How long a pushed message may stay unconfirmed before the next pull redelivers it.
pub const REDELIVER_AFTER: Duration = Duration::from_secs(2);
/// How long `deliver_chat` / `deliver_trade` wait for the confirm.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Tolerance of the TOP `timestamp` (Beijing time) and of the TMC CONNECT `timestamp` (ms).
pub const TIMESTAMP_TOLERANCE_MS: i64 = 10 * 60 * 1000;
/// Lifetime of an access token issued by the simulator (`expires_in`).
pub const TOKEN_LIFETIME_S: i64 = 86_400;
/// The TMC group the settings name (any non-empty group is accepted).
pub const TMC_GROUP: &str = "default";
/// TMC ids start above 2^53 so a client that parses them as floats gets them wrong.
const FIRST_TMC_ID: i64 = (1 << 53) + 1;

/// A handle on a running Taobao simulator; clones share it. The servers stop when the last
/// handle is dropped.
#[derive(Clone)]
pub struct TaobaoSim {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// State shared by the HTTP handlers, the TMC connections and the handle.
pub(crate) struct Shared {
    cfg: SimConfig,
    faults: Arc<Faults>,
    journal: Journal,
    addr: SocketAddr,
    /// The shop's numeric Taobao user id (TMC `userid`, OAuth `taobao_user_id`).
    user_id: i64,
    tokens: Mutex<Tokens>,
    tmc: Mutex<TmcState>,
    /// Who waits for which message's confirm: each confirm wakes only its own waiters (a
    /// broadcast to every waiter made the simulator, not the gateway, the bottleneck of a paced
    /// TMC run: thousands of waiters woken per confirm).
    waiters: Mutex<HashMap<i64, Vec<tokio::sync::oneshot::Sender<()>>>>,
    shutdown: watch::Sender<bool>,
    seq: AtomicU64,
    active_push: AtomicBool,
    redeliver_after_ms: AtomicU64,
}

struct Tokens {
    access: String,
    refresh: String,
    expires_at_ms: i64,
    /// Access tokens replaced by a refresh: rejected as expired.
    retired: Vec<String>,
    refreshes: u32,
    /// `client_msg_id` → the `msg_id` answered the first time.
    msg_ids: HashMap<String, String>,
}

pub(crate) struct TmcState {
    next_id: i64,
    messages: BTreeMap<i64, TmcMessage>,
    /// Ids not confirmed yet (pending or in flight), in id order: what a push looks through,
    /// instead of every message ever enqueued.
    unconfirmed: std::collections::BTreeSet<i64>,
    confirmed: Vec<i64>,
    redeliveries: u32,
    sessions: Vec<tmc::Session>,
}

#[derive(Debug, Clone)]
pub(crate) struct TmcMessage {
    id: i64,
    topic: String,
    content: String,
    dataid: i64,
    outtime_ms: i64,
    state: MsgState,
    /// Frames written so far (a value above 1 means redelivered).
    sends: u32,
    /// Extra copies to push with the next delivery (`duplicate_deliveries`).
    extra_copies: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MsgState {
    Pending,
    InFlight { session: u64, since: Instant },
    Confirmed,
}

impl Shared {
    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    fn tokens(&self) -> MutexGuard<'_, Tokens> {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn tmc(&self) -> MutexGuard<'_, TmcState> {
        self.tmc.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn redeliver_after(&self) -> Duration {
        Duration::from_millis(self.redeliver_after_ms.load(Ordering::Relaxed))
    }

    /// A request id in TOP's style (lower-case base-36).
    fn request_id(&self) -> String {
        let mut n = self.next_seq() + 0x5f3a_91c2_77e4;
        let mut s = Vec::new();
        while n > 0 {
            s.push(b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize]);
            n /= 36;
        }
        s.reverse();
        String::from_utf8(s).unwrap_or_default()
    }

    fn enqueue(&self, topic: &str, content: String, dataid: Option<i64>, outtime_ms: i64) -> i64 {
        let extra_copies = u32::from(Faults::take(&self.faults.duplicate_deliveries));
        let mut tmc = self.tmc();
        let id = tmc.next_id;
        tmc.next_id += 1;
        tmc.unconfirmed.insert(id);
        tmc.messages.insert(
            id,
            TmcMessage {
                id,
                topic: topic.to_owned(),
                content,
                dataid: dataid.unwrap_or(id),
                outtime_ms,
                state: MsgState::Pending,
                sends: 0,
                extra_copies,
            },
        );
        let newest = tmc.sessions.last().map(|s| s.id);
        if let Some(session) = newest.filter(|_| self.active_push.load(Ordering::Relaxed)) {
            self.push_due(&mut tmc, session, false);
        }
        id
    }

    fn is_confirmed(&self, id: i64) -> bool {
        self.tmc().messages.get(&id).is_some_and(|m| m.state == MsgState::Confirmed)
    }

    async fn wait_confirmed(&self, id: i64, timeout: Duration) -> bool {
        let (tx, rx) = tokio::sync::oneshot::channel();
        // Registered before the check, so a confirm in between is not missed.
        self.waiters.lock().unwrap_or_else(|p| p.into_inner()).entry(id).or_default().push(tx);
        if self.is_confirmed(id) {
            self.waiters.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            return true;
        }
        if matches!(tokio::time::timeout(timeout, rx).await, Ok(Ok(()))) {
            return true;
        }
        self.waiters.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        self.is_confirmed(id)
    }

    /// Wakes whoever waits for `id`'s confirm.
    pub(crate) fn wake_confirmed(&self, id: i64) {
        let waiting = self.waiters.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        for w in waiting.into_iter().flatten() {
            let _ = w.send(());
        }
    }

    async fn deliver(&self, id: i64, what: &str) -> Delivery {
        let acked = self.wait_confirmed(id, DELIVERY_TIMEOUT).await;
        let sends = self.tmc().messages.get(&id).map_or(0, |m| m.sends);
        let detail = if acked {
            format!("{what}: tmc id {id} confirmed after {sends} push(es)")
        } else {
            format!("{what}: tmc id {id} not confirmed within {}s ({sends} push(es))", DELIVERY_TIMEOUT.as_secs())
        };
        Delivery { acked, status: 0, detail }
    }

    fn chat_content(&self, chat: &BuyerChat) -> Json {
        let msg_type = match chat.msg_type.as_str() {
            "product" => "item",
            other => other,
        };
        let mut c = Map::new();
        c.insert("msg_id".into(), json!(chat.msg_id));
        c.insert("buyer_open_uid".into(), json!(chat.buyer_id));
        c.insert("buyer_nick".into(), json!(chat.nick));
        c.insert("seller_nick".into(), json!(self.cfg.platform_shop_id));
        c.insert("sub_nick".into(), json!(format!("{}:客服1", self.cfg.platform_shop_id)));
        c.insert("msg_type".into(), json!(msg_type));
        c.insert("content".into(), json!(chat.text));
        if let Some(r) = &chat.ref_id {
            match msg_type {
                "item" => {
                    c.insert("item_id".into(), id_json(r));
                }
                "order" => {
                    c.insert("tid".into(), id_json(r));
                }
                _ => {}
            }
        }
        c.insert("send_time".into(), json!(sign::beijing_string(chat.sent_at_ms)));
        Json::Object(c)
    }

    fn trade_content(&self, e: &TradeEvent) -> (&'static str, Json) {
        let (topic, status) = match e.kind {
            TradeKind::OrderCreated => ("taobao_trade_TradeCreate", "WAIT_BUYER_PAY"),
            TradeKind::OrderPaid => ("taobao_trade_TradeBuyerPay", "WAIT_SELLER_SEND_GOODS"),
            TradeKind::OrderShipped => ("taobao_trade_TradeSellerShip", "WAIT_BUYER_CONFIRM_GOODS"),
            TradeKind::OrderReceived => ("taobao_trade_TradeSuccess", "TRADE_FINISHED"),
            TradeKind::OrderClosed => ("taobao_trade_TradeClose", "TRADE_CLOSED"),
            TradeKind::RefundRequested => ("taobao_refund_RefundCreated", "WAIT_SELLER_AGREE"),
            TradeKind::RefundAgreed => ("taobao_refund_RefundSellerAgreeAgreement", "WAIT_BUYER_RETURN_GOODS"),
            TradeKind::RefundSucceeded => ("taobao_refund_RefundSuccess", "SUCCESS"),
        };
        let refund =
            matches!(e.kind, TradeKind::RefundRequested | TradeKind::RefundAgreed | TradeKind::RefundSucceeded);
        let mut c = Map::new();
        c.insert("tid".into(), id_json(&e.order_id));
        c.insert("oid".into(), id_json(&e.order_id));
        c.insert("buyer_nick".into(), json!(format!("买家{}", e.buyer_id)));
        c.insert("buyer_open_uid".into(), json!(e.buyer_id));
        c.insert("seller_nick".into(), json!(self.cfg.platform_shop_id));
        c.insert("payment".into(), json!(yuan(e.amount_fen)));
        c.insert("status".into(), json!(status));
        c.insert("type".into(), json!("fixed"));
        if refund {
            let refund_id = e.refund_id.clone().unwrap_or_else(|| e.event_id.clone());
            c.insert("refund_id".into(), id_json(&refund_id));
            c.insert("refund_fee".into(), json!(yuan(e.amount_fen)));
            c.insert("refund_phase".into(), json!("aftersale"));
            c.insert("modified".into(), json!(sign::beijing_string(e.at_ms)));
        }
        (topic, Json::Object(c))
    }
}

/// An id as a JSON number when it is an unsigned integer (exact, may exceed 2^53), else a string.
fn id_json(id: &str) -> Json {
    match id.parse::<u64>() {
        Ok(n) => json!(n),
        Err(_) => json!(id),
    }
}

/// Fen as a yuan string with two decimals, without floating point (9900 → "99.00").
fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// A stable numeric Taobao user id for a shop name (FNV-1a folded into a plausible range).
fn user_id_for(shop: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in shop.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    2_200_000_000_000 + (h % 1_000_000_000) as i64
}

impl TaobaoSim {
    /// Binds `127.0.0.1:cfg.port` (0 picks a free port) and serves TMC, TOP and OAuth on it.
    pub async fn start(cfg: SimConfig, faults: Arc<Faults>) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", cfg.port)).await?;
        let addr = listener.local_addr()?;
        let now = now_ms();
        let shared = Arc::new(Shared {
            user_id: user_id_for(&cfg.platform_shop_id),
            tokens: Mutex::new(Tokens {
                access: cfg.access_token.clone(),
                refresh: cfg.refresh_token.clone(),
                expires_at_ms: now + TOKEN_LIFETIME_S * 1000,
                retired: Vec::new(),
                refreshes: 0,
                msg_ids: HashMap::new(),
            }),
            cfg,
            faults,
            journal: Journal::default(),
            addr,
            tmc: Mutex::new(TmcState {
                next_id: FIRST_TMC_ID,
                messages: BTreeMap::new(),
                unconfirmed: Default::default(),
                confirmed: Vec::new(),
                redeliveries: 0,
                sessions: Vec::new(),
            }),
            waiters: Mutex::new(HashMap::new()),
            shutdown: watch::Sender::new(false),
            seq: AtomicU64::new(1),
            active_push: AtomicBool::new(true),
            redeliver_after_ms: AtomicU64::new(REDELIVER_AFTER.as_millis() as u64),
        });

        // One port for everything: a connection whose request line is `GET /tmc…` is a TMC
        // WebSocket, anything else goes to the HTTP router.
        let (http_tx, http_rx) = mpsc::channel::<(TcpStream, SocketAddr)>(64);
        let router = top::router(shared.clone());
        let serve = tokio::spawn(async move {
            let _ = axum::serve(ChannelListener { rx: http_rx, local: addr }, router).await;
        });
        let accept_shared = shared.clone();
        let accept = tokio::spawn(async move {
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(x) => x,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let shared = accept_shared.clone();
                let http_tx = http_tx.clone();
                tokio::spawn(async move {
                    if is_tmc_upgrade(&stream).await {
                        tmc::serve_connection(shared, stream).await;
                    } else {
                        let _ = http_tx.send((stream, peer)).await;
                    }
                });
            }
        });
        Ok(TaobaoSim { inner: Arc::new(Inner { shared, tasks: vec![accept, serve] }) })
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    pub fn addr(&self) -> SocketAddr {
        self.shared().addr
    }

    /// The `[shop.settings]` the taobao connector needs to talk to this simulator (keys from
    /// plugins/taobao/README.md), with the tokens currently valid.
    pub fn shop_settings(&self) -> BTreeMap<String, String> {
        let s = self.shared();
        let t = s.tokens();
        let addr = s.addr;
        [
            ("app_key", s.cfg.app_key.clone()),
            ("app_secret", s.cfg.app_secret.clone()),
            ("access_token", t.access.clone()),
            ("refresh_token", t.refresh.clone()),
            ("token_expires_at", t.expires_at_ms.to_string()),
            ("api_url", format!("http://{addr}/router/rest")),
            ("oauth_token_url", format!("http://{addr}/oauth/token")),
            ("tmc_url", format!("ws://{addr}/tmc")),
            ("tmc_group", TMC_GROUP.to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Enqueues the buyer message on the chat topic and waits (up to [`DELIVERY_TIMEOUT`]) for
    /// its TMC confirm; `acked` is true once confirmed.
    pub async fn deliver_chat(&self, chat: &BuyerChat) -> Delivery {
        let id = self.enqueue_chat(chat).await;
        self.shared().deliver(id, &format!("chat {}", chat.msg_id)).await
    }

    /// Enqueues the trade/refund message on its real topic and waits for its confirm.
    pub async fn deliver_trade(&self, event: &TradeEvent) -> Delivery {
        let id = self.enqueue_trade(event).await;
        self.shared().deliver(id, &format!("trade {}", event.event_id)).await
    }

    pub fn journal(&self) -> &Journal {
        &self.shared().journal
    }

    /// Enqueues a buyer message without waiting; returns its TMC id.
    pub async fn enqueue_chat(&self, chat: &BuyerChat) -> i64 {
        let s = self.shared();
        let content = s.chat_content(chat).to_string();
        s.enqueue(CHAT_TOPIC, content, chat.msg_id.parse().ok(), chat.sent_at_ms)
    }

    /// Enqueues a trade/refund message without waiting; returns its TMC id.
    pub async fn enqueue_trade(&self, event: &TradeEvent) -> i64 {
        let s = self.shared();
        let (topic, content) = s.trade_content(event);
        s.enqueue(topic, content.to_string(), event.order_id.parse().ok(), event.at_ms)
    }

    /// Enqueues a message with any topic and content verbatim (e.g. content that is not JSON, to
    /// exercise dead letters); returns its TMC id.
    pub async fn enqueue_raw(&self, topic: &str, content: &str) -> i64 {
        self.shared().enqueue(topic, content.to_owned(), None, now_ms())
    }

    /// Waits until the message `id` is confirmed; false on timeout.
    pub async fn wait_confirmed(&self, id: i64, timeout: Duration) -> bool {
        self.shared().wait_confirmed(id, timeout).await
    }

    /// TMC ids confirmed so far, in confirm order (each once).
    pub fn confirmed_ids(&self) -> Vec<i64> {
        self.shared().tmc().confirmed.clone()
    }

    /// Frames pushed for a message that had been pushed before (timeouts, Failed, reconnects and
    /// `duplicate_deliveries` copies).
    pub fn redeliveries(&self) -> u32 {
        self.shared().tmc().redeliveries
    }

    /// Open (CONNECT-accepted) TMC sessions.
    pub fn tmc_sessions(&self) -> usize {
        self.shared().tmc().sessions.len()
    }

    /// Whether new messages are pushed at once to a connected client (default true) or only in
    /// answer to a PullRequest.
    pub fn set_active_push(&self, on: bool) {
        self.shared().active_push.store(on, Ordering::Relaxed);
    }

    /// How long a pushed message may stay unconfirmed before a pull redelivers it (default
    /// [`REDELIVER_AFTER`]).
    pub fn set_redeliver_after(&self, after: Duration) {
        self.shared().redeliver_after_ms.store(after.as_millis() as u64, Ordering::Relaxed);
    }

    /// Moves the current access token's expiry (epoch ms); after it, calls get code 27.
    pub fn set_token_expires_at(&self, epoch_ms: i64) {
        self.shared().tokens().expires_at_ms = epoch_ms;
    }

    /// The access token currently valid.
    pub fn access_token(&self) -> String {
        self.shared().tokens().access.clone()
    }

    /// Writes arbitrary bytes as one binary WebSocket message to the newest TMC session (e.g. a
    /// malformed frame); false if none is connected.
    pub fn push_raw_frame(&self, bytes: Vec<u8>) -> bool {
        let tmc = self.shared().tmc();
        tmc.sessions.last().is_some_and(|s| s.tx.send(tmc::Out::Frame(bytes)).is_ok())
    }
}

/// Peeks at the request line without consuming it: `GET /tmc` (optionally followed by `/`, `?`
/// or a space) is a TMC WebSocket.
async fn is_tmc_upgrade(stream: &TcpStream) -> bool {
    let mut buf = [0u8; 512];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let n = match tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await {
            Ok(Ok(n)) => n,
            _ => return false,
        };
        let head = &buf[..n];
        if n == 0 || n == buf.len() || head.contains(&b'\n') {
            let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
            return line.starts_with(b"GET /tmc ") || line.starts_with(b"GET /tmc/") || line.starts_with(b"GET /tmc?");
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Hands the HTTP connections the dispatcher selected to axum.
struct ChannelListener {
    rx: mpsc::Receiver<(TcpStream, SocketAddr)>,
    local: SocketAddr,
}

impl axum::serve::Listener for ChannelListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        match self.rx.recv().await {
            Some(x) => x,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}
