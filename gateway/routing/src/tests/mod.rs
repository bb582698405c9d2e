//! Engine tests: one behaviour per test; property tests over random event sequences are in
//! `properties`.

use super::*;

mod properties;

const T0: i64 = 1_750_212_000_000; // 2025-06-18 10:00:00 Beijing (a Wednesday)
const S: i64 = 1000;

const BASE: &str = r#"
[routing]
first_response_limit_s = 30
sticky_wait_s = 20
transfer_wait_s = 60

[[group]]
id = "presales"
name = "售前"

[[group]]
id = "aftersales"
name = "售后"
queue_limit = 3

[[group]]
id = "vip"
name = "专属客服"
queue_limit = 0

[[agent]]
id = "a1"
name = "小美"
groups = { presales = 5, aftersales = 2 }
max_sessions = 2

[[agent]]
id = "a2"
name = "小王"
groups = { presales = 3 }
max_sessions = 2

[[agent]]
id = "a3"
name = "老李"
groups = { aftersales = 5, vip = 5 }
max_sessions = 3
shops = ["tb-main"]

[[rule]]
name = "投诉优先"
priority = 10
[rule.match]
category = ["complaint"]
[[rule.target]]
group = "aftersales"
min_proficiency = 4
wait_s = 30
[[rule.target]]
group = "aftersales"

[[rule]]
name = "粉丝专属"
priority = 5
[rule.match]
fans_min = 1
[[rule.target]]
group = "vip"
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

fn cfg(text: &str) -> RoutingConfig {
    parse(text, ROUTING_FILE).unwrap_or_else(|e| panic!("{e:#?}"))
}

fn router() -> Engine {
    Engine::new(cfg(BASE), T0).unwrap()
}

fn conv(session: SessionId, text: &str) -> Conversation {
    Conversation {
        session,
        platform: "taobao".into(),
        shop: "tb-main".into(),
        buyer: format!("buyer-{session}"),
        text: text.into(),
        ..Conversation::default()
    }
}

fn lines(actions: &[Action]) -> Vec<String> {
    actions.iter().map(ToString::to_string).collect()
}

fn assigned_to(r: &Engine, s: SessionId) -> Option<String> {
    match r.session(s) {
        Some(SessionView::Assigned { agent, .. }) => Some(agent),
        _ => None,
    }
}

fn online(r: &mut Engine, agents: &[&str], at: i64) {
    for a in agents {
        r.set_status(a, AgentStatus::Online, at).unwrap();
    }
}

fn ok(r: &Engine) {
    if let Err(e) = r.check_invariants() {
        panic!("invariant broken: {e}");
    }
    assert!(r.violations.is_empty(), "{:?}", r.violations);
}

fn decision(actions: &[Action], s: SessionId) -> &Decision {
    actions
        .iter()
        .find_map(|a| match a {
            Action::Assign { session, decision, .. } | Action::Queue { session, decision, .. } if *session == s => {
                Some(decision.as_ref())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no decision for {s} in {:?}", lines(actions)))
}

#[test]
fn least_load_then_longest_idle() {
    let mut r = router();
    r.set_status("a1", AgentStatus::Online, T0).unwrap();
    r.set_status("a2", AgentStatus::Online, T0 + S).unwrap();
    let out = r.arrive(conv(1, "这款有红色吗"), T0 + 2 * S).unwrap();
    assert_eq!(lines(&out)[0], "assign 1 a1");
    assert_eq!(lines(&out)[1], "notify 1 您好，我是小美，很高兴为您服务～");
    let d = decision(&out, 1);
    assert_eq!(d.rule.as_ref().map(|r| r.name.as_str()), Some("默认"));
    assert_eq!(d.category, "presales");
    assert!(d.why.contains("tied with a2") && d.why.contains("idle"), "{}", d.why);
    let out = r.arrive(conv(2, "在吗"), T0 + 3 * S).unwrap();
    assert_eq!(lines(&out)[0], "assign 2 a2");
    assert!(decision(&out, 2).why.contains("least load 0/2 (next: a1 1/2)"), "{}", decision(&out, 2).why);
    // Both 1/2 now; a1 was assigned earlier, so idle longer.
    assert_eq!(lines(&r.arrive(conv(3, "x"), T0 + 4 * S).unwrap())[0], "assign 3 a1");
    assert_eq!(lines(&r.arrive(conv(4, "x"), T0 + 5 * S).unwrap())[0], "assign 4 a2");
    let out = r.arrive(conv(5, "x"), T0 + 6 * S).unwrap();
    assert_eq!(
        lines(&out),
        vec!["queue 5 presales #1", "notify 5 当前咨询人数较多，您前面还有1位，预计等待约2分钟，请稍候。"]
    );
    let out = r.close(1, T0 + 7 * S).unwrap();
    assert_eq!(lines(&out), vec!["assign 5 a1"]);
    assert_eq!(decision(&out, 5).trigger, Trigger::Drain);
    ok(&r);
}

#[test]
fn learned_handle_times_set_the_queue_estimate() {
    let mut r = router();
    // Too few closed conversations to trust: the configured handle time stays.
    let few = crate::ClosedSample { closed: crate::LEARN_MIN_CLOSED - 1, mean_s: 1200 };
    r.adopt_handle_times(crate::HandleTimes { groups: [("presales".to_owned(), few)].into() }.learned_ms());
    r.set_status("a1", AgentStatus::Online, T0).unwrap();
    r.set_status("a2", AgentStatus::Online, T0 + S).unwrap();
    for s in 1..=4u64 {
        r.arrive(conv(s, "x"), T0 + (1 + s as i64) * S).unwrap();
    }
    let out = r.arrive(conv(5, "x"), T0 + 6 * S).unwrap();
    assert_eq!(lines(&out)[1], "notify 5 当前咨询人数较多，您前面还有1位，预计等待约2分钟，请稍候。");
    // Twenty minutes a conversation over enough closes: one ahead, four places → five minutes.
    let enough = crate::ClosedSample { closed: crate::LEARN_MIN_CLOSED, mean_s: 1200 };
    r.adopt_handle_times(crate::HandleTimes { groups: [("presales".to_owned(), enough)].into() }.learned_ms());
    let out = r.arrive(conv(6, "x"), T0 + 7 * S).unwrap();
    assert_eq!(lines(&out)[1], "notify 6 当前咨询人数较多，您前面还有2位，预计等待约10分钟，请稍候。");
    ok(&r);
}

#[test]
fn proficiency_first_and_round_robin_policies() {
    let text = BASE.replace("name = \"售前\"", "name = \"售前\"\npolicy = \"proficiency_first\"");
    let mut r = Engine::new(cfg(&text), T0).unwrap();
    online(&mut r, &["a2", "a1"], T0);
    // a1 has proficiency 5 in presales, a2 has 3: a1 twice (until full), then a2.
    for s in 1..=3 {
        r.arrive(conv(s, "x"), T0 + s as i64 * S).unwrap();
    }
    assert_eq!(assigned_to(&r, 1).as_deref(), Some("a1"));
    assert_eq!(assigned_to(&r, 2).as_deref(), Some("a1"));
    assert_eq!(assigned_to(&r, 3).as_deref(), Some("a2"));

    let text = BASE.replace("name = \"售前\"", "name = \"售前\"\npolicy = \"round_robin\"");
    let mut r = Engine::new(cfg(&text), T0).unwrap();
    online(&mut r, &["a1", "a2"], T0);
    r.set_max_sessions("a1", Some(10), T0).unwrap();
    r.set_max_sessions("a2", Some(10), T0).unwrap();
    let got: Vec<String> = (1..=4)
        .map(|s| {
            r.arrive(conv(s, "x"), T0 + s as i64 * S).unwrap();
            if s % 2 == 0 {
                r.close(s - 1, T0 + s as i64 * S).unwrap();
            }
            assigned_to(&r, s).unwrap()
        })
        .collect();
    assert_eq!(got, vec!["a1", "a2", "a1", "a2"]);
    ok(&r);
}

#[test]
fn caps_are_never_exceeded_and_cap_changes_apply() {
    let mut r = router();
    online(&mut r, &["a1"], T0);
    for s in 1..=3 {
        r.arrive(conv(s, "x"), T0).unwrap();
    }
    assert_eq!(r.agent("a1").unwrap().active, 2);
    assert_eq!(r.queue_len("presales"), 1);
    // Lowering the cap keeps the sessions but gives no new ones.
    r.set_max_sessions("a1", Some(1), T0 + S).unwrap();
    r.close(1, T0 + 2 * S).unwrap();
    assert_eq!(r.agent("a1").unwrap().active, 1);
    assert_eq!(r.queue_len("presales"), 1);
    // Raising it drains the queue.
    let out = r.set_max_sessions("a1", Some(3), T0 + 3 * S).unwrap();
    assert_eq!(lines(&out), vec!["assign 3 a1"]);
    let out = r.set_max_sessions("a1", None, T0 + 4 * S).unwrap();
    assert!(out.is_empty());
    assert_eq!(r.agent("a1").unwrap().cap, 2);
    ok(&r);
}

#[test]
fn higher_priority_first_among_equally_old_and_aging_prevents_starvation() {
    let mut r = router();
    // Fans (priority 5) overflow from the vip group (queue limit 0, nobody online) to presales.
    let mut fan = conv(2, "x");
    fan.fans_level = 1;
    r.arrive(conv(1, "x"), T0).unwrap();
    let out = r.arrive(fan, T0).unwrap();
    assert_eq!(lines(&out)[0], "queue 2 presales #1", "{:?}", lines(&out));
    assert!(decision(&out, 2).path.iter().any(|p| p.contains("vip")), "{:?}", decision(&out, 2).path);
    assert_eq!(r.queued("presales"), vec![2, 1]);
    // A normal conversation that waited more than 5 minutes beats a fan who just arrived.
    let mut late_fan = conv(3, "x");
    late_fan.fans_level = 3;
    r.arrive(late_fan, T0 + 6 * 60 * S).unwrap();
    assert_eq!(r.queued("presales"), vec![2, 1, 3]);
    r.set_max_sessions("a2", Some(1), T0 + 6 * 60 * S).unwrap();
    let out = r.set_status("a2", AgentStatus::Online, T0 + 7 * 60 * S).unwrap();
    assert_eq!(lines(&out), vec!["assign 2 a2"]);
    r.close(2, T0 + 8 * 60 * S).unwrap();
    assert_eq!(assigned_to(&r, 1).as_deref(), Some("a2"));
    ok(&r);
}

#[test]
fn complaint_outranks_refund_and_category_reasons_are_recorded() {
    let mut r = router();
    online(&mut r, &["a3"], T0);
    let mut c = conv(1, "退款还不处理我要打12315投诉");
    c.has_open_refund = true;
    let out = r.arrive(c, T0).unwrap();
    let d = decision(&out, 1);
    assert_eq!(d.category, "complaint");
    assert!(d.category_why.contains("投诉") || d.category_why.contains("12315"), "{}", d.category_why);
    assert_eq!(d.priority, 10);
    assert_eq!(lines(&out)[0], "assign 1 a3");
    let mut c = conv(2, "物流到哪了");
    c.has_open_refund = true;
    let out = r.arrive(c, T0).unwrap();
    assert_eq!(decision(&out, 2).category, "aftersales");
    assert!(decision(&out, 2).category_why.contains("refund"));
}

#[test]
fn sticky_back_to_last_agent_or_short_wait() {
    let mut r = router();
    online(&mut r, &["a1", "a2"], T0);
    r.arrive(conv(1, "x"), T0).unwrap(); // a1 (idle longest by id order tie) or a2
    let first = assigned_to(&r, 1).unwrap();
    let other = if first == "a1" { "a2" } else { "a1" };
    // Returning buyer of `first` goes back to them although `other` is less loaded.
    let mut c = conv(2, "还是上次那个问题");
    c.last_agent = Some(first.clone());
    let out = r.arrive(c, T0 + S).unwrap();
    assert_eq!(lines(&out)[0], format!("assign 2 {first}"));
    assert!(decision(&out, 2).sticky.as_deref().unwrap_or("").contains("last agent"));
    // `first` is full now: the next returning buyer waits for them, then goes the normal way.
    let mut c = conv(3, "x");
    c.last_agent = Some(first.clone());
    let out = r.arrive(c, T0 + 2 * S).unwrap();
    assert_eq!(lines(&out), vec![format!("wait 3 {first}")]);
    assert_eq!(r.next_deadline(), Some(T0 + 22 * S));
    let out = r.tick(T0 + 22 * S);
    assert_eq!(lines(&out)[0], format!("assign 3 {other}"));
    assert_eq!(decision(&out, 3).trigger, Trigger::StickyExpired);
    // A wait that ends because the agent frees up.
    let mut c = conv(4, "x");
    c.last_agent = Some(first.clone());
    let out = r.arrive(c, T0 + 23 * S).unwrap();
    assert_eq!(lines(&out), vec![format!("wait 4 {first}")]);
    let out = r.close(1, T0 + 25 * S).unwrap();
    assert_eq!(lines(&out), vec![format!("assign 4 {first}")]);
    // Outside the TTL: normal routing, and the decision says why.
    let mut c = conv(5, "x");
    c.last_agent = Some(first.clone());
    c.last_agent_at = Some(T0 - 2 * 86_400 * S);
    let out = r.arrive(c, T0 + 30 * S).unwrap();
    assert!(decision(&out, 5).sticky.as_deref().unwrap_or("").contains("more than 86400 s ago"));
    ok(&r);
}

#[test]
fn first_response_limit_reassigns_or_raises_overdue() {
    let mut r = router();
    online(&mut r, &["a1"], T0);
    r.arrive(conv(1, "x"), T0).unwrap();
    r.arrive(conv(2, "x"), T0).unwrap();
    r.first_response(2, T0 + 5 * S).unwrap();
    assert_eq!(r.next_deadline(), Some(T0 + 30 * S));
    // Nobody else has room: the session stays and the lead is alerted.
    let out = r.tick(T0 + 30 * S);
    assert_eq!(lines(&out), vec!["overdue 1 a1"]);
    assert_eq!(r.next_deadline(), Some(T0 + 60 * S));
    online(&mut r, &["a2"], T0 + 40 * S);
    let out = r.tick(T0 + 60 * S);
    assert_eq!(lines(&out), vec!["unassign 1 a1 no_first_response", "assign 1 a2"]);
    let d = decision(&out, 1);
    assert_eq!(d.trigger, Trigger::FirstResponseTimeout);
    assert!(d.path[0].contains("did not answer within 30 s"), "{:?}", d.path);
    // The answered one is never touched.
    assert!(r.tick(T0 + 600 * S).iter().all(|a| a.session() != 2));
    ok(&r);
}

#[test]
fn offline_requeues_and_away_keeps() {
    let mut r = router();
    online(&mut r, &["a1"], T0);
    r.arrive(conv(1, "x"), T0).unwrap();
    r.arrive(conv(2, "x"), T0 + S).unwrap();
    r.first_response(1, T0 + 2 * S).unwrap();
    r.first_response(2, T0 + 2 * S).unwrap();
    // Away (default keep): nothing moves.
    assert!(r.set_status("a1", AgentStatus::Away, T0 + 3 * S).unwrap().is_empty());
    assert_eq!(r.agent("a1").unwrap().active, 2);
    online(&mut r, &["a2"], T0 + 4 * S);
    // Offline (default requeue): both go to a2, oldest first.
    let out = r.set_status("a1", AgentStatus::Offline, T0 + 5 * S).unwrap();
    assert_eq!(
        lines(&out),
        vec!["unassign 1 a1 agent_offline", "assign 1 a2", "unassign 2 a1 agent_offline", "assign 2 a2"]
    );
    assert_eq!(decision(&out, 1).trigger, Trigger::AgentLeft);
    ok(&r);
}

#[test]
fn transfer_to_group_excludes_the_sender_and_carries_the_note() {
    let mut r = router();
    online(&mut r, &["a1"], T0);
    r.arrive(conv(1, "x"), T0).unwrap();
    let note =
        HandoverNote {
            problem: "要开专票".into(), tried: "已发开票模板".into(), expectation: "今天内开好".into()
        };
    // a3 is offline: it waits in aftersales, and a1 (also a member) does not get it back.
    let out = r.transfer(1, TransferTo::Group("aftersales".into()), note.clone(), T0 + S).unwrap();
    assert_eq!(lines(&out)[0..2], ["unassign 1 a1 transfer", "queue 1 aftersales #1"]);
    assert_eq!(decision(&out, 1).handover.as_ref().map(|h| &h.note), Some(&note));
    assert!(assigned_to(&r, 1).is_none());
    let a1: Vec<Eligibility> =
        decision(&out, 1).candidates.iter().filter(|c| c.agent == "a1").map(|c| c.eligibility).collect();
    assert_eq!(a1, vec![Eligibility::Excluded]);
    let out = r.set_status("a3", AgentStatus::Online, T0 + 2 * S).unwrap();
    assert_eq!(lines(&out), vec!["assign 1 a3"]);
    let d = decision(&out, 1);
    assert_eq!(d.handover.as_ref().and_then(|h| h.from_agent.as_deref()), Some("a1"));
    assert!(format!("{d}").contains("problem: 要开专票"), "{d}");
    ok(&r);
}

#[test]
fn transfer_to_a_full_agent_waits_then_goes_to_the_group() {
    let mut r = router();
    online(&mut r, &["a1", "a2"], T0);
    for s in 1..=4 {
        r.arrive(conv(s, "x"), T0).unwrap();
        r.first_response(s, T0).unwrap();
    }
    let from = assigned_to(&r, 1).unwrap();
    let to = if from == "a1" { "a2" } else { "a1" };
    assert_eq!(r.agent(to).unwrap().active, 2);
    let out = r.transfer(1, TransferTo::Agent(to.into()), HandoverNote::default(), T0 + S).unwrap();
    assert_eq!(lines(&out)[0..2], [format!("unassign 1 {from} transfer"), format!("wait 1 {to}")]);
    let out = r.tick(T0 + 61 * S);
    // Back to presales, the sender excluded: nobody else has room, so it waits there.
    assert_eq!(lines(&out)[0], "queue 1 presales #1", "{:?}", lines(&out));
    assert_eq!(decision(&out, 1).trigger, Trigger::TransferWaitExpired);
    ok(&r);
}

#[test]
fn transfer_errors_leave_everything_unchanged() {
    let mut r = router();
    online(&mut r, &["a1"], T0);
    r.arrive(conv(1, "x"), T0).unwrap();
    let before = r.session(1);
    let n = HandoverNote::default;
    assert_eq!(
        r.transfer(9, TransferTo::Group("presales".into()), n(), T0).unwrap_err(),
        RouterError::UnknownSession(9)
    );
    assert_eq!(
        r.transfer(1, TransferTo::Group("nope".into()), n(), T0).unwrap_err(),
        RouterError::UnknownGroup("nope".into())
    );
    assert_eq!(
        r.transfer(1, TransferTo::Agent("a1".into()), n(), T0).unwrap_err(),
        RouterError::SameAgent("a1".into())
    );
    assert!(matches!(
        r.transfer(1, TransferTo::Agent("a2".into()), n(), T0).unwrap_err(),
        RouterError::AgentUnavailable(_, AgentStatus::Offline)
    ));
    let mut other_shop = conv(2, "x");
    other_shop.shop = "dy-1".into();
    r.arrive(other_shop, T0).unwrap();
    online(&mut r, &["a3"], T0);
    assert!(matches!(
        r.transfer(2, TransferTo::Agent("a3".into()), n(), T0).unwrap_err(),
        RouterError::AgentNotServingShop(..)
    ));
    // vip has a3 only, who does not serve dy-1.
    assert_eq!(
        r.transfer(2, TransferTo::Group("vip".into()), n(), T0).unwrap_err(),
        RouterError::NobodyElse("vip".into())
    );
    assert_eq!(r.arrive(conv(1, "x"), T0).unwrap_err(), RouterError::DuplicateSession(1));
    assert_eq!(r.close(77, T0).unwrap_err(), RouterError::UnknownSession(77));
    assert_eq!(r.set_status("zz", AgentStatus::Online, T0).unwrap_err(), RouterError::UnknownAgent("zz".into()));
    assert_eq!(r.session(1), before);
    ok(&r);
}

#[test]
fn deadlines_due_during_a_failed_call_are_returned_by_the_next() {
    let mut r = router();
    online(&mut r, &["a1", "a2"], T0);
    r.arrive(conv(1, "x"), T0).unwrap();
    // At +31 s the first-response limit is due; the failing call processes it...
    assert!(r.close(99, T0 + 31 * S).is_err());
    // ...and the next call returns its actions.
    let out = r.tick(T0 + 31 * S);
    assert_eq!(lines(&out)[0], format!("unassign 1 {} no_first_response", "a1"));
    ok(&r);
}

const HOURS: &str = r#"
[routing]
fallback_group = "day"

[[group]]
id = "day"
name = "白班"
[group.hours]
daily = ["09:00-18:00"]
holidays = ["2025-10-01"]

[[group]]
id = "night"
name = "夜班"
[group.hours]
daily = ["18:00-24:00"]

[[group]]
id = "late"
off_hours_group = "night"
[group.hours]
daily = ["09:00-18:00"]

[[agent]]
id = "d1"
groups = { day = 3, late = 3 }

[[agent]]
id = "n1"
groups = { night = 3 }

[[rule]]
name = "late"
[rule.match]
tags = ["late"]
[[rule.target]]
group = "late"
"#;

#[test]
fn off_hours_message_then_served_at_opening() {
    let t = |s: &str| huiliu_sdk::time::parse_beijing_datetime(s).unwrap();
    let mut r = Engine::new(cfg(HOURS), t("2025-06-18 20:00:00")).unwrap();
    online(&mut r, &["d1", "n1"], t("2025-06-18 20:00:00"));
    let out = r.arrive(conv(1, "在吗"), t("2025-06-18 20:00:00")).unwrap();
    assert_eq!(
        lines(&out),
        vec![
            "queue 1 day off_hours #1",
            "notify 1 您好，现在是非工作时间，白班将于明天 09:00上线。您可以先留言，客服上线后会第一时间回复您。"
        ]
    );
    assert_eq!(r.next_deadline(), Some(t("2025-06-19 09:00:00")));
    assert!(matches!(r.session(1), Some(SessionView::Waiting { wait: WaitState::OffHours { .. }, .. })));
    let out = r.tick(t("2025-06-19 09:00:00"));
    assert_eq!(lines(&out), vec!["assign 1 d1"]);
    r.first_response(1, t("2025-06-19 09:00:10")).unwrap();
    r.close(1, t("2025-06-19 09:10:00")).unwrap();
    // The on-duty group takes over while `late` is closed.
    let mut c = conv(2, "x");
    c.tags = vec!["late".into()];
    let out = r.arrive(c, t("2025-06-19 19:00:00")).unwrap();
    assert_eq!(lines(&out)[0], "assign 2 n1");
    assert!(decision(&out, 2).path[0].contains("on-duty group night"));
    r.close(2, t("2025-06-19 19:10:00")).unwrap();
    // Holidays are closed all day.
    let out = r.arrive(conv(3, "x"), t("2025-10-01 10:00:00")).unwrap();
    assert!(lines(&out)[1].contains("将于明天 09:00上线"), "{:?}", lines(&out));
    ok(&r);
}

#[test]
fn full_queue_overflows_to_next_target_then_keeps_with_overflow_message() {
    let mut r = router();
    // Aftersales (limit 3): nobody online. Four refunds: three queue, the fourth overflows
    // at once to presales; a complaint (both targets aftersales) is kept as overflow.
    for s in 1..=4 {
        r.arrive(conv(s, "我要退货"), T0 + s as i64).unwrap();
    }
    assert_eq!(r.queue_len("aftersales"), 3);
    assert_eq!(r.queue_len("presales"), 1);
    let out = r.arrive(conv(5, "我要投诉"), T0 + 10).unwrap();
    assert_eq!(
        lines(&out),
        vec![
            "queue 5 aftersales overflow #1",
            "notify 5 非常抱歉，当前咨询量较大，您的消息已记录，客服会按顺序尽快回复您。"
        ]
    );
    // Kept and, being a complaint (priority 10), served first.
    assert_eq!(r.queued("aftersales")[0], 5);
    let out = r.set_status("a3", AgentStatus::Online, T0 + S).unwrap();
    assert_eq!(lines(&out)[0], "assign 5 a3");
    // Wait-based overflow: queued refunds move to presales after 60 s (a1 is there).
    online(&mut r, &["a2"], T0 + S);
    let out = r.tick(T0 + 62 * S);
    assert!(lines(&out).is_empty() || lines(&out).iter().all(|l| !l.contains("overflow")), "{:?}", lines(&out));
    ok(&r);
}

#[test]
fn overflow_after_wait_moves_to_the_next_target_keeping_its_place() {
    let mut r = router();
    r.arrive(conv(1, "东西坏了"), T0).unwrap();
    r.arrive(conv(2, "随便看看"), T0 + S).unwrap();
    assert_eq!(r.next_deadline(), Some(T0 + 60 * S));
    let out = r.tick(T0 + 60 * S);
    // Moved to presales, ahead of session 2 which arrived later.
    assert_eq!(lines(&out)[0], "queue 1 presales #1");
    assert_eq!(decision(&out, 1).trigger, Trigger::Overflow);
    assert_eq!(r.queued("presales"), vec![1, 2]);
    ok(&r);
}

#[test]
fn shift_start_interleaves_agents_and_caps_each() {
    let mut r = router();
    for s in 1..=5 {
        r.arrive(conv(s, "x"), T0 + s as i64).unwrap();
    }
    // Several agents come online at once (a restart): capacity is shared, least loaded first.
    let agents: Vec<RestoredAgent> = ["a1", "a2"]
        .iter()
        .map(|id| RestoredAgent {
            id: (*id).into(),
            status: AgentStatus::Online,
            max_sessions: None,
            idle_since: Some(T0),
        })
        .collect();
    let sessions: Vec<RestoredSession> = (1..=5)
        .map(|s| RestoredSession {
            conversation: conv(s, "x"),
            enqueued_at: T0 + s as i64,
            agent: None,
            assigned_at: None,
            responded: false,
        })
        .collect();
    let (r2, out) = Engine::restore(cfg(BASE), &agents, sessions, T0 + S).unwrap();
    let assigns: Vec<String> = lines(&out).into_iter().filter(|l| l.starts_with("assign")).collect();
    assert_eq!(assigns, vec!["assign 1 a1", "assign 2 a2", "assign 3 a1", "assign 4 a2"]);
    assert_eq!(r2.queued("presales"), vec![5]);
    ok(&r2);
    // One agent logging in alone takes only up to their cap.
    let out = r.set_status("a1", AgentStatus::Online, T0 + S).unwrap();
    assert_eq!(lines(&out), vec!["assign 1 a1", "assign 2 a1"]);
    ok(&r);
}

#[test]
fn restore_keeps_assignments_and_requeues_those_of_absent_agents() {
    let agents = vec![
        RestoredAgent { id: "a1".into(), status: AgentStatus::Online, max_sessions: None, idle_since: None },
        RestoredAgent { id: "a2".into(), status: AgentStatus::Offline, max_sessions: None, idle_since: None },
        RestoredAgent { id: "ghost".into(), status: AgentStatus::Online, max_sessions: None, idle_since: None },
    ];
    let s = |id, agent: Option<&str>, responded| RestoredSession {
        conversation: conv(id, "x"),
        enqueued_at: T0 + id as i64,
        agent: agent.map(str::to_owned),
        assigned_at: Some(T0),
        responded,
    };
    let sessions = vec![s(1, Some("a1"), true), s(2, Some("a2"), false), s(3, Some("gone"), true), s(1, None, false)];
    let (r, out) = Engine::restore(cfg(BASE), &agents, sessions, T0 + S).unwrap();
    assert_eq!(
        lines(&out),
        vec!["unassign 2 a2 agent_offline", "unassign 3 gone agent_removed", "assign 2 a1", "queue 3 presales #1"]
    );
    assert_eq!(r.len(), 3);
    assert_eq!(assigned_to(&r, 1).as_deref(), Some("a1"));
    ok(&r);
}

#[test]
fn reload_keeps_conversations_in_flight() {
    let mut r = router();
    online(&mut r, &["a1", "a2"], T0);
    for s in 1..=6 {
        r.arrive(conv(s, "x"), T0 + s as i64).unwrap();
    }
    let on_a2: Vec<SessionId> = r.agent("a2").unwrap().sessions;
    assert_eq!(r.queue_len("presales"), 2);
    // New config: a2 removed, presales renamed to "pre" with a cap raise for a1.
    let text = BASE
        .replace("id = \"presales\"", "id = \"pre\"")
        .replace("presales = 5", "pre = 5")
        .replace("group = \"presales\"", "group = \"pre\"")
        .replace("[[agent]]\nid = \"a2\"\nname = \"小王\"\ngroups = { presales = 3 }\nmax_sessions = 2\n", "")
        .replace("max_sessions = 2", "max_sessions = 4");
    let out = r.reload(cfg(&text), T0 + S).unwrap();
    let l = lines(&out);
    for s in &on_a2 {
        assert!(l.contains(&format!("unassign {s} a2 agent_removed")), "{l:?}");
    }
    // a1 now has room for 2 more; the rest wait in the renamed group, reported with Queue.
    assert_eq!(r.agent("a1").unwrap().active, 4);
    assert_eq!(r.queue_len("pre"), 2);
    assert_eq!(l.iter().filter(|x| x.starts_with("queue") && x.contains(" pre ")).count(), 2, "{l:?}");
    assert_eq!(r.len(), 6);
    ok(&r);
    // A bad config is refused with every error and the running one stays.
    let bad = text.replace("max_sessions = 4", "max_sessions = 0");
    let mut c = cfg(&bad.replace("max_sessions = 0", "max_sessions = 4"));
    c.agents[0].max_sessions = 0;
    c.rules[0].targets[0].group = "nowhere".into();
    let errors = r.reload(c, T0 + 2 * S).unwrap_err();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(r.config().groups[0].id, "pre");
    ok(&r);
}

#[test]
fn explain_lists_every_candidate_and_why() {
    let config = cfg(BASE);
    let event = SampleEvent::from_json(
        r#"{
        "at": "2025-06-18 10:00:00",
        "platform": "taobao", "shop": "tb-main", "buyer": "b1",
        "text": "东西坏了我要退货",
        "agents_status": {
            "a1": { "status": "online", "active": 2 },
            "a3": { "status": "online", "active": 1 }
        }
    }"#,
    )
    .unwrap();
    let text = explain(&config, &RouterState::default(), &event);
    for want in [
        "Category: aftersales — keyword `退货`",
        "not rule #0 投诉优先: category aftersales is not complaint",
        "not rule #1 粉丝专属: fan level 0 < 1",
        "Rule: #2 售后 (priority 0)",
        "Group: aftersales (target #0), policy least_load",
        "+ a3 老李 1/3 proficiency 5: eligible",
        "- a1 小美 2/2 proficiency 2: at cap 2/2",
        "Chosen: a3 — the only agent with room",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    let mut other = event.clone();
    other.shop = "dy-1".into();
    other.agents_status.clear();
    let text = explain(&config, &RouterState::default(), &other);
    assert!(text.contains("- a3 老李 0/3 proficiency 5: not serving this shop"), "{text}");
    assert!(text.contains("- a1 小美 0/2 proficiency 2: offline"), "{text}");
    assert!(text.contains("Waits in the queue"), "{text}");
    let mut broken = config.clone();
    broken.agents[0].max_sessions = 0;
    assert!(explain(&broken, &RouterState::default(), &event).contains("agent[0].max_sessions"));
    let mut bad_time = event.clone();
    bad_time.at = Some(EventTime::Beijing("99999999999-01-01 00:00:00".into()));
    assert!(explain(&config, &RouterState::default(), &bad_time).contains("`at`"));
    assert!(SampleEvent::from_json(r#"{"platform":"x","shop":"y","colour":1}"#).is_err());
}

#[test]
fn explain_speaks_chinese_with_display_names() {
    let config = cfg(BASE);
    let event = SampleEvent::from_json(
        r#"{
        "at": "2025-06-18 10:00:00",
        "platform": "taobao", "shop": "tb-main", "buyer": "b1",
        "text": "东西坏了我要退货",
        "agents_status": {
            "a1": { "status": "online", "active": 2 },
            "a3": { "status": "online", "active": 1 }
        }
    }"#,
    )
    .unwrap();
    let mut names = Names::with_platforms();
    names.shops.insert("tb-main".into(), "淘宝旗舰店".into());
    let text = explain_in(&config, &RouterState::default(), &event, Lang::Zh, &names);
    for want in [
        "会话 0，北京时间 2025-06-18 10:00:00，新会话进线",
        "分类：售后（aftersales） — 命中关键词「退货」",
        "未命中 规则 #0 投诉优先：分类「售后」不是 投诉",
        "规则：#2 售后（优先级 0）",
        "技能组：售后（aftersales）（第 0 个目标），分配策略：负载最低优先",
        "+ a3 老李 1/3 熟练度 5：可接待",
        "- a1 小美 2/2 熟练度 2：已达接待上限 2/2",
        "分配给：老李（a3） — 唯一有空位的客服",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    // No English word of the English rendering is left.
    for english in ["Category", "Rule", "Group", "Chosen", "eligible", "the only agent", "policy"] {
        assert!(!text.contains(english), "{english:?} in:\n{text}");
    }
    // And the English one is what it always was.
    assert_eq!(
        explain_in(&config, &RouterState::default(), &event, Lang::En, &Names::default()),
        explain(&config, &RouterState::default(), &event)
    );
    // A decision's reasons round-trip as data and render the same after storage.
    let d = dry_run(&config, &RouterState::default(), &event).unwrap();
    let stored: Decision = serde_json::from_value(serde_json::to_value(&d).unwrap()).unwrap();
    assert_eq!(stored.reasons.why.code, "why.only_agent");
    assert_eq!(render_decision(&stored, Lang::Zh, &names), render_decision(&d, Lang::Zh, &names));
    // A decision recorded before reason codes still renders (its English text).
    let mut old = serde_json::to_value(&d).unwrap();
    old.as_object_mut().unwrap().remove("reasons");
    let old: Decision = serde_json::from_value(old).unwrap();
    assert!(render_decision(&old, Lang::Zh, &names).contains("— the only agent with room"));
}

#[test]
fn extreme_inputs_do_not_panic() {
    let mut r = router();
    for t in [i64::MIN, -1, 0, i64::MAX - 1, i64::MAX] {
        let _ = r.set_status("a1", AgentStatus::Online, t);
        let mut c = conv(t as u64, &"退".repeat(1000));
        c.vip_level = u32::MAX;
        c.fans_level = u32::MAX;
        c.tags = vec![String::new(), "\u{0}".into()];
        c.last_agent = Some("a1".into());
        c.last_agent_at = Some(i64::MIN);
        let _ = r.arrive(c, t);
        let _ = r.tick(t);
        let _ = r.next_deadline();
        let _ = r.set_max_sessions("a1", Some(u32::MAX), t);
        let _ = r.set_max_sessions("a1", Some(0), t);
        let _ = r.transfer(t as u64, TransferTo::Agent("a1".into()), HandoverNote::default(), t);
    }
    ok(&r);
    let mut c = cfg(BASE);
    c.routing.aging_rate = 1e-300;
    c.rules[0].priority = 1000;
    let mut r = Engine::new(c, 0).unwrap();
    let _ = r.arrive(conv(1, "投诉"), i64::MAX);
    ok(&r);
}
