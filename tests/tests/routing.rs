//! Routing through the real daemon: an agent goes online, a buyer's session is assigned with a
//! recorded reason, the cap holds the next buyer in the queue (told their position), the state
//! survives SIGKILL, and a close drains the queue.

use std::sync::Arc;

use huiliu_e2e::{Daemon, artifacts};
use huiliu_sim::douyin::DouyinSim;
use huiliu_sim::{BuyerChat, Faults, SimConfig, now_ms};
use serde_json::{Value, json};

const ROUTING: &str = r#"
[routing]
fallback_group = "presales"
first_response_limit_s = 600
[messages]
welcome = "您好，我是{agent}"
queue_position = "您前面还有{position}位"
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

fn session_of(daemon: &Daemon, buyer_text: &str) -> Option<Value> {
    let (_, body) = daemon.api("GET", "/api/v1/sessions?shop=dy-1", None);
    for s in body["sessions"].as_array()? {
        let id = s["id"].as_i64()?;
        let (_, detail) = daemon.api("GET", &format!("/api/v1/sessions/{id}"), None);
        if detail["messages"].as_array()?.iter().any(|m| m["text"] == buyer_text) {
            return Some(detail);
        }
    }
    None
}

#[test]
fn sessions_are_assigned_queued_restored_and_drained() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let sim = rt.block_on(DouyinSim::start(SimConfig::sample("7000555"), Arc::new(Faults::default()))).unwrap();
    let plugins = artifacts().plugins_dir(&["huiliu-douyin"]);
    let mut shops = String::from("[[shop]]\nid = \"dy-1\"\nplatform = \"douyin\"\n[shop.settings]\n");
    for (k, v) in sim.shop_settings() {
        shops.push_str(&format!("{k} = {}\n", Value::String(v)));
    }
    let mut daemon = Daemon::start(plugins.path(), &shops);
    std::fs::write(daemon.config_dir.path().join("routing.toml"), ROUTING).unwrap();
    daemon.restart(); // pick up routing.toml
    sim.set_gateway(format!("http://{}/hooks/douyin/dy-1", daemon.addr));

    let (status, body) = daemon.api("POST", "/api/v1/agents/a1/status", Some(&json!({"status": "online"})));
    assert_eq!(status, 200, "{body}");
    assert!(rt.block_on(sim.deliver_chat(&BuyerChat::text("r-1", "buyer-1", "这款有货吗", now_ms()))).acked);
    let first = daemon.wait_for("the first session to be assigned", 20, || {
        session_of(&daemon, "这款有货吗").filter(|d| d["session"]["state"] == "assigned")
    });
    assert_eq!(first["session"]["agent"], "a1");
    let decision = &first["decisions"][0];
    assert_eq!(decision["chosen"], "a1", "{decision}");
    assert!(decision["why"].as_str().is_some_and(|w| !w.is_empty()), "the decision says why: {decision}");
    daemon.wait_for("the welcome notice at the platform", 20, || {
        sim.journal().received().iter().any(|r| r.buyer_id == "buyer-1" && r.content.contains("我是小美")).then_some(())
    });

    // The agent's cap is 1: the next buyer waits and is told the position.
    assert!(rt.block_on(sim.deliver_chat(&BuyerChat::text("r-2", "buyer-2", "在吗在吗", now_ms()))).acked);
    let second = daemon.wait_for("the second session to queue", 20, || {
        session_of(&daemon, "在吗在吗").filter(|d| d["session"]["state"] == "queued")
    });
    daemon.wait_for("the queue notice", 20, || {
        sim.journal()
            .received()
            .iter()
            .any(|r| r.buyer_id == "buyer-2" && r.content.contains("前面还有1位"))
            .then_some(())
    });

    // SIGKILL: presence, the assignment and the queue come back from the store.
    daemon.restart();
    let (_, state) = daemon.api("GET", "/api/v1/routing", None);
    assert!(state.to_string().contains("a1"), "{state}");
    let id1 = first["session"]["id"].as_i64().unwrap();
    let (_, again) = daemon.api("GET", &format!("/api/v1/sessions/{id1}"), None);
    assert_eq!(
        (again["session"]["state"].as_str(), again["session"]["agent"].as_str()),
        (Some("assigned"), Some("a1"))
    );

    // Closing the first session frees the cap: the queued buyer gets the agent.
    let (status, _) = daemon.api("POST", &format!("/api/v1/sessions/{id1}/close"), None);
    assert_eq!(status, 200);
    let id2 = second["session"]["id"].as_i64().unwrap();
    daemon.wait_for("the queued session to be assigned after the close", 20, || {
        let (_, d) = daemon.api("GET", &format!("/api/v1/sessions/{id2}"), None);
        (d["session"]["state"] == "assigned" && d["session"]["agent"] == "a1").then_some(())
    });
}

const TWO_AGENTS: &str = r#"
[routing]
fallback_group = "presales"
first_response_limit_s = 600
[[group]]
id = "presales"
name = "售前"
[[group]]
id = "aftersales"
name = "售后"
[[agent]]
id = "a1"
name = "小美"
groups = { presales = 5 }
max_sessions = 5
[[agent]]
id = "b1"
name = "阿强"
groups = { aftersales = 5 }
max_sessions = 5
[[rule]]
name = "默认"
[[rule.target]]
group = "presales"
"#;

#[test]
fn transfer_with_a_handover_note_and_a_bad_routing_reload_keeps_the_running_config() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let sim = rt.block_on(DouyinSim::start(SimConfig::sample("7000556"), Arc::new(Faults::default()))).unwrap();
    let plugins = artifacts().plugins_dir(&["huiliu-douyin"]);
    let mut shops = String::from("[[shop]]\nid = \"dy-1\"\nplatform = \"douyin\"\n[shop.settings]\n");
    for (k, v) in sim.shop_settings() {
        shops.push_str(&format!("{k} = {}\n", Value::String(v)));
    }
    let mut daemon = Daemon::start(plugins.path(), &shops);
    let routing = daemon.config_dir.path().join("routing.toml");
    std::fs::write(&routing, TWO_AGENTS).unwrap();
    daemon.restart();
    sim.set_gateway(format!("http://{}/hooks/douyin/dy-1", daemon.addr));
    for agent in ["a1", "b1"] {
        assert_eq!(
            daemon.api("POST", &format!("/api/v1/agents/{agent}/status"), Some(&json!({"status": "online"}))).0,
            200
        );
    }
    assert!(rt.block_on(sim.deliver_chat(&BuyerChat::text("t-1", "buyer-t", "衣服破了想退", now_ms()))).acked);
    let s = daemon.wait_for("assignment to a1", 20, || {
        session_of(&daemon, "衣服破了想退").filter(|d| d["session"]["agent"] == "a1")
    });
    let id = s["session"]["id"].as_i64().unwrap();
    let (status, body) = daemon.api(
        "POST",
        &format!("/api/v1/sessions/{id}/transfer"),
        Some(&json!({"to_group": "aftersales", "problem": "衣服破损要退货", "tried": "核对了订单", "expects": "尽快退款"})),
    );
    assert_eq!(status, 200, "{body}");
    let moved = daemon.wait_for("the transfer to reach b1", 20, || {
        let (_, d) = daemon.api("GET", &format!("/api/v1/sessions/{id}"), None);
        (d["session"]["agent"] == "b1").then_some(d)
    });
    assert_eq!(moved["transfers"][0]["note"]["expectation"], "尽快退款", "{moved}");
    assert_eq!(moved["transfers"][0]["from_agent"], "a1");

    // A bad routing.toml: every error returned, the running routing stays.
    std::fs::write(&routing, "[routing]\nfallback_group = \"nowhere\"\n[[agent]]\nid = \"x\"\nmax_sessions = 0\n")
        .unwrap();
    let (status, body) = daemon.api("POST", "/api/v1/config/reload", None);
    assert_eq!(status, 422, "{body}");
    assert!(body["errors"].to_string().contains("routing.toml"), "{body}");
    assert!(rt.block_on(sim.deliver_chat(&BuyerChat::text("t-2", "buyer-u", "在吗", now_ms()))).acked);
    daemon.wait_for("routing still works on the running config", 20, || {
        session_of(&daemon, "在吗").filter(|d| d["session"]["agent"] == "a1")
    });
}

/// Two agents with their own Taobao sub-accounts on shop `tb-1`.
const WITH_ACCOUNTS: &str = r#"
[routing]
fallback_group = "presales"
first_response_limit_s = 600
[[group]]
id = "presales"
name = "售前"
[[group]]
id = "aftersales"
name = "售后"
[[agent]]
id = "a1"
name = "小美"
groups = { presales = 5 }
accounts = { tb-1 = "tbshop:小美" }
[[agent]]
id = "b1"
name = "阿强"
groups = { aftersales = 5 }
accounts = { tb-1 = "tbshop:阿强" }
[[rule]]
name = "默认"
[[rule.target]]
group = "presales"
"#;

#[test]
fn agents_reply_as_their_own_sub_account_and_a_transfer_hands_the_buyer_over_on_the_platform() {
    use huiliu_sim::taobao::{FORWARD_METHOD, SEND_METHOD, TaobaoSim};
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let sim = rt.block_on(TaobaoSim::start(SimConfig::sample("tbshop"), Arc::new(Faults::default()))).unwrap();
    let plugins = artifacts().plugins_dir(&["huiliu-taobao"]);
    let mut daemon = Daemon::start(plugins.path(), &huiliu_e2e::shop_toml("tb-1", "taobao", &sim.shop_settings()));
    std::fs::write(daemon.config_dir.path().join("routing.toml"), WITH_ACCOUNTS).unwrap();
    daemon.restart();
    for agent in ["a1", "b1"] {
        let (status, body) =
            daemon.api("POST", &format!("/api/v1/agents/{agent}/status"), Some(&json!({"status": "online"})));
        assert_eq!(status, 200, "{body}");
    }
    let delivery = rt.block_on(sim.deliver_chat(&BuyerChat::text("acc-1", "AAHbuyer7", "这件有M码吗", now_ms())));
    assert!(delivery.acked, "{delivery:?}");
    let id = daemon.wait_for("assignment to a1", 20, || {
        let (_, body) = daemon.api("GET", "/api/v1/sessions?shop=tb-1", None);
        let s = body["sessions"].as_array()?.first()?.clone();
        (s["agent"] == "a1").then(|| s["id"].as_i64()).flatten()
    });

    // a1's reply goes out as a1's sub-account, not the shop's default.
    let (status, body) = daemon.api(
        "POST",
        &format!("/api/v1/sessions/{id}/reply"),
        Some(&json!({"text": "有的亲，M码有货", "author": "a1"})),
    );
    assert_eq!(status, 202, "{body}");
    let sent = daemon.wait_for("a1's reply at the platform", 20, || {
        sim.journal().received().into_iter().find(|r| r.method == SEND_METHOD && r.content.contains("M码有货"))
    });
    assert_eq!(sent.extra.get("sub_nick").map(String::as_str), Some("tbshop:小美"), "{sent:?}");

    // Transferred inside Huiliu to b1: the buyer is handed over on Taobao from a1's account to b1's.
    let (status, body) = daemon.api(
        "POST",
        &format!("/api/v1/sessions/{id}/transfer"),
        Some(&json!({"to_agent": "b1", "problem": "要退货", "tried": "确认了订单", "expects": "售后处理"})),
    );
    assert_eq!(status, 200, "{body}");
    let forward = daemon.wait_for("the platform transfer", 20, || {
        sim.journal().received().into_iter().find(|r| r.method == FORWARD_METHOD)
    });
    assert_eq!(forward.buyer_id, "cntaobao买家AAHbuyer7", "{forward:?}");
    assert_eq!(forward.content, "cntaobaotbshop:阿强", "handed to b1's account: {forward:?}");
    // Counted once the platform's answer is back, a moment after the simulator saw the call.
    daemon.wait_for("the platform transfer counted as delivered", 10, || {
        let n = daemon.metric(r#"huiliu_platform_transfers_total{platform="taobao",reason="delivered"}"#);
        (n >= 1.0).then_some(n)
    });
    assert_eq!(daemon.metric(r#"huiliu_platform_transfers_total{platform="taobao",reason="delivered"}"#), 1.0);
    // b1 now answers as b1.
    let (status, body) = daemon.api(
        "POST",
        &format!("/api/v1/sessions/{id}/reply"),
        Some(&json!({"text": "我来帮您处理退货", "author": "b1"})),
    );
    assert_eq!(status, 202, "{body}");
    let sent = daemon.wait_for("b1's reply at the platform", 20, || {
        sim.journal().received().into_iter().find(|r| r.method == SEND_METHOD && r.content.contains("处理退货"))
    });
    assert_eq!(sent.extra.get("sub_nick").map(String::as_str), Some("tbshop:阿强"), "{sent:?}");
}
