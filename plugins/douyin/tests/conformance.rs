//! The SDK conformance kit, through the exported C table exactly as the gateway loads it.

use huiliu_sdk::crypto::{Case, md5_hex};
use huiliu_sdk::testkit::{Kit, Samples, assert_conformant};
use huiliu_sdk::{Buyer, Capability, Content, HttpPush, HttpResponse, OutgoingMessage, ShopConfig};

const APP_KEY: &str = "3409409348479354011";
const SECRET: &str = "2ad2355c-01d0-11f8-91dc-05a8cd1054b1";
const NOW: i64 = 1_700_000_000_000;

fn signed_push(body: &str) -> HttpPush {
    HttpPush {
        method: "POST".into(),
        path: "/hooks/douyin/shop-dy-1".into(),
        query: String::new(),
        headers: vec![
            ("app-id".into(), APP_KEY.into()),
            ("event-sign".into(), md5_hex(&[APP_KEY.as_bytes(), body.as_bytes(), SECRET.as_bytes()], Case::Lower)),
        ],
        body: body.as_bytes().to_vec(),
    }
}

fn reply(client_msg_id: &str, content: Vec<Content>) -> OutgoingMessage {
    OutgoingMessage {
        staff_account: None,
        client_msg_id: client_msg_id.into(),
        shop: "shop-dy-1".into(),
        buyer: Buyer { open_id: "1@#BuyerOpenIdAbC==".into(), nick: None },
        conversation: Some("conv-5c1a".into()),
        reply_context: Default::default(),
        content,
    }
}

fn kit() -> Kit {
    let chat = r#"[{"tag":"9001","msg_id":"push-1","data":"{\"msg_id\":\"7301234567890123401\",\"conversation_id\":\"conv-5c1a\",\"buyer_open_id\":\"1@#BuyerOpenIdAbC==\",\"msg_type\":\"text\",\"content\":\"在吗\",\"create_time\":1699999990}"}]"#;
    let orders = r#"[{"tag":"101","msg_id":"7301000000000000101","data":"{\"p_id\":4781320682406083640,\"pay_amount\":9900,\"pay_time\":1699999990,\"buyer_open_id\":\"1@#BuyerOpenIdAbC==\"}"},{"tag":"200","msg_id":"7301000000000000200","data":"{\"aftersale_id\":\"7123456789012345679\",\"p_id\":\"4781320682406083640\",\"refund_amount\":4950,\"buyer_open_id\":\"1@#BuyerOpenIdAbC==\"}"}]"#;
    Kit {
        entry: huiliu_douyin::huiliu_connector_entry,
        config: ShopConfig::new("shop-dy-1")
            .with("app_key", APP_KEY)
            .with("app_secret", SECRET)
            .with("access_token", "at-1")
            .with("refresh_token", "rt-1")
            .with("token_expires_at", (NOW + 3_600_000).to_string())
            .with("api_url", "http://127.0.0.1:9"),
        now: NOW,
        samples: Samples {
            pushes: vec![
                signed_push(chat),
                signed_push(orders),
                signed_push(r#"[{"tag":"0","msg_id":"0","data":"{}"}]"#),
            ],
            outgoing: vec![
                reply("out-1", vec![Content::text("您好")]),
                reply("out-2", vec![Content::image("https://img/a.png")]),
                reply("out-3", vec![Content::product("3571234567890123457", None), Content::text("这款")]),
            ],
            send_responses: vec![
                HttpResponse::json(200, r#"{"code":10000,"msg":"success","data":{"msg_id":"m-1"}}"#),
                HttpResponse::json(200, r#"{"code":60000,"msg":"流量超限","sub_code":"isv.traffic-limited"}"#),
                HttpResponse::json(200, r#"{"code":40003,"msg":"x","sub_code":"isv.access-token-expired"}"#),
                HttpResponse::json(502, "<html>bad gateway</html>"),
            ],
            token_responses: vec![HttpResponse::json(
                200,
                r#"{"code":10000,"msg":"success","data":{"access_token":"at-2","expires_in":604800,"refresh_token":"rt-2"}}"#,
            )],
            ..Samples::default()
        },
    }
}

#[test]
fn conformance() {
    let report = assert_conformant(&kit());
    let manifest = report.manifest.expect("the kit reports the manifest");
    assert_eq!(manifest.capabilities, [Capability::Push, Capability::Send, Capability::TokenRefresh]);
    for check in ["capability push", "capability send", "capability token_refresh", "determinism"] {
        assert!(report.passed.iter().any(|p| p == check), "{check} not reported: {:?}", report.passed);
    }
}

/// The kit must be able to fail with this connector: a push signed with the wrong secret is a
/// sample the connector refuses.
#[test]
fn conformance_kit_catches_a_refused_sample() {
    let mut kit = kit();
    kit.samples.pushes[0].headers[1].1 = "0".repeat(32);
    let failures = huiliu_sdk::testkit::check(&kit).expect_err("a refused sample push is a failure");
    assert!(failures.iter().any(|f| f.contains("sample push #0 was rejected")), "{failures:?}");
}

/// The connector's own Debug output (not reachable through the C table) shows no secret or token.
#[test]
fn debug_output_hides_every_secret() {
    huiliu_sdk::testkit::assert_debug_hides_secrets::<huiliu_douyin::DouyinConnector>(&kit().config);
}
