//! Outbound: signed send and transfer requests, token refresh, and the classification of TOP
//! answers. Expected signatures were computed independently (Python hashlib/hmac) from the
//! documented algorithm, not by this crate.

mod common;

use common::{NOW, config, form};
use huiliu_sdk::{
    Buyer, Connector, Content, ErrorKind, HttpResponse, OutgoingMessage, ReplyContext, SendOutcome, TransferRequest,
};
use huiliu_taobao::TaobaoConnector;

const BUYER: &str = "AAHk5d-EAAeGwJedwSHpg8bT";
const SUB_NICK: &str = "汇流旗舰店:客服1";
const SEND_METHOD: &str = "taobao.qianniu.cloudkefu.message.send";

fn connector(extra: &[(&str, &str)]) -> TaobaoConnector {
    let mut c = config();
    for (k, v) in extra {
        c = c.with(k, *v);
    }
    TaobaoConnector::new(c).expect("valid config")
}

fn reply(content: Vec<Content>, sub_nick: Option<&str>) -> OutgoingMessage {
    let mut reply_context = ReplyContext::new();
    if let Some(s) = sub_nick {
        reply_context.insert("sub_nick".into(), s.into());
    }
    OutgoingMessage {
        staff_account: None,
        client_msg_id: "c-1".into(),
        shop: common::SHOP.into(),
        buyer: Buyer { open_id: BUYER.into(), nick: Some("tb_buyer01".into()) },
        conversation: None,
        reply_context,
        content,
    }
}

fn pairs(list: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[test]
fn send_is_a_signed_top_form_post() {
    let mut c = connector(&[]);
    let request = c.encode_send(&reply(vec![Content::text("您好，有货的")], Some(SUB_NICK)), NOW).expect("encodes");
    assert_eq!(request.method, "POST");
    assert_eq!(request.url, "http://127.0.0.1:18080/router/rest");
    assert_eq!(
        request.headers,
        [("Content-Type".to_owned(), "application/x-www-form-urlencoded;charset=utf-8".to_owned())]
    );
    assert_eq!(
        form(&request),
        pairs(&[
            ("app_key", "12345678"),
            ("buyer_open_uid", BUYER),
            ("client_msg_id", "c-1"),
            ("content", "您好，有货的"),
            ("format", "json"),
            ("method", SEND_METHOD),
            ("msg_type", "text"),
            ("session", "session-abc"),
            ("sign", "FF07A2E29D2F25DFA4221FF047A782F233563AD03712C4A764AE93756A2791C5"),
            ("sign_method", "hmac-sha256"),
            ("sub_nick", SUB_NICK),
            ("timestamp", "2024-01-01 10:00:00"),
            ("v", "2.0"),
        ])
    );
}

#[test]
fn send_signs_with_the_configured_method() {
    let mut c = connector(&[("sign_method", "md5")]);
    let request = c.encode_send(&reply(vec![Content::text("您好，有货的")], Some(SUB_NICK)), NOW).expect("encodes");
    let params = form(&request);
    assert_eq!(params["sign_method"], "md5");
    assert_eq!(params["sign"], "D4881E14546F45637269D83931C86869");
}

#[test]
fn send_method_and_urls_are_configurable() {
    let mut c = connector(&[
        ("send_method", "taobao.granted.chat.send"),
        ("api_url", "https://gw.api.tbsandbox.com/router/rest"),
    ]);
    let request = c.encode_send(&reply(vec![Content::text("x")], Some(SUB_NICK)), NOW).expect("encodes");
    assert_eq!(request.url, "https://gw.api.tbsandbox.com/router/rest");
    assert_eq!(form(&request)["method"], "taobao.granted.chat.send");
    let ok = HttpResponse::json(200, r#"{"taobao_granted_chat_send_response":{"result":{"success":true}}}"#);
    assert_eq!(c.classify_send(&ok, NOW), SendOutcome::Delivered { platform_msg_id: None });
}

#[test]
fn rich_elements_and_sub_nick_fallback() {
    let mut c = connector(&[("sub_nick", "汇流旗舰店:默认")]);
    let cases = [
        (vec![Content::image("https://img.alicdn.com/1.jpg")], "image", "https://img.alicdn.com/1.jpg"),
        (vec![Content::product("9007199254740993", None)], "item", "9007199254740993"),
        (vec![Content::order("3900000000000000001")], "order", "3900000000000000001"),
        (vec![Content::text("看看这款"), Content::product("123", None)], "text", "看看这款 [商品] 123"),
    ];
    for (content, msg_type, body) in cases {
        let params = form(&c.encode_send(&reply(content, None), NOW).expect("encodes"));
        assert_eq!((params["msg_type"].as_str(), params["content"].as_str()), (msg_type, body));
        assert_eq!(params["sub_nick"], "汇流旗舰店:默认");
    }
}

#[test]
fn send_refuses_what_cannot_be_sent() {
    let mut c = connector(&[]);
    let no_sub_nick = c.encode_send(&reply(vec![Content::text("x")], None), NOW).expect_err("no sub_nick");
    assert_eq!(no_sub_nick.kind, ErrorKind::Config);
    assert!(no_sub_nick.message.contains("sub_nick"), "{}", no_sub_nick.message);
    let empty = c.encode_send(&reply(Vec::new(), Some(SUB_NICK)), NOW).expect_err("no content");
    assert_eq!(empty.kind, ErrorKind::InvalidInput);

    let mut no_token = TaobaoConnector::new(config().with("access_token", "")).expect("valid");
    let err = no_token.encode_send(&reply(vec![Content::text("x")], Some(SUB_NICK)), NOW).expect_err("no token");
    assert_eq!(err.kind, ErrorKind::Config);
    assert!(err.message.contains("access_token"), "{}", err.message);
}

fn transfer(nick: Option<&str>) -> TransferRequest {
    TransferRequest {
        shop: common::SHOP.into(),
        buyer: Buyer { open_id: BUYER.into(), nick: nick.map(Into::into) },
        from_account: "汇流旗舰店:客服1".into(),
        to_account: "cntaobao汇流旗舰店:售后1".into(),
        reply_context: ReplyContext::new(),
    }
}

#[test]
fn transfer_is_the_public_forward_call_with_cntaobao_nicks() {
    let mut c = connector(&[("sign_method", "hmac")]);
    let request = c.encode_transfer(&transfer(Some("tb_buyer01")), NOW).expect("encodes");
    assert_eq!(
        form(&request),
        pairs(&[
            ("app_key", "12345678"),
            ("buyer_nick", "cntaobaotb_buyer01"),
            ("format", "json"),
            ("from_ww_nick", "cntaobao汇流旗舰店:客服1"),
            ("method", "taobao.qianniu.cloudkefu.forward"),
            ("session", "session-abc"),
            ("sign", "AC0A1EC19E6A0789512D5CD4CB4E6EF3"),
            ("sign_method", "hmac"),
            ("timestamp", "2024-01-01 10:00:00"),
            ("to_ww_nick", "cntaobao汇流旗舰店:售后1"),
            ("v", "2.0"),
        ])
    );
    let err = c.encode_transfer(&transfer(None), NOW).expect_err("no nick");
    assert_eq!(err.kind, ErrorKind::InvalidInput);

    let ok = HttpResponse::json(200, r#"{"qianniu_cloudkefu_forward_response":{"result":{"success":true}}}"#);
    assert_eq!(c.classify_transfer(&ok, NOW), SendOutcome::Delivered { platform_msg_id: None });
    let send_shaped =
        HttpResponse::json(200, r#"{"taobao_qianniu_cloudkefu_message_send_response":{"result":{"success":true}}}"#);
    assert_eq!(c.classify_transfer(&send_shaped, NOW).class(), "retryable");
}

#[test]
fn requests_are_deterministic() {
    let message = reply(vec![Content::text("同一条")], Some(SUB_NICK));
    let a = connector(&[]).encode_send(&message, NOW).expect("encodes");
    let b = connector(&[]).encode_send(&message, NOW).expect("encodes");
    assert_eq!(a, b);
    let later = connector(&[]).encode_send(&message, NOW + 1000).expect("encodes");
    assert_ne!(form(&a)["sign"], form(&later)["sign"], "the timestamp is signed");
}

#[test]
fn token_refresh_is_due_only_near_expiry_or_when_forced() {
    let expires = NOW + 86_400_000;
    let mut c = connector(&[]);
    assert_eq!(c.token_refresh(NOW, false), None, "a day left");
    assert_eq!(c.token_refresh(expires - 11 * 60_000, false), None, "11 minutes left");
    let due = c.token_refresh(expires - 10 * 60_000, false).expect("10 minutes left");
    assert_eq!(due.method, "POST");
    assert_eq!(due.url, "http://127.0.0.1:18080/token");
    assert_eq!(
        form(&due),
        pairs(&[
            ("client_id", "12345678"),
            ("client_secret", "helloworld"),
            ("grant_type", "refresh_token"),
            ("refresh_token", "refresh-xyz"),
        ])
    );
    assert!(c.token_refresh(expires + 1, false).is_some(), "expired");
    assert_eq!(c.token_refresh(NOW, true), Some(due.clone()), "forced");

    let mut no_refresh_token = TaobaoConnector::new(config().with("refresh_token", "")).expect("valid");
    assert_eq!(no_refresh_token.token_refresh(NOW, true), None);
    let mut no_expiry = TaobaoConnector::new(config().with("token_expires_at", "")).expect("valid");
    assert_eq!(no_expiry.token_refresh(NOW, false), None);
    assert!(no_expiry.token_refresh(NOW, true).is_some());
}

#[test]
fn a_refreshed_token_is_used_at_once() {
    let mut c = connector(&[]);
    let answer = HttpResponse::json(
        200,
        r#"{"access_token":"session-new","expires_in":"7200","refresh_token":"refresh-new","re_expires_in":86400,"taobao_user_nick":"%E6%B1%87"}"#,
    );
    let grant = c.token_refreshed(&answer, NOW).expect("grant");
    assert_eq!(grant.access_token, "session-new");
    assert_eq!(grant.expires_at, NOW + 7_200_000);
    assert_eq!(grant.refresh_token.as_deref(), Some("refresh-new"));
    assert_eq!(grant.refresh_expires_at, Some(NOW + 86_400_000));

    let request = c.encode_send(&reply(vec![Content::text("x")], Some(SUB_NICK)), NOW).expect("encodes");
    assert_eq!(form(&request)["session"], "session-new");
    // The new expiry governs the next refresh, which uses the new refresh token.
    assert_eq!(c.token_refresh(NOW, false), None);
    let next = c.token_refresh(NOW + 7_200_000 - 60_000, false).expect("due");
    assert_eq!(form(&next)["refresh_token"], "refresh-new");

    let refused = HttpResponse::json(400, r#"{"error":"invalid_grant","error_description":"refresh token expired"}"#);
    let err = c.token_refreshed(&refused, NOW).expect_err("refused");
    // An expired refresh token is the grant refused: the shop must authorize the app again.
    assert_eq!(err.kind, ErrorKind::Reauthorize);
    let request = c.encode_send(&reply(vec![Content::text("x")], Some(SUB_NICK)), NOW).expect("encodes");
    assert_eq!(form(&request)["session"], "session-new", "a failed refresh keeps the last good token");
}

/// (HTTP status, body, class, code, sub_code, platform msg id or retry-after).
#[test]
fn classification_table() {
    let r = |body: &str| format!(r#"{{"error_response":{body}}}"#);
    let rows: Vec<(u16, String, &str, &str, Option<&str>)> = vec![
        (200, r#"{"taobao_qianniu_cloudkefu_message_send_response":{"result":{"success":true,"msg_id":"MSG-1"}}}"#.into(), "delivered", "", None),
        (200, r#"{"qianniu_cloudkefu_message_send_response":{"result":{"success":true,"msg_id":9007199254740993}}}"#.into(), "delivered", "", None),
        (200, r#"{"taobao_qianniu_cloudkefu_message_send_response":{"result":{"success":false,"error_code":"BUYER_OFFLINE","error_msg":"买家不在线"}}}"#.into(), "permanent", "BUYER_OFFLINE", None),
        (200, r(r#"{"code":7,"msg":"App Call Limited","sub_code":"accesscontrol.limited-by-app-access-count","sub_msg":"This ban will last 71 more seconds"}"#), "rate_limited", "7", Some("accesscontrol.limited-by-app-access-count")),
        (200, r(r#"{"code":8,"msg":"Call Frequency Limited"}"#), "rate_limited", "8", None),
        (200, r(r#"{"code":27,"msg":"Invalid session","sub_code":"invalid-sessionkey"}"#), "token_expired", "27", Some("invalid-sessionkey")),
        (200, r(r#"{"code":15,"msg":"Remote service error","sub_code":"isp.remote-service-timeout","sub_msg":"超时"}"#), "retryable", "15", Some("isp.remote-service-timeout")),
        (200, r(r#"{"code":15,"msg":"Remote service error"}"#), "retryable", "15", None),
        (200, r(r#"{"code":15,"msg":"Remote service error","sub_code":"isv.invalid-parameter:buyer_open_uid"}"#), "permanent", "15", Some("isv.invalid-parameter:buyer_open_uid")),
        (200, r(r#"{"code":21,"msg":"Remote connection error","sub_code":"isp.top-remote-connection-error"}"#), "retryable", "21", Some("isp.top-remote-connection-error")),
        (200, r(r#"{"code":25,"msg":"Invalid signature"}"#), "permanent", "25", None),
        (200, r(r#"{"code":29,"msg":"Invalid app Key"}"#), "permanent", "29", None),
        (200, r(r#"{"code":31,"msg":"Invalid timestamp"}"#), "permanent", "31", None),
        (200, r(r#"{"code":40,"msg":"Missing required arguments:sub_nick"}"#), "permanent", "40", None),
        (200, r(r#"{"code":"41","msg":"Invalid arguments:msg_type","request_id":"abc"}"#), "permanent", "41", None),
        (503, r(r#"{"code":40,"msg":"Missing required arguments"}"#), "retryable", "40", None),
        (502, "<html>Bad Gateway</html>".into(), "retryable", "http_502", None),
        (500, String::new(), "retryable", "http_500", None),
        (429, String::new(), "rate_limited", "http_429", None),
        (400, "<html>Bad Request</html>".into(), "retryable", "http_400", None),
        (200, "not json".into(), "retryable", "http_200", None),
        (200, "{}".into(), "retryable", "http_200", None),
        (200, r#"{"taobao_item_seller_get_response":{}}"#.into(), "retryable", "http_200", None),
    ];
    let mut c = connector(&[]);
    for (status, body, class, code, sub_code) in rows {
        let outcome = c.classify_send(&HttpResponse::json(status, body.clone()), NOW);
        assert_eq!(outcome.class(), class, "{status} {body}");
        let error = match &outcome {
            SendOutcome::Delivered { .. } => continue,
            SendOutcome::Retryable { error }
            | SendOutcome::RateLimited { error, .. }
            | SendOutcome::TokenExpired { error }
            | SendOutcome::Permanent { error } => error,
        };
        assert_eq!(error.http_status, status, "{body}");
        assert_eq!(error.code, code, "{body}");
        assert_eq!(error.sub_code.as_deref(), sub_code, "{body}");
        assert!(!error.message.is_empty(), "{body}");
    }
}

#[test]
fn classification_keeps_the_platform_details() {
    let mut c = connector(&[]);
    let ok = HttpResponse::json(
        200,
        r#"{"qianniu_cloudkefu_message_send_response":{"result":{"success":true,"msg_id":9007199254740993}}}"#,
    );
    assert_eq!(c.classify_send(&ok, NOW), SendOutcome::Delivered { platform_msg_id: Some("9007199254740993".into()) });
    let banned = HttpResponse::json(
        200,
        r#"{"error_response":{"code":7,"msg":"App Call Limited","sub_code":"accesscontrol.limited-by-app-access-count","sub_msg":"This ban will last 71 more seconds"}}"#,
    );
    match c.classify_send(&banned, NOW) {
        SendOutcome::RateLimited { error, retry_after_ms } => {
            assert_eq!(retry_after_ms, Some(71_000));
            assert_eq!(error.message, "App Call Limited: This ban will last 71 more seconds");
        }
        other => panic!("{other:?}"),
    }
    let failed = HttpResponse::json(
        200,
        r#"{"taobao_qianniu_cloudkefu_message_send_response":{"result":{"success":false,"error_code":"BUYER_OFFLINE","error_msg":"买家不在线"}}}"#,
    );
    match c.classify_send(&failed, NOW) {
        SendOutcome::Permanent { error } => assert_eq!(error.message, "买家不在线"),
        other => panic!("{other:?}"),
    }
    let html = HttpResponse::text(502, "<html>Bad Gateway</html>");
    match c.classify_send(&html, NOW) {
        SendOutcome::Retryable { error } => assert!(error.message.contains("HTTP 502"), "{}", error.message),
        other => panic!("{other:?}"),
    }
}

#[test]
fn debug_output_holds_no_secrets() {
    let mut c = connector(&[]);
    let shown = format!("{c:?}");
    for secret in ["helloworld", "session-abc", "refresh-xyz"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("12345678"), "the app key is not secret: {shown}");
    let answer = HttpResponse::json(200, r#"{"access_token":"session-new","expires_in":60}"#);
    c.token_refreshed(&answer, NOW).expect("grant");
    assert!(!format!("{c:?}").contains("session-new"));
}
