//! Drives the simulator with a hand-written client (independent of the connector).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::sign::{format_timestamp, hmac_sha256_sign, md5_sign};
use super::*;
use crate::{BuyerChat, Faults, SimConfig, TradeEvent, TradeKind, now_ms};

const WAIT: Duration = Duration::from_secs(3);

async fn start() -> (JdSim, Arc<Faults>) {
    let faults = Arc::new(Faults::default());
    let sim = JdSim::start(SimConfig::sample("jdshop"), faults.clone()).await.unwrap();
    (sim, faults)
}

fn client() -> reqwest::Client {
    crate::http_client()
}

fn settings(sim: &JdSim, key: &str) -> String {
    sim.shop_settings()[key].clone()
}

/// System parameters of a send call with a fresh timestamp, unsigned.
fn system(sim: &JdSim) -> BTreeMap<String, String> {
    let mut p = BTreeMap::new();
    p.insert("method".to_owned(), SEND_METHOD.to_owned());
    p.insert("app_key".to_owned(), settings(sim, "app_key"));
    p.insert("access_token".to_owned(), settings(sim, "access_token"));
    p.insert("timestamp".to_owned(), format_timestamp(now_ms(), true));
    p.insert("v".to_owned(), "2.0".to_owned());
    p
}

fn send_json(sim: &JdSim, buyer: &str, client_msg_id: &str, content: &str) -> String {
    json!({
        "client_msg_id": client_msg_id,
        "content": content,
        "customer_open_id": buyer,
        "msg_type": "text",
        "sid": format!("sid-{buyer}"),
        "waiter": sim.waiter(),
    })
    .to_string()
}

fn md5_signed(sim: &JdSim, mut params: BTreeMap<String, String>, param_json: &str) -> BTreeMap<String, String> {
    params.insert("360buy_param_json".into(), param_json.into());
    let sign = md5_sign(&settings(sim, "app_secret"), &params);
    params.insert("sign".into(), sign);
    params
}

fn encode(pairs: &BTreeMap<String, String>) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// POSTs system params in the query and `360buy_param_json` in the form body.
async fn call_raw(sim: &JdSim, mut params: BTreeMap<String, String>, query_override: Option<String>) -> (u16, Value) {
    let body_param = params.remove("360buy_param_json");
    let query = query_override.unwrap_or_else(|| encode(&params));
    let mut body = BTreeMap::new();
    if let Some(j) = body_param {
        body.insert("360buy_param_json".to_owned(), j);
    }
    let resp = client()
        .post(format!("{}?{query}", settings(sim, "api_url")))
        .header("content-type", "application/x-www-form-urlencoded;charset=utf-8")
        .body(encode(&body))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, serde_json::from_str(&resp.text().await.unwrap()).unwrap())
}

async fn call(sim: &JdSim, params: BTreeMap<String, String>) -> (u16, Value) {
    call_raw(sim, params, None).await
}

async fn send_ok(sim: &JdSim, buyer: &str, cmid: &str) -> (u16, Value) {
    call(sim, md5_signed(sim, system(sim), &send_json(sim, buyer, cmid, "您好"))).await
}

fn error_code(body: &Value) -> &str {
    body["error_response"]["code"].as_str().unwrap_or("<none>")
}

#[tokio::test]
async fn signed_send_is_accepted_recorded_and_deduped() {
    let (sim, _) = start().await;
    let (status, body) = send_ok(&sim, "buyer-1", "c-1").await;
    assert_eq!(status, 200);
    let r = &body["jingdong_im_pop_message_send_responce"];
    assert_eq!(r["code"], "0");
    assert_eq!(r["result"]["success"], true);
    let msg_id = r["result"]["msg_id"].as_str().unwrap().to_owned();
    assert!(msg_id.parse::<u64>().unwrap() > 1 << 53);

    // Same client_msg_id again: success, same msg_id, marked duplicate.
    let (_, again) = send_ok(&sim, "buyer-1", "c-1").await;
    assert_eq!(again["jingdong_im_pop_message_send_responce"]["result"]["msg_id"], msg_id.as_str());
    let (_, other) = send_ok(&sim, "buyer-1", "c-2").await;
    assert_ne!(other["jingdong_im_pop_message_send_responce"]["result"]["msg_id"], msg_id.as_str());

    let got = sim.journal().received();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].method, SEND_METHOD);
    assert_eq!(got[0].buyer_id, "buyer-1");
    assert_eq!(got[0].content, "您好");
    assert_eq!(got[0].msg_type, "text");
    assert_eq!(got[0].conversation.as_deref(), Some("sid-buyer-1"));
    assert_eq!(got[0].extra.get("waiter"), Some(&sim.waiter()));
    assert!(!got[0].duplicate && got[1].duplicate && !got[2].duplicate);
    assert_eq!(sim.msg_id_for("c-1").as_deref(), Some(msg_id.as_str()));
    assert!(sim.journal().rejected().is_empty());
}

#[tokio::test]
async fn hmac_and_plain_timestamp_are_accepted() {
    let (sim, _) = start().await;
    let mut p = system(&sim);
    p.insert("sign_method".into(), "hmacsha256".into());
    p.insert("360buy_param_json".into(), send_json(&sim, "b", "h-1", "hi"));
    let sign = hmac_sha256_sign(&settings(&sim, "app_secret"), &p);
    p.insert("sign".into(), sign);
    let (_, body) = call(&sim, p).await;
    assert_eq!(body["jingdong_im_pop_message_send_responce"]["result"]["success"], true, "{body}");

    // An MD5 signature with sign_method=hmacsha256 is wrong.
    let mut p = system(&sim);
    p.insert("sign_method".into(), "hmacsha256".into());
    let (_, body) = call(&sim, md5_signed(&sim, p, &send_json(&sim, "b", "h-2", "hi"))).await;
    assert_eq!(error_code(&body), "12");

    let mut p = system(&sim);
    p.insert("timestamp".into(), format_timestamp(now_ms(), false));
    let (_, body) = call(&sim, md5_signed(&sim, p, &send_json(&sim, "b", "h-3", "hi"))).await;
    assert_eq!(body["jingdong_im_pop_message_send_responce"]["result"]["success"], true, "{body}");
    assert_eq!(sim.journal().received().len(), 2);
}

#[tokio::test]
async fn bad_requests_get_the_real_error_bodies() {
    let (sim, _) = start().await;
    let json = send_json(&sim, "b", "x", "hi");

    // Wrong signature.
    let mut p = md5_signed(&sim, system(&sim), &json);
    p.insert("sign".into(), "0123456789ABCDEF0123456789ABCDEF".into());
    let (status, body) = call(&sim, p).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"error_response": {"code": "12", "zh_desc": "无效签名", "en_desc": "Invalid Signature"}}));

    // Signed with another secret.
    let mut p = system(&sim);
    p.insert("360buy_param_json".into(), json.clone());
    let s = md5_sign("not-the-secret", &p);
    p.insert("sign".into(), s);
    assert_eq!(error_code(&call(&sim, p).await.1), "12");

    // Missing sign, unknown app key, missing v.
    let mut p = md5_signed(&sim, system(&sim), &json);
    p.remove("sign");
    assert_eq!(error_code(&call(&sim, p).await.1), "11");
    let mut p = system(&sim);
    p.insert("app_key".into(), "someone-else".into());
    assert_eq!(error_code(&call(&sim, md5_signed(&sim, p, &json)).await.1), "21");
    let mut p = system(&sim);
    p.remove("v");
    assert_eq!(error_code(&call(&sim, md5_signed(&sim, p, &json)).await.1), "4");

    // Stale timestamp (7 min ago), unparseable timestamp.
    let mut p = system(&sim);
    p.insert("timestamp".into(), format_timestamp(now_ms() - 7 * 60_000, true));
    assert_eq!(error_code(&call(&sim, md5_signed(&sim, p, &json)).await.1), "8");
    let mut p = system(&sim);
    p.insert("timestamp".into(), now_ms().to_string());
    assert_eq!(error_code(&call(&sim, md5_signed(&sim, p, &json)).await.1), "8");

    // `+0800` not percent-encoded: arrives as a space, so the signature no longer matches.
    let p = md5_signed(&sim, system(&sim), &json);
    let query: Vec<String> = p
        .iter()
        .filter(|(k, _)| k.as_str() != "360buy_param_json")
        .map(|(k, v)| {
            let v = form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>().replace("%2B", "+");
            format!("{k}={v}")
        })
        .collect();
    let (_, body) = call_raw(&sim, p, Some(query.join("&"))).await;
    assert_eq!(error_code(&body), "12");

    // Unknown token, unknown method, missing token.
    let mut p = system(&sim);
    p.insert("access_token".into(), "stolen".into());
    assert_eq!(error_code(&call(&sim, md5_signed(&sim, p, &json)).await.1), "19");
    let mut p = system(&sim);
    p.insert("method".into(), "jingdong.im.pop.nothing".into());
    assert_eq!(error_code(&call(&sim, md5_signed(&sim, p, &json)).await.1), "15");
    let mut p = system(&sim);
    p.remove("access_token");
    assert_eq!(error_code(&call(&sim, md5_signed(&sim, p, &json)).await.1), "18");

    let rejected = sim.journal().rejected();
    assert_eq!(rejected.len(), 11, "{rejected:#?}");
    assert!(rejected.iter().any(|r| r.contains("'+' must be sent as %2B")), "{rejected:#?}");
    assert!(sim.journal().received().is_empty());
}

#[tokio::test]
async fn bad_payloads_are_business_failures() {
    let (sim, _) = start().await;
    let bad = [
        json!({"client_msg_id": "1", "content": "x", "customer_open_id": "b", "msg_type": "text", "waiter": "other_waiter"}),
        json!({"client_msg_id": "2", "content": "x", "customer_open_id": "b", "msg_type": "text", "sid": "sid-c", "waiter": sim.waiter()}),
        json!({"client_msg_id": "3", "content": "x", "customer_open_id": "b", "msg_type": "video", "waiter": sim.waiter()}),
        json!({"content": "x", "customer_open_id": "b", "msg_type": "text", "waiter": sim.waiter()}),
    ];
    for payload in bad {
        let (_, body) = call(&sim, md5_signed(&sim, system(&sim), &payload.to_string())).await;
        let r = &body["jingdong_im_pop_message_send_responce"];
        assert_eq!(r["result"]["success"], false, "{payload} → {body}");
    }
    // No sid is fine (no conversation); numeric ids are read as text.
    let ok = json!({"client_msg_id": 12345678901234567890u64, "content": "8888", "customer_open_id": "b", "msg_type": "sku", "waiter": sim.waiter()});
    let (_, body) = call(&sim, md5_signed(&sim, system(&sim), &ok.to_string())).await;
    assert_eq!(body["jingdong_im_pop_message_send_responce"]["result"]["success"], true, "{body}");
    let got = sim.journal().received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].client_msg_id, "12345678901234567890");
    assert_eq!(got[0].conversation, None);
    assert_eq!(sim.journal().rejected().len(), 4);
}

#[tokio::test]
async fn fault_rate_limit() {
    let (sim, faults) = start().await;
    faults.rate_limit_sends.store(1, Ordering::SeqCst);
    let (status, body) = send_ok(&sim, "b", "r-1").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"error_response": {"code": "2", "zh_desc": "限制时间内调用失败次数", "en_desc": "App Call Limited"}})
    );
    let (_, body) = send_ok(&sim, "b", "r-1").await;
    assert_eq!(body["jingdong_im_pop_message_send_responce"]["result"]["success"], true);
    let got = sim.journal().received();
    assert_eq!(got.len(), 1);
    assert!(!got[0].duplicate);
}

async fn refresh(sim: &JdSim, refresh_token: &str) -> (u16, Value) {
    let mut form = BTreeMap::new();
    form.insert("app_key".to_owned(), settings(sim, "app_key"));
    form.insert("app_secret".to_owned(), settings(sim, "app_secret"));
    form.insert("grant_type".to_owned(), "refresh_token".to_owned());
    form.insert("refresh_token".to_owned(), refresh_token.to_owned());
    let resp = client()
        .post(settings(sim, "oauth_url"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&form))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), serde_json::from_str(&resp.text().await.unwrap()).unwrap())
}

#[tokio::test]
async fn fault_token_expired_and_refresh() {
    let (sim, faults) = start().await;
    let old = sim.access_token();
    faults.token_expired.store(true, Ordering::SeqCst);
    let (_, body) = send_ok(&sim, "b", "t-1").await;
    assert_eq!(error_code(&body), "19");
    assert_eq!(body["error_response"]["en_desc"], "Invalid access_token");

    assert_eq!(refresh(&sim, "wrong").await.0, 400);
    assert_eq!(sim.journal().refreshes.load(Ordering::SeqCst), 0);
    let rt = settings(&sim, "refresh_token");
    let (status, body) = refresh(&sim, &rt).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["access_token"], format!("{old}-r1"));
    assert_eq!(body["expires_in"], 31_536_000);
    assert_eq!(body["refresh_token"], rt.as_str());
    assert_eq!(sim.journal().refreshes.load(Ordering::SeqCst), 1);
    assert!(!faults.token_expired.load(Ordering::SeqCst));
    assert_eq!(settings(&sim, "access_token"), format!("{old}-r1"));

    // The old token is expired now; the new one works.
    let mut p = system(&sim);
    p.insert("access_token".into(), old);
    let (_, body) = call(&sim, md5_signed(&sim, p, &send_json(&sim, "b", "t-1", "x"))).await;
    assert_eq!(error_code(&body), "19");
    assert!(sim.journal().rejected().last().unwrap().contains("replaced by a refresh"));
    let (_, body) = send_ok(&sim, "b", "t-1").await;
    assert_eq!(body["jingdong_im_pop_message_send_responce"]["result"]["success"], true);
}

#[tokio::test]
async fn fault_api_down_and_slow() {
    let (sim, faults) = start().await;
    faults.api_down.store(true, Ordering::SeqCst);
    let (status, body) = send_ok(&sim, "b", "d-1").await;
    assert_eq!(status, 503);
    assert_eq!(error_code(&body), "66");
    assert_eq!(refresh(&sim, &settings(&sim, "refresh_token")).await.0, 503);
    faults.api_down.store(false, Ordering::SeqCst);

    faults.slow_api_ms.store(300, Ordering::SeqCst);
    let t = std::time::Instant::now();
    let (status, _) = send_ok(&sim, "b", "d-1").await;
    assert_eq!(status, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert_eq!(sim.journal().received().len(), 1);
}

#[tokio::test]
async fn chunked_request_over_raw_tcp() {
    let (sim, _) = start().await;
    let mut sock = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
    let body = "360buy_param_json=%7B%7D";
    let req = format!(
        "POST /routerjson?v=2.0 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    sock.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    sock.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.contains("Connection: close\r\n"), "{out}");
    assert!(out.contains(r#""code":"20""#) && out.contains("Missing App Key"), "{out}");
}

#[tokio::test]
async fn keep_alive_serves_several_requests_on_one_connection() {
    let (sim, _) = start().await;
    let mut sock = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
    for _ in 0..2 {
        let p = md5_signed(&sim, system(&sim), &send_json(&sim, "b", "k-1", "hi"));
        let body = format!(
            "360buy_param_json={}",
            form_urlencoded::byte_serialize(p["360buy_param_json"].as_bytes()).collect::<String>()
        );
        let mut q = p.clone();
        q.remove("360buy_param_json");
        let req = format!(
            "POST /routerjson?{} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            encode(&q),
            body.len()
        );
        sock.write_all(req.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(sock.read_u8().await.unwrap());
        }
        let head = String::from_utf8(head).unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK") && head.contains("Connection: keep-alive"), "{head}");
        let len: usize = head.split("Content-Length: ").nth(1).unwrap().split("\r\n").next().unwrap().parse().unwrap();
        let mut body = vec![0; len];
        sock.read_exact(&mut body).await.unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["jingdong_im_pop_message_send_responce"]["result"]["success"], true, "{v}");
    }
    let got = sim.journal().received();
    assert_eq!(got.len(), 2);
    assert!(got[1].duplicate);
}

async fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cond()
}

#[tokio::test]
async fn dropping_the_sim_ends_the_stream() {
    let (sim, _) = start().await;
    let mut s = connect(&sim).await;
    drop(sim);
    assert!(s.next().await.is_err());
}

// ---- stream ----

struct Stream {
    resp: reqwest::Response,
    buf: Vec<u8>,
}

impl Stream {
    /// The next packet; Ok(None) at a clean end of body; Err on an abrupt close or timeout.
    async fn next(&mut self) -> Result<Option<Value>, String> {
        loop {
            if let Some(pos) = self.buf.iter().position(|c| *c == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                let v: Value = serde_json::from_slice(&line).map_err(|e| format!("bad line: {e}"))?;
                return Ok(Some(v));
            }
            match tokio::time::timeout(WAIT, self.resp.chunk()).await {
                Err(_) => return Err("timeout".into()),
                Ok(Err(e)) => return Err(format!("stream error: {e}")),
                Ok(Ok(None)) => return Ok(None),
                Ok(Ok(Some(bytes))) => self.buf.extend_from_slice(&bytes),
            }
        }
    }

    /// The next packet that is not a heartbeat.
    async fn packet(&mut self) -> Value {
        loop {
            let p = self.next().await.unwrap().expect("stream ended");
            if p["packet"]["code"] != 201 {
                return p;
            }
        }
    }
}

fn connect_form(sim: &JdSim) -> BTreeMap<String, String> {
    let mut p = BTreeMap::new();
    p.insert("app_key".to_owned(), settings(sim, "app_key"));
    p.insert("id".to_owned(), settings(sim, "app_key"));
    p.insert("user".to_owned(), "tester".to_owned());
    p.insert("timestamp".to_owned(), now_ms().to_string());
    p
}

async fn connect_with(sim: &JdSim, mut form: BTreeMap<String, String>, secret: &str) -> Result<Stream, (u16, Value)> {
    let sign = md5_sign(secret, &form);
    form.insert("sign".to_owned(), sign);
    let resp = client()
        .post(settings(sim, "stream_url"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&form))
        .send()
        .await
        .unwrap();
    if resp.status().as_u16() != 200 {
        let status = resp.status().as_u16();
        return Err((status, serde_json::from_str(&resp.text().await.unwrap()).unwrap()));
    }
    Ok(Stream { resp, buf: Vec::new() })
}

async fn connect(sim: &JdSim) -> Stream {
    let mut s = connect_with(sim, connect_form(sim), &settings(sim, "app_secret")).await.map_err(|e| e.1).unwrap();
    assert_eq!(s.packet().await, json!({"packet": {"code": 200, "msg": "connected"}}));
    s
}

/// The business `msg` of a 202 packet, decoding the string form.
fn business(p: &Value) -> (Value, bool) {
    assert_eq!(p["packet"]["code"], 202, "{p}");
    match &p["packet"]["msg"] {
        Value::String(s) => (serde_json::from_str(s).unwrap(), true),
        v => (v.clone(), false),
    }
}

#[tokio::test]
async fn stream_connect_is_verified() {
    let (sim, faults) = start().await;
    faults.bad_signature_pushes.store(3, Ordering::SeqCst);
    let secret = settings(&sim, "app_secret");
    let (status, body) = connect_with(&sim, connect_form(&sim), "wrong-secret").await.err().unwrap();
    assert_eq!(status, 403);
    assert_eq!(body, json!({"error_response": {"code": "12", "zh_desc": "无效签名", "en_desc": "Invalid Signature"}}));
    let mut f = connect_form(&sim);
    f.insert("app_key".into(), "nope".into());
    assert_eq!(connect_with(&sim, f, &secret).await.err().unwrap().1["error_response"]["code"], "21");
    let mut f = connect_form(&sim);
    f.insert("timestamp".into(), (now_ms() - 7 * 60_000).to_string());
    let (status, body) = connect_with(&sim, f, &secret).await.err().unwrap();
    assert_eq!((status, error_code(&body)), (400, "8"));
    let mut f = connect_form(&sim);
    f.insert("id".into(), "other".into());
    assert!(connect_with(&sim, f, &secret).await.is_err());
    assert_eq!(sim.journal().rejected().len(), 4);
    assert_eq!(sim.journal().connections.load(Ordering::SeqCst), 0);
    // Nothing on the stream is signed: the fault does not apply and is left alone.
    let mut f = connect_form(&sim);
    f.remove("user");
    assert!(connect_with(&sim, f, &secret).await.is_ok());
    assert_eq!(faults.bad_signature_pushes.load(Ordering::SeqCst), 3);
    assert_eq!(sim.journal().connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn stream_delivers_chat_trade_heartbeat_and_control() {
    let (sim, _) = start().await;
    sim.set_heartbeat(Duration::from_millis(100));
    let mut s = connect(&sim).await;
    assert!(sim.stream_connected());

    let chat = BuyerChat::text("m-1", "buyer-9", "在吗", 1_700_000_000_000);
    let d = sim.deliver_chat(&chat).await;
    assert!(d.acked, "{d:?}");
    assert_eq!(d.status, 0);
    let (msg, as_string) = business(&s.packet().await);
    assert!(!as_string);
    assert_eq!(
        msg,
        json!({"type": "dd_chat", "msg_id": "m-1", "sid": "sid-buyer-9", "customer_open_id": "buyer-9",
               "customer_nick": "买家buyer-9", "waiter": "jdshop_waiter", "msg_type": "text", "content": "在吗",
               "time": 1_700_000_000_000i64, "vip_level": 0})
    );

    // The next one comes as a JSON string; product → sku with an exact id above 2^53.
    let mut sku = BuyerChat::text("m-2", "buyer-9", "这个有货吗", 1);
    sku.msg_type = "product".into();
    sku.ref_id = Some("100012345678901234".into());
    assert!(sim.deliver_chat(&sku).await.acked);
    let p = s.packet().await;
    let (msg, as_string) = business(&p);
    assert!(as_string);
    assert_eq!(msg["msg_type"], "sku");
    assert!(p["packet"]["msg"].as_str().unwrap().contains(r#""sku_id":100012345678901234"#));
    assert!(msg.get("order_id").is_none());

    let trade = TradeEvent {
        event_id: "e-1".into(),
        kind: TradeKind::RefundRequested,
        buyer_id: "buyer-9".into(),
        order_id: "300001".into(),
        refund_id: Some("R-7".into()),
        amount_fen: 1999,
        at_ms: 5,
    };
    let d = sim.deliver_trade(&trade).await;
    assert!(d.acked, "{d:?}");
    let (msg, _) = business(&s.packet().await);
    assert_eq!(msg["type"], "refund_requested");
    assert_eq!(msg["order_id"], 300001);
    assert_eq!(msg["refund_id"], "R-7");
    assert_eq!(msg["amount"], "19.99");

    // Heartbeats arrive on their own.
    let mut beats = 0;
    while beats < 2 {
        let p = s.next().await.unwrap().unwrap();
        assert_eq!(p["packet"]["code"], 201, "{p}");
        beats += 1;
    }

    assert!(sim.send_control(103, json!(5000)).await);
    assert_eq!(s.packet().await, json!({"packet": {"code": 103, "msg": 5000}}));
    assert!(sim.send_raw_line("not json").await);
    assert!(s.next().await.is_err());
}

#[tokio::test]
async fn stream_backlog_waits_for_a_connection() {
    let (sim, _) = start().await;
    sim.set_delivery_timeout(Duration::from_millis(100));
    let d = sim.deliver_chat(&BuyerChat::text("m-1", "b", "1", 1)).await;
    assert!(!d.acked);
    assert!(d.detail.contains("backlog"), "{d:?}");
    assert_eq!(sim.backlog_len(), 1);
    assert!(!sim.send_control(102, json!("x")).await);

    sim.set_delivery_timeout(Duration::from_secs(5));
    let waiting = {
        let sim = sim.clone();
        tokio::spawn(async move { sim.deliver_chat(&BuyerChat::text("m-2", "b", "2", 2)).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut s = connect(&sim).await;
    assert_eq!(s.packet().await, json!({"packet": {"code": 105, "msg": 2}}));
    assert_eq!(business(&s.packet().await).0["msg_id"], "m-1");
    assert_eq!(business(&s.packet().await).0["msg_id"], "m-2");
    assert!(waiting.await.unwrap().acked);
    assert_eq!(sim.backlog_len(), 0);
}

#[tokio::test]
async fn newer_stream_replaces_the_old() {
    let (sim, _) = start().await;
    let mut old = connect(&sim).await;
    let mut new = connect(&sim).await;
    assert_eq!(old.packet().await, json!({"packet": {"code": 104, "msg": "replaced by a newer connection"}}));
    assert_eq!(old.next().await, Ok(None));
    assert!(sim.deliver_chat(&BuyerChat::text("m-1", "b", "1", 1)).await.acked);
    assert_eq!(business(&new.packet().await).0["msg_id"], "m-1");
    assert_eq!(sim.journal().connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn fault_duplicate_deliveries() {
    let (sim, faults) = start().await;
    let mut s = connect(&sim).await;
    faults.duplicate_deliveries.store(1, Ordering::SeqCst);
    let d = sim.deliver_chat(&BuyerChat::text("m-1", "b", "1", 1)).await;
    assert!(d.acked && d.detail.contains("twice"), "{d:?}");
    let a = s.packet().await;
    let b = s.packet().await;
    assert_eq!(a, b);
    assert_eq!(business(&a).0["msg_id"], "m-1");
    assert!(sim.deliver_chat(&BuyerChat::text("m-2", "b", "2", 2)).await.acked);
    assert_eq!(business(&s.packet().await).0["msg_id"], "m-2");
}

#[tokio::test]
async fn fault_drop_connections_and_redelivery_from_backlog() {
    let (sim, faults) = start().await;
    let mut s = connect(&sim).await;
    faults.drop_connections.store(1, Ordering::SeqCst);
    assert!(sim.deliver_chat(&BuyerChat::text("m-1", "b", "1", 1)).await.acked);
    assert_eq!(business(&s.packet().await).0["msg_id"], "m-1");
    assert!(s.next().await.is_err(), "the connection should be cut");
    assert!(wait_until(|| !sim.stream_connected()).await);

    // A message delivered while no stream is open waits for the reconnect.
    let waiting = {
        let sim = sim.clone();
        tokio::spawn(async move { sim.deliver_chat(&BuyerChat::text("m-2", "b", "2", 2)).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut s = connect(&sim).await;
    assert_eq!(s.packet().await["packet"]["code"], 105);
    assert_eq!(business(&s.packet().await).0["msg_id"], "m-2");
    assert!(waiting.await.unwrap().acked);
    // The fault fired once only.
    assert!(sim.deliver_chat(&BuyerChat::text("m-3", "b", "3", 3)).await.acked);
    assert_eq!(business(&s.packet().await).0["msg_id"], "m-3");
    assert!(sim.close_stream());
    assert!(s.next().await.is_err());
}

#[tokio::test]
async fn stream_expires_after_max_age() {
    let (sim, _) = start().await;
    sim.set_stream_max_age(Duration::from_millis(150));
    let mut s = connect(&sim).await;
    assert_eq!(s.packet().await, json!({"packet": {"code": 101, "msg": "stream expired"}}));
    assert_eq!(s.next().await, Ok(None));
    assert!(wait_until(|| !sim.stream_connected()).await);
    let _again = connect(&sim).await;
    assert!(sim.wait_for_stream(Duration::from_millis(100)).await);
}

#[tokio::test]
async fn shop_settings_point_here() {
    let (sim, _) = start().await;
    let s = sim.shop_settings();
    let keys: Vec<&str> = s.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "access_token",
            "api_url",
            "app_key",
            "app_secret",
            "oauth_url",
            "refresh_token",
            "stream_url",
            "token_expires_at",
            "waiter"
        ]
    );
    assert_eq!(s["api_url"], format!("http://{}/routerjson", sim.addr()));
    assert_eq!(s["stream_url"], format!("http://{}/stream", sim.addr()));
    assert_eq!(s["oauth_url"], format!("http://{}/oauth2/refresh_token", sim.addr()));
    assert!(s["token_expires_at"].parse::<i64>().unwrap() > now_ms());
}
