//! The SDK conformance kit, through the plugin's exported C table.

mod common;

use common::{NOW, config};
use huiliu_sdk::testkit::{Kit, Samples, assert_conformant};
use huiliu_sdk::{
    Buyer, ChannelData, Content, Frame, HttpResponse, OutgoingMessage, ReplyContext, ShopConfig, TransferRequest,
};
use huiliu_taobao::tmc::codec::{MessageType, TmcFrame, Value};

fn data_frame(id: i64, topic: &str, content: &str) -> ChannelData {
    let frame = TmcFrame::new(MessageType::Send)
        .with("__kind", Value::Int16(3))
        .with("id", Value::Int64(id))
        .with("topic", Value::Str(topic.into()))
        .with("content", Value::Str(content.into()))
        .with("outtime", Value::Date(NOW));
    ChannelData::Frame(Frame::Binary(frame.encode()))
}

fn samples() -> Samples {
    let connect_ack = TmcFrame::new(MessageType::ConnectAck).with_token(Some("tmc-token"));
    let mut reply_context = ReplyContext::new();
    reply_context.insert("sub_nick".into(), "汇流旗舰店:客服1".into());
    let buyer = Buyer { open_id: "AAHk5d-EAAeGwJedwSHpg8bT".into(), nick: Some("tb_buyer01".into()) };
    let message = |content: Vec<Content>| OutgoingMessage {
        staff_account: None,
        client_msg_id: "c-1".into(),
        shop: common::SHOP.into(),
        buyer: buyer.clone(),
        conversation: None,
        reply_context: reply_context.clone(),
        content,
    };
    Samples {
        channel_data: vec![(
            "tmc".into(),
            vec![
                ChannelData::Frame(Frame::Binary(connect_ack.encode())),
                data_frame(
                    1,
                    "taobao_qianniu_BuyerMessage",
                    r#"{"msg_id":"M-1","buyer_open_uid":"AAHk5d-EAAeGwJedwSHpg8bT","msg_type":"text","content":"在吗"}"#,
                ),
                data_frame(
                    9_007_199_254_740_993,
                    "taobao_trade_TradeBuyerPay",
                    r#"{"tid":9007199254740993,"buyer_nick":"tb_buyer01","payment":"99.00","status":"WAIT_SELLER_SEND_GOODS"}"#,
                ),
                data_frame(
                    3,
                    "taobao_refund_RefundCreated",
                    r#"{"refund_id":"1","buyer_nick":"n","refund_fee":"1.00"}"#,
                ),
                data_frame(4, "taobao_qianniu_BuyerMessage", "not json"),
            ],
        )],
        outgoing: vec![
            message(vec![Content::text("您好")]),
            message(vec![Content::image("https://img.alicdn.com/1.jpg")]),
            message(vec![Content::text("看看"), Content::product("123", None)]),
        ],
        send_responses: vec![
            HttpResponse::json(
                200,
                r#"{"taobao_qianniu_cloudkefu_message_send_response":{"result":{"success":true,"msg_id":"m1"}}}"#,
            ),
            HttpResponse::json(200, r#"{"error_response":{"code":27,"msg":"Invalid session"}}"#),
            HttpResponse::json(200, r#"{"error_response":{"code":7,"msg":"App Call Limited"}}"#),
            HttpResponse::text(502, "bad gateway"),
        ],
        // TMC is a WebSocket: no HTTP push to forge (its frames are checked by the fixtures).
        forged_pushes: vec![],
        transfers: vec![TransferRequest {
            shop: common::SHOP.into(),
            buyer,
            from_account: "汇流旗舰店:客服1".into(),
            to_account: "汇流旗舰店:售后1".into(),
            reply_context: ReplyContext::new(),
        }],
        token_responses: vec![HttpResponse::json(
            200,
            r#"{"access_token":"new","expires_in":86400,"refresh_token":"r2","re_expires_in":172800}"#,
        )],
        pushes: Vec::new(),
    }
}

fn kit(config: ShopConfig) -> Kit {
    Kit { entry: huiliu_taobao::huiliu_connector_entry, config, now: NOW, samples: samples() }
}

#[test]
fn conformant() {
    let report = assert_conformant(&kit(config()));
    let manifest = report.manifest.expect("manifest");
    assert_eq!(manifest.id, "taobao");
    assert_eq!(manifest.platform, "taobao");
}

#[test]
fn conformant_with_every_sign_method() {
    for method in ["md5", "hmac", "hmac-sha256"] {
        assert_conformant(&kit(config().with("sign_method", method)));
    }
}

/// The kit is not a rubber stamp: a shop that cannot refresh its token fails the declared
/// `token_refresh` capability.
#[test]
fn the_kit_catches_a_missing_capability_sample() {
    let failures = huiliu_sdk::testkit::check(&kit(config().with("refresh_token", ""))).expect_err("must fail");
    assert!(failures.iter().any(|f| f.contains("token_refresh")), "{failures:?}");
}

/// The connector's own Debug output (not reachable through the C table) shows no secret or token.
#[test]
fn debug_output_hides_every_secret() {
    huiliu_sdk::testkit::assert_debug_hides_secrets::<huiliu_taobao::TaobaoConnector>(&config());
}
