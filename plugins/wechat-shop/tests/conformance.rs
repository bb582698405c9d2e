//! The SDK conformance kit, through the exported C table exactly as the gateway loads it.

mod common;

use common::*;
use huiliu_sdk::testkit::{Kit, Samples, assert_conformant, assert_debug_hides_secrets};
use huiliu_sdk::{Capability, Content, HttpPush, HttpResponse};
use huiliu_wechat_shop::WechatShopConnector;
use huiliu_wechat_shop::crypto::sorted_sha1;

fn verification_get() -> HttpPush {
    let sig = sorted_sha1(&[TOKEN, &TS.to_string(), "1514711492"]);
    HttpPush {
        method: "GET".into(),
        path: format!("/hooks/wechat-shop/{SHOP}"),
        query: format!("signature={sig}&echostr=4375120948345356249&timestamp={TS}&nonce=1514711492"),
        headers: vec![],
        body: vec![],
    }
}

fn kit() -> Kit {
    let order = format!(
        r#"{{"ToUserName":"gh_*","FromUserName":"o7eep4jVQelr2eyoDSmE1buyer","CreateTime":{TS},"MsgType":"event","Event":"channels_ec_order_pay","order_info":{{"order_id":3705115058471208928}}}}"#
    );
    // A forged push: the plain body of a real chat event under a signature made with another token.
    let mut forged = plain(&chat("text", r#"{"content":"在吗"}"#));
    forged.query = forged.query.replace(
        &sorted_sha1(&[TOKEN, &TS.to_string(), "486452656"]),
        &sorted_sha1(&["BBBBB", &TS.to_string(), "486452656"]),
    );
    Kit {
        entry: huiliu_wechat_shop::huiliu_connector_entry,
        config: config(),
        now: NOW,
        samples: Samples {
            pushes: vec![
                plain(&chat("text", r#"{"content":"在吗"}"#)),
                sealed(&chat(
                    "image",
                    r#"{"cos_url":"https://channels.weixin.qq.com/shop/commkf/downloadmedia?encrypted_param=x"}"#,
                )),
                sealed(&order),
                verification_get(),
            ],
            forged_pushes: vec![forged, sealed_for(&order, "wx0000000000000000")],
            outgoing: vec![
                reply("out-1", vec![Content::text("您好")]),
                reply("out-2", vec![Content::image("https://channels.weixin.qq.com/shop/commkf/downloadmedia?x=1")]),
                reply("out-3", vec![Content::order("3705115058471208928")]),
            ],
            send_responses: vec![
                HttpResponse::json(200, r#"{"msg_id":"3893720449229537280","errcode":0,"errmsg":"ok"}"#),
                HttpResponse::json(200, r#"{"errcode":45009,"errmsg":"reach max api daily quota limit"}"#),
                HttpResponse::json(200, r#"{"errcode":42001,"errmsg":"access_token expired"}"#),
                HttpResponse::json(502, "<html>bad gateway</html>"),
            ],
            token_responses: vec![HttpResponse::json(200, r#"{"access_token":"ACCESS_TOKEN_2","expires_in":7200}"#)],
            ..Samples::default()
        },
    }
}

#[test]
fn conformance() {
    let report = assert_conformant(&kit());
    let manifest = report.manifest.expect("the kit reports the manifest");
    assert_eq!(manifest.capabilities, [Capability::Push, Capability::Send, Capability::TokenRefresh]);
    for check in [
        "manifest",
        "capability push",
        "capability send",
        "capability token_refresh",
        "forged pushes refused",
        "secrets stay out of messages",
        "determinism",
    ] {
        assert!(report.passed.iter().any(|p| p == check), "{check} not reported: {:?}", report.passed);
    }
}

#[test]
fn debug_output_hides_every_secret() {
    assert_debug_hides_secrets::<WechatShopConnector>(&config());
}

/// The kit can fail with this connector: a sample signed with the wrong token is refused.
#[test]
fn conformance_kit_catches_a_refused_sample() {
    let mut kit = kit();
    kit.samples.pushes[0].query = kit.samples.pushes[0].query.replace("signature=", "signature=0");
    let failures = huiliu_sdk::testkit::check(&kit).expect_err("a refused sample push is a failure");
    assert!(failures.iter().any(|f| f.contains("sample push #0 was rejected")), "{failures:?}");
}
