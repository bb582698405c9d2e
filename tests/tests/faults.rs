//! Faults under load, end to end: while a platform keeps pushing buyer messages, something goes
//! wrong, and afterwards every acknowledged message is stored exactly once and every reply
//! reaches the platform exactly once.
//!
//! - bad pushes (wrongly signed, malformed, oversized, replayed, for an unknown shop, a garbage
//!   TMC frame): each refused or absorbed with a clear reason and counted, nothing crashes;
//! - the platform API down for a while: the outbox drains afterwards, nothing lost or repeated;
//! - a plugin panicking on one push: that push fails, the daemon serves the rest.
//!
//! SIGKILL under load is `crash.rs`. The short forms run by default (and in `.ci/run`);
//! `HUILIU_FAULT_FULL=1` runs the long ones (API down 60 s, 30 s of background traffic).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use huiliu_e2e::load::{self, Pace, Platform, Run};
use huiliu_e2e::{Daemon, artifacts, runtime, shop_toml};
use huiliu_sim::douyin::DouyinSim;
use huiliu_sim::taobao::TaobaoSim;
use huiliu_sim::{BuyerChat, Faults, SimConfig, now_ms};
use serde_json::{Value, json};

fn full() -> bool {
    std::env::var("HUILIU_FAULT_FULL").as_deref() == Ok("1")
}

/// Retries compressed to keep the test short: at most 1 s apart. The attempt budget is raised to
/// match, so that it still outlasts a 60 s outage as the defaults do (12 attempts from 1 s doubling
/// to 300 s span about 18 minutes); with 12 attempts 1 s apart, replies would give up after ~10 s.
const FAST_OUTBOX: &str = "[outbox]\nbackoff_base_ms = 100\nbackoff_max_ms = 1000\nmax_attempts = 200\n";

/// Background traffic: `per_s` Douyin pushes a second for `secs`, over a pool of 20 buyers.
fn background(rt: &tokio::runtime::Runtime, sim: &DouyinSim, per_s: f64, secs: f64) -> tokio::task::JoinHandle<Run> {
    let platform = Platform::Douyin(sim.clone());
    rt.spawn(async move {
        load::drive(
            &platform,
            "bg",
            Duration::from_secs_f64(secs),
            None,
            Pace::Rate { per_s, max_in_flight: 256 },
            Arc::new(|n| format!("bg-buyer-{}", n % 20)),
        )
        .await
    })
}

/// Every acknowledged background message stored exactly once.
fn assert_stored_once(daemon: &Daemon, run: &Run) {
    assert_eq!(run.failed, 0, "every background push acknowledged (the platform retries 3 times)");
    assert!(run.acked > 0);
    let stored = daemon.stored_inbound_ids();
    let unique: BTreeSet<&String> = stored.iter().collect();
    assert_eq!(stored.len(), unique.len(), "no message stored twice");
    let missing: Vec<&String> = run.sent.iter().map(|s| &s.id).filter(|id| !unique.contains(id)).collect();
    assert!(missing.is_empty(), "acknowledged but not stored: {missing:?}");
}

#[test]
fn bad_pushes_under_load_are_refused_with_a_reason_counted_and_crash_nothing() {
    let rt = runtime();
    let faults = Arc::new(Faults::default());
    let douyin = rt.block_on(DouyinSim::start(SimConfig::sample("7000444"), faults.clone())).unwrap();
    let taobao = rt.block_on(TaobaoSim::start(SimConfig::sample("fault-tb-shop"), faults.clone())).unwrap();
    let plugins = artifacts().plugins_dir(&["huiliu-douyin", "huiliu-taobao"]);
    let shops =
        shop_toml("dy-1", "douyin", &douyin.shop_settings()) + &shop_toml("tb-1", "taobao", &taobao.shop_settings());
    let daemon = Daemon::start(plugins.path(), &shops);
    douyin.set_gateway(format!("http://{}/hooks/douyin/dy-1", daemon.addr));
    let secs = if full() { 30.0 } else { 4.0 };
    let traffic = background(&rt, &douyin, 100.0, secs);

    let rounds = 5;
    let authentic = |id: &str| {
        let data = json!({"msg_id": id, "shop_id": 7000444, "conversation_id": "conv-r", "buyer_open_id": "replayer",
            "buyer_nick": "重放", "msg_type": "text", "content": "重放测试", "create_time": now_ms() / 1000});
        json!([{"tag": "9001", "msg_id": id, "data": data.to_string()}]).to_string().into_bytes()
    };
    let first = rt.block_on(douyin.push_raw(authentic("replayed-1"), true));
    assert!(first.acked, "{first:?}");
    let oversized = vec![b' '; (1 << 20) + 1];
    for round in 0..rounds {
        // Wrongly signed: refused before parsing, with the platform's failure body.
        let d = rt.block_on(douyin.push_raw(authentic(&format!("forged-{round}")), false));
        assert_eq!((d.status, d.acked), (401, false), "{d:?}");
        assert_eq!(d.detail, r#"{"code":1,"msg":"fail"}"#);
        // Authentic but not JSON: kept as a dead letter with its raw bytes and acknowledged
        // (redelivering it could never succeed).
        let d = rt.block_on(douyin.push_raw(format!("{{not json {round}").into_bytes(), true));
        assert_eq!((d.status, d.acked), (200, true), "{d:?}");
        // Over the 1 MiB push limit: refused by the gateway before the plugin sees it.
        let d = rt.block_on(douyin.push_raw(oversized.clone(), true));
        assert_eq!((d.status, d.acked), (413, false), "{d:?}");
        assert!(d.detail.contains("too_large"), "{d:?}");
        // A replay of an authentic push: acknowledged (it is indistinguishable from the
        // platform's redelivery) and absorbed by the dedupe.
        let d = rt.block_on(douyin.push_raw(authentic("replayed-1"), true));
        assert_eq!((d.status, d.acked), (200, true), "{d:?}");
        // A push for a shop that is not configured.
        let (status, body) =
            daemon.request("POST", "/hooks/douyin/no-such-shop", &[("content-type", "application/json")], b"[]");
        assert_eq!(status, 404);
        assert!(String::from_utf8_lossy(&body).contains("unknown_shop"));
        // A garbage TMC frame on the Taobao connector's WebSocket.
        assert!(taobao.push_raw_frame(vec![0xff, 0x00, 0x13, round as u8]), "a TMC session is open");
        std::thread::sleep(Duration::from_millis(200));
    }
    // The Taobao channel still delivers after the garbage frames.
    let d = rt.block_on(taobao.deliver_chat(&BuyerChat::text("tb-after-garbage", "AAHbuyerG", "还在吗", now_ms())));
    assert!(d.acked, "{d:?}");

    let run = rt.block_on(traffic).unwrap();
    assert_eq!(daemon.request("GET", "/healthz", &[], b"").0, 200);
    assert_stored_once(&daemon, &run);
    let replayed = daemon.stored_inbound_ids().iter().filter(|id| *id == "replayed-1").count();
    assert_eq!(replayed, 1, "the replayed push stored once");

    let m = |line: &str| daemon.metric(line);
    let r = rounds as f64;
    assert_eq!(m(r#"huiliu_pushes_rejected_total{platform="douyin",reason="bad_signature"}"#), r);
    assert_eq!(m(r#"huiliu_pushes_rejected_total{platform="douyin",reason="too_large"}"#), r);
    assert_eq!(m(r#"huiliu_pushes_rejected_total{platform="unknown",reason="unknown_shop"}"#), r);
    assert_eq!(m(r#"huiliu_dead_letters_total{platform="douyin"}"#), r);
    assert!(m(r#"huiliu_events_deduped_total{platform="douyin"}"#) >= r, "replays counted as deduped");
    let tmc_rejected = m(r#"huiliu_pushes_rejected_total{platform="taobao",reason="malformed"}"#)
        + m(r#"huiliu_dead_letters_total{platform="taobao"}"#);
    assert!(tmc_rejected >= r, "garbage TMC frames counted: {tmc_rejected}");
    let log = daemon.log_text();
    for reason in ["bad_signature", "too_large", "unknown_shop", "undecodable push units"] {
        assert!(log.contains(reason), "the log names `{reason}`");
    }
    eprintln!("{} background messages acknowledged and stored once beside {rounds} rounds of bad pushes", run.acked);
}

#[test]
fn platform_api_down_under_load_then_the_outbox_drains_without_loss_or_repeats() {
    let down_for = Duration::from_secs(if full() { 60 } else { 5 });
    let rt = runtime();
    let faults = Arc::new(Faults::default());
    let sim = rt.block_on(DouyinSim::start(SimConfig::sample("7000333"), faults.clone())).unwrap();
    let plugins = artifacts().plugins_dir(&["huiliu-douyin"]);
    let daemon = Daemon::start_with(plugins.path(), &shop_toml("dy-1", "douyin", &sim.shop_settings()), FAST_OUTBOX);
    sim.set_gateway(format!("http://{}/hooks/douyin/dy-1", daemon.addr));
    let traffic = background(&rt, &sim, 50.0, down_for.as_secs_f64() + 4.0);
    let sessions: Vec<i64> = daemon.wait_for("sessions from the background traffic", 20, || {
        let s: Vec<i64> = daemon.sessions().iter().filter_map(|s| s["id"].as_i64()).collect();
        (s.len() >= 10).then_some(s)
    });

    faults.api_down.store(true, Ordering::SeqCst);
    let went_down = Instant::now();
    let mut replies: BTreeMap<String, i64> = BTreeMap::new();
    let mut round = 0;
    while went_down.elapsed() < down_for {
        for id in sessions.iter().take(10) {
            let (status, body) = daemon.api(
                "POST",
                &format!("/api/v1/sessions/{id}/reply"),
                Some(&json!({"text": format!("平台故障期间的回复{round}，会话{id}")})),
            );
            assert_eq!(status, 202, "a reply is accepted while the platform is down: {body}");
            replies.insert(body["client_msg_id"].as_str().unwrap().to_owned(), *id);
        }
        round += 1;
        std::thread::sleep(down_for / 5);
    }
    assert!(sim.journal().received().is_empty(), "nothing gets through while the API is down");
    let failed_attempts = daemon.metric(r#"huiliu_sends_total{platform="douyin",reason="retryable"}"#);
    faults.api_down.store(false, Ordering::SeqCst);
    let recovered = Instant::now();

    daemon.wait_for("the outbox to drain", 60, || {
        let got: BTreeSet<String> = sim.journal().received().into_iter().map(|r| r.client_msg_id).collect();
        replies.keys().all(|c| got.contains(c)).then_some(())
    });
    let drained_in = recovered.elapsed();
    daemon.wait_for("every reply marked sent", 30, || {
        replies
            .iter()
            .all(|(c, s)| {
                daemon.session_messages(*s).iter().any(|m| m["client_msg_id"] == c.as_str() && m["delivery"] == "sent")
            })
            .then_some(())
    });
    let received = sim.journal().received();
    for c in replies.keys() {
        assert_eq!(received.iter().filter(|r| &r.client_msg_id == c).count(), 1, "{c} sent exactly once");
    }
    assert!(received.iter().all(|r| !r.duplicate), "no reply sent twice");
    let run = rt.block_on(traffic).unwrap();
    assert_stored_once(&daemon, &run);
    eprintln!(
        "API down {down_for:?}: {} replies queued, {failed_attempts} failed attempts meanwhile, drained {drained_in:.1?} after recovery; {} buyer messages stored once",
        replies.len(),
        run.acked
    );
}

#[test]
fn a_plugin_panicking_on_a_push_under_load_fails_that_push_and_the_rest_is_served() {
    let rt = runtime();
    let sim = rt.block_on(DouyinSim::start(SimConfig::sample("7000222"), Arc::new(Faults::default()))).unwrap();
    let plugins = artifacts().plugins_dir(&["huiliu-douyin", "fixture-panic-decode"]);
    let shops = shop_toml("dy-1", "douyin", &sim.shop_settings()) + "[[shop]]\nid = \"fx-1\"\nplatform = \"fixture\"\n";
    let daemon = Daemon::start(plugins.path(), &shops);
    sim.set_gateway(format!("http://{}/hooks/douyin/dy-1", daemon.addr));
    let traffic = background(&rt, &sim, 100.0, if full() { 30.0 } else { 4.0 });
    let panics = 5;
    for i in 0..panics {
        std::thread::sleep(Duration::from_millis(300));
        let (status, body) = daemon.request("POST", "/hooks/fixture/fx-1", &[], format!("!boom {i}").as_bytes());
        assert_eq!(status, 500);
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!((body["error"].as_str(), body["plugin"].as_str()), (Some("plugin_panic"), Some("panic-decode")));
        // The same plugin still decodes the next push.
        let (status, _) = daemon.request("POST", "/hooks/fixture/fx-1", &[], format!("fine {i}").as_bytes());
        assert_eq!(status, 200);
    }
    let run = rt.block_on(traffic).unwrap();
    assert_stored_once(&daemon, &run);
    assert_eq!(daemon.metric(r#"huiliu_plugin_panics_total{plugin="panic-decode",op="decode_push"}"#), panics as f64);
    assert_eq!(
        daemon.metric(r#"huiliu_pushes_rejected_total{platform="fixture",reason="plugin_panic"}"#),
        panics as f64
    );
    eprintln!("{panics} plugin panics; {} Douyin messages acknowledged and stored once meanwhile", run.acked);
}
