//! `shops.toml` reloads live, end to end: the real daemon, the real connectors and the platform
//! simulators. A shop added to the file is served after a reload, a removed one is not, a bad
//! file keeps the running shops and says why, and a TMC channel stopped for bad credentials
//! connects at once when the file is fixed (without waiting for the 10-minute retry).

use std::sync::Arc;

use huiliu_e2e::{Daemon, artifacts, runtime, shop_toml};
use huiliu_sim::douyin::DouyinSim;
use huiliu_sim::taobao::TaobaoSim;
use huiliu_sim::{BuyerChat, Faults, SimConfig, now_ms};
use serde_json::{Value, json};

fn write_shops(daemon: &Daemon, text: &str) {
    std::fs::write(daemon.config_dir.path().join("shops.toml"), text).expect("write shops.toml");
}

fn reload(daemon: &Daemon) -> (u16, Value) {
    daemon.api("POST", "/api/v1/config/reload", Some(&json!({})))
}

fn readyz(daemon: &Daemon) -> Value {
    let (_, body) = daemon.request("GET", "/readyz", &[], b"");
    serde_json::from_slice(&body).expect("readyz is JSON")
}

#[test]
fn shops_are_added_changed_and_removed_without_a_restart() {
    let rt = runtime();
    let faults = Arc::new(Faults::default());
    let one = rt.block_on(DouyinSim::start(SimConfig::sample("7000001"), faults.clone())).unwrap();
    let two = rt.block_on(DouyinSim::start(SimConfig::sample("7000002"), faults)).unwrap();
    let plugins = artifacts().plugins_dir(&["huiliu-douyin"]);
    let first = shop_toml("dy-1", "douyin", &one.shop_settings());
    let daemon = Daemon::start(plugins.path(), &first);
    one.set_gateway(format!("http://{}/hooks/douyin/dy-1", daemon.addr));
    two.set_gateway(format!("http://{}/hooks/douyin/dy-2", daemon.addr));

    // Not configured yet: the push is refused as an unknown shop.
    let before = rt.block_on(two.deliver_chat(&BuyerChat::text("9101", "buyer-2", "在吗", now_ms())));
    assert!(!before.acked, "{before:?}");
    assert_eq!(before.status, 404, "{before:?}");

    // Added to the file and reloaded through the API: served.
    let both = format!("{first}\n{}", shop_toml("dy-2", "douyin", &two.shop_settings()));
    write_shops(&daemon, &both);
    let (status, body) = reload(&daemon);
    assert_eq!(status, 200, "{body}");
    assert!(body.to_string().contains("shops.toml"), "the report names the file: {body}");
    let after = rt.block_on(two.deliver_chat(&BuyerChat::text("9102", "buyer-2", "在吗", now_ms())));
    assert!(after.acked, "{after:?}");
    assert_eq!(readyz(&daemon)["shops"], json!(["douyin/dy-1", "douyin/dy-2"]));
    // The first shop kept serving throughout.
    let kept = rt.block_on(one.deliver_chat(&BuyerChat::text("9103", "buyer-1", "你好", now_ms())));
    assert!(kept.acked, "{kept:?}");

    // A bad file (a key the plugin does not know) is rejected whole, with the reason, and both
    // shops keep serving.
    write_shops(&daemon, &format!("{both}bogus_key = \"x\"\n"));
    let (status, body) = reload(&daemon);
    assert!(status >= 400, "{status} {body}");
    assert!(body.to_string().contains("bogus_key"), "the error names the key: {body}");
    let still = rt.block_on(two.deliver_chat(&BuyerChat::text("9104", "buyer-2", "还在吗", now_ms())));
    assert!(still.acked, "{still:?}");
    assert!(daemon.log_text().contains("the running shops stay"), "the rejection is logged");

    // A changed secret: the shop gets a new connector; the old secret no longer verifies.
    let mut changed = two.shop_settings();
    changed.insert("app_secret".into(), "another-secret".into());
    write_shops(&daemon, &format!("{first}\n{}", shop_toml("dy-2", "douyin", &changed)));
    let (status, body) = reload(&daemon);
    assert_eq!(status, 200, "{body}");
    let refused = rt.block_on(two.deliver_chat(&BuyerChat::text("9105", "buyer-2", "在吗", now_ms())));
    assert!(!refused.acked, "signed with the old secret, the push must fail verification: {refused:?}");
    assert!(daemon.log_text().contains("shop connector replaced"), "{}", daemon.log_text());

    // Removed: refused again; the other shop still served.
    write_shops(&daemon, &first);
    let (status, body) = reload(&daemon);
    assert_eq!(status, 200, "{body}");
    let gone = rt.block_on(two.deliver_chat(&BuyerChat::text("9106", "buyer-2", "在吗", now_ms())));
    assert_eq!(gone.status, 404, "{gone:?}");
    let served = rt.block_on(one.deliver_chat(&BuyerChat::text("9107", "buyer-1", "好的", now_ms())));
    assert!(served.acked, "{served:?}");
    assert_eq!(readyz(&daemon)["shops"], json!(["douyin/dy-1"]));
    assert!(
        daemon.metric(r#"huiliu_config_reloads_total{platform="shops",reason="ok"}"#) >= 3.0,
        "reloads are counted"
    );
}

#[test]
fn a_channel_stopped_for_bad_credentials_connects_at_once_when_shops_toml_is_fixed() {
    let rt = runtime();
    let sim = rt.block_on(TaobaoSim::start(SimConfig::sample("tbshop"), Arc::new(Faults::default()))).unwrap();
    let plugins = artifacts().plugins_dir(&["huiliu-taobao"]);
    let good = sim.shop_settings();
    let mut wrong = good.clone();
    wrong.insert("app_secret".into(), "not-the-secret".into());
    let daemon = Daemon::start(plugins.path(), &shop_toml("tb-1", "taobao", &wrong));
    let key = "taobao/tb-1/tmc";
    daemon.wait_for("the TMC channel to stop on the wrong secret", 20, || {
        (readyz(&daemon)["channel_states"][key]["state"] == "stopped").then_some(())
    });

    // Fixed in the file; the watcher picks the change up within its 2 s tick (no API call).
    write_shops(&daemon, &shop_toml("tb-1", "taobao", &good));
    let fixed_at = now_ms();
    daemon.wait_for("the TMC channel to connect after the fix", 15, || {
        (readyz(&daemon)["channel_states"][key]["state"] == "connected").then_some(())
    });
    assert!(now_ms() - fixed_at < 15_000, "connected at once, not after the 10-minute retry");
    let delivery = rt.block_on(sim.deliver_chat(&BuyerChat::text("tb-fix-1", "AAHbuyer9", "在吗", now_ms())));
    assert!(delivery.acked, "{delivery:?}");
}
