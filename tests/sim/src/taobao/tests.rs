//! Drives the simulator with a minimal hand-written TOP client and TMC client.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value as Json;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use super::frame::{self, Frame, Value};
use super::sign::{self, SignMethod};
use super::*;
use crate::{BuyerChat, Faults, SimConfig, TradeEvent, TradeKind, now_ms};

async fn start() -> (TaobaoSim, Arc<Faults>) {
    let faults = Arc::new(Faults::default());
    let sim = TaobaoSim::start(SimConfig::sample("汇流旗舰店"), faults.clone()).await.unwrap();
    (sim, faults)
}

// ---------------------------------------------------------------- TOP client

struct Call {
    params: Vec<(String, String)>,
    sign_method: &'static str,
    secret: String,
    sign_override: Option<String>,
}

impl Call {
    fn new(sim: &TaobaoSim, method: &str) -> Call {
        let set = sim.shop_settings();
        let params = vec![
            ("method".to_owned(), method.to_owned()),
            ("app_key".to_owned(), set["app_key"].clone()),
            ("session".to_owned(), set["access_token"].clone()),
            ("timestamp".to_owned(), sign::beijing_string(now_ms())),
            ("format".to_owned(), "json".to_owned()),
            ("v".to_owned(), "2.0".to_owned()),
        ];
        Call { params, sign_method: "hmac-sha256", secret: set["app_secret"].clone(), sign_override: None }
    }

    fn send(sim: &TaobaoSim, client_msg_id: &str) -> Call {
        Call::new(sim, SEND_METHOD)
            .set("buyer_open_uid", "AAE_buyer_1")
            .set("sub_nick", "汇流旗舰店:客服1")
            .set("msg_type", "text")
            .set("content", "您好，马上为您查询 & 处理+1")
            .set("client_msg_id", client_msg_id)
    }

    fn set(mut self, k: &str, v: &str) -> Call {
        self.params.retain(|(name, _)| name != k);
        self.params.push((k.to_owned(), v.to_owned()));
        self
    }

    fn signed(&self) -> Vec<(String, String)> {
        let mut all = self.params.clone();
        all.push(("sign_method".to_owned(), self.sign_method.to_owned()));
        let method = SignMethod::parse(Some(self.sign_method)).unwrap();
        let sign = sign::top_sign(all.iter().map(|(k, v)| (k.as_str(), v.as_str())), &self.secret, method);
        all.push(("sign".to_owned(), self.sign_override.clone().unwrap_or(sign)));
        all
    }

    async fn post(&self, sim: &TaobaoSim) -> Json {
        let body = encode(&self.signed());
        post_form(&format!("http://{}/router/rest", sim.addr()), body).await.1
    }
}

fn encode(params: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish()
}

async fn post_form(url: &str, body: String) -> (u16, Json) {
    let resp = crate::http_client()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded;charset=utf-8")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")))
}

fn error_code(body: &Json) -> Option<i64> {
    body["error_response"]["code"].as_i64()
}

#[tokio::test]
async fn top_send_is_verified_recorded_and_deduplicated() {
    let (sim, _) = start().await;
    let mut msg_ids = Vec::new();
    for method in ["md5", "hmac", "hmac-sha256"] {
        let mut call = Call::send(&sim, &format!("c-{method}"));
        call.sign_method = method;
        let body = call.post(&sim).await;
        let result = &body["taobao_qianniu_cloudkefu_message_send_response"]["result"];
        assert_eq!(result["success"], true, "{method}: {body}");
        msg_ids.push(result["msg_id"].as_str().unwrap().to_owned());
    }
    let again = Call::send(&sim, "c-md5").post(&sim).await;
    assert_eq!(
        again["taobao_qianniu_cloudkefu_message_send_response"]["result"]["msg_id"].as_str(),
        Some(&*msg_ids[0])
    );
    assert_ne!(msg_ids[0], msg_ids[1]);

    let got = sim.journal().received();
    assert_eq!(got.len(), 4);
    assert_eq!(got[0].method, SEND_METHOD);
    assert_eq!(got[0].buyer_id, "AAE_buyer_1");
    assert_eq!(got[0].msg_type, "text");
    assert_eq!(got[0].content, "您好，马上为您查询 & 处理+1");
    assert_eq!(got[0].extra.get("sub_nick").map(String::as_str), Some("汇流旗舰店:客服1"));
    assert_eq!(got[0].extra.len(), 1, "system parameters are not business parameters");
    assert!(!got[0].duplicate && !got[2].duplicate);
    assert!(got[3].duplicate);
    assert!(sim.journal().rejected().is_empty(), "{:?}", sim.journal().rejected());

    // Parameters in the query string are accepted and signed too.
    let signed = Call::send(&sim, "c-query").signed();
    let (query, body): (Vec<_>, Vec<_>) = signed.into_iter().partition(|(k, _)| k == "method" || k == "sign");
    let url = format!("http://{}/router/rest?{}", sim.addr(), encode(&query));
    let (status, answer) = post_form(&url, encode(&body)).await;
    assert_eq!(
        (status, answer["taobao_qianniu_cloudkefu_message_send_response"]["result"]["success"].clone()),
        (200, Json::Bool(true))
    );
}

#[tokio::test]
async fn top_refuses_bad_requests_with_error_response() {
    let (sim, _) = start().await;
    let mut bad_sign = Call::send(&sim, "x1");
    bad_sign.sign_override = Some("66987CB115214E59E6EC978214934FB8".into());
    let mut lower_case = Call::send(&sim, "x2");
    lower_case.sign_override = Some(lower_case.signed().last().unwrap().1.to_lowercase());
    let mut wrong_secret = Call::send(&sim, "x3");
    wrong_secret.secret = "helloworld".into();
    let stale = sign::beijing_string(now_ms() - 11 * 60 * 1000);
    let cases = [
        (bad_sign, 25),
        (lower_case, 25),
        (wrong_secret, 25),
        (Call::send(&sim, "x4").set("app_key", "12345678"), 29),
        (Call::send(&sim, "x5").set("timestamp", &stale), 31),
        (Call::send(&sim, "x6").set("timestamp", "1451620800000"), 31),
        (Call::send(&sim, "x7").set("session", "stolen"), 27),
        (Call::send(&sim, "x8").set("method", "taobao.item.seller.get"), 22),
        (Call::send(&sim, "x9").set("client_msg_id", ""), 40),
        (Call::send(&sim, "x10").set("msg_type", "video"), 41),
        (Call::send(&sim, "x11").set("format", "xml"), 23),
    ];
    let n = cases.len();
    for (call, code) in cases {
        let body = call.post(&sim).await;
        assert_eq!(error_code(&body), Some(code), "{body}");
        let e = &body["error_response"];
        assert!(e["msg"].is_string() && e["sub_code"].is_string() && e["request_id"].is_string(), "{body}");
    }
    let rejected = sim.journal().rejected();
    assert_eq!(rejected.len(), n, "{rejected:?}");
    assert!(rejected[0].contains("invalid signature"), "{}", rejected[0]);
    assert!(sim.journal().received().is_empty());
}

#[tokio::test]
async fn top_forward_is_recorded() {
    let (sim, _) = start().await;
    let call = Call::new(&sim, FORWARD_METHOD)
        .set("buyer_nick", "cntaobao买家1")
        .set("from_ww_nick", "cntaobao汇流旗舰店:客服1")
        .set("to_ww_nick", "cntaobao汇流旗舰店:售后");
    let body = call.post(&sim).await;
    assert_eq!(body["qianniu_cloudkefu_forward_response"]["result"]["success"], true, "{body}");
    let got = sim.journal().received();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].method.as_str(), got[0].buyer_id.as_str()), (FORWARD_METHOD, "cntaobao买家1"));
    assert_eq!(got[0].extra["to_ww_nick"], "cntaobao汇流旗舰店:售后");
    let bare = call.set("to_ww_nick", "汇流旗舰店:售后").post(&sim).await;
    assert_eq!(error_code(&bare), Some(41));
}

#[tokio::test]
async fn top_faults_rate_limit_api_down_and_slow() {
    let (sim, faults) = start().await;
    faults.rate_limit_sends.store(1, Ordering::SeqCst);
    let limited = Call::send(&sim, "r1").post(&sim).await;
    assert_eq!(error_code(&limited), Some(7));
    assert_eq!(limited["error_response"]["sub_msg"], "This ban will last 1 more seconds");
    assert!(Call::send(&sim, "r1").post(&sim).await["error_response"].is_null());

    faults.api_down.store(true, Ordering::SeqCst);
    let down = Call::send(&sim, "r2").post(&sim).await;
    assert_eq!(error_code(&down), Some(15));
    assert!(down["error_response"]["sub_code"].as_str().unwrap().starts_with("isp."));
    let (status, _) = post_form(&format!("http://{}/oauth/token", sim.addr()), "grant_type=refresh_token".into()).await;
    assert_eq!(status, 503);
    faults.api_down.store(false, Ordering::SeqCst);

    faults.slow_api_ms.store(150, Ordering::SeqCst);
    let t0 = Instant::now();
    assert!(Call::send(&sim, "r3").post(&sim).await["error_response"].is_null());
    assert!(t0.elapsed() >= Duration::from_millis(150));
    assert_eq!(sim.journal().received().len(), 2);
}

#[tokio::test]
async fn token_expiry_and_refresh() {
    let (sim, faults) = start().await;
    let cfg = SimConfig::sample("汇流旗舰店");
    faults.token_expired.store(true, Ordering::SeqCst);
    let expired = Call::send(&sim, "t1").post(&sim).await;
    assert_eq!(error_code(&expired), Some(27));

    let url = format!("http://{}/oauth/token", sim.addr());
    let form = |secret: &str, refresh: &str| {
        encode(&[
            ("grant_type".into(), "refresh_token".into()),
            ("client_id".into(), cfg.app_key.clone()),
            ("client_secret".into(), secret.into()),
            ("refresh_token".into(), refresh.into()),
        ])
    };
    let (status, body) = post_form(&url, form("wrong", &cfg.refresh_token)).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
    let (status, body) = post_form(&url, form(&cfg.app_secret, "guessed")).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));

    let (status, grant) = post_form(&url, form(&cfg.app_secret, &cfg.refresh_token)).await;
    assert_eq!(status, 200, "{grant}");
    assert_eq!(grant["access_token"], format!("{}-r1", cfg.access_token));
    assert_eq!(grant["refresh_token"], format!("{}-r1", cfg.refresh_token));
    assert_eq!(grant["expires_in"], TOKEN_LIFETIME_S);
    assert!(grant["re_expires_in"].is_i64() && grant["taobao_user_id"].is_string());
    assert_eq!(grant["taobao_user_nick"], "%E6%B1%87%E6%B5%81%E6%97%97%E8%88%B0%E5%BA%97");
    assert!(!faults.token_expired.load(Ordering::SeqCst));
    assert_eq!(sim.journal().refreshes.load(Ordering::SeqCst), 1);
    assert_eq!(sim.shop_settings()["access_token"], grant["access_token"].as_str().unwrap());

    // The new token works, the old one is expired, and so is the old refresh token.
    assert!(Call::send(&sim, "t2").post(&sim).await["error_response"].is_null());
    let old = Call::send(&sim, "t3").set("session", &cfg.access_token).post(&sim).await;
    assert_eq!(error_code(&old), Some(27));
    let (status, _) = post_form(&url, form(&cfg.app_secret, &cfg.refresh_token)).await;
    assert_eq!(status, 400);

    sim.set_token_expires_at(now_ms() - 1);
    assert_eq!(error_code(&Call::send(&sim, "t4").post(&sim).await), Some(27));
}

// ---------------------------------------------------------------- TMC client

type Ws = WebSocketStream<TcpStream>;

fn connect_frame(app_key: &str, secret: &str, ts: i64) -> Frame {
    let ts = ts.to_string();
    Frame::new(frame::CONNECT)
        .custom("app_key", Value::Str(app_key.into()))
        .custom("group_name", Value::Str("default".into()))
        .custom("timestamp", Value::Str(ts.clone()))
        .custom("sign", Value::Str(sign::tmc_connect_sign(secret, app_key, "default", &ts)))
        .custom("sdk", Value::Str("hand-written-test".into()))
        .custom("intranet_ip", Value::Str("127.0.0.1".into()))
}

async fn ws_open(sim: &TaobaoSim) -> Ws {
    let url = &sim.shop_settings()["tmc_url"];
    let tcp = TcpStream::connect(sim.addr()).await.unwrap();
    tokio_tungstenite::client_async(url.as_str(), tcp).await.unwrap().0
}

async fn send(ws: &mut Ws, f: Frame) {
    ws.send(Message::Binary(f.encode().into())).await.unwrap();
}

/// The next frame, or None when the socket closed (or nothing came within 2 s).
async fn recv(ws: &mut Ws) -> Option<Frame> {
    loop {
        match tokio::time::timeout(Duration::from_secs(2), ws.next()).await.ok()?? {
            Ok(Message::Binary(b)) => return Some(Frame::decode(&b).unwrap()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

async fn recv_quiet(ws: &mut Ws, for_ms: u64) -> Option<Frame> {
    match tokio::time::timeout(Duration::from_millis(for_ms), ws.next()).await {
        Ok(Some(Ok(Message::Binary(b)))) => Some(Frame::decode(&b).unwrap()),
        _ => None,
    }
}

/// Connects and completes the CONNECT handshake; returns the socket and the Token.
async fn tmc_session(sim: &TaobaoSim) -> (Ws, String) {
    let set = sim.shop_settings();
    let mut ws = ws_open(sim).await;
    send(&mut ws, connect_frame(&set["app_key"], &set["app_secret"], now_ms())).await;
    let ack = recv(&mut ws).await.unwrap();
    assert_eq!((ack.message_type, ack.status_code()), (frame::CONNECTACK, Some(0)));
    let token = ack.token().unwrap().to_owned();
    (ws, token)
}

fn control(token: &str, kind: i64) -> Frame {
    Frame::new(frame::SEND).header(frame::Header::Token(token.into())).custom("__kind", Value::I16(kind as i16))
}

async fn pull(ws: &mut Ws, token: &str) {
    send(ws, control(token, frame::KIND_PULL)).await;
}

async fn confirm(ws: &mut Ws, token: &str, id: i64) {
    send(ws, control(token, frame::KIND_CONFIRM).custom("id", Value::I64(id))).await;
}

fn data_id(f: &Frame) -> i64 {
    assert_eq!((f.message_type, f.kind()), (frame::SEND, Some(frame::KIND_DATA)), "{f:?}");
    f.get("id").and_then(|v| if let Value::I64(n) = v { Some(*n) } else { None }).expect("id as int64")
}

/// `refuse_connects`: the next correctly signed CONNECT is refused with 401 and the configured
/// phrase; the one after is accepted.
#[tokio::test]
async fn tmc_refuse_connects_fault() {
    let (sim, faults) = start().await;
    let set = sim.shop_settings();
    *faults.refuse_connect_phrase.lock().unwrap() = "too many connections".into();
    faults.refuse_connects.store(1, Ordering::SeqCst);
    let mut ws = ws_open(&sim).await;
    send(&mut ws, connect_frame(&set["app_key"], &set["app_secret"], now_ms())).await;
    let ack = recv(&mut ws).await.unwrap();
    assert_eq!(
        (ack.message_type, ack.status_code(), ack.status_phrase()),
        (frame::CONNECTACK, Some(401), Some("too many connections"))
    );
    assert!(recv(&mut ws).await.is_none(), "socket closes after a refusal");
    let (_ws, token) = tmc_session(&sim).await;
    assert!(!token.is_empty());
}

#[tokio::test]
async fn tmc_connect_is_verified() {
    let (sim, faults) = start().await;
    let set = sim.shop_settings();
    let refusals = [
        (connect_frame(&set["app_key"], "not-the-secret", now_ms()), "invalid sign"),
        (connect_frame(&set["app_key"], &set["app_secret"], now_ms() - 11 * 60 * 1000), "invalid timestamp"),
        (connect_frame("12345678", &set["app_secret"], now_ms()), "invalid app_key"),
    ];
    for (f, phrase) in refusals {
        let mut ws = ws_open(&sim).await;
        send(&mut ws, f).await;
        let ack = recv(&mut ws).await.unwrap();
        assert_eq!(
            (ack.message_type, ack.status_code(), ack.status_phrase()),
            (frame::CONNECTACK, Some(401), Some(phrase))
        );
        assert!(ack.token().is_none());
        assert!(recv(&mut ws).await.is_none(), "socket closes after a refusal");
    }
    assert_eq!(sim.journal().rejected().len(), 3);

    // bad_signature_pushes: the next CONNECT is refused although correctly signed.
    faults.bad_signature_pushes.store(1, Ordering::SeqCst);
    let mut ws = ws_open(&sim).await;
    send(&mut ws, connect_frame(&set["app_key"], &set["app_secret"], now_ms())).await;
    assert_eq!(recv(&mut ws).await.unwrap().status_phrase(), Some("invalid sign"));
    let (_ws, token) = tmc_session(&sim).await;
    assert!(!token.is_empty());
    assert_eq!(sim.tmc_sessions(), 1);
    assert_eq!(sim.journal().connections.load(Ordering::SeqCst), 5);

    // A SEND with a wrong Token closes the session.
    let (mut ws, _) = tmc_session(&sim).await;
    pull(&mut ws, "forged").await;
    assert!(recv(&mut ws).await.is_none());
    assert!(sim.journal().rejected().last().unwrap().contains("Token"));
}

#[tokio::test]
async fn tmc_chat_is_pushed_on_pull_and_confirmed() {
    let (sim, _) = start().await;
    sim.set_active_push(false);
    let chat = BuyerChat {
        ref_id: Some("9007199254740993123".into()),
        msg_type: "product".into(),
        ..BuyerChat::text("m-1", "AAE_b1", "这个有货吗", 1_451_620_800_000)
    };
    let delivering = {
        let sim = sim.clone();
        tokio::spawn(async move { sim.deliver_chat(&chat).await })
    };
    let (mut ws, token) = tmc_session(&sim).await;
    assert!(recv_quiet(&mut ws, 100).await.is_none(), "nothing is pushed before the pull");
    pull(&mut ws, &token).await;
    let f = recv(&mut ws).await.unwrap();
    let id = data_id(&f);
    assert!(id > 1 << 53);
    assert_eq!(f.get_str("topic"), Some(CHAT_TOPIC));
    assert_eq!(f.get("outtime"), Some(&Value::Date(1_451_620_800_000)));
    assert!(matches!(f.get("userid"), Some(Value::I64(_))) && matches!(f.get("dataid"), Some(Value::I64(_))));
    assert!(f.get_str("publisher").is_some());
    let content: Json = serde_json::from_str(f.get_str("content").unwrap()).unwrap();
    assert_eq!(content["msg_id"], "m-1");
    assert_eq!(content["buyer_open_uid"], "AAE_b1");
    assert_eq!(content["buyer_nick"], "买家AAE_b1");
    assert_eq!(content["seller_nick"], "汇流旗舰店");
    assert_eq!(content["sub_nick"], "汇流旗舰店:客服1");
    assert_eq!(content["msg_type"], "item");
    assert_eq!(content["content"], "这个有货吗");
    assert_eq!(content["item_id"].as_u64(), Some(9_007_199_254_740_993_123));
    assert!(content.get("tid").is_none());
    assert_eq!(content["send_time"], "2016-01-01 12:00:00");

    confirm(&mut ws, &token, id).await;
    let d = delivering.await.unwrap();
    assert!(d.acked, "{d:?}");
    assert_eq!(sim.confirmed_ids(), vec![id]);
    assert_eq!(sim.redeliveries(), 0);
    assert!(sim.journal().rejected().is_empty(), "{:?}", sim.journal().rejected());
}

#[tokio::test]
async fn tmc_trade_and_refund_content() {
    let (sim, _) = start().await;
    let (mut ws, token) = tmc_session(&sim).await;
    let refund = TradeEvent {
        event_id: "e-1".into(),
        kind: TradeKind::RefundRequested,
        buyer_id: "AAE_b2".into(),
        order_id: "4011223344556677889".into(),
        refund_id: Some("12345".into()),
        amount_fen: 9900,
        at_ms: now_ms(),
    };
    let paid = TradeEvent { kind: TradeKind::OrderPaid, refund_id: None, amount_fen: 5, ..refund.clone() };
    let ids = [sim.enqueue_trade(&refund).await, sim.enqueue_trade(&paid).await];
    // Pushed at once to the connected client (active push).
    let (a, b) = (recv(&mut ws).await.unwrap(), recv(&mut ws).await.unwrap());
    assert_eq!([data_id(&a), data_id(&b)], ids);
    assert_eq!(a.get_str("topic"), Some("taobao_refund_RefundCreated"));
    assert_eq!(b.get_str("topic"), Some("taobao_trade_TradeBuyerPay"));
    let ca: Json = serde_json::from_str(a.get_str("content").unwrap()).unwrap();
    assert_eq!(ca["tid"].as_u64(), Some(4_011_223_344_556_677_889));
    assert_eq!((ca["payment"].as_str(), ca["refund_fee"].as_str()), (Some("99.00"), Some("99.00")));
    assert_eq!((ca["refund_id"].as_u64(), ca["buyer_open_uid"].as_str()), (Some(12345), Some("AAE_b2")));
    assert_eq!(ca["buyer_nick"], "买家AAE_b2");
    let cb: Json = serde_json::from_str(b.get_str("content").unwrap()).unwrap();
    assert_eq!(cb["payment"], "0.05");
    assert!(cb.get("refund_id").is_none());
    for id in ids {
        confirm(&mut ws, &token, id).await;
        assert!(sim.wait_confirmed(id, Duration::from_secs(2)).await);
    }
    let _ = pull(&mut ws, &token).await;
    assert!(recv_quiet(&mut ws, 100).await.is_none(), "confirmed messages are not redelivered");
}

#[tokio::test]
async fn tmc_redelivery_failed_timeout_and_duplicates() {
    let (sim, faults) = start().await;
    sim.set_redeliver_after(Duration::from_millis(150));
    let (mut ws, token) = tmc_session(&sim).await;

    // SENDACK Failed → redelivered at once.
    let id = sim.enqueue_chat(&BuyerChat::text("m-f", "b", "hi", now_ms())).await;
    assert_eq!(data_id(&recv(&mut ws).await.unwrap()), id);
    let failed = Frame::new(frame::SENDACK)
        .custom("__kind", Value::I16(frame::KIND_FAILED as i16))
        .custom("id", Value::I64(id))
        .custom("msg", Value::Str("store busy".into()));
    send(&mut ws, failed).await;
    assert_eq!(data_id(&recv(&mut ws).await.unwrap()), id);
    assert_eq!(sim.redeliveries(), 1);

    // Unconfirmed → not redelivered before the timeout, redelivered by the next pull after it.
    pull(&mut ws, &token).await;
    assert!(recv_quiet(&mut ws, 50).await.is_none());
    tokio::time::sleep(Duration::from_millis(150)).await;
    pull(&mut ws, &token).await;
    assert_eq!(data_id(&recv(&mut ws).await.unwrap()), id);
    assert_eq!(sim.redeliveries(), 2);
    confirm(&mut ws, &token, id).await;
    assert!(sim.wait_confirmed(id, Duration::from_secs(2)).await);

    // duplicate_deliveries → the same frame twice.
    faults.duplicate_deliveries.store(1, Ordering::SeqCst);
    let dup = sim.enqueue_chat(&BuyerChat::text("m-d", "b", "again", now_ms())).await;
    let (x, y) = (recv(&mut ws).await.unwrap(), recv(&mut ws).await.unwrap());
    assert_eq!((data_id(&x), data_id(&y)), (dup, dup));
    assert_eq!(x, y);
    assert_eq!(sim.redeliveries(), 3);
    confirm(&mut ws, &token, dup).await;
    confirm(&mut ws, &token, dup).await;
    assert!(sim.wait_confirmed(dup, Duration::from_secs(2)).await);
    assert_eq!(sim.confirmed_ids(), vec![id, dup]);

    // Confirming an id never sent is recorded; a malformed frame closes the connection.
    confirm(&mut ws, &token, 42).await;
    ws.send(Message::Binary(vec![2u8, 2, 9].into())).await.unwrap();
    assert!(recv(&mut ws).await.is_none());
    let rejected = sim.journal().rejected();
    assert!(rejected.iter().any(|r| r.contains("unknown id 42")), "{rejected:?}");
    assert!(rejected.iter().any(|r| r.contains("malformed")), "{rejected:?}");
}

#[tokio::test]
async fn tmc_drop_connections_then_redeliver_after_reconnect() {
    let (sim, faults) = start().await;
    faults.drop_connections.store(1, Ordering::SeqCst);
    let (mut ws, _) = tmc_session(&sim).await;
    let delivering = {
        let sim = sim.clone();
        tokio::spawn(async move { sim.deliver_chat(&BuyerChat::text("m-x", "b", "在吗", now_ms())).await })
    };
    let first = recv(&mut ws).await.unwrap();
    let id = data_id(&first);
    assert!(recv(&mut ws).await.is_none(), "dropped right after the message");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(sim.tmc_sessions(), 0);

    // Reconnect: the unconfirmed message comes back on the first pull.
    let (mut ws, token) = tmc_session(&sim).await;
    pull(&mut ws, &token).await;
    assert_eq!(data_id(&recv(&mut ws).await.unwrap()), id);
    confirm(&mut ws, &token, id).await;
    assert!(delivering.await.unwrap().acked);
    assert_eq!(sim.redeliveries(), 1);
    assert_eq!(sim.journal().connections.load(Ordering::SeqCst), 2);

    // A raw (undecodable) frame can be injected for dead-letter tests.
    assert!(sim.push_raw_frame(b"not a frame".to_vec()));
    match tokio::time::timeout(Duration::from_secs(2), ws.next()).await.unwrap().unwrap().unwrap() {
        Message::Binary(b) => assert_eq!(&b[..], b"not a frame"),
        other => panic!("{other:?}"),
    }
    let raw = sim.enqueue_raw(CHAT_TOPIC, "{not json").await;
    let f = recv(&mut ws).await.unwrap();
    assert_eq!((data_id(&f), f.get_str("content")), (raw, Some("{not json")));
}

#[tokio::test]
async fn shop_settings_point_at_the_simulator() {
    let (sim, _) = start().await;
    let set = sim.shop_settings();
    let addr = sim.addr();
    for key in ["app_key", "app_secret", "access_token", "refresh_token", "token_expires_at", "tmc_group"] {
        assert!(!set[key].is_empty(), "{key}");
    }
    assert_eq!(set["api_url"], format!("http://{addr}/router/rest"));
    assert_eq!(set["oauth_token_url"], format!("http://{addr}/oauth/token"));
    assert_eq!(set["tmc_url"], format!("ws://{addr}/tmc"));
    assert!(set["token_expires_at"].parse::<i64>().unwrap() > now_ms());
    // Other paths are plain HTTP 404s, not WebSockets.
    let resp = reqwest::get(format!("http://{addr}/nope")).await.unwrap();
    assert_eq!(resp.status().as_u16(), 404);
}
