//! Channel status as data, end to end: the real daemon runs the real Taobao connector against
//! the TMC simulator, and readiness, the status API and the connects metric read the state the
//! connector reported (never its prose). A TMC refusal that does not name the credentials
//! recovers by itself.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use huiliu_e2e::{Daemon, artifacts, runtime, shop_toml};
use huiliu_sim::taobao::TaobaoSim;
use huiliu_sim::{BuyerChat, Faults, SimConfig, now_ms};
use serde_json::Value;

const KEY: &str = "taobao/tb-1/tmc";
const CONNECTED_METRIC: &str = r#"huiliu_channel_connects_total{platform="taobao",reason="connected"}"#;

struct Taobao {
    rt: tokio::runtime::Runtime,
    sim: TaobaoSim,
    daemon: Daemon,
    _plugins: tempfile::TempDir,
}

/// The TMC simulator and a daemon serving shop `tb-1`; `before` sets faults before the daemon
/// first connects.
fn taobao(before: impl FnOnce(&Faults)) -> Taobao {
    let rt = runtime();
    let faults = Arc::new(Faults::default());
    before(&faults);
    let sim = rt.block_on(TaobaoSim::start(SimConfig::sample("tbshop"), faults.clone())).unwrap();
    let plugins = artifacts().plugins_dir(&["huiliu-taobao"]);
    let daemon = Daemon::start(plugins.path(), &shop_toml("tb-1", "taobao", &sim.shop_settings()));
    Taobao { rt, sim, daemon, _plugins: plugins }
}

fn readyz(daemon: &Daemon) -> Value {
    let (status, body) = daemon.request("GET", "/readyz", &[], b"");
    let body: Value = serde_json::from_slice(&body).expect("readyz is JSON");
    assert_eq!(status, 200, "{body}");
    body
}

/// Waits until `/readyz` shows the TMC channel connected; returns the body.
fn wait_connected(daemon: &Daemon, secs: u64) -> Value {
    daemon.wait_for("the TMC channel to show connected in /readyz", secs, || {
        let body = readyz(daemon);
        (body["channels"][KEY] == "connected").then_some(body)
    })
}

#[test]
fn a_connected_tmc_channel_shows_in_readyz_status_and_metrics() {
    let t = taobao(|_| {});
    let ready = wait_connected(&t.daemon, 20);
    let state = &ready["channel_states"][KEY];
    assert_eq!(state["state"], "connected", "{ready}");
    assert_eq!(state["operator_must_act"], false, "{ready}");
    assert!(state["detail"].as_str().unwrap_or("").contains("connected to TMC as group"), "{ready}");

    let (status, body) = t.daemon.api("GET", "/api/v1/status", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["channels"][KEY], "connected", "{body}");
    assert_eq!(body["channel_states"][KEY]["state"], "connected", "{body}");

    assert_eq!(t.daemon.metric(CONNECTED_METRIC), 1.0);
    let log = t.daemon.log_text();
    assert!(log.contains("channel connected"), "connects are logged at info:\n{log}");
    assert!(!log.contains('\x1b'), "a log written to a file has no terminal colour codes:\n{log}");

    // And data flows on it.
    let delivery = t.rt.block_on(t.sim.deliver_chat(&BuyerChat::text("tb-ch-1", "AAHbuyer1", "在吗", now_ms())));
    assert!(delivery.acked, "{delivery:?}");
}

#[test]
fn a_tmc_refusal_that_does_not_name_the_credentials_recovers() {
    let t = taobao(|faults| {
        *faults.refuse_connect_phrase.lock().unwrap() = "too many connections".into();
        faults.refuse_connects.store(1, Ordering::SeqCst);
    });
    // Refused once with 401 `too many connections`: reconnect with backoff (the connector waits
    // at least 5 s), not a stop.
    let ready = wait_connected(&t.daemon, 30);
    assert_eq!(ready["channel_states"][KEY]["state"], "connected", "{ready}");
    let rejected = t.sim.journal().rejected();
    assert!(
        rejected.iter().any(|r| r.contains("fault refuse_connects")),
        "the first CONNECT was refused: {rejected:?}"
    );
    assert!(t.sim.journal().connections.load(Ordering::SeqCst) >= 2, "the gateway connected again");
    assert_eq!(t.daemon.metric(CONNECTED_METRIC), 1.0);
    let log = t.daemon.log_text();
    assert!(log.contains("TMC refused the connection: status 401 too many connections"), "{log}");
    assert!(!log.contains("channel stopped"), "a refusal that does not name the credentials is not final:\n{log}");

    let delivery = t.rt.block_on(t.sim.deliver_chat(&BuyerChat::text("tb-ch-2", "AAHbuyer2", "你好", now_ms())));
    assert!(delivery.acked, "{delivery:?}");
}

#[test]
fn a_refusal_that_names_the_credentials_stops_the_channel_for_an_operator_but_not_for_good() {
    let t = taobao(|faults| faults.bad_signature_pushes.store(1, Ordering::SeqCst));
    let started = now_ms();
    let ready = t.daemon.wait_for("the TMC channel to show stopped in /readyz", 20, || {
        let body = readyz(&t.daemon);
        (body["channel_states"][KEY]["state"] == "stopped").then_some(body)
    });
    let state = &ready["channel_states"][KEY];
    assert_eq!(state["operator_must_act"], true, "{ready}");
    assert!(state["detail"].as_str().unwrap_or("").contains("invalid sign"), "{ready}");
    assert!(ready["channels"][KEY].as_str().unwrap_or("").starts_with("stopped: "), "{ready}");
    // Retried slowly (every 10 minutes), not never.
    let next = state["next_attempt_ms"].as_i64().expect("a next attempt is due");
    assert!((started + 590_000..=now_ms() + 610_000).contains(&next), "{ready}");
    let log = t.daemon.log_text();
    assert!(log.contains("retrying slowly"), "{log}");
    assert_eq!(t.daemon.metric(CONNECTED_METRIC), 0.0);
    // The lead's dashboard raises it.
    let (status, dash) = t.daemon.api("GET", "/api/v1/dashboard", None);
    assert_eq!(status, 200, "{dash}");
    let alerts = dash["alerts"].as_array().cloned().unwrap_or_default();
    assert!(
        alerts.iter().any(|a| a["kind"] == "channel_stopped" && a["message"].as_str().unwrap_or("").contains(KEY)),
        "{dash}"
    );
}
