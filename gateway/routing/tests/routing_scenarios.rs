//! Routing behaviour as data: every `tests/routing/*.toml` pairs a routing configuration with
//! a sequence of events and the exact actions, decisions and states expected.
//!
//! A scenario file:
//!
//! ```toml
//! name = "…"
//! start = "2025-06-18 10:00:00"      # Beijing time; steps say `t` = seconds after it
//! expect_config_errors = [ … ]        # optional: the config must fail with exactly these keys
//! [config]                            # a routing.toml, nested ([config.routing], [[config.group]], …)
//! [[step]]
//! t = 5
//! do = "arrive"                       # arrive close respond status cap transfer tick reload explain restore
//! …fields of the event…
//! expect = ["assign 1 a1", …]         # the actions, in order, in their one-line form
//! expect_error = "unknown agent"      # or: the call fails with a message containing this
//! decision = ["least load", …]        # substrings of the human form of the step's decisions
//! state = ["agent a1 1/2 online", "queue presales: 3 4", "session 3 waiting presales #1"]
//! next_deadline_t = 35                # seconds after start; -1 = none
//! ```
//!
//! On a mismatch the runner prints what the engine did, so a new scenario can be written by
//! running it once and checking the output by hand.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use huiliu_routing::{
    Action, AgentStatus, Conversation, Engine, HandoverNote, RestoredAgent, RestoredSession, RoutingConfig,
    SampleAgent, SampleEvent, SessionView, TransferTo, WaitState, explain,
};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default = "default_start")]
    start: String,
    config: RoutingConfig,
    #[serde(default)]
    expect_config_errors: Option<Vec<String>>,
    #[serde(default)]
    step: Vec<Step>,
}

fn default_start() -> String {
    "2025-06-18 10:00:00".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    #[serde(default)]
    t: i64,
    #[serde(rename = "do")]
    action: String,
    // arrive / explain
    session: Option<u64>,
    platform: Option<String>,
    shop: Option<String>,
    #[serde(default)]
    text: String,
    #[serde(default)]
    vip_level: u32,
    #[serde(default)]
    fans_level: u32,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    has_open_refund: bool,
    #[serde(default)]
    returning: bool,
    last_agent: Option<String>,
    /// Seconds before the step that `last_agent` last served the buyer.
    last_agent_ago_s: Option<i64>,
    agents_status: Option<BTreeMap<String, SampleAgent>>,
    // status / cap / transfer
    agent: Option<String>,
    status: Option<AgentStatus>,
    cap: Option<u32>,
    #[serde(default)]
    cap_reset: bool,
    to_agent: Option<String>,
    to_group: Option<String>,
    note: Option<HandoverNote>,
    // reload
    config: Option<RoutingConfig>,
    // restore
    restore_agents: Option<Vec<RestoredAgent>>,
    restore_sessions: Option<Vec<RestoreEntry>>,
    // expectations
    expect: Option<Vec<String>>,
    expect_error: Option<String>,
    #[serde(default)]
    decision: Vec<String>,
    #[serde(default)]
    explain: Vec<String>,
    #[serde(default)]
    state: Vec<String>,
    next_deadline_t: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RestoreEntry {
    session: u64,
    #[serde(default)]
    text: String,
    shop: Option<String>,
    /// Seconds after start when it first waited.
    #[serde(default)]
    enqueued_t: i64,
    agent: Option<String>,
    #[serde(default)]
    responded: bool,
}

fn load(path: &Path) -> Result<Scenario, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    config::Config::builder()
        .add_source(config::File::from_str(&text, config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize::<Scenario>())
        .map_err(|e| format!("cannot read scenario: {e}"))
}

fn session_line(r: &Engine, id: u64) -> String {
    match r.session(id) {
        None => format!("session {id} none"),
        Some(SessionView::Assigned { agent, .. }) => format!("session {id} assigned {agent}"),
        Some(SessionView::Waiting { group, wait, position, .. }) => match wait {
            WaitState::Queued => format!("session {id} waiting {group} #{position}"),
            WaitState::OffHours { .. } => format!("session {id} waiting {group} off_hours #{position}"),
            WaitState::Overflow => format!("session {id} waiting {group} overflow #{position}"),
            WaitState::ForAgent { agent, .. } => format!("session {id} waiting for {agent}"),
        },
    }
}

/// The engine's answer to one `state` line's subject, in the same form.
fn actual_state(r: &Engine, want: &str) -> String {
    let words: Vec<&str> = want.split_whitespace().collect();
    match words.as_slice() {
        ["agent", id, ..] => match r.agent(id) {
            Some(a) => format!("agent {id} {}/{} {}", a.active, a.cap, a.status),
            None => format!("agent {id} unknown"),
        },
        ["queue", group, ..] => {
            let group = group.trim_end_matches(':');
            let ids: Vec<String> = r.queued(group).iter().map(u64::to_string).collect();
            format!("queue {group}: {}", ids.join(" ")).trim_end().to_owned()
        }
        ["session", id, ..] => id.parse().map_or_else(|_| format!("bad line {want}"), |id| session_line(r, id)),
        ["sessions", _] => format!("sessions {}", r.len()),
        _ => format!("unknown state line `{want}`"),
    }
}

fn run(path: &Path) -> Result<usize, String> {
    let sc = load(path)?;
    let start = huiliu_sdk::time::parse_beijing_datetime(&sc.start).ok_or("bad start")?;
    if let Some(want) = &sc.expect_config_errors {
        let mut got: Vec<String> = sc.config.validate("routing.toml").into_iter().map(|e| e.key).collect();
        let mut want = want.clone();
        got.sort();
        want.sort();
        return if got == want {
            Ok(1)
        } else {
            Err(format!("config errors differ:\n  want {want:?}\n  got  {got:?}"))
        };
    }
    let mut r = Engine::new(sc.config.clone(), start).map_err(|e| format!("config: {e:?}"))?;
    let mut checks = 0;
    for (i, st) in sc.step.iter().enumerate() {
        let now = start + st.t * 1000;
        let at = format!("step {i} (t={} {})", st.t, st.action);
        let conversation = || Conversation {
            session: st.session.unwrap_or(0),
            platform: st.platform.clone().unwrap_or_else(|| "taobao".into()),
            shop: st.shop.clone().unwrap_or_else(|| "tb-main".into()),
            buyer: format!("buyer-{}", st.session.unwrap_or(0)),
            text: st.text.clone(),
            vip_level: st.vip_level,
            fans_level: st.fans_level,
            tags: st.tags.clone(),
            has_open_refund: st.has_open_refund,
            returning: st.returning,
            last_agent: st.last_agent.clone(),
            last_agent_at: st.last_agent_ago_s.map(|s| now - s * 1000),
        };
        let session = || st.session.ok_or(format!("{at}: `session` missing"));
        let agent = || st.agent.clone().ok_or(format!("{at}: `agent` missing"));
        let result: Result<Vec<Action>, String> = match st.action.as_str() {
            "arrive" => r.arrive(conversation(), now).map_err(|e| e.to_string()),
            "close" => r.close(session()?, now).map_err(|e| e.to_string()),
            "respond" => r.first_response(session()?, now).map_err(|e| e.to_string()),
            "status" => r.set_status(&agent()?, st.status.ok_or("status missing")?, now).map_err(|e| e.to_string()),
            "cap" => {
                let cap = if st.cap_reset { None } else { Some(st.cap.ok_or("cap missing")?) };
                r.set_max_sessions(&agent()?, cap, now).map_err(|e| e.to_string())
            }
            "transfer" => {
                let to = match (&st.to_agent, &st.to_group) {
                    (Some(a), None) => TransferTo::Agent(a.clone()),
                    (None, Some(g)) => TransferTo::Group(g.clone()),
                    _ => return Err(format!("{at}: one of to_agent / to_group")),
                };
                r.transfer(session()?, to, st.note.clone().unwrap_or_default(), now).map_err(|e| e.to_string())
            }
            "tick" => Ok(r.tick(now)),
            "reload" => {
                let cfg = st.config.clone().ok_or(format!("{at}: `config` missing"))?;
                r.reload(cfg, now).map_err(|e| e.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
            }
            "restore" => {
                let sessions = st
                    .restore_sessions
                    .iter()
                    .flatten()
                    .map(|e| RestoredSession {
                        conversation: Conversation {
                            session: e.session,
                            platform: "taobao".into(),
                            shop: e.shop.clone().unwrap_or_else(|| "tb-main".into()),
                            text: e.text.clone(),
                            ..Conversation::default()
                        },
                        enqueued_at: start + e.enqueued_t * 1000,
                        agent: e.agent.clone(),
                        assigned_at: e.agent.as_ref().map(|_| start + e.enqueued_t * 1000),
                        responded: e.responded,
                    })
                    .collect();
                let agents = st.restore_agents.clone().unwrap_or_default();
                let cfg = st.config.clone().unwrap_or_else(|| sc.config.clone());
                match Engine::restore(cfg, &agents, sessions, now) {
                    Ok((router, actions)) => {
                        r = router;
                        Ok(actions)
                    }
                    Err(e) => Err(format!("{e:?}")),
                }
            }
            "explain" => {
                let c = conversation();
                let event = SampleEvent {
                    at: Some(huiliu_routing::EventTime::Millis(now)),
                    platform: c.platform,
                    shop: c.shop,
                    buyer: c.buyer,
                    text: c.text,
                    vip_level: c.vip_level,
                    fans_level: c.fans_level,
                    tags: c.tags,
                    has_open_refund: c.has_open_refund,
                    returning: c.returning,
                    last_agent: c.last_agent,
                    last_agent_at: c.last_agent_at,
                    agents_status: st.agents_status.clone().unwrap_or_default(),
                };
                let text = explain(r.config(), &r.state(), &event);
                for want in &st.explain {
                    checks += 1;
                    if !text.contains(want.as_str()) {
                        return Err(format!("{at}: explain lacks {want:?}; it said:\n{text}"));
                    }
                }
                Ok(Vec::new())
            }
            other => return Err(format!("{at}: unknown action `{other}`")),
        };
        match (&result, &st.expect_error) {
            (Err(e), Some(want)) => {
                checks += 1;
                if !e.contains(want.as_str()) {
                    return Err(format!("{at}: error {e:?} does not contain {want:?}"));
                }
            }
            (Err(e), None) => return Err(format!("{at}: failed: {e}")),
            (Ok(actions), Some(want)) => {
                return Err(format!("{at}: expected error {want:?}, got {:?}", lines(actions)));
            }
            (Ok(actions), None) => {
                if let Some(want) = &st.expect {
                    checks += 1;
                    let got = lines(actions);
                    if &got != want {
                        return Err(format!(
                            "{at}: actions differ\n  want: {want:#?}\n  got:  {got:#?}\n  decisions:\n{}",
                            decisions(actions)
                        ));
                    }
                }
                let text = decisions(actions);
                for want in &st.decision {
                    checks += 1;
                    if !text.contains(want.as_str()) {
                        return Err(format!("{at}: decisions lack {want:?}:\n{text}"));
                    }
                }
            }
        }
        for want in &st.state {
            checks += 1;
            let got = actual_state(&r, want);
            if &got != want {
                return Err(format!("{at}: state: want `{want}`, got `{got}`"));
            }
        }
        if let Some(t) = st.next_deadline_t {
            checks += 1;
            let got = r.next_deadline().map_or(-1, |d| (d - start) / 1000);
            if got != t {
                return Err(format!("{at}: next deadline at t={got}, want t={t}"));
            }
        }
    }
    let _ = (&sc.name, &sc.description);
    Ok(checks)
}

fn lines(actions: &[Action]) -> Vec<String> {
    actions.iter().map(ToString::to_string).collect()
}

fn decisions(actions: &[Action]) -> String {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Assign { decision, .. } | Action::Queue { decision, .. } => Some(decision.to_string()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn scenario_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/routing");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn routing_scenarios() {
    let files = scenario_files();
    assert!(files.len() >= 15, "only {} scenarios", files.len());
    let mut failures = Vec::new();
    for f in &files {
        match run(f) {
            Ok(checks) => {
                // A scenario that checks nothing cannot fail: that is a defect.
                if checks == 0 {
                    failures.push(format!("{}: checks nothing", f.display()));
                } else {
                    eprintln!("ok  {} ({checks} checks)", f.file_name().and_then(|n| n.to_str()).unwrap_or(""));
                }
            }
            Err(e) => failures.push(format!("{}:\n{e}", f.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} scenarios failed:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}

#[test]
fn the_shipped_routing_toml_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/routing.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let cfg = huiliu_routing::parse(&text, "config/routing.toml")
        .unwrap_or_else(|e| panic!("{}", e.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")));
    assert_eq!(cfg.groups.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(), ["presales", "aftersales", "vip"]);
    assert!(Engine::new(cfg, 0).is_ok());
}
