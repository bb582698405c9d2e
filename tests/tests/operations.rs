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
