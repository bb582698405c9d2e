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

/// A daemon behind the Douyin simulator (shop `dy-1`, named `name` when given), not yet
/// pointed at by the simulator: the test writes its faq.toml (and routing.toml) into the config
/// directory, restarts the daemon and sets the simulator's gateway.
struct Desk {
    rt: tokio::runtime::Runtime,
    sim: DouyinSim,
    daemon: Daemon,
    _plugins: tempfile::TempDir,
}

impl Desk {
    fn start(sim_id: &str, name: Option<&str>) -> Desk {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let sim = rt.block_on(DouyinSim::start(SimConfig::sample(sim_id), Arc::new(Faults::default()))).unwrap();
        let plugins = artifacts().plugins_dir(&["huiliu-douyin"]);
        let name = name.map(|n| format!("name = \"{n}\"\n")).unwrap_or_default();
        let mut shops = format!("[[shop]]\nid = \"dy-1\"\nplatform = \"douyin\"\n{name}[shop.settings]\n");
        for (k, v) in sim.shop_settings() {
            shops.push_str(&format!("{k} = {}\n", Value::String(v)));
        }
        let daemon = Daemon::start(plugins.path(), &shops);
        Desk { rt, sim, daemon, _plugins: plugins }
    }

    /// A desk serving: the shipped faq.toml with this shop's bot turned on ([[shop]] tables may
    /// follow the entries), `ROUTING`, the simulator pointed at it and agent `a1` online.
    fn with_bot(sim_id: &str) -> Desk {
        let mut desk = Desk::start(sim_id, None);
        let Desk { sim, daemon, .. } = &mut desk;
        let faq = std::fs::read_to_string(workspace_root().join("config/faq.toml")).unwrap();
        std::fs::write(daemon.config_dir.path().join("faq.toml"), format!("{faq}\n{BOT_FAQ}")).unwrap();
        std::fs::write(daemon.config_dir.path().join("routing.toml"), ROUTING).unwrap();
        daemon.restart();
        sim.set_gateway(format!("http://{}/hooks/douyin/dy-1", daemon.addr));
        let online = serde_json::json!({"status": "online"});
        let (status, body) = daemon.api("POST", "/api/v1/agents/a1/status", Some(&online));
        assert_eq!(status, 200, "{body}");
        desk
    }
}

#[test]
fn suggestions_answer_the_buyers_last_message_and_follow_a_live_reload() {
    let mut desk = Desk::start("7000921", Some("抖音旗舰店"));
    let Desk { rt, sim, daemon, .. } = &mut desk;
    let faq = std::fs::read_to_string(workspace_root().join("config/faq.toml")).unwrap();
    std::fs::write(daemon.config_dir.path().join("faq.toml"), &faq).unwrap();
    daemon.restart(); // pick up faq.toml
    sim.set_gateway(format!("http://{}/hooks/douyin/dy-1", daemon.addr));

    let text = "亲，这款包邮吗？";
    assert!(rt.block_on(sim.deliver_chat(&BuyerChat::text("kb-1", "buyer-kb", text, now_ms()))).acked);
    let session = daemon.wait_for("the buyer's session", 20, || session_with(daemon, text));
    let body = first_entry(daemon, session);
    assert_eq!(body["message"], text, "{body}");
    let list = body["suggestions"].as_array().unwrap();
    assert!(!list.is_empty() && list.len() <= 3, "{body}");
    let best = &list[0];
    assert_eq!(best["entry"], "free-shipping", "{body}");
    assert!(best["confidence"].as_f64().unwrap() >= body["threshold"].as_f64().unwrap(), "{body}");
    assert!(best["answer"].as_str().unwrap().contains("包邮"), "{body}");
    assert!(best["matched"].as_array().unwrap().iter().any(|w| w == "包邮"), "{body}");
    // Best first: by similarity + semantic_weight (1 in the shipped faq.toml) × semantic, each
    // rounded to 3 decimals in the API; the best one's confidence also weighs the others.
    let scores: Vec<f64> =
        list.iter().map(|s| s["similarity"].as_f64().unwrap() + s["semantic"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1] - 0.002), "{scores:?}");
    assert!(list.iter().all(|s| s["semantic"].as_f64().unwrap() != 0.0), "the re-ranking is on: {body}");

    // A broken faq.toml is refused with its key, and the running knowledge base stays.
    std::fs::write(
        daemon.config_dir.path().join("faq.toml"),
        "[[entry]]\nid = \"Bad Id\"\nquestion = \"q\"\nanswer = \"a\"\n",
    )
    .unwrap();
    let (status, refused) = daemon.api("POST", "/api/v1/config/reload", None);
    assert_ne!(status, 200, "{refused}");
    assert!(refused.to_string().contains("entry[0].id"), "{refused}");
    assert_eq!(first_entry(daemon, session)["suggestions"][0]["entry"], "free-shipping");

    // A good one swaps in: the same message now finds the new entry, its placeholders filled.
    let replaced = "[[entry]]\nid = \"shipping-fee\"\nquestion = \"包邮吗\"\nanswer = \"{shop}满99包邮\"\n";
    std::fs::write(daemon.config_dir.path().join("faq.toml"), replaced).unwrap();
    let (status, report) = daemon.api("POST", "/api/v1/config/reload", None);
    assert_eq!(status, 200, "{report}");
    let body = first_entry(daemon, session);
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
    let mut desk = Desk::with_bot("7000922");
    let Desk { rt, sim, daemon, .. } = &mut desk;

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
    let session = daemon.wait_for("the session", 20, || session_with(daemon, text));
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
    daemon.wait_for("the third message stored", 20, || session_with(daemon, "包邮吗"));
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let after: Vec<String> = sim.journal().received().iter().skip(before).map(|r| r.content.clone()).collect();
    assert!(!after.iter().any(|c| c.contains("全国包邮")), "the bot answered an agent's conversation: {after:?}");
    assert!(!sim.journal().received().iter().any(|r| r.buyer_id == "bot-blocked"), "the bot answered a blocked buyer");
    assert!(session_with(daemon, text).is_some_and(|s| s == session), "the blocked buyer has no session");

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

/// Per-product answers: the shipped faq.toml answers "热水器功率多大" per heater, by the newest
/// product card of the conversation, with `{product}` named from `[[product]]` (Douyin's cards
/// carry only the id); without a card the general entry answers. A card alone asks nothing: the
/// bot welcomes the buyer instead of handing the card to an agent.
#[test]
fn the_same_question_is_answered_per_product_from_the_conversations_product_card() {
    let mut desk = Desk::with_bot("7000926");
    let Desk { rt, sim, daemon, .. } = &mut desk;

    let card = |id: &str, buyer: &str, product: &str| BuyerChat {
        msg_type: "product".into(),
        ref_id: Some(product.into()),
        ..BuyerChat::text(id, buyer, "", now_ms())
    };
    let question = "这款热水器功率多大呀";
    let received = |buyer: &str, needle: &str| {
        sim.journal().received().iter().any(|r| r.buyer_id == buyer && r.content.contains(needle))
    };
    for (buyer, product, answer) in [
        ("buyer-e60", "3556245366718399530", "小汇电热水器E60（60升）功率3000W"),
        ("buyer-g16", "3556245366718399531", "小汇燃气热水器G16（16升）是燃气热水器"),
    ] {
        assert!(rt.block_on(sim.deliver_chat(&card(&format!("{buyer}-1"), buyer, product))).acked);
        daemon.wait_for("the welcome for a card", 20, || received(buyer, "智能客服小汇").then_some(()));
        let text = BuyerChat::text(&format!("{buyer}-2"), buyer, question, now_ms());
        assert!(rt.block_on(sim.deliver_chat(&text)).acked);
        daemon.wait_for("the product's answer", 20, || received(buyer, answer).then_some(()));
    }
    // No card: the general answer, and {product} falls back to its default.
    assert!(rt.block_on(sim.deliver_chat(&BuyerChat::text("plain-1", "buyer-plain", question, now_ms()))).acked);
    daemon.wait_for("the general answer", 20, || received("buyer-plain", "这款功率2200W/3000W可选").then_some(()));
    assert!(!received("buyer-plain", "3000W（速热）") && !received("buyer-e60", "燃气热水器，额定"));

    // Nobody was handed to an agent: the cards asked nothing, the questions were answered.
    assert!(daemon.sessions().iter().all(|s| s["agent"].is_null()), "{:?}", daemon.sessions());
    assert_eq!(daemon.metric(r#"huiliu_bot_handovers_total{platform="douyin",reason="low_confidence"}"#), 0.0);
    // The agent's suggestions follow the same product.
    let e60 = daemon.wait_for("the e60 session", 20, || session_with(daemon, "[商品] 3556245366718399530"));
    let body = first_entry(daemon, e60);
    assert_eq!(body["suggestions"][0]["entry"], "heater-power-e60", "{body}");
    assert!(body["suggestions"][0]["answer"].as_str().unwrap().contains("小汇电热水器E60"), "{body}");
}

/// Rich answers (`[[entry.attach]]`): the shipped heater-power-e60 entry sends a picture and the
/// conversation's product card after its text. Douyin's `im.sendMsg` carries each as a message of
/// its own type — `text`, then `image` with the picture's URL, then `product` with the product id —
/// in that order, from one reply of the bot's (one stored message, three elements). The same
/// elements come with the agent's suggestion. The tracking entry's `{order}` card is left out for
/// a buyer who has no order: the text goes alone.
#[test]
fn the_bots_answer_sends_the_entrys_picture_and_product_card_in_douyins_own_message_types() {
    let mut desk = Desk::with_bot("7000928");
    let Desk { rt, sim, daemon, .. } = &mut desk;
    let e60 = "3556245366718399530";
    let card = BuyerChat {
        msg_type: "product".into(),
        ref_id: Some(e60.into()),
        ..BuyerChat::text("rich-1", "buyer-rich", "", now_ms())
    };
    assert!(rt.block_on(sim.deliver_chat(&card)).acked);
    let sent_to = |buyer: &str| -> Vec<(String, String)> {
        sim.journal()
            .received()
            .iter()
            .filter(|r| r.buyer_id == buyer)
            .map(|r| (r.msg_type.clone(), r.content.clone()))
            .collect()
    };
    daemon.wait_for("the welcome for the card", 20, || {
        sent_to("buyer-rich").iter().any(|(_, c)| c.contains("智能客服小汇")).then_some(())
    });
    let question = "这款热水器功率多大呀";
    assert!(rt.block_on(sim.deliver_chat(&BuyerChat::text("rich-2", "buyer-rich", question, now_ms()))).acked);
    let sent = daemon.wait_for("the answer's three messages", 20, || {
        let sent = sent_to("buyer-rich");
        let at = sent.iter().position(|(_, c)| c.contains("功率3000W（速热）"))?;
        (sent.len() >= at + 3).then(|| sent[at..].to_vec())
    });
    assert_eq!(sent[0].0, "text", "{sent:?}");
    assert_eq!(
        sent[1..],
        [
            ("image".to_owned(), "https://img.example.com/huiliu/e60-wiring.png".to_owned()),
            ("product".to_owned(), e60.to_owned())
        ],
        "the picture, then the product card, in Douyin's own types"
    );
    // One reply of the bot's: a stored message of three elements, the text first.
    let session = daemon.wait_for("the session", 20, || session_with(daemon, question));
    let (_, detail) = daemon.api("GET", &format!("/api/v1/sessions/{session}"), None);
    let answer = detail["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["author"] == "bot" && m["text"].as_str().is_some_and(|t| t.contains("功率3000W")))
        .cloned()
        .unwrap_or_else(|| panic!("no bot answer: {detail}"));
    let types: Vec<&str> = answer["content"].as_array().unwrap().iter().filter_map(|c| c["type"].as_str()).collect();
    assert_eq!(types, ["text", "image", "product"], "{answer}");
    // The agent's suggestion for the same question brings the same elements.
    let body = first_entry(daemon, session);
    assert_eq!(body["suggestions"][0]["entry"], "heater-power-e60", "{body}");
    let attach = &body["suggestions"][0]["attach"];
    assert_eq!(attach[0]["url"], "https://img.example.com/huiliu/e60-wiring.png", "{body}");
    assert_eq!((attach[1]["type"].as_str(), attach[1]["product_id"].as_str()), (Some("product"), Some(e60)), "{body}");

    // A buyer with no order asks where the parcel is: the text, and no order card.
    assert!(rt.block_on(sim.deliver_chat(&BuyerChat::text("rich-3", "buyer-noorder", "快递到哪了", now_ms()))).acked);
    daemon.wait_for("the tracking answer", 20, || {
        sent_to("buyer-noorder").iter().any(|(_, c)| c.contains("查看物流")).then_some(())
    });
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let sent = sent_to("buyer-noorder");
    assert!(sent.iter().all(|(t, _)| t == "text"), "an order card without an order: {sent:?}");
}

/// The bot's figures are the store's: after a `kill -9` and a restart the API and `/metrics`
/// show the same totals (answers per entry, hand-overs, the unmatched question, resolved
/// conversations), and a conversation the bot answered just before the crash is settled by the
/// new process.
#[test]
fn the_bots_figures_survive_a_restart() {
    let mut desk = Desk::start("7000927", None);
    let Desk { rt, sim, daemon, .. } = &mut desk;
    // A buyer silent for 3 s after the bot's answer counts as resolved.
    let faq = std::fs::read_to_string(workspace_root().join("config/faq.toml")).unwrap().replacen(
        "\n[knowledge]\n",
        "\n[knowledge]\nresolved_after_minutes = 0.05\n",
        1,
    );
    std::fs::write(daemon.config_dir.path().join("faq.toml"), format!("{faq}\n{BOT_FAQ}")).unwrap();
    daemon.restart();
    sim.set_gateway(format!("http://{}/hooks/douyin/dy-1", daemon.addr));
    let ask = |id: &str, buyer: &str, text: &str| {
        assert!(rt.block_on(sim.deliver_chat(&BuyerChat::text(id, buyer, text, now_ms()))).acked);
    };
    let figures = |d: &Daemon| d.api("GET", "/api/v1/knowledge/figures", None).1;

    // Answered, then silence: resolved. A greeting (welcomed), then a question no entry has:
    // handed over, the question kept for the trainer.
    ask("fig-1", "buyer-a", "七天无理由可以退吗");
    ask("fig-2", "buyer-b", "在吗");
    daemon.wait_for("the welcome", 20, || {
        sim.journal()
            .received()
            .iter()
            .any(|r| r.buyer_id == "buyer-b" && r.content.contains("智能客服小汇"))
            .then_some(())
    });
    ask("fig-3", "buyer-b", "今天天气怎么样");
    let before = daemon.wait_for("one resolved conversation and one hand-over", 20, || {
        let f = figures(daemon);
        (f["resolved"] == 1 && f["handovers"]["low_confidence"] == 1).then_some(f)
    });
    assert_eq!(before["by_entry"][0]["entry"], "return-7days", "{before}");
    assert_eq!(before["unanswered"][0]["text"], "今天天气怎么样", "{before}");
    assert!(before["since"].as_i64().is_some(), "{before}");
    let metrics = |d: &Daemon| {
        [
            r#"huiliu_bot_answers_total{platform="douyin"}"#,
            r#"huiliu_bot_conversations_total{platform="douyin"}"#,
            r#"huiliu_bot_resolved_total{platform="douyin"}"#,
            r#"huiliu_bot_handovers_total{platform="douyin",reason="low_confidence"}"#,
        ]
        .map(|m| d.metric(m))
    };
    assert_eq!(metrics(daemon), [1.0, 1.0, 1.0, 1.0]);

    // A third buyer answered just before the crash.
    ask("fig-4", "buyer-c", "七天无理由可以退吗");
    let before = daemon.wait_for("the third answer counted", 20, || {
        let f = figures(daemon);
        (f["answered"] == 2).then_some(f)
    });
    daemon.restart();
    let after = figures(daemon);
    for key in ["since", "answered", "by_entry", "handovers", "unanswered", "bot_conversations"] {
        assert_eq!(after[key], before[key], "{key} after the restart: {after}");
    }
    // The new process settles the conversation the old one opened.
    let after = daemon.wait_for("the third conversation resolved", 20, || {
        let f = figures(daemon);
        (f["resolved"] == 2).then_some(f)
    });
    assert_eq!((after["bot_conversations"].as_u64(), after["awaiting"].as_u64()), (Some(2), Some(0)), "{after}");
    assert_eq!(metrics(daemon), [2.0, 2.0, 2.0, 1.0], "/metrics after the restart shows the stored totals");
}

#[test]
fn a_delivered_order_gets_the_shops_follow_up_in_the_buyers_conversation() {
    use huiliu_sim::{TradeEvent, TradeKind};
    let mut desk = Desk::start("7000923", None);
    let Desk { rt, sim, daemon, .. } = &mut desk;
    let faq = "[knowledge]\nfollowup_quiet_hours = \"\"\n\
               [[followup]]\nevent = \"delivered\"\ntext = \"{buyer}您好，订单{order}已签收，使用中有问题随时联系我们～\"\n\
               [[entry]]\nid = \"x\"\nquestion = \"包邮吗\"\nanswer = \"包邮\"\n";
    std::fs::write(daemon.config_dir.path().join("faq.toml"), faq).unwrap();
    daemon.restart();
    sim.set_gateway(format!("http://{}/hooks/douyin/dy-1", daemon.addr));

    // The buyer has an open conversation; then the order is delivered (Douyin tag 103), reported
    // twice (a repeat within the interval sends nothing more).
    assert!(rt.block_on(sim.deliver_chat(&BuyerChat::text("fu-1", "buyer-fu", "在吗", now_ms()))).acked);
    daemon.wait_for("the buyer's session", 20, || session_with(daemon, "在吗"));
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

/// routing.toml for the desk-dependent bot modes: one group, two agents of one session each;
/// `{hours}` is the group's `[group.hours]` table ("" = always open).
const DESK_ROUTING: &str = r#"
[routing]
fallback_group = "presales"
first_response_limit_s = 600
default_handle_time_s = 300
[messages]
welcome = "您好，我是{agent}"
[[group]]
id = "presales"
name = "售前"
{hours}
[[agent]]
id = "a1"
name = "小美"
groups = { presales = 5 }
max_sessions = 1
[[agent]]
id = "a2"
name = "小王"
groups = { presales = 5 }
max_sessions = 1
[[rule]]
name = "默认"
[[rule.target]]
group = "presales"
"#;

#[test]
fn the_bot_answers_first_when_routings_desk_is_closed_or_the_wait_is_long_and_counts_what_it_resolved() {
    let mut desk = Desk::start("7000924", None);
    let Desk { rt, sim, daemon, .. } = &mut desk;
    let faq = std::fs::read_to_string(workspace_root().join("config/faq.toml")).unwrap();
    let dir = daemon.config_dir.path().to_owned();
    // A buyer silent for 3 s after the bot's answer counts as resolved (fractional minutes).
    let faq_with = |mode: &str| {
        let faq = faq.replacen("\n[knowledge]\n", "\n[knowledge]\nresolved_after_minutes = 0.05\n", 1);
        std::fs::write(dir.join("faq.toml"), format!("{faq}\n[[shop]]\nid = \"dy-1\"\n{mode}\n")).unwrap();
    };
    let routing_with =
        |hours: &str| std::fs::write(dir.join("routing.toml"), DESK_ROUTING.replace("{hours}", hours)).unwrap();
    faq_with("bot = \"off_hours\"");
    // The group is closed every day: the desk is closed whatever the hour the test runs at.
    routing_with("[group.hours]\ndaily = []");
    daemon.restart();
    sim.set_gateway(format!("http://{}/hooks/douyin/dy-1", daemon.addr));
    let online = |agent: &str| {
        let (status, body) = daemon.api(
            "POST",
            &format!("/api/v1/agents/{agent}/status"),
            Some(&serde_json::json!({"status": "online"})),
        );
        assert_eq!(status, 200, "{body}");
    };
    online("a1");
    let reload = || {
        let (status, body) = daemon.api("POST", "/api/v1/config/reload", None);
        assert_eq!(status, 200, "{body}");
    };
    let ask = |id: &str, buyer: &str, text: &str| {
        assert!(rt.block_on(sim.deliver_chat(&BuyerChat::text(id, buyer, text, now_ms()))).acked);
    };
    let bot_answered = |buyer: &str| {
        sim.journal().received().iter().any(|r| r.buyer_id == buyer && r.content.contains("七天无理由退换"))
    };
    let question = "七天无理由可以退吗";

    // off_hours, the desk closed: the bot answers.
    ask("desk-1", "buyer-night", question);
    daemon.wait_for("the bot's answer while the desk is closed", 20, || bot_answered("buyer-night").then_some(()));

    // The desk opens (routing.toml without hours): the same question goes to the online agent.
    routing_with("");
    reload();
    ask("desk-2", "buyer-day", question);
    let assigned = daemon
        .wait_for("the day buyer assigned to a1", 20, || daemon.sessions().into_iter().find(|s| s["agent"] == "a1"));
    std::thread::sleep(std::time::Duration::from_millis(1000));
    assert!(!bot_answered("buyer-day"), "the bot answered while the desk was open: {assigned}");

    // long_wait over 1 minute: a1 is full (1 of 1), nobody else online: 300 s expected → the bot.
    faq_with("bot = \"long_wait\"\nbot_wait_minutes = 1");
    reload();
    ask("desk-3", "buyer-busy", question);
    daemon.wait_for("the bot's answer while the wait is long", 20, || bot_answered("buyer-busy").then_some(()));

    // a2 comes online with room: no wait, so the next buyer goes to a2, not the bot.
    online("a2");
    ask("desk-4", "buyer-quick", question);
    daemon.wait_for("the quick buyer assigned to a2", 20, || {
        daemon.sessions().into_iter().find(|s| s["agent"] == "a2").map(|_| ())
    });
    std::thread::sleep(std::time::Duration::from_millis(1000));
    assert!(!bot_answered("buyer-quick"), "the bot answered although an agent had room");

    // Neither buyer the bot answered wrote again: both conversations are resolved without a human.
    let figures = daemon.wait_for("two resolved conversations", 20, || {
        let (_, f) = daemon.api("GET", "/api/v1/knowledge/figures", None);
        (f["resolved"] == 2).then_some(f)
    });
    assert_eq!(figures["bot_conversations"], 2, "{figures}");
    assert_eq!(figures["resolution_rate"], 1.0, "{figures}");
    assert_eq!(daemon.metric(r#"huiliu_bot_resolved_total{platform="douyin"}"#), 2.0);
    assert_eq!(daemon.metric(r#"huiliu_bot_conversations_total{platform="douyin"}"#), 2.0);
}

#[test]
fn a_lead_edits_the_knowledge_base_through_the_api_touching_only_that_entry_in_force_at_once() {
    let mut desk = Desk::start("7000925", None);
    let Desk { daemon, .. } = &mut desk;
    let faq_path = daemon.config_dir.path().join("faq.toml");
    let shipped = std::fs::read_to_string(workspace_root().join("config/faq.toml")).unwrap();
    std::fs::write(&faq_path, &shipped).unwrap();
    daemon.restart();
    let entries_in_force = || daemon.api("GET", "/api/v1/knowledge/figures", None).1["entries"].as_u64().unwrap();
    let shipped_count = entries_in_force();

    let (status, list) = daemon.api("GET", "/api/v1/knowledge/entries", None);
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["entries"].as_array().unwrap().len() as u64, shipped_count, "{list}");
    assert!(list["entries"].as_array().unwrap().iter().any(|e| e["id"] == "free-shipping"));

    // Added: a new id, at the end of the file, in force at once.
    let entry = serde_json::json!({"question": "可以用花呗分期吗", "variants": ["支持花呗吗"],
        "answer": "{buyer}您好，支持花呗分期付款～", "when": {"order_states": ["none", "unpaid"]}});
    let (status, added) = daemon.api("POST", "/api/v1/knowledge/entries", Some(&entry));
    assert_eq!(status, 201, "{added}");
    let id = added["id"].as_str().unwrap().to_owned();
    assert_eq!(id, "entry-1");
    assert_eq!(entries_in_force(), shipped_count + 1);
    let text = std::fs::read_to_string(&faq_path).unwrap();
    assert!(text.starts_with(&shipped), "the rest of the file is kept byte for byte");
    let (code, out) = huiliu(&[
        "faq",
        "try",
        "--config",
        daemon.config_dir.path().to_str().unwrap(),
        "--state",
        "none",
        "支持花呗吗",
    ]);
    assert!(code == 0 && out.contains("entry-1"), "{out}");

    // Changed: only its block.
    let changed = serde_json::json!({"question": "可以用花呗分期吗", "answer": "支持花呗，最多分12期",
        "when": {"hours": {"from": 540, "to": 1320}}});
    let (status, body) = daemon.api("PUT", &format!("/api/v1/knowledge/entries/{id}"), Some(&changed));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["when"]["hours"]["to"], 1320, "{body}");
    let text = std::fs::read_to_string(&faq_path).unwrap();
    assert!(
        text.starts_with(&shipped)
            && text.contains("answer = \"支持花呗，最多分12期\"\n[entry.when]\nhours = \"09:00-22:00\"\n"),
        "{text}"
    );
    let (_, list) = daemon.api("GET", "/api/v1/knowledge/entries", None);
    let listed = list["entries"].as_array().unwrap().iter().find(|e| e["id"] == id.as_str()).cloned().unwrap();
    assert_eq!(listed["variants"], serde_json::json!([]), "{listed}");

    // Refused without a change: an unknown placeholder (422), a shop not in shops.toml (404), an
    // entry that does not exist (404).
    let bad = serde_json::json!({"question": "q", "answer": "{nick}您好"});
    let (status, body) = daemon.api("PUT", &format!("/api/v1/knowledge/entries/{id}"), Some(&bad));
    assert_eq!((status, body["code"].as_str()), (422, Some("invalid_entry")), "{body}");
    let elsewhere = serde_json::json!({"question": "q", "answer": "a", "when": {"shops": ["tb-9"]}});
    let (status, body) = daemon.api("POST", "/api/v1/knowledge/entries", Some(&elsewhere));
    assert_eq!((status, body["code"].as_str()), (409, Some("unknown_shop")), "{body}");
    assert_eq!(daemon.api("DELETE", "/api/v1/knowledge/entries/nobody", None).0, 404);
    assert_eq!(std::fs::read_to_string(&faq_path).unwrap(), text, "refused edits leave the file alone");

    // Removed: the file is the shipped one again, and the running base with it.
    let (status, body) = daemon.api("DELETE", &format!("/api/v1/knowledge/entries/{id}"), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(std::fs::read_to_string(&faq_path).unwrap(), shipped);
    assert_eq!(entries_in_force(), shipped_count);
    let (_, trail) = daemon.api("GET", &format!("/api/v1/audit?subject=faq:{id}"), None);
    let actions: Vec<&str> = trail["entries"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(actions.len(), 3, "added, changed, removed are audited: {trail}");

    // An entry may bring its own id (the name in the figures); a taken one, or another id on a
    // change, is refused.
    let named = serde_json::json!({"id": "huabei", "question": "可以用花呗分期吗", "answer": "支持花呗分期～"});
    let (status, added) = daemon.api("POST", "/api/v1/knowledge/entries", Some(&named));
    assert_eq!(
        (status, added["id"].as_str(), added["source"].as_str()),
        (201, Some("huabei"), Some("faq.toml")),
        "{added}"
    );
    let (status, body) = daemon.api("POST", "/api/v1/knowledge/entries", Some(&named));
    assert_eq!((status, body["code"].as_str()), (409, Some("entry_exists")), "{body}");
    let renamed = serde_json::json!({"id": "huabei-2", "question": "q", "answer": "a"});
    let (status, body) = daemon.api("PUT", "/api/v1/knowledge/entries/huabei", Some(&renamed));
    assert_eq!((status, body["code"].as_str()), (409, Some("id_mismatch")), "{body}");
    // Rich answers round-trip: a change with attachments is written as [[entry.attach]] tables
    // and listed back as sent; a bad one is refused with what is wrong.
    let attach = serde_json::json!([{"image": "https://img.example.com/huabei.png"},
        {"product": "{product}", "title": "本店热水器"}, {"order": "{order}"}]);
    let rich = serde_json::json!({"question": "可以用花呗分期吗", "answer": "支持花呗分期～", "attach": attach});
    let (status, body) = daemon.api("PUT", "/api/v1/knowledge/entries/huabei", Some(&rich));
    assert_eq!((status, &body["attach"]), (200, &attach), "{body}");
    let (_, list) = daemon.api("GET", "/api/v1/knowledge/entries", None);
    let listed = list["entries"].as_array().unwrap().iter().find(|e| e["id"] == "huabei").cloned().unwrap();
    assert_eq!(listed["attach"], attach, "{listed}");
    let text = std::fs::read_to_string(&faq_path).unwrap();
    assert!(text.contains("[[entry.attach]]\nimage = \"https://img.example.com/huabei.png\"\n"), "{text}");
    let bad = serde_json::json!({"question": "q", "answer": "a", "attach": [{"image": "ftp://x/a.png"}]});
    let (status, body) = daemon.api("PUT", "/api/v1/knowledge/entries/huabei", Some(&bad));
    assert_eq!(status, 400, "{body}");
    assert_eq!(std::fs::read_to_string(&faq_path).unwrap(), text, "refused edits leave the file alone");
    assert_eq!(daemon.api("DELETE", "/api/v1/knowledge/entries/huabei", None).0, 200);

    // A 千牛 CSV export's entries are listed with their file, read-only, and say so when edited.
    let with_csv = shipped.replacen("\n[knowledge]\n", "\n[knowledge]\ncsv = [\"qianniu.csv\"]\n", 1);
    std::fs::write(&faq_path, &with_csv).unwrap();
    std::fs::write(
        daemon.config_dir.path().join("qianniu.csv"),
        "问题,相似问法,答案\n可以用数字人民币付款吗,,暂不支持～\n",
    )
    .unwrap();
    assert_eq!(daemon.api("POST", "/api/v1/config/reload", None).0, 200);
    let (_, list) = daemon.api("GET", "/api/v1/knowledge/entries", None);
    let entries = list["entries"].as_array().unwrap();
    assert_eq!(entries.len() as u64, shipped_count + 1, "{list}");
    let csv = entries.iter().find(|e| e["id"] == "qianniu-1").unwrap();
    assert_eq!((csv["source"].as_str(), csv["editable"].as_bool()), (Some("qianniu.csv"), Some(false)), "{csv}");
    assert!(
        entries.iter().filter(|e| e["id"] != "qianniu-1").all(|e| e["source"] == "faq.toml" && e["editable"] == true)
    );
    for (method, body) in [("PUT", Some(serde_json::json!({"question": "q", "answer": "a"}))), ("DELETE", None)] {
        let (status, refused) = daemon.api(method, "/api/v1/knowledge/entries/qianniu-1", body.as_ref());
        assert_eq!((status, refused["code"].as_str()), (409, Some("entry_read_only")), "{refused}");
        assert!(refused["message"].as_str().unwrap().contains("qianniu.csv"), "{refused}");
    }
    assert_eq!(std::fs::read_to_string(&faq_path).unwrap(), with_csv, "refused edits leave the file alone");
}

#[test]
fn check_says_which_desk_a_desk_dependent_bot_watches() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["huiliu.toml", "shops.toml", "routing.toml"] {
        std::fs::copy(workspace_root().join("config").join(f), dir.path().join(f)).unwrap();
    }
    // A database of its own (none yet: nothing learned).
    let huiliu_toml = std::fs::read_to_string(dir.path().join("huiliu.toml")).unwrap();
    std::fs::write(dir.path().join("huiliu.toml"), huiliu_toml.replace("sqlite://../data/", "sqlite://data/")).unwrap();
    let faq = "[[shop]]\nid = \"tb-flagship\"\nbot = \"off_hours\"\n[[shop]]\nid = \"dy-flagship\"\nbot = \"long_wait\"\nbot_wait_minutes = 3\n\
               [[entry]]\nid = \"a\"\nquestion = \"包邮吗\"\nanswer = \"包邮\"\n";
    std::fs::write(dir.path().join("faq.toml"), faq).unwrap();
    let (code, out) = huiliu(&["check", "--config", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("bot of shop `tb-flagship` (off_hours): its conversations go to group `presales`"), "{out}");
    // long_wait says which handle time its wait estimate uses: the configured one until 20
    // conversations closed in the last 7 days.
    assert!(out.contains("bot of shop `dy-flagship` (long_wait)"), "{out}");
    assert!(
        out.contains("handle time of 300 s configured (routing.default_handle_time_s: 0 conversations closed in the last 7 days, 20 needed"),
        "{out}"
    );
    assert!(!dir.path().join("data").exists(), "check created no database");
    std::fs::remove_file(dir.path().join("routing.toml")).unwrap();
    let (code, out) = huiliu(&["check", "--config", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("there is no routing.toml: its bot never answers first"), "{out}");
}
