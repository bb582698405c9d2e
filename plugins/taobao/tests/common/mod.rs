//! Helpers shared by the integration tests: the sample shop, hex, and readable views of what the
//! connector returns (TMC frames decoded, so snapshots can be reviewed by eye).

#![allow(dead_code)] // Each test crate uses a different subset.

use huiliu_sdk::{AckBatch, ChannelOpen, ChannelOutcome, Frame, HttpRequest, Millis, ShopConfig};
use huiliu_taobao::tmc::codec::{TmcFrame, Value as TmcValue};
use serde_json::{Value, json};

pub const SHOP: &str = "tb-shop-1";
/// 2024-01-01 10:00:00 Beijing.
pub const NOW: Millis = 1_704_074_400_000;

/// The sample shop: the credentials of the PROTOCOLS.md vectors, loopback URLs.
pub fn config() -> ShopConfig {
    ShopConfig::new(SHOP)
        .with("app_key", "12345678")
        .with("app_secret", "helloworld")
        .with("access_token", "session-abc")
        .with("refresh_token", "refresh-xyz")
        .with("token_expires_at", (NOW + 86_400_000).to_string())
        .with("api_url", "http://127.0.0.1:18080/router/rest")
        .with("oauth_token_url", "http://127.0.0.1:18080/token")
        .with("tmc_url", "ws://127.0.0.1:18081/")
}

pub fn unhex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd hex length");
    digits
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).expect("ascii hex");
            u8::from_str_radix(text, 16).unwrap_or_else(|_| panic!("bad hex `{text}`"))
        })
        .collect()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A TMC frame as `{type, status_code?, status_phrase?, token?, headers: ["key = format value"]}`.
pub fn tmc_view(bytes: &[u8]) -> Value {
    let frame = match TmcFrame::decode(bytes) {
        Ok(f) => f,
        Err(e) => return json!({ "undecodable": e.to_string(), "hex": hex(bytes) }),
    };
    let headers: Vec<String> = frame
        .custom
        .iter()
        .map(|(k, v)| {
            let shown = match v {
                TmcValue::Void => String::new(),
                TmcValue::Str(s) => s.clone(),
                TmcValue::Byte(n) => n.to_string(),
                TmcValue::Int16(n) => n.to_string(),
                TmcValue::Int32(n) => n.to_string(),
                TmcValue::Int64(n) | TmcValue::Date(n) => n.to_string(),
                TmcValue::Bytes(b) => hex(b),
            };
            format!("{k} = {} {shown}", v.format_name())
        })
        .collect();
    let mut view = json!({ "type": frame.message_type.name() });
    let obj = view.as_object_mut().expect("object");
    if let Some(code) = frame.status_code {
        obj.insert("status_code".into(), json!(code));
    }
    if let Some(phrase) = &frame.status_phrase {
        obj.insert("status_phrase".into(), json!(phrase));
    }
    if let Some(token) = &frame.token {
        obj.insert("token".into(), json!(token));
    }
    obj.insert("headers".into(), json!(headers));
    view
}

pub fn frame_view(frame: &Frame) -> Value {
    match frame {
        Frame::Binary(bytes) => tmc_view(bytes),
        Frame::Text(text) => json!({ "text": text }),
    }
}

pub fn frames_view(frames: &[Frame]) -> Value {
    Value::Array(frames.iter().map(frame_view).collect())
}

fn batch_view(batch: &AckBatch) -> Value {
    let dead: Vec<Value> = batch
        .dead_letters
        .iter()
        .map(|d| json!({ "reason": d.reason, "event_id": d.event_id, "raw_hex": hex(&d.raw) }))
        .collect();
    json!({
        "events": batch.events,
        "dead_letters": dead,
        "on_durable": frames_view(&batch.on_durable),
        "on_failure": frames_view(&batch.on_failure),
    })
}

pub fn outcome_view(out: &ChannelOutcome) -> Value {
    let rejected: Vec<Value> = out.rejected.iter().map(|(k, r)| json!({ "kind": k.as_str(), "reason": r })).collect();
    json!({
        "send": frames_view(&out.send),
        "batches": out.batches.iter().map(batch_view).collect::<Vec<_>>(),
        "rejected": rejected,
        "control": out.control,
        "status": out.status,
    })
}

pub fn open_view(open: &ChannelOpen) -> Value {
    match open {
        ChannelOpen::WebSocket { url, headers, frames } => {
            json!({ "websocket": url, "headers": headers, "frames": frames_view(frames) })
        }
        other => json!({ "unexpected": format!("{other:?}") }),
    }
}

/// The form parameters of a request body, sorted.
pub fn form(request: &HttpRequest) -> std::collections::BTreeMap<String, String> {
    form_urlencoded::parse(&request.body).into_owned().collect()
}
