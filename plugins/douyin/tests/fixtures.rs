//! Push fixtures as data: `tests/fixtures/<name>.json` holds recorded pushes (raw bodies and
//! headers, exactly as the platform sends them) and `<name>.expected.json` the normalized
//! outcome. `UPDATE_EXPECT=1 cargo test -p huiliu-douyin --test fixtures` rewrites the expected
//! files; review the diff before committing.
//!
//! Besides the snapshot, each fixture states a few facts in its `expect` block (outcome, event
//! and dead-letter counts, rejection kind, event ids) that are checked on every run, so an
//! accidentally accepted snapshot cannot hide a regression in those.
//!
//! Input format:
//! ```json
//! { "about": "…", "config": {"chat_tag": "777"},
//!   "expect": {"outcome": "accepted", "events": 1, "dead_letters": 0, "event_ids": ["…"]},
//!   "pushes": [{"method": "POST", "headers": {"app-id": "…", "event-sign": "…"}, "body": "…"}] }
//! ```
//! `body_hex` replaces `body` for bytes that are not UTF-8. The signatures are
//! `md5(app_key + body + app_secret)` with the credentials in [`config`].

use std::path::{Path, PathBuf};

use huiliu_douyin::DouyinConnector;
use huiliu_sdk::{Connector, DeadLetter, HttpPush, HttpResponse, PushOutcome, ShopConfig};
use serde_json::{Value, json};

const SHOP_ID: &str = "shop-dy-1";
/// 2023-11-14 22:13:20 UTC.
const NOW: i64 = 1_700_000_000_000;

/// The credentials of the PROTOCOLS.md test vectors.
fn config() -> ShopConfig {
    ShopConfig::new(SHOP_ID)
        .with("app_key", "3409409348479354011")
        .with("app_secret", "2ad2355c-01d0-11f8-91dc-05a8cd1054b1")
        .with("access_token", "fixture-access-token")
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn hex_decode(s: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).map_err(|e| e.to_string())?;
            u8::from_str_radix(text, 16).map_err(|e| format!("bad hex `{text}`: {e}"))
        })
        .collect()
}

fn read_push(value: &Value) -> Result<HttpPush, String> {
    let body = match (value.get("body"), value.get("body_hex")) {
        (Some(Value::String(text)), None) => text.clone().into_bytes(),
        (None, Some(Value::String(hex))) => hex_decode(hex)?,
        _ => return Err("a push needs exactly one of `body` (text) or `body_hex`".into()),
    };
    let headers = value
        .get("headers")
        .and_then(Value::as_object)
        .map(|h| h.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
        .unwrap_or_default();
    Ok(HttpPush {
        method: value.get("method").and_then(Value::as_str).unwrap_or("POST").to_owned(),
        path: format!("/hooks/douyin/{SHOP_ID}"),
        query: String::new(),
        headers,
        body,
    })
}

fn response_json(r: &HttpResponse) -> Value {
    json!({"status": r.status, "headers": r.headers, "body": String::from_utf8_lossy(&r.body)})
}

fn dead_letter_json(d: &DeadLetter) -> Value {
    json!({"reason": d.reason, "event_id": d.event_id, "raw": String::from_utf8_lossy(&d.raw)})
}

fn outcome_json(outcome: &PushOutcome) -> Value {
    match outcome {
        PushOutcome::Accepted { events, dead_letters, ack, nack, lookups, .. } => {
            let mut v = json!({
                "outcome": "accepted",
                "events": events,
                "dead_letters": dead_letters.iter().map(dead_letter_json).collect::<Vec<_>>(),
                "ack": response_json(ack),
                "nack": response_json(nack),
            });
            if !lookups.is_empty() {
                v["lookups"] = lookups
                    .iter()
                    .map(|l| {
                        json!({
                            "event_id": l.event_id,
                            "method": l.request.method,
                            "url": l.request.url,
                            "body": String::from_utf8_lossy(&l.request.body),
                        })
                    })
                    .collect();
            }
            v
        }
        PushOutcome::Rejected { kind, reason, response } => json!({
            "outcome": "rejected",
            "kind": kind.as_str(),
            "reason": reason,
            "response": response_json(response),
        }),
    }
}

/// The facts a fixture states about each of its pushes.
fn check_expectations(expect: &Value, outcomes: &[PushOutcome]) -> Vec<String> {
    let mut problems = Vec::new();
    let want = |key: &str| expect.get(key);
    let mut event_ids = Vec::new();
    for (i, outcome) in outcomes.iter().enumerate() {
        let mut fact = |key: &str, actual: Value| {
            if let Some(wanted) = want(key).filter(|w| **w != actual) {
                problems.push(format!("push #{i}: `{key}` is {actual}, expected {wanted}"));
            }
        };
        match outcome {
            PushOutcome::Accepted { events, dead_letters, lookups, .. } => {
                fact("outcome", json!("accepted"));
                fact("events", json!(events.len()));
                fact("dead_letters", json!(dead_letters.len()));
                fact("lookups", json!(lookups.len()));
                for event in events {
                    if event.platform != "douyin" || event.shop != SHOP_ID || event.event_id.is_empty() {
                        problems.push(format!("push #{i}: event not stamped with platform/shop/id: {event:?}"));
                    }
                    event_ids.push(json!(event.event_id));
                }
            }
            PushOutcome::Rejected { kind, response, .. } => {
                fact("outcome", json!("rejected"));
                fact("kind", json!(kind.as_str()));
                if response.status == 200 || response.body != br#"{"code":1,"msg":"fail"}"# {
                    problems.push(format!("push #{i}: a refusal must not look like success: {response:?}"));
                }
            }
        }
    }
    if let Some(wanted) = want("event_ids").filter(|w| **w != Value::Array(event_ids.clone())) {
        problems.push(format!("event ids {event_ids:?}, expected {wanted}"));
    }
    problems
}

/// `value` with every object's keys in sorted order, so snapshots do not depend on whether some
/// crate in the build switched on serde_json's `preserve_order`.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|(a, _), (b, _)| a.cmp(b));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// Runs one fixture; returns its problems.
fn run_fixture(path: &Path, update: bool) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let fixture: Value = serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
    let mut config = config();
    for (key, value) in fixture.get("config").and_then(Value::as_object).into_iter().flatten() {
        config = config.with(key, value.as_str().unwrap_or_default());
    }
    let pushes = fixture.get("pushes").and_then(Value::as_array).ok_or("no `pushes` array")?;
    let expect = fixture.get("expect").ok_or("no `expect` block")?;

    let mut connector = DouyinConnector::new(config).map_err(|e| e.to_string())?;
    let mut outcomes = Vec::new();
    for push in pushes {
        outcomes.push(connector.decode_push(&read_push(push)?, NOW));
    }
    let mut problems = check_expectations(expect, &outcomes);

    let actual = json!({
        "about": fixture.get("about"),
        "results": outcomes.iter().map(outcome_json).collect::<Vec<_>>(),
    });
    let actual = serde_json::to_string_pretty(&sorted(actual)).map_err(|e| e.to_string())? + "\n";
    let expected_path = path.with_extension("expected.json");
    if update {
        std::fs::write(&expected_path, &actual).map_err(|e| e.to_string())?;
    } else {
        match std::fs::read_to_string(&expected_path) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => problems.push(format!(
                "differs from {} (UPDATE_EXPECT=1 to accept)\n--- expected\n{expected}--- actual\n{actual}",
                expected_path.display()
            )),
            Err(e) => problems.push(format!("cannot read {} ({e}); run with UPDATE_EXPECT=1", expected_path.display())),
        }
    }
    Ok(problems)
}

#[test]
fn push_fixtures() {
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(fixture_dir())
        .expect("tests/fixtures exists")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json") && !p.to_string_lossy().ends_with(".expected.json"))
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 20, "expected the full fixture set, found {}", inputs.len());

    let mut failures = Vec::new();
    for path in &inputs {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        match run_fixture(path, update) {
            Ok(problems) => failures.extend(problems.into_iter().map(|p| format!("{name}: {p}"))),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{} fixture problem(s):\n{}", failures.len(), failures.join("\n"));
}

/// Every expected file belongs to an input (a renamed fixture must not leave a stale snapshot).
#[test]
fn no_orphan_snapshots() {
    for entry in std::fs::read_dir(fixture_dir()).expect("tests/fixtures exists").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".expected.json") {
            assert!(fixture_dir().join(format!("{stem}.json")).exists(), "orphan snapshot {name}");
        }
    }
}
