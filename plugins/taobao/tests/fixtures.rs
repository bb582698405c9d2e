//! Fixtures as data: every `tests/fixtures/<name>.json` is a script of TMC channel steps run
//! against a fresh connector; the normalized result is compared with `<name>.expected.json`.
//! `UPDATE_EXPECT=1 cargo test -p huiliu-taobao --test fixtures` rewrites the expected files
//! (review the diff). Inputs are written by `tests/fixtures/make_frames.py`.

mod common;

use std::path::{Path, PathBuf};

use common::{NOW, config, frames_view, open_view, outcome_view, unhex};
use huiliu_sdk::testkit::snapshot;
use huiliu_sdk::{ChannelData, Connector, EventKind, Frame};
use huiliu_taobao::TaobaoConnector;
use serde_json::{Value, json};

const CHANNEL: &str = "tmc";

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn inputs() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixture_dir())
        .expect("fixtures folder")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            name.ends_with(".json") && !name.ends_with(".expected.json")
        })
        .collect();
    paths.sort();
    paths
}

/// Runs one fixture script; returns the per-step results.
fn run(fixture: &Value) -> Value {
    let mut shop = config();
    if let Some(overrides) = fixture.get("config").and_then(Value::as_object) {
        for (k, v) in overrides {
            shop = shop.with(k, v.as_str().expect("config values are strings"));
        }
    }
    let now = fixture.get("now").and_then(Value::as_i64).unwrap_or(NOW);
    let mut connector = TaobaoConnector::new(shop).expect("fixture config is valid");
    let steps = fixture["steps"].as_array().expect("steps");
    let results: Vec<Value> = steps
        .iter()
        .map(|step| {
            let note = step.get("note").cloned().unwrap_or(Value::Null);
            let result = match step["do"].as_str().expect("step kind") {
                "open" => match connector.channel_open(CHANNEL, now) {
                    Ok(open) => open_view(&open),
                    Err(e) => json!({ "error": e.message }),
                },
                "frame" => {
                    let bytes = unhex(step["hex"].as_str().expect("hex"));
                    outcome_view(&connector.channel_data(CHANNEL, ChannelData::Frame(Frame::Binary(bytes)), now))
                }
                "text_frame" => {
                    let text = step["text"].as_str().expect("text").to_owned();
                    outcome_view(&connector.channel_data(CHANNEL, ChannelData::Frame(Frame::Text(text)), now))
                }
                "tick" => json!({ "tick": frames_view(&connector.channel_tick(CHANNEL, now)) }),
                "closed" => {
                    connector.channel_closed(CHANNEL, now);
                    json!({ "closed": true })
                }
                other => panic!("unknown step `{other}`"),
            };
            json!({ "do": step["do"], "note": note, "result": result })
        })
        .collect();
    json!({ "about": fixture["about"], "steps": results })
}

#[test]
fn fixtures_match_their_snapshots() {
    let paths = inputs();
    assert!(paths.len() >= 30, "expected the fixture set, found {}", paths.len());
    for path in paths {
        let fixture: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("JSON");
        let actual = serde_json::to_string_pretty(&run(&fixture)).expect("serialize");
        snapshot(&path.with_extension("expected.json"), &actual);
    }
}

/// Invariants every fixture must keep, independent of the snapshots (so accepting a bad
/// snapshot with UPDATE_EXPECT cannot hide them).
#[test]
fn fixture_invariants() {
    for path in inputs() {
        let fixture: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("JSON");
        let name = path.display().to_string();
        let out = run(&fixture);
        for step in out["steps"].as_array().expect("steps") {
            for batch in step["result"]["batches"].as_array().into_iter().flatten() {
                for event in batch["events"].as_array().expect("events") {
                    assert_eq!(event["platform"], "taobao", "{name}");
                    assert_eq!(event["shop"], common::SHOP, "{name}");
                    assert!(event["event_id"].as_str().is_some_and(|s| !s.is_empty()), "{name}");
                }
                // One message per batch: at most one event or dead letter.
                let units = batch["events"].as_array().map_or(0, Vec::len)
                    + batch["dead_letters"].as_array().map_or(0, Vec::len);
                assert!(units <= 1, "{name}: {units} units in one batch");
            }
        }
    }
}

fn outcome_of(name: &str) -> Vec<huiliu_sdk::ChannelOutcome> {
    let fixture: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture_dir().join(format!("{name}.json"))).expect("read"))
            .expect("JSON");
    let mut connector = TaobaoConnector::new(config()).expect("config");
    fixture["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["do"] == "frame")
        .map(|s| {
            let bytes = unhex(s["hex"].as_str().expect("hex"));
            connector.channel_data(CHANNEL, ChannelData::Frame(Frame::Binary(bytes)), NOW)
        })
        .collect()
}

#[test]
fn duplicate_delivery_keeps_the_event_id() {
    let outs = outcome_of("duplicate_delivery");
    let ids: Vec<&str> = outs.iter().skip(1).map(|o| o.batches[0].events[0].event_id.as_str()).collect();
    assert_eq!(ids, ["M-6001", "M-6001"]);
}

#[test]
fn ids_above_2_53_stay_exact() {
    let outs = outcome_of("trade_buyer_pay_ids_above_2_53");
    let event = &outs[1].batches[0].events[0];
    assert_eq!(event.event_id, "9007199254740993");
    match &event.kind {
        EventKind::Order(order) => {
            assert_eq!(order.order_id, "9007199254740993");
            assert_eq!(order.amount_fen, Some(123_450));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn only_the_tmc_channel_exists() {
    let mut connector = TaobaoConnector::new(config()).expect("config");
    assert_eq!(
        connector.connections(),
        [huiliu_sdk::ConnectionNeed::WebSocket { channel: "tmc".into(), tick_interval_ms: Some(5_000) }]
    );
    assert!(connector.channel_open("stream", NOW).is_err());
    let out = connector.channel_data("stream", ChannelData::Frame(Frame::Binary(vec![2, 1, 0, 0])), NOW);
    assert_eq!(out.rejected.len(), 1);
    assert!(out.batches.is_empty() && out.send.is_empty());
    assert!(connector.channel_tick("stream", NOW).is_empty());
}

/// The CONNECT frame carries the signature of the TMC vector in PROTOCOLS.md §1.2.
#[test]
fn connect_frame_reproduces_the_tmc_vector() {
    use huiliu_taobao::tmc::codec::{MessageType, TmcFrame};
    let mut connector = TaobaoConnector::new(config()).expect("config");
    let open = connector.channel_open(CHANNEL, 1_451_620_800_000).expect("opens");
    let huiliu_sdk::ChannelOpen::WebSocket { url, frames, .. } = open else { panic!("not a WebSocket") };
    assert_eq!(url, "ws://127.0.0.1:18081/");
    let [Frame::Binary(bytes)] = frames.as_slice() else { panic!("one binary frame") };
    let frame = TmcFrame::decode(bytes).expect("decodes");
    assert_eq!(frame.message_type, MessageType::Connect);
    let text = |k: &str| frame.custom(k).and_then(|v| v.as_str()).map(str::to_owned);
    assert_eq!(text("app_key").as_deref(), Some("12345678"));
    assert_eq!(text("group_name").as_deref(), Some("default"));
    assert_eq!(text("timestamp").as_deref(), Some("1451620800000"));
    assert_eq!(text("sign").as_deref(), Some("2E03D1348D7B65A366F8DB4BD1435983"));
    assert_eq!(text("intranet_ip").as_deref(), Some("127.0.0.1"));
    assert!(text("sdk").is_some_and(|s| s.starts_with("huiliu-taobao/")));
}
