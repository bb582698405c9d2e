//! The SDK conformance kit, through the exported C table, with a sample for every capability.

use huiliu_sdk::testkit::{Kit, Samples, assert_conformant};
use huiliu_sdk::{Buyer, ChannelData, Content, HttpResponse, OutgoingMessage, ShopConfig};

const NOW: i64 = 1_700_000_000_000;

fn config() -> ShopConfig {
    ShopConfig::new("shop-jd-1")
        .with("app_key", "testappkey")
        .with("app_secret", "testappsecret")
        .with("access_token", "testtoken")
        .with("refresh_token", "testrefresh")
        .with("token_expires_at", (NOW + 86_400_000 * 30).to_string())
        .with("api_url", "http://127.0.0.1:18080/routerjson")
        .with("oauth_url", "http://127.0.0.1:18080/oauth2/refresh_token")
        .with("stream_url", "http://127.0.0.1:18081/stream")
        .with("waiter", "shop_default_waiter")
}

fn outgoing(id: &str, content: Vec<Content>) -> OutgoingMessage {
    OutgoingMessage {
        staff_account: None,
        client_msg_id: id.into(),
        shop: "shop-jd-1".into(),
        buyer: Buyer { open_id: "o-buyer-123".into(), nick: Some("京东用户".into()) },
        conversation: Some("sid-7f3a".into()),
        reply_context: [("waiter".to_owned(), "shop_waiter_01".to_owned())].into(),
        content,
    }
}

fn stream_samples() -> Vec<ChannelData> {
    let chat = r#"{"packet":{"code":202,"msg":{"type":"dd_chat","msg_id":"jd-msg-1","sid":"sid-7f3a","customer_open_id":"o-buyer-123","customer_nick":"京东用户","waiter":"shop_waiter_01","msg_type":"text","content":"请问有货吗","time":1699999999123,"vip_level":1}}}"#;
    let as_string = r#"{"packet":{"code":202,"msg":"{\"type\":\"dd_chat\",\"msg_id\":9007199254740993,\"customer_open_id\":\"o-buyer-123\",\"msg_type\":\"sku\",\"sku_id\":100012043978}"}}"#;
    let body = format!(
        "{{\"packet\":{{\"code\":200,\"msg\":\"connected\"}}}}\n{chat}\n{as_string}\n{{\"packet\":{{\"code\":201}}}}\n"
    );
    let bytes = body.into_bytes();
    // Cut mid-line and inside a multi-byte character to exercise reassembly too.
    let cut = bytes.iter().position(|b| *b >= 0x80).map_or(10, |i| i + 1);
    let (a, b) = bytes.split_at(cut);
    vec![
        ChannelData::Response(HttpResponse { status: 200, headers: Vec::new(), body: Vec::new() }),
        ChannelData::Chunk(a.to_vec()),
        ChannelData::Chunk(b.to_vec()),
        ChannelData::Chunk(b"{\"packet\":{\"code\":203,\"msg\":\"lost 1\"}}\nnot json\n".to_vec()),
    ]
}

#[test]
fn jd_connector_is_conformant() {
    let report = assert_conformant(&Kit {
        entry: huiliu_jd::huiliu_connector_entry,
        config: config(),
        now: NOW,
        samples: Samples {
            channel_data: vec![("stream".to_owned(), stream_samples())],
            outgoing: vec![
                outgoing("hl-1", vec![Content::text("您好，有货的")]),
                outgoing("hl-2", vec![Content::text("推荐"), Content::product("100012043978", None)]),
                outgoing("hl-3", vec![Content::image("https://img30.360buyimg.com/x.jpg")]),
                outgoing("hl-4", vec![Content::order("290000000000000001")]),
            ],
            send_responses: vec![
                HttpResponse::json(
                    200,
                    r#"{"jingdong_im_pop_message_send_responce":{"code":"0","result":{"success":true,"msg_id":"jd-out-1"}}}"#,
                ),
                HttpResponse::json(
                    200,
                    r#"{"error_response":{"code":"19","zh_desc":"token已过期","en_desc":"Invalid access_token"}}"#,
                ),
                HttpResponse::json(
                    200,
                    r#"{"error_response":{"code":"2","zh_desc":"调用次数超限","en_desc":"App call limited"}}"#,
                ),
                HttpResponse::text(502, "bad gateway"),
            ],
            token_responses: vec![
                HttpResponse::json(
                    200,
                    r#"{"access_token":"new-token","expires_in":31536000,"refresh_token":"new-refresh","scope":"snsapi_base","open_id":"o","uid":"u","time":1700000000000,"token_type":"bearer","code":0}"#,
                ),
                HttpResponse::json(200, r#"{"code":"0","data":{"access_token":"t2","expires_in":"86400"}}"#),
            ],
            ..Samples::default()
        },
    });
    for cap in ["capability stream", "capability send", "capability token_refresh", "determinism"] {
        assert!(report.passed.iter().any(|p| p == cap), "{cap} not checked: {:?}", report.passed);
    }
}

/// The connector's own Debug output (not reachable through the C table) shows no secret or token.
#[test]
fn debug_output_hides_every_secret() {
    huiliu_sdk::testkit::assert_debug_hides_secrets::<huiliu_jd::JdConnector>(&config());
}
