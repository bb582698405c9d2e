//! End to end on the 微信小店 (WeChat Shop) 自研客服 API, over loopback: the WeChat Shop
//! simulator (its own crypto, written from the docs) plays the platform, the real daemon runs the
//! real `huiliu-wechat-shop` library. Pushes go in safe mode (AES) unless a test says plain.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use huiliu_e2e::{Daemon, artifacts, runtime, shop_toml};
use huiliu_sim::wechat_shop::{Tamper, WechatShopSim};
use huiliu_sim::{BuyerChat, Faults, ReceivedSend, SimConfig, TradeEvent, TradeKind, now_ms};
use serde_json::{Value, json};

const FAST_OUTBOX: &str = "[outbox]\nbackoff_base_ms = 100\nbackoff_max_ms = 1000\nsend_rate_per_sec = 50\n";
const SHOP: &str = "wx-1";

struct Wx {
    rt: tokio::runtime::Runtime,
    sim: WechatShopSim,
    faults: Arc<Faults>,
    daemon: Daemon,
    _plugins: tempfile::TempDir,
}

fn wechat() -> Wx {
    let rt = runtime();
    let faults = Arc::new(Faults::default());
    let mut cfg = SimConfig::sample("wxshop7001");
    cfg.app_key = "wx5f1e2d3c4b5a6978".into();
    let sim = rt.block_on(WechatShopSim::start(cfg, faults.clone())).unwrap();
    let plugins = artifacts().plugins_dir(&["huiliu-wechat-shop"]);
    let daemon = Daemon::start_with(plugins.path(), &shop_toml(SHOP, "wechat-shop", &sim.shop_settings()), FAST_OUTBOX);
    sim.set_gateway(format!("http://{}/hooks/wechat-shop/{SHOP}", daemon.addr));
    Wx { rt, sim, faults, daemon, _plugins: plugins }
}

fn sessions(daemon: &Daemon) -> Vec<Value> {
    let (status, body) = daemon.api("GET", &format!("/api/v1/sessions?shop={SHOP}"), None);
    assert_eq!(status, 200, "{body}");
    body["sessions"].as_array().cloned().unwrap_or_default()
}

fn detail(daemon: &Daemon, session: i64) -> Value {
    daemon.api("GET", &format!("/api/v1/sessions/{session}"), None).1
}

fn inbound(daemon: &Daemon, session: i64) -> Vec<Value> {
    let d = detail(daemon, session);
    d["messages"].as_array().cloned().unwrap_or_default().into_iter().filter(|m| m["direction"] == "in").collect()
}

fn wait_session(daemon: &Daemon, n: usize) -> i64 {
    daemon.wait_for(&format!("a {SHOP} session with {n} buyer message(s)"), 20, || {
        let s = sessions(daemon);
        let id = s.first()?["id"].as_i64()?;
        (s.len() == 1 && inbound(daemon, id).len() == n).then_some(id)
    })
}

fn reply(daemon: &Daemon, session: i64, body: Value) -> i64 {
    let (status, out) = daemon.api("POST", &format!("/api/v1/sessions/{session}/reply"), Some(&body));
    assert_eq!(status, 202, "{out}");
    out["message_id"].as_i64().unwrap()
}

fn wait_sent(daemon: &Daemon, session: i64, message: i64, secs: u64) -> Value {
    daemon.wait_for(&format!("message {message} to be sent"), secs, || {
        detail(daemon, session)["messages"]
            .as_array()?
            .iter()
            .find(|m| m["id"] == message && m["delivery"] == "sent")
            .cloned()
    })
}

fn received(sim: &WechatShopSim, content: &str) -> Vec<ReceivedSend> {
    sim.journal().received().into_iter().filter(|r| r.content == content).collect()
}

fn chat(msg_id: &str, msg_type: &str, text: &str, ref_id: Option<&str>) -> BuyerChat {
    let mut c = BuyerChat::text(msg_id, "o7eep4jVQelr2eyoDSmE1wxbuyer", text, now_ms());
    c.msg_type = msg_type.into();
    c.ref_id = ref_id.map(str::to_owned);
    c
}

#[test]
fn wechat_shop_url_verification_is_echoed_and_a_forged_one_refused() {
    let w = wechat();
    let ok = w.rt.block_on(w.sim.verify_url(true));
    assert!(ok.acked, "the gateway echoes echostr: {ok:?}");
    let forged = w.rt.block_on(w.sim.verify_url(false));
    assert!(!forged.acked);
    assert_eq!(forged.status, 401);
    assert_eq!(w.daemon.metric(r#"huiliu_pushes_rejected_total{platform="wechat-shop",reason="bad_signature"}"#), 1.0);
}

#[test]
fn wechat_shop_chat_of_every_type_is_stored() {
    let w = wechat();
    let media = format!("{}/shop/commkf/downloadmedia?encrypted_param=buyer1", w.sim.api_url());
    // A 19-digit msg_id sent as a JSON number: it must keep every digit.
    let chats = [
        chat("3893720449229537281", "text", "这件外套还有L码吗", None),
        chat("3893720449229537282", "image", &media, None),
        chat("3893720449229537283", "video", &media, None),
        chat("3893720449229537284", "file", &media, None),
        chat("3893720449229537285", "product", "", Some("10000123456789")),
        chat("3893720449229537286", "order", "", Some("3705115058471208928")),
    ];
    for (i, c) in chats.iter().enumerate() {
        if i == 0 {
            w.sim.set_safe_mode(false); // one plain-mode push too
        }
        let d = w.rt.block_on(w.sim.deliver_chat(c));
        assert!(d.acked, "{} not acknowledged: {d:?}", c.msg_type);
        assert_eq!(d.detail, "success");
        w.sim.set_safe_mode(true);
    }
    let session = wait_session(&w.daemon, chats.len());
    let msgs = inbound(&w.daemon, session);
    let ids: Vec<&str> = msgs.iter().map(|m| m["platform_msg_id"].as_str().unwrap_or("")).collect();
    assert_eq!(ids, chats.iter().map(|c| c.msg_id.as_str()).collect::<Vec<_>>());
    let texts: Vec<&str> = msgs.iter().map(|m| m["text"].as_str().unwrap_or("")).collect();
    assert_eq!(texts[0], "这件外套还有L码吗");
    assert_eq!(texts[1], "[图片]");
    assert_eq!(texts[2], format!("[视频] {media}"));
    assert_eq!(texts[3], format!("[文件] 附件.pdf {media}"));
    assert_eq!(texts[4], "[商品] 10000123456789");
    assert_eq!(texts[5], "[订单] 3705115058471208928");
    assert_eq!(msgs[1]["content"][0]["type"], "image", "{}", msgs[1]);
    assert_eq!(msgs[1]["content"][0]["url"], media.as_str());
    assert_eq!(w.daemon.metric(r#"huiliu_events_stored_total{platform="wechat-shop"}"#), 6.0);
}

#[test]
fn wechat_shop_order_and_aftersale_events_are_stored_with_the_buyer() {
    let w = wechat();
    let buyer = "o7eep4jVQelr2eyoDSmE1wxbuyer";
    assert!(w.rt.block_on(w.sim.deliver_chat(&chat("3893720449229537290", "text", "发货了吗", None))).acked);
    let session = wait_session(&w.daemon, 1);
    let trade = |kind, id: &str| TradeEvent {
        event_id: id.into(),
        kind,
        buyer_id: buyer.into(),
        order_id: "3705115058471208928".into(),
        refund_id: Some("1234567".into()),
        amount_fen: 19_900,
        at_ms: now_ms(),
    };
    for t in [
        trade(TradeKind::OrderPaid, "t1"),
        trade(TradeKind::OrderShipped, "t2"),
        trade(TradeKind::RefundRequested, "t3"),
        trade(TradeKind::RefundSucceeded, "t4"),
    ] {
        let d = w.rt.block_on(w.sim.deliver_trade(&t));
        assert!(d.acked, "{:?}: {d:?}", t.kind);
    }
    w.daemon.wait_for("the trade events to be stored", 20, || {
        (w.daemon.metric(r#"huiliu_events_stored_total{platform="wechat-shop"}"#) >= 5.0).then_some(())
    });
    let d = detail(&w.daemon, session);
    let text = d.to_string();
    assert!(text.contains("3705115058471208928"), "the buyer's session shows the order: {d:#}");
    assert_eq!(sessions(&w.daemon).len(), 1, "the events joined the buyer's session by open id");
}

#[test]
fn wechat_shop_reply_of_each_type_carries_request_id() {
    let w = wechat();
    assert!(w.rt.block_on(w.sim.deliver_chat(&chat("3893720449229537300", "text", "在吗", None))).acked);
    let session = wait_session(&w.daemon, 1);
    let image = format!("{}/shop/commkf/downloadmedia?encrypted_param=shop1", w.sim.api_url());
    let replies = [
        (json!({"text": "在的，亲"}), "text", "在的，亲".to_owned()),
        (json!({"content": [{"type": "image", "url": image, "fallback": "[图片]"}]}), "image", image.clone()),
        (
            json!({"content": [{"type": "product", "product_id": "10000123456789", "fallback": "[商品] 10000123456789"}]}),
            "product_share",
            "10000123456789".to_owned(),
        ),
        (
            json!({"content": [{"type": "order", "order_id": "3705115058471208928", "fallback": "[订单] 3705115058471208928"}]}),
            "order_share",
            "3705115058471208928".to_owned(),
        ),
    ];
    for (body, msg_type, content) in replies {
        let message = reply(&w.daemon, session, body);
        let sent = wait_sent(&w.daemon, session, message, 20);
        let got = received(&w.sim, &content);
        assert_eq!(got.len(), 1, "{msg_type}: {got:?}");
        assert_eq!(got[0].msg_type, msg_type);
        assert_eq!(got[0].buyer_id, "o7eep4jVQelr2eyoDSmE1wxbuyer");
        assert_eq!(sent["client_msg_id"].as_str(), Some(got[0].client_msg_id.as_str()), "request_id = client_msg_id");
        assert!(!got[0].duplicate);
    }
    assert!(w.sim.journal().rejected().is_empty(), "{:?}", w.sim.journal().rejected());
}

#[test]
fn wechat_shop_a_picture_from_the_web_is_uploaded_first_and_sent_as_its_cos_url() {
    let w = wechat();
    assert!(w.rt.block_on(w.sim.deliver_chat(&chat("3893720449229537305", "text", "有实拍图吗", None))).acked);
    let session = wait_session(&w.daemon, 1);
    // A link WeChat would refuse in sendmsg: the gateway fetches it, cosupload stores it, and
    // the reply carries the cos_url it answered.
    let picture = w.sim.picture_url("coat-front.jpg");
    let body = json!({"content": [{"type": "image", "url": picture, "fallback": "[图片]"}]});
    let message = reply(&w.daemon, session, body);
    let sent = wait_sent(&w.daemon, session, message, 20);
    assert_eq!(w.sim.uploads(), 1, "uploaded once");
    assert!(w.sim.uploaded_the_picture(), "the upload holds the picture's bytes");
    let got: Vec<_> = w
        .sim
        .journal()
        .received()
        .into_iter()
        .filter(|r| r.content.ends_with("/commkf/downloadmedia?encrypted_param=sim1"))
        .collect();
    assert_eq!(got.len(), 1, "{:?}", w.sim.journal().received());
    assert_eq!(got[0].msg_type, "image");
    assert_eq!(sent["client_msg_id"].as_str(), Some(got[0].client_msg_id.as_str()));
    assert!(w.sim.journal().rejected().is_empty(), "{:?}", w.sim.journal().rejected());

    // A picture that is not there (404) fails at once, visibly, and nothing more is sent.
    let gone = format!("http://{}/pictures/gone.jpg", w.daemon.addr); // answers 404
    let message = reply(&w.daemon, session, json!({"content": [{"type": "image", "url": gone, "fallback": "[图片]"}]}));
    let failed = w.daemon.wait_for("the reply to fail", 60, || {
        let d = detail(&w.daemon, session);
        d["messages"].as_array()?.iter().find(|m| m["id"] == message && m["delivery"] == "failed").cloned()
    });
    assert!(failed["delivery_error"].as_str().unwrap_or("").contains("cannot fetch"), "{failed}");
    assert_eq!(w.sim.uploads(), 1, "no upload for the missing picture");
}

#[test]
fn wechat_shop_expired_token_is_refreshed_and_the_send_succeeds() {
    let w = wechat();
    assert!(w.rt.block_on(w.sim.deliver_chat(&chat("3893720449229537310", "text", "退货地址", None))).acked);
    let session = wait_session(&w.daemon, 1);
    let before = w.sim.current_access_token();
    w.faults.token_expired.store(true, Ordering::SeqCst);
    let message = reply(&w.daemon, session, json!({"text": "亲，请看售后页面的退货地址"}));
    wait_sent(&w.daemon, session, message, 30);
    assert_ne!(w.sim.current_access_token(), before, "a new stable token was issued");
    assert!(w.sim.journal().refreshes.load(Ordering::SeqCst) >= 1);
    assert_eq!(received(&w.sim, "亲，请看售后页面的退货地址").len(), 1);
    assert!(w.sim.journal().rejected().iter().any(|r| r.contains("42001")), "{:?}", w.sim.journal().rejected());
    assert_eq!(w.daemon.metric(r#"huiliu_token_refreshes_total{platform="wechat-shop",reason="ok"}"#), 1.0);
}

#[test]
fn wechat_shop_rate_limited_send_is_retried_and_delivered_once() {
    let w = wechat();
    assert!(w.rt.block_on(w.sim.deliver_chat(&chat("3893720449229537320", "text", "能便宜点吗", None))).acked);
    let session = wait_session(&w.daemon, 1);
    w.faults.rate_limit_sends.store(2, Ordering::SeqCst);
    let message = reply(&w.daemon, session, json!({"text": "亲，已经是活动价了"}));
    wait_sent(&w.daemon, session, message, 30);
    assert_eq!(received(&w.sim, "亲，已经是活动价了").len(), 1, "delivered exactly once");
    let rejected = w.sim.journal().rejected();
    assert_eq!(rejected.iter().filter(|r| r.contains("45009")).count(), 2, "{rejected:?}");
    assert_eq!(w.daemon.metric(r#"huiliu_sends_total{platform="wechat-shop",reason="rate_limited"}"#), 2.0);
}

#[test]
fn wechat_shop_forged_and_tampered_pushes_are_refused_and_never_parsed() {
    let w = wechat();
    let event = w.sim.chat_event(&chat("3893720449229537330", "text", "伪造的消息", None));
    let forged = w.rt.block_on(w.sim.push(&event, Tamper::WrongToken));
    assert_eq!((forged.acked, forged.status), (false, 401), "{forged:?}");
    let tampered = w.rt.block_on(w.sim.push(&event, Tamper::Ciphertext));
    assert_eq!((tampered.acked, tampered.status), (false, 401), "{tampered:?}");
    let other_app = w.rt.block_on(w.sim.push(&event, Tamper::OtherApp));
    assert_eq!((other_app.acked, other_app.status), (false, 401), "{other_app:?}");
    w.sim.set_safe_mode(false);
    let forged_plain = w.rt.block_on(w.sim.push(&event, Tamper::WrongToken));
    assert_eq!(forged_plain.status, 401);
    assert_eq!(w.daemon.metric(r#"huiliu_pushes_rejected_total{platform="wechat-shop",reason="bad_signature"}"#), 3.0);
    assert_eq!(w.daemon.metric(r#"huiliu_pushes_rejected_total{platform="wechat-shop",reason="wrong_app"}"#), 1.0);
    assert!(sessions(&w.daemon).is_empty(), "nothing refused was stored");
    // The platform's retry after a wrongly signed attempt goes through, once.
    w.sim.set_safe_mode(true);
    w.faults.bad_signature_pushes.store(1, Ordering::SeqCst);
    w.faults.duplicate_deliveries.store(1, Ordering::SeqCst);
    assert!(w.rt.block_on(w.sim.deliver_chat(&chat("3893720449229537331", "text", "真的消息", None))).acked);
    let session = wait_session(&w.daemon, 1);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(inbound(&w.daemon, session).len(), 1, "the duplicate delivery was absorbed");
    assert_eq!(w.daemon.metric(r#"huiliu_events_deduped_total{platform="wechat-shop"}"#), 1.0);
}

#[test]
fn wechat_shop_events_of_no_use_are_acknowledged_logged_and_not_stored() {
    let w = wechat();
    // A product event on the same push URL: authentic, of no use to customer service.
    let event = json!({
        "ToUserName": "gh_wxshop7001",
        "FromUserName": "o7eep4jVQelr2eyoDSmE1wxbuyer",
        "CreateTime": now_ms() / 1000,
        "MsgType": "event",
        "Event": "channels_ec_product_update",
    });
    let d = w.rt.block_on(w.sim.push(&event, Tamper::None));
    assert_eq!((d.acked, d.detail.as_str()), (true, "success"), "{d:?}");
    w.daemon.wait_for("the ignored unit in the log", 10, || {
        let log = w.daemon.log_text();
        (log.contains("push unit ignored") && log.contains("channels_ec_product_update")).then_some(())
    });
    assert!(sessions(&w.daemon).is_empty());
    assert_eq!(w.daemon.metric(r#"huiliu_events_stored_total{platform="wechat-shop"}"#), 0.0);
    assert_eq!(w.daemon.metric(r#"huiliu_dead_letters_total{platform="wechat-shop"}"#), 0.0);
}
