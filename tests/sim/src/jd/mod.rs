//! # JD (京东 宙斯 JOS) simulator
//!
//! Plays JD against the gateway on one loopback port (PROTOCOLS.md §3), written from the
//! protocol notes alone (see `sign.rs`; nothing is shared with `plugins/jd`):
//!
//! | Path | What |
//! | --- | --- |
//! | `POST /stream` | JOS message stream (§3.2): signed form connect, then a never-ending chunked body of `{"packet":{"code":N,"msg":…}}` lines |
//! | `GET`/`POST /routerjson` | JOS API (§3.1): system params in the query, `360buy_param_json` in the form body |
//! | `GET`/`POST /oauth2/refresh_token` | OAuth refresh (form or query) |
//!
//! ## API calls
//! Checked in this order, each failure answered HTTP 200 with JD's real
//! `{"error_response":{"code","zh_desc","en_desc"}}` and recorded in `journal.rejected`:
//! `app_key` (20 missing / 21 unknown) → `sign` (11 missing / 12 invalid; MD5 wrap, or HMAC-SHA256
//! when `sign_method=hmacsha256`; a `timestamp` whose `+0800` arrived as ` 0800` fails here, as on
//! the real gateway, and the journal says why) → `v` (4 missing / 5 not `2.0`) → `timestamp`
//! (7 missing / 8 unparseable or more than 6 min off) → `method` (14 missing / 15 unknown) →
//! `access_token` (18 missing / 19 unknown, retired by a refresh, or `token_expired` fault) →
//! rate limit (2, send method only). Only `jingdong.im.pop.message.send` (modeled) exists; its
//! `360buy_param_json` needs `customer_open_id`, `waiter` (must be `<platform_shop_id>_waiter`),
//! `msg_type` (`text|image|sku|order`), `content`, `client_msg_id`, and optionally `sid` (must be
//! `sid-<customer_open_id>`). A bad payload is a business failure:
//! `{"<method>_responce":{"code":"0","result":{"success":false,"code":"PARAM_ERROR","msg":…}}}`.
//! Accepted sends go to [`Journal::accept`] and are answered
//! `{"jingdong_im_pop_message_send_responce":{"code":"0","result":{"success":true,"msg_id":"…"}}}`;
//! a repeated `client_msg_id` gets the same `msg_id` (JD dedupes it). `msg_id`s are decimal
//! strings above 2^53.
//!
//! ## OAuth
//! `oauth2/refresh_token` needs `app_key`, `app_secret`, `grant_type=refresh_token` and the
//! current `refresh_token`. It issues `<configured access_token>-r<n>`, answers
//! `{"access_token","expires_in":31536000,"refresh_token",…,"code":0}` (the refresh token is kept),
//! clears `Faults::token_expired`, bumps `journal.refreshes`; the previous token is from then on
//! rejected with code 19. Its error shape is not published: the simulator answers HTTP 400/401
//! with `{"code":<n>,"msg":…}` (modeled).
//!
//! ## Stream
//! The connect form (`app_key`, `id` = app_key, optional `user`, `timestamp` ms within 6 min,
//! `sign`) is verified like an API call; a refusal is an HTTP error status (403 for sign/app key,
//! 400 for a missing/stale timestamp) with an `error_response` body (codes 11/12/20/21/7/8).
//! Accepted: packet 200, then 105 (`msg` = count) if the platform backlog is not empty, the
//! backlog, business messages (202) as they are delivered, heartbeats (201) every
//! [`JdSim::set_heartbeat`] (30 s by default), and 101 + end of body when the connection is older
//! than [`JdSim::set_stream_max_age`] (86,400 s). One stream per app_key: a newer connection gets
//! the stream and the old one receives 104 and is closed.
//!
//! Business messages (202) alternate between `msg` as a JSON object and `msg` as a JSON string
//! holding one (first an object). Chat (`type` `dd_chat`, modeled) carries `msg_id`,
//! `sid` = `sid-<buyer_id>`, `customer_open_id`, `customer_nick`, `waiter` =
//! `<platform_shop_id>_waiter`, `msg_type` (`product` → `sku`), `content`, `sku_id`/`order_id`
//! (JSON numbers when numeric, absent on plain text), `time` (ms), `vip_level`. Trade events are
//! sent as business types `order_created`, `order_paid`, …, `refund_succeeded` (modeled) with
//! `msg_id`, `order_id`, `refund_id`, `customer_open_id`, `amount` (yuan) and `time` (ms).
//!
//! **Backlog.** JD streams have no acknowledgement. The simulator models the platform's backlog:
//! a business message stays queued until it has been written (chunk written and flushed to the TCP
//! socket without error) to the live connection; if no stream is open it waits for the next one
//! (`deliver_*` waits up to [`JdSim::set_delivery_timeout`], 10 s by default, and then reports
//! `acked: false` but keeps the message queued). A successful write into the kernel buffer of a
//! connection the peer is just closing cannot be detected, as on a real TCP server. The real JD
//! stream does not promise redelivery (it reports gaps with 203); the backlog is the model.
//!
//! ## Journal
//! `rejected()` gets one line per refused request of any kind: verification failures, business
//! failures, refused stream connects, and fault answers (rate limit, api_down), each with the
//! code and the reason. `received()` gets only accepted sends; `refreshes` counts served token
//! refreshes; `connections` counts accepted stream connections.
//!
//! ## Faults
//! - `duplicate_deliveries`: the next N chat/trade deliveries are written twice (same line).
//! - `bad_signature_pushes`: not applicable — stream packets carry no signature; only the connect
//!   is signed and it is always verified. The counter is left untouched.
//! - `rate_limit_sends`: the next N send calls get code 2 (`App Call Limited`).
//! - `token_expired`: every API call gets code 19 until a refresh.
//! - `api_down`: every `routerjson` and OAuth call gets HTTP 503 with `error_response` code 66
//!   (平台连接后端服务不可用). The stream stays up, so inbound chat keeps flowing during the outage.
//! - `slow_api_ms`: `routerjson` and OAuth answers are delayed by this much (not the stream).
//! - `drop_connections`: the next N stream connections are closed abruptly (no final chunk) right
//!   after a business message was written to them.

mod http;
pub mod sign;
mod stream;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context as _;
use serde_json::{Value, json};
use tokio::io::BufReader;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};

use crate::{BuyerChat, Delivery, Faults, Journal, ReceivedSend, SimConfig, TradeEvent, now_ms};
use http::{Request, Response};

/// The modeled chat send method (connector config `send_method`).
pub const SEND_METHOD: &str = "jingdong.im.pop.message.send";
/// The modeled business `type` of a chat message (connector config `chat_type`).
pub const CHAT_TYPE: &str = "dd_chat";
/// `expires_in` of an issued token (one year, as in JD's example).
pub const TOKEN_LIFETIME_S: i64 = 31_536_000;
/// Timestamp tolerance of the API (and, in this model, of the stream connect).
pub const TIMESTAMP_TOLERANCE_MS: i64 = 6 * 60 * 1000;
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(30);
pub const DEFAULT_DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_STREAM_MAX_AGE: Duration = Duration::from_secs(86_400);

const API_PATH: &str = "/routerjson";
const OAUTH_PATH: &str = "/oauth2/refresh_token";
const STREAM_PATH: &str = "/stream";
/// First send `msg_id`: above 2^53, so a float parse would show.
const FIRST_MSG_ID: u64 = 9_007_199_254_740_993;

/// A running JD simulator. Cheap to clone; the server stops when the last clone is dropped.
#[derive(Clone)]
pub struct JdSim {
    inner: Arc<Inner>,
    _guard: Arc<Guard>,
}

impl std::fmt::Debug for JdSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JdSim").field("addr", &self.inner.addr).field("shop", &self.inner.cfg.platform_shop_id).finish()
    }
}

struct Guard {
    shutdown: watch::Sender<bool>,
    accept: tokio::task::AbortHandle,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.accept.abort();
    }
}

pub(crate) struct Inner {
    cfg: SimConfig,
    addr: SocketAddr,
    faults: Arc<Faults>,
    journal: Journal,
    tokens: Mutex<Tokens>,
    /// client_msg_id → msg_id of accepted sends.
    sent: Mutex<HashMap<String, String>>,
    next_msg_id: AtomicU64,
    /// Business packets rendered so far (even: `msg` object, odd: `msg` string).
    business_seq: AtomicU64,
    heartbeat_ms: AtomicU64,
    delivery_timeout_ms: AtomicU64,
    max_age_ms: AtomicU64,
    stream: Mutex<StreamState>,
    /// Bumped whenever the backlog grows.
    backlog_version: watch::Sender<u64>,
    /// Bumped whenever a stream connects or goes away.
    stream_version: watch::Sender<u64>,
    /// Held while a connection writes backlog items, so two never write the same one.
    drain_lock: tokio::sync::Mutex<()>,
    shutdown: watch::Receiver<bool>,
}

struct Tokens {
    access: String,
    refresh: String,
    /// Tokens replaced by a refresh (rejected as expired).
    retired: Vec<String>,
    refreshes: u32,
    expires_at_ms: i64,
}

#[derive(Default)]
pub(crate) struct StreamState {
    current: Option<ConnHandle>,
    backlog: VecDeque<Pending>,
    next_conn_id: u64,
    next_seq: u64,
}

struct ConnHandle {
    id: u64,
    ctl: mpsc::UnboundedSender<Ctl>,
}

pub(crate) struct Pending {
    seq: u64,
    line: String,
    business: bool,
    /// Told the connection id once written.
    done: Option<oneshot::Sender<u64>>,
}

pub(crate) enum Ctl {
    /// Write this line now (control packets, raw lines); reports whether the write succeeded.
    Raw { line: String, done: oneshot::Sender<bool> },
    /// A newer connection took over: send 104 and close.
    Replaced,
    /// Close abruptly (test helper).
    Close,
}

impl Inner {
    fn lock_stream(&self) -> MutexGuard<'_, StreamState> {
        self.stream.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn lock_tokens(&self) -> MutexGuard<'_, Tokens> {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn waiter(&self) -> String {
        format!("{}_waiter", self.cfg.platform_shop_id)
    }
    fn bump(version: &watch::Sender<u64>) {
        version.send_modify(|v| *v = v.wrapping_add(1));
    }
}

impl JdSim {
    /// Binds `127.0.0.1:cfg.port` (0 = a free port) and serves inside the caller's runtime.
    pub async fn start(cfg: SimConfig, faults: Arc<Faults>) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", cfg.port))
            .await
            .with_context(|| format!("jd sim: cannot bind 127.0.0.1:{}", cfg.port))?;
        let addr = listener.local_addr()?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let tokens = Tokens {
            access: cfg.access_token.clone(),
            refresh: cfg.refresh_token.clone(),
            retired: Vec::new(),
            refreshes: 0,
            expires_at_ms: now_ms() + TOKEN_LIFETIME_S * 1000,
        };
        let inner = Arc::new(Inner {
            cfg,
            addr,
            faults,
            journal: Journal::default(),
            tokens: Mutex::new(tokens),
            sent: Mutex::new(HashMap::new()),
            next_msg_id: AtomicU64::new(FIRST_MSG_ID),
            business_seq: AtomicU64::new(0),
            heartbeat_ms: AtomicU64::new(DEFAULT_HEARTBEAT.as_millis() as u64),
            delivery_timeout_ms: AtomicU64::new(DEFAULT_DELIVERY_TIMEOUT.as_millis() as u64),
            max_age_ms: AtomicU64::new(DEFAULT_STREAM_MAX_AGE.as_millis() as u64),
            stream: Mutex::new(StreamState::default()),
            backlog_version: watch::channel(0).0,
            stream_version: watch::channel(0).0,
            drain_lock: tokio::sync::Mutex::new(()),
            shutdown: shutdown_rx,
        });
        let accept = tokio::spawn(accept_loop(inner.clone(), listener)).abort_handle();
        Ok(JdSim { inner, _guard: Arc::new(Guard { shutdown: shutdown_tx, accept }) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The `[shop.settings]` of the jd connector (plugins/jd/README.md) pointing at this
    /// simulator, with the current tokens.
    pub fn shop_settings(&self) -> BTreeMap<String, String> {
        let base = format!("http://{}", self.inner.addr);
        let tokens = self.inner.lock_tokens();
        let mut s = BTreeMap::new();
        s.insert("app_key".into(), self.inner.cfg.app_key.clone());
        s.insert("app_secret".into(), self.inner.cfg.app_secret.clone());
        s.insert("access_token".into(), tokens.access.clone());
        s.insert("refresh_token".into(), tokens.refresh.clone());
        s.insert("token_expires_at".into(), tokens.expires_at_ms.to_string());
        s.insert("api_url".into(), format!("{base}{API_PATH}"));
        s.insert("oauth_url".into(), format!("{base}{OAUTH_PATH}"));
        s.insert("stream_url".into(), format!("{base}{STREAM_PATH}"));
        s.insert("waiter".into(), self.inner.waiter());
        s
    }

    pub fn journal(&self) -> &Journal {
        &self.inner.journal
    }

    /// The staff account buyers write to: `<platform_shop_id>_waiter`.
    pub fn waiter(&self) -> String {
        self.inner.waiter()
    }

    /// The access token currently accepted.
    pub fn access_token(&self) -> String {
        self.inner.lock_tokens().access.clone()
    }

    /// The `msg_id` answered for an accepted `client_msg_id`.
    pub fn msg_id_for(&self, client_msg_id: &str) -> Option<String> {
        self.inner.sent.lock().unwrap_or_else(|p| p.into_inner()).get(client_msg_id).cloned()
    }

    /// Heartbeat (201) interval of stream connections (default 30 s); applies from each
    /// connection's next heartbeat.
    pub fn set_heartbeat(&self, every: Duration) {
        self.inner.heartbeat_ms.store(every.as_millis().max(1) as u64, Ordering::SeqCst);
    }

    /// How long `deliver_*` wait for a live stream (default 10 s).
    pub fn set_delivery_timeout(&self, timeout: Duration) {
        self.inner.delivery_timeout_ms.store(timeout.as_millis() as u64, Ordering::SeqCst);
    }

    /// Maximum age of a stream connection before it gets 101 and is closed (default 86,400 s).
    pub fn set_stream_max_age(&self, age: Duration) {
        self.inner.max_age_ms.store(age.as_millis() as u64, Ordering::SeqCst);
    }

    /// Whether a stream connection is open.
    pub fn stream_connected(&self) -> bool {
        self.inner.lock_stream().current.is_some()
    }

    /// Waits until a stream connection is open.
    pub async fn wait_for_stream(&self, timeout: Duration) -> bool {
        let mut rx = self.inner.stream_version.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.stream_connected() {
                return true;
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                _ => return self.stream_connected(),
            }
        }
    }

    /// Business messages not yet written to a stream.
    pub fn backlog_len(&self) -> usize {
        self.inner.lock_stream().backlog.len()
    }

    /// Drops the backlog; returns how many messages were in it.
    pub fn clear_backlog(&self) -> usize {
        let mut st = self.inner.lock_stream();
        let n = st.backlog.len();
        st.backlog.clear();
        n
    }

    /// Closes the current stream connection abruptly (no final chunk). False if none was open.
    pub fn close_stream(&self) -> bool {
        let st = self.inner.lock_stream();
        st.current.as_ref().is_some_and(|c| c.ctl.send(Ctl::Close).is_ok())
    }

    /// Writes a control packet `{"packet":{"code":code,"msg":msg}}` (101–105, 203, …) to the
    /// open stream at once. True if it was written; false if no stream is open or the write failed.
    pub async fn send_control(&self, code: i64, msg: Value) -> bool {
        self.send_raw_line(&json!({"packet": {"code": code, "msg": msg}}).to_string()).await
    }

    /// Writes one line verbatim (e.g. a malformed one) to the open stream.
    pub async fn send_raw_line(&self, line: &str) -> bool {
        let (tx, rx) = oneshot::channel();
        let sent = {
            let st = self.inner.lock_stream();
            st.current.as_ref().is_some_and(|c| c.ctl.send(Ctl::Raw { line: line.to_owned(), done: tx }).is_ok())
        };
        sent && rx.await.unwrap_or(false)
    }

    /// The business `msg` object a chat is rendered to (PROTOCOLS.md §3.3, modeled).
    pub fn render_chat(&self, chat: &BuyerChat) -> Value {
        let msg_type = match chat.msg_type.as_str() {
            "product" => "sku",
            other => other,
        };
        let mut m = serde_json::Map::new();
        m.insert("type".into(), CHAT_TYPE.into());
        m.insert("msg_id".into(), chat.msg_id.clone().into());
        m.insert("sid".into(), format!("sid-{}", chat.buyer_id).into());
        m.insert("customer_open_id".into(), chat.buyer_id.clone().into());
        m.insert("customer_nick".into(), chat.nick.clone().into());
        m.insert("waiter".into(), self.inner.waiter().into());
        m.insert("msg_type".into(), msg_type.into());
        m.insert("content".into(), chat.text.clone().into());
        if let Some(id) = &chat.ref_id {
            match msg_type {
                "sku" => {
                    m.insert("sku_id".into(), id_value(id));
                }
                "order" => {
                    m.insert("order_id".into(), id_value(id));
                }
                _ => {}
            }
        }
        m.insert("time".into(), chat.sent_at_ms.into());
        m.insert("vip_level".into(), chat.vip_level.into());
        Value::Object(m)
    }

    /// The business `msg` object of an order/refund event (modeled).
    pub fn render_trade(&self, event: &TradeEvent) -> Value {
        let kind = serde_json::to_value(event.kind).unwrap_or(Value::Null);
        let mut m = serde_json::Map::new();
        m.insert("type".into(), kind);
        m.insert("msg_id".into(), event.event_id.clone().into());
        m.insert("order_id".into(), id_value(&event.order_id));
        if let Some(r) = &event.refund_id {
            m.insert("refund_id".into(), id_value(r));
        }
        m.insert("customer_open_id".into(), event.buyer_id.clone().into());
        m.insert("amount".into(), yuan(event.amount_fen).into());
        m.insert("time".into(), event.at_ms.into());
        Value::Object(m)
    }

    /// Delivers a buyer chat as a 202 packet through the platform backlog.
    pub async fn deliver_chat(&self, chat: &BuyerChat) -> Delivery {
        let msg = self.render_chat(chat);
        self.deliver_msg(msg, "").await
    }

    /// Delivers an order/refund event as a 202 packet (type `order_paid`, …).
    pub async fn deliver_trade(&self, event: &TradeEvent) -> Delivery {
        let msg = self.render_trade(event);
        self.deliver_msg(msg, "").await
    }

    /// Delivers any business `msg` (object, or a string used verbatim as the string form)
    /// as a 202 packet through the backlog. Honours `duplicate_deliveries`.
    pub async fn deliver_business(&self, msg: Value) -> Delivery {
        self.deliver_msg(msg, "").await
    }

    async fn deliver_msg(&self, msg: Value, note: &str) -> Delivery {
        let msg = match msg {
            Value::Object(_) if self.inner.business_seq.fetch_add(1, Ordering::SeqCst) % 2 == 1 => {
                Value::String(msg.to_string())
            }
            other => other,
        };
        let line = json!({"packet": {"code": 202, "msg": msg}}).to_string();
        let twice = Faults::take(&self.inner.faults.duplicate_deliveries);
        let copies = if twice { 2 } else { 1 };
        let (acked, detail) = self.enqueue_and_wait(vec![line; copies]).await;
        let dup = if twice { " (delivered twice: duplicate_deliveries)" } else { "" };
        Delivery { acked, status: 0, detail: format!("{detail}{dup}{note}") }
    }

    async fn enqueue_and_wait(&self, lines: Vec<String>) -> (bool, String) {
        let mut waits = Vec::new();
        {
            let mut st = self.inner.lock_stream();
            for line in lines {
                let (tx, rx) = oneshot::channel();
                let seq = st.next_seq;
                st.next_seq += 1;
                st.backlog.push_back(Pending { seq, line, business: true, done: Some(tx) });
                waits.push(rx);
            }
        }
        Inner::bump(&self.inner.backlog_version);
        let timeout = Duration::from_millis(self.inner.delivery_timeout_ms.load(Ordering::SeqCst));
        let deadline = tokio::time::Instant::now() + timeout;
        let mut conns = Vec::new();
        for rx in waits {
            match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(conn)) => conns.push(conn),
                Ok(Err(_)) => return (false, "removed from the backlog before it was written".into()),
                Err(_) => {
                    return (
                        false,
                        format!(
                            "no live stream took it within {timeout:?}; kept in the platform backlog ({} pending)",
                            self.backlog_len()
                        ),
                    );
                }
            }
        }
        conns.dedup();
        let conns: Vec<String> = conns.iter().map(|c| format!("#{c}")).collect();
        (true, format!("written to stream connection {}", conns.join(", ")))
    }
}

/// A decimal id that fits u64 becomes a JSON number (exact, possibly above 2^53); anything else
/// stays a string.
fn id_value(id: &str) -> Value {
    let canonical = !id.is_empty() && id.bytes().all(|c| c.is_ascii_digit()) && (id == "0" || !id.starts_with('0'));
    match id.parse::<u64>() {
        Ok(n) if canonical => Value::from(n),
        _ => Value::from(id),
    }
}

fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

async fn shutdown_signal(rx: &mut watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

async fn accept_loop(inner: Arc<Inner>, listener: TcpListener) {
    let mut shutdown = inner.shutdown.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((sock, _)) => {
                    tokio::spawn(serve_conn(inner.clone(), sock));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            _ = shutdown_signal(&mut shutdown) => return,
        }
    }
}

async fn serve_conn(inner: Arc<Inner>, sock: TcpStream) {
    let _ = sock.set_nodelay(true);
    let (rd, mut wr) = sock.into_split();
    let mut rd = BufReader::new(rd);
    let mut shutdown = inner.shutdown.clone();
    loop {
        let read = tokio::select! {
            r = http::read_request(&mut rd, &mut wr) => r,
            _ = shutdown_signal(&mut shutdown) => return,
        };
        let req = match read {
            Ok(Some(req)) => req,
            Ok(None) => return,
            Err(e) => {
                inner.journal.reject(format!("http: unreadable request: {e}"));
                let body =
                    json!({"error_response": {"code": "0", "zh_desc": "请求无法解析", "en_desc": e.to_string()}});
                let _ = http::write_response(&mut wr, &Response::json(400, &body), false).await;
                return;
            }
        };
        let resp = match req.path.as_str() {
            STREAM_PATH => match stream::verify_connect(&inner, &req) {
                Ok(()) => {
                    stream::run(inner, rd, wr).await;
                    return;
                }
                Err(resp) => resp,
            },
            API_PATH => api(&inner, &req).await,
            OAUTH_PATH => oauth_refresh(&inner, &req).await,
            other => {
                inner.journal.reject(format!("http: {} {other}: no such endpoint", req.method));
                Response::json(
                    404,
                    &json!({"error_response": {"code": "0", "zh_desc": "路径不存在", "en_desc": "Not Found"}}),
                )
            }
        };
        if http::write_response(&mut wr, &resp, req.keep_alive).await.is_err() || !req.keep_alive {
            return;
        }
    }
}

/// `(zh_desc, en_desc)` of a JOS gateway code.
fn describe(code: &str) -> (&'static str, &'static str) {
    match code {
        "2" => ("限制时间内调用失败次数", "App Call Limited"),
        "4" => ("缺少版本参数", "Missing Version"),
        "5" => ("不支持的版本号", "Unsupported Version"),
        "7" => ("缺少时间戳参数", "Missing Timestamp"),
        "8" => ("非法的时间戳参数", "Invalid Timestamp"),
        "11" => ("缺少签名参数", "Missing Signature"),
        "12" => ("无效签名", "Invalid Signature"),
        "14" => ("缺少方法名参数", "Missing Method"),
        "15" => ("不存在的方法名", "Invalid Method"),
        "18" => ("缺少access_token参数", "Missing Access Token"),
        "19" => ("无效access_token", "Invalid access_token"),
        "20" => ("缺少app_key参数", "Missing App Key"),
        "21" => ("无效app_key", "Invalid App Key"),
        "66" => ("平台连接后端服务不可用", "Platform Backend Service Unavailable"),
        _ => ("未知错误", "Unknown Error"),
    }
}

pub(crate) fn error_body(code: &str) -> Value {
    let (zh, en) = describe(code);
    json!({"error_response": {"code": code, "zh_desc": zh, "en_desc": en}})
}

/// A refusal: the JOS code and the journal reason.
pub(crate) struct Refusal {
    code: &'static str,
    reason: String,
}

fn refuse(code: &'static str, reason: impl Into<String>) -> Refusal {
    Refusal { code, reason: reason.into() }
}

/// Collects parameters into a sorted map; a repeated name cannot be signed unambiguously.
pub(crate) fn collect_params(req: &Request) -> Result<BTreeMap<String, String>, Refusal> {
    let mut map = BTreeMap::new();
    for (k, v) in req.params() {
        if map.insert(k.clone(), v).is_some() {
            return Err(refuse("12", format!("parameter {k:?} sent twice")));
        }
    }
    Ok(map)
}

/// app_key, then sign (shared by the API and the stream connect).
pub(crate) fn verify_key_and_sign(inner: &Inner, params: &BTreeMap<String, String>) -> Result<(), Refusal> {
    match params.get("app_key").map(String::as_str) {
        None | Some("") => return Err(refuse("20", "missing app_key")),
        Some(k) if k != inner.cfg.app_key => return Err(refuse("21", format!("unknown app_key {k:?}"))),
        Some(_) => {}
    }
    let got = match params.get("sign").map(String::as_str) {
        None | Some("") => return Err(refuse("11", "missing sign")),
        Some(s) => s,
    };
    let want = sign::sign(&inner.cfg.app_secret, params).map_err(|e| refuse("12", e))?;
    if got != want {
        let mut reason = format!(
            "invalid sign {got:?}: expected {want:?} ({:?}) over {:?}",
            sign::SignMethod::from_params(params).unwrap_or(sign::SignMethod::Md5),
            sign::string_to_sign(params)
        );
        if params.get("timestamp").is_some_and(|t| t.contains(' ') && t.ends_with(" 0800")) {
            reason.push_str("; the timestamp's '+0800' arrived as ' 0800': '+' must be sent as %2B");
        }
        return Err(refuse("12", reason));
    }
    Ok(())
}

fn verify_api(inner: &Inner, params: &BTreeMap<String, String>) -> Result<String, Refusal> {
    verify_key_and_sign(inner, params)?;
    match params.get("v").map(String::as_str) {
        None | Some("") => return Err(refuse("4", "missing v")),
        Some("2.0") => {}
        Some(v) => return Err(refuse("5", format!("unsupported v {v:?} (2.0)"))),
    }
    let ts = match params.get("timestamp").map(String::as_str) {
        None | Some("") => return Err(refuse("7", "missing timestamp")),
        Some(t) => t,
    };
    let Some(at) = sign::parse_timestamp(ts) else {
        return Err(refuse("8", format!("unparseable timestamp {ts:?} (yyyy-MM-dd HH:mm:ss[.SSS+0800])")));
    };
    let skew = now_ms() - at;
    if skew.abs() > TIMESTAMP_TOLERANCE_MS {
        return Err(refuse("8", format!("timestamp {ts:?} is {} s off (tolerance 360 s)", skew / 1000)));
    }
    let method = match params.get("method").map(String::as_str) {
        None | Some("") => return Err(refuse("14", "missing method")),
        Some(SEND_METHOD) => SEND_METHOD.to_owned(),
        Some(m) => return Err(refuse("15", format!("unknown method {m:?}"))),
    };
    let tokens = inner.lock_tokens();
    match params.get("access_token").map(String::as_str) {
        None | Some("") => return Err(refuse("18", "missing access_token")),
        Some(t) if tokens.retired.iter().any(|r| r == t) => {
            return Err(refuse("19", format!("access_token {t:?} expired: replaced by a refresh")));
        }
        Some(t) if t != tokens.access => return Err(refuse("19", format!("unknown access_token {t:?}"))),
        Some(_) if inner.faults.token_expired.load(Ordering::SeqCst) => {
            return Err(refuse("19", "access_token expired (token_expired fault)"));
        }
        Some(_) => {}
    }
    Ok(method)
}

async fn api_delay(inner: &Inner) {
    let ms = inner.faults.slow_api_ms.load(Ordering::SeqCst);
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

async fn api(inner: &Inner, req: &Request) -> Response {
    api_delay(inner).await;
    if inner.faults.api_down.load(Ordering::SeqCst) {
        inner.journal.reject("routerjson: api_down fault: answered 503 (code 66)");
        return Response::json(503, &error_body("66"));
    }
    if req.method != "POST" && req.method != "GET" {
        inner.journal.reject(format!("routerjson: method {} not allowed", req.method));
        return Response::json(405, &error_body("0"));
    }
    let verified = collect_params(req).and_then(|p| verify_api(inner, &p).map(|m| (p, m)));
    let (params, method) = match verified {
        Ok(ok) => ok,
        Err(r) => {
            inner.journal.reject(format!("routerjson: code {}: {}", r.code, r.reason));
            return Response::json(200, &error_body(r.code));
        }
    };
    if Faults::take(&inner.faults.rate_limit_sends) {
        inner.journal.reject(format!("routerjson: code 2: {method} rate limited (rate_limit_sends fault)"));
        return Response::json(200, &error_body("2"));
    }
    handle_send(inner, &method, &params)
}

fn handle_send(inner: &Inner, method: &str, params: &BTreeMap<String, String>) -> Response {
    let envelope = format!("{}_responce", method.replace('.', "_"));
    let fail = |msg: String| {
        inner.journal.reject(format!("routerjson: {method}: business failure: {msg}"));
        Response::json(
            200,
            &json!({ envelope.clone(): {"code": "0", "result": {"success": false, "code": "PARAM_ERROR", "msg": msg}}}),
        )
    };
    let Some(raw) = params.get("360buy_param_json") else {
        return fail("missing 360buy_param_json".into());
    };
    let obj = match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(o)) => o,
        _ => return fail(format!("360buy_param_json is not a JSON object: {raw:?}")),
    };
    let text = |name: &str| -> Option<String> {
        match obj.get(name)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let mut missing = Vec::new();
    let mut need = |name: &'static str| {
        let v = text(name);
        if v.is_none() {
            missing.push(name);
        }
        v.unwrap_or_default()
    };
    let (buyer, waiter, msg_type, content, client_msg_id) =
        (need("customer_open_id"), need("waiter"), need("msg_type"), need("content"), need("client_msg_id"));
    if !missing.is_empty() {
        return fail(format!("missing or empty {}", missing.join(", ")));
    }
    if !["text", "image", "sku", "order"].contains(&msg_type.as_str()) {
        return fail(format!("unknown msg_type {msg_type:?} (text|image|sku|order)"));
    }
    if waiter != inner.waiter() {
        return fail(format!("waiter {waiter:?} is not an account of this shop ({})", inner.waiter()));
    }
    let sid = text("sid");
    if let Some(sid) = &sid
        && *sid != format!("sid-{buyer}")
    {
        return fail(format!("sid {sid:?} is not a session of customer {buyer:?}"));
    }
    let known = ["customer_open_id", "msg_type", "content", "client_msg_id", "sid"];
    let extra = obj
        .iter()
        .filter(|(k, _)| !known.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())))
        .collect();
    let msg_id = {
        let mut sent = inner.sent.lock().unwrap_or_else(|p| p.into_inner());
        sent.entry(client_msg_id.clone())
            .or_insert_with(|| inner.next_msg_id.fetch_add(1, Ordering::SeqCst).to_string())
            .clone()
    };
    inner.journal.accept(ReceivedSend {
        method: method.to_owned(),
        buyer_id: buyer,
        msg_type,
        content,
        client_msg_id,
        conversation: sid,
        extra,
        at_ms: now_ms(),
        duplicate: false,
    });
    Response::json(200, &json!({ envelope: {"code": "0", "result": {"success": true, "msg_id": msg_id}}}))
}

async fn oauth_refresh(inner: &Inner, req: &Request) -> Response {
    api_delay(inner).await;
    if inner.faults.api_down.load(Ordering::SeqCst) {
        inner.journal.reject("oauth: api_down fault: answered 503 (code 66)");
        return Response::json(503, &error_body("66"));
    }
    let oauth_err = |status: u16, code: i64, msg: String| {
        inner.journal.reject(format!("oauth: {msg}"));
        Response::json(status, &json!({"code": code, "msg": msg}))
    };
    if req.method != "POST" && req.method != "GET" {
        return oauth_err(405, 405, format!("method {} not allowed", req.method));
    }
    let params: BTreeMap<String, String> = req.params().into_iter().collect();
    let get = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
    if get("app_key") != inner.cfg.app_key {
        return oauth_err(401, 401, format!("invalid app_key {:?}", get("app_key")));
    }
    if get("app_secret") != inner.cfg.app_secret {
        return oauth_err(401, 401, "invalid app_secret".into());
    }
    if get("grant_type") != "refresh_token" {
        return oauth_err(400, 400, format!("unsupported grant_type {:?} (refresh_token)", get("grant_type")));
    }
    let mut tokens = inner.lock_tokens();
    if get("refresh_token") != tokens.refresh {
        return oauth_err(400, 402, format!("invalid refresh_token {:?}", get("refresh_token")));
    }
    tokens.refreshes += 1;
    let new = format!("{}-r{}", inner.cfg.access_token, tokens.refreshes);
    let old = std::mem::replace(&mut tokens.access, new.clone());
    tokens.retired.push(old);
    let now = now_ms();
    tokens.expires_at_ms = now + TOKEN_LIFETIME_S * 1000;
    inner.faults.token_expired.store(false, Ordering::SeqCst);
    inner.journal.refreshes.fetch_add(1, Ordering::SeqCst);
    Response::json(
        200,
        &json!({
            "access_token": new,
            "expires_in": TOKEN_LIFETIME_S,
            "refresh_token": tokens.refresh,
            "scope": "snsapi_base",
            "open_id": format!("{}-open-id", inner.cfg.platform_shop_id),
            "uid": inner.cfg.platform_shop_id,
            "time": now,
            "token_type": "bearer",
            "code": 0,
        }),
    )
}
