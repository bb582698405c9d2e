//! The knowledge base (智能客服) end to end: the shipped `config/faq.toml` in a real daemon
//! behind the Douyin simulator — agent-assist suggestions for a buyer's message through the API,
//! a live reload of faq.toml (a good file swaps in, a bad one is refused and the running base
//! stays) — and the `huiliu faq try` / `huiliu check` commands on the shipped config.

use std::process::Command;
use std::sync::Arc;

use huiliu_e2e::{Daemon, artifacts, workspace_root};
use huiliu_sim::douyin::DouyinSim;
use huiliu_sim::{BuyerChat, Faults, SimConfig, now_ms};
use serde_json::Value;

fn session_with(daemon: &Daemon, buyer_text: &str) -> Option<i64> {
    let (_, body) = daemon.api("GET", "/api/v1/sessions?shop=dy-1", None);
    for s in body["sessions"].as_array()? {
        let id = s["id"].as_i64()?;
        let (_, detail) = daemon.api("GET", &format!("/api/v1/sessions/{id}"), None);
        if detail["messages"].as_array()?.iter().any(|m| m["text"] == buyer_text) {
            return Some(id);
        }
    }
    None
}

fn first_entry(daemon: &Daemon, session: i64) -> Value {
    let (status, body) = daemon.api("GET", &format!("/api/v1/sessions/{session}/suggestions"), None);
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn suggestions_answer_the_buyers_last_message_and_follow_a_live_reload() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let sim = rt.block_on(DouyinSim::start(SimConfig::sample("7000921"), Arc::new(Faults::default()))).unwrap();
    let plugins = artifacts().plugins_dir(&["huiliu-douyin"]);
    let mut shops =
        String::from("[[shop]]\nid = \"dy-1\"\nplatform = \"douyin\"\nname = \"抖音旗舰店\"\n[shop.settings]\n");
    for (k, v) in sim.shop_settings() {
        shops.push_str(&format!("{k} = {}\n", Value::String(v)));
    }
    let mut daemon = Daemon::start(plugins.path(), &shops);
    let faq = std::fs::read_to_string(workspace_root().join("config/faq.toml")).unwrap();
    std::fs::write(daemon.config_dir.path().join("faq.toml"), &faq).unwrap();
    daemon.restart(); // pick up faq.toml
    sim.set_gateway(format!("http://{}/hooks/douyin/dy-1", daemon.addr));

    let text = "亲，这款包邮吗？";
    assert!(rt.block_on(sim.deliver_chat(&BuyerChat::text("kb-1", "buyer-kb", text, now_ms()))).acked);
    let session = daemon.wait_for("the buyer's session", 20, || session_with(&daemon, text));
    let body = first_entry(&daemon, session);
    assert_eq!(body["message"], text, "{body}");
    let list = body["suggestions"].as_array().unwrap();
    assert!(!list.is_empty() && list.len() <= 3, "{body}");
    let best = &list[0];
    assert_eq!(best["entry"], "free-shipping", "{body}");
    assert!(best["confidence"].as_f64().unwrap() >= body["threshold"].as_f64().unwrap(), "{body}");
    assert!(best["answer"].as_str().unwrap().contains("包邮"), "{body}");
    assert!(best["matched"].as_array().unwrap().iter().any(|w| w == "包邮"), "{body}");
    // Best first (by similarity; the best one's confidence also weighs the runner-up).
    let similarities: Vec<f64> = list.iter().map(|s| s["similarity"].as_f64().unwrap()).collect();
    assert!(similarities.windows(2).all(|w| w[0] >= w[1]), "{similarities:?}");
    assert!(best["confidence"].as_f64().unwrap() <= best["similarity"].as_f64().unwrap(), "{body}");

    // A broken faq.toml is refused with its key, and the running knowledge base stays.
    std::fs::write(
        daemon.config_dir.path().join("faq.toml"),
        "[[entry]]\nid = \"Bad Id\"\nquestion = \"q\"\nanswer = \"a\"\n",
    )
    .unwrap();
    let (status, refused) = daemon.api("POST", "/api/v1/config/reload", None);
    assert_ne!(status, 200, "{refused}");
    assert!(refused.to_string().contains("entry[0].id"), "{refused}");
    assert_eq!(first_entry(&daemon, session)["suggestions"][0]["entry"], "free-shipping");

    // A good one swaps in: the same message now finds the new entry, its placeholders filled.
    let replaced = "[[entry]]\nid = \"shipping-fee\"\nquestion = \"包邮吗\"\nanswer = \"{shop}满99包邮\"\n";
    std::fs::write(daemon.config_dir.path().join("faq.toml"), replaced).unwrap();
    let (status, report) = daemon.api("POST", "/api/v1/config/reload", None);
    assert_eq!(status, 200, "{report}");
    let body = first_entry(&daemon, session);
    assert_eq!(body["suggestions"][0]["entry"], "shipping-fee", "{body}");
    assert_eq!(body["suggestions"][0]["answer"], "抖音旗舰店满99包邮", "{body}");
}

fn huiliu(args: &[&str]) -> (i32, String) {
    let out = Command::new(artifacts().huiliu()).args(args).output().expect("run huiliu");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn faq_try_exits_zero_when_the_bot_would_answer_and_one_when_it_would_hand_over() {
    let config = workspace_root().join("config");
    let config = config.to_str().unwrap();
    let (code, out) = huiliu(&["faq", "try", "--config", config, "七天无理由可以退吗"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("return-7days") && out.contains("matched:"), "{out}");
    let (code, out) = huiliu(&["faq", "try", "--config", config, "今天天气怎么样"]);
    assert_eq!(code, 1, "{out}");
    let (code, out) = huiliu(&["faq", "try", "--config", config, "你们卖假货，我要投诉"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("matches a complaint entry"), "a complaint is always handed over: {out}");
    // Conditions: the refund-progress answer only for a buyer whose refund is under way.
    let (_, out) = huiliu(&["faq", "try", "--config", config, "--state", "refunding", "退款怎么一直没人处理"]);
    assert!(out.contains("refund-progress"), "{out}");
    let (_, out) = huiliu(&["faq", "try", "--config", config, "--state", "paid", "退款怎么一直没人处理"]);
    assert!(!out.contains("refund-progress"), "{out}");
}

#[test]
fn check_reads_the_knowledge_base_and_reports_its_errors() {
    let (code, out) = huiliu(&["check", "--config", workspace_root().join("config").to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("knowledge-base entries"), "{out}");
    let dir = tempfile::tempdir().unwrap();
    for f in ["huiliu.toml", "shops.toml"] {
        std::fs::copy(workspace_root().join("config").join(f), dir.path().join(f)).unwrap();
    }
    std::fs::write(
        dir.path().join("faq.toml"),
        "[knowledge]\nthreshold = 2\n[[entry]]\nid = \"a\"\nquestion = \"q\"\nanswer = \"{nick}\"\n",
    )
    .unwrap();
    let (code, out) = huiliu(&["check", "--config", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("knowledge.threshold") && out.contains("entry[0].answer"), "{out}");
}

const BOT_FAQ: &str = r#"
[[shop]]
id = "dy-1"
bot = "always"
"#;

const ROUTING: &str = r#"
[routing]
fallback_group = "presales"
first_response_limit_s = 600
[messages]
welcome = "您好，我是{agent}"
[[group]]
id = "presales"
name = "售前"
[[agent]]
id = "a1"
name = "小美"
groups = { presales = 5 }
max_sessions = 5
[[rule]]
name = "默认"
[[rule.target]]
group = "presales"
"#;

#[test]
fn the_bot_answers_first_through_the_reply_door_and_hands_over_on_request() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let sim = rt.block_on(DouyinSim::start(SimConfig::sample("7000922"), Arc::new(Faults::default()))).unwrap();
    let plugins = artifacts().plugins_dir(&["huiliu-douyin"]);
    let mut shops = String::from("[[shop]]\nid = \"dy-1\"\nplatform = \"douyin\"\n[shop.settings]\n");
    for (k, v) in sim.shop_settings() {
        shops.push_str(&format!("{k} = {}\n", Value::String(v)));
    }
    let mut daemon = Daemon::start(plugins.path(), &shops);
    let faq = std::fs::read_to_string(workspace_root().join("config/faq.toml")).unwrap();
    // The shipped file plus this shop's bot turned on ([[shop]] tables may follow the entries).
    std::fs::write(daemon.config_dir.path().join("faq.toml"), format!("{faq}\n{BOT_FAQ}")).unwrap();
    std::fs::write(daemon.config_dir.path().join("routing.toml"), ROUTING).unwrap();
    daemon.restart();
    sim.set_gateway(format!("http://{}/hooks/douyin/dy-1", daemon.addr));
    let (status, body) = daemon.api("POST", "/api/v1/agents/a1/status", Some(&serde_json::json!({"status": "online"})));
    assert_eq!(status, 200, "{body}");

    // A common question: the bot answers, the platform receives it, nobody is assigned.
    let text = "七天无理由可以退吗";
    assert!(rt.block_on(sim.deliver_chat(&BuyerChat::text("bot-1", "buyer-bot", text, now_ms()))).acked);
    daemon.wait_for("the bot's answer at the platform", 20, || {
        sim.journal()
            .received()
            .iter()
            .any(|r| r.buyer_id == "buyer-bot" && r.content.contains("七天无理由退换"))
            .then_some(())
    });
    let session = daemon.wait_for("the session", 20, || session_with(&daemon, text));
    let (_, detail) = daemon.api("GET", &format!("/api/v1/sessions/{session}"), None);
    let bot_messages: Vec<&Value> =
        detail["messages"].as_array().unwrap().iter().filter(|m| m["direction"] == "out").collect();
    assert_eq!(bot_messages.len(), 1, "{detail}");
    assert_eq!(bot_messages[0]["author"], "bot", "the bot's answer is marked as the bot's: {detail}");
    assert!(detail["session"]["agent"].is_null(), "the bot answered: no agent needed yet: {detail}");
    assert!(daemon.metric(r#"huiliu_replies_total{author="bot"}"#) >= 1.0);

    // 转人工: the buyer is told, routing assigns an agent, who sees the bot's part.
    assert!(rt.block_on(sim.deliver_chat(&BuyerChat::text("bot-2", "buyer-bot", "转人工", now_ms()))).acked);
    daemon.wait_for("the hand-over notice at the platform", 20, || {
        sim.journal()
            .received()
            .iter()
            .any(|r| r.buyer_id == "buyer-bot" && r.content.contains("转接人工客服"))
            .then_some(())
    });
    let detail = daemon.wait_for("the agent's assignment", 20, || {
        let (_, d) = daemon.api("GET", &format!("/api/v1/sessions/{session}"), None);
        (d["session"]["agent"] == "a1").then_some(d)
    });
    assert_eq!(daemon.metric(r#"huiliu_bot_handovers_total{platform="douyin",reason="asked_for_agent"}"#), 1.0);
    let (status, figures) = daemon.api("GET", "/api/v1/knowledge/figures", None);
    assert_eq!(status, 200, "{figures}");
    assert_eq!(figures["answered"], 1, "{figures}");
    assert_eq!(figures["by_entry"][0]["entry"], "return-7days", "{figures}");
    assert_eq!(figures["handovers"]["asked_for_agent"], 1, "{figures}");
    let texts: Vec<&str> = detail["messages"].as_array().unwrap().iter().filter_map(|m| m["text"].as_str()).collect();
    assert!(texts.iter().any(|t| t.contains("七天无理由退换")), "the agent sees the bot's answer: {texts:?}");

    // A blocked buyer asking the same question gets nothing from the bot (nor anyone).
    let (status, body) = daemon.api(
        "POST",
        "/api/v1/blacklist",
        Some(&serde_json::json!({"platform": "douyin", "shop": "dy-1", "buyer_id": "bot-blocked", "level": "block",
                                 "reason": "以差评威胁索要赔偿", "evidence": ["bot-0"]})),
    );
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_i64().unwrap();
    let out = Command::new(artifacts().huiliu())
        .args(["blacklist", "approve", &id.to_string(), "--by", "lead-wang", "--role", "lead", "--config"])
        .arg(daemon.config_dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(daemon.api("POST", "/api/v1/blacklist/reload", None).0, 200);
    assert!(rt.block_on(sim.deliver_chat(&BuyerChat::text("bot-b1", "bot-blocked", text, now_ms()))).acked);

    // From now on the conversation is the agent's: the bot stays silent.
    let before = sim.journal().received().len();
    assert!(rt.block_on(sim.deliver_chat(&BuyerChat::text("bot-3", "buyer-bot", "包邮吗", now_ms()))).acked);
    daemon.wait_for("the third message stored", 20, || session_with(&daemon, "包邮吗"));
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let after: Vec<String> = sim.journal().received().iter().skip(before).map(|r| r.content.clone()).collect();
    assert!(!after.iter().any(|c| c.contains("全国包邮")), "the bot answered an agent's conversation: {after:?}");
    assert!(!sim.journal().received().iter().any(|r| r.buyer_id == "bot-blocked"), "the bot answered a blocked buyer");
    assert!(session_with(&daemon, text).is_some_and(|s| s == session), "the blocked buyer has no session");

    // A greeting the bot cannot place gets the welcome with its card questions; a number asks one.
    assert!(rt.block_on(sim.deliver_chat(&BuyerChat::text("bot-w1", "buyer-w", "在吗", now_ms()))).acked);
    daemon.wait_for("the welcome with card questions", 20, || {
        sim.journal()
            .received()
            .iter()
            .any(|r| r.buyer_id == "buyer-w" && r.content.contains("智能客服小汇") && r.content.contains("1. 包邮吗"))
            .then_some(())
    });
    assert!(rt.block_on(sim.deliver_chat(&BuyerChat::text("bot-w2", "buyer-w", "1", now_ms()))).acked);
    daemon.wait_for("the first card's answer", 20, || {
        sim.journal().received().iter().any(|r| r.buyer_id == "buyer-w" && r.content.contains("全国包邮")).then_some(())
    });
}

#[test]
fn a_delivered_order_gets_the_shops_follow_up_in_the_buyers_conversation() {
    use huiliu_sim::{TradeEvent, TradeKind};
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let sim = rt.block_on(DouyinSim::start(SimConfig::sample("7000923"), Arc::new(Faults::default()))).unwrap();
    let plugins = artifacts().plugins_dir(&["huiliu-douyin"]);
    let mut shops = String::from("[[shop]]\nid = \"dy-1\"\nplatform = \"douyin\"\n[shop.settings]\n");
    for (k, v) in sim.shop_settings() {
        shops.push_str(&format!("{k} = {}\n", Value::String(v)));
    }
    let mut daemon = Daemon::start(plugins.path(), &shops);
    let faq = "[knowledge]\nfollowup_quiet_hours = \"\"\n\
               [[followup]]\nevent = \"delivered\"\ntext = \"{buyer}您好，订单{order}已签收，使用中有问题随时联系我们～\"\n\
               [[entry]]\nid = \"x\"\nquestion = \"包邮吗\"\nanswer = \"包邮\"\n";
    std::fs::write(daemon.config_dir.path().join("faq.toml"), faq).unwrap();
    daemon.restart();
    sim.set_gateway(format!("http://{}/hooks/douyin/dy-1", daemon.addr));

    // The buyer has an open conversation; then the order is delivered (Douyin tag 103), reported
    // twice (a repeat within the interval sends nothing more).
    assert!(rt.block_on(sim.deliver_chat(&BuyerChat::text("fu-1", "buyer-fu", "在吗", now_ms()))).acked);
    daemon.wait_for("the buyer's session", 20, || session_with(&daemon, "在吗"));
    let delivered = |id: &str| TradeEvent {
        event_id: id.into(),
        kind: TradeKind::OrderReceived,
        buyer_id: "buyer-fu".into(),
        order_id: "6919283745612345678".into(),
        refund_id: None,
        amount_fen: 4950,
        at_ms: now_ms(),
    };
    assert!(rt.block_on(sim.deliver_trade(&delivered("7301000000000000941"))).acked);
    daemon.wait_for("the follow-up at the platform", 20, || {
        sim.journal()
            .received()
            .iter()
            .any(|r| r.buyer_id == "buyer-fu" && r.content.contains("订单6919283745612345678已签收"))
            .then_some(())
    });
    assert!(rt.block_on(sim.deliver_trade(&delivered("7301000000000000942"))).acked);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let sent = sim.journal().received().iter().filter(|r| r.content.contains("已签收，使用中有问题")).count();
    assert_eq!(sent, 1, "rate-limited per buyer");
}
