//! Property tests over random event sequences: the engine's invariants after every call, and
//! dry runs that choose what the engine chooses.

use proptest::prelude::*;

use super::*;

#[derive(Debug, Clone)]
enum Op {
    Arrive { shop: u8, text: u8, fans: u8, last: Option<u8> },
    Close(u8),
    Respond(u8),
    Status(u8, u8),
    Cap(u8, Option<u8>),
    TransferGroup(u8, u8),
    TransferAgent(u8, u8),
    Tick,
    Reload(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..2, 0u8..5, 0u8..2, proptest::option::of(0u8..4))
            .prop_map(|(shop, text, fans, last)| Op::Arrive { shop, text, fans, last }),
        2 => any::<u8>().prop_map(Op::Close),
        1 => any::<u8>().prop_map(Op::Respond),
        3 => (0u8..4, 0u8..4).prop_map(|(a, s)| Op::Status(a, s)),
        1 => (0u8..4, proptest::option::of(0u8..4)).prop_map(|(a, c)| Op::Cap(a, c)),
        1 => (any::<u8>(), 0u8..3).prop_map(|(s, g)| Op::TransferGroup(s, g)),
        1 => (any::<u8>(), 0u8..4).prop_map(|(s, a)| Op::TransferAgent(s, a)),
        2 => Just(Op::Tick),
        1 => any::<bool>().prop_map(Op::Reload),
    ]
}

fn prop_config(alternate: bool) -> RoutingConfig {
    let mut text = BASE.replace(
        "[[agent]]\nid = \"a3\"",
        "[[agent]]\nid = \"a4\"\ngroups = { presales = 1, aftersales = 4 }\nmax_sessions = 1\nshops = [\"dy-1\"]\n\n[[agent]]\nid = \"a3\"",
    );
    text = text
        .replace("[[group]]\nid = \"aftersales\"", "[[group]]\nid = \"aftersales\"\npolicy = \"proficiency_first\"");
    if alternate {
        // Renamed group, one agent fewer, different limits and aging.
        text = text
            .replace("id = \"presales\"", "id = \"pre\"")
            .replace("presales = ", "pre = ")
            .replace("group = \"presales\"", "group = \"pre\"")
            .replace("queue_limit = 3", "queue_limit = 1")
            .replace("[routing]\n", "[routing]\naging_rate = 3.0\non_offline = \"keep\"\n")
            .replace("[[agent]]\nid = \"a2\"\nname = \"小王\"\ngroups = { pre = 3 }\nmax_sessions = 2\n", "");
    }
    cfg(&text)
}

const AGENTS: [&str; 4] = ["a1", "a2", "a3", "a4"];
const TEXTS: [&str; 5] = ["这个有货吗", "我要退款", "快递到哪了", "再不处理就投诉", "东西坏了"];
const STATUSES: [AgentStatus; 4] = [AgentStatus::Online, AgentStatus::Busy, AgentStatus::Away, AgentStatus::Offline];

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Random arrivals, status flips, cap changes, transfers, ticks and reloads: caps are never
    /// exceeded by an assignment, nobody offline is assigned, no session is lost or duplicated,
    /// every unassigned session is re-placed in the same call, and each drain serves the most
    /// urgent conversation the agent could take (priority first among equally old ones).
    #[test]
    fn engine_invariants_hold(ops in proptest::collection::vec((op(), 0i64..20_000), 1..120)) {
        let mut r = Engine::new(prop_config(false), T0).unwrap();
        let mut now = T0;
        let mut next_id: SessionId = 1;
        let mut live: Vec<SessionId> = Vec::new();
        for (op, dt) in ops {
            now += dt;
            let pick = |i: u8, live: &Vec<SessionId>| live.get(i as usize % live.len().max(1)).copied().unwrap_or(9999);
            let result = match op {
                Op::Arrive { shop, text, fans, last } => {
                    let mut c = conv(next_id, TEXTS[text as usize]);
                    c.shop = ["tb-main", "dy-1"][shop as usize].into();
                    c.fans_level = u32::from(fans);
                    c.last_agent = last.map(|a| AGENTS[a as usize].to_owned());
                    live.push(next_id);
                    next_id += 1;
                    r.arrive(c, now)
                }
                Op::Close(i) => {
                    let id = pick(i, &live);
                    live.retain(|x| *x != id);
                    r.close(id, now)
                }
                Op::Respond(i) => r.first_response(pick(i, &live), now),
                Op::Status(a, s) => r.set_status(AGENTS[a as usize], STATUSES[s as usize], now),
                Op::Cap(a, c) => r.set_max_sessions(AGENTS[a as usize], c.map(u32::from), now),
                Op::TransferGroup(i, g) => {
                    let group = r.config().groups[g as usize % r.config().groups.len()].id.clone();
                    r.transfer(pick(i, &live), TransferTo::Group(group), HandoverNote::default(), now)
                }
                Op::TransferAgent(i, a) => {
                    r.transfer(pick(i, &live), TransferTo::Agent(AGENTS[a as usize].into()), HandoverNote::default(), now)
                }
                Op::Tick => Ok(r.tick(now)),
                Op::Reload(alt) => r.reload(prop_config(alt), now).map_err(|e| RouterError::UnknownGroup(format!("{e:?}"))),
            };
            if let Err(e) = r.check_invariants() {
                prop_assert!(false, "after {op:?}: {e}");
            }
            prop_assert!(r.violations.is_empty(), "{:?}", r.violations);
            let Ok(actions) = result else { continue };
            // (Each assignment was checked at the moment it was made: online, under the cap.)
            let mut gave: std::collections::BTreeSet<&str> = Default::default();
            for (i, a) in actions.iter().enumerate() {
                match a {
                    Action::Assign { agent, .. } => {
                        gave.insert(agent);
                    }
                    Action::Unassign { session, .. } => {
                        let placed = actions[i + 1..].iter().any(|b| {
                            matches!(b, Action::Assign { session: s, .. } | Action::Queue { session: s, .. } if s == session)
                        });
                        prop_assert!(placed, "session {} unassigned and not re-placed: {:?}", session, lines(&actions));
                    }
                    _ => {}
                }
            }
            if !matches!(op, Op::Cap(..) | Op::Reload(_)) {
                for agent in gave {
                    let Some(view) = r.agent(agent) else { continue };
                    prop_assert!(view.active <= view.cap, "{} at {}/{}", agent, view.active, view.cap);
                }
            }
            // Nothing lost, nothing duplicated.
            prop_assert_eq!(r.len(), live.len());
            for id in &live {
                prop_assert!(r.session(*id).is_some(), "session {} lost", id);
            }
        }
    }

    /// The dry run (explain) chooses what the engine would choose for the same state.
    #[test]
    fn dry_run_agrees_with_the_engine(
        setup in proptest::collection::vec((0u8..4, 0u8..4, 0u8..2), 0..12),
        text in 0u8..5, shop in 0u8..2, fans in 0u8..2,
    ) {
        let mut r = Engine::new(prop_config(false), T0).unwrap();
        let mut now = T0;
        let mut id = 1;
        for (a, s, arrive) in setup {
            now += 1000;
            r.set_status(AGENTS[a as usize], STATUSES[s as usize], now).unwrap();
            if arrive == 1 {
                r.arrive(conv(id, "x"), now).unwrap();
                id += 1;
            }
        }
        now += 1000;
        let event = SampleEvent {
            at: Some(EventTime::Millis(now)),
            platform: "taobao".into(),
            shop: ["tb-main", "dy-1"][shop as usize].into(),
            text: TEXTS[text as usize].into(),
            fans_level: u32::from(fans),
            ..SampleEvent::default()
        };
        let state = r.state();
        // One agent's state, read without the snapshot, is what the snapshot holds for them.
        for agent in AGENTS {
            prop_assert_eq!(r.agent_state(agent), state.agents.get(agent).cloned());
        }
        prop_assert_eq!(r.agent_state("nobody"), None);
        let dry = dry_run(r.config(), &state, &event).unwrap();
        let mut c = event.conversation();
        c.session = 10_000;
        let out = r.arrive(c, now).unwrap();
        let real = decision(&out, 10_000);
        prop_assert_eq!(&dry.chosen, &real.chosen);
        prop_assert_eq!(&dry.group, &real.group);
        prop_assert_eq!(&dry.rule, &real.rule);
    }
}
