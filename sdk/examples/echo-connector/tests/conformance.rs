use huiliu_sdk::crypto::{hmac_sha256_hex, Case};
use huiliu_sdk::testkit::{assert_conformant, Kit, Samples};
use huiliu_sdk::{Buyer, Content, HttpPush, HttpResponse, OutgoingMessage, ShopConfig};

fn signed_push(body: &str) -> HttpPush {
    HttpPush {
        method: "POST".into(),
        path: "/hooks/echo/shop-1".into(),
        query: String::new(),
        headers: vec![("x-echo-sign".into(), hmac_sha256_hex(b"s3cret", &[body.as_bytes()], Case::Lower))],
        body: body.as_bytes().to_vec(),
    }
}

#[test]
fn echo_is_conformant() {
    let report = assert_conformant(&Kit {
        entry: huiliu_echo::huiliu_connector_entry,
        config: ShopConfig::new("shop-1").with("app_secret", "s3cret"),
        now: 1_700_000_000_000,
        samples: Samples {
            pushes: vec![signed_push(r#"{"id":"m1","buyer":"b1","text":"在吗"}"#), signed_push("not json")],
            outgoing: vec![OutgoingMessage {
                staff_account: None,
                client_msg_id: "c1".into(),
                shop: "shop-1".into(),
                buyer: Buyer { open_id: "b1".into(), nick: None },
                conversation: None,
                reply_context: Default::default(),
                content: vec![Content::text("在的，亲")],
            }],
            send_responses: vec![
                HttpResponse::json(200, r#"{"ok":true,"id":"p1"}"#),
                HttpResponse::json(200, r#"{"ok":false,"error":"busy","retry":true}"#),
            ],
            ..Samples::default()
        },
    });
    println!("{report:#?}");
}
