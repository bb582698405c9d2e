//! The load harness: drives a running daemon over loopback with signed platform traffic while
//! agents listen on the event stream, and measures what the daemon process spends doing it.
//! Used by `benches/load.rs` (figures) and by the fault tests (traffic under which things break).
//!
//! Latency is "push sent → event at the agent": the instant before the simulator sends a
//! buyer message (Douyin HTTP push, or Taobao TMC enqueue) to the instant the agent's WebSocket
//! delivers the `message_in` event carrying that message's platform id (`event_id`). Both
//! instants are taken in this process, on one clock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use huiliu_sim::douyin::DouyinSim;
use huiliu_sim::taobao::TaobaoSim;
use huiliu_sim::{BuyerChat, Delivery, now_ms};
use serde_json::{Value, json};

/// CPU time and memory of a process, from `/proc` (Linux).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcStats {
    /// User + system CPU seconds so far.
    pub cpu_s: f64,
    /// Resident set now (KiB).
    pub rss_kb: u64,
    /// Peak resident set since start (KiB).
    pub hwm_kb: u64,
}

/// Reads `/proc/<pid>/stat` and `/proc/<pid>/status`; zeros where unreadable.
pub fn proc_stats(pid: u32) -> ProcStats {
    let mut out = ProcStats::default();
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
        if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            // `rest` starts at field 3 (state): utime is index 11, stime 12. USER_HZ is 100.
            out.cpu_s = (ticks(11) + ticks(12)) / 100.0;
        }
    }
    if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
        for line in status.lines() {
            let kb = || line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
            if line.starts_with("VmRSS:") {
                out.rss_kb = kb();
            } else if line.starts_with("VmHWM:") {
                out.hwm_kb = kb();
            }
        }
    }
    out
}

/// p50, p99 and p99.9 (nearest rank) of `values`; zeros when empty.
pub fn percentiles(values: &mut [f64]) -> [f64; 3] {
    if values.is_empty() {
        return [0.0; 3];
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| values[((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1];
    [at(0.50), at(0.99), at(0.999)]
}

/// An Argon2id hash with the smallest parameters (8 KiB, 1 pass), so thousands of load-test
/// agents can log in quickly. For test users only: real users get `huiliu user hash`.
pub fn cheap_password_hash(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let params = argon2::Params::new(8, 1, 1, None).expect("argon2 params");
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(b"huiliu-load-salt").expect("salt");
    argon.hash_password(password.as_bytes(), &salt).expect("hash").to_string()
}

/// `routing.toml` for load: one group open around the clock, `agents` agents `ag00001…` each
/// taking up to `cap` conversations, least-load assignment, no notices to buyers (so the outbox
/// carries only what the test sends) and no first-response reassignment during a run.
pub fn routing_toml(agents: usize, cap: u32) -> String {
    let mut s = String::from(
        "[routing]\nfallback_group = \"presales\"\nfirst_response_limit_s = 3600\n\
         [messages]\nwelcome = \"\"\nqueue_position = \"\"\noverflow = \"\"\n\
         [[group]]\nid = \"presales\"\nname = \"售前\"\n\
         [[rule]]\nname = \"全部\"\n[[rule.target]]\ngroup = \"presales\"\n",
    );
    for i in 0..agents {
        s.push_str(&format!(
            "[[agent]]\nid = \"{}\"\nname = \"客服{i}\"\ngroups = {{ presales = 3 }}\nmax_sessions = {cap}\n",
            agent_id(i)
        ));
    }
    s
}

/// The id of load agent `i`.
pub fn agent_id(i: usize) -> String {
    format!("ag{i:05}")
}

/// `users.toml` giving every load agent the password [`PASSWORD`].
pub fn users_toml(agents: usize) -> String {
    let hash = cheap_password_hash(PASSWORD);
    (0..agents).map(|i| format!("[[user]]\nid = \"{}\"\npassword_hash = \"{hash}\"\n", agent_id(i))).collect()
}

/// The load agents' password.
pub const PASSWORD: &str = "load-test-pass";

/// A small async client for the daemon's API.
#[derive(Clone)]
pub struct Api {
    pub addr: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(addr: &str) -> Api {
        Api { addr: addr.to_owned(), http: huiliu_sim::http_client() }
    }

    /// A call with a bearer token; (status, JSON body).
    pub async fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("http://{}{path}", self.addr);
        let mut req = self.http.request(method.parse().expect("method"), url).bearer_auth(token);
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_string());
        }
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let bytes = resp.bytes().await.unwrap_or_default();
                (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
            }
            Err(e) => (0, json!({"error": e.to_string()})),
        }
    }

    /// The sum of every `/metrics` sample of `name` (all its label sets); 0 when absent.
    pub async fn metric_sum(&self, name: &str) -> f64 {
        let url = format!("http://{}/metrics", self.addr);
        let Ok(resp) = self.http.get(url).send().await else { return 0.0 };
        let body = resp.text().await.unwrap_or_default();
        body.lines()
            .filter(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with(['{', ' '])))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Logs `user` in; the token.
    pub async fn login(&self, user: &str, password: &str) -> String {
        let url = format!("http://{}/api/v1/auth/login", self.addr);
        let body = json!({"user": user, "password": password}).to_string();
        let resp = self.http.post(url).header("content-type", "application/json").body(body).send().await;
        let v: Value = match resp {
            Ok(r) => serde_json::from_slice(&r.bytes().await.unwrap_or_default()).unwrap_or(Value::Null),
            Err(e) => panic!("login {user}: {e}"),
        };
        v["token"].as_str().unwrap_or_else(|| panic!("login {user}: {v}")).to_owned()
    }

    /// Logs in every agent in `ids` (`parallel` at a time) and puts them online; their tokens.
    pub async fn agents_online(&self, ids: &[String], parallel: usize) -> Vec<String> {
        let sem = Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
        let mut tasks = Vec::with_capacity(ids.len());
        for id in ids {
            let (api, id, sem) = (self.clone(), id.clone(), sem.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = sem.acquire_owned().await;
                let token = api.login(&id, PASSWORD).await;
                let (status, body) = api
                    .call("POST", &format!("/api/v1/agents/{id}/status"), &token, Some(json!({"status": "online"})))
                    .await;
                assert_eq!(status, 200, "{id} online: {body}");
                token
            }));
        }
        let mut tokens = Vec::with_capacity(ids.len());
        for t in tasks {
            tokens.push(t.await.expect("login task"));
        }
        tokens
    }
}

/// When each `message_in` event arrived, by `event_id`, and how long after its publication by
/// the daemon (ms, wall clock: the event's `at`, when it has one).
type Arrivals = HashMap<String, (Instant, Option<i64>)>;

/// Agents listening on the event stream, keeping the arrivals (`Arrivals`) of `message_in` events.
pub struct Consumer {
    arrived: Arc<Mutex<Arrivals>>,
    connected: Arc<AtomicUsize>,
    events: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Consumer {
    /// Opens one event stream per token (`parallel` connection attempts at a time) and waits
    /// until all are connected.
    pub async fn connect(addr: &str, tokens: &[String], parallel: usize) -> Consumer {
        let c = Consumer {
            arrived: Arc::default(),
            connected: Arc::default(),
            events: Arc::default(),
            stop: Arc::default(),
        };
        let sem = Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
        for token in tokens {
            let permit = sem.clone().acquire_owned().await.expect("semaphore");
            let (addr, token) = (addr.to_owned(), token.clone());
            let (arrived, connected, events, stop) =
                (c.arrived.clone(), c.connected.clone(), c.events.clone(), c.stop.clone());
            tokio::spawn(async move {
                let stream = match tokio::net::TcpStream::connect(&addr).await {
                    Ok(s) => s,
                    Err(e) => panic!("event stream connect: {e}"),
                };
                let _ = stream.set_nodelay(true);
                let url = format!("ws://{addr}/api/v1/events?token={token}");
                let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await.expect("event stream handshake");
                drop(permit);
                connected.fetch_add(1, Ordering::SeqCst);
                while let Some(Ok(msg)) = ws.next().await {
                    let now = Instant::now();
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(text) = msg.to_text() else { continue };
                    events.fetch_add(1, Ordering::Relaxed);
                    if !text.contains("\"message_in\"") {
                        continue;
                    }
                    let Ok(v) = serde_json::from_str::<Value>(text) else { continue };
                    if let Some(id) = v["event_id"].as_str() {
                        let lag = v["at"].as_i64().map(|at| now_ms() - at);
                        arrived.lock().unwrap_or_else(|p| p.into_inner()).entry(id.to_owned()).or_insert((now, lag));
                    }
                }
                connected.fetch_sub(1, Ordering::SeqCst);
            });
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while c.connected.load(Ordering::SeqCst) < tokens.len() {
            assert!(Instant::now() < deadline, "only {} of {} streams connected", c.connected(), tokens.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        c
    }

    /// Streams open now.
    pub fn connected(&self) -> usize {
        self.connected.load(Ordering::SeqCst)
    }

    /// When the `message_in` of platform message `id` arrived.
    pub fn arrival(&self, id: &str) -> Option<Instant> {
        self.arrived.lock().unwrap_or_else(|p| p.into_inner()).get(id).map(|(at, _)| *at)
    }

    /// Events received so far, of any kind.
    pub fn events(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// A simulator that delivers buyer messages the way its platform does.
#[derive(Clone)]
pub enum Platform {
    /// Signed HTTP pushes, acknowledged by the success body.
    Douyin(DouyinSim),
    /// TMC frames over the connector's WebSocket, acknowledged by its confirm.
    Taobao(TaobaoSim),
}

impl Platform {
    pub async fn deliver(&self, chat: &BuyerChat) -> Delivery {
        match self {
            Platform::Douyin(s) => s.deliver_chat(chat).await,
            Platform::Taobao(s) => s.deliver_chat(chat).await,
        }
    }
}

/// What one run of traffic did.
#[derive(Debug, Default)]
pub struct Run {
    /// Deliveries the gateway acknowledged.
    pub acked: u64,
    /// Deliveries not acknowledged.
    pub failed: u64,
    pub elapsed: Duration,
    /// Every acknowledged message: its id, when its delivery started and when it was acknowledged.
    pub sent: Vec<Sent>,
}

/// One acknowledged delivery.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The platform message id.
    pub id: String,
    /// The instant before the simulator sent it.
    pub at: Instant,
    /// The instant the simulator had the gateway's acknowledgement.
    pub acked: Instant,
}

impl Run {
    /// Acknowledged messages per second.
    pub fn rate(&self) -> f64 {
        self.acked as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// How to pace a run.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// `workers` deliveries in flight at all times.
    FlatOut { workers: usize },
    /// A delivery started every 1/`per_s` seconds (at most `max_in_flight` in flight).
    Rate { per_s: f64, max_in_flight: usize },
}

/// Delivers buyer messages for `duration` (or until `limit` messages): message `n` gets id
/// `{prefix}-{n}` and buyer `buyer(n)`; its text comes from the corpus.
pub async fn drive(
    platform: &Platform,
    prefix: &str,
    duration: Duration,
    limit: Option<u64>,
    pace: Pace,
    buyer: Arc<dyn Fn(u64) -> String + Send + Sync>,
) -> Run {
    let texts = Arc::new(corpus_texts(512));
    let next = Arc::new(AtomicU64::new(0));
    let limit = limit.unwrap_or(u64::MAX);
    let started = Instant::now();
    let deadline = started + duration;
    let record = Arc::new(Mutex::new(Run::default()));
    let one = {
        let (platform, prefix, texts, record) = (platform.clone(), prefix.to_owned(), texts.clone(), record.clone());
        move |n: u64| {
            let (platform, texts, record, buyer) = (platform.clone(), texts.clone(), record.clone(), buyer.clone());
            let id = format!("{prefix}-{n}");
            async move {
                let text = &texts[n as usize % texts.len()];
                let chat = BuyerChat::text(&id, &buyer(n), text, now_ms());
                let at = Instant::now();
                let d = platform.deliver(&chat).await;
                let acked = Instant::now();
                let mut r = record.lock().unwrap_or_else(|p| p.into_inner());
                if d.acked {
                    r.acked += 1;
                    r.sent.push(Sent { id, at, acked });
                } else {
                    r.failed += 1;
                }
            }
        }
    };
    match pace {
        Pace::FlatOut { workers } => {
            let mut tasks = Vec::new();
            for _ in 0..workers {
                let (one, next) = (one.clone(), next.clone());
                tasks.push(tokio::spawn(async move {
                    loop {
                        let n = next.fetch_add(1, Ordering::SeqCst);
                        if n >= limit || Instant::now() >= deadline {
                            return;
                        }
                        one(n).await;
                    }
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
        }
        Pace::Rate { per_s, max_in_flight } => {
            let sem = Arc::new(tokio::sync::Semaphore::new(max_in_flight.max(1)));
            let mut tasks = Vec::new();
            let mut n = 0u64;
            while n < limit {
                let due = started + Duration::from_secs_f64(n as f64 / per_s);
                if due >= deadline {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
                let permit = sem.clone().acquire_owned().await.expect("semaphore");
                let f = one(n);
                tasks.push(tokio::spawn(async move {
                    f.await;
                    drop(permit);
                }));
                n += 1;
            }
            for t in tasks {
                let _ = t.await;
            }
        }
    }
    let mut run = std::mem::take(&mut *record.lock().unwrap_or_else(|p| p.into_inner()));
    run.elapsed = started.elapsed();
    run
}

/// Latencies (ms) of a run's acknowledged messages whose event reached an agent, whole and in
/// its two parts, each list in the order of `Run::sent` (`after_publish` leaves out events
/// without a publication time).
#[derive(Debug, Default)]
pub struct Latencies {
    /// Push sent → event at the agent.
    pub total: Vec<f64>,
    /// Push sent → acknowledgement at the simulator.
    pub to_ack: Vec<f64>,
    /// Acknowledgement at the simulator → event at the agent (negative when the event
    /// overtook the acknowledgement).
    pub after_ack: Vec<f64>,
    /// Publication by the daemon → event at the agent (whole ms, wall clock), for the events
    /// that carry their publication time (`at`).
    pub after_publish: Vec<f64>,
    /// Acknowledged messages whose event never arrived.
    pub missing: usize,
}

/// The latencies of a run's acknowledged messages, waiting up to `grace` for the last events.
pub async fn latencies(run: &Run, consumer: &Consumer, grace: Duration) -> Latencies {
    let deadline = Instant::now() + grace;
    loop {
        let missing = run.sent.iter().filter(|s| consumer.arrival(&s.id).is_none()).count();
        if missing == 0 || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let arrived = consumer.arrived.lock().unwrap_or_else(|p| p.into_inner());
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut out = Latencies::default();
    for s in &run.sent {
        match arrived.get(&s.id) {
            Some((t, lag)) => {
                out.after_publish.extend(lag.map(|l| l as f64));
                out.total.push(ms(t.saturating_duration_since(s.at)));
                out.to_ack.push(ms(s.acked.saturating_duration_since(s.at)));
                out.after_ack.push(match t.checked_duration_since(s.acked) {
                    Some(d) => ms(d),
                    None => -ms(s.acked.saturating_duration_since(*t)),
                });
            }
            None => out.missing += 1,
        }
    }
    out
}

/// Buyer texts from the built-in corpus (the templates of shared/corpus/gen_corpus.py).
pub fn corpus_texts(n: usize) -> Vec<String> {
    let mut c = huiliu_sim::corpus::Corpus::new(20261204);
    (0..n).map(|_| c.message().text).collect()
}

/// The minimal HTTP server the gateway is compared with: answers every request with 200 and
/// Douyin's success body after reading the request body, on a runtime shaped like the
/// daemon's (tokio multi-thread, one worker per core), over the same HTTP stack (hyper via
/// axum). Blocks forever.
pub fn bare_server(listen: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let app = axum::Router::new().fallback(|body: axum::body::Bytes| async move {
            let _ = body.len();
            ([("content-type", "application/json")], r#"{"code":0,"msg":"success"}"#)
        });
        let listener = tokio::net::TcpListener::bind(listen).await.expect("bind the bare server");
        axum::serve(listener, app).await.expect("bare server");
    });
}
