//! Fixtures as data: every `tests/fixtures/<name>.json` is replayed through the connector and
//! its normalized output compared with `<name>.expected.json`. `UPDATE_EXPECT=1` rewrites the
//! expected files (review the diff before committing it).
//!
//! A fixture is `{"about", "kind", "config"?, "now"?, …}`:
//! - `"kind": "stream"` with `"steps"`: `{"open":true}` (channel_open, recorded),
//!   `{"response":{"status","body"}}`, `{"chunk":"text"}`, `{"chunk_hex":"…"}`,
//!   `{"split":{"text":"…","at":[byte offsets]}}` (one chunk per piece),
//!   `{"chunk_repeat":{"text":"x","times":N}}`, `{"now":ms}` (set the clock), `{"closed":true}`.
//!   The channel is opened (unrecorded) before the first step.
//! - `"kind": "send"` with `"message"` (an `OutgoingMessage`): the signed request, or the error.
//!
//! In the expected files byte fields (`raw`, `body`) are shown as text when they are UTF-8, and
//! request query strings and form bodies are also shown decoded.

use std::path::{Path, PathBuf};

use huiliu_jd::JdConnector;
use huiliu_sdk::testkit::snapshot;
use huiliu_sdk::{ChannelData, Connector, HttpResponse, Millis, OutgoingMessage, ShopConfig};
use serde_json::{Map, Value, json};

const DEFAULT_NOW: Millis = 1_700_000_000_000;

fn base_config() -> ShopConfig {
    ShopConfig::new("shop-jd-1")
        .with("app_key", "testappkey")
        .with("app_secret", "testappsecret")
        .with("access_token", "testtoken")
        .with("refresh_token", "testrefresh")
        .with("token_expires_at", "1731536000000")
        .with("api_url", "http://127.0.0.1:18080/routerjson")
        .with("oauth_url", "http://127.0.0.1:18080/oauth2/refresh_token")
        .with("stream_url", "http://127.0.0.1:18081/stream")
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[test]
fn fixtures_match_expected_output() {
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("tests/fixtures exists")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json") && !p.to_string_lossy().ends_with(".expected.json"))
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 20, "expected the full fixture set, found {}", inputs.len());
    for input in inputs {
        let fixture: Value = serde_json::from_str(&std::fs::read_to_string(&input).expect("readable fixture"))
            .unwrap_or_else(|e| panic!("{}: {e}", input.display()));
        let output = run_fixture(&fixture).unwrap_or_else(|e| panic!("{}: {e}", input.display()));
        let expected = input.with_extension("expected.json");
        let pretty = serde_json::to_string_pretty(&output).expect("serializable output");
        snapshot(&expected, &pretty);
    }
}

/// Every input has an expected file and every expected file an input.
#[test]
fn fixtures_are_paired() {
    for entry in std::fs::read_dir(fixtures_dir()).expect("tests/fixtures exists") {
        let path = entry.expect("directory entry").path();
        let name = path.to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".expected.json") {
            assert!(Path::new(&format!("{stem}.json")).exists(), "{name} has no input");
        } else if std::env::var_os("UPDATE_EXPECT").is_none() {
            assert!(path.with_extension("expected.json").exists(), "{name} has no expected output");
        }
    }
}

fn run_fixture(fixture: &Value) -> Result<Value, String> {
    let mut config = base_config();
    if let Some(overrides) = fixture.get("config").and_then(Value::as_object) {
        for (k, v) in overrides {
            let v = v.as_str().ok_or(format!("config `{k}` must be a string"))?;
            config.values.insert(k.clone(), v.to_owned());
        }
    }
    let now = fixture.get("now").and_then(Value::as_i64).unwrap_or(DEFAULT_NOW);
    let mut connector = JdConnector::new(config).map_err(|e| e.to_string())?;
    match fixture.get("kind").and_then(Value::as_str) {
        Some("stream") => run_stream(&mut connector, fixture, now),
        Some("send") => run_send(&mut connector, fixture, now),
        other => Err(format!("unknown fixture kind {other:?}")),
    }
}

fn run_stream(connector: &mut JdConnector, fixture: &Value, mut now: Millis) -> Result<Value, String> {
    let steps = fixture.get("steps").and_then(Value::as_array).ok_or("stream fixture without steps")?;
    connector.channel_open("stream", now).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let step = step.as_object().ok_or(format!("step {i} is not an object"))?;
        let mut record = |what: String, result: Value| out.push(json!({ "step": what, "result": result }));
        if step.contains_key("open") {
            let open = connector.channel_open("stream", now).map_err(|e| e.to_string())?;
            record(format!("{i}: open"), readable(serde_json::to_value(open).map_err(|e| e.to_string())?));
        } else if step.contains_key("closed") {
            connector.channel_closed("stream", now);
        } else if let Some(t) = step.get("now") {
            now = t.as_i64().ok_or("`now` must be an integer")?;
        } else if let Some(r) = step.get("response") {
            let status = r.get("status").and_then(Value::as_u64).ok_or("response without status")?;
            let status = u16::try_from(status).map_err(|e| e.to_string())?;
            let body = r.get("body").and_then(Value::as_str).unwrap_or_default();
            let data = ChannelData::Response(HttpResponse::json(status, body.as_bytes().to_vec()));
            record(format!("{i}: response {status}"), feed(connector, data, now)?);
        } else {
            for (j, chunk) in chunks_of(step)?.into_iter().enumerate() {
                record(
                    format!("{i}.{j}: chunk of {} bytes", chunk.len()),
                    feed(connector, ChannelData::Chunk(chunk), now)?,
                );
            }
        }
    }
    Ok(Value::Array(out))
}

/// The body chunks a chunk step describes.
fn chunks_of(step: &Map<String, Value>) -> Result<Vec<Vec<u8>>, String> {
    if let Some(text) = step.get("chunk").and_then(Value::as_str) {
        return Ok(vec![text.as_bytes().to_vec()]);
    }
    if let Some(hex) = step.get("chunk_hex").and_then(Value::as_str) {
        return Ok(vec![from_hex(hex)?]);
    }
    if let Some(split) = step.get("split") {
        let text = split.get("text").and_then(Value::as_str).ok_or("split without text")?.as_bytes();
        let mut chunks = Vec::new();
        let mut from = 0;
        for at in split.get("at").and_then(Value::as_array).ok_or("split without at")? {
            let at = at.as_u64().and_then(|a| usize::try_from(a).ok()).ok_or("split offsets are integers")?;
            chunks.push(text.get(from..at).ok_or(format!("bad split offset {at}"))?.to_vec());
            from = at;
        }
        chunks.push(text.get(from..).unwrap_or_default().to_vec());
        return Ok(chunks);
    }
    if let Some(rep) = step.get("chunk_repeat") {
        let text = rep.get("text").and_then(Value::as_str).ok_or("chunk_repeat without text")?;
        let times = rep.get("times").and_then(Value::as_u64).ok_or("chunk_repeat without times")?;
        return Ok(vec![text.repeat(usize::try_from(times).map_err(|e| e.to_string())?).into_bytes()]);
    }
    Err(format!("unknown step {step:?}"))
}

fn feed(connector: &mut JdConnector, data: ChannelData, now: Millis) -> Result<Value, String> {
    let outcome = connector.channel_data("stream", data, now);
    Ok(readable(serde_json::to_value(outcome).map_err(|e| e.to_string())?))
}

fn run_send(connector: &mut JdConnector, fixture: &Value, now: Millis) -> Result<Value, String> {
    let message: OutgoingMessage =
        serde_json::from_value(fixture.get("message").cloned().ok_or("send fixture without message")?)
            .map_err(|e| format!("message: {e}"))?;
    Ok(match connector.encode_send(&message, now) {
        Ok(request) => json!({ "request": readable(serde_json::to_value(request).map_err(|e| e.to_string())?) }),
        Err(e) => json!({ "error": serde_json::to_value(e).map_err(|e| e.to_string())? }),
    })
}

/// Byte arrays as text, and query strings and form bodies decoded beside them.
fn readable(mut value: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(map) => {
                for (k, child) in map.iter_mut() {
                    if matches!(k.as_str(), "raw" | "body")
                        && let Some(bytes) = as_bytes(child)
                    {
                        *child = match String::from_utf8(bytes) {
                            Ok(s) => Value::String(s),
                            Err(e) => json!({ "hex": to_hex(e.as_bytes()) }),
                        };
                    } else {
                        walk(child);
                    }
                }
                let form = |s: &str| -> Value {
                    form_urlencoded::parse(s.as_bytes()).map(|(k, v)| json!([k, v])).collect::<Vec<_>>().into()
                };
                if let Some(query) = map.get("url").and_then(Value::as_str).and_then(|u| u.split_once('?')) {
                    let decoded = form(query.1);
                    map.insert("query_decoded".into(), decoded);
                }
                let is_form = map.get("headers").is_some_and(|h| h.to_string().contains("x-www-form-urlencoded"));
                if is_form && let Some(body) = map.get("body").and_then(Value::as_str) {
                    let decoded = form(body);
                    map.insert("body_decoded".into(), decoded);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut value);
    value
}

fn as_bytes(v: &Value) -> Option<Vec<u8>> {
    v.as_array()?.iter().map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok())).collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(hex: &str) -> Result<Vec<u8>, String> {
    let hex: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    hex.chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or(format!("bad hex {:?}", String::from_utf8_lossy(pair)))
        })
        .collect()
}
