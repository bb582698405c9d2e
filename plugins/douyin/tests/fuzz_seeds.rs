//! The `douyin_push` fuzz target's inputs as an ordinary test (no nightly, no libFuzzer): every
//! seed in `fuzz/seeds/douyin_push/`, their prefixes and bit flips, fixed-seed random bytes and
//! oversized bodies go through `decode_push`, signed correctly (so the body decoders run) and
//! signed with text from the body (so the header check sees arbitrary signatures). Nothing may
//! panic. See `fuzz/README.md`.

use std::path::Path;

use huiliu_douyin::DouyinConnector;
use huiliu_douyin::push::MAX_BODY_BYTES;
use huiliu_douyin::sign::push_sign;
use huiliu_sdk::testkit::{Mutations, seed_inputs};
use huiliu_sdk::{Connector, HttpPush, PushOutcome, RejectKind, ShopConfig};

const SHOP_ID: &str = "shop-dy-1";
const APP_KEY: &str = "3409409348479354011";
const SECRET: &str = "2ad2355c-01d0-11f8-91dc-05a8cd1054b1";
const NOW: i64 = 1_700_000_000_000;

/// Seeds, their prefixes and one-bit flips, random bytes, oversized and deeply nested bodies.
fn inputs() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/douyin_push");
    let mut all = seed_inputs(&dir, Mutations { cut_step: 2, ..Mutations::default() }).all();
    all.push(vec![b' '; MAX_BODY_BYTES + 1]);
    all.push(format!("{}1{}", "[".repeat(500), "]".repeat(500)).into_bytes());
    all.push(format!(r#"[{{"tag":"9001","msg_id":"m","data":"{}"}}]"#, r#"{\"a\":["#.repeat(300)).into_bytes());
    all
}

fn push(body: &[u8], sign: &str) -> HttpPush {
    HttpPush {
        method: "POST".into(),
        path: format!("/hooks/douyin/{SHOP_ID}"),
        query: String::new(),
        headers: vec![("app-id".into(), APP_KEY.into()), ("event-sign".into(), sign.into())],
        body: body.to_vec(),
    }
}

#[test]
fn seeds_and_garbage_never_panic() {
    let config = ShopConfig::new(SHOP_ID).with("app_key", APP_KEY).with("app_secret", SECRET);
    let mut connector = DouyinConnector::new(config).expect("config");
    for body in inputs() {
        let expected = push_sign(APP_KEY, &body, SECRET);
        match connector.decode_push(&push(&body, &expected), NOW) {
            PushOutcome::Accepted { events, .. } => {
                assert!(body.len() <= MAX_BODY_BYTES);
                assert!(events.iter().all(|e| e.platform == "douyin" && e.shop == SHOP_ID && !e.event_id.is_empty()));
            }
            PushOutcome::Rejected { kind, .. } => assert_eq!(kind, RejectKind::TooLarge),
        }
        let sign = String::from_utf8_lossy(body.get(..32).unwrap_or(&body)).into_owned();
        if let PushOutcome::Accepted { .. } = connector.decode_push(&push(&body, &sign), NOW) {
            assert!(sign.trim().eq_ignore_ascii_case(&expected), "accepted a push signed `{sign}`");
        }
    }
}
