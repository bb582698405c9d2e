//! Pushes in, events out: every chat type, the order and after-sale events, the URL
//! verification, and every refusal. The published message-push examples
//! (<https://developers.weixin.qq.com/miniprogram/dev/framework/server-ability/message-push.html>)
//! go through the whole connector, not only the crypto.

mod common;

use common::*;
use huiliu_sdk::{
    Connector, Content, EventKind, HttpPush, InboundEvent, OrderStage, PushOutcome, RefundStage, RejectKind,
};
use huiliu_wechat_shop::WechatShopConnector;

fn connector() -> WechatShopConnector {
    WechatShopConnector::new(config()).unwrap()
}

fn accepted(push: &HttpPush, now: i64) -> (Vec<InboundEvent>, usize, usize, String) {
    match connector().decode_push(push, now) {
        PushOutcome::Accepted { events, dead_letters, ack, nack, ignored, lookups } => {
            assert!(lookups.is_empty(), "WeChat events name their buyer: no lookup");
            assert_eq!((ack.status, ack.body.as_slice()), (200, &b"success"[..]));
            assert_eq!(nack.status, 503, "a nack must make WeChat retry");
            let reasons = dead_letters.iter().map(|d| d.reason.clone()).collect::<Vec<_>>().join("; ");
            (events, dead_letters.len(), ignored.len(), reasons)
        }
        other => panic!("expected accepted: {other:?}"),
    }
}

fn one_event(push: &HttpPush) -> InboundEvent {
    let (mut events, dead, ignored, reasons) = accepted(push, NOW);
    assert_eq!((events.len(), dead, ignored), (1, 0, 0), "{reasons}");
    events.remove(0)
}

fn content_of(e: &InboundEvent) -> Vec<Content> {
    match &e.kind {
        EventKind::BuyerMessage(m) => m.content.clone(),
        other => panic!("not a message: {other:?}"),
    }
}

fn rejected(push: &HttpPush, now: i64) -> (RejectKind, u16) {
    match connector().decode_push(push, now) {
        PushOutcome::Rejected { kind, response, .. } => {
            assert_ne!(response.body, b"success", "a refusal must never acknowledge");
            (kind, response.status)
        }
        other => panic!("expected a refusal: {other:?}"),
    }
}

#[test]
fn published_url_verification_is_answered_with_echostr() {
    // 发起验证: Token AAAAA, signature f464b2…, echostr 4375120948345356249.
    let push = HttpPush {
        method: "GET".into(),
        path: "/hooks/wechat-shop/wx-shop-1".into(),
        query: "signature=f464b24fc39322e44b38aa78f5edd27bd1441696&echostr=4375120948345356249&timestamp=1714036504&nonce=1514711492".into(),
        headers: vec![],
        body: vec![],
    };
    match connector().decode_push(&push, 1_714_036_504_000) {
        PushOutcome::Accepted { events, ack, nack, .. } => {
            assert!(events.is_empty());
            assert_eq!((ack.status, ack.body.as_slice()), (200, &b"4375120948345356249"[..]));
            assert_eq!(nack, ack, "nothing to store, nothing to fail");
        }
        other => panic!("{other:?}"),
    }
    let mut wrong = push.clone();
    wrong.query = wrong.query.replace("f464b2", "f464b3");
    assert_eq!(rejected(&wrong, 1_714_036_504_000), (RejectKind::BadSignature, 401));
}

#[test]
fn published_plain_and_safe_pushes_verify_and_open() {
    // 明文模式: the debug_demo event, signature 899cf8…: authentic, and ignored (not a shop event).
    let mut push = plain(
        r#"{"ToUserName":"gh_97417a04a28d","FromUserName":"o9AgO5Kd5ggOC-bXrbNODIiE3bGY","CreateTime":1714037059,"MsgType":"event","Event":"debug_demo","debug_str":"hello world"}"#,
    );
    push.query = "signature=899cf89e464efb63f54ddac96b0a0a235f53aa78&timestamp=1714037059&nonce=486452656".into();
    assert_eq!(accepted(&push, 1_714_037_059_000).2, 1, "debug_demo is reported as ignored");
    // 安全模式: msg_signature 046e02…, the published Encrypt.
    let safe = HttpPush {
        method: "POST".into(),
        path: "/hooks/wechat-shop/wx-shop-1".into(),
        query: "signature=6c5c811b55cc85e0e1b54100749188c20beb3f5d&timestamp=1714112445&nonce=415670741&openid=o9AgO5Kd5ggOC-bXrbNODIiE3bGY&encrypt_type=aes&msg_signature=046e02f8204d34f8ba5fa3b1db94908f3df2e9b3".into(),
        headers: vec![],
        body: br#"{"ToUserName":"gh_97417a04a28d","Encrypt":"+qdx1OKCy+5JPCBFWw70tm0fJGb2Jmeia4FCB7kao+/Q5c/ohsOzQHi8khUOb05JCpj0JB4RvQMkUyus8TPxLKJGQqcvZqzDpVzazhZv6JsXUnnR8XGT740XgXZUXQ7vJVnAG+tE8NUd4yFyjPy7GgiaviNrlCTj+l5kdfMuFUPpRSrfMZuMcp3Fn2Pede2IuQrKEYwKSqFIZoNqJ4M8EajAsjLY2km32IIjdf8YL/P50F7mStwntrA2cPDrM1kb6mOcfBgRtWygb3VIYnSeOBrebufAlr7F9mFUPAJGj04="}"#.to_vec(),
    };
    let (events, dead, ignored, _) = accepted(&safe, NOW);
    assert_eq!((events.len(), dead, ignored), (0, 0, 1));
}

#[test]
fn chat_messages_of_every_type() {
    let url = "https://channels.weixin.qq.com/shop/commkf/downloadmedia?encrypted_param=xxxx&openid=o7ee&msg_type=2";
    let cases: Vec<(&str, String, Content)> = vec![
        ("text", r#"{"content":"这个有货吗"}"#.into(), Content::text("这个有货吗")),
        ("image", format!(r#"{{"cos_url":"{url}"}}"#), Content::image(url)),
        ("video", format!(r#"{{"cos_url":"{url}"}}"#), Content::text(format!("[视频] {url}"))),
        (
            "file",
            format!(r#"{{"cos_url":"{url}","file_name":"发票.pdf"}}"#),
            Content::text(format!("[文件] 发票.pdf {url}")),
        ),
        ("voice", format!(r#"{{"cos_url":"{url}"}}"#), Content::text(format!("[语音] {url}"))),
        ("product_share", r#"{"product_id":10000123456789}"#.into(), Content::product("10000123456789", None)),
        ("order_share", r#"{"order_id":"3705115058471208928"}"#.into(), Content::order("3705115058471208928")),
        ("location", r#"{"x":1}"#.into(), Content::text(r#"[location] {"x":1}"#)),
    ];
    for (kind, part, expected) in cases {
        for push in [plain(&chat(kind, &part)), sealed(&chat(kind, &part))] {
            let e = one_event(&push);
            assert_eq!(e.platform, "wechat-shop");
            assert_eq!(e.event_id, "3893720449229537280", "the numeric msg_id keeps every digit");
            assert_eq!(e.buyer.open_id, "o7eep4jVQelr2eyoDSmE1buyer");
            assert_eq!(e.occurred_at, NOW);
            assert_eq!(content_of(&e), std::slice::from_ref(&expected), "{kind}");
        }
    }
}

#[test]
fn chat_events_that_are_not_buyer_messages_are_ignored_and_broken_ones_dead_lettered() {
    let other = chat("text", r#"{"content":"x"}"#).replace("EVENT_TYPE_SEND_MSG", "EVENT_TYPE_SESSION_END");
    assert_eq!(accepted(&plain(&other), NOW).2, 1);
    let no_id = chat("text", r#"{"content":"x"}"#).replace(r#""msg_id":3893720449229537280,"#, "");
    let (_, dead, _, reason) = accepted(&plain(&no_id), NOW);
    assert_eq!(dead, 1);
    assert!(reason.contains("msg_id"), "{reason}");
    let no_part = chat("image", r#""oops""#);
    assert_eq!(accepted(&plain(&no_part), NOW).1, 1);
    assert_eq!(accepted(&plain("not json"), NOW).1, 1);
}

#[test]
fn order_and_aftersale_events_carry_the_buyer() {
    for (event, stage) in [
        ("channels_ec_order_new", OrderStage::Created),
        ("channels_ec_order_pay", OrderStage::Paid),
        ("channels_ec_order_deliver", OrderStage::Shipped),
        ("channels_ec_order_confirm", OrderStage::Received),
        ("channels_ec_order_cancel", OrderStage::Closed),
    ] {
        let body = format!(
            r#"{{"ToUserName":"gh_*","FromUserName":"o7eep4jVQelr2eyoDSmE1buyer","CreateTime":{TS},"MsgType":"event","Event":"{event}","order_info":{{"order_id":3705115058471208928}}}}"#
        );
        let e = one_event(&sealed(&body));
        assert_eq!(e.event_id, format!("{event}:3705115058471208928"));
        assert_eq!(e.buyer.open_id, "o7eep4jVQelr2eyoDSmE1buyer");
        let EventKind::Order(o) = e.kind else { panic!() };
        assert_eq!((o.stage, o.order_id.as_str()), (stage, "3705115058471208928"));
    }
    for (status, stage) in [
        ("MERCHANT_PROCESSING", RefundStage::Requested),
        ("USER_WAIT_RETURN", RefundStage::Agreed),
        ("MERCHANT_REFUND_SUCCESS", RefundStage::Succeeded),
        ("USER_CANCELD", RefundStage::Closed),
    ] {
        let body = format!(
            r#"{{"ToUserName":"gh_*","FromUserName":"o7eep4jVQelr2eyoDSmE1buyer","CreateTime":{TS},"MsgType":"event","Event":"channels_ec_aftersale_update","finder_shop_aftersale_status_update":{{"status":"{status}","after_sale_order_id":"1234567","order_id":"12345"}}}}"#
        );
        let e = one_event(&plain(&body));
        assert_eq!(e.event_id, format!("channels_ec_aftersale_update:1234567:{status}"));
        let EventKind::Refund(r) = e.kind else { panic!() };
        assert_eq!((r.stage, r.refund_id.as_str(), r.order_id.as_deref()), (stage, "1234567", Some("12345")));
    }
    let unknown = format!(
        r#"{{"FromUserName":"o","CreateTime":{TS},"MsgType":"event","Event":"channels_ec_aftersale_update","finder_shop_aftersale_status_update":{{"status":"NEW_STATUS","after_sale_order_id":"1"}}}}"#
    );
    assert_eq!(accepted(&plain(&unknown), NOW).1, 1, "an unknown status is dead-lettered, not dropped");
    let product =
        format!(r#"{{"FromUserName":"o","CreateTime":{TS},"MsgType":"event","Event":"channels_ec_product_update"}}"#);
    assert_eq!(accepted(&plain(&product), NOW).2, 1, "an event of no use is reported as ignored");
}

#[test]
fn forged_tampered_and_misrouted_pushes_are_refused() {
    let body = chat("text", r#"{"content":"在吗"}"#);
    // Forged: a signature made with another token.
    let mut forged = plain(&body);
    forged.query = forged.query.replace("signature=", "signature=f");
    assert_eq!(rejected(&forged, NOW), (RejectKind::BadSignature, 401));
    // Tampered: one character of the ciphertext changed after signing.
    let mut tampered = sealed(&body);
    let text = String::from_utf8(tampered.body.clone()).unwrap();
    let at = text.find("\"Encrypt\":\"").unwrap() + 12;
    let mut bytes = text.into_bytes();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    tampered.body = bytes;
    assert_eq!(rejected(&tampered, NOW), (RejectKind::BadSignature, 401));
    // Another app's push, correctly signed with the shared token.
    assert_eq!(rejected(&sealed_for(&body, "wx0000000000000000"), NOW), (RejectKind::WrongApp, 401));
    // No signature at all: not the shape of a WeChat push.
    let mut unsigned = plain(&body);
    unsigned.query = format!("timestamp={TS}&nonce=1");
    assert_eq!(rejected(&unsigned, NOW), (RejectKind::Malformed, 400));
    // Safe mode without msg_signature.
    let mut half = sealed(&body);
    half.query = half.query.split("&msg_signature").next().unwrap().to_owned();
    assert_eq!(rejected(&half, NOW), (RejectKind::Malformed, 400));
    // Replayed long after: outside the 4-hour window.
    assert_eq!(rejected(&plain(&body), NOW + 5 * 3_600_000), (RejectKind::Stale, 400));
    // Wrong method, too large.
    let mut put = plain(&body);
    put.method = "PUT".into();
    assert_eq!(rejected(&put, NOW), (RejectKind::Malformed, 405));
    let mut big = plain(&body);
    big.body = vec![b' '; (1 << 20) + 1];
    assert_eq!(rejected(&big, NOW), (RejectKind::TooLarge, 413));
}

#[test]
fn a_safe_mode_push_without_the_key_or_with_the_wrong_key_is_refused_so_wechat_retries() {
    let body = chat("text", r#"{"content":"在吗"}"#);
    let mut no_key = WechatShopConnector::new(config().with("encoding_aes_key", "")).unwrap();
    assert!(matches!(
        no_key.decode_push(&sealed(&body), NOW),
        PushOutcome::Rejected { kind: RejectKind::BadSignature, .. }
    ));
    let mut wrong_key =
        WechatShopConnector::new(config().with("encoding_aes_key", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"))
            .unwrap();
    assert!(matches!(
        wrong_key.decode_push(&sealed(&body), NOW),
        PushOutcome::Rejected { kind: RejectKind::BadSignature, .. }
    ));
}

#[test]
fn configuration_is_validated_by_key() {
    let err = |c| WechatShopConnector::new(c).unwrap_err().message;
    assert!(err(config().with("encoding_aes_key", "short")).contains("encoding_aes_key"));
    assert!(err(config().with("token", "has space")).contains("`token`"));
    assert!(err(config().with("api_url", "ftp://x")).contains("api_url"));
    assert!(err(huiliu_sdk::ShopConfig::new("s").with("token", "AAAAA")).contains("appid"));
}
