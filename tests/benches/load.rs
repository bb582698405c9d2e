//! Load, latency and scale of the whole path, against this machine's limit.
//!
//! `cargo bench -p huiliu-e2e --bench load` builds the release daemon and plugins, starts them
//! as their own processes, and drives them over loopback with the platform simulators: signed
//! Douyin HTTP pushes and Taobao TMC frames carrying corpus texts, while agents logged in over
//! the API listen on the event stream. It prints, per phase, throughput, end-to-end latency
//! percentiles (push sent → `message_in` event at the agent), the daemon's CPU (100 % = one
//! core) and memory, and the generator's own CPU (it shares the machine's two cores). The
//! bare server's line has no latency: nothing listens for events there.
//!
//! Phases (`HUILIU_LOAD_PHASES`, comma-separated, default all):
//! - `limit`: a bare HTTP server (200 + Douyin's success body, same runtime shape and HTTP
//!   stack as the daemon, own process) driven flat out by the same generator;
//! - `douyin`, `taobao`: the daemon flat out, then paced at half that rate;
//! - `sessions`: memory and latency with 10k and 100k open sessions;
//! - `agents`: memory and latency with 1k and 10k agents connected on the event stream;
//! - `cluster`: 1 node, then 3 nodes on PostgreSQL (`HUILIU_LOAD_POSTGRES_URL`) and NATS
//!   (`HUILIU_LOAD_NATS_URL`), Douyin pushes round-robin over the nodes, agents' streams on the
//!   first node; then `kill -9` of the routing leader under paced traffic and the time until
//!   another node leads (docs/cluster.md). Skipped without both URLs.
//!
//! `HUILIU_LOAD_SECS` (default 10) is the length of each timed run; `HUILIU_LOAD_WORKERS`
//! (default 32) the deliveries in flight when flat out; `HUILIU_LOAD_QUICK=1` shrinks every
//! phase (a few seconds, 2k/10k sessions, 100/1000 agents) to check the harness itself.
//! `HUILIU_LOAD_DAEMON=PATH` runs that `huiliu` binary instead of this tree's release build.
//! `HUILIU_LOAD_PERF=DIR` records each flat-out run with `perf record -g` into `DIR/<phase>.data`.
//! `HUILIU_LOAD_STORE=postgres` runs the single-node phases (`douyin`, `taobao`, `sessions`,
//! `agents`) on a fresh PostgreSQL database on `HUILIU_LOAD_POSTGRES_URL` instead of SQLite
//! (`HUILIU__STORE__PG_WRITERS` reaches the daemon through the environment).
//! `TMPDIR=/dev/shm` puts the daemon's config directory, and so its SQLite file, on tmpfs, where
//! a sync costs nothing: what intake does without the disk.

use std::sync::Arc;
use std::time::{Duration, Instant};

use huiliu_e2e::load::{
    self, Api, Consumer, Pace, Platform, ProcStats, Run, agent_id, percentiles, proc_stats, routing_toml, users_toml,
};
use huiliu_e2e::{API_TOKEN, Daemon, Launch, free_port, psql, release_artifacts, shop_toml};
use huiliu_sim::douyin::DouyinSim;
use huiliu_sim::taobao::TaobaoSim;
use huiliu_sim::{Faults, SimConfig};

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Settings {
    secs: f64,
    workers: usize,
    quick: bool,
    phases: Vec<String>,
}

impl Settings {
    fn wants(&self, phase: &str) -> bool {
        self.phases.is_empty() || self.phases.iter().any(|p| p == phase)
    }
    fn run_for(&self) -> Duration {
        Duration::from_secs_f64(self.secs)
    }
}

/// Both simulators, with their shops in `shops.toml`.
struct Sims {
    douyin: DouyinSim,
    taobao: TaobaoSim,
}

impl Sims {
    async fn start() -> Sims {
        let faults = Arc::new(Faults::default());
        let douyin = DouyinSim::start(SimConfig::sample("7000555"), faults.clone()).await.expect("douyin sim");
        // Redeliver what is not acknowledged, as the platform does; a failure shows as `failed`.
        douyin.set_push_retry(3, Duration::from_millis(200));
        let taobao = TaobaoSim::start(SimConfig::sample("load-tb-shop"), faults).await.expect("taobao sim");
        Sims { douyin, taobao }
    }

    fn shops_toml(&self) -> String {
        shop_toml("dy-1", "douyin", &self.douyin.shop_settings())
            + &shop_toml("tb-1", "taobao", &self.taobao.shop_settings())
    }
}

/// A release daemon with `agents` load agents (cap `cap`) and both shops.
fn start_daemon(sims: &Sims, plugins: &std::path::Path, agents: usize, cap: u32) -> Daemon {
    let shops = sims.shops_toml();
    let daemon = Daemon::launch(Launch {
        bin: Some(daemon_bin()),
        files: vec![("routing.toml", routing_toml(agents, cap)), ("users.toml", users_toml(agents))],
        store_url: single_node_store(),
        ..Launch::new(plugins, &shops)
    });
    sims.douyin.set_gateway(format!("http://{}/hooks/douyin/dy-1", daemon.addr));
    daemon
}

/// With `HUILIU_LOAD_STORE=postgres`, a fresh PostgreSQL database on
/// `HUILIU_LOAD_POSTGRES_URL` for each single-node daemon; else the embedded SQLite default.
fn single_node_store() -> Option<String> {
    static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    match std::env::var("HUILIU_LOAD_STORE").as_deref() {
        Err(_) | Ok("sqlite") => None,
        Ok("postgres") => {
            let pg = std::env::var("HUILIU_LOAD_POSTGRES_URL")
                .expect("HUILIU_LOAD_STORE=postgres needs HUILIU_LOAD_POSTGRES_URL");
            let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let name = format!("huiliu_t_bench_{}_solo{n}", std::process::id());
            psql(&pg, &format!("DROP DATABASE IF EXISTS {name}"));
            psql(&pg, &format!("CREATE DATABASE {name}"));
            println!("  (store: PostgreSQL database {name})");
            Some(format!("{}/{name}", pg.rsplit_once('/').expect("URL with a database").0))
        }
        Ok(other) => panic!("HUILIU_LOAD_STORE={other}: expected sqlite or postgres"),
    }
}

/// Waits until the Taobao connector's TMC session is up.
async fn tmc_connected(sims: &Sims) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while sims.taobao.tmc_sessions() == 0 {
        assert!(Instant::now() < deadline, "the taobao connector did not connect to TMC");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn buyers(prefix: &'static str, pool: u64) -> Arc<dyn Fn(u64) -> String + Send + Sync> {
    Arc::new(move |n| format!("{prefix}{}", (n.wrapping_mul(2_654_435_761)) % pool))
}

fn fresh_buyers(prefix: &'static str, offset: u64) -> Arc<dyn Fn(u64) -> String + Send + Sync> {
    Arc::new(move |n| format!("{prefix}{}", n + offset))
}

/// One line of the report.
struct Line {
    phase: String,
    rate: f64,
    lat: [f64; 3],
    missing: usize,
    failed: u64,
    cpu: f64,
    /// CPU of this generator process (simulators, event-stream consumers) meanwhile.
    gen_cpu: f64,
    rss_mb: f64,
    hwm_mb: f64,
    note: String,
}

fn print_header() {
    println!(
        "\n{:<34} {:>9} {:>8} {:>8} {:>9} {:>7} {:>6} {:>7} {:>8} {:>8} {:>7}  note",
        "phase", "msg/s", "p50 ms", "p99 ms", "p99.9 ms", "missed", "failed", "cpu %", "rss MiB", "peak MiB", "gen %"
    );
}

fn print_line(l: &Line) {
    println!(
        "{:<34} {:>9.0} {:>8.2} {:>8.2} {:>9.2} {:>7} {:>6} {:>7.0} {:>8.1} {:>8.1} {:>7.0}  {}",
        l.phase,
        l.rate,
        l.lat[0],
        l.lat[1],
        l.lat[2],
        l.missing,
        l.failed,
        l.cpu,
        l.rss_mb,
        l.hwm_mb,
        l.gen_cpu,
        l.note
    );
}

/// Runs traffic and measures the daemon (`pid`) around it.
async fn measured(
    phase: &str,
    pid: u32,
    consumer: Option<&Consumer>,
    traffic: impl std::future::Future<Output = Run>,
) -> (Line, Run) {
    let (before, gen_before) = (proc_stats(pid), proc_stats(std::process::id()));
    let perf = perf_record(phase, pid);
    let run = traffic.await;
    let (after, gen_after) = (proc_stats(pid), proc_stats(std::process::id()));
    if let Some(mut perf) = perf {
        // SIGINT makes perf write its file and stop.
        let _ = std::process::Command::new("kill").arg("-INT").arg(perf.id().to_string()).status();
        let _ = perf.wait();
    }
    let mut lat = match consumer {
        Some(c) => load::latencies(&run, c, Duration::from_secs(10)).await,
        None => load::Latencies::default(),
    };
    // Where the tail lies: before the acknowledgement (generator, network, daemon intake) or
    // after it (the event's way to the agent's stream and the generator reading it).
    let note = if lat.total.is_empty() {
        String::new()
    } else {
        let [_, ack99, _] = percentiles(&mut lat.to_ack);
        let [_, after99, _] = percentiles(&mut lat.after_ack);
        let [_, published99, _] = percentiles(&mut lat.after_publish);
        format!("p99: to ack {ack99:.2} ms, ack to agent {after99:.2} ms, published to agent {published99:.0} ms")
    };
    let line = Line {
        phase: phase.to_owned(),
        rate: run.rate(),
        lat: percentiles(&mut lat.total),
        missing: lat.missing,
        failed: run.failed,
        cpu: (after.cpu_s - before.cpu_s) / run.elapsed.as_secs_f64() * 100.0,
        gen_cpu: (gen_after.cpu_s - gen_before.cpu_s) / run.elapsed.as_secs_f64() * 100.0,
        rss_mb: after.rss_kb as f64 / 1024.0,
        hwm_mb: after.hwm_kb as f64 / 1024.0,
        note,
    };
    print_line(&line);
    (line, run)
}

/// The daemon binary: `HUILIU_LOAD_DAEMON` (a saved build, to compare two trees in one
/// session) or the release build of this tree.
fn daemon_bin() -> std::path::PathBuf {
    std::env::var_os("HUILIU_LOAD_DAEMON").map(Into::into).unwrap_or_else(|| release_artifacts().huiliu())
}

/// With `HUILIU_LOAD_PERF=DIR`: `perf record -g` of the daemon for the timed run, into
/// `DIR/<phase>.data` (`perf report -i` it afterwards). Only the flat-out runs are recorded.
fn perf_record(phase: &str, pid: u32) -> Option<std::process::Child> {
    let dir = std::env::var_os("HUILIU_LOAD_PERF")?;
    if !phase.contains("flat out") {
        return None;
    }
    let name: String = phase.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    let out = std::path::Path::new(&dir).join(format!("{name}.data"));
    let child = std::process::Command::new("perf")
        .args(["record", "-F", "999", "-g", "-p", &pid.to_string(), "-o"])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    match child {
        Ok(c) => {
            println!("  (perf record of the daemon into {})", out.display());
            Some(c)
        }
        Err(e) => {
            println!("  (perf record could not start: {e})");
            None
        }
    }
}

/// 200 msg/s for up to 5 s to existing conversations: latency at a given scale.
async fn probe(
    s: &Settings,
    platform: &Platform,
    pid: u32,
    consumer: &Consumer,
    what: &str,
    buyer: Arc<dyn Fn(u64) -> String + Send + Sync>,
) -> Line {
    let prefix = format!("probe-{}", what.replace(' ', "-"));
    let traffic = load::drive(
        platform,
        &prefix,
        Duration::from_secs_f64(s.secs.min(5.0)),
        None,
        Pace::Rate { per_s: 200.0, max_in_flight: 1024 },
        buyer,
    );
    measured(&format!("{what}: 200 msg/s"), pid, Some(consumer), traffic).await.0
}

fn mb(s: ProcStats) -> f64 {
    s.rss_kb as f64 / 1024.0
}

fn main() {
    // The bench binary doubles as the bare comparison server (started as a child process).
    if let Ok(listen) = std::env::var("HUILIU_LOAD_BARE") {
        load::bare_server(&listen);
        return;
    }
    let quick = std::env::var("HUILIU_LOAD_QUICK").as_deref() == Ok("1");
    let s = Settings {
        secs: env_or("HUILIU_LOAD_SECS", if quick { 3.0 } else { 10.0 }),
        workers: env_or("HUILIU_LOAD_WORKERS", 32),
        quick,
        phases: std::env::var("HUILIU_LOAD_PHASES")
            .map(|v| v.split(',').map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).collect())
            .unwrap_or_default(),
    };
    let started = Instant::now();
    let art = release_artifacts();
    println!("release artifacts ready in {:.1?} ({})", started.elapsed(), art.dir.display());
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(run_all(&s));
    println!("\nload bench done in {:.1?}", started.elapsed());
}

async fn run_all(s: &Settings) {
    let sims = Sims::start().await;
    let plugins = release_artifacts().plugins_dir(&["huiliu-douyin", "huiliu-taobao"]);
    println!(
        "{} s per timed run, {} deliveries in flight when flat out, {} cores",
        s.secs,
        s.workers,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    print_header();
    let mut bare_rate = None;

    if s.wants("limit") {
        let port = free_port();
        let mut child = std::process::Command::new(std::env::current_exe().expect("own path"))
            .env("HUILIU_LOAD_BARE", format!("127.0.0.1:{port}"))
            .spawn()
            .expect("start the bare server");
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "bare server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        sims.douyin.set_gateway(format!("http://{addr}/hooks/douyin/dy-1"));
        let platform = Platform::Douyin(sims.douyin.clone());
        let pid = child.id();
        let traffic =
            load::drive(&platform, "bare", s.run_for(), None, Pace::FlatOut { workers: s.workers }, buyers("b", 2000));
        let (mut line, _) = measured("limit: bare server, douyin pushes", pid, None, traffic).await;
        line.note = "the same requests, answered 200 without work".into();
        println!("  ({})", line.note);
        bare_rate = Some(line.rate);
        let _ = child.kill();
        let _ = child.wait();
    }

    if s.wants("douyin") || s.wants("taobao") {
        let agents = 20;
        let mut daemon = start_daemon(&sims, plugins.path(), agents, 1000);
        let pid = daemon.child.id();
        let api = Api::new(&daemon.addr);
        let ids: Vec<String> = (0..agents).map(agent_id).collect();
        let tokens = api.agents_online(&ids, 8).await;
        let consumer = Consumer::connect(&daemon.addr, &tokens, 32).await;
        tmc_connected(&sims).await;
        let pool = if s.quick { 500 } else { 2000 };
        for (name, platform) in
            [("douyin", Platform::Douyin(sims.douyin.clone())), ("taobao", Platform::Taobao(sims.taobao.clone()))]
        {
            if !s.wants(name) {
                continue;
            }
            // Every buyer of the pool opens a conversation first, so the timed messages go to
            // assigned sessions and reach their agent's stream.
            let warm = load::drive(
                &platform,
                &format!("{name}-warm"),
                Duration::from_secs(600),
                Some(pool),
                Pace::FlatOut { workers: s.workers },
                fresh_buyers("w", 0),
            )
            .await;
            assert_eq!(warm.acked, pool, "{name} warm-up acknowledged");
            tokio::time::sleep(Duration::from_secs(1)).await;
            let (flat, _) = measured(
                &format!("{name}: gateway flat out"),
                pid,
                Some(&consumer),
                load::drive(
                    &platform,
                    &format!("{name}-flat"),
                    s.run_for(),
                    None,
                    Pace::FlatOut { workers: s.workers },
                    buyers("w", pool),
                ),
            )
            .await;
            if name == "douyin"
                && let Some(bare) = bare_rate
            {
                println!("  gateway / bare server throughput: {:.1} %", flat.rate / bare * 100.0);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            let half = (flat.rate / 2.0).max(10.0);
            measured(
                &format!("{name}: paced at {half:.0}/s (half)"),
                pid,
                Some(&consumer),
                load::drive(
                    &platform,
                    &format!("{name}-half"),
                    s.run_for(),
                    None,
                    Pace::Rate { per_s: half, max_in_flight: 4096 },
                    buyers("w", pool),
                ),
            )
            .await;
        }
        drop(consumer);
        daemon.kill9();
    }

    if s.wants("sessions") {
        let steps: &[u64] = if s.quick { &[2_000, 10_000] } else { &[10_000, 100_000] };
        let agents = 110; // × 1000 each: every session assigned.
        let mut daemon = start_daemon(&sims, plugins.path(), agents, 1000);
        let pid = daemon.child.id();
        let api = Api::new(&daemon.addr);
        let ids: Vec<String> = (0..agents).map(agent_id).collect();
        let tokens = api.agents_online(&ids, 8).await;
        let consumer = Consumer::connect(&daemon.addr, &tokens, 32).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let base = proc_stats(pid);
        println!("  sessions: daemon rss {:.1} MiB with {agents} agents online and no sessions", mb(base));
        let platform = Platform::Douyin(sims.douyin.clone());
        let mut filled = 0u64;
        let mut prev = base;
        for &target in steps {
            let fill_started = Instant::now();
            let fill = load::drive(
                &platform,
                &format!("open-{target}"),
                Duration::from_secs(3600),
                Some(target - filled),
                Pace::FlatOut { workers: s.workers },
                fresh_buyers("s", filled),
            )
            .await;
            assert_eq!(fill.failed, 0, "opening sessions");
            let acked_in = fill_started.elapsed();
            // Routed and committed: the assignment counter moves after the commit. Polled until
            // every session of this step is assigned (or 30 s).
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut committed = api.metric_sum("huiliu_assigned_total").await as u64;
            while committed < target && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
                committed = api.metric_sum("huiliu_assigned_total").await as u64;
            }
            let all_in = fill_started.elapsed();
            println!(
                "  {target} open sessions: {} new conversations acknowledged in {:.2} s ({:.0}/s); {committed} assignments committed {:.0} ms after the last acknowledgement: {:.0} new conversations routed and committed per second",
                fill.acked,
                acked_in.as_secs_f64(),
                fill.acked as f64 / acked_in.as_secs_f64(),
                (all_in - acked_in).as_secs_f64() * 1000.0,
                (committed.saturating_sub(filled)) as f64 / all_in.as_secs_f64(),
            );
            filled = target;
            tokio::time::sleep(Duration::from_secs(1)).await;
            let (status, routing) = api.call("GET", "/api/v1/routing", API_TOKEN, None).await;
            let assigned: u64 = routing["agents"]
                .as_object()
                .map(|a| a.values().map(|v| v["active"].as_u64().unwrap_or(0)).sum())
                .unwrap_or(0);
            let now = proc_stats(pid);
            println!(
                "  {target} open sessions ({assigned} assigned per /api/v1/routing, status {status}): opened at {:.0}/s; rss {:.1} MiB, {:.0} B per session over the empty daemon, {:.0} B per session added in this step",
                fill.acked as f64 / fill_started.elapsed().as_secs_f64(),
                mb(now),
                (now.rss_kb.saturating_sub(base.rss_kb) * 1024) as f64 / target as f64,
                (now.rss_kb.saturating_sub(prev.rss_kb) * 1024) as f64 / fill.acked.max(1) as f64,
            );
            prev = now;
            probe(s, &platform, pid, &consumer, &format!("{target} sessions"), buyers("s", target)).await;
        }
        drop(consumer);
        daemon.kill9();
    }

    if s.wants("cluster") {
        match (std::env::var("HUILIU_LOAD_POSTGRES_URL"), std::env::var("HUILIU_LOAD_NATS_URL")) {
            (Ok(pg), Ok(nats)) => {
                for n in [1, 3] {
                    cluster_phase(s, &sims, plugins.path(), &pg, &nats, n).await;
                }
            }
            _ => println!("  cluster: SKIPPED (set HUILIU_LOAD_POSTGRES_URL and HUILIU_LOAD_NATS_URL)"),
        }
    }

    if s.wants("agents") {
        let steps: &[usize] = if s.quick { &[100, 1000] } else { &[1000, 10_000] };
        for &agents in steps {
            let mut daemon = start_daemon(&sims, plugins.path(), agents, 10);
            let pid = daemon.child.id();
            let api = Api::new(&daemon.addr);
            let ids: Vec<String> = (0..agents).map(agent_id).collect();
            let t = Instant::now();
            let tokens = api.agents_online(&ids, 16).await;
            let logged_in = t.elapsed();
            let t = Instant::now();
            let consumer = Consumer::connect(&daemon.addr, &tokens, 64).await;
            println!(
                "  {agents} agents: logged in and online in {:.1?}, {} event streams connected in {:.1?}; rss {:.1} MiB",
                logged_in,
                consumer.connected(),
                t.elapsed(),
                mb(proc_stats(pid))
            );
            let platform = Platform::Douyin(sims.douyin.clone());
            let warm = load::drive(
                &platform,
                &format!("agents-{agents}-warm"),
                Duration::from_secs(600),
                Some(agents as u64),
                Pace::FlatOut { workers: s.workers },
                fresh_buyers("g", 0),
            )
            .await;
            assert_eq!(warm.failed, 0);
            tokio::time::sleep(Duration::from_secs(1)).await;
            let mut line = probe(
                s,
                &platform,
                pid,
                &consumer,
                &format!("{agents} agents on the stream"),
                buyers("g", agents as u64),
            )
            .await;
            line.note = format!("{} events delivered to agents; {}", consumer.events(), line.note);
            println!("  ({})", line.note);
            drop(consumer);
            daemon.kill9();
        }
    }
}

/// Whether node `d` leads routing now.
async fn leads(api: &Api) -> bool {
    let (_, body) = api.call("GET", "/readyz", "", None).await;
    body["cluster"]["routing_leader"] == true
}

/// `n` release nodes on a fresh PostgreSQL database: flat out and half paced through a
/// round-robin balancer; with 3 nodes, `kill -9` of the leader under paced traffic.
async fn cluster_phase(s: &Settings, sims: &Sims, plugins: &std::path::Path, pg: &str, nats: &str, n: usize) {
    let name = format!("huiliu_t_bench_{}_{n}", std::process::id());
    psql(pg, &format!("DROP DATABASE IF EXISTS {name}"));
    psql(pg, &format!("CREATE DATABASE {name}"));
    let db = format!("{}/{name}", pg.rsplit_once('/').expect("URL with a database").0);
    let agents = 20;
    let shops = sims.shops_toml();
    let cluster = format!("b{}{n}", std::process::id());
    let mut nodes = Vec::new();
    for i in 0..n {
        let extra = format!(
            "[cluster]\nnode_id = \"n{i}\"\nnats_url = \"{nats}\"\nname = \"{cluster}\"\nlease_ttl_ms = 5000\nrenew_interval_ms = 1000\n"
        );
        nodes.push(Daemon::launch(Launch {
            bin: Some(daemon_bin()),
            files: vec![("routing.toml", routing_toml(agents, 1000)), ("users.toml", users_toml(agents))],
            store_url: Some(db.clone()),
            extra_toml: &extra,
            ..Launch::new(plugins, &shops)
        }));
    }
    let apis: Vec<Api> = nodes.iter().map(|d| Api::new(&d.addr)).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    let leader = 'found: loop {
        for (i, a) in apis.iter().enumerate() {
            if leads(a).await {
                break 'found i;
            }
        }
        assert!(Instant::now() < deadline, "no routing leader");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The agents read their streams on a node that does not lead (with 3 nodes): the event of a
    // push crosses NATS to reach them.
    let stream_node = (leader + 1) % n;
    sims.douyin.set_gateways(nodes.iter().map(|d| format!("http://{}/hooks/douyin/dy-1", d.addr)).collect());
    let ids: Vec<String> = (0..agents).map(agent_id).collect();
    let tokens = apis[stream_node].agents_online(&ids, 8).await;
    let consumer = Consumer::connect(&nodes[stream_node].addr, &tokens, 32).await;
    let platform = Platform::Douyin(sims.douyin.clone());
    let pool = if s.quick { 500 } else { 2000 };
    let warm = load::drive(
        &platform,
        &format!("c{n}-warm"),
        Duration::from_secs(600),
        Some(pool),
        Pace::FlatOut { workers: s.workers },
        fresh_buyers(if n == 1 { "c1w" } else { "c3w" }, 0),
    )
    .await;
    assert_eq!(warm.acked, pool, "cluster warm-up acknowledged");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let prefix = if n == 1 { "c1w" } else { "c3w" };
    let pid = nodes[leader].child.id();
    let (mut flat, _) = measured(
        &format!("cluster, {n} node(s): flat out"),
        pid,
        Some(&consumer),
        load::drive(
            &platform,
            &format!("c{n}-flat"),
            s.run_for(),
            None,
            Pace::FlatOut { workers: s.workers },
            buyers(prefix, pool),
        ),
    )
    .await;
    flat.note = format!("cpu % of the routing leader n{leader}; agents' streams on n{stream_node}");
    println!("  ({})", flat.note);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let half = (flat.rate / 2.0).max(10.0);
    measured(
        &format!("cluster, {n} node(s): {half:.0}/s (half)"),
        pid,
        Some(&consumer),
        load::drive(
            &platform,
            &format!("c{n}-half"),
            s.run_for(),
            None,
            Pace::Rate { per_s: half, max_in_flight: 4096 },
            buyers(prefix, pool),
        ),
    )
    .await;
    if n == 3 {
        // kill -9 of the routing leader under paced traffic.
        let victim = leader;
        let traffic = load::drive(
            &platform,
            "c3-kill",
            s.run_for(),
            None,
            Pace::Rate { per_s: half, max_in_flight: 4096 },
            fresh_buyers("c3k", 0),
        );
        let victim_pid = nodes[victim].child.id().to_string();
        let survivors: Vec<usize> = (0..3).filter(|&i| i != victim).collect();
        let watch = async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let killed = Instant::now();
            let _ = std::process::Command::new("kill").args(["-9", &victim_pid]).status();
            while killed.elapsed() < Duration::from_secs(30) {
                for &i in &survivors {
                    if leads(&apis[i]).await {
                        return Some(killed.elapsed());
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            None
        };
        let (run, takeover) = tokio::join!(traffic, watch);
        // Every conversation opened meanwhile is routed in the end: the arrivals held while no
        // node led are forwarded again, and the backlog drains at the leader's pace.
        let ended = Instant::now();
        let waiting = || {
            psql(
                &db,
                "SELECT COUNT(*) FROM sessions s WHERE s.state = 'queued' AND EXISTS (SELECT 1 FROM messages m \
                 WHERE m.session_id = s.id AND m.platform_msg_id LIKE 'c3-kill%')",
            )
            .parse::<u64>()
            .unwrap_or(0)
        };
        while waiting() > 0 && ended.elapsed() < Duration::from_secs(120) {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        println!(
            "  the conversations opened during the kill were all routed {:.1?} after the traffic ended",
            ended.elapsed()
        );
        let stored: u64 =
            psql(&db, "SELECT COUNT(*) FROM messages WHERE direction = 'in' AND platform_msg_id LIKE '%c3-kill%'")
                .parse()
                .unwrap_or(0);
        let unassigned = waiting();
        println!(
            "  kill -9 of the routing leader n{victim} under {half:.0}/s: another node led after {}; {} pushes acknowledged, {} failed after the balancer's retries, {stored} stored; {unassigned} of its conversations still waiting",
            takeover.map_or("more than 30 s".to_owned(), |t| format!("{:.2} s", t.as_secs_f64())),
            run.acked,
            run.failed
        );
    }
    drop(consumer);
    for mut d in nodes {
        d.kill9();
    }
}
