//! Replies out (sendmsg with request_id), media upload, error classes and the token.

mod common;

use common::*;
use huiliu_sdk::{Connector, Content, ErrorKind, HttpResponse, SendOutcome, ShopConfig};
use huiliu_wechat_shop::WechatShopConnector;
use huiliu_wechat_shop::outgoing::{parse_upload, upload_request};
use serde_json::{Value, json};

fn connector() -> WechatShopConnector {
    WechatShopConnector::new(config()).unwrap()
}

fn body_of(content: Vec<Content>) -> Value {
    let request = connector().encode_send(&reply("c-42", content), NOW).unwrap();
    assert_eq!(request.method, "POST");
    assert_eq!(request.url, "http://127.0.0.1:9/channels/ec/commkf/sendmsg?access_token=ACCESS_TOKEN_1");
    serde_json::from_slice(&request.body).unwrap()
}

#[test]
fn every_reply_type_carries_request_id_and_open_id() {
    let base = |msg_type: &str, object: Value| {
        let mut v = json!({"request_id": "c-42", "open_id": "o7eep4jVQelr2eyoDSmE1buyer", "msg_type": msg_type});
        v[msg_type] = object;
        v
    };
    assert_eq!(
        body_of(vec![Content::text("您好"), Content::emoji("[微笑]")]),
        base("text", json!({"content": "您好 [表情]"}))
    );
    let url = "https://channels.weixin.qq.com/shop/commkf/downloadmedia?encrypted_param=x";
    assert_eq!(body_of(vec![Content::image(url)]), base("image", json!({"cos_url": url})));
    assert_eq!(
        body_of(vec![Content::product("10000123456789", None)]),
        base("product_share", json!({"product_id": "10000123456789"}))
    );
    assert_eq!(
        body_of(vec![Content::order("3705115058471208928")]),
        base("order_share", json!({"order_id": "3705115058471208928"}))
    );
}

#[test]
fn replies_wechat_cannot_carry_are_refused_before_sending() {
    let mut c = connector();
    let mixed = reply("c", vec![Content::text("看看这个"), Content::image("https://i")]);
    assert_eq!(c.encode_send(&mixed, NOW).unwrap_err().kind, ErrorKind::InvalidInput);
    assert_eq!(c.encode_send(&reply("c", vec![]), NOW).unwrap_err().kind, ErrorKind::InvalidInput);
    let mut no_token = WechatShopConnector::new(config().with("access_token", "")).unwrap();
    let err = no_token.encode_send(&reply("c", vec![Content::text("x")]), NOW).unwrap_err();
    assert!(err.message.contains("appsecret"), "{err}");
}

#[test]
fn error_codes_are_classified() {
    let class =
        |status: u16, body: &str| connector().classify_send(&HttpResponse::json(status, body.as_bytes().to_vec()), NOW);
    assert_eq!(
        class(200, r#"{"msg_id":"3893720449229537280","errcode":0,"errmsg":"ok"}"#),
        SendOutcome::Delivered { platform_msg_id: Some("3893720449229537280".into()) }
    );
    for (body, expected) in [
        (r#"{"errcode":40001,"errmsg":"invalid credential"}"#, "token_expired"),
        (r#"{"errcode":42001,"errmsg":"access_token expired"}"#, "token_expired"),
        (r#"{"errcode":40014,"errmsg":"invalid access_token"}"#, "token_expired"),
        (r#"{"errcode":45009,"errmsg":"reach max api daily quota limit"}"#, "rate_limited"),
        (r#"{"errcode":45011,"errmsg":"api minute-quota reach limit"}"#, "rate_limited"),
        (r#"{"errcode":-1,"errmsg":"system error"}"#, "retryable"),
        (r#"{"errcode":45047,"errmsg":"out of response count limit"}"#, "permanent"),
        (r#"{"errcode":45015,"errmsg":"response out of time limit"}"#, "permanent"),
        (r#"{"errcode":40003,"errmsg":"invalid openid"}"#, "permanent"),
    ] {
        let outcome = class(200, body);
        assert_eq!(outcome.class(), expected, "{body}");
        if let SendOutcome::Permanent { error } | SendOutcome::TokenExpired { error } = &outcome {
            assert!(!error.message.is_empty(), "the platform's message is kept verbatim");
        }
    }
    assert_eq!(class(502, "<html>").class(), "retryable");
    assert_eq!(class(200, "not json").class(), "retryable");
    assert_eq!(class(429, "").class(), "rate_limited");
}

#[test]
fn the_stable_token_is_fetched_when_due_and_used_at_once() {
    let mut c = connector();
    assert!(c.token_refresh(NOW, false).is_none(), "not due two hours before expiry");
    let due = c.token_refresh(NOW + 7_200_000 - 60_000, false).expect("due within five minutes of expiry");
    assert_eq!(due.url, "http://127.0.0.1:9/cgi-bin/stable_token");
    let body: Value = serde_json::from_slice(&due.body).unwrap();
    assert_eq!(
        body,
        json!({"grant_type": "client_credential", "appid": APPID, "secret": SECRET, "force_refresh": false})
    );
    let forced: Value = serde_json::from_slice(&c.token_refresh(NOW, true).unwrap().body).unwrap();
    assert_eq!(forced["force_refresh"], true, "forced only after the platform refused the token");
    let grant = c
        .token_refreshed(&HttpResponse::json(200, r#"{"access_token":"ACCESS_TOKEN_2","expires_in":7200}"#), NOW)
        .unwrap();
    assert_eq!((grant.access_token.as_str(), grant.expires_at), ("ACCESS_TOKEN_2", NOW + 7_200_000));
    let next = c.encode_send(&reply("c", vec![Content::text("x")]), NOW).unwrap();
    assert!(next.url.ends_with("access_token=ACCESS_TOKEN_2"));
    let refused = c.token_refreshed(&HttpResponse::json(200, r#"{"errcode":40125,"errmsg":"invalid appsecret"}"#), NOW);
    assert!(refused.unwrap_err().message.contains("40125"));
    // Without an appsecret there is nothing to refresh with.
    let mut fixed =
        WechatShopConnector::new(ShopConfig { values: config().values, ..config() }.with("appsecret", "")).unwrap();
    assert!(fixed.token_refresh(NOW, true).is_none());
}

#[test]
fn an_image_upload_is_a_multipart_cosupload() {
    let request =
        upload_request("http://127.0.0.1:9", "AT", "o7ee", "image", "a.png", b"\x89PNG...", "huiliu-b0undary").unwrap();
    assert_eq!(request.url, "http://127.0.0.1:9/channels/ec/commkf/cosupload?access_token=AT");
    assert_eq!(request.headers[0].1, "multipart/form-data; boundary=huiliu-b0undary");
    let text = String::from_utf8_lossy(&request.body);
    assert!(text.contains("name=\"open_id\"\r\n\r\no7ee\r\n"));
    assert!(text.contains("name=\"msg_type\"\r\n\r\nimage\r\n"));
    assert!(text.contains("name=\"file\"; filename=\"a.png\""));
    assert!(text.ends_with("\r\n--huiliu-b0undary--\r\n"));
    assert!(upload_request("u", "AT", "o", "text", "a", b"x", "b").is_err());
    assert!(
        upload_request("u", "AT", "o", "image", "a", b"xxbxx", "b").is_err(),
        "the boundary may not occur in the file"
    );
    assert_eq!(
        parse_upload(
            200,
            br#"{"cos_url":"https://channels.weixin.qq.com/shop/commkf/downloadmedia?e=1","errcode":0,"errmsg":"ok"}"#
        )
        .unwrap(),
        "https://channels.weixin.qq.com/shop/commkf/downloadmedia?e=1"
    );
    assert_eq!(parse_upload(200, br#"{"errcode":40001,"errmsg":"invalid credential"}"#).unwrap_err().code, "40001");
}
