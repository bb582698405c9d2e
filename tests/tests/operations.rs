//! Running it for real: an online backup taken while buyers' messages pour in holds every
//! message acknowledged before it started, and restores into a fresh gateway; a restore refuses
//! a running gateway; `huiliu migrate --dry-run` says what would run.

use std::process::Command;
use std::sync::{Arc, Mutex};

use huiliu_e2e::{Daemon, artifacts, runtime, shop_toml};
use huiliu_sim::douyin::DouyinSim;
use huiliu_sim::{BuyerChat, Faults, SimConfig, now_ms};

fn huiliu(args: &[&str]) -> (bool, String) {
    let out = Command::new(artifacts().huiliu()).args(args).output().expect("run huiliu");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn a_backup_under_load_restores_into_a_fresh_gateway_with_every_acknowledged_message() {
    let rt = runtime();
    let sim = rt.block_on(DouyinSim::start(SimConfig::sample("7000901"), Arc::new(Faults::default()))).unwrap();
    let plugins = artifacts().plugins_dir(&["huiliu-douyin"]);
    let shops = shop_toml("dy-1", "douyin", &sim.shop_settings());
    let source = Daemon::start(plugins.path(), &shops);
    sim.set_gateway(format!("http://{}/hooks/douyin/dy-1", source.addr));

    // Buyers keep writing from 8 tasks; each acknowledged id is recorded as it is acked.
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let load = {
        let (sim, acked) = (sim.clone(), acked.clone());
        rt.spawn(async move {
            let mut tasks = Vec::new();
            for t in 0..8 {
                let (sim, acked) = (sim.clone(), acked.clone());
                tasks.push(tokio::spawn(async move {
                    for i in 0..40 {
                        let id = format!("bk-{t}-{i}");
                        let chat =
                            BuyerChat::text(&id, &format!("buyer-{t}"), &format!("第{i}条，电话13812345678"), now_ms());
                        if sim.deliver_chat(&chat).await.acked {
                            acked.lock().unwrap().push(id);
                        }
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        })
    };
    // Back up once a third of the load is in, while the rest keeps coming.
    source.wait_for("the first 100 messages", 60, || (acked.lock().unwrap().len() >= 100).then_some(()));
    let before: Vec<String> = acked.lock().unwrap().clone();
    let backup = tempfile::tempdir().unwrap();
    let file = backup.path().join("huiliu-backup.db");
    let config = source.config_dir.path().to_str().unwrap().to_owned();
    let (ok, out) = huiliu(&["backup", "--config", &config, "--to", file.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(out.contains("backup written to"), "{out}");
    let during = acked.lock().unwrap().len();
    rt.block_on(load).unwrap();
    assert_eq!(acked.lock().unwrap().len(), 320, "every message was acknowledged");
    assert!(during < 320, "the backup ran under load ({during} acked when it finished)");

    // A restore refuses a running gateway.
    let (ok, out) = huiliu(&["restore", "--config", &config, "--from", file.to_str().unwrap()]);
    assert!(!ok && out.contains("stop the gateway"), "{out}");
    // A backup never overwrites a file.
    let (ok, out) = huiliu(&["backup", "--config", &config, "--to", file.to_str().unwrap()]);
    assert!(!ok && out.contains("never overwrites"), "{out}");

    // A fresh gateway (stopped), restored from the backup, then started.
    let mut fresh = Daemon::start(plugins.path(), &shops);
    fresh.kill9();
    let fresh_config = fresh.config_dir.path().to_str().unwrap().to_owned();
    let (ok, out) = huiliu(&["restore", "--config", &fresh_config, "--from", file.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(out.contains("the previous database is kept as"), "{out}");
    let (ok, out) = huiliu(&["migrate", "--config", &fresh_config, "--dry-run"]);
    assert!(ok && out.contains("nothing to migrate"), "{out}");
    fresh.restart();
    let stored = fresh.stored_inbound_ids();
    let missing: Vec<&String> = before.iter().filter(|id| !stored.contains(id)).collect();
    assert!(missing.is_empty(), "acknowledged before the backup but not restored: {missing:?}");
    let mut unique = stored.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), stored.len(), "no message twice");
    assert!(stored.len() >= before.len() && stored.len() <= during.max(before.len()) + 8, "{} stored", stored.len());
    // Masked in the backup as in the source: the phone number never reached the store.
    let bytes = std::fs::read(&file).unwrap();
    assert!(!bytes.windows(11).any(|w| w == b"13812345678"), "a raw phone number is in the backup");
}

const ONE_SEAT: &str = r#"
[routing]
fallback_group = "presales"
first_response_limit_s = 600
[[group]]
id = "presales"
name = "售前"
[[agent]]
id = "a1"
name = "小美"
groups = { presales = 5 }
max_sessions = 1
[[rule]]
name = "默认"
[[rule.target]]
group = "presales"
"#;

#[test]
fn a_buyer_is_exported_and_erased_through_the_api_and_the_agents_seat_is_freed() {
    use serde_json::json;
    let rt = runtime();
    let sim = rt.block_on(DouyinSim::start(SimConfig::sample("7000902"), Arc::new(Faults::default()))).unwrap();
    let plugins = artifacts().plugins_dir(&["huiliu-douyin"]);
    let shops = shop_toml("dy-1", "douyin", &sim.shop_settings());
    let launch = huiliu_e2e::Launch {
        files: vec![("routing.toml", ONE_SEAT.to_owned())],
        ..huiliu_e2e::Launch::new(plugins.path(), &shops)
    };
    let daemon = Daemon::launch(launch);
    sim.set_gateway(format!("http://{}/hooks/douyin/dy-1", daemon.addr));
    let (status, body) = daemon.api("POST", "/api/v1/agents/a1/status", Some(&json!({"status": "online"})));
    assert_eq!(status, 200, "{body}");
    const PHRASE: &str = "我叫王小明，紫色大衣袖口开线了";
    assert!(rt.block_on(sim.deliver_chat(&BuyerChat::text("er-1", "buyer-erase", PHRASE, now_ms()))).acked);
    daemon.wait_for("buyer-erase assigned to a1", 20, || {
        let (_, b) = daemon.api("GET", "/api/v1/sessions?shop=dy-1", None);
        b["sessions"].as_array()?.iter().any(|s| s["agent"] == "a1").then_some(())
    });
    assert!(rt.block_on(sim.deliver_chat(&BuyerChat::text("er-2", "buyer-stays", "在吗，想问尺码", now_ms()))).acked);

    let who =
        |buyer: &str, reason: &str| json!({"platform": "douyin", "shop": "dy-1", "buyer_id": buyer, "reason": reason});
    let (status, export) =
        daemon.api("POST", "/api/v1/buyers/export", Some(&who("buyer-erase", "买家申请副本（工单 41）")));
    assert_eq!(status, 200, "{export}");
    assert!(export.to_string().contains("袖口开线"), "{export}");
    assert!(!export.to_string().contains("想问尺码"), "only this buyer's data: {export}");
    let (status, body) = daemon.api("POST", "/api/v1/buyers/erase", Some(&who("buyer-erase", " ")));
    assert_eq!(status, 400, "a reason is required: {body}");

    let (status, report) =
        daemon.api("POST", "/api/v1/buyers/erase", Some(&who("buyer-erase", "买家申请删除（工单 42）")));
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["sessions"], 1, "{report}");
    // The open conversation was closed through routing: a1's seat went to the waiting buyer.
    daemon.wait_for("the waiting buyer to get a1's seat", 20, || {
        let (_, b) = daemon.api("GET", "/api/v1/sessions?shop=dy-1", None);
        let sessions = b["sessions"].as_array()?.clone();
        (sessions.len() == 1 && sessions[0]["agent"] == "a1").then_some(())
    });
    let (status, body) = daemon.api("POST", "/api/v1/buyers/export", Some(&who("buyer-erase", "核对")));
    assert_eq!(status, 404, "nothing left: {body}");
    let subject = "buyer douyin/dy-1/buyer-erase";
    let (status, trail) =
        daemon.api("GET", &format!("/api/v1/audit?subject={}", subject.replace(' ', "%20").replace('/', "%2F")), None);
    assert_eq!(status, 200, "{trail}");
    let actions: Vec<&str> = trail["entries"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    assert!(actions.contains(&"export") && actions.contains(&"erase"), "audited with who and why: {trail}");
    // No trace of the erased text in the database files.
    for file in ["huiliu.db", "huiliu.db-wal"] {
        let bytes = std::fs::read(daemon.config_dir.path().join(file)).unwrap_or_default();
        let needle = "袖口开线".as_bytes();
        assert!(!bytes.windows(needle.len()).any(|w| w == needle), "the erased text survives in {file}");
    }
}
