//! The filters end to end, through the real daemon and the Douyin simulator: masking before
//! storage and logs, the reviewed blacklist, and compliance on replies.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use huiliu_e2e::{Daemon, artifacts};
use huiliu_sim::douyin::DouyinSim;
use huiliu_sim::{BuyerChat, Faults, SimConfig, now_ms};
use serde_json::{Value, json};

struct Setup {
    rt: tokio::runtime::Runtime,
    sim: DouyinSim,
    daemon: Daemon,
    _plugins: tempfile::TempDir,
}

fn setup() -> Setup {
    setup_with("")
}

fn setup_with(extra_toml: &str) -> Setup {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let sim = rt.block_on(DouyinSim::start(SimConfig::sample("7000777"), Arc::new(Faults::default()))).unwrap();
    let plugins = artifacts().plugins_dir(&["huiliu-douyin"]);
    let mut shops = String::from("[[shop]]\nid = \"dy-1\"\nplatform = \"douyin\"\n[shop.settings]\n");
    for (k, v) in sim.shop_settings() {
        shops.push_str(&format!("{k} = {}\n", Value::String(v)));
    }
    let daemon = Daemon::start_with(plugins.path(), &shops, extra_toml);
    sim.set_gateway(format!("http://{}/hooks/douyin/dy-1", daemon.addr));
    Setup { rt, sim, daemon, _plugins: plugins }
}

fn sessions(daemon: &Daemon) -> Vec<Value> {
    daemon.api("GET", "/api/v1/sessions?shop=dy-1", None).1["sessions"].as_array().cloned().unwrap_or_default()
}

#[test]
fn personal_data_is_masked_before_storage_and_logs() {
    let s = setup();
    let text = "我手机号是138 2468 1357，地址改成浙江省杭州市西湖区文三路90号阳光花园3栋501室，订单4200001234567890123";
    assert!(s.rt.block_on(s.sim.deliver_chat(&BuyerChat::text("m-pii", "buyer-p", text, now_ms()))).acked);
    let id = s.daemon.wait_for("the session", 20, || sessions(&s.daemon).first()?["id"].as_i64());
    let (_, detail) = s.daemon.api("GET", &format!("/api/v1/sessions/{id}"), None);
    let stored = detail["messages"][0]["text"].as_str().unwrap().to_owned();
    assert!(stored.contains("138****1357"), "{stored}");
    assert!(stored.contains("浙江省杭州市西湖区*"), "{stored}");
    assert!(stored.contains("4200001234567890123"), "order numbers survive: {stored}");
    let content = detail["messages"][0]["content"].to_string();
    for secret in ["2468 1357", "24681357", "文三路90号"] {
        assert!(!stored.contains(secret) && !content.contains(secret), "{secret} leaked: {stored} / {content}");
        assert!(!s.daemon.log_text().contains(secret), "{secret} leaked into the log");
    }
    assert!(s.daemon.metric("huiliu_pii_masked_total") >= 2.0);
}

#[test]
fn a_blocked_buyer_is_acknowledged_but_creates_no_session_and_no_work() {
    let s = setup();
    // Propose (with evidence) and approve through the API; the operator token acts as an admin,
    // and the proposer may not approve their own proposal, so a second reviewer uses the CLI.
    let (status, body) = s.daemon.api(
        "POST",
        "/api/v1/blacklist",
        Some(&json!({"platform": "douyin", "shop": "dy-1", "buyer_id": "extortionist", "level": "block",
                     "reason": "以差评威胁索要赔偿", "evidence": ["m-101", "m-102"]})),
    );
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_i64().unwrap();
    let (status, body) = s.daemon.api("POST", &format!("/api/v1/blacklist/{id}/approve"), Some(&json!({})));
    assert_eq!(status, 403, "self-approval is refused: {body}");
    let out = std::process::Command::new(artifacts().huiliu())
        .args(["blacklist", "approve", &id.to_string(), "--by", "lead-wang", "--role", "lead", "--config"])
        .arg(s.daemon.config_dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The running daemon picks the decision up on its next reload; an API call does it now.
    let (status, _) = s.daemon.api("POST", "/api/v1/blacklist/reload", None);
    assert_eq!(status, 200);

    let d = s.rt.block_on(s.sim.deliver_chat(&BuyerChat::text("m-201", "extortionist", "不退钱就给差评", now_ms())));
    assert!(d.acked, "the platform still gets its acknowledgement: {d:?}");
    assert!(s.rt.block_on(s.sim.deliver_chat(&BuyerChat::text("m-202", "good-buyer", "在吗", now_ms()))).acked);
    let found = s.daemon.wait_for("the good buyer's session", 20, || {
        let all = sessions(&s.daemon);
        (!all.is_empty()).then_some(all)
    });
    std::thread::sleep(Duration::from_millis(300));
    let all = sessions(&s.daemon);
    assert_eq!(all.len(), 1, "only the good buyer has a session: {found:?}");
    assert_eq!(s.daemon.metric(r#"huiliu_events_blocked_total{platform="douyin"}"#), 1.0);
    assert!(!s.daemon.log_text().contains("不退钱就给差评"), "a blocked buyer's words are not logged");
}

#[test]
fn a_reply_breaking_compliance_is_not_sent_and_says_why() {
    let s = setup();
    assert!(s.rt.block_on(s.sim.deliver_chat(&BuyerChat::text("m-301", "buyer-c", "能便宜点吗", now_ms()))).acked);
    let id = s.daemon.wait_for("the session", 20, || sessions(&s.daemon).first()?["id"].as_i64());
    let (status, body) = s.daemon.api(
        "POST",
        &format!("/api/v1/sessions/{id}/reply"),
        Some(&json!({"text": "加我微信 wx_shop888 给你便宜"})),
    );
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["compliance"]["action"], "block");
    assert!(body["compliance"]["hits"].to_string().contains("微信"), "{body}");
    // A warned reply goes out, and the agent is told.
    let (status, body) =
        s.daemon.api("POST", &format!("/api/v1/sessions/{id}/reply"), Some(&json!({"text": "这是全网最低价哦"})));
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["compliance"]["action"], "warn", "{body}");
    s.daemon.wait_for("the warned reply to arrive", 20, || {
        s.sim.journal().received().iter().any(|r| r.content.contains("全网最低价")).then_some(())
    });
    assert!(
        !s.sim.journal().received().iter().any(|r| r.content.contains("wx_shop888")),
        "the blocked reply never left"
    );
    let (_, detail) = s.daemon.api("GET", &format!("/api/v1/sessions/{id}"), None);
    let blocked = detail["messages"].as_array().unwrap().iter().find(|m| m["delivery"] == "failed").cloned().unwrap();
    assert!(blocked["delivery_error"].as_str().unwrap().contains("未发送"), "{blocked}");
    assert_eq!(s.sim.journal().refreshes.load(Ordering::SeqCst), 0);
}

#[test]
fn a_masked_original_is_revealed_to_an_admin_with_a_reason_and_audited() {
    let s = setup_with("[privacy]\nseal_key = \"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\"\n");
    let text = "退款打到这张卡吧 6222021234567890128";
    assert!(s.rt.block_on(s.sim.deliver_chat(&BuyerChat::text("m-401", "buyer-r", text, now_ms()))).acked);
    assert!(s.rt.block_on(s.sim.deliver_chat(&BuyerChat::text("m-402", "buyer-r", "谢谢", now_ms()))).acked);
    let id = s.daemon.wait_for("the session", 20, || sessions(&s.daemon).first()?["id"].as_i64());
    let messages = s.daemon.wait_for("both messages", 20, || {
        let m = s.daemon.api("GET", &format!("/api/v1/sessions/{id}"), None).1["messages"].as_array().cloned()?;
        (m.len() == 2).then_some(m)
    });
    let (masked, plain) = (messages[0]["id"].as_i64().unwrap(), messages[1]["id"].as_i64().unwrap());
    assert!(!messages[0]["text"].as_str().unwrap().contains("6222021234567890128"));
    let (status, body) =
        s.daemon.api("POST", &format!("/api/v1/messages/{masked}/reveal"), Some(&json!({"reason": ""})));
    assert_eq!(status, 400, "a reason is required: {body}");
    let (status, body) = s.daemon.api(
        "POST",
        &format!("/api/v1/messages/{masked}/reveal"),
        Some(&json!({"reason": "买家要求核对退款卡号"})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["original"], text);
    // Nothing was masked in the second message: nothing kept.
    let (status, _) = s.daemon.api("POST", &format!("/api/v1/messages/{plain}/reveal"), Some(&json!({"reason": "x"})));
    assert_eq!(status, 404);
    let (_, audit) = s.daemon.api("GET", &format!("/api/v1/audit?subject=message:{masked}"), None);
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{audit}");
    assert_eq!(
        (entries[0]["actor"].as_str(), entries[0]["action"].as_str()),
        (Some("operator"), Some("message.reveal"))
    );
    assert!(entries[0]["detail"].as_str().unwrap().contains("核对退款卡号"));
    assert!(!audit.to_string().contains("6222021234567890128"), "the audit log never holds the original");
    assert!(!s.daemon.log_text().contains("6222021234567890128"));
}

#[test]
fn filters_reload_live_and_a_bad_file_keeps_the_running_config() {
    let s = setup();
    assert!(s.rt.block_on(s.sim.deliver_chat(&BuyerChat::text("m-501", "buyer-l", "能便宜吗", now_ms()))).acked);
    let id = s.daemon.wait_for("the session", 20, || sessions(&s.daemon).first()?["id"].as_i64());
    let reply =
        |text: &str| s.daemon.api("POST", &format!("/api/v1/sessions/{id}/reply"), Some(&json!({"text": text}))).0;
    assert_eq!(reply("全网最低价"), 202, "absolute terms only warn by default");

    // Through the API: absolute terms now block.
    let filters = s.daemon.config_dir.path().join("filters.toml");
    std::fs::write(&filters, "[compliance.absolute_terms]\naction = \"block\"\nterms = [\"全网最低\"]\n").unwrap();
    let (status, body) = s.daemon.api("POST", "/api/v1/config/reload", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(reply("全网最低价"), 422);

    // A bad file: every error reported, the running configuration stays.
    std::fs::write(&filters, "[compliance.absolute_terms]\naction = \"explode\"\nterms = [\"\"]\n[mask]\nbogus = 1\n")
        .unwrap();
    let (status, body) = s.daemon.api("POST", "/api/v1/config/reload", None);
    assert_eq!(status, 422, "{body}");
    assert!(body["errors"].as_array().is_some_and(|e| !e.is_empty()), "{body}");
    assert_eq!(reply("全网最低价"), 422, "still the last good configuration");

    // A file change is picked up without any call.
    std::fs::write(&filters, "[compliance.absolute_terms]\naction = \"warn\"\nterms = [\"全网最低\"]\n").unwrap();
    s.daemon.wait_for("the file change to be reloaded", 15, || (reply("全网最低价") == 202).then_some(()));

    // SIGHUP reloads too.
    std::fs::write(&filters, "[compliance.absolute_terms]\naction = \"block\"\nterms = [\"全网最低\"]\n").unwrap();
    let pid = s.daemon.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    s.daemon.wait_for("the SIGHUP reload", 15, || (reply("全网最低价") == 422).then_some(()));
    assert!(s.daemon.log_text().contains("reload rejected, the running configuration stays"));
}

#[test]
fn a_restricted_buyer_is_held_by_the_bot_and_gets_one_auto_reply() {
    let s = setup();
    let (status, body) = s.daemon.api(
        "POST",
        "/api/v1/blacklist",
        Some(&json!({"platform": "douyin", "buyer_id": "serial-returner", "level": "restrict",
                     "reason": "多次恶意退货", "evidence": ["m-9"]})),
    );
    assert_eq!(status, 201, "{body}");
    let out = std::process::Command::new(artifacts().huiliu())
        .args(["blacklist", "approve", &body["id"].to_string(), "--by", "lead-li", "--role", "lead", "--config"])
        .arg(s.daemon.config_dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(s.daemon.api("POST", "/api/v1/blacklist/reload", None).0, 200);
    for (i, text) in ["我要退货", "快点处理"].iter().enumerate() {
        let chat = BuyerChat::text(&format!("m-60{i}"), "serial-returner", text, now_ms());
        assert!(s.rt.block_on(s.sim.deliver_chat(&chat)).acked);
    }
    let session = s.daemon.wait_for("the bot-held session", 20, || {
        let all = sessions(&s.daemon);
        (all.first()?["state"] == "bot").then(|| all[0].clone())
    });
    assert!(session["priority"].as_i64().unwrap() < 0, "{session}");
    s.daemon.wait_for("the auto-reply at the platform", 20, || {
        s.sim.journal().received().iter().any(|r| r.buyer_id == "serial-returner").then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    let replies = s.sim.journal().received().into_iter().filter(|r| r.buyer_id == "serial-returner").count();
    assert_eq!(replies, 1, "one auto-reply per session, not one per message");
    assert_eq!(s.daemon.metric(r#"huiliu_screened_total{platform="douyin",reason="restrict"}"#), 2.0);
}
