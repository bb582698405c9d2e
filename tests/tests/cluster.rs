//! Several nodes on one PostgreSQL database and one NATS server (issue 17): three real daemons
//! on loopback, Douyin pushes sent to every node, the Taobao TMC channel and the JD stream each
//! read by one node at a time, agents on different nodes. A sampler reads the store every 100 ms while traffic runs and
//! fails the test if any agent ever holds more conversations than their cap.
//!
//! Needs `HUILIU_TEST_POSTGRES_URL` and `HUILIU_TEST_NATS_URL` (`.ci/run` sets both); without
//! them every test here says SKIPPED and passes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use huiliu_e2e::load::{Api, PASSWORD, agent_id, routing_toml, users_toml};
use huiliu_e2e::proxy::Proxy;
use huiliu_e2e::{Daemon, Launch, artifacts, psql, shop_toml};
use huiliu_sim::douyin::DouyinSim;
use huiliu_sim::jd::JdSim;
use huiliu_sim::taobao::TaobaoSim;
use huiliu_sim::{BuyerChat, Faults, SimConfig, now_ms};
use serde_json::{Value, json};

const PG_ENV: &str = "HUILIU_TEST_POSTGRES_URL";
const NATS_ENV: &str = "HUILIU_TEST_NATS_URL";
/// Conversations each agent may hold.
const CAP: u32 = 2;
const AGENTS: usize = 3;
/// How long an agent whose node died may take to reconnect elsewhere before they are set offline.
const GRACE_MS: u64 = 4_000;

fn services() -> Option<(String, String)> {
    match (std::env::var(PG_ENV), std::env::var(NATS_ENV)) {
        (Ok(pg), Ok(nats)) => Some((pg, nats)),
        _ => {
            eprintln!("SKIPPED: set {PG_ENV} and {NATS_ENV} (e.g. nats://127.0.0.1:4222) to run the cluster tests");
            None
        }
    }
}

/// A fresh database on the server of `base`; its URL.
fn fresh_database(base: &str, tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!("huiliu_t_cluster_{}_{}_{tag}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
    psql(base, &format!("DROP DATABASE IF EXISTS {name}"));
    psql(base, &format!("CREATE DATABASE {name}"));
    let (prefix, _) = base.rsplit_once('/').expect("URL with a database name");
    format!("{prefix}/{name}")
}

struct Cluster {
    nodes: Vec<Daemon>,
    db: String,
    douyin: DouyinSim,
    taobao: TaobaoSim,
    jd: JdSim,
    /// Between the nodes and NATS / PostgreSQL, when asked for.
    nats_proxy: Option<Proxy>,
    pg_proxy: Option<Proxy>,
    rt: tokio::runtime::Runtime,
    ttl_ms: u64,
    _plugins: tempfile::TempDir,
    _serial: std::sync::MutexGuard<'static, ()>,
}

/// One cluster at a time: three daemons each are what two cores can carry with the timings
/// the tests check.
static SERIAL: Mutex<()> = Mutex::new(());

fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

impl Cluster {
    /// `n` nodes on a fresh database and a cluster name of their own on the NATS server.
    fn start(n: usize, ttl_ms: u64, tag: &str) -> Option<Cluster> {
        Self::start_via(n, ttl_ms, tag, false, false, None)
    }

    /// [`Cluster::start`], with the nodes reaching NATS and/or PostgreSQL through a proxy the
    /// test can cut.
    fn start_via(
        n: usize,
        ttl_ms: u64,
        tag: &str,
        proxy_nats: bool,
        proxy_pg: bool,
        douyin_token_expires_at: Option<i64>,
    ) -> Option<Cluster> {
        let (pg, nats) = services()?;
        let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let db = fresh_database(&pg, tag);
        let rt = huiliu_e2e::runtime();
        let nats_proxy = proxy_nats.then(|| Proxy::start(&rt, &host_port(&nats)));
        let pg_proxy = proxy_pg.then(|| Proxy::start(&rt, &host_port(&pg)));
        let nats = match &nats_proxy {
            Some(p) => format!("nats://{}", p.addr),
            None => nats,
        };
        let node_db = match &pg_proxy {
            Some(p) => db.replacen(&host_port(&db), &p.addr, 1),
            None => db.clone(),
        };
        let faults = Arc::new(Faults::default());
        let douyin = rt.block_on(DouyinSim::start(SimConfig::sample("7000555"), faults.clone())).expect("douyin");
        let taobao = rt.block_on(TaobaoSim::start(SimConfig::sample("cl-tb-shop"), faults.clone())).expect("taobao");
        let jd = rt.block_on(JdSim::start(SimConfig::sample("cl-jd-shop"), faults)).expect("jd");
        let mut douyin_settings = douyin.shop_settings();
        if let Some(at) = douyin_token_expires_at {
            douyin.set_token_expires_at(at);
            douyin_settings.insert("token_expires_at".into(), at.to_string());
        }
        let shops = shop_toml("dy-1", "douyin", &douyin_settings)
            + &shop_toml("tb-1", "taobao", &taobao.shop_settings())
            + &shop_toml("jd-1", "jd", &jd.shop_settings());
        let plugins = artifacts().plugins_dir(&["huiliu-douyin", "huiliu-taobao", "huiliu-jd"]);
        let name = format!("t{}{tag}{}", std::process::id(), now_ms() % 100_000);
        let mut nodes = Vec::new();
        // One after the other: the first applies the migrations.
        for i in 0..n {
            let extra = format!(
                "[cluster]\nnode_id = \"n{i}\"\nnats_url = \"{nats}\"\nname = \"{name}\"\nlease_ttl_ms = {ttl_ms}\n\
                 renew_interval_ms = {}\npresence_grace_ms = {GRACE_MS}\n",
                ttl_ms / 5
            );
            nodes.push(Daemon::launch(Launch {
                files: vec![("routing.toml", routing_toml(AGENTS, CAP)), ("users.toml", users_toml(AGENTS))],
                store_url: Some(node_db.clone()),
                extra_toml: &extra,
                log_level: "info,huiliu_gateway::cluster=debug",
                ..Launch::new(plugins.path(), &shops)
            }));
        }
        Some(Cluster {
            nodes,
            db,
            douyin,
            taobao,
            jd,
            nats_proxy,
            pg_proxy,
            rt,
            ttl_ms,
            _plugins: plugins,
            _serial: serial,
        })
    }

    fn readyz(&self, i: usize) -> Value {
        let (_, body) = self.nodes[i].request("GET", "/readyz", &[], b"");
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    }

    /// The node leading routing now (among `alive`).
    fn leader(&self, alive: &[usize]) -> Option<usize> {
        alive.iter().copied().find(|&i| self.readyz(i)["cluster"]["routing_leader"] == true)
    }

    fn wait_leader(&self, alive: &[usize], secs: u64) -> usize {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(i) = self.leader(alive) {
                return i;
            }
            assert!(Instant::now() < deadline, "no routing leader among {alive:?} after {secs}s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Pushes one buyer message to node `i`; whether the platform got its acknowledgement.
    fn push(&self, i: usize, msg_id: &str, buyer: &str, text: &str) -> bool {
        self.douyin.set_gateway(format!("http://{}/hooks/douyin/dy-1", self.nodes[i].addr));
        self.rt.block_on(self.douyin.deliver_chat(&BuyerChat::text(msg_id, buyer, text, now_ms()))).acked
    }

    /// Logs every agent in through node `i mod n` and puts them online; tokens by agent.
    fn agents_online(&self) -> Vec<String> {
        (0..AGENTS)
            .map(|a| {
                let api = Api::new(&self.nodes[a % self.nodes.len()].addr);
                let token = self.rt.block_on(api.login(&agent_id(a), PASSWORD));
                let (status, body) = self.rt.block_on(api.call(
                    "POST",
                    &format!("/api/v1/agents/{}/status", agent_id(a)),
                    &token,
                    Some(json!({"status": "online"})),
                ));
                assert_eq!(status, 200, "{} online: {body}", agent_id(a));
                token
            })
            .collect()
    }

    /// (agent, assigned sessions) from the store.
    fn loads(&self) -> BTreeMap<String, u32> {
        psql(&self.db, "SELECT agent, COUNT(*) FROM sessions WHERE state = 'assigned' GROUP BY agent")
            .lines()
            .filter_map(|l| l.split_once('|'))
            .map(|(a, n)| (a.to_owned(), n.parse().unwrap_or(0)))
            .collect()
    }

    fn count(&self, sql: &str) -> u32 {
        psql(&self.db, sql).parse().unwrap_or(0)
    }
}

/// Reads the store every 100 ms until stopped; every reading where an agent held more than the
/// cap is kept.
struct CapSampler {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<(u32, Vec<String>)>>,
}

impl CapSampler {
    fn start(db: &str) -> CapSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let (db, flag) = (db.to_owned(), stop.clone());
        let thread = std::thread::spawn(move || {
            let (mut samples, mut over) = (0u32, Vec::new());
            while !flag.load(Ordering::SeqCst) {
                let rows = psql(&db, "SELECT agent, COUNT(*) FROM sessions WHERE state = 'assigned' GROUP BY agent");
                for (agent, n) in rows.lines().filter_map(|l| l.split_once('|')) {
                    if n.parse::<u32>().unwrap_or(0) > CAP {
                        over.push(format!("{agent} held {n} (cap {CAP})"));
                    }
                }
                samples += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            (samples, over)
        });
        CapSampler { stop, thread: Some(thread) }
    }

    /// Stops; panics if the cap was ever broken. The number of samples.
    fn finish(mut self) -> u32 {
        self.stop.store(true, Ordering::SeqCst);
        let (samples, over) = self.thread.take().expect("sampler").join().expect("sampler thread");
        assert!(over.is_empty(), "an agent held more than the cap: {over:?}");
        assert!(samples >= 5, "the sampler ran {samples} times");
        samples
    }
}

/// One event-stream client: every frame it received.
struct Watcher {
    frames: Arc<Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Watcher {
    fn connect(rt: &tokio::runtime::Runtime, addr: &str, token: &str, since: Option<u64>) -> Watcher {
        let frames: Arc<Mutex<Vec<Value>>> = Arc::default();
        let since = since.map(|s| format!("&since={s}")).unwrap_or_default();
        let url = format!("ws://{addr}/api/v1/events?token={token}{since}");
        let (addr, sink) = (addr.to_owned(), frames.clone());
        let task = rt.spawn(async move {
            let stream = tokio::net::TcpStream::connect(&addr).await.expect("connect");
            let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await.expect("event stream");
            while let Some(Ok(msg)) = ws.next().await {
                if let Ok(v) = serde_json::from_str::<Value>(msg.to_text().unwrap_or("")) {
                    sink.lock().unwrap().push(v);
                }
            }
        });
        let w = Watcher { frames, task };
        let deadline = Instant::now() + Duration::from_secs(10);
        while w.frames().is_empty() {
            assert!(Instant::now() < deadline, "no hello on the event stream");
            std::thread::sleep(Duration::from_millis(20));
        }
        w
    }

    fn frames(&self) -> Vec<Value> {
        self.frames.lock().unwrap().clone()
    }

    /// The numbered events received, in order.
    fn events(&self) -> Vec<Value> {
        self.frames().into_iter().filter(|f| f["seq"].as_u64().is_some() && f["type"] != "hello").collect()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Per session, the agents routing gave it in order (`assigned` events) — from a watcher that
/// sees everything — checked to never give a session to a second agent without taking it from
/// the first.
fn assignments(events: &[Value]) -> HashMap<i64, Vec<String>> {
    let mut holder: HashMap<i64, Option<String>> = HashMap::new();
    let mut out: HashMap<i64, Vec<String>> = HashMap::new();
    for e in events {
        let Some(session) = e["session_id"].as_i64() else { continue };
        match e["type"].as_str() {
            Some("assigned") => {
                let agent = e["agent"].as_str().unwrap_or_default().to_owned();
                let before = holder.insert(session, Some(agent.clone())).flatten();
                assert!(before.is_none(), "session {session} given to {agent} while {before:?} held it: {e}");
                out.entry(session).or_default().push(agent);
            }
            Some("unassigned") | Some("closed") => {
                holder.insert(session, None);
            }
            _ => {}
        }
    }
    out
}

#[test]
fn three_nodes_share_one_desk_caps_hold_and_every_message_and_reply_goes_through_once() {
    let Some(c) = Cluster::start(3, 3_000, "share") else { return };
    let leader = c.wait_leader(&[0, 1, 2], 15);
    let tokens = c.agents_online();
    // An admin watching every event through node 2, an agent through node 1.
    let admin = Watcher::connect(&c.rt, &c.nodes[2].addr, huiliu_e2e::API_TOKEN, None);
    let agent0 = Watcher::connect(&c.rt, &c.nodes[1].addr, &tokens[0], None);
    // The TMC channel is read by exactly one node.
    c.nodes[0].wait_for("one TMC session", 20, || (c.taobao.tmc_sessions() == 1).then_some(()));

    let sampler = CapSampler::start(&c.db);
    let mut acked = 0;
    for b in 0..12 {
        let node = (b * 7 + 3) % 3;
        if c.push(node, &format!("m{b}"), &format!("buyer-{b}"), &format!("第{b}位买家：在吗")) {
            acked += 1;
        }
        // A second message of the same buyer to another node: the same session.
        if c.push((node + 1) % 3, &format!("m{b}-2"), &format!("buyer-{b}"), "还在吗") {
            acked += 1;
        }
    }
    // Taobao buyers through the TMC channel, whichever node reads it.
    for b in 0..3 {
        let chat = BuyerChat::text(&format!("tb-{b}"), &format!("tb-buyer-{b}"), "有货吗", now_ms());
        let id = c.rt.block_on(c.taobao.enqueue_chat(&chat));
        assert!(c.rt.block_on(c.taobao.wait_confirmed(id, Duration::from_secs(15))), "TMC message {b} confirmed");
        acked += 1;
    }
    assert_eq!(acked, 27, "every push acknowledged");
    // JD buyers through the JD stream, read by the one node holding its lease (a stream has no
    // acknowledgement: each must be stored).
    assert!(c.rt.block_on(c.jd.wait_for_stream(Duration::from_secs(20))), "one node opened the JD stream");
    for b in 0..3 {
        let chat = BuyerChat::text(&format!("jd-{b}"), &format!("jd-buyer-{b}"), "发什么快递", now_ms());
        assert!(c.rt.block_on(c.jd.deliver_chat(&chat)).acked, "JD message {b} written");
    }
    // Every message stored once; 18 conversations; the 3 agents full (6), the rest waiting.
    c.nodes[0].wait_for("every message stored", 20, || {
        (c.count("SELECT COUNT(*) FROM messages WHERE direction = 'in'") == 30).then_some(())
    });
    c.nodes[0].wait_for("6 assigned", 20, || (c.loads().values().sum::<u32>() == 6).then_some(()));
    c.nodes[0].wait_for("12 waiting", 20, || {
        (c.count("SELECT COUNT(*) FROM sessions WHERE state = 'queued'") == 12).then_some(())
    });
    assert_eq!(c.count("SELECT COUNT(*) FROM sessions"), 18);
    assert_eq!(
        c.count("SELECT COUNT(*) FROM (SELECT platform_msg_id FROM messages WHERE direction = 'in' GROUP BY platform_msg_id HAVING COUNT(*) > 1) d"),
        0,
        "a message stored twice"
    );

    // Each agent replies to their conversations through a node of their own; every reply
    // reaches the platform once.
    let mut replies = 0;
    for (a, token) in tokens.iter().enumerate() {
        let ids = psql(
            &c.db,
            &format!("SELECT id FROM sessions WHERE agent = '{}' AND state = 'assigned' ORDER BY id", agent_id(a)),
        );
        for id in ids.lines() {
            let api = Api::new(&c.nodes[(a + 1) % 3].addr);
            let body = json!({"content": [{"type": "text", "text": format!("回复{id}")}]});
            let (status, out) =
                c.rt.block_on(api.call("POST", &format!("/api/v1/sessions/{id}/reply"), token, Some(body)));
            assert!(status == 200 || status == 202, "reply {id}: {status} {out}");
            replies += 1;
        }
    }
    assert_eq!(replies, 6);
    c.nodes[0].wait_for("every reply at a platform", 30, || {
        let sent = [c.douyin.journal(), c.taobao.journal(), c.jd.journal()]
            .iter()
            .map(|j| j.received().iter().filter(|r| r.content.starts_with("回复")).count())
            .sum::<usize>();
        (sent >= 6).then_some(())
    });
    std::thread::sleep(Duration::from_millis(1500)); // time for a second send, were there one
    let mut sent: Vec<String> = c.douyin.journal().received().into_iter().map(|r| r.client_msg_id).collect();
    sent.extend(c.taobao.journal().received().into_iter().map(|r| r.client_msg_id));
    sent.extend(c.jd.journal().received().into_iter().map(|r| r.client_msg_id));
    let unique: BTreeSet<&String> = sent.iter().collect();
    assert_eq!(unique.len(), sent.len(), "a reply was sent twice: {sent:?}");

    // Closing through a node that does not lead drains the queue into the freed seats.
    let follower = (leader + 1) % 3;
    let first = psql(&c.db, "SELECT id FROM sessions WHERE state = 'assigned' ORDER BY id LIMIT 2");
    for id in first.lines() {
        let (status, body) = c.nodes[follower].api("POST", &format!("/api/v1/sessions/{id}/close"), None);
        assert_eq!(status, 200, "{body}");
    }
    c.nodes[0].wait_for("the queue drained into the freed seats", 20, || {
        (c.loads().values().sum::<u32>() == 6 && c.count("SELECT COUNT(*) FROM sessions WHERE state = 'queued'") == 10)
            .then_some(())
    });
    let samples = sampler.finish();

    // A block decided through node 0 — proposed by the operator, approved by a lead with the CLI,
    // node 0 told to reload — stops the buyer at node 2 at once (not at its 30-second reload).
    let (status, body) = c.nodes[0].api(
        "POST",
        "/api/v1/blacklist",
        Some(&json!({"platform": "douyin", "shop": "dy-1", "buyer_id": "buyer-0", "level": "block",
                     "reason": "以差评威胁索要赔偿", "evidence": ["m0"]})),
    );
    assert_eq!(status, 201, "{body}");
    let out = Command::new(artifacts().huiliu())
        .args(["blacklist", "approve", &body["id"].to_string(), "--by", "lead-wang", "--role", "lead", "--config"])
        .arg(c.nodes[0].config_dir.path())
        .output()
        .expect("huiliu blacklist approve");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (status, _) = c.nodes[0].api("POST", "/api/v1/blacklist/reload", None);
    assert_eq!(status, 200);
    std::thread::sleep(Duration::from_millis(500));
    let before = c.count("SELECT COUNT(*) FROM messages WHERE direction = 'in'");
    assert!(c.push(2, "m0-3", "buyer-0", "不退钱就给差评"), "a blocked buyer's push is still acknowledged");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(c.count("SELECT COUNT(*) FROM messages WHERE direction = 'in'"), before, "no work for a blocked buyer");
    assert!(c.nodes[2].metric(r#"huiliu_events_blocked_total{platform="douyin"}"#) >= 1.0, "node 2 blocked it");

    // Every node numbers events alike; the agent on node 1 saw the assignments of their own
    // conversations, decided by the leader (node {leader}).
    c.nodes[0].wait_for("the admin's stream to see 8 assignments", 20, || {
        (admin.events().iter().filter(|e| e["type"] == "assigned").count() >= 8).then_some(())
    });
    let given = assignments(&admin.events());
    assert!(given.values().all(|agents| agents.len() == 1), "a session assigned twice: {given:?}");
    let mine: BTreeSet<i64> = agent0
        .events()
        .iter()
        .filter(|e| e["type"] == "assigned" && e["agent"] == agent_id(0).as_str())
        .filter_map(|e| e["session_id"].as_i64())
        .collect();
    let stored: BTreeSet<i64> = psql(
        &c.db,
        &format!(
            "SELECT DISTINCT session_id FROM routing_decisions WHERE decision LIKE '%\"chosen\":\"{}\"%'",
            agent_id(0)
        ),
    )
    .lines()
    .filter_map(|l| l.parse().ok())
    .collect();
    assert!(!mine.is_empty());
    assert_eq!(mine, stored, "the agent's stream on node 1 shows exactly their assignments");
    let seqs: Vec<u64> = admin.events().iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "event numbers rise: {seqs:?}");
    eprintln!(
        "cluster: leader n{leader}, {acked} messages, {} events seen by the admin, cap sampled {samples} times",
        seqs.len()
    );
}

#[test]
fn killing_the_leader_hands_routing_and_the_channel_to_another_node_and_streams_resume_without_a_gap() {
    let Some(c) = Cluster::start(3, 3_000, "kill") else { return };
    let mut c = c;
    let leader = c.wait_leader(&[0, 1, 2], 15);
    let tokens = c.agents_online();
    let survivors: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    // Agents 1 and 2 have their workbench open on the node about to die; agent 2 will reconnect
    // to a survivor, agent 1 will not.
    let lost_agent = Watcher::connect(&c.rt, &c.nodes[leader].addr, &tokens[1], None);
    let moving_agent = Watcher::connect(&c.rt, &c.nodes[leader].addr, &tokens[2], None);
    // A lead's screen (the operator: every event) watches through the node about to die.
    let before = Watcher::connect(&c.rt, &c.nodes[leader].addr, huiliu_e2e::API_TOKEN, None);
    let connected_at = before.frames()[0]["seq"].as_u64().unwrap_or(0);
    let sampler = CapSampler::start(&c.db);
    for b in 0..4 {
        assert!(c.push(b % 3, &format!("k{b}"), &format!("kb-{b}"), "在吗"));
    }
    c.nodes[0].wait_for("4 assigned", 20, || (c.loads().values().sum::<u32>() == 4).then_some(()));
    // Let agent 0's stream catch up, then kill the leader.
    std::thread::sleep(Duration::from_millis(500));
    let killed_at = Instant::now();
    c.nodes[leader].kill9();
    let last_seen = before.events().iter().filter_map(|e| e["seq"].as_u64()).max().unwrap_or(0);
    drop((lost_agent, moving_agent));
    let moved_agent = Watcher::connect(&c.rt, &c.nodes[survivors[1]].addr, &tokens[2], Some(last_seen));
    // Traffic goes on at the survivors meanwhile.
    for b in 4..8 {
        assert!(c.push(survivors[b % 2], &format!("k{b}"), &format!("kb-{b}"), "在吗"));
    }
    let new_leader = c.wait_leader(&survivors, 15);
    let takeover = killed_at.elapsed();
    assert!(
        takeover <= Duration::from_millis(c.ttl_ms + 2_000),
        "takeover took {takeover:?} (lease TTL {} ms)",
        c.ttl_ms
    );
    c.nodes[new_leader]
        .wait_for("6 assigned after the takeover", 20, || (c.loads().values().sum::<u32>() == 6).then_some(()));
    // The TMC channel moved too.
    c.nodes[new_leader].wait_for("the TMC channel read again", 20, || (c.taobao.tmc_sessions() >= 1).then_some(()));
    let samples = sampler.finish();

    // The screen reconnects to a survivor with the last number seen: nothing missed, nothing
    // twice (checked against everything the survivor kept since the first connection).
    let after = Watcher::connect(&c.rt, &c.nodes[survivors[0]].addr, huiliu_e2e::API_TOKEN, Some(last_seen));
    std::thread::sleep(Duration::from_millis(1000));
    let truth = Watcher::connect(&c.rt, &c.nodes[survivors[0]].addr, huiliu_e2e::API_TOKEN, Some(connected_at));
    std::thread::sleep(Duration::from_millis(1000));
    let mut got: Vec<u64> =
        before.events().iter().chain(after.events().iter()).filter_map(|e| e["seq"].as_u64()).collect();
    let all: Vec<u64> = truth.events().iter().filter_map(|e| e["seq"].as_u64()).collect();
    let n = got.len();
    got.dedup();
    assert_eq!(got.len(), n, "an event came twice across the reconnect");
    got.sort_unstable();
    assert_eq!(got, all, "events missed across the reconnect (before {last_seen})");
    assert!(after.events().iter().any(|e| e["type"] == "assigned"), "the new assignments came after the reconnect");
    // Every session went to one agent at a time (an agent set offline below may have theirs
    // moved, with an `unassigned` first), and every acknowledged message is stored once.
    assignments(&truth.events());
    assert_eq!(c.count("SELECT COUNT(*) FROM messages WHERE direction = 'in'"), 8);
    // Presence: the agent who did not come back is set offline after the grace period, the one
    // who reconnected elsewhere stays online.
    let status = |a: usize| {
        let (_, state) = c.nodes[new_leader].api("GET", "/api/v1/routing", None);
        // An agent not listed is offline.
        state["agents"][agent_id(a)]["status"].as_str().unwrap_or("offline").to_owned()
    };
    c.nodes[new_leader].wait_for("the agent of the dead node set offline", (GRACE_MS / 1000) + 15, || {
        (status(1) == "offline").then_some(())
    });
    assert_eq!(status(2), "online", "the agent who reconnected stays online");
    assert_eq!(status(0), "online", "an agent with no stream on the dead node stays online");
    assert!(c.nodes[new_leader].log_text().contains("did not reconnect to another within the grace period"));
    drop(moved_agent);
    let metrics = c.nodes[new_leader].metric("huiliu_cluster_lease_takeovers_total{kind=\"routing\"}");
    assert!(metrics >= 1.0, "the takeover is counted");
    eprintln!("cluster: leader n{leader} killed, n{new_leader} took over in {takeover:?}; cap sampled {samples} times");
}

#[test]
fn a_paused_leader_wakes_fenced_and_nothing_is_assigned_twice() {
    let Some(c) = Cluster::start(3, 2_000, "stop") else { return };
    let leader = c.wait_leader(&[0, 1, 2], 15);
    let _tokens = c.agents_online();
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let admin = Watcher::connect(&c.rt, &c.nodes[others[0]].addr, huiliu_e2e::API_TOKEN, None);
    let sampler = CapSampler::start(&c.db);
    assert!(c.push(others[0], "s0", "sb-0", "在吗"));
    c.nodes[others[0]].wait_for("1 assigned", 20, || (c.loads().values().sum::<u32>() == 1).then_some(()));

    let pid = c.nodes[leader].child.id().to_string();
    assert!(Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
    let paused_at = Instant::now();
    let new_leader = c.wait_leader(&others, 15);
    let takeover = paused_at.elapsed();
    // Traffic meanwhile, to the node that now leads and to the other one.
    for b in 1..5 {
        assert!(c.push(others[b % 2], &format!("s{b}"), &format!("sb-{b}"), "在吗"));
    }
    c.nodes[new_leader].wait_for("5 assigned", 20, || (c.loads().values().sum::<u32>() == 5).then_some(()));
    assert!(Command::new("kill").args(["-CONT", &pid]).status().unwrap().success());
    // More traffic after the wake, some of it to the node that slept.
    for b in 5..7 {
        assert!(c.push(if b == 5 { leader } else { others[0] }, &format!("s{b}"), &format!("sb-{b}"), "在吗"));
    }
    c.nodes[new_leader].wait_for("6 assigned", 20, || (c.loads().values().sum::<u32>() == 6).then_some(()));
    std::thread::sleep(Duration::from_millis(1500));
    let samples = sampler.finish();

    // The woken node knows it lost the lease and leads nothing.
    let ready = c.readyz(leader);
    assert_eq!(ready["cluster"]["routing_leader"], false, "{ready}");
    assert_eq!(c.leader(&[0, 1, 2]), Some(new_leader));
    let lost = c.nodes[leader].metric("huiliu_cluster_leases_lost_total{kind=\"routing\"}");
    let fenced: f64 = ["assign", "unassign", "queue"]
        .iter()
        .map(|k| c.nodes[leader].metric(&format!("huiliu_cluster_fenced_writes_total{{kind=\"{k}\"}}")))
        .sum();
    assert!(lost >= 1.0, "the woken node counted its lost lease");
    assert!(c.nodes[leader].log_text().contains("lease lost"), "and logged it");
    let given = assignments(&admin.events());
    assert!(given.values().all(|a| a.len() == 1), "{given:?}");
    assert_eq!(c.count("SELECT COUNT(*) FROM sessions WHERE state = 'assigned'"), 6);
    eprintln!(
        "cluster: n{leader} paused, n{new_leader} took over in {takeover:?}; on waking: lease lost, {fenced} fenced \
         writes refused; cap sampled {samples} times"
    );
}

#[test]
fn nats_unreachable_for_ten_seconds_loses_no_event_and_no_arrival() {
    let Some(c) = Cluster::start_via(3, 3_000, "nats", true, false, None) else { return };
    let leader = c.wait_leader(&[0, 1, 2], 15);
    let _tokens = c.agents_online();
    let watch_node = (leader + 1) % 3;
    let admin = Watcher::connect(&c.rt, &c.nodes[watch_node].addr, huiliu_e2e::API_TOKEN, None);
    let sampler = CapSampler::start(&c.db);
    for b in 0..2 {
        assert!(c.push(b, &format!("n{b}"), &format!("nb-{b}"), "在吗"));
    }
    c.nodes[0].wait_for("2 assigned", 20, || (c.loads().values().sum::<u32>() == 2).then_some(()));

    let proxy = c.nats_proxy.as_ref().expect("NATS proxy");
    proxy.cut();
    let cut_at = Instant::now();
    // Pushes go on at every node: intake needs only the database.
    for b in 2..8 {
        assert!(c.push(b % 3, &format!("n{b}"), &format!("nb-{b}"), "在吗"), "push {b} while NATS is away");
    }
    let ready = c.readyz(watch_node);
    assert_eq!(ready["cluster"]["nats"], "disconnected", "{ready}");
    std::thread::sleep(Duration::from_secs(10).saturating_sub(cut_at.elapsed()));
    proxy.restore();

    // The arrivals held at the followers reach the leader; the events held at every node reach
    // the stream; the watcher sees them all, in order, once.
    c.nodes[0].wait_for("6 assigned after NATS came back", 30, || (c.loads().values().sum::<u32>() == 6).then_some(()));
    let assigned: BTreeSet<i64> = psql(&c.db, "SELECT id FROM sessions WHERE state = 'assigned'")
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect();
    c.nodes[0].wait_for("the watcher to see every assignment", 30, || {
        let seen: BTreeSet<i64> = admin
            .events()
            .iter()
            .filter(|e| e["type"] == "assigned")
            .filter_map(|e| e["session_id"].as_i64())
            .collect();
        (seen == assigned).then_some(())
    });
    c.nodes[0].wait_for("the watcher to see every message", 30, || {
        let ids: BTreeSet<String> = admin
            .events()
            .iter()
            .filter(|e| e["type"] == "message_in")
            .filter_map(|e| e["event_id"].as_str().map(str::to_owned))
            .collect();
        (ids.len() == 8).then_some(())
    });
    let samples = sampler.finish();
    let seqs: Vec<u64> = admin.events().iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "numbers rise, none twice: {seqs:?}");
    let given = assignments(&admin.events());
    assert!(given.values().all(|a| a.len() == 1), "{given:?}");
    assert_eq!(c.count("SELECT COUNT(*) FROM messages WHERE direction = 'in'"), 8);
    eprintln!("cluster: NATS cut for 10 s; {} events seen in order; cap sampled {samples} times", seqs.len());
}

#[test]
fn postgresql_unreachable_makes_pushes_nacked_and_the_cluster_recovers_by_itself() {
    let Some(c) = Cluster::start_via(3, 3_000, "pg", false, true, None) else { return };
    c.wait_leader(&[0, 1, 2], 15);
    let _tokens = c.agents_online();
    let sampler = CapSampler::start(&c.db);
    for b in 0..2 {
        assert!(c.push(b, &format!("p{b}"), &format!("pb-{b}"), "在吗"));
    }
    c.nodes[0].wait_for("2 assigned", 20, || (c.loads().values().sum::<u32>() == 2).then_some(()));

    let proxy = c.pg_proxy.as_ref().expect("PostgreSQL proxy");
    proxy.cut();
    // Nothing can be stored: the platform is not acknowledged (it redelivers later).
    c.douyin.set_push_retry(0, Duration::from_millis(100));
    for b in 2..5 {
        assert!(
            !c.push(b % 3, &format!("p{b}"), &format!("pb-{b}"), "在吗"),
            "push {b} acknowledged without a database"
        );
    }
    std::thread::sleep(Duration::from_secs(5));
    proxy.restore();
    // The platform redelivers: now stored, once each, and routed — no operator involved.
    let deadline = Instant::now() + Duration::from_secs(30);
    for b in 2..5 {
        while !c.push(b % 3, &format!("p{b}"), &format!("pb-{b}"), "在吗") {
            assert!(Instant::now() < deadline, "push {b} still refused after the database came back");
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    let leader = c.wait_leader(&[0, 1, 2], 30);
    c.nodes[leader].wait_for("5 assigned after the database came back", 30, || {
        (c.loads().values().sum::<u32>() == 5).then_some(())
    });
    let samples = sampler.finish();
    assert_eq!(c.count("SELECT COUNT(*) FROM messages WHERE direction = 'in'"), 5);
    let ready = c.readyz(leader);
    assert_eq!(ready["ready"], true, "{ready}");
    eprintln!("cluster: PostgreSQL cut for 5 s, recovered with leader n{leader}; cap sampled {samples} times");
}

#[test]
fn one_node_refreshes_a_shops_token_and_the_others_adopt_it() {
    // The token expires in 30 minutes: inside Douyin's refresh window. Refresh tokens are
    // single-use, so three nodes refreshing would have the platform refuse two of them.
    let expires = now_ms() + 30 * 60 * 1000;
    let Some(c) = Cluster::start_via(3, 3_000, "token", false, false, Some(expires)) else { return };
    let old_token = c.douyin.current_access_token();
    c.nodes[0].wait_for("one proactive refresh", 30, || {
        (c.douyin.journal().refreshes.load(Ordering::SeqCst) >= 1).then_some(())
    });
    assert_ne!(c.douyin.current_access_token(), old_token);
    // The platform answered the refresh; the node logs it once the new token is stored.
    let holders = c.nodes[0].wait_for("the refreshing node to store the token", 20, || {
        let h: Vec<usize> = (0..3).filter(|&i| c.nodes[i].log_text().contains("access token refreshed")).collect();
        (!h.is_empty()).then_some(h)
    });
    std::thread::sleep(Duration::from_millis(500));
    let holders_now: Vec<usize> =
        (0..3).filter(|&i| c.nodes[i].log_text().contains("access token refreshed")).collect();
    assert_eq!(holders_now, holders, "one node refreshed: {holders_now:?}");
    assert_eq!(holders.len(), 1, "one node refreshed: {holders:?}");
    let others: Vec<usize> = (0..3).filter(|i| !holders.contains(i)).collect();
    for &i in &others {
        c.nodes[i].wait_for("the other nodes to adopt the stored token", 30, || {
            c.nodes[i].log_text().contains("adopted the token another node refreshed").then_some(())
        });
    }
    // Replies through every node go out with the new token; nothing refreshed again.
    let _tokens = c.agents_online();
    for b in 0..3 {
        assert!(c.push(b, &format!("t{b}"), &format!("tb-{b}"), "在吗"));
    }
    c.nodes[0].wait_for("3 assigned", 20, || (c.loads().values().sum::<u32>() == 3).then_some(()));
    for (i, id) in psql(&c.db, "SELECT id FROM sessions ORDER BY id").lines().enumerate() {
        let (status, body) = c.nodes[i % 3].api(
            "POST",
            &format!("/api/v1/sessions/{id}/reply"),
            Some(&json!({"text": format!("令牌回复{id}")})),
        );
        assert!(status == 200 || status == 202, "{body}");
    }
    c.nodes[0].wait_for("3 replies at the platform", 30, || {
        (c.douyin.journal().received().iter().filter(|r| r.content.starts_with("令牌回复")).count() == 3).then_some(())
    });
    assert_eq!(c.douyin.journal().refreshes.load(Ordering::SeqCst), 1, "refreshed once in the cluster");
    assert!(c.douyin.journal().rejected().is_empty(), "{:?}", c.douyin.journal().rejected());
}
