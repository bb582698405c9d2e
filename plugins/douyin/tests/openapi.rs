//! Outbound calls through the connector: the signed send request and the token-refresh cycle.
//! Signatures are recomputed here from the documented formula, independently of the crate.

use std::collections::BTreeMap;

use huiliu_douyin::DouyinConnector;
use huiliu_sdk::crypto::{Case, hmac_sha256_hex, md5_hex};
use huiliu_sdk::{Buyer, Connector, Content, ErrorKind, HttpRequest, HttpResponse, OutgoingMessage, ShopConfig};

const APP_KEY: &str = "3409409348479354011";
const SECRET: &str = "2ad2355c-01d0-11f8-91dc-05a8cd1054b1";
/// 2020-09-15 14:48:13 Beijing time (the vector's timestamp).
const NOW: i64 = 1_600_152_493_000;
const HOUR: i64 = 3_600_000;

fn config() -> ShopConfig {
    ShopConfig::new("shop-dy-1")
        .with("app_key", APP_KEY)
        .with("app_secret", SECRET)
        .with("access_token", "at-1")
        .with("refresh_token", "rt-1")
        .with("token_expires_at", (NOW + 10 * HOUR).to_string())
        .with("api_url", "http://127.0.0.1:9/")
}

fn reply(content: Vec<Content>) -> OutgoingMessage {
    OutgoingMessage {
        staff_account: None,
        client_msg_id: "out-42".into(),
        shop: "shop-dy-1".into(),
        buyer: Buyer { open_id: "1@#BuyerOpenIdAbC==".into(), nick: Some("小王".into()) },
        conversation: Some("conv-5c1a".into()),
        reply_context: Default::default(),
        content,
    }
}

/// The path and decoded query of a request.
fn split(request: &HttpRequest) -> (String, BTreeMap<String, String>) {
    let (path, query) = request.url.split_once('?').expect("a query string");
    (path.to_owned(), form_urlencoded::parse(query.as_bytes()).into_owned().collect())
}

/// The signature per PROTOCOLS.md §2.1, recomputed from the request's own fields.
fn expected_sign(query: &BTreeMap<String, String>, body: &[u8]) -> String {
    let p = format!(
        "app_key{}method{}param_json{}timestamp{}v{}",
        query["app_key"],
        query["method"],
        std::str::from_utf8(body).expect("UTF-8 body"),
        query["timestamp"],
        query["v"]
    );
    let parts: [&[u8]; 3] = [SECRET.as_bytes(), p.as_bytes(), SECRET.as_bytes()];
    match query["sign_method"].as_str() {
        "hmac-sha256" => hmac_sha256_hex(SECRET.as_bytes(), &parts, Case::Lower),
        "md5" => md5_hex(&parts, Case::Lower),
        other => panic!("unexpected sign_method {other}"),
    }
}

#[test]
fn send_request_is_fully_signed() {
    let mut connector = DouyinConnector::new(config()).unwrap();
    let request = connector.encode_send(&reply(vec![Content::text("您好，有货的<亲>")]), NOW).unwrap();

    assert_eq!(request.method, "POST");
    assert_eq!(request.headers, vec![("content-type".to_owned(), "application/json".to_owned())]);
    assert_eq!(
        String::from_utf8(request.body.clone()).unwrap(),
        r#"{"buyer_open_id":"1@#BuyerOpenIdAbC==","client_msg_id":"out-42","content":"您好，有货的<亲>","conversation_id":"conv-5c1a","msg_type":"text"}"#
    );
    let (path, query) = split(&request);
    assert_eq!(path, "http://127.0.0.1:9/im/sendMsg");
    assert_eq!(query["app_key"], APP_KEY);
    assert_eq!(query["method"], "im.sendMsg");
    assert_eq!(query["access_token"], "at-1");
    assert_eq!(query["timestamp"], "2020-09-15 14:48:13");
    assert_eq!(query["v"], "2");
    assert_eq!(query["sign_method"], "hmac-sha256");
    assert_eq!(query["sign"], expected_sign(&query, &request.body));
    assert!(request.url.contains("timestamp=2020-09-15%2014%3A48%3A13"), "space sent as %20: {}", request.url);
    let keys: Vec<&str> = request.url.split(['?', '&']).skip(1).filter_map(|kv| kv.split('=').next()).collect();
    assert_eq!(keys, ["app_key", "method", "access_token", "timestamp", "v", "sign_method", "sign"]);
}

#[test]
fn modeled_send_method_and_md5_are_configurable() {
    let config = config().with("send_method", "im.pigeon.sendMessage").with("sign_method", "md5");
    let mut connector = DouyinConnector::new(config).unwrap();
    let request = connector.encode_send(&reply(vec![Content::image("https://img/a.png")]), NOW).unwrap();
    let (path, query) = split(&request);
    assert_eq!(path, "http://127.0.0.1:9/im/pigeon/sendMessage");
    assert_eq!(query["method"], "im.pigeon.sendMessage");
    assert_eq!(query["sign_method"], "md5");
    assert_eq!(query["sign"].len(), 32);
    assert_eq!(query["sign"], expected_sign(&query, &request.body));
    assert!(String::from_utf8_lossy(&request.body).contains(r#""msg_type":"image""#));
}

#[test]
fn same_input_same_bytes_and_retries_keep_the_idempotency_key() {
    let message = reply(vec![Content::product("3571234567890123457", None)]);
    let a = DouyinConnector::new(config()).unwrap().encode_send(&message, NOW).unwrap();
    let b = DouyinConnector::new(config()).unwrap().encode_send(&message, NOW).unwrap();
    assert_eq!(a, b);
    let later = DouyinConnector::new(config()).unwrap().encode_send(&message, NOW + 1000).unwrap();
    assert_ne!(a.url, later.url, "the timestamp and sign move with the clock");
    assert_eq!(a.body, later.body, "the body, client_msg_id included, does not");
}

#[test]
fn send_refuses_what_it_cannot_sign() {
    let no_token = ShopConfig::new("s").with("app_key", APP_KEY).with("app_secret", SECRET);
    let err = DouyinConnector::new(no_token).unwrap().encode_send(&reply(vec![Content::text("hi")]), NOW).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Config);
    let err = DouyinConnector::new(config()).unwrap().encode_send(&reply(vec![]), NOW).unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
}

#[test]
fn token_refresh_cycle() {
    let mut connector = DouyinConnector::new(config()).unwrap();
    // Ten hours left: not yet (Douyin would hand back the same token).
    assert_eq!(connector.token_refresh(NOW, false), None);
    assert_eq!(connector.token_refresh(NOW + 9 * HOUR - 1, false), None);

    // Inside the last hour: due.
    let request = connector.token_refresh(NOW + 9 * HOUR, false).expect("due in the last hour");
    let (path, query) = split(&request);
    assert_eq!(path, "http://127.0.0.1:9/token/refresh");
    assert_eq!(query["method"], "token.refresh");
    assert!(!query.contains_key("access_token"), "the refresh call is authorized by the refresh token");
    assert_eq!(request.body, br#"{"grant_type":"refresh_token","refresh_token":"rt-1"}"#);
    assert_eq!(query["sign"], expected_sign(&query, &request.body));

    let answer = HttpResponse::json(
        200,
        r#"{"code":10000,"msg":"success","data":{"access_token":"at-2","expires_in":604800,"refresh_token":"rt-2","shop_id":4463798}}"#,
    );
    let at = NOW + 9 * HOUR + 500;
    let grant = connector.token_refreshed(&answer, at).unwrap();
    assert_eq!(grant.access_token, "at-2");
    assert_eq!(grant.expires_at, at + 604_800_000);
    assert_eq!(grant.refresh_token.as_deref(), Some("rt-2"));

    // The new token is used at once, and the next refresh uses the new refresh token.
    let (_, query) = split(&connector.encode_send(&reply(vec![Content::text("hi")]), at).unwrap());
    assert_eq!(query["access_token"], "at-2");
    assert_eq!(connector.token_refresh(at, false), None, "fresh for a week");
    let forced = connector.token_refresh(at, true).expect("forced after a token error");
    assert!(String::from_utf8_lossy(&forced.body).contains("rt-2"));
}

#[test]
fn a_failed_refresh_keeps_the_old_token() {
    let mut connector = DouyinConnector::new(config()).unwrap();
    let answer = HttpResponse::json(200, r#"{"code":40003,"msg":"参数不合法","sub_code":"isv.refresh-token-invalid"}"#);
    let err = connector.token_refreshed(&answer, NOW).unwrap_err();
    // An invalid refresh token is the grant refused: the shop must authorize again.
    assert_eq!(err.kind, ErrorKind::Reauthorize);
    assert!(err.message.contains("isv.refresh-token-invalid"), "{}", err.message);
    // A service error is temporary.
    let busy = HttpResponse::json(200, r#"{"code":20000,"msg":"服务不可用","sub_code":"isp.service-error"}"#);
    assert_eq!(connector.token_refreshed(&busy, NOW).unwrap_err().kind, ErrorKind::Platform);
    let (_, query) = split(&connector.encode_send(&reply(vec![Content::text("hi")]), NOW).unwrap());
    assert_eq!(query["access_token"], "at-1");
}

#[test]
fn no_refresh_without_a_refresh_token() {
    let config = ShopConfig::new("s").with("app_key", APP_KEY).with("app_secret", SECRET).with("access_token", "a");
    assert_eq!(DouyinConnector::new(config).unwrap().token_refresh(NOW, true), None);
}
