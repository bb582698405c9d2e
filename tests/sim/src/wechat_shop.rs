//! # WeChat Shop (微信小店) simulator
//!
//! Plays the platform side of the 自研客服 API on loopback, written from WeChat's public docs
//! (no code shared with `plugins/wechat-shop`; its crypto is a separate implementation of the
//! message-push guide, checked here against the guide's own published example):
//!
//! - **Message push** (<https://developers.weixin.qq.com/doc/store/shop/dev_before/message_push>):
//!   [`WechatShopSim::deliver_chat`] / [`WechatShopSim::deliver_trade`] POST one event, in safe
//!   mode (`encrypt_type=aes`, `msg_signature`, body `{"ToUserName","Encrypt"}`) or plain mode
//!   ([`WechatShopSim::set_safe_mode`]), to the gateway's hook. A push counts as acknowledged
//!   only on HTTP 200 with the body `success` or empty; anything else is retried
//!   ([`PUSH_RETRIES`] retries, [`PUSH_BACKOFF`] apart; the real platform retries for ~3.5 h).
//!   [`WechatShopSim::verify_url`] makes the echostr GET.
//! - **API** (`https://api.weixin.qq.com` on loopback): `POST /cgi-bin/stable_token`,
//!   `POST /channels/ec/commkf/sendmsg?access_token=…` (de-duplicated on `request_id`) and
//!   `POST /channels/ec/commkf/cosupload?access_token=…` (multipart), answering
//!   `{"errcode","errmsg",…}` with the published codes (40001 bad token, 42001 expired, 45009
//!   quota, 40125 bad appsecret, 44002 empty body, 47001 bad JSON, 40003 bad open_id).
//!
//! Faults ([`Faults`]): `duplicate_deliveries` (same push twice), `bad_signature_pushes` (the
//! next N push attempts signed with a wrong token), `rate_limit_sends` (45009), `token_expired`
//! (42001 until a stable_token fetch issues a new token), `api_down` (HTTP 503), `slow_api_ms`.
//! Not applicable: `drop_connections`, `refuse_connects` (no long-lived connection).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use aes::Aes256;
use axum::Router;
use axum::extract::State;
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use serde_json::{Value, json};
use sha1::{Digest, Sha1};

use crate::{BuyerChat, Delivery, Faults, Journal, ReceivedSend, SimConfig, TradeEvent, TradeKind};

/// Retries of an unacknowledged push.
pub const PUSH_RETRIES: u32 = 3;
/// Pause between push attempts.
pub const PUSH_BACKOFF: Duration = Duration::from_millis(200);
/// Access-token life (stable_token answers `expires_in` 7200).
pub const TOKEN_LIFE_S: i64 = 7200;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// SHA-1 over the sorted, concatenated parts, as hex (the guide's `signature`/`msg_signature`).
pub fn signature(parts: &[&str]) -> String {
    let mut v: Vec<&str> = parts.to_vec();
    v.sort();
    hex::encode(Sha1::digest(v.concat().as_bytes()))
}

/// The 32-byte AESKey of an EncodingAESKey (Base64 of the key plus `=`, trailing bits allowed).
fn aes_key(encoding_aes_key: &str) -> [u8; 32] {
    use base64::engine::{GeneralPurpose, GeneralPurposeConfig};
    let lenient = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    let bytes = lenient.decode(format!("{encoding_aes_key}=")).expect("a 43-character EncodingAESKey");
    bytes.try_into().expect("32 bytes")
}

/// `Encrypt` for `msg`: Base64(AES-256-CBC(random16 ‖ len ‖ msg ‖ appid, PKCS#7 to 32)).
pub fn seal(encoding_aes_key: &str, random: [u8; 16], msg: &[u8], appid: &str) -> String {
    let key = aes_key(encoding_aes_key);
    let mut buf = random.to_vec();
    buf.extend((msg.len() as u32).to_be_bytes());
    buf.extend(msg);
    buf.extend(appid.as_bytes());
    let pad = 32 - buf.len() % 32;
    buf.resize(buf.len() + pad, pad as u8);
    let n = buf.len();
    let enc = cbc::Encryptor::<Aes256>::new_from_slices(&key, &key[..16]).expect("key and iv sizes");
    let out = enc.encrypt_padded::<NoPadding>(&mut buf, n).expect("whole blocks").to_vec();
    B64.encode(out)
}

/// Opens `Encrypt`: `(msg, appid)`.
pub fn open(encoding_aes_key: &str, encrypt: &str) -> Option<(Vec<u8>, String)> {
    let key = aes_key(encoding_aes_key);
    let mut buf = B64.decode(encrypt).ok()?;
    let dec = cbc::Decryptor::<Aes256>::new_from_slices(&key, &key[..16]).ok()?;
    let plain = dec.decrypt_padded::<NoPadding>(&mut buf).ok()?.to_vec();
    let pad = *plain.last()? as usize;
    let body = plain.get(..plain.len().checked_sub(pad)?)?;
    let len = u32::from_be_bytes(body.get(16..20)?.try_into().ok()?) as usize;
    let msg = body.get(20..20 + len)?.to_vec();
    Some((msg, String::from_utf8(body.get(20 + len..)?.to_vec()).ok()?))
}

/// One push attempt made to the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushAttempt {
    /// The event's `Event` (`commkf_send_msg_to_kf`, …) or `GET` for the URL verification.
    pub event: String,
    pub signed_ok: bool,
    pub status: u16,
    pub response: String,
    pub acked: bool,
}

struct Shared {
    cfg: SimConfig,
    /// The message-push Token.
    token: String,
    encoding_aes_key: String,
    faults: Arc<Faults>,
    journal: Journal,
    addr: SocketAddr,
    hook_url: Mutex<Option<String>>,
    safe_mode: Mutex<bool>,
    /// (current access token, expiry epoch ms, issued count)
    access: Mutex<(String, i64, u32)>,
    /// request_id → msg_id.
    sent: Mutex<HashMap<String, String>>,
    seq: AtomicU64,
    uploads: AtomicU32,
    /// The multipart body of each cosupload, in order.
    uploaded_files: Mutex<Vec<Vec<u8>>>,
    pushes: Mutex<Vec<PushAttempt>>,
    http: reqwest::Client,
}

impl Shared {
    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::SeqCst) + 1
    }
}

/// The WeChat Shop simulator. Cheap to clone; the server stops when the last clone is dropped.
#[derive(Clone)]
pub struct WechatShopSim {
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

impl WechatShopSim {
    /// Binds the API server on `127.0.0.1:cfg.port` and serves it in the caller's runtime.
    /// `cfg.app_key` is the shop's appid, `cfg.app_secret` its AppSecret; the push Token and
    /// the EncodingAESKey are derived from the shop id.
    pub async fn start(cfg: SimConfig, faults: Arc<Faults>) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", cfg.port)).await?;
        let addr = listener.local_addr()?;
        let _ = crate::http_client();
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(5)).build()?;
        let seed: String = cfg.platform_shop_id.chars().filter(char::is_ascii_alphanumeric).collect();
        let token = format!("tok{seed}").chars().take(32).collect();
        let encoding_aes_key: String = format!("{seed}{}", "k".repeat(43)).chars().take(43).collect();
        let shared = Arc::new(Shared {
            access: Mutex::new((cfg.access_token.clone(), crate::now_ms() + TOKEN_LIFE_S * 1000, 0)),
            cfg,
            token,
            encoding_aes_key,
            faults,
            journal: Journal::default(),
            addr,
            hook_url: Mutex::new(None),
            safe_mode: Mutex::new(true),
            sent: Mutex::new(HashMap::new()),
            seq: AtomicU64::new(0),
            uploads: AtomicU32::new(0),
            uploaded_files: Mutex::new(Vec::new()),
            pushes: Mutex::new(Vec::new()),
            http,
        });
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                eprintln!("wechat-shop sim: server stopped: {e}");
            }
        });
        Ok(WechatShopSim { handle: Arc::new(Handle { shared, server }) })
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// The API base URL.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.shared().addr)
    }

    /// The `[shop.settings]` for the gateway's wechat-shop connector.
    pub fn shop_settings(&self) -> BTreeMap<String, String> {
        let s = self.shared();
        let (access, expires, _) = lock(&s.access).clone();
        BTreeMap::from([
            ("appid".into(), s.cfg.app_key.clone()),
            ("token".into(), s.token.clone()),
            ("encoding_aes_key".into(), s.encoding_aes_key.clone()),
            ("appsecret".into(), s.cfg.app_secret.clone()),
            ("access_token".into(), access),
            ("token_expires_at".into(), expires.to_string()),
            ("api_url".into(), self.api_url()),
        ])
    }

    /// Sets the gateway's push URL, e.g. `http://127.0.0.1:8080/hooks/wechat-shop/wx-1`.
    pub fn set_gateway(&self, hook_url: String) {
        *lock(&self.shared().hook_url) = Some(hook_url);
    }

    /// Safe mode (encrypted, the default) or plain mode.
    pub fn set_safe_mode(&self, safe: bool) {
        *lock(&self.shared().safe_mode) = safe;
    }

    /// What the simulator saw.
    pub fn journal(&self) -> &Journal {
        &self.shared().journal
    }

    /// Every push attempt so far.
    pub fn push_log(&self) -> Vec<PushAttempt> {
        lock(&self.shared().pushes).clone()
    }

    /// The access token currently valid.
    pub fn current_access_token(&self) -> String {
        lock(&self.shared().access).0.clone()
    }

    /// cosupload calls served.
    /// A URL of a picture on the web (served by the simulator, not part of the platform):
    /// what an agent links to in a reply.
    pub fn picture_url(&self, name: &str) -> String {
        format!("http://{}{PICTURES}{name}", self.shared().addr)
    }

    /// Whether an uploaded file holds the bytes of [`WechatShopSim::picture_url`]'s picture.
    pub fn uploaded_the_picture(&self) -> bool {
        lock(&self.shared().uploaded_files).iter().any(|f| f.windows(PICTURE.len()).any(|w| w == PICTURE))
    }

    pub fn uploads(&self) -> u32 {
        self.shared().uploads.load(Ordering::SeqCst)
    }

    /// The `commkf_send_msg_to_kf` event of `chat`. `msg_type`: `text`, `image`, `video`,
    /// `file`, `product` (→ `product_share`), `order` (→ `order_share`); `text` carries the
    /// text or the media URL, `ref_id` the product or order id. `msg_id` goes out as a JSON
    /// number when it is one (WeChat's ids exceed 2^53).
    pub fn chat_event(&self, chat: &BuyerChat) -> Value {
        let (kind, part) = match chat.msg_type.as_str() {
            "image" => ("image", json!({"cos_url": chat.text})),
            "video" => ("video", json!({"cos_url": chat.text})),
            "file" => ("file", json!({"cos_url": chat.text, "file_name": "附件.pdf"})),
            "product" => ("product_share", json!({"product_id": id_value(chat.ref_id.as_deref().unwrap_or("0"))})),
            "order" => ("order_share", json!({"order_id": chat.ref_id.clone().unwrap_or_default()})),
            _ => ("text", json!({"content": chat.text})),
        };
        let mut event = json!({
            "ToUserName": format!("gh_{}", self.shared().cfg.platform_shop_id),
            "FromUserName": chat.buyer_id,
            "CreateTime": chat.sent_at_ms.div_euclid(1000),
            "MsgType": "event",
            "Event": "commkf_send_msg_to_kf",
            "msg_id": id_value(&chat.msg_id),
            "msg_type": kind,
            "msg_event": "EVENT_TYPE_SEND_MSG",
        });
        event[kind] = part;
        event
    }

    /// The order or after-sale event of `trade` (order ids as JSON numbers, as published).
    pub fn trade_event(&self, t: &TradeEvent) -> Value {
        let base = |event: &str| {
            json!({
                "ToUserName": format!("gh_{}", self.shared().cfg.platform_shop_id),
                "FromUserName": t.buyer_id,
                "CreateTime": t.at_ms.div_euclid(1000),
                "MsgType": "event",
                "Event": event,
            })
        };
        let order = |event: &str| {
            let mut v = base(event);
            v["order_info"] = json!({"order_id": id_value(&t.order_id)});
            v
        };
        let aftersale = |status: &str| {
            let mut v = base("channels_ec_aftersale_update");
            v["finder_shop_aftersale_status_update"] = json!({
                "status": status,
                "after_sale_order_id": t.refund_id.clone().unwrap_or_else(|| t.event_id.clone()),
                "order_id": t.order_id,
            });
            v
        };
        match t.kind {
            TradeKind::OrderCreated => order("channels_ec_order_new"),
            TradeKind::OrderPaid => order("channels_ec_order_pay"),
            TradeKind::OrderShipped => order("channels_ec_order_deliver"),
            TradeKind::OrderReceived => order("channels_ec_order_confirm"),
            TradeKind::OrderClosed => order("channels_ec_order_cancel"),
            TradeKind::RefundRequested => aftersale("MERCHANT_PROCESSING"),
            TradeKind::RefundAgreed => aftersale("USER_WAIT_RETURN"),
            TradeKind::RefundSucceeded => aftersale("MERCHANT_REFUND_SUCCESS"),
        }
    }

    /// Pushes a buyer message, retrying until acknowledged; reports the last attempt.
    pub async fn deliver_chat(&self, chat: &BuyerChat) -> Delivery {
        let event = self.chat_event(chat);
        self.deliver(&event).await
    }

    /// Pushes an order or after-sale event like [`WechatShopSim::deliver_chat`].
    pub async fn deliver_trade(&self, trade: &TradeEvent) -> Delivery {
        let event = self.trade_event(trade);
        self.deliver(&event).await
    }

    async fn deliver(&self, event: &Value) -> Delivery {
        let times = if Faults::take(&self.shared().faults.duplicate_deliveries) { 2 } else { 1 };
        let mut last = Delivery { acked: false, status: 0, detail: "not sent".into() };
        let mut all_acked = true;
        for _ in 0..times {
            for attempt in 0..=PUSH_RETRIES {
                if attempt > 0 {
                    tokio::time::sleep(PUSH_BACKOFF).await;
                }
                let forged = Faults::take(&self.shared().faults.bad_signature_pushes);
                last = self.push(event, if forged { Tamper::WrongToken } else { Tamper::None }).await;
                if last.acked {
                    break;
                }
            }
            all_acked &= last.acked;
        }
        Delivery { acked: all_acked, ..last }
    }

    /// One push of `event`, with no retry, honest or tampered as asked.
    pub async fn push(&self, event: &Value, tamper: Tamper) -> Delivery {
        let s = self.shared();
        let Some(hook) = lock(&s.hook_url).clone() else {
            return Delivery { acked: false, status: 0, detail: "no gateway set".into() };
        };
        let ts = crate::now_ms().div_euclid(1000).to_string();
        let nonce = (100_000_000 + s.next_seq()).to_string();
        let token = if tamper == Tamper::WrongToken { "forgedtoken" } else { s.token.as_str() };
        let plain = event.to_string();
        let safe = *lock(&s.safe_mode);
        let (query, body) = if safe {
            let mut random = [0u8; 16];
            random[..8].copy_from_slice(&s.next_seq().to_be_bytes());
            let appid = if tamper == Tamper::OtherApp { "wx0000000000000000" } else { s.cfg.app_key.as_str() };
            let encrypt = seal(&s.encoding_aes_key, random, plain.as_bytes(), appid);
            let msg_signature = signature(&[token, &ts, &nonce, &encrypt]);
            let encrypt = if tamper == Tamper::Ciphertext { flip_one(&encrypt) } else { encrypt };
            let sig = signature(&[token, &ts, &nonce]);
            (
                format!("signature={sig}&timestamp={ts}&nonce={nonce}&encrypt_type=aes&msg_signature={msg_signature}"),
                json!({"ToUserName": event["ToUserName"], "Encrypt": encrypt}).to_string(),
            )
        } else {
            (format!("signature={}&timestamp={ts}&nonce={nonce}", signature(&[token, &ts, &nonce])), plain)
        };
        let result =
            s.http.post(format!("{hook}?{query}")).header("content-type", "application/json").body(body).send().await;
        let name = event["Event"].as_str().unwrap_or("").to_owned();
        self.record(name, tamper == Tamper::None, result).await
    }

    /// The URL verification GET; acknowledged when the gateway echoes `echostr`.
    pub async fn verify_url(&self, honest: bool) -> Delivery {
        let s = self.shared();
        let Some(hook) = lock(&s.hook_url).clone() else {
            return Delivery { acked: false, status: 0, detail: "no gateway set".into() };
        };
        let ts = crate::now_ms().div_euclid(1000).to_string();
        let nonce = (200_000_000 + s.next_seq()).to_string();
        let echostr = format!("{}", 4_375_120_948_345_356_249u64 + s.next_seq());
        let token = if honest { s.token.as_str() } else { "forgedtoken" };
        let sig = signature(&[token, &ts, &nonce]);
        let url = format!("{hook}?signature={sig}&echostr={echostr}&timestamp={ts}&nonce={nonce}");
        let result = s.http.get(url).send().await;
        let mut d = self.record("GET".into(), honest, result).await;
        d.acked = d.status == 200 && d.detail == echostr;
        if let Some(last) = lock(&s.pushes).last_mut() {
            last.acked = d.acked;
        }
        d
    }

    async fn record(&self, event: String, signed_ok: bool, result: reqwest::Result<reqwest::Response>) -> Delivery {
        let (status, detail) = match result {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(e) => (0, e.to_string()),
        };
        let acked = status == 200 && (detail.is_empty() || detail == "success");
        lock(&self.shared().pushes).push(PushAttempt { event, signed_ok, status, response: detail.clone(), acked });
        Delivery { acked, status, detail }
    }
}

/// How [`WechatShopSim::push`] spoils a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// Honest.
    None,
    /// Signed with a token that is not the shop's (a forgery).
    WrongToken,
    /// One ciphertext character changed after signing (safe mode).
    Ciphertext,
    /// Sealed for another appid (safe mode), correctly signed.
    OtherApp,
}

fn flip_one(b64: &str) -> String {
    let mut bytes = b64.as_bytes().to_vec();
    let i = bytes.len() / 2;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap_or_default()
}

/// An id as WeChat sends it: a JSON number when it is a plain unsigned integer.
fn id_value(id: &str) -> Value {
    match id.parse::<u64>() {
        Ok(n) if !id.starts_with('0') || id == "0" => Value::from(n),
        _ => Value::from(id),
    }
}

fn wx_error(code: i64, msg: &str) -> Value {
    json!({"errcode": code, "errmsg": format!("{msg} rid: sim-{code}")})
}

async fn handle(State(s): State<Arc<Shared>>, method: Method, uri: Uri, body: Bytes) -> Response {
    let delay = s.faults.slow_api_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if s.faults.api_down.load(Ordering::SeqCst) {
        s.journal.reject(format!("wechat {}: api_down fault", uri.path()));
        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "<html>503 Service Unavailable</html>").into_response();
    }
    // Not the platform: a picture somewhere on the web an agent links to (tests of the upload).
    if method == Method::GET && uri.path().starts_with(PICTURES) {
        return ([(axum::http::header::CONTENT_TYPE, "image/jpeg")], PICTURE).into_response();
    }
    let answer = match (method, uri.path()) {
        (Method::POST, "/cgi-bin/stable_token") => stable_token(&s, &body),
        (Method::POST, "/channels/ec/commkf/sendmsg") => with_token(&s, &uri, |s| sendmsg(s, &body)),
        (Method::POST, "/channels/ec/commkf/cosupload") => with_token(&s, &uri, |s| cosupload(s, &body)),
        (_, path) => Err((wx_error(40066, "invalid url"), format!("unknown path {path}"))),
    };
    let value = answer.unwrap_or_else(|(v, why)| {
        s.journal.reject(format!("wechat {}: {} {why}", uri.path(), v["errcode"]));
        v
    });
    axum::Json(value).into_response()
}

type Answer = Result<Value, (Value, String)>;

/// Where the simulator serves [`PICTURE`] (not a platform path).
const PICTURES: &str = "/web-pictures/";
/// A small JPEG-looking payload (SOI, some bytes, EOI).
const PICTURE: &[u8] = b"\xFF\xD8\xFF\xE0huiliu-test-picture-0123456789\xFF\xD9";

fn with_token(s: &Shared, uri: &Uri, f: impl FnOnce(&Shared) -> Answer) -> Answer {
    let given = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "access_token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let (current, expires_at, _) = lock(&s.access).clone();
    if given.is_empty() {
        return Err((wx_error(41001, "access_token missing"), "no access_token".into()));
    }
    if given != current {
        return Err((
            wx_error(40001, "invalid credential, access_token is invalid or not latest"),
            "unknown token".into(),
        ));
    }
    if s.faults.token_expired.load(Ordering::SeqCst) || crate::now_ms() >= expires_at {
        return Err((wx_error(42001, "access_token expired"), "expired token".into()));
    }
    f(s)
}

fn stable_token(s: &Shared, body: &[u8]) -> Answer {
    let req: Value =
        serde_json::from_slice(body).map_err(|_| (wx_error(47001, "data format error"), "not JSON".into()))?;
    if req["grant_type"] != "client_credential" {
        return Err((wx_error(40002, "invalid grant_type"), "grant_type".into()));
    }
    if req["appid"] != s.cfg.app_key.as_str() {
        return Err((wx_error(40013, "invalid appid"), "appid".into()));
    }
    if req["secret"] != s.cfg.app_secret.as_str() {
        return Err((wx_error(40125, "invalid appsecret"), "appsecret".into()));
    }
    let now = crate::now_ms();
    let mut access = lock(&s.access);
    let stale = s.faults.token_expired.load(Ordering::SeqCst) || now >= access.1;
    if req["force_refresh"] == true || stale {
        access.2 += 1;
        access.0 = format!("{}-r{}", s.cfg.access_token, access.2);
        access.1 = now + TOKEN_LIFE_S * 1000;
        s.faults.token_expired.store(false, Ordering::SeqCst);
    }
    s.journal.refreshes.fetch_add(1, Ordering::SeqCst);
    Ok(json!({"access_token": access.0, "expires_in": (access.1 - now) / 1000}))
}

fn sendmsg(s: &Shared, body: &[u8]) -> Answer {
    if body.is_empty() {
        return Err((wx_error(44002, "empty post data"), "empty body".into()));
    }
    let req: Value =
        serde_json::from_slice(body).map_err(|_| (wx_error(47001, "data format error"), "not JSON".into()))?;
    let open_id = req["open_id"].as_str().unwrap_or("");
    if open_id.is_empty() {
        return Err((wx_error(40003, "invalid openid"), "no open_id".into()));
    }
    let msg_type = req["msg_type"].as_str().unwrap_or("");
    let part = &req[msg_type];
    let (field, content) = match msg_type {
        "text" => ("content", part["content"].as_str()),
        "image" | "video" | "file" => ("cos_url", part["cos_url"].as_str()),
        "product_share" => ("product_id", part["product_id"].as_str()),
        "order_share" => ("order_id", part["order_id"].as_str()),
        _ => return Err((wx_error(47001, "data format error"), format!("msg_type {msg_type:?}"))),
    };
    let Some(content) = content.filter(|c| !c.is_empty()) else {
        return Err((wx_error(47001, "data format error"), format!("{msg_type}.{field} missing")));
    };
    // Media goes out only from WeChat's own storage (a cos_url from cosupload or a buyer's
    // message); any other link is refused (modeled: the docs name no code, 47001 is the
    // parameter-format error).
    if field == "cos_url" && !content.contains("/commkf/downloadmedia") {
        return Err((wx_error(47001, "data format error"), format!("{msg_type}.cos_url {content:?} is not a cos_url")));
    }
    if Faults::take(&s.faults.rate_limit_sends) {
        return Err((wx_error(45009, "reach max api daily quota limit"), "rate_limit_sends fault".into()));
    }
    let request_id = req["request_id"].as_str().unwrap_or("").to_owned();
    let msg_id = {
        let mut sent = lock(&s.sent);
        let fresh = format!("{}", 3_893_720_449_229_537_280u64 + s.next_seq());
        if request_id.is_empty() { fresh } else { sent.entry(request_id.clone()).or_insert(fresh).clone() }
    };
    s.journal.accept(ReceivedSend {
        method: "sendmsg".into(),
        buyer_id: open_id.to_owned(),
        msg_type: msg_type.to_owned(),
        content: content.to_owned(),
        client_msg_id: request_id,
        conversation: None,
        extra: BTreeMap::from([("msg_id".to_owned(), msg_id.clone())]),
        at_ms: crate::now_ms(),
        duplicate: false,
    });
    Ok(json!({"msg_id": msg_id, "errcode": 0, "errmsg": "ok"}))
}

fn cosupload(s: &Shared, body: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(body);
    for field in ["name=\"file\"", "name=\"open_id\"", "name=\"msg_type\""] {
        if !text.contains(field) {
            return Err((wx_error(47001, "data format error"), format!("multipart without {field}")));
        }
    }
    lock(&s.uploaded_files).push(body.to_vec());
    let n = s.uploads.fetch_add(1, Ordering::SeqCst) + 1;
    Ok(json!({
        "cos_url": format!("http://{}/shop/commkf/downloadmedia?encrypted_param=sim{n}", s.addr),
        "errcode": 0,
        "errmsg": "ok",
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This crypto is written apart from the connector's; it must reproduce the guide's
    /// published example (message-push.html, 消息解密方式为安全模式) on its own.
    #[test]
    fn the_published_example_opens_and_reseals() {
        let encrypt = "+qdx1OKCy+5JPCBFWw70tm0fJGb2Jmeia4FCB7kao+/Q5c/ohsOzQHi8khUOb05JCpj0JB4RvQMkUyus8TPxLKJGQqcvZqzDpVzazhZv6JsXUnnR8XGT740XgXZUXQ7vJVnAG+tE8NUd4yFyjPy7GgiaviNrlCTj+l5kdfMuFUPpRSrfMZuMcp3Fn2Pede2IuQrKEYwKSqFIZoNqJ4M8EajAsjLY2km32IIjdf8YL/P50F7mStwntrA2cPDrM1kb6mOcfBgRtWygb3VIYnSeOBrebufAlr7F9mFUPAJGj04=";
        let key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert_eq!(
            signature(&["AAAAA", "1714112445", "415670741", encrypt]),
            "046e02f8204d34f8ba5fa3b1db94908f3df2e9b3"
        );
        let (msg, appid) = open(key, encrypt).unwrap();
        assert_eq!(appid, "wxba5fad812f8e6fb9");
        assert_eq!(seal(key, *b"a8eedb185eb2fecf", &msg, &appid), encrypt);
        assert_eq!(
            seal(key, *b"707722b803182950", br#"{"demo_resp":"good luck"}"#, "wxba5fad812f8e6fb9"),
            "ELGduP2YcVatjqIS+eZbp80MNLoAUWvzzyJxgGzxZO/5sAvd070Bs6qrLARC9nVHm48Y4hyRbtzve1L32tmxSQ=="
        );
        assert_eq!(signature(&["AAAAA", "1714036504", "1514711492"]), "f464b24fc39322e44b38aa78f5edd27bd1441696");
    }
}
