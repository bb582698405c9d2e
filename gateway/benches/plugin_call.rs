//! One host→plugin→host round trip through the real plugin ABI, on release-built libraries.
//!
//! `cargo bench -p huiliu-gateway --bench plugin_call` builds the plugins with the release
//! profile (into target/e2e/release), loads them with the gateway's plugin host and times:
//! - `decode_push` of a typical ~300-byte signed Douyin chat push (MD5 signature check, JSON
//!   envelope and payload parsing, normalized event out, both directions serialized);
//! - `connections`, the cheapest call, which is the ABI's own overhead.
//!
//! It prints nanoseconds per call (target: under 5 µs for the push).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use huiliu_gateway::metrics::Metrics;
use huiliu_gateway::plugins::PluginHost;
use huiliu_gateway::plugins::Shop;
use huiliu_sdk::crypto::{Case, md5_hex};
use huiliu_sdk::{HttpPush, PushOutcome};

const APP_KEY: &str = "3409409348479354011";
const SECRET: &str = "2ad2355c-01d0-11f8-91dc-05a8cd1054b1";

fn push() -> HttpPush {
    let data = serde_json::json!({
        "msg_id": "7301234567890123456", "shop_id": 123456, "conversation_id": "conv-8876",
        "buyer_open_id": "BUYER_9f8e7d6c", "buyer_nick": "小王", "msg_type": "text",
        "content": "你好，我昨天买的外套什么时候发货？", "create_time": 1700000000, "fans_level": 1
    })
    .to_string();
    let body = serde_json::json!([{"tag": "9001", "msg_id": "7301234567890123456", "data": data}]).to_string();
    let sign = md5_hex(&[APP_KEY.as_bytes(), body.as_bytes(), SECRET.as_bytes()], Case::Lower);
    HttpPush {
        method: "POST".into(),
        path: "/hooks/douyin/dy-1".into(),
        query: String::new(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("app-id".into(), APP_KEY.into()),
            ("event-sign".into(), sign),
        ],
        body: body.into_bytes(),
    }
}

fn time<T>(label: &str, iterations: u32, mut f: impl FnMut() -> T) {
    for _ in 0..iterations / 10 {
        black_box(f());
    }
    let started = Instant::now();
    for _ in 0..iterations {
        black_box(f());
    }
    let per = started.elapsed().as_nanos() as f64 / f64::from(iterations);
    println!("{label:<48} {per:>9.0} ns/call  ({:>9.0} calls/s, {iterations} iterations)", 1e9 / per);
}

fn main() {
    let artifacts = huiliu_e2e::release_artifacts();
    let dir = artifacts.plugins_dir(&["huiliu-douyin"]);
    let host = PluginHost::load_dir(dir.path());
    assert!(host.rejected.is_empty(), "{:?}", host.rejected);
    let shop = Shop {
        id: "dy-1".into(),
        platform: "douyin".into(),
        name: "dy-1".into(),
        enabled: true,
        settings: [("app_key", APP_KEY), ("app_secret", SECRET), ("access_token", "t")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    };
    let connector = host.instantiate(&shop, shop.settings.clone(), Arc::new(Metrics::new())).expect("douyin connector");
    let push = push();
    let now = 1_700_000_000_000;
    match connector.decode_push(&push, now).expect("decode") {
        PushOutcome::Accepted { events, .. } => assert_eq!(events.len(), 1, "the sample push must decode to one event"),
        other => panic!("sample push not accepted: {other:?}"),
    }
    println!("plugin round trip through the C ABI (release build, {} byte push body)", push.body.len());
    time("decode_push (douyin chat, signed)", 200_000, || connector.decode_push(&push, now));
    time("connections (ABI overhead only)", 500_000, || connector.connections());
}
