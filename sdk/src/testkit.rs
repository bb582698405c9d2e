//! The conformance kit: checks every connector must pass, run from the plugin's own `cargo test`.
//!
//! ```ignore
//! use huiliu_sdk::testkit::{Kit, Samples, assert_conformant};
//!
//! #[test]
//! fn conformance() {
//!     assert_conformant(&Kit {
//!         entry: my_plugin::huiliu_connector_entry,
//!         config: ShopConfig::new("shop-1").with("app_key", "k").with("app_secret", "s"),
//!         now: 1_700_000_000_000,
//!         samples: Samples { pushes: vec![sample_push()], ..Samples::default() },
//!     });
//! }
//! ```
//!
//! Every check goes through the plugin's exported C table ([`crate::abi::host`]), exactly as the
//! gateway calls it, so the export glue is exercised too. The checks:
//!
//! 1. **Manifest sane**: magic and ABI version; id and platform lowercase `[a-z0-9-]`; version
//!    `x.y.z`; the table's capability bits equal the manifest's; every config key documented;
//!    declared connections match the capabilities (push ⇔ push route, …).
//! 2. **Decoding never panics**: property tests feed arbitrary and mutated bytes to
//!    `decode_push`, `channel_data`, `classify_send` and `token_refreshed`.
//! 3. **Determinism**: two fresh instances given the same input and clock produce byte-identical
//!    signed requests (send, transfer, token refresh, channel open) and identical decoded events.
//! 4. **Every declared capability exercised** with the author's samples: a declared capability
//!    without a sample is a failure.
//! 5. **Pushes are verified**: for every sample push the kit makes altered copies (each header
//!    value, each query parameter value and a body byte changed in turn); at least one of them
//!    must be refused as `BadSignature` or `WrongApp`, or the connector evidently checks no
//!    signature. Every [`Samples::forged_pushes`] entry must be refused too.
//! 6. **Secrets stay out of what the plugin says**: no value of a key the manifest marks `secret`
//!    may appear in a rejection reason, a dead-letter reason or an error message. The connector's
//!    own `Debug` output is checked by [`assert_debug_hides_secrets`] (it cannot be reached
//!    through the C table).
//!
//! The report lists a check as passed only when it found nothing: `manifest` is missing from
//! [`Report::passed`] when the manifest check failed.

use proptest::prelude::*;
use proptest::test_runner::{Config as PropConfig, TestCaseError, TestRunner};

use crate::abi::EntryFn;
use crate::abi::host::{CallError, Instance, Plugin};
use crate::connector::{Capability, ConnectionNeed, Manifest};
use crate::model::{Millis, OutgoingMessage, ShopConfig, TransferRequest};
use crate::wire::{ChannelData, ChannelOpen, Frame, HttpPush, HttpResponse, PushOutcome};

/// What the kit needs: the plugin's entry function, a shop config that creates an instance, a
/// clock value and samples for every declared capability.
#[derive(Debug, Clone)]
pub struct Kit {
    /// The plugin's `huiliu_connector_entry` (link the plugin as an `rlib` in tests). It must be
    /// the function [`crate::export_connector!`] generated: the kit trusts the table it returns.
    pub entry: EntryFn,
    pub config: ShopConfig,
    /// The clock for every call.
    pub now: Millis,
    pub samples: Samples,
}

/// Sample inputs, one list per capability. Build it with `..Samples::default()`: the kit gains
/// checks, and with them fields, over time.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    /// Authentic pushes; each must be accepted.
    pub pushes: Vec<HttpPush>,
    /// For each channel: data fed in order right after `channel_open`; none may end the channel
    /// with a fatal control.
    pub channel_data: Vec<(String, Vec<ChannelData>)>,
    /// Messages that must encode to a signed request.
    pub outgoing: Vec<OutgoingMessage>,
    /// Platform answers to classify (success and error bodies).
    pub send_responses: Vec<HttpResponse>,
    /// Transfers that must encode.
    pub transfers: Vec<TransferRequest>,
    /// Token-refresh answers that must parse into a grant.
    pub token_responses: Vec<HttpResponse>,
    /// Pushes that MUST be refused as `BadSignature` or `WrongApp` (a forged signature, a
    /// tampered body the platform signs, another app's push).
    pub forged_pushes: Vec<HttpPush>,
}

/// What the kit checked, for the test's output.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub manifest: Option<Manifest>,
    /// One line per check that passed.
    pub passed: Vec<String>,
}

/// Runs every check and panics with the full list of failures, if any.
pub fn assert_conformant(kit: &Kit) -> Report {
    match check(kit) {
        Ok(report) => report,
        Err(failures) => {
            panic!("connector is not conformant ({} failure(s)):\n  - {}", failures.len(), failures.join("\n  - "))
        }
    }
}

/// Runs every check; returns the report, or every failure found.
pub fn check(kit: &Kit) -> Result<Report, Vec<String>> {
    let mut report = Report::default();
    let mut failures = Vec::new();

    let plugin = match Plugin::from_linked_entry(kit.entry) {
        Ok(p) => p,
        Err(e) => return Err(vec![format!("table: {e}")]),
    };
    let manifest = match plugin.init() {
        Ok(m) => m,
        Err(e) => return Err(vec![format!("init failed: {e}")]),
    };
    let before = failures.len();
    check_manifest(&plugin, &manifest, &mut failures);
    if failures.len() == before {
        report.passed.push("manifest".into());
    }

    let make = || plugin.create(&kit.config);
    let instance = match make() {
        Ok(i) => i,
        Err(e) => {
            failures.push(format!("create with the sample config failed: {e}"));
            return Err(failures);
        }
    };
    check_connections(&instance, &manifest, &mut failures);
    let mut said = Vec::new();
    check_capabilities(&instance, &manifest, kit, &mut failures, &mut report);
    if manifest.capabilities.contains(&Capability::Push) {
        let before = failures.len();
        check_forgeries(&instance, kit, &mut failures, &mut said);
        if failures.len() == before {
            report.passed.push("forged pushes refused".into());
        }
    }
    let before = failures.len();
    check_determinism(&make, kit, &mut failures);
    if failures.len() == before {
        report.passed.push("determinism".into());
    }
    let before = failures.len();
    check_no_panics(&make, &manifest, kit, &mut failures);
    if failures.len() == before {
        report.passed.push("arbitrary input never panics".into());
    }
    collect_said(&instance, kit, &mut said);
    let before = failures.len();
    check_secrets_unsaid(&manifest, &kit.config, &said, &mut failures);
    if failures.len() == before {
        report.passed.push("secrets stay out of messages".into());
    }

    report.manifest = Some(manifest);
    if failures.is_empty() { Ok(report) } else { Err(failures) }
}

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
}

fn is_semver(s: &str) -> bool {
    let core = s.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn check_manifest(plugin: &Plugin, m: &Manifest, failures: &mut Vec<String>) {
    if !is_slug(&m.id) {
        failures.push(format!("manifest id `{}` must be lowercase letters, digits and `-`", m.id));
    }
    if !is_slug(&m.platform) {
        failures.push(format!("manifest platform `{}` must be lowercase letters, digits and `-`", m.platform));
    }
    if !is_semver(&m.version) {
        failures.push(format!("manifest version `{}` is not semver x.y.z", m.version));
    }
    if m.description.trim().is_empty() {
        failures.push("manifest description is empty".into());
    }
    if m.capabilities.is_empty() {
        failures.push("manifest declares no capabilities".into());
    }
    if plugin.id() != m.id || plugin.platform() != m.platform || plugin.version() != m.version {
        failures.push("table id/platform/version differ from the manifest".into());
    }
    if plugin.capability_bits() != Capability::mask(&m.capabilities) {
        failures.push(format!(
            "table capabilities {:?} differ from manifest {:?}",
            plugin.capabilities(),
            m.capabilities
        ));
    }
    let mut names = std::collections::BTreeSet::new();
    for k in &m.config_keys {
        if k.doc.trim().is_empty() {
            failures.push(format!("config key `{}` has no doc", k.name));
        }
        if !names.insert(k.name.as_str()) {
            failures.push(format!("config key `{}` declared twice", k.name));
        }
    }
}

fn check_connections(instance: &Instance, m: &Manifest, failures: &mut Vec<String>) {
    let needs = match instance.connections() {
        Ok(n) => n,
        Err(e) => return failures.push(format!("connections() failed: {e}")),
    };
    let has = |c: Capability| m.capabilities.contains(&c);
    let want = [
        (Capability::Push, needs.iter().any(|n| matches!(n, ConnectionNeed::PushRoute))),
        (Capability::WebSocket, needs.iter().any(|n| matches!(n, ConnectionNeed::WebSocket { .. }))),
        (Capability::Stream, needs.iter().any(|n| matches!(n, ConnectionNeed::Stream { .. }))),
        (Capability::Poll, needs.iter().any(|n| matches!(n, ConnectionNeed::Poll { .. }))),
    ];
    for (cap, declared_need) in want {
        if has(cap) != declared_need {
            failures.push(format!(
                "capability `{}` is {} but connections() {} it",
                cap.as_str(),
                if has(cap) { "declared" } else { "not declared" },
                if declared_need { "asks for" } else { "does not ask for" }
            ));
        }
    }
}

fn channels_of(instance: &Instance) -> Vec<String> {
    instance
        .connections()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|n| match n {
            ConnectionNeed::WebSocket { channel, .. }
            | ConnectionNeed::Stream { channel }
            | ConnectionNeed::Poll { channel, .. } => Some(channel),
            ConnectionNeed::PushRoute => None,
        })
        .collect()
}

fn check_capabilities(instance: &Instance, m: &Manifest, kit: &Kit, failures: &mut Vec<String>, report: &mut Report) {
    let s = &kit.samples;
    let now = kit.now;
    for cap in &m.capabilities {
        let before = failures.len();
        match cap {
            Capability::Push => {
                if s.pushes.is_empty() {
                    failures.push("capability `push` declared but Samples::pushes is empty".into());
                }
                for (i, push) in s.pushes.iter().enumerate() {
                    match instance.decode_push(push, now) {
                        Ok(PushOutcome::Accepted { .. }) => {}
                        Ok(PushOutcome::Rejected { reason, .. }) => {
                            failures.push(format!("sample push #{i} was rejected: {reason}"))
                        }
                        Err(e) => failures.push(format!("sample push #{i}: {e}")),
                    }
                }
            }
            Capability::WebSocket | Capability::Stream | Capability::Poll => {
                let channels = channels_of(instance);
                for channel in &channels {
                    let open = instance.channel_open(channel, now);
                    let kind_ok = match (&open, cap) {
                        (Ok(ChannelOpen::WebSocket { .. }), Capability::WebSocket)
                        | (Ok(ChannelOpen::Stream { .. }), Capability::Stream)
                        | (Ok(ChannelOpen::Poll { .. }), Capability::Poll) => true,
                        (Ok(_), _) => false,
                        (Err(e), _) => {
                            failures.push(format!("channel_open(`{channel}`): {e}"));
                            continue;
                        }
                    };
                    if !kind_ok {
                        // Another capability's channel; checked in its own turn.
                        continue;
                    }
                    let Some((_, data)) = s.channel_data.iter().find(|(c, _)| c == channel) else {
                        failures.push(format!(
                            "capability `{}` declared but Samples::channel_data has nothing for channel `{channel}`",
                            cap.as_str()
                        ));
                        continue;
                    };
                    for (i, d) in data.iter().enumerate() {
                        match instance.channel_data(channel, d, now) {
                            Ok(out) => {
                                if let crate::wire::ChannelControl::Fatal { reason } = out.control {
                                    failures
                                        .push(format!("channel `{channel}` sample #{i} ended the channel: {reason}"))
                                }
                            }
                            Err(e) => failures.push(format!("channel `{channel}` sample #{i}: {e}")),
                        }
                    }
                    if let Err(e) = instance.channel_tick(channel, now) {
                        failures.push(format!("channel_tick(`{channel}`): {e}"));
                    }
                    if let Err(e) = instance.channel_closed(channel, now) {
                        failures.push(format!("channel_closed(`{channel}`): {e}"));
                    }
                }
            }
            Capability::Send => {
                if s.outgoing.is_empty() {
                    failures.push("capability `send` declared but Samples::outgoing is empty".into());
                }
                if s.send_responses.is_empty() {
                    failures.push("capability `send` declared but Samples::send_responses is empty".into());
                }
                for (i, msg) in s.outgoing.iter().enumerate() {
                    if let Err(e) = instance.encode_send(msg, now) {
                        failures.push(format!("sample outgoing #{i} did not encode: {e}"));
                    }
                }
                for (i, r) in s.send_responses.iter().enumerate() {
                    if let Err(e) = instance.classify_send(r, now) {
                        failures.push(format!("classify_send(sample #{i}): {e}"));
                    }
                }
            }
            Capability::Transfer => {
                if s.transfers.is_empty() {
                    failures.push("capability `transfer` declared but Samples::transfers is empty".into());
                }
                for (i, t) in s.transfers.iter().enumerate() {
                    if let Err(e) = instance.encode_transfer(t, now) {
                        failures.push(format!("sample transfer #{i} did not encode: {e}"));
                    }
                }
            }
            Capability::TokenRefresh => {
                if s.token_responses.is_empty() {
                    failures.push("capability `token_refresh` declared but Samples::token_responses is empty".into());
                }
                match instance.token_refresh(now, true) {
                    Ok(Some(_)) => {}
                    Ok(None) => failures.push(
                        "capability `token_refresh` declared but token_refresh(now, force=true) returned None \
                         (does the sample config hold a refresh_token?)"
                            .into(),
                    ),
                    Err(e) => failures.push(format!("token_refresh: {e}")),
                }
                for (i, r) in s.token_responses.iter().enumerate() {
                    if let Err(e) = instance.token_refreshed(r, now) {
                        failures.push(format!("sample token response #{i} did not parse: {e}"));
                    }
                }
            }
        }
        if failures.len() == before {
            report.passed.push(format!("capability {}", cap.as_str()));
        }
    }
}

/// Altered copies of `push`: each header value, each query parameter value, and one body byte
/// changed in turn.
fn altered_copies(push: &HttpPush) -> Vec<(String, HttpPush)> {
    fn alter(v: &str) -> String {
        let mut chars: Vec<char> = v.chars().collect();
        match chars.last_mut() {
            Some(c) => *c = if *c == '0' { '1' } else { '0' },
            None => chars.push('0'),
        }
        chars.into_iter().collect()
    }
    let mut out = Vec::new();
    for (i, (name, value)) in push.headers.iter().enumerate() {
        let mut p = push.clone();
        p.headers[i].1 = alter(value);
        out.push((format!("header `{name}` altered"), p));
    }
    let params: Vec<&str> = push.query.split('&').filter(|x| !x.is_empty()).collect();
    for i in 0..params.len() {
        let altered: Vec<String> = params
            .iter()
            .enumerate()
            .map(|(j, kv)| match (j == i, kv.split_once('=')) {
                (true, Some((k, v))) => format!("{k}={}", alter(v)),
                _ => (*kv).to_owned(),
            })
            .collect();
        let mut p = push.clone();
        p.query = altered.join("&");
        out.push((format!("query parameter #{i} altered"), p));
    }
    if !push.body.is_empty() {
        let mut p = push.clone();
        let mid = p.body.len() / 2;
        p.body[mid] ^= 0x01;
        out.push(("a body byte altered".to_owned(), p));
    }
    out
}

fn is_refusal(outcome: &Result<PushOutcome, CallError>) -> bool {
    matches!(
        outcome,
        Ok(PushOutcome::Rejected {
            kind: crate::wire::RejectKind::BadSignature | crate::wire::RejectKind::WrongApp,
            ..
        })
    )
}

fn check_forgeries(instance: &Instance, kit: &Kit, failures: &mut Vec<String>, said: &mut Vec<String>) {
    let now = kit.now;
    for (i, push) in kit.samples.pushes.iter().enumerate() {
        let mut refused = false;
        for (_, copy) in altered_copies(push) {
            let outcome = instance.decode_push(&copy, now);
            if let Ok(PushOutcome::Rejected { reason, .. }) = &outcome {
                said.push(reason.clone());
            }
            refused |= is_refusal(&outcome);
        }
        if !refused {
            failures.push(format!(
                "sample push #{i}: every altered copy (each header, each query parameter, a body byte) was \
                 accepted; a connector must refuse a push whose signature does not verify (BadSignature)"
            ));
        }
    }
    for (i, push) in kit.samples.forged_pushes.iter().enumerate() {
        let outcome = instance.decode_push(push, now);
        if let Ok(PushOutcome::Rejected { reason, .. }) = &outcome {
            said.push(reason.clone());
        }
        if !is_refusal(&outcome) {
            failures.push(format!("forged push #{i} was not refused as BadSignature or WrongApp: {outcome:?}"));
        }
    }
}

/// What the plugin says in prose for the samples: reasons and error messages.
fn collect_said(instance: &Instance, kit: &Kit, said: &mut Vec<String>) {
    let now = kit.now;
    for push in &kit.samples.pushes {
        match instance.decode_push(push, now) {
            Ok(PushOutcome::Accepted { dead_letters, ignored, .. }) => {
                said.extend(dead_letters.into_iter().map(|d| d.reason));
                said.extend(ignored.into_iter().map(|u| u.reason));
            }
            Ok(PushOutcome::Rejected { reason, .. }) => said.push(reason),
            Err(e) => said.push(e.to_string()),
        }
    }
    for m in &kit.samples.outgoing {
        if let Err(e) = instance.encode_send(m, now) {
            said.push(e.to_string());
        }
    }
    for r in &kit.samples.token_responses {
        if let Err(e) = instance.token_refreshed(r, now) {
            said.push(e.to_string());
        }
    }
}

fn secret_values<'a>(manifest: &Manifest, config: &'a ShopConfig) -> Vec<(&'a str, &'a str)> {
    config
        .values
        .iter()
        .filter(|(k, v)| v.len() >= 4 && manifest.config_keys.iter().any(|c| &c.name == *k && c.secret))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

fn check_secrets_unsaid(manifest: &Manifest, config: &ShopConfig, said: &[String], failures: &mut Vec<String>) {
    for (key, value) in secret_values(manifest, config) {
        if said.iter().any(|text| text.contains(value)) {
            failures.push(format!("the value of secret key `{key}` appears in a reason or error message"));
        }
    }
}

/// Checks that `T`'s `Debug` output, for an instance made from `config`, shows no value of a key
/// the manifest marks `secret` (spec: debug output of a connector's state MUST NOT contain
/// secrets or tokens). Call it from the plugin's tests with the concrete connector type.
pub fn assert_debug_hides_secrets<T: crate::connector::Connector + std::fmt::Debug>(config: &ShopConfig) {
    let manifest = T::manifest();
    let connector = match T::new(config.clone()) {
        Ok(c) => c,
        Err(e) => panic!("the config does not create the connector: {e}"),
    };
    let debug = format!("{connector:?} {connector:#?}");
    let secrets = secret_values(&manifest, config);
    assert!(!secrets.is_empty(), "the config sets no secret key of at least 4 characters: nothing to check");
    for (key, value) in secrets {
        assert!(!debug.contains(value), "the Debug output shows the value of secret key `{key}`: {debug}");
    }
}

fn check_determinism(make: &dyn Fn() -> Result<Instance, CallError>, kit: &Kit, failures: &mut Vec<String>) {
    let (Ok(a), Ok(b)) = (make(), make()) else {
        return failures.push("a second instance could not be created from the same config".into());
    };
    let now = kit.now;
    let s = &kit.samples;
    for (i, msg) in s.outgoing.iter().enumerate() {
        if a.encode_send(msg, now) != b.encode_send(msg, now) {
            failures.push(format!("encode_send(sample #{i}) differs between two instances with the same clock"));
        }
    }
    for (i, t) in s.transfers.iter().enumerate() {
        if a.encode_transfer(t, now) != b.encode_transfer(t, now) {
            failures.push(format!("encode_transfer(sample #{i}) differs between two instances with the same clock"));
        }
    }
    if a.token_refresh(now, true) != b.token_refresh(now, true) {
        failures.push("token_refresh differs between two instances with the same clock".into());
    }
    for (i, p) in s.pushes.iter().enumerate() {
        if a.decode_push(p, now) != b.decode_push(p, now) {
            failures.push(format!("decode_push(sample #{i}) differs between two instances"));
        }
    }
    for channel in channels_of(&a) {
        if a.channel_open(&channel, now) != b.channel_open(&channel, now) {
            failures.push(format!("channel_open(`{channel}`) differs between two instances with the same clock"));
        }
    }
}

/// Bytes: arbitrary, or a sample with random byte flips, truncation and duplication.
fn bytes_strategy(seeds: Vec<Vec<u8>>) -> BoxedStrategy<Vec<u8>> {
    let arbitrary = proptest::collection::vec(any::<u8>(), 0..512).boxed();
    if seeds.is_empty() {
        return arbitrary;
    }
    let mutated = (
        proptest::sample::select(seeds),
        proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        any::<usize>(),
    )
        .prop_map(|(mut bytes, flips, cut)| {
            for (pos, val) in flips {
                if !bytes.is_empty() {
                    let i = pos % bytes.len();
                    bytes[i] = val;
                }
            }
            if cut % 3 == 0 && !bytes.is_empty() {
                bytes.truncate(cut % bytes.len());
            }
            bytes
        })
        .boxed();
    prop_oneof![arbitrary, mutated].boxed()
}

fn no_panic<T>(what: &str, r: Result<T, CallError>) -> Result<(), TestCaseError> {
    match r {
        Err(CallError::Panicked(m)) => Err(TestCaseError::fail(format!("{what} panicked: {m}"))),
        _ => Ok(()),
    }
}

fn check_no_panics(
    make: &dyn Fn() -> Result<Instance, CallError>,
    m: &Manifest,
    kit: &Kit,
    failures: &mut Vec<String>,
) {
    let Ok(instance) = make() else { return };
    let now = kit.now;
    let cases: u32 = std::env::var("HUILIU_TESTKIT_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256);
    let runner = || TestRunner::new(PropConfig { cases, failure_persistence: None, ..PropConfig::default() });
    let s = &kit.samples;

    if m.capabilities.contains(&Capability::Push) {
        let template = s.pushes.first().cloned().unwrap_or(HttpPush {
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            headers: Vec::new(),
            body: Vec::new(),
        });
        let seeds: Vec<Vec<u8>> = s.pushes.iter().map(|p| p.body.clone()).collect();
        let headers = template.headers.clone();
        let strategy = (bytes_strategy(seeds), any::<bool>());
        let result = runner().run(&strategy, |(body, keep_headers)| {
            let push =
                HttpPush { body, headers: if keep_headers { headers.clone() } else { Vec::new() }, ..template.clone() };
            no_panic("decode_push", instance.decode_push(&push, now))
        });
        if let Err(e) = result {
            failures.push(format!("decode_push on arbitrary input: {e}"));
        }
    }

    for channel in channels_of(&instance) {
        let seeds: Vec<Vec<u8>> = s
            .channel_data
            .iter()
            .filter(|(c, _)| *c == channel)
            .flat_map(|(_, d)| d.iter())
            .map(|d| match d {
                ChannelData::Frame(Frame::Binary(b)) | ChannelData::Chunk(b) => b.clone(),
                ChannelData::Frame(Frame::Text(t)) => t.clone().into_bytes(),
                ChannelData::Response(r) => r.body.clone(),
            })
            .collect();
        // Replay the samples first so the channel is in its connected state, then fuzz.
        let _ = instance.channel_open(&channel, now);
        for (_, data) in s.channel_data.iter().filter(|(c, _)| *c == channel) {
            for d in data {
                let _ = instance.channel_data(&channel, d, now);
            }
        }
        let strategy = (bytes_strategy(seeds), 0u8..4);
        let result = runner().run(&strategy, |(bytes, shape)| {
            let data = match shape {
                0 => ChannelData::Frame(Frame::Binary(bytes)),
                1 => ChannelData::Frame(Frame::Text(String::from_utf8_lossy(&bytes).into_owned())),
                2 => ChannelData::Chunk(bytes),
                _ => ChannelData::Response(HttpResponse { status: 200, headers: Vec::new(), body: bytes }),
            };
            no_panic("channel_data", instance.channel_data(&channel, &data, now))
        });
        if let Err(e) = result {
            failures.push(format!("channel_data(`{channel}`) on arbitrary input: {e}"));
        }
    }

    let response_seeds: Vec<Vec<u8>> =
        s.send_responses.iter().chain(&s.token_responses).map(|r| r.body.clone()).collect();
    let strategy =
        (bytes_strategy(response_seeds), prop_oneof![Just(200u16), Just(400u16), Just(500u16), any::<u16>()]);
    let result = runner().run(&strategy, |(body, status)| {
        let r = HttpResponse { status, headers: Vec::new(), body };
        no_panic("classify_send", instance.classify_send(&r, now))?;
        no_panic("classify_transfer", instance.classify_transfer(&r, now))?;
        no_panic("token_refreshed", instance.token_refreshed(&r, now))
    });
    if let Err(e) = result {
        failures.push(format!("classifying arbitrary responses: {e}"));
    }
}

/// Compares `actual` with the snapshot file at `path`; with `UPDATE_EXPECT=1` rewrites it instead.
/// Panics with both texts on a difference.
pub fn snapshot(path: &std::path::Path, actual: &str) {
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        std::fs::write(path, actual).unwrap_or_else(|e| panic!("cannot write snapshot {}: {e}", path.display()));
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!("cannot read snapshot {} ({e}); run with UPDATE_EXPECT=1 to create it", path.display())
    });
    if expected.trim_end() != actual.trim_end() {
        panic!(
            "snapshot {} differs (run with UPDATE_EXPECT=1 to accept)\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display()
        );
    }
}

/// Inputs for a decoder's robustness test (what a fuzz target sees, replayed without
/// libFuzzer): seed files, their prefixes and bit flips, and fixed-seed random bytes.
#[derive(Debug, Clone, Default)]
pub struct SeedInputs {
    /// The seed files, in file-name order.
    pub seeds: Vec<Vec<u8>>,
    /// Prefixes and one-bit flips of each seed.
    pub mutated: Vec<Vec<u8>>,
    /// Random byte strings.
    pub garbage: Vec<Vec<u8>>,
}

/// How [`seed_inputs`] derives inputs from the seeds.
#[derive(Debug, Clone, Copy)]
pub struct Mutations<'a> {
    /// A prefix every `cut_step` bytes of each seed.
    pub cut_step: usize,
    /// One-bit flips per seed.
    pub flips: usize,
    /// Random byte strings, each up to `max_len` bytes…
    pub garbage: usize,
    pub max_len: u64,
    /// …drawn from `alphabet` (every byte value when empty).
    pub alphabet: &'a [u8],
}

impl Default for Mutations<'_> {
    fn default() -> Self {
        Mutations { cut_step: 1, flips: 8, garbage: 200, max_len: 300, alphabet: b"" }
    }
}

impl SeedInputs {
    /// Every input: mutations, garbage, then the seeds themselves.
    pub fn all(self) -> Vec<Vec<u8>> {
        let mut all = self.mutated;
        all.extend(self.garbage);
        all.extend(self.seeds);
        all
    }
}

/// Reads the seed files of `dir` (at least 5 expected) and derives inputs from them,
/// deterministically.
pub fn seed_inputs(dir: &std::path::Path, m: Mutations<'_>) -> SeedInputs {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    paths.sort();
    assert!(paths.len() >= 5, "expected a seed corpus in {}", dir.display());
    let seeds: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).expect("readable seed")).collect();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut mutated = Vec::new();
    for seed in &seeds {
        mutated.extend((0..seed.len()).step_by(m.cut_step.max(1)).map(|cut| seed[..cut].to_vec()));
        for _ in 0..m.flips {
            state = xorshift(state);
            let mut flipped = seed.clone();
            if let Some(b) = flipped.get_mut(usize::try_from(state).unwrap_or(0) % seed.len().max(1)) {
                *b ^= 1 << (state >> 61);
            }
            mutated.push(flipped);
        }
    }
    let mut garbage = Vec::with_capacity(m.garbage);
    for _ in 0..m.garbage {
        state = xorshift(state);
        let len = usize::try_from(state % m.max_len.max(1)).unwrap_or(0);
        garbage.push(
            (0..len)
                .map(|_| {
                    state = xorshift(state);
                    let byte = state.to_le_bytes()[0];
                    if m.alphabet.is_empty() { byte } else { m.alphabet[usize::from(byte) % m.alphabet.len()] }
                })
                .collect(),
        );
    }
    SeedInputs { seeds, mutated, garbage }
}

/// One step of a 64-bit xorshift generator (Marsaglia), never 0 from a non-zero state.
pub fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}
