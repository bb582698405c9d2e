//! `huiliu demo`: the gateway on its embedded default (SQLite in a data directory, the bundled
//! plugins) with simulated Taobao, Douyin, JD and WeChat Shop storefronts sending realistic buyer traffic,
//! a scripted demo agent answering, and a readable live log of sessions and replies.
//!
//! The simulators run in their own process (`huiliu-sim`, built beside `huiliu`), so the
//! gateway still knows no wire format: it only reads the shop settings the simulator prints.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use huiliu_sdk::Content;
use serde::Deserialize;

use crate::Gateway;
use crate::config::GatewayConfig;
use crate::events::GatewayEvent;
use crate::flow::{Author, ReplyRequest};
use crate::plugins::Shop;

/// The demo's knowledge base: the shipped `config/faq.toml`; the first demo shop's bot answers
/// first (the others leave every message to agents, for contrast).
const DEMO_FAQ: &str = include_str!("../../config/faq.toml");

/// The demo's routing: the shipped groups without business hours (a demo runs at any hour),
/// small caps so the queue shows up, every agent online at start.
const DEMO_ROUTING: &str = r#"
[routing]
policy = "least_load"
fallback_group = "presales"
first_response_limit_s = 30
[messages]
welcome = "您好，我是{agent}，很高兴为您服务～"
queue_position = "当前咨询人数较多，您前面还有{position}位，预计等待约{wait_minutes}分钟，请稍候。"
[[group]]
id = "presales"
name = "售前"
[[group]]
id = "aftersales"
name = "售后"
[[group]]
id = "vip"
name = "专属客服"
[[agent]]
id = "a01"
name = "小美"
groups = { presales = 5, aftersales = 3 }
max_sessions = 3
[[agent]]
id = "a02"
name = "小王"
groups = { presales = 4 }
max_sessions = 3
[[agent]]
id = "a04"
name = "阿强"
groups = { aftersales = 5, presales = 2 }
max_sessions = 3
role = "lead"
[[agent]]
id = "a06"
name = "婷婷"
groups = { vip = 5, presales = 4 }
max_sessions = 3
[[rule]]
name = "投诉优先"
priority = 10
[rule.match]
category = ["complaint"]
[[rule.target]]
group = "aftersales"
[[rule]]
name = "粉丝专属"
priority = 5
[rule.match]
fans_min = 1
[[rule.target]]
group = "vip"
wait_s = 20
[[rule.target]]
group = "presales"
[[rule]]
name = "售后"
[rule.match]
category = ["aftersales"]
[[rule.target]]
group = "aftersales"
wait_s = 60
[[rule.target]]
group = "presales"
[[rule]]
name = "默认"
[[rule.target]]
group = "presales"
"#;

/// Options of `huiliu demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub listen: String,
    /// Where the demo database goes (default: a fresh temp directory).
    pub data_dir: Option<PathBuf>,
    /// Buyer messages per second.
    pub rate: f64,
    /// Stop after this many seconds (0: until Ctrl-C).
    pub duration_secs: u64,
}

#[derive(Debug, Deserialize)]
struct SimShops {
    shops: Vec<SimShop>,
}

#[derive(Debug, Deserialize)]
struct SimShop {
    id: String,
    platform: String,
    name: String,
    settings: std::collections::BTreeMap<String, String>,
}

/// Kills the simulator when the demo ends, however it ends.
struct SimProcess(Child);

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sim_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let path = exe.with_file_name(format!("huiliu-sim{}", std::env::consts::EXE_SUFFIX));
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} not found next to huiliu; build everything with `cargo build --release` at the repository root",
            path.display()
        ))
    }
}

/// The agent the person at the workbench plays (the scripted agent leaves their sessions alone).
pub const WORKBENCH_AGENT: &str = "a01";
/// The demo's workbench password (every demo user).
pub const DEMO_PASSWORD: &str = "demo";

/// Runs the demo until Ctrl-C (or `duration_secs`).
pub async fn run(options: DemoOptions) -> Result<(), String> {
    let gateway_url = format!("http://{}", options.listen);
    let mut child = Command::new(sim_binary()?)
        .args(["demo", "--gateway", &gateway_url, "--rate", &options.rate.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start huiliu-sim: {e}"))?;
    let stdout = child.stdout.take().ok_or("huiliu-sim has no stdout")?;
    let sim = SimProcess(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).map_err(|e| format!("cannot read from huiliu-sim: {e}"))?;
    let shops: SimShops =
        serde_json::from_str(&line).map_err(|e| format!("huiliu-sim printed no shop list ({e}): {line}"))?;

    let (data_dir, _temp) = match &options.data_dir {
        Some(d) => (d.clone(), None),
        None => {
            let t = std::env::temp_dir().join(format!("huiliu-demo-{}", std::process::id()));
            (t.clone(), Some(TempDir(t)))
        }
    };
    std::fs::create_dir_all(&data_dir).map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    let mut config = GatewayConfig::defaults(&data_dir);
    config.server.listen = options.listen.clone();
    config.store.url = format!("sqlite://{}", data_dir.join("demo.db").display());
    config.api.admin_token = format!("demo-{:016x}", rand::random::<u64>());
    config.outbox.backoff_base_ms = 500;
    config.shops = shops
        .shops
        .into_iter()
        .map(|s| Shop { id: s.id, platform: s.platform, name: s.name, enabled: true, settings: s.settings })
        .collect();
    config.routing = Some(
        huiliu_routing::parse(DEMO_ROUTING, "demo routing")
            .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))?,
    );
    // The shops and the routing file in the demo's config directory too, so a live reload (SIGHUP, an edit,
    // `POST /api/v1/config/reload`) reads what the demo runs, not a missing file.
    let routing_file = data_dir.join(huiliu_routing::ROUTING_FILE);
    std::fs::write(&routing_file, DEMO_ROUTING).map_err(|e| format!("cannot write {}: {e}", routing_file.display()))?;
    let shops_file = data_dir.join(crate::config::SHOPS_FILE);
    std::fs::write(&shops_file, shops_toml(&config.shops))
        .map_err(|e| format!("cannot write {}: {e}", shops_file.display()))?;
    if let Some(first) = config.shops.first() {
        let faq = format!("{DEMO_FAQ}\n[[shop]]\nid = \"{}\"\nbot = \"always\"\n", first.id);
        let knowledge = huiliu_knowledge::parse(&faq, "demo faq.toml")
            .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))?;
        let entries = knowledge.entry.len();
        config.knowledge = Some(knowledge);
        let faq_file = data_dir.join(huiliu_knowledge::FAQ_FILE);
        std::fs::write(&faq_file, faq).map_err(|e| format!("cannot write {}: {e}", faq_file.display()))?;
        println!("智能客服: 店铺 {} 的机器人先回答常见问题（知识库 {entries} 条），其余店铺只给客服推荐答案", first.id);
    }
    config.users = [(WORKBENCH_AGENT, None), ("a04", None), ("admin", Some(huiliu_domain::Role::Admin))]
        .into_iter()
        .map(|(id, role)| crate::services::auth::UserConfig {
            id: id.into(),
            password_hash: crate::services::auth::hash_password(DEMO_PASSWORD),
            name: None,
            role,
            groups: Vec::new(),
            disabled: false,
        })
        .collect();
    // And the users, so that password changes and the admin's user edits have a file to go to.
    let users_file = data_dir.join(crate::services::auth::USERS_FILE);
    std::fs::write(&users_file, crate::services::users_file::render(&config.users))
        .map_err(|e| format!("cannot write {}: {e}", users_file.display()))?;
    let token = config.api.admin_token.clone();
    let addr = config.listen_addr();
    let gateway = Gateway::start(config).await.map_err(|e| e.to_string())?;
    let shop_errors = gateway.status.shop_errors();
    if !shop_errors.is_empty() {
        return Err(format!("some demo shops could not start: {shop_errors:?}"));
    }
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    gateway.spawn_background();
    if gateway.flow.routing.is_some() {
        for agent in ["a02", "a04", "a06"] {
            gateway.flow.set_status(agent, huiliu_routing::AgentStatus::Online).await?;
        }
    }
    println!("汇流 Huiliu demo — four simulated storefronts (淘宝 / 抖音 / 京东 / 微信小店) sending buyer traffic");
    println!("  gateway    {gateway_url}   (health: /healthz, readiness: /readyz, metrics: /metrics)");
    println!("  workbench  {gateway_url}/   登录: a01 / {DEMO_PASSWORD} (客服 小美，切换到「在线」开始接待)");
    println!("             a04 / {DEMO_PASSWORD} (组长 阿强，看板)   admin / {DEMO_PASSWORD} (管理员)");
    println!("  API        curl -H 'Authorization: Bearer {token}' {gateway_url}/api/v1/sessions");
    println!("  database   {}", data_dir.join("demo.db").display());
    println!("  Personal data (phones, IDs, cards, e-mail, addresses) is masked before it is stored or shown.");
    println!("  Ctrl-C stops the demo.\n");
    tokio::spawn(live_log(gateway.clone()));
    tokio::spawn(demo_agent(gateway.clone()));
    let app = gateway.app();
    // The peer's address reaches the handlers (the login limiter counts per address).
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let serve = axum::serve(crate::nodelay_listener(listener), app).with_graceful_shutdown(async move {
        if options.duration_secs > 0 {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = tokio::time::sleep(Duration::from_secs(options.duration_secs)) => {}
            }
        } else {
            let _ = tokio::signal::ctrl_c().await;
        }
    });
    let result = serve.await.map_err(|e| e.to_string());
    drop(sim);
    let (inbound, outbound, sessions) = gateway.store.counts().await.unwrap_or_default();
    println!("\ndemo stopped: {inbound} buyer messages, {outbound} replies, {sessions} sessions");
    result
}

/// `shops.toml` for `shops` (JSON string literals are TOML basic strings).
fn shops_toml(shops: &[Shop]) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let mut out = String::from("# Written by `huiliu demo`: the simulated storefronts.\n");
    for shop in shops {
        out.push_str(&format!(
            "\n[[shop]]\nid = {}\nplatform = {}\nname = {}\nenabled = {}\n",
            q(&shop.id),
            q(&shop.platform),
            q(&shop.name),
            shop.enabled
        ));
        if !shop.settings.is_empty() {
            out.push_str("[shop.settings]\n");
            for (k, v) in &shop.settings {
                out.push_str(&format!("{} = {}\n", q(k), q(v)));
            }
        }
    }
    out
}

/// Removes the demo's temp directory at the end.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn platform_zh(platform: &str) -> &str {
    match platform {
        "taobao" => "淘宝",
        "douyin" => "抖音",
        "jd" => "京东",
        "wechat-shop" => "微信小店",
        other => other,
    }
}

/// Prints one readable line per buyer message, reply and delivery.
async fn live_log(gw: Arc<Gateway>) {
    let mut events = gw.flow.events.subscribe();
    loop {
        let event = match events.recv().await {
            Ok(e) => e,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                println!("  … {n} events skipped");
                continue;
            }
            Err(_) => return,
        };
        match event.event.clone() {
            GatewayEvent::MessageIn { session_id, customer_id, message_id, new_session, platform, shop, .. } => {
                let nick = gw.store.customer(customer_id).await.ok().flatten().and_then(|c| c.nick).unwrap_or_default();
                let text = gw.store.message(message_id).await.ok().flatten().map(|m| m.text).unwrap_or_default();
                let tag = if new_session { "新会话" } else { "" };
                println!("[{}/{shop}] 会话#{session_id} {tag} 买家 {nick}: {text}", platform_zh(&platform));
            }
            GatewayEvent::MessageOut { session_id, message_id } => {
                let message = gw.store.message(message_id).await.ok().flatten();
                let by_bot = message.as_ref().is_some_and(|m| m.author.as_deref() == Some("bot"));
                let text = message.map(|m| m.text).unwrap_or_default();
                let who = if by_bot { "智能客服" } else { "客服回复" };
                println!("          会话#{session_id} {who}: {text}");
            }
            GatewayEvent::Delivery { session_id, state, detail, .. } => match state.as_str() {
                "sent" => println!("          会话#{session_id} ✓ 已送达平台"),
                other => println!("          会话#{session_id} 发送{other}: {}", detail.unwrap_or_default()),
            },
            GatewayEvent::Trade { session_id: Some(s), .. } => println!("          会话#{s} 订单/退款状态更新"),
            GatewayEvent::Assigned { session_id, agent, .. } => {
                let why = gw.store.decisions(session_id).await.ok().and_then(|d| d.last().cloned());
                let why = why.and_then(|d| d["why"].as_str().map(str::to_owned)).unwrap_or_default();
                println!("          会话#{session_id} → 分配给 {agent}（{why}）");
            }
            GatewayEvent::Queued { session_id, group, position } => {
                println!("          会话#{session_id} 排队 {group} 第{position}位")
            }
            GatewayEvent::Alert { kind, session_id, detail } => {
                println!("  ⚠ {kind} 会话#{} {detail}", session_id.unwrap_or_default())
            }
            GatewayEvent::Channel { platform, shop, channel, status, .. } => {
                println!("[{}/{shop}] 通道 {channel}: {status}", platform_zh(&platform))
            }
            _ => {}
        }
    }
}

/// A scripted agent so the demo shows the reply path: answers each buyer message after a short
/// pause with a canned reply picked by keyword, as the session's agent, through the one reply
/// door (so its replies stop the first-response clock like anyone's). Sessions of the
/// workbench's demo agent (a01) are left to the person at the workbench.
pub async fn demo_agent(gw: Arc<Gateway>) {
    let mut events = gw.flow.events.subscribe();
    while let Ok(event) = events.recv().await {
        let GatewayEvent::MessageIn { session_id, message_id, .. } = event.event.clone() else { continue };
        let gw = gw.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            // The workbench's demo agent answers their own conversations.
            let agent = gw.store.session(session_id).await.ok().flatten().and_then(|s| s.agent);
            if agent.as_deref() == Some(WORKBENCH_AGENT) {
                return;
            }
            // The bot (智能客服) answered and no agent has the conversation: nothing to add.
            let messages = gw.store.session_messages(session_id).await.unwrap_or_default();
            let last_out = messages.iter().rev().find(|m| m.direction == huiliu_domain::session::Direction::Out);
            if agent.is_none() && last_out.is_some_and(|m| m.author.as_deref() == Some("bot")) {
                return;
            }
            let text = gw.store.message(message_id).await.ok().flatten().map(|m| m.text).unwrap_or_default();
            let answer = canned_reply(&text);
            // Through the one reply door, as the session's agent: the reply is checked, stored,
            // counted and stops the first-response clock like any agent's.
            let author = Author::Agent(agent.unwrap_or_else(|| "demo-agent".into()));
            let request = ReplyRequest { session_id, author, content: vec![Content::text(answer)] };
            if let Err(e) = gw.flow.reply(request).await {
                tracing::warn!(session = session_id, "demo agent could not reply: {e}");
            }
        });
    }
}

fn canned_reply(text: &str) -> &'static str {
    let has = |words: &[&str]| words.iter().any(|w| text.contains(w));
    if has(&["投诉", "差评", "举报", "主管", "太过分"]) {
        "非常抱歉给您带来不好的体验，我马上为您升级处理，请您放心。"
    } else if has(&["退", "换", "破损", "不出热水", "上门"]) {
        "亲，售后这边已经为您登记，会在24小时内处理，请保持电话畅通哦。"
    } else if has(&["发货", "物流", "快递", "订单", "发票"]) {
        "亲，帮您查询了，订单已经在处理中，发货后物流信息会同步更新。"
    } else {
        "亲，在的，这款目前有现货，今天下单今天发货哦。"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_shops_file_reads_back_as_the_same_shops() {
        let shops = vec![Shop {
            id: "tb-demo".into(),
            platform: "taobao".into(),
            name: "淘宝 \"旗舰\" 店".into(),
            enabled: true,
            settings: [
                ("app_secret".to_owned(), "a\\b".to_owned()),
                ("ws_url".to_owned(), "ws://127.0.0.1:1/".to_owned()),
            ]
            .into(),
        }];
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(crate::config::SHOPS_FILE), shops_toml(&shops)).unwrap();
        let mut errors = Vec::new();
        let read = crate::config::load_shops(dir.path(), &|_| None, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(read, shops);
    }
}
