//! The conformance kit must catch what it claims to catch, through the real export glue.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use huiliu_sdk::abi::export::{Exported, build};
use huiliu_sdk::abi::host::{CallError, Plugin, TableError};
use huiliu_sdk::abi::{ABI_VERSION, PluginTable};
use huiliu_sdk::testkit::{Kit, Samples, check};
use huiliu_sdk::*;

/// Defines an entry function for connector `$t` (what `export_connector!` does, minus the
/// exported symbol, so one test crate can hold several plugins).
macro_rules! entry {
    ($name:ident, $t:ty) => {
        extern "C" fn $name() -> *const PluginTable {
            static E: OnceLock<Exported> = OnceLock::new();
            E.get_or_init(build::<$t>).table()
        }
    };
}

fn manifest(caps: Vec<Capability>) -> Manifest {
    Manifest {
        id: "test".into(),
        platform: "test".into(),
        version: "1.0.0".into(),
        description: "test connector".into(),
        capabilities: caps,
        config_keys: vec![],
    }
}

fn accepted(events: Vec<InboundEvent>) -> PushOutcome {
    PushOutcome::Accepted {
        events,
        dead_letters: vec![],
        ack: HttpResponse::text(200, "ok"),
        nack: HttpResponse::text(500, "fail"),
        ignored: vec![],
        lookups: Vec::new(),
    }
}

/// Accepts every push; panics when the body starts with `!`.
struct Fragile;
impl Connector for Fragile {
    fn manifest() -> Manifest {
        manifest(vec![Capability::Push])
    }
    fn new(_: ShopConfig) -> Result<Self, ConnectorError> {
        Ok(Fragile)
    }
    fn connections(&self) -> Vec<ConnectionNeed> {
        vec![ConnectionNeed::PushRoute]
    }
    fn decode_push(&mut self, push: &HttpPush, _: Millis) -> PushOutcome {
        if push.body.first() == Some(&b'!') {
            panic!("boom on {:?}", push.body);
        }
        accepted(vec![])
    }
}
entry!(fragile_entry, Fragile);

/// Declares `send` but signs with a counter: not deterministic.
struct Counter(u64);
static CALLS: AtomicU64 = AtomicU64::new(0);
impl Connector for Counter {
    fn manifest() -> Manifest {
        manifest(vec![Capability::Send])
    }
    fn new(_: ShopConfig) -> Result<Self, ConnectorError> {
        Ok(Counter(CALLS.fetch_add(1, Ordering::SeqCst)))
    }
    fn encode_send(&mut self, _: &OutgoingMessage, _: Millis) -> Result<HttpRequest, ConnectorError> {
        self.0 += 1;
        Ok(HttpRequest { method: "POST".into(), url: format!("http://x/{}", self.0), headers: vec![], body: vec![] })
    }
    fn classify_send(&mut self, _: &HttpResponse, _: Millis) -> SendOutcome {
        SendOutcome::Delivered { platform_msg_id: None }
    }
}
entry!(counter_entry, Counter);

/// Panics when created.
struct PanicsInNew;
impl Connector for PanicsInNew {
    fn manifest() -> Manifest {
        manifest(vec![Capability::Push])
    }
    fn new(_: ShopConfig) -> Result<Self, ConnectorError> {
        panic!("cannot start")
    }
}
entry!(panics_in_new_entry, PanicsInNew);

fn outgoing() -> OutgoingMessage {
    OutgoingMessage {
        staff_account: None,
        client_msg_id: "c1".into(),
        shop: "s".into(),
        buyer: Buyer { open_id: "b".into(), nick: None },
        conversation: None,
        reply_context: Default::default(),
        content: vec![Content::text("hi")],
    }
}

fn push(body: &[u8]) -> HttpPush {
    HttpPush { method: "POST".into(), path: "/".into(), query: String::new(), headers: vec![], body: body.to_vec() }
}

#[test]
fn kit_finds_a_decoder_that_panics() {
    let failures = check(&Kit {
        entry: fragile_entry,
        config: ShopConfig::new("s"),
        now: 0,
        samples: Samples { pushes: vec![push(b"{}"), push(b"!x")], ..Samples::default() },
    })
    .unwrap_err();
    assert!(failures.iter().any(|f| f.contains("panicked") && f.contains("boom")), "{failures:#?}");
}

#[test]
fn kit_finds_missing_samples_and_nondeterminism() {
    let failures = check(&Kit {
        entry: counter_entry,
        config: ShopConfig::new("s"),
        now: 0,
        samples: Samples { outgoing: vec![outgoing()], ..Samples::default() },
    })
    .unwrap_err();
    assert!(failures.iter().any(|f| f.contains("send_responses is empty")), "{failures:#?}");
    assert!(failures.iter().any(|f| f.contains("differs between two instances")), "{failures:#?}");
}

#[test]
fn a_panic_is_an_error_for_that_call_only() {
    // SAFETY: the entry function is in this process; its table is a static.
    let plugin = unsafe { Plugin::from_table(fragile_entry()) }.unwrap();
    assert_eq!(plugin.abi_version(), ABI_VERSION);
    assert_eq!(plugin.init().unwrap().id, "test");
    let instance = plugin.create(&ShopConfig::new("s")).unwrap();
    let err = instance.decode_push(&push(b"!"), 0).unwrap_err();
    assert!(matches!(&err, CallError::Panicked(m) if m.contains("boom")), "{err:?}");
    // The instance (and its poisoned lock) keeps working.
    assert!(matches!(instance.decode_push(&push(b"{}"), 0), Ok(PushOutcome::Accepted { .. })));
}

#[test]
fn a_panic_in_new_is_reported_not_propagated() {
    // SAFETY: as above.
    let plugin = unsafe { Plugin::from_table(panics_in_new_entry()) }.unwrap();
    let err = plugin.create(&ShopConfig::new("s")).unwrap_err();
    assert!(matches!(&err, CallError::Panicked(m) if m.contains("cannot start")), "{err:?}");
}

#[test]
fn tables_that_are_not_ours_are_refused_before_any_call() {
    static FAKE: [u64; 32] = [0; 32];
    // SAFETY: a zeroed, process-lifetime buffer larger than a table: readable, wrong magic.
    let err = unsafe { Plugin::from_table(FAKE.as_ptr().cast()) }.unwrap_err();
    assert_eq!(err, TableError::BadMagic);
    // SAFETY: null is allowed.
    assert_eq!(unsafe { Plugin::from_table(std::ptr::null()) }.unwrap_err(), TableError::Null);
}

#[test]
fn events_round_trip_the_wire_format() {
    let event = InboundEvent {
        platform: "taobao".into(),
        shop: "s".into(),
        event_id: "18446744073709551615".into(),
        buyer: Buyer { open_id: "b".into(), nick: Some("小王".into()) },
        occurred_at: 1,
        kind: EventKind::BuyerMessage(BuyerMessage {
            conversation: Some("c".into()),
            content: vec![Content::text("在吗"), Content::order("4242"), Content::image("http://i")],
            vip: VipHint { member_level: 2, fans_level: 1 },
            reply_context: [("sub_nick".to_owned(), "店:1".to_owned())].into(),
        }),
    };
    let bytes = huiliu_sdk::abi::encode(&event).unwrap();
    assert_eq!(huiliu_sdk::abi::decode::<InboundEvent>(&bytes).unwrap(), event);
    assert_eq!(fallback_text(&[Content::text("在吗"), Content::order("42")]), "在吗 [订单] 42");
}

/// Signs nothing, checks nothing: accepts every push and parses it. The kit must refuse it.
struct Trusting;
impl Connector for Trusting {
    fn manifest() -> Manifest {
        let mut m = manifest(vec![Capability::Push]);
        m.config_keys = vec![ConfigKey::required("app_secret", "signing secret").secret()];
        m
    }
    fn new(_: ShopConfig) -> Result<Self, ConnectorError> {
        Ok(Trusting)
    }
    fn connections(&self) -> Vec<ConnectionNeed> {
        vec![ConnectionNeed::PushRoute]
    }
    fn decode_push(&mut self, _: &HttpPush, _: Millis) -> PushOutcome {
        accepted(vec![])
    }
}
entry!(trusting_entry, Trusting);

/// Verifies a signature header, but names the secret when it refuses.
#[derive(Debug)]
struct Leaky(String);
impl Connector for Leaky {
    fn manifest() -> Manifest {
        let mut m = manifest(vec![Capability::Push]);
        m.config_keys = vec![ConfigKey::required("app_secret", "signing secret").secret()];
        m
    }
    fn new(c: ShopConfig) -> Result<Self, ConnectorError> {
        Ok(Leaky(c.require("app_secret")?.to_owned()))
    }
    fn connections(&self) -> Vec<ConnectionNeed> {
        vec![ConnectionNeed::PushRoute]
    }
    fn decode_push(&mut self, push: &HttpPush, _: Millis) -> PushOutcome {
        let expected = huiliu_sdk::crypto::md5_hex(&[&push.body, self.0.as_bytes()], huiliu_sdk::crypto::Case::Lower);
        if header(&push.headers, "x-sign") != Some(expected.as_str()) {
            return PushOutcome::Rejected {
                kind: RejectKind::BadSignature,
                reason: format!("expected md5(body + {})", self.0),
                response: HttpResponse::text(401, "no"),
            };
        }
        accepted(vec![])
    }
}
entry!(leaky_entry, Leaky);

fn signed(body: &[u8], secret: &str) -> HttpPush {
    let sign = huiliu_sdk::crypto::md5_hex(&[body, secret.as_bytes()], huiliu_sdk::crypto::Case::Lower);
    HttpPush { headers: vec![("x-sign".into(), sign)], ..push(body) }
}

#[test]
fn kit_catches_a_connector_that_skips_signature_checks() {
    let mut forged = signed(b"{}", "s3cret-value");
    forged.headers[0].1 = "0".repeat(32);
    let failures = check(&Kit {
        entry: trusting_entry,
        config: ShopConfig::new("s").with("app_secret", "s3cret-value"),
        now: 0,
        samples: Samples {
            pushes: vec![signed(b"{\"a\":1}", "s3cret-value")],
            forged_pushes: vec![forged],
            ..Samples::default()
        },
    })
    .unwrap_err();
    assert!(failures.iter().any(|f| f.contains("every altered copy") && f.contains("was accepted")), "{failures:#?}");
    assert!(failures.iter().any(|f| f.contains("forged push #0 was not refused")), "{failures:#?}");
}

#[test]
fn kit_catches_a_secret_in_a_reason_and_in_debug() {
    let config = ShopConfig::new("s").with("app_secret", "s3cret-value");
    let failures = check(&Kit {
        entry: leaky_entry,
        config: config.clone(),
        now: 0,
        samples: Samples { pushes: vec![signed(b"{}", "s3cret-value")], ..Samples::default() },
    })
    .unwrap_err();
    assert_eq!(failures, ["the value of secret key `app_secret` appears in a reason or error message"]);
    let debug = std::panic::catch_unwind(|| huiliu_sdk::testkit::assert_debug_hides_secrets::<Leaky>(&config));
    assert!(debug.is_err(), "Leaky's derived Debug shows the secret");
}

#[test]
fn the_report_lists_only_checks_that_passed() {
    // Leaky verifies signatures; with a secret that never reaches a reason it is conformant …
    struct Quiet;
    impl Connector for Quiet {
        fn manifest() -> Manifest {
            Leaky::manifest()
        }
        fn new(_: ShopConfig) -> Result<Self, ConnectorError> {
            Ok(Quiet)
        }
        fn connections(&self) -> Vec<ConnectionNeed> {
            vec![ConnectionNeed::PushRoute]
        }
        fn decode_push(&mut self, push: &HttpPush, _: Millis) -> PushOutcome {
            let expected = huiliu_sdk::crypto::md5_hex(&[&push.body, b"s3cret-value"], huiliu_sdk::crypto::Case::Lower);
            if header(&push.headers, "x-sign") != Some(expected.as_str()) {
                return PushOutcome::Rejected {
                    kind: RejectKind::BadSignature,
                    reason: "x-sign does not verify".into(),
                    response: HttpResponse::text(401, "no"),
                };
            }
            accepted(vec![])
        }
    }
    entry!(quiet_entry, Quiet);
    let report = check(&Kit {
        entry: quiet_entry,
        config: ShopConfig::new("s").with("app_secret", "s3cret-value"),
        now: 0,
        samples: Samples { pushes: vec![signed(b"{}", "s3cret-value")], ..Samples::default() },
    })
    .unwrap();
    for passed in ["manifest", "capability push", "forged pushes refused", "secrets stay out of messages"] {
        assert!(report.passed.iter().any(|p| p == passed), "{passed}: {:?}", report.passed);
    }
    // … and a broken manifest is a failure, never reported as passed.
    struct BadManifest;
    impl Connector for BadManifest {
        fn manifest() -> Manifest {
            let mut m = Quiet::manifest();
            m.version = "one".into();
            m
        }
        fn new(_: ShopConfig) -> Result<Self, ConnectorError> {
            Ok(BadManifest)
        }
    }
    entry!(bad_manifest_entry, BadManifest);
    let failures =
        check(&Kit { entry: bad_manifest_entry, config: ShopConfig::new("s"), now: 0, samples: Samples::default() })
            .unwrap_err();
    assert!(failures.iter().any(|f| f.contains("not semver")), "{failures:#?}");
}
