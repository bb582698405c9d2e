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
            pushes: vec![
                signed_push(r#"{"id":"m1","buyer":"b1","text":"在吗"}"#),
                // A numeric id beyond 2^53 is read exactly.
                signed_push(r#"{"id":7301234567890123401,"buyer":"b1","text":"在吗"}"#),
                signed_push("not json"),
            ],
            forged_pushes: vec![HttpPush {
                headers: vec![("x-echo-sign".into(), "0".repeat(64))],
                ..signed_push("{}")
            }],
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

/// Ids arrive as numbers or strings; both become the same exact text (a `String` field would
/// dead-letter the numeric one, a float would lose digits).
#[test]
fn a_numeric_id_is_read_exactly() {
    use huiliu_sdk::{Connector, PushOutcome};
    let mut echo = huiliu_echo::Echo::new(ShopConfig::new("shop-1").with("app_secret", "s3cret")).unwrap();
    for body in [
        r#"{"id":7301234567890123401,"buyer":"b1","text":"x"}"#,
        r#"{"id":"7301234567890123401","buyer":"b1","text":"x"}"#,
    ] {
        let PushOutcome::Accepted { events, dead_letters, .. } = echo.decode_push(&signed_push(body), 0) else {
            panic!("refused")
        };
        assert!(dead_letters.is_empty(), "{dead_letters:?}");
        assert_eq!(events[0].event_id, "7301234567890123401");
    }
}
