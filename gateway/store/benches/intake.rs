//! Durable intake throughput: messages/s committed by `Store::intake` under concurrent pushes,
//! on SQLite (a file, WAL, synchronous=FULL) and PostgreSQL, with and without group commit.
//!
//! `cargo bench -p huiliu-store --bench intake`; PostgreSQL runs when
//! `HUILIU_TEST_POSTGRES_URL` is set (a scratch database is created and dropped).
//! `INTAKE_MESSAGES` (default 20000) and `INTAKE_CONCURRENCY` (default 64) tune the run;
//! `INTAKE_PG_WRITERS` (default 1) sets the PostgreSQL intake writers side by side;
//! `INTAKE_BUYERS` (default 5000; 0 = a new buyer per message) how many buyers write.

use std::time::Instant;

use huiliu_sdk::{Buyer, BuyerMessage, Content, EventKind, InboundEvent};
use huiliu_store::{IntakeBatch, IntakeItem, Screen, Store, StoreOptions};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A platform-like event id: scattered, not ascending (a sequential id would make every insert
/// into the dedupe index an append, cheaper than real traffic).
fn event_id(i: usize) -> String {
    let mut z = (i as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    format!("{:016x}", z ^ (z >> 31))
}

/// The buyer of message `i`: one of `INTAKE_BUYERS` (default 5000) known buyers, or with
/// `INTAKE_BUYERS=0` a new buyer for every message (a conversation opened per message).
fn buyer(i: usize) -> String {
    static BUYERS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    match *BUYERS.get_or_init(|| env("INTAKE_BUYERS", 5000)) {
        0 => format!("new-{i}"),
        n => format!("buyer-{}", i % n),
    }
}

fn item(i: usize) -> IntakeItem {
    let text = "亲，我昨天买的外套什么时候发货？订单号4200001234567890123".to_owned();
    IntakeItem {
        event: InboundEvent {
            platform: "douyin".into(),
            shop: "dy-1".into(),
            event_id: event_id(i),
            buyer: Buyer { open_id: buyer(i), nick: Some("小王".into()) },
            occurred_at: 1_700_000_000_000,
            kind: EventKind::BuyerMessage(BuyerMessage {
                conversation: None,
                content: vec![Content::text(text.clone())],
                vip: Default::default(),
                reply_context: Default::default(),
            }),
        },
        text,
        sealed: None,
        screen: Screen::Pass,
    }
}

async fn run(label: &str, url: &str, group_commit: bool, messages: usize, concurrency: usize) {
    let store = Store::open(
        url,
        StoreOptions { group_commit, pg_writers: env("INTAKE_PG_WRITERS", 1), ..StoreOptions::default() },
    )
    .await
    .expect("open store");
    let started = Instant::now();
    let cpu_before = process_cpu_secs();
    let io_before = process_io();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = worker;
            while i < messages {
                let batch = IntakeBatch {
                    items: vec![item(i)],
                    dead_letters: vec![],
                    // The arrival time, as the gateway stamps it: rows that change with every
                    // message change here too.
                    now: huiliu_domain::now_millis(),
                    idle_close_ms: 0,
                };
                store.intake(batch).await.expect("intake");
                i += concurrency;
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = process_cpu_secs() - cpu_before;
    let io = process_io();
    let (written, writes) = (io.0 - io_before.0, io.1 - io_before.1);
    let (stored, _, _) = store.counts().await.expect("counts");
    assert_eq!(stored as usize, messages);
    println!(
        "{label:<12} group commit {:<3}  {messages:>6} msgs, {concurrency:>3} concurrent pushes  {:>9.0} msgs/s  ({:.2} s)  \
         CPU {:.1} µs/msg  written {:.1} KiB/msg in {:.1} writes/msg",
        if group_commit { "on" } else { "off" },
        messages as f64 / secs,
        secs,
        cpu * 1e6 / messages as f64,
        written as f64 / 1024.0 / messages as f64,
        writes as f64 / messages as f64,
    );
}

/// This process's user + system CPU seconds (`/proc/self/stat`, clock ticks of 10 ms): the cost
/// per message, which other load on the machine changes less than the throughput.
fn process_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // After the command name: state is field 0, utime 11, stime 12.
    (ticks(11) + ticks(12)) / 100.0
}

/// Bytes this process handed to write calls and the number of those calls (`/proc/self/io`
/// `wchar`, `syscw`): the WAL frames and checkpoints intake causes, whatever the disk does.
fn process_io() -> (u64, u64) {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    let field = |name: &str| {
        io.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0)
    };
    (field("wchar:"), field("syscw:"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let messages = env("INTAKE_MESSAGES", 20000);
    let concurrency = env("INTAKE_CONCURRENCY", 64);
    println!("durable intake (one message per push, committed before return)");
    for group in [true, false] {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        run("sqlite", &url, group, if group { messages } else { messages.min(4000) }, concurrency).await;
    }
    let Ok(base) = std::env::var("HUILIU_TEST_POSTGRES_URL") else {
        println!("postgres     skipped: set HUILIU_TEST_POSTGRES_URL");
        return;
    };
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&base).await.expect("connect to PostgreSQL");
    for group in [true, false] {
        let name = format!("huiliu_bench_{}_{}", std::process::id(), group);
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}"))).execute(&admin).await;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin).await.expect("create db");
        let (prefix, _) = base.rsplit_once('/').expect("URL with a database");
        run(
            "postgres",
            &format!("{prefix}/{name}"),
            group,
            if group { messages } else { messages.min(4000) },
            concurrency,
        )
        .await;
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
            .execute(&admin)
            .await;
    }
}
