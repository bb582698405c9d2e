//! End to end per platform, over loopback: a simulator plays the platform, the real daemon
//! runs the real connector library. Each test: the platform delivers a buyer message, the
//! gateway stores it (and acknowledges the platform), an operator replies, and the simulator
//! receives a correctly signed request with the right content. Fault tests follow.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use huiliu_e2e::{Daemon, artifacts, runtime, shop_toml};
use huiliu_sim::douyin::DouyinSim;
use huiliu_sim::jd::JdSim;
use huiliu_sim::taobao::TaobaoSim;
use huiliu_sim::{BuyerChat, Faults, ReceivedSend, SimConfig, now_ms};
use serde_json::{Value, json};

/// Fast retries so the fault tests finish quickly.
const FAST_OUTBOX: &str = "[outbox]\nbackoff_base_ms = 100\nbackoff_max_ms = 1000\nsend_rate_per_sec = 50\n";

/// The sessions of a shop, via the API.
fn sessions(daemon: &Daemon, shop: &str) -> Vec<Value> {
    let (status, body) = daemon.api("GET", &format!("/api/v1/sessions?shop={shop}"), None);
    assert_eq!(status, 200, "{body}");
    body["sessions"].as_array().cloned().unwrap_or_default()
}

/// The messages of a session.
fn messages(daemon: &Daemon, session: i64) -> Vec<Value> {
    let (_, body) = daemon.api("GET", &format!("/api/v1/sessions/{session}"), None);
    body["messages"].as_array().cloned().unwrap_or_default()
}

/// Waits for the one session of `shop` with `n` inbound messages; returns its id.
fn wait_session(daemon: &Daemon, shop: &str, n: usize) -> i64 {
    daemon.wait_for(&format!("a session of {shop} with {n} buyer message(s)"), 20, || {
        let s = sessions(daemon, shop);
        let id = s.first()?["id"].as_i64()?;
        let inbound = messages(daemon, id).iter().filter(|m| m["direction"] == "in").count();
        (s.len() == 1 && inbound == n).then_some(id)
    })
}

/// Replies as the operator and returns the reply's message id.
fn reply(daemon: &Daemon, session: i64, text: &str) -> i64 {
    let (status, body) = daemon.api("POST", &format!("/api/v1/sessions/{session}/reply"), Some(&json!({"text": text})));
    assert_eq!(status, 202, "{body}");
    body["message_id"].as_i64().unwrap()
}

/// Waits until the reply's delivery is `state`; returns the message.
fn wait_delivery(daemon: &Daemon, session: i64, message: i64, state: &str, secs: u64) -> Value {
    daemon.wait_for(&format!("message {message} to be {state}"), secs, || {
        messages(daemon, session).into_iter().find(|m| m["id"] == message && m["delivery"] == state)
    })
}

fn received_with(journal: &[ReceivedSend], text: &str) -> Vec<ReceivedSend> {
    journal.iter().filter(|r| r.content.contains(text)).cloned().collect()
}

// ---------------------------------------------------------------- Douyin (HTTP push)

struct Douyin {
    rt: tokio::runtime::Runtime,
    sim: DouyinSim,
    faults: Arc<Faults>,
    daemon: Daemon,
    _plugins: tempfile::TempDir,
}

fn douyin() -> Douyin {
    let rt = runtime();
    let faults = Arc::new(Faults::default());
    let sim = rt.block_on(DouyinSim::start(SimConfig::sample("7000123"), faults.clone())).unwrap();
    let plugins = artifacts().plugins_dir(&["huiliu-douyin"]);
    let daemon = Daemon::start_with(plugins.path(), &shop_toml("dy-1", "douyin", &sim.shop_settings()), FAST_OUTBOX);
    sim.set_gateway(format!("http://{}/hooks/douyin/dy-1", daemon.addr));
    Douyin { rt, sim, faults, daemon, _plugins: plugins }
}

#[test]
fn douyin_message_is_stored_and_the_reply_is_signed_and_delivered() {
    let d = douyin();
    let delivery =
        d.rt.block_on(d.sim.deliver_chat(&BuyerChat::text("7301", "buyer-1", "你好，外套什么时候发货？", now_ms())));
    assert!(delivery.acked, "{delivery:?}");
    assert_eq!(delivery.detail, r#"{"code":0,"msg":"success"}"#);
    let session = wait_session(&d.daemon, "dy-1", 1);
    let msgs = messages(&d.daemon, session);
    assert_eq!(msgs[0]["text"], "你好，外套什么时候发货？");
    let message = reply(&d.daemon, session, "亲，今天下午就发货哦");
    let sent = wait_delivery(&d.daemon, session, message, "sent", 20);
    let got = received_with(&d.sim.journal().received(), "今天下午就发货");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].buyer_id.as_str(), got[0].method.as_str()), ("buyer-1", "im.sendMsg"));
    assert_eq!(got[0].conversation.as_deref(), Some("conv-buyer-1"));
    assert!(!got[0].duplicate);
    assert_eq!(sent["client_msg_id"].as_str(), Some(got[0].client_msg_id.as_str()));
    assert!(d.sim.journal().rejected().is_empty(), "{:?}", d.sim.journal().rejected());
}

#[test]
fn a_reply_of_several_elements_goes_out_as_one_message_each_in_order_and_a_retry_resumes() {
    let d = douyin();
    let delivery = d.rt.block_on(d.sim.deliver_chat(&BuyerChat::text("7311", "buyer-9", "有图吗", now_ms())));
    assert!(delivery.acked, "{delivery:?}");
    let session = wait_session(&d.daemon, "dy-1", 1);
    // The second element is rate-limited once: the first must not be sent again on the retry.
    d.faults.rate_limit_nth_send.store(2, Ordering::SeqCst);
    let content = json!([
        {"type": "text", "text": "亲，实物图如下"},
        {"type": "image", "url": "https://img.example.com/coat-1.jpg", "fallback": "[图片]"},
        {"type": "product", "product_id": "3581234567", "title": "羊毛大衣", "fallback": "[商品] 羊毛大衣"}
    ]);
    let (status, body) =
        d.daemon.api("POST", &format!("/api/v1/sessions/{session}/reply"), Some(&json!({"content": content})));
    assert_eq!(status, 202, "{body}");
    let message = body["message_id"].as_i64().unwrap();
    let client = body["client_msg_id"].as_str().unwrap().to_owned();
    let sent = wait_delivery(&d.daemon, session, message, "sent", 20);

    let got: Vec<ReceivedSend> =
        d.sim.journal().received().into_iter().filter(|r| r.client_msg_id.starts_with(&client)).collect();
    let ids: Vec<String> = got.iter().map(|r| r.client_msg_id.clone()).collect();
    assert_eq!(ids, [1, 2, 3].map(|n| format!("{client}-{n}")), "one message per element, in order: {got:?}");
    let types: Vec<&str> = got.iter().map(|r| r.msg_type.as_str()).collect();
    assert_eq!(types, ["text", "image", "product"], "each element in its native type: {got:?}");
    assert!(got.iter().all(|r| !r.duplicate), "nothing sent twice: {got:?}");
    assert!(got[0].content.contains("实物图如下") && !got[0].content.contains("coat-1"), "{got:?}");
    let rejected = d.sim.journal().rejected();
    assert!(rejected.iter().any(|r| r.contains("rate_limit_sends")), "the fault fired: {rejected:?}");
    // The message keeps each element's platform id.
    let ids = sent["platform_msg_id"].as_str().unwrap_or_default();
    assert_eq!(ids.split(',').count(), 3, "{sent}");
}

#[test]
fn a_douyin_order_push_without_a_buyer_is_completed_by_a_lookup_and_reaches_the_buyers_session() {
    use huiliu_sim::{TradeEvent, TradeKind};
    let d = douyin();
    let delivery = d.rt.block_on(d.sim.deliver_chat(&BuyerChat::text("7331", "buyer-31", "我刚下单了", now_ms())));
    assert!(delivery.acked, "{delivery:?}");
    let session = wait_session(&d.daemon, "dy-1", 1);
    let order = |event_id: &str, order_id: &str| TradeEvent {
        event_id: event_id.into(),
        kind: TradeKind::OrderPaid,
        buyer_id: "buyer-31".into(),
        order_id: order_id.into(),
        refund_id: None,
        amount_fen: 12_900,
        at_ms: now_ms(),
    };
    // As the live platform pushes it: no buyer. Acknowledged only after the looked-up event is
    // stored on the buyer's record.
    let delivery = d.rt.block_on(d.sim.deliver_trade_without_buyer(&order("7301000000000000931", "6930001"), true));
    assert!(delivery.acked, "{delivery:?}");
    assert_eq!(d.sim.order_lookups(), 1);
    let (_, detail) = d.daemon.api("GET", &format!("/api/v1/sessions/{session}"), None);
    let trades = detail["trades"].as_array().cloned().unwrap_or_default();
    assert!(
        trades.iter().any(|t| t["order_id"] == "6930001" && t["stage"] == "paid" && t["amount_fen"] == 12_900),
        "the order reached the buyer's record: {detail}"
    );
    assert_eq!(d.daemon.metric(r#"huiliu_lookups_total{platform="douyin",reason="complete"}"#), 1.0);

    // An order the platform does not know: kept as a dead letter with the reason, acknowledged.
    let delivery = d.rt.block_on(d.sim.deliver_trade_without_buyer(&order("7301000000000000932", "6930404"), false));
    assert!(delivery.acked, "{delivery:?}");
    let (_, status) = d.daemon.api("GET", "/api/v1/status", None);
    assert_eq!(status["dead_letters"]["douyin"], 1, "{status}");
    assert_eq!(d.daemon.metric(r#"huiliu_lookups_total{platform="douyin",reason="failed"}"#), 1.0);

    // The API is down: the lookup cannot complete, so the push is not acknowledged (the platform
    // pushes again) and nothing half-done is stored.
    d.faults.api_down.store(true, Ordering::SeqCst);
    d.sim.set_push_retry(0, Duration::from_millis(10));
    let delivery = d.rt.block_on(d.sim.deliver_trade_without_buyer(&order("7301000000000000933", "6930002"), true));
    assert!(!delivery.acked, "{delivery:?}");
    assert_eq!(d.daemon.metric(r#"huiliu_lookups_total{platform="douyin",reason="pending"}"#), 1.0);
    d.faults.api_down.store(false, Ordering::SeqCst);
    let delivery = d.rt.block_on(d.sim.deliver_trade_without_buyer(&order("7301000000000000933", "6930002"), true));
    assert!(delivery.acked, "redelivered once the API is back: {delivery:?}");
    let (_, detail) = d.daemon.api("GET", &format!("/api/v1/sessions/{session}"), None);
    let trades = detail["trades"].as_array().cloned().unwrap_or_default();
    assert_eq!(trades.iter().filter(|t| t["order_id"] == "6930002").count(), 1, "{detail}");
}

#[test]
fn douyin_bad_signature_is_rejected_counted_and_never_parsed() {
    let d = douyin();
    let body = br#"[{"tag":"9001","msg_id":"forged","data":"{\"msg_id\":\"forged\"}"}]"#.to_vec();
    let delivery = d.rt.block_on(d.sim.push_raw(body, false));
    assert!(!delivery.acked);
    assert_eq!(delivery.status, 401, "{delivery:?}");
    assert_eq!(d.daemon.metric(r#"huiliu_pushes_rejected_total{platform="douyin",reason="bad_signature"}"#), 1.0);
    assert!(d.daemon.log_text().contains("bad_signature"));
    assert!(sessions(&d.daemon, "dy-1").is_empty());
    // A wrongly signed first attempt, then the platform's retry with a good signature.
    d.faults.bad_signature_pushes.store(1, Ordering::SeqCst);
    let delivery = d.rt.block_on(d.sim.deliver_chat(&BuyerChat::text("7302", "buyer-2", "在吗", now_ms())));
    assert!(delivery.acked);
    assert_eq!(d.daemon.metric(r#"huiliu_pushes_rejected_total{platform="douyin",reason="bad_signature"}"#), 2.0);
    wait_session(&d.daemon, "dy-1", 1);
}

#[test]
fn douyin_duplicate_push_creates_no_duplicate_message() {
    let d = douyin();
    d.faults.duplicate_deliveries.store(1, Ordering::SeqCst);
    let delivery = d.rt.block_on(d.sim.deliver_chat(&BuyerChat::text("7303", "buyer-3", "重复的消息", now_ms())));
    assert!(delivery.acked, "{delivery:?}");
    let session = wait_session(&d.daemon, "dy-1", 1);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(messages(&d.daemon, session).iter().filter(|m| m["direction"] == "in").count(), 1);
    assert_eq!(d.daemon.metric(r#"huiliu_events_deduped_total{platform="douyin"}"#), 1.0);
}

#[test]
fn douyin_rate_limited_send_is_retried_and_delivered_once() {
    let d = douyin();
    d.rt.block_on(d.sim.deliver_chat(&BuyerChat::text("7304", "buyer-4", "能便宜点吗", now_ms())));
    let session = wait_session(&d.daemon, "dy-1", 1);
    d.faults.rate_limit_sends.store(2, Ordering::SeqCst);
    let message = reply(&d.daemon, session, "亲，已经是活动价了");
    wait_delivery(&d.daemon, session, message, "sent", 30);
    let got = received_with(&d.sim.journal().received(), "已经是活动价了");
    assert_eq!(got.len(), 1, "delivered exactly once: {got:?}");
    let rejected = d.sim.journal().rejected();
    assert_eq!(rejected.iter().filter(|r| r.contains("60000") || r.contains("traffic")).count(), 2, "{rejected:?}");
    assert_eq!(d.daemon.metric(r#"huiliu_sends_total{platform="douyin",reason="rate_limited"}"#), 2.0);
}

#[test]
fn douyin_expired_token_is_refreshed_and_the_send_succeeds() {
    let d = douyin();
    d.rt.block_on(d.sim.deliver_chat(&BuyerChat::text("7305", "buyer-5", "退货地址是哪里", now_ms())));
    let session = wait_session(&d.daemon, "dy-1", 1);
    d.faults.token_expired.store(true, Ordering::SeqCst);
    let message = reply(&d.daemon, session, "亲，请看售后页面的退货地址");
    wait_delivery(&d.daemon, session, message, "sent", 30);
    assert_eq!(d.sim.journal().refreshes.load(Ordering::SeqCst), 1);
    let got = received_with(&d.sim.journal().received(), "售后页面");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(d.daemon.metric(r#"huiliu_token_refreshes_total{platform="douyin",reason="ok"}"#), 1.0);
}

#[test]
fn a_refused_refresh_token_fails_the_reply_at_once_and_asks_for_re_authorization_until_the_shop_is_fixed() {
    let rt = runtime();
    let faults = Arc::new(Faults::default());
    let sim = rt.block_on(DouyinSim::start(SimConfig::sample("7000125"), faults.clone())).unwrap();
    let good = sim.shop_settings();
    let mut revoked = good.clone();
    revoked.insert("refresh_token".into(), "revoked-refresh-token".into());
    let plugins = artifacts().plugins_dir(&["huiliu-douyin"]);
    let daemon = Daemon::start_with(plugins.path(), &shop_toml("dy-1", "douyin", &revoked), FAST_OUTBOX);
    sim.set_gateway(format!("http://{}/hooks/douyin/dy-1", daemon.addr));
    rt.block_on(sim.deliver_chat(&BuyerChat::text("7321", "buyer-21", "在吗", now_ms())));
    let session = wait_session(&daemon, "dy-1", 1);
    faults.token_expired.store(true, Ordering::SeqCst);

    // The platform refuses the refresh token (50001): the reply fails now, with the reason,
    // instead of retrying for hours.
    let message = reply(&daemon, session, "在的，亲");
    let failed = wait_delivery(&daemon, session, message, "failed", 20);
    let reason = failed["delivery_error"].as_str().unwrap_or_default();
    assert!(reason.contains("re-authorization needed"), "{failed}");
    let (_, body) = daemon.request("GET", "/readyz", &[], b"");
    let ready: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(ready["shop_tokens"]["douyin/dy-1"]["state"], "reauthorize_needed", "{ready}");
    let (status, dash) = daemon.api("GET", "/api/v1/dashboard", None);
    assert_eq!(status, 200, "{dash}");
    let alerts = dash["alerts"].as_array().cloned().unwrap_or_default();
    assert!(alerts.iter().any(|a| a["kind"] == "reauthorize"), "the lead's dashboard says so: {dash}");
    assert_eq!(
        daemon.metric(r#"huiliu_token_refreshes_total{platform="douyin",reason="reauthorize"}"#),
        1.0,
        "refused once; not asked again for every reply"
    );
    let second = reply(&daemon, session, "还在吗");
    wait_delivery(&daemon, session, second, "failed", 20);
    assert_eq!(daemon.metric(r#"huiliu_token_refreshes_total{platform="douyin",reason="reauthorize"}"#), 1.0);

    // The operator authorizes again (a new refresh token in shops.toml): the state clears and
    // the next reply is refreshed through and delivered.
    std::fs::write(daemon.config_dir.path().join("shops.toml"), shop_toml("dy-1", "douyin", &good)).unwrap();
    let (status, body) = daemon.api("POST", "/api/v1/config/reload", Some(&json!({})));
    assert_eq!(status, 200, "{body}");
    let third = reply(&daemon, session, "亲，久等了");
    wait_delivery(&daemon, session, third, "sent", 30);
    let (_, body) = daemon.request("GET", "/readyz", &[], b"");
    let ready: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(ready["shop_tokens"]["douyin/dy-1"]["state"], "ok", "{ready}");
}

// ---------------------------------------------------------------- Taobao (TMC WebSocket)

struct Taobao {
    rt: tokio::runtime::Runtime,
    sim: TaobaoSim,
    faults: Arc<Faults>,
    daemon: Daemon,
    _plugins: tempfile::TempDir,
}

fn taobao() -> Taobao {
    let rt = runtime();
    let faults = Arc::new(Faults::default());
    let sim = rt.block_on(TaobaoSim::start(SimConfig::sample("tbshop"), faults.clone())).unwrap();
    let plugins = artifacts().plugins_dir(&["huiliu-taobao"]);
    let mut settings = sim.shop_settings();
    settings.insert("sub_nick".into(), "tbshop:客服1".into());
    let daemon = Daemon::start_with(plugins.path(), &shop_toml("tb-1", "taobao", &settings), FAST_OUTBOX);
    Taobao { rt, sim, faults, daemon, _plugins: plugins }
}

#[test]
fn taobao_tmc_message_is_confirmed_after_storing_and_the_reply_is_signed() {
    let t = taobao();
    let delivery =
        t.rt.block_on(t.sim.deliver_chat(&BuyerChat::text("tb-msg-1", "AAHbuyer1", "这款有现货吗", now_ms())));
    assert!(delivery.acked, "confirmed over TMC: {delivery:?}");
    let session = wait_session(&t.daemon, "tb-1", 1);
    let message = reply(&t.daemon, session, "有现货的亲，48小时内发货");
    wait_delivery(&t.daemon, session, message, "sent", 20);
    let got = received_with(&t.sim.journal().received(), "48小时内发货");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].buyer_id, "AAHbuyer1");
    assert!(got[0].method.ends_with("message.send"), "{}", got[0].method);
    assert!(t.sim.journal().rejected().is_empty(), "{:?}", t.sim.journal().rejected());
}

#[test]
fn taobao_dropped_tmc_connection_reconnects_and_loses_nothing() {
    let t = taobao();
    t.rt.block_on(t.sim.deliver_chat(&BuyerChat::text("tb-msg-2", "AAHbuyer2", "第一条", now_ms())));
    wait_session(&t.daemon, "tb-1", 1);
    let connections = t.sim.journal().connections.load(Ordering::SeqCst);
    t.faults.drop_connections.store(1, Ordering::SeqCst);
    // Written, then the connection is cut before (or while) the confirm comes back.
    let delivery = t.rt.block_on(t.sim.deliver_chat(&BuyerChat::text("tb-msg-3", "AAHbuyer2", "第二条", now_ms())));
    assert!(delivery.acked, "redelivered after the reconnect and confirmed: {delivery:?}");
    let delivery = t.rt.block_on(t.sim.deliver_chat(&BuyerChat::text("tb-msg-4", "AAHbuyer2", "第三条", now_ms())));
    assert!(delivery.acked, "{delivery:?}");
    let session = wait_session(&t.daemon, "tb-1", 3);
    let texts: Vec<String> = messages(&t.daemon, session)
        .iter()
        .filter(|m| m["direction"] == "in")
        .map(|m| m["text"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(texts, ["第一条", "第二条", "第三条"], "each exactly once");
    assert!(t.sim.journal().connections.load(Ordering::SeqCst) > connections, "the gateway reconnected");
}

// ---------------------------------------------------------------- JD (message stream)

struct Jd {
    rt: tokio::runtime::Runtime,
    sim: JdSim,
    faults: Arc<Faults>,
    daemon: Daemon,
    _plugins: tempfile::TempDir,
}

fn jd() -> Jd {
    let rt = runtime();
    let faults = Arc::new(Faults::default());
    let sim = rt.block_on(JdSim::start(SimConfig::sample("jdshop"), faults.clone())).unwrap();
    let plugins = artifacts().plugins_dir(&["huiliu-jd"]);
    let daemon = Daemon::start_with(plugins.path(), &shop_toml("jd-1", "jd", &sim.shop_settings()), FAST_OUTBOX);
    Jd { rt, sim, faults, daemon, _plugins: plugins }
}

#[test]
fn jd_stream_message_is_stored_and_the_reply_is_signed() {
    let j = jd();
    assert!(j.rt.block_on(j.sim.wait_for_stream(Duration::from_secs(20))), "the gateway opened the stream");
    let delivery =
        j.rt.block_on(j.sim.deliver_chat(&BuyerChat::text("jd-msg-1", "jd_buyer_1", "这个尺码偏大吗", now_ms())));
    assert!(delivery.acked, "{delivery:?}");
    let session = wait_session(&j.daemon, "jd-1", 1);
    let message = reply(&j.daemon, session, "亲，尺码标准，按平时穿的选就好");
    wait_delivery(&j.daemon, session, message, "sent", 20);
    let got = received_with(&j.sim.journal().received(), "尺码标准");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].buyer_id, "jd_buyer_1");
    assert_eq!(got[0].conversation.as_deref(), Some("sid-jd_buyer_1"));
    assert!(j.sim.journal().rejected().is_empty(), "{:?}", j.sim.journal().rejected());
}

#[test]
fn jd_dropped_stream_reconnects_and_loses_nothing() {
    let j = jd();
    assert!(j.rt.block_on(j.sim.wait_for_stream(Duration::from_secs(20))));
    j.faults.drop_connections.store(1, Ordering::SeqCst);
    let first = j.rt.block_on(j.sim.deliver_chat(&BuyerChat::text("jd-msg-2", "jd_buyer_2", "第一条", now_ms())));
    assert!(first.acked, "{first:?}");
    let connections = j.sim.journal().connections.load(Ordering::SeqCst);
    // The next message waits in the platform's backlog until the gateway is back.
    let second = j.rt.block_on(j.sim.deliver_chat(&BuyerChat::text("jd-msg-3", "jd_buyer_2", "第二条", now_ms())));
    assert!(second.acked, "{second:?}");
    let session = wait_session(&j.daemon, "jd-1", 2);
    let texts: Vec<String> = messages(&j.daemon, session)
        .iter()
        .filter(|m| m["direction"] == "in")
        .map(|m| m["text"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(texts, ["第一条", "第二条"]);
    assert!(j.sim.journal().connections.load(Ordering::SeqCst) >= connections);
}

#[test]
fn douyin_token_is_refreshed_before_it_expires() {
    let rt = runtime();
    let faults = Arc::new(Faults::default());
    let sim = rt.block_on(DouyinSim::start(SimConfig::sample("7000124"), faults)).unwrap();
    // The token expires in 30 minutes: inside Douyin's last-hour refresh window.
    let expires = now_ms() + 30 * 60 * 1000;
    sim.set_token_expires_at(expires);
    let mut settings = sim.shop_settings();
    settings.insert("token_expires_at".into(), expires.to_string());
    let old_token = sim.current_access_token();
    let plugins = artifacts().plugins_dir(&["huiliu-douyin"]);
    let daemon = Daemon::start_with(plugins.path(), &shop_toml("dy-1", "douyin", &settings), FAST_OUTBOX);
    daemon.wait_for("a proactive token refresh", 20, || {
        (sim.journal().refreshes.load(Ordering::SeqCst) == 1).then_some(())
    });
    assert_ne!(sim.current_access_token(), old_token);
    // The new token is used: a reply goes through without any token error.
    sim.set_gateway(format!("http://{}/hooks/douyin/dy-1", daemon.addr));
    rt.block_on(sim.deliver_chat(&BuyerChat::text("7306", "buyer-6", "在吗", now_ms())));
    let session = wait_session(&daemon, "dy-1", 1);
    let message = reply(&daemon, session, "在的");
    wait_delivery(&daemon, session, message, "sent", 20);
    assert!(sim.journal().rejected().is_empty(), "{:?}", sim.journal().rejected());
    assert_eq!(sim.journal().refreshes.load(Ordering::SeqCst), 1, "refreshed once, not on every tick");
}
