//! The connector's behaviour across calls: configuration, token lifecycle, channel edges.

use huiliu_jd::JdConnector;
use huiliu_sdk::{
    Buyer, ChannelControl, ChannelData, ChannelOpen, Connector, Content, ErrorKind, Frame, HttpResponse, Millis,
    OutgoingMessage, RejectKind, ShopConfig,
};

const NOW: Millis = 1_700_000_000_000;
const DAY: Millis = 86_400_000;

fn config() -> ShopConfig {
    ShopConfig::new("shop-jd-1")
        .with("app_key", "testappkey")
        .with("app_secret", "testappsecret")
        .with("access_token", "old-token")
        .with("refresh_token", "old-refresh")
        .with("token_expires_at", (NOW + 30 * DAY).to_string())
        .with("oauth_url", "http://127.0.0.1:18080/oauth2/refresh_token")
        .with("api_url", "http://127.0.0.1:18080/routerjson")
}

fn reply() -> OutgoingMessage {
    OutgoingMessage {
        staff_account: None,
        client_msg_id: "hl-1".into(),
        shop: "shop-jd-1".into(),
        buyer: Buyer { open_id: "o-buyer-123".into(), nick: None },
        conversation: Some("sid-1".into()),
        reply_context: [("waiter".to_owned(), "w1".to_owned())].into(),
        content: vec![Content::text("您好")],
    }
}

fn query_pairs(url: &str) -> Vec<(String, String)> {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}

#[test]
fn manifest_declares_what_is_implemented() {
    let m = JdConnector::manifest();
    assert_eq!((m.id.as_str(), m.platform.as_str()), ("jd", "jd"));
    let caps: Vec<&str> = m.capabilities.iter().map(|c| c.as_str()).collect();
    assert_eq!(caps, ["stream", "send", "token_refresh"]);
    let modeled: Vec<&str> = m.config_keys.iter().filter(|k| k.modeled).map(|k| k.name.as_str()).collect();
    assert_eq!(modeled, ["send_method", "chat_type"]);
    let secret: Vec<&str> = m.config_keys.iter().filter(|k| k.secret).map(|k| k.name.as_str()).collect();
    assert_eq!(secret, ["app_secret", "access_token", "refresh_token"]);
}

#[test]
fn bad_config_names_every_bad_key() {
    let err = JdConnector::new(ShopConfig::new("s").with("api_url", "ftp://x")).expect_err("invalid");
    assert_eq!(err.kind, ErrorKind::Config);
    for key in ["app_key", "app_secret", "api_url"] {
        assert!(err.message.contains(&format!("`{key}`")), "{}", err.message);
    }
}

#[test]
fn refresh_only_when_due_forced_or_tokenless() {
    let mut c = JdConnector::new(config()).expect("valid");
    assert_eq!(c.token_refresh(NOW, false), None, "30 days left");
    assert_eq!(c.token_refresh(NOW + 29 * DAY - 1, false), None, "just over a day left");
    assert!(c.token_refresh(NOW + 29 * DAY, false).is_some(), "one day left");
    let forced = c.token_refresh(NOW, true).expect("forced");
    assert_eq!(forced.url, "http://127.0.0.1:18080/oauth2/refresh_token");
    let body = String::from_utf8(forced.body).expect("utf-8");
    assert!(body.contains("grant_type=refresh_token") && body.contains("refresh_token=old-refresh"), "{body}");

    let mut tokenless = JdConnector::new(config().with("access_token", "")).expect("valid");
    assert!(tokenless.token_refresh(NOW, false).is_some(), "no access token yet");

    let mut no_refresh = JdConnector::new(config().with("refresh_token", "")).expect("valid");
    assert_eq!(no_refresh.token_refresh(NOW + 40 * DAY, true), None, "nothing to refresh with");
}

#[test]
fn a_refreshed_token_is_used_at_once() {
    let mut c = JdConnector::new(config()).expect("valid");
    let before = c.encode_send(&reply(), NOW).expect("encodes");
    assert!(query_pairs(&before.url).contains(&("access_token".into(), "old-token".into())));

    let answer = r#"{"access_token":"new-token","expires_in":31536000,"refresh_token":"new-refresh","time":1700000000000,"token_type":"bearer","code":0}"#;
    let grant = c.token_refreshed(&HttpResponse::json(200, answer), NOW).expect("grant");
    assert_eq!(grant.access_token, "new-token");
    assert_eq!(grant.expires_at, NOW + 31_536_000_000);

    let after = c.encode_send(&reply(), NOW).expect("encodes");
    assert!(query_pairs(&after.url).contains(&("access_token".into(), "new-token".into())));
    assert_eq!(c.token_refresh(NOW, false), None, "fresh token is not due");
    let next = String::from_utf8(c.token_refresh(NOW, true).expect("forced").body).expect("utf-8");
    assert!(next.contains("refresh_token=new-refresh"), "{next}");
}

#[test]
fn a_failed_refresh_keeps_the_old_token() {
    let mut c = JdConnector::new(config()).expect("valid");
    let err = c
        .token_refreshed(&HttpResponse::json(200, r#"{"code":402,"msg":"refresh_token无效"}"#), NOW)
        .expect_err("refused");
    assert!(err.message.contains("refresh_token无效"), "{}", err.message);
    let req = c.encode_send(&reply(), NOW).expect("encodes");
    assert!(query_pairs(&req.url).contains(&("access_token".into(), "old-token".into())));
}

#[test]
fn send_without_any_token_is_a_config_error() {
    let mut c = JdConnector::new(config().with("access_token", "")).expect("valid");
    let err = c.encode_send(&reply(), NOW).expect_err("no token");
    assert_eq!(err.kind, ErrorKind::Config);
}

#[test]
fn two_instances_sign_identically() {
    let mut a = JdConnector::new(config()).expect("valid");
    let mut b = JdConnector::new(config()).expect("valid");
    assert_eq!(a.encode_send(&reply(), NOW), b.encode_send(&reply(), NOW));
    assert_ne!(a.encode_send(&reply(), NOW), a.encode_send(&reply(), NOW + 1), "timestamp is signed");
}

#[test]
fn only_the_stream_channel_exists() {
    let mut c = JdConnector::new(config()).expect("valid");
    assert_eq!(c.channel_open("ws", NOW).expect_err("unknown").kind, ErrorKind::InvalidInput);
    assert!(matches!(c.channel_open("stream", NOW), Ok(ChannelOpen::Stream { .. })));
    let out = c.channel_data("ws", ChannelData::Chunk(b"{}\n".to_vec()), NOW);
    assert_eq!(out.rejected.first().map(|r| r.0), Some(RejectKind::Malformed));
    let out = c.channel_data("stream", ChannelData::Frame(Frame::Text("hi".into())), NOW);
    assert_eq!(out.rejected.first().map(|r| r.0), Some(RejectKind::Malformed));
    assert_eq!(out.control, ChannelControl::Continue);
}

#[test]
fn events_carry_the_configured_shop() {
    let mut c = JdConnector::new(config()).expect("valid");
    c.channel_open("stream", NOW).expect("opens");
    let line = br#"{"packet":{"code":202,"msg":{"type":"dd_chat","msg_id":"m1","customer_open_id":"b","content":"x"}}}
"#;
    let out = c.channel_data("stream", ChannelData::Chunk(line.to_vec()), NOW);
    let event = out.batches.first().and_then(|b| b.events.first()).expect("one event");
    assert_eq!((event.shop.as_str(), event.platform.as_str()), ("shop-jd-1", "jd"));
    assert!(out.batches.iter().all(|b| b.on_durable.is_empty() && b.on_failure.is_empty()), "the stream has no acks");
}
