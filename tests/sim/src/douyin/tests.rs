//! The simulator driven by a minimal hand-written client and a minimal hand-written gateway
//! (neither shares code with `plugins/douyin`).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use bytes::Bytes;
use md5::{Digest, Md5};
use serde_json::{Value, json};

use super::sign::{self, SignMethod};
use super::*;
use crate::{BuyerChat, Faults, SimConfig, TradeEvent, TradeKind};

const SHOP: &str = "4463798";

async fn sim() -> (DouyinSim, Arc<Faults>) {
    let faults = Arc::new(Faults::default());
    let sim = DouyinSim::start(SimConfig::sample(SHOP), faults.clone()).await.expect("start");
    (sim, faults)
}

fn now_s() -> i64 {
    crate::now_ms() / 1000
}

/// A minimal OpenAPI client.
struct Client {
    http: reqwest::Client,
    base: String,
    app_key: String,
    secret: String,
}

impl Client {
    fn new(sim: &DouyinSim) -> Client {
        let s = sim.shop_settings();
        Client {
            http: crate::http_client(),
            base: s["api_url"].clone(),
            app_key: s["app_key"].clone(),
            secret: s["app_secret"].clone(),
        }
    }

    /// A signed call with Beijing-time timestamp and hmac-sha256.
    async fn call(&self, method: &str, param_json: &str, token: Option<&str>) -> Value {
        let ts = sign::beijing_timestamp(now_s());
        self.call_with(method, param_json, token, SignMethod::HmacSha256, &ts, None).await
    }

    /// Full control: `sign_override` replaces the computed sign.
    async fn call_with(
        &self,
        method: &str,
        param_json: &str,
        token: Option<&str>,
        sm: SignMethod,
        ts: &str,
        sign_override: Option<&str>,
    ) -> Value {
        let sign = sign_override
            .map(str::to_owned)
            .unwrap_or_else(|| sign::openapi_sign(sm, &self.secret, &self.app_key, method, param_json, ts));
        let mut params = vec![
            ("app_key", self.app_key.clone()),
            ("method", method.to_owned()),
            ("timestamp", ts.to_owned()),
            ("v", "2".to_owned()),
            ("sign_method", sm.as_str().to_owned()),
            ("sign", sign),
        ];
        if let Some(t) = token {
            params.push(("access_token", t.to_owned()));
        }
        // %20 for spaces, like the connector documents.
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| {
                format!("{k}={}", percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC))
            })
            .collect();
        let url = format!("{}/{}?{}", self.base, method.replace('.', "/"), query.join("&"));
        self.post(&url, param_json).await
    }

    async fn post(&self, url: &str, body: &str) -> Value {
        let resp = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), 200);
        let text = resp.text().await.unwrap();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON: {text}: {e}"))
    }
}

fn send_params(buyer: &str, content: &str, client_msg_id: &str) -> String {
    sign::canonical_json(&json!({
        "conversation_id": format!("conv-{buyer}"),
        "buyer_open_id": buyer,
        "msg_type": "text",
        "content": content,
        "client_msg_id": client_msg_id,
    }))
}

fn assert_error(v: &Value, code: i64, sub_code: &str) {
    assert_eq!(v["code"], json!(code), "{v}");
    assert!(v["sub_code"].as_str().unwrap().starts_with(sub_code), "{v}");
    for k in ["msg", "sub_msg", "log_id"] {
        assert!(v[k].as_str().is_some_and(|s| !s.is_empty()), "{k} in {v}");
    }
    assert!(v["data"].is_object(), "{v}");
}

#[tokio::test]
async fn signed_send_is_accepted_recorded_and_deduped() {
    let (sim, _f) = sim().await;
    let c = Client::new(&sim);
    let token = sim.current_access_token();
    let p = send_params("buyer-1", "您好，已发货 <b>&", "c-1");
    let v = c.call("im.sendMsg", &p, Some(&token)).await;
    assert_eq!(v["code"], 10000, "{v}");
    assert_eq!(v["msg"], "success");
    assert_eq!(v["sub_code"], "");
    let msg_id = v["data"]["msg_id"].as_str().unwrap().to_owned();
    assert!(!msg_id.is_empty());

    // Same client_msg_id again, now md5 + Unix seconds: deduped, same msg_id.
    let v2 = c.call_with("im.sendMsg", &p, Some(&token), SignMethod::Md5, &now_s().to_string(), None).await;
    assert_eq!(v2["code"], 10000, "{v2}");
    assert_eq!(v2["data"]["msg_id"].as_str().unwrap(), msg_id);

    let got = sim.journal().received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].method, "im.sendMsg");
    assert_eq!(got[0].buyer_id, "buyer-1");
    assert_eq!(got[0].msg_type, "text");
    assert_eq!(got[0].content, "您好，已发货 <b>&");
    assert_eq!(got[0].client_msg_id, "c-1");
    assert_eq!(got[0].conversation.as_deref(), Some("conv-buyer-1"));
    assert!(!got[0].duplicate);
    assert!(got[1].duplicate);
    assert!(sim.journal().rejected().is_empty());

    // Without conversation_id, with an extra parameter.
    let p = sign::canonical_json(&json!({
        "buyer_open_id": "buyer-2", "msg_type": "product", "content": "3556245366718399530",
        "client_msg_id": "c-2", "source": 1,
    }));
    let v = c.call("im.sendMsg", &p, Some(&token)).await;
    assert_eq!(v["code"], 10000, "{v}");
    assert_ne!(v["data"]["msg_id"].as_str().unwrap(), msg_id);
    let last = sim.journal().received().pop().unwrap();
    assert_eq!(last.conversation, None);
    assert_eq!(last.extra.get("source").map(String::as_str), Some("1"));
}

#[tokio::test]
async fn bad_requests_get_douyin_error_bodies() {
    let (sim, _f) = sim().await;
    let c = Client::new(&sim);
    let token = sim.current_access_token();
    let p = send_params("buyer-1", "hi", "c-1");
    let ts = sign::beijing_timestamp(now_s());
    let hs = SignMethod::HmacSha256;

    let v = c.call_with("im.sendMsg", &p, Some(&token), hs, &ts, Some(&"0".repeat(64))).await;
    assert_error(&v, 40003, "isv.signature-invalid");
    // Signed with the wrong secret.
    let wrong = sign::openapi_sign(hs, "not-the-secret", &c.app_key, "im.sendMsg", &p, &ts);
    let v = c.call_with("im.sendMsg", &p, Some(&token), hs, &ts, Some(&wrong)).await;
    assert_error(&v, 40003, "isv.signature-invalid");
    // Upper-case hex is not Douyin's form.
    let upper = sign::openapi_sign(hs, &c.secret, &c.app_key, "im.sendMsg", &p, &ts).to_uppercase();
    let v = c.call_with("im.sendMsg", &p, Some(&token), hs, &ts, Some(&upper)).await;
    assert_error(&v, 40003, "isv.signature-invalid");
    // Correctly signed over a body that is not canonical (unsorted keys, then spaces).
    let unsorted = r#"{"msg_type":"text","buyer_open_id":"buyer-1","content":"hi","client_msg_id":"c-1"}"#;
    let v = c.call("im.sendMsg", unsorted, Some(&token)).await;
    assert_error(&v, 40003, "isv.signature-invalid");
    let spaced = r#"{"buyer_open_id": "buyer-1", "client_msg_id": "c-1", "content": "hi", "msg_type": "text"}"#;
    let v = c.call("im.sendMsg", spaced, Some(&token)).await;
    assert_error(&v, 40003, "isv.signature-invalid");
    // Stale and future timestamps.
    for off in [-601, 700] {
        let v = c.call_with("im.sendMsg", &p, Some(&token), hs, &sign::beijing_timestamp(now_s() + off), None).await;
        assert_error(&v, 40003, "isv.timestamp-invalid");
    }
    // Unknown token, missing token.
    let v = c.call("im.sendMsg", &p, Some("stolen-token")).await;
    assert_error(&v, 50001, "isv.access-token");
    let v = c.call("im.sendMsg", &p, None).await;
    assert_error(&v, 50001, "isv.access-token");
    // Wrong app key.
    let other = Client { app_key: "someone-else".into(), ..Client::new(&sim) };
    let v = other.call("im.sendMsg", &p, Some(&token)).await;
    assert_error(&v, 40003, "isv.app-key-invalid");
    // Missing sign, missing business parameter.
    let url = format!("{}/im/sendMsg?app_key={}&method=im.sendMsg&v=2&timestamp={}", c.base, c.app_key, now_s());
    assert_error(&c.post(&url, &p).await, 40001, "isv.missing-parameter:sign");
    let v = c.call("im.sendMsg", r#"{"buyer_open_id":"buyer-1","content":"hi","msg_type":"text"}"#, Some(&token)).await;
    assert_error(&v, 40001, "isv.missing-parameter:client_msg_id");
    // Another buyer's conversation; an unknown method.
    let p2 = sign::canonical_json(&json!({
        "buyer_open_id": "buyer-2", "client_msg_id": "c-9", "content": "x", "conversation_id": "conv-buyer-1",
        "msg_type": "text",
    }));
    assert_error(&c.call("im.sendMsg", &p2, Some(&token)).await, 40003, "isv.parameter-invalid:conversation_id");
    assert_error(&c.call("product.detail", "{}", Some(&token)).await, 30001, "isv.permission-denied");
    // order.orderDetail is served: a missing parameter, then an unknown order.
    assert_error(&c.call("order.orderDetail", "{}", Some(&token)).await, 40001, "isv.missing-parameter");
    let unknown = sign::canonical_json(&json!({"shop_order_id": "404"}));
    assert_error(&c.call("order.orderDetail", &unknown, Some(&token)).await, 40004, "isv.business-failed");

    assert!(sim.journal().received().is_empty());
    let rejected = sim.journal().rejected();
    assert_eq!(rejected.len(), 16, "{rejected:#?}");
    assert!(rejected[0].contains("isv.signature-invalid") && rejected[0].contains("sign mismatch"));
    assert!(rejected[3].contains("not canonical"), "{}", rejected[3]);
}

#[tokio::test]
async fn rate_limit_fault() {
    let (sim, faults) = sim().await;
    let c = Client::new(&sim);
    let token = sim.current_access_token();
    faults.rate_limit_sends.store(2, Ordering::SeqCst);
    for i in 0..2 {
        let v = c.call("im.sendMsg", &send_params("b", "x", &format!("r-{i}")), Some(&token)).await;
        assert_error(&v, 60000, "isv.traffic-limited");
    }
    let v = c.call("im.sendMsg", &send_params("b", "x", "r-3"), Some(&token)).await;
    assert_eq!(v["code"], 10000, "{v}");
    assert_eq!(sim.journal().received().len(), 1);
    assert_eq!(sim.journal().rejected().len(), 2);
}

fn refresh_params(rt: &str) -> String {
    sign::canonical_json(&json!({"grant_type": "refresh_token", "refresh_token": rt}))
}

#[tokio::test]
async fn token_expired_fault_and_refresh() {
    let (sim, faults) = sim().await;
    let c = Client::new(&sim);
    let old = sim.current_access_token();
    let old_rt = sim.current_refresh_token();
    faults.token_expired.store(true, Ordering::SeqCst);
    let v = c.call("im.sendMsg", &send_params("b", "x", "t-1"), Some(&old)).await;
    assert_error(&v, 40003, "isv.access-token-expired");

    // Wrong refresh token, wrong grant type.
    assert_error(&c.call("token.refresh", &refresh_params("nope"), None).await, 50001, "isv.refresh-token-invalid");
    let p = sign::canonical_json(&json!({"grant_type": "authorization_code", "refresh_token": old_rt}));
    assert_error(&c.call("token.refresh", &p, None).await, 40003, "isv.parameter-invalid:grant_type");
    assert_eq!(sim.journal().refreshes.load(Ordering::SeqCst), 0);

    let v = c.call("token.refresh", &refresh_params(&old_rt), None).await;
    assert_eq!(v["code"], 10000, "{v}");
    let new = v["data"]["access_token"].as_str().unwrap().to_owned();
    assert_eq!(new, format!("{old}-r1"));
    assert_eq!(v["data"]["expires_in"], 604800);
    assert_eq!(v["data"]["refresh_token"].as_str().unwrap(), format!("{old_rt}-r1"));
    assert_eq!(v["data"]["shop_id"], json!(4463798));
    assert!(!faults.token_expired.load(Ordering::SeqCst));
    assert_eq!(sim.journal().refreshes.load(Ordering::SeqCst), 1);
    assert_eq!(sim.shop_settings()["access_token"], new);

    // The expired token stays refused; the new one works; the old refresh token is spent.
    let v = c.call("im.sendMsg", &send_params("b", "x", "t-2"), Some(&old)).await;
    assert_error(&v, 40003, "isv.access-token-expired");
    let v = c.call("im.sendMsg", &send_params("b", "x", "t-3"), Some(&new)).await;
    assert_eq!(v["code"], 10000, "{v}");
    assert_error(&c.call("token.refresh", &refresh_params(&old_rt), None).await, 50001, "isv.refresh-token-invalid");
}

#[tokio::test]
async fn refresh_window_and_one_hour_grace() {
    let (sim, _f) = sim().await;
    let c = Client::new(&sim);
    let t0 = sim.current_access_token();
    let rt0 = sim.current_refresh_token();
    // More than 1 h before expiry: the same token comes back.
    let v = c.call("token.refresh", &refresh_params(&rt0), None).await;
    assert_eq!(v["code"], 10000, "{v}");
    assert_eq!(v["data"]["access_token"].as_str().unwrap(), t0);
    assert_eq!(v["data"]["refresh_token"].as_str().unwrap(), rt0);
    assert_eq!(sim.journal().refreshes.load(Ordering::SeqCst), 1);

    // In the last hour: a new token; the old one keeps working for 1 h.
    let expires = crate::now_ms() + 30 * 60 * 1000;
    sim.set_token_expires_at(expires);
    assert_eq!(sim.shop_settings()["token_expires_at"], expires.to_string());
    let v = c.call("token.refresh", &refresh_params(&rt0), None).await;
    let t1 = v["data"]["access_token"].as_str().unwrap().to_owned();
    assert_eq!(t1, format!("{t0}-r1"));
    assert_eq!(c.call("im.sendMsg", &send_params("b", "x", "g-1"), Some(&t0)).await["code"], 10000);
    assert_eq!(c.call("im.sendMsg", &send_params("b", "x", "g-2"), Some(&t1)).await["code"], 10000);

    sim.advance_clock(Duration::from_secs(3601));
    let v = c.call("im.sendMsg", &send_params("b", "x", "g-3"), Some(&t0)).await;
    assert_error(&v, 40003, "isv.access-token-expired");
    assert_eq!(c.call("im.sendMsg", &send_params("b", "x", "g-4"), Some(&t1)).await["code"], 10000);

    // Past the new token's 7 days: expired until refreshed.
    sim.advance_clock(Duration::from_secs(7 * 24 * 3600));
    let v = c.call("im.sendMsg", &send_params("b", "x", "g-5"), Some(&t1)).await;
    assert_error(&v, 40003, "isv.access-token-expired");
    let rt1 = sim.current_refresh_token();
    let v = c.call("token.refresh", &refresh_params(&rt1), None).await;
    assert_eq!(v["data"]["access_token"].as_str().unwrap(), format!("{t0}-r2"));
    // Refreshed because it had expired: no grace for t1.
    let v = c.call("im.sendMsg", &send_params("b", "x", "g-6"), Some(&t1)).await;
    assert_error(&v, 40003, "isv.access-token-expired");
}

#[tokio::test]
async fn api_down_and_slow_api() {
    let (sim, faults) = sim().await;
    let c = Client::new(&sim);
    let token = sim.current_access_token();
    faults.api_down.store(true, Ordering::SeqCst);
    assert_error(&c.call("im.sendMsg", &send_params("b", "x", "d-1"), Some(&token)).await, 20000, "isp.");
    assert_error(&c.call("token.refresh", &refresh_params("x"), None).await, 20000, "isp.");
    faults.api_down.store(false, Ordering::SeqCst);
    faults.slow_api_ms.store(150, Ordering::SeqCst);
    let start = Instant::now();
    assert_eq!(c.call("im.sendMsg", &send_params("b", "x", "d-2"), Some(&token)).await["code"], 10000);
    assert!(start.elapsed() >= Duration::from_millis(150));
    assert_eq!(sim.journal().received().len(), 1);
}

// ---------------------------------------------------------------- push side

/// A minimal gateway: verifies `event-sign` itself, records every push, and answers from a
/// script (then success).
#[derive(Default)]
struct Gateway {
    app_key: String,
    secret: String,
    script: Mutex<VecDeque<(u16, &'static str)>>,
    seen: Mutex<Vec<(bool, String, Vec<u8>)>>,
}

async fn gateway_hook(State(g): State<Arc<Gateway>>, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let mut md5 = Md5::new();
    md5.update(g.app_key.as_bytes());
    md5.update(&body);
    md5.update(g.secret.as_bytes());
    let ok = h("app-id") == g.app_key && h("event-sign") == hex::encode(md5.finalize());
    g.seen.lock().unwrap().push((ok, h("content-type"), body.to_vec()));
    if let Some((status, answer)) = g.script.lock().unwrap().pop_front() {
        return (StatusCode::from_u16(status).unwrap(), answer.to_owned());
    }
    if ok {
        (StatusCode::OK, r#"{"code":0,"msg":"success"}"#.into())
    } else {
        (StatusCode::UNAUTHORIZED, r#"{"code":1,"msg":"fail"}"#.into())
    }
}

async fn with_gateway() -> (DouyinSim, Arc<Faults>, Arc<Gateway>) {
    let (sim, faults) = sim().await;
    let cfg = SimConfig::sample(SHOP);
    let g = Arc::new(Gateway { app_key: cfg.app_key, secret: cfg.app_secret, ..Default::default() });
    let app = Router::new().route("/hooks/douyin/{shop}", post(gateway_hook)).with_state(g.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    sim.set_gateway(format!("http://{addr}/hooks/douyin/dy-shop-1"));
    sim.set_push_retry(3, Duration::from_millis(10));
    (sim, faults, g)
}

/// The single unit of a pushed envelope and its decoded `data`.
fn unit(body: &[u8]) -> (Value, Value) {
    let v: Value = serde_json::from_slice(body).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 1);
    let data: Value = serde_json::from_str(arr[0]["data"].as_str().unwrap()).unwrap();
    (arr[0].clone(), data)
}

#[tokio::test]
async fn chat_push_is_signed_and_acked() {
    let (sim, _f, g) = with_gateway().await;
    let mut chat = BuyerChat::text("m-1", "buyer-1", "在吗？", 1_700_000_000_123);
    chat.fans_level = 3;
    let d = sim.deliver_chat(&chat).await;
    assert!(d.acked, "{d:?}");
    assert_eq!(d.status, 200);
    assert_eq!(d.detail, r#"{"code":0,"msg":"success"}"#);
    let seen = g.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].0, "signature verified by the gateway");
    assert_eq!(seen[0].1, "application/json");
    let text = String::from_utf8(seen[0].2.clone()).unwrap();
    assert!(text.starts_with(r#"[{"tag":"9001","msg_id":"m-1","data":"{"#), "{text}");
    let (_, data) = unit(&seen[0].2);
    assert_eq!(
        data,
        json!({
            "msg_id": "m-1", "shop_id": 4463798, "conversation_id": "conv-buyer-1", "buyer_open_id": "buyer-1",
            "buyer_nick": "买家buyer-1", "msg_type": "text", "content": "在吗？", "create_time": 1_700_000_000,
            "fans_level": 3,
        })
    );

    // A product card: the id above 2^53 goes out as a JSON number, digit for digit.
    let mut card = BuyerChat::text("m-2", "buyer-1", "这个有货吗", 1_700_000_001_000);
    card.msg_type = "product".into();
    card.ref_id = Some("3556245366718399530".into());
    assert!(sim.deliver_chat(&card).await.acked);
    let body = g.seen.lock().unwrap()[1].2.clone();
    let (unit0, _) = unit(&body);
    assert!(unit0["data"].as_str().unwrap().contains(r#""product_id":3556245366718399530"#), "{unit0}");
    assert_eq!(sim.push_log().len(), 2);
}

#[tokio::test]
async fn unacked_pushes_are_retried() {
    let (sim, faults, g) = with_gateway().await;
    // Wrong signature on the first attempt: the gateway refuses, the retry is signed right.
    faults.bad_signature_pushes.store(1, Ordering::SeqCst);
    let d = sim.deliver_chat(&BuyerChat::text("m-1", "b", "x", 1_700_000_000_000)).await;
    assert!(d.acked, "{d:?}");
    let log = sim.push_log();
    assert_eq!(log.len(), 2);
    assert!(!log[0].signed_ok && !log[0].acked && log[0].status == 401);
    assert!(log[1].signed_ok && log[1].acked);
    let seen = g.seen.lock().unwrap().clone();
    assert!(!seen[0].0 && seen[1].0);
    assert_eq!(seen[0].2, seen[1].2, "a retry repeats the same bytes");

    // A fail body, an almost-success body and a 500 are all unacked; the 4th attempt succeeds.
    g.script.lock().unwrap().extend([
        (200, r#"{"code":1,"msg":"fail"}"#),
        (200, r#"{"code":0,"msg":"success"} "#),
        (500, r#"{"code":0,"msg":"success"}"#),
    ]);
    let d = sim.deliver_chat(&BuyerChat::text("m-2", "b", "x", 1_700_000_000_000)).await;
    assert!(d.acked, "{d:?}");
    assert_eq!(sim.push_log().len(), 6);

    // Never acked: 1 + 3 attempts, final answer reported.
    g.script.lock().unwrap().extend([(200, r#"{"code":1,"msg":"fail"}"#); 4]);
    let d = sim.deliver_chat(&BuyerChat::text("m-3", "b", "x", 1_700_000_000_000)).await;
    assert!(!d.acked);
    assert_eq!((d.status, d.detail.as_str()), (200, r#"{"code":1,"msg":"fail"}"#));
    assert_eq!(sim.push_log().len(), 10);
}

#[tokio::test]
async fn duplicate_delivery_fault() {
    let (sim, faults, g) = with_gateway().await;
    faults.duplicate_deliveries.store(1, Ordering::SeqCst);
    let ev = TradeEvent {
        event_id: "e-1".into(),
        kind: TradeKind::OrderPaid,
        buyer_id: "buyer-1".into(),
        order_id: "6919283745612345678".into(),
        refund_id: None,
        amount_fen: 4950,
        at_ms: 1_700_000_000_000,
    };
    assert!(sim.deliver_trade(&ev).await.acked);
    assert!(sim.deliver_chat(&BuyerChat::text("m-1", "b", "x", 1_700_000_000_000)).await.acked);
    let seen = g.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0].2, seen[1].2);
    assert_ne!(seen[1].2, seen[2].2);
}

#[tokio::test]
async fn trade_pushes_carry_tags_and_fields() {
    let (sim, _f, g) = with_gateway().await;
    let kinds = [
        (TradeKind::OrderCreated, "100"),
        (TradeKind::OrderPaid, "101"),
        (TradeKind::OrderShipped, "102"),
        (TradeKind::OrderReceived, "103"),
        (TradeKind::OrderClosed, "106"),
        (TradeKind::RefundRequested, "200"),
        (TradeKind::RefundAgreed, "201"),
        (TradeKind::RefundSucceeded, "206"),
    ];
    for (i, (kind, _)) in kinds.iter().enumerate() {
        let ev = TradeEvent {
            event_id: format!("e-{i}"),
            kind: *kind,
            buyer_id: "buyer-1".into(),
            order_id: "6919283745612345678".into(),
            refund_id: Some("7012345678901234567".into()),
            amount_fen: 4950,
            at_ms: 1_700_000_000_000,
        };
        assert!(sim.deliver_trade(&ev).await.acked);
    }
    let seen = g.seen.lock().unwrap().clone();
    for (i, (kind, tag)) in kinds.iter().enumerate() {
        let (u, data) = unit(&seen[i].2);
        assert_eq!(u["tag"], *tag);
        assert_eq!(u["msg_id"], format!("e-{i}"));
        assert_eq!(data["buyer_open_id"], "buyer-1");
        assert_eq!(data["shop_id"], 4463798);
        let raw = u["data"].as_str().unwrap();
        assert!(raw.contains(r#""p_id":6919283745612345678"#), "{raw}");
        match kind {
            TradeKind::RefundRequested | TradeKind::RefundAgreed | TradeKind::RefundSucceeded => {
                assert!(raw.contains(r#""aftersale_id":7012345678901234567"#), "{raw}");
                assert_eq!(data["refund_amount"], 4950);
            }
            _ => assert!(data.get("aftersale_id").is_none()),
        }
    }
    let (_, paid) = unit(&seen[1].2);
    assert_eq!((paid["pay_amount"].clone(), paid["pay_time"].clone()), (json!(4950), json!(1_700_000_000)));
    let (_, agreed) = unit(&seen[6].2);
    assert_eq!(agreed["agree_time"], 1_700_000_000);
}

#[tokio::test]
async fn raw_pushes_and_address_check() {
    let (sim, faults, g) = with_gateway().await;
    let d = sim.address_check().await;
    assert!(d.acked, "{d:?}");
    assert_eq!(g.seen.lock().unwrap()[0].2, br#"[{"tag":"0","msg_id":"0","data":"{}"}]"#);

    // One attempt only, even when refused, and no fault counters consumed.
    faults.duplicate_deliveries.store(1, Ordering::SeqCst);
    let d = sim.push_raw(b"not json".to_vec(), false).await;
    assert!(!d.acked);
    assert_eq!(d.status, 401);
    let d = sim.push_raw(b"not json".to_vec(), true).await;
    assert!(d.acked, "this minimal gateway acks anything signed");
    assert_eq!(g.seen.lock().unwrap().len(), 3);
    assert_eq!(faults.duplicate_deliveries.load(Ordering::SeqCst), 1);
    let log = sim.push_log();
    assert_eq!((log[0].tag.as_str(), log[1].tag.as_str()), ("0", ""));
}

#[tokio::test]
async fn no_gateway_means_no_delivery() {
    let (sim, _f) = sim().await;
    let d = sim.deliver_chat(&BuyerChat::text("m-1", "b", "x", 0)).await;
    assert!(!d.acked);
    assert_eq!(d.status, 0);
    assert!(sim.push_log().is_empty());
    let s = sim.shop_settings();
    let keys: Vec<&str> = s.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "access_token",
            "api_url",
            "app_key",
            "app_secret",
            "chat_tag",
            "refresh_token",
            "send_method",
            "token_expires_at"
        ]
    );
    assert_eq!(s["api_url"], format!("http://{}", sim.addr()));
}
