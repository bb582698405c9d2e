//! Routing engine: time per decision and memory per waiting conversation, at
//! 1k / 10k / 100k agents × 10k / 100k / 1M queued conversations.
//!
//! Run: `cargo bench -p huiliu-gateway --bench router` (prints a table; no assertions).
//! `-- --agents 100000` runs one row of cells; `-- --quick` the small ones.
//!
//! Setup per cell: two groups; 90 % of the agents (cap 5, all online and full) serve group A,
//! where the queue waits; 10 % serve group B and have room. Two shops, a complaint rule with
//! priority 10, so queue keys vary. Measured, each in `ROUNDS` batches of `BATCH` calls (the
//! median batch is reported):
//! - **drain**: `close` of a session in A, which frees a slot and assigns the most urgent
//!   waiting conversation to that agent (the assignment decision under load);
//! - **queue**: `arrive` of a conversation for A, which waits: rule, category, queue insert,
//!   position (order-statistic rank) and estimate;
//! - **assign**: `arrive` of a conversation for B, assigned at once (index lookup, decision),
//!   after an untimed warm-up in which every B agent has had one conversation.
//!
//! Memory: growth of resident memory while the queue fills, divided by the number queued
//! (an upper bound: it includes allocator slack and the hash tables' growth).

use std::collections::{BTreeMap, VecDeque};
use std::hint::black_box;
use std::time::Instant;

use huiliu_routing::{
    Action, AgentConfig, AgentStatus, Conversation, Engine, GroupConfig, GroupMessages, MatchConfig, RoutingConfig,
    RuleConfig, TargetConfig,
};

/// Resident memory in bytes (Linux `/proc/self/statm`; 0 elsewhere).
fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<usize>().ok()))
        .map_or(0, |pages| pages * 4096)
}

const CAP: u32 = 5;
const TEXTS: [&str; 7] =
    ["再不发货我就投诉", "这款什么时候发货", "有现货吗", "能便宜点吗", "尺码怎么选", "包邮吗", "在吗"];
const BATCH: usize = 1000;
const ROUNDS: usize = 15;

fn group(id: &str) -> GroupConfig {
    GroupConfig {
        id: id.into(),
        name: None,
        policy: None,
        queue_limit: None,
        hours: None,
        off_hours_group: None,
        messages: GroupMessages::default(),
    }
}

fn rule(name: &str, when: MatchConfig, group: &str, priority: i32) -> RuleConfig {
    RuleConfig {
        name: name.into(),
        when,
        targets: vec![TargetConfig { group: group.into(), wait_s: 0, min_proficiency: 1 }],
        priority,
        sticky: true,
    }
}

fn config(agents: usize) -> RoutingConfig {
    let mut c = RoutingConfig::default_empty();
    c.routing.first_response_limit_s = 3600;
    c.groups = vec![group("A"), group("B")];
    let b_agents = (agents / 10).max(1);
    c.agents = (0..agents)
        .map(|i| AgentConfig {
            id: format!("agent{i:06}"),
            name: None,
            groups: BTreeMap::from([((if i < b_agents { "B" } else { "A" }).to_owned(), 1 + (i % 5) as i64)]),
            max_sessions: CAP,
            shops: None,
            role: Default::default(),
            accounts: BTreeMap::new(),
        })
        .collect();
    c.rules = vec![
        rule("fast", MatchConfig { tags: vec!["fast".into()], ..MatchConfig::default() }, "B", 0),
        rule("complaint", MatchConfig { category: vec!["complaint".into()], ..MatchConfig::default() }, "A", 10),
        rule("all", MatchConfig::default(), "A", 0),
    ];
    c
}

fn conv(session: u64, fast: bool) -> Conversation {
    Conversation {
        session,
        platform: "taobao".into(),
        shop: ["tb-main", "dy-flagship"][(session % 2) as usize].into(),
        buyer: String::new(),
        // One in seven is a complaint (priority 10), so queue keys are not in arrival order.
        text: TEXTS[(session % 7) as usize].into(),
        tags: if fast { vec!["fast".into()] } else { Vec::new() },
        ..Conversation::default()
    }
}

struct Cell {
    agents: usize,
    queued: usize,
    drain_us: f64,
    queue_us: f64,
    assign_us: f64,
    bytes_per_queued: f64,
    setup_s: f64,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn run_cell(agents: usize, queued: usize) -> Cell {
    let setup = Instant::now();
    let mut now: i64 = 1_750_212_000_000;
    let mut r = Engine::new(config(agents), now).expect("valid config");
    for i in 0..agents {
        r.set_status(&format!("agent{i:06}"), AgentStatus::Online, now).expect("agent");
    }
    let b_agents = (agents / 10).max(1);
    let a_slots = (agents - b_agents) * CAP as usize;
    let mut id: u64 = 0;
    let mut in_a: VecDeque<u64> = VecDeque::with_capacity(a_slots);
    for _ in 0..a_slots {
        id += 1;
        now += 1;
        r.arrive(conv(id, false), now).expect("arrive");
        in_a.push_back(id);
    }
    let before = rss_bytes();
    for _ in 0..queued {
        id += 1;
        now += 1;
        r.arrive(conv(id, false), now).expect("arrive");
    }
    let bytes_per_queued = rss_bytes().saturating_sub(before) as f64 / queued as f64;
    assert_eq!(r.queue_len("A"), queued);
    let setup_s = setup.elapsed().as_secs_f64();

    // Warm-up (untimed): every B agent takes and closes one conversation, so the timed batches
    // measure the steady state, not each agent's first assignment since start-up (which
    // allocates its session list and faults in fresh pages once).
    let b_batch = BATCH.min(b_agents * CAP as usize / 2).max(1);
    for _ in 0..b_agents.div_ceil(b_batch) {
        let first = id + 1;
        for _ in 0..b_batch {
            id += 1;
            now += 1;
            r.arrive(conv(id, true), now).expect("arrive");
        }
        for s in first..=id {
            now += 1;
            r.close(s, now).expect("close");
        }
    }
    // ns per call of each batch; the median batch is reported (robust to a busy machine).
    let (mut drain, mut queue, mut assign) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let mut drains = 0usize;
        // drain: close in A, the head of the queue is assigned.
        let t = Instant::now();
        for _ in 0..BATCH {
            let Some(s) = in_a.pop_front() else { break };
            now += 1;
            let out = r.close(s, now).expect("close");
            for a in &out {
                if let Action::Assign { session, .. } = a {
                    in_a.push_back(*session);
                }
            }
            black_box(&out);
            drains += 1;
        }
        drain.push(t.elapsed().as_nanos() as f64 / drains.max(1) as f64);
        // queue: new arrivals for A wait (keeps the queue at its size).
        let t = Instant::now();
        for _ in 0..BATCH {
            id += 1;
            now += 1;
            black_box(r.arrive(conv(id, false), now).expect("arrive"));
        }
        queue.push(t.elapsed().as_nanos() as f64 / BATCH as f64);
        // assign: arrivals for B are assigned at once; closed again (untimed).
        let first = id + 1;
        let t = Instant::now();
        for _ in 0..b_batch {
            id += 1;
            now += 1;
            black_box(r.arrive(conv(id, true), now).expect("arrive"));
        }
        assign.push(t.elapsed().as_nanos() as f64 / b_batch as f64);
        for s in first..=id {
            now += 1;
            r.close(s, now).expect("close");
        }
    }
    assert_eq!(r.queue_len("A"), queued);
    black_box(&r);
    Cell {
        agents,
        queued,
        drain_us: median(&mut drain) / 1000.0,
        queue_us: median(&mut queue) / 1000.0,
        assign_us: median(&mut assign) / 1000.0,
        bytes_per_queued,
        setup_s,
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    // `--agents N`: only the cells with N agents (each cell then starts on a fresh heap).
    let only: Option<usize> = std::env::args().skip_while(|a| a != "--agents").nth(1).and_then(|n| n.parse().ok());
    let agent_sizes: Vec<usize> = if quick { vec![1_000, 10_000] } else { vec![1_000, 10_000, 100_000] };
    let agent_sizes: Vec<usize> = agent_sizes.into_iter().filter(|a| only.is_none_or(|o| o == *a)).collect();
    let queue_sizes: &[usize] = if quick { &[10_000, 100_000] } else { &[10_000, 100_000, 1_000_000] };
    println!(
        "router: time per call (µs/op, median of {ROUNDS} batches of {BATCH}) and resident memory per waiting conversation"
    );
    println!(
        "{:>8} {:>9} | {:>12} {:>12} {:>12} | {:>10} {:>10} | {:>8} {:>10}",
        "agents", "queued", "drain µs", "queue µs", "assign µs", "drain/s", "queue/s", "B/queued", "setup s"
    );
    let mut cells = Vec::new();
    for &a in &agent_sizes {
        for &q in queue_sizes {
            let c = run_cell(a, q);
            println!(
                "{:>8} {:>9} | {:>12.2} {:>12.2} {:>12.2} | {:>10.0} {:>10.0} | {:>8.0} {:>10.1}",
                c.agents,
                c.queued,
                c.drain_us,
                c.queue_us,
                c.assign_us,
                1e6 / c.drain_us,
                1e6 / c.queue_us,
                c.bytes_per_queued,
                c.setup_s
            );
            cells.push(c);
        }
    }
    let at = |a: usize, q: usize| cells.iter().find(|c| c.agents == a && c.queued == q);
    if let Some(c) = at(10_000, 100_000) {
        println!(
            "target: < 10 µs per decision at 10k agents / 100k queued: drain {:.2} µs, queue {:.2} µs, assign {:.2} µs",
            c.drain_us, c.queue_us, c.assign_us
        );
    }
    if let (Some(lo), Some(hi)) = (at(10_000, 10_000), at(10_000, 1_000_000)) {
        println!(
            "growth 10k → 1M queued (100×, log ratio 1.5×) at 10k agents: drain ×{:.2}, queue ×{:.2}",
            hi.drain_us / lo.drain_us,
            hi.queue_us / lo.queue_us
        );
    }
    if let Some(c) = at(100_000, 1_000_000).or_else(|| at(10_000, 1_000_000)) {
        println!(
            "memory: {:.0} bytes per waiting conversation → {:.0} MiB for 1M",
            c.bytes_per_queued,
            c.bytes_per_queued * 1e6 / 1_048_576.0
        );
    }
}
