//! The shared store suite: every test runs on SQLite and, when `HUILIU_TEST_POSTGRES_URL`
//! is set (CI sets it), on PostgreSQL too, each in a fresh database.

use std::sync::atomic::{AtomicU32, Ordering};

use huiliu_domain::session::{Delivery, Direction, HandoverNote, SessionFilter, SessionState};
use huiliu_domain::{Actor, Role};
use huiliu_gateway::services::blacklist::{Blacklist, BlacklistError};
use huiliu_sdk::*;
use huiliu_store::blacklist::{BlacklistLevel, EntryState, Proposal};
use huiliu_store::{IntakeBatch, IntakeItem, ItemOutcome, NewReply, Screen, Store, StoreOptions};

const PG_ENV: &str = "HUILIU_TEST_POSTGRES_URL";

/// A fresh store per test: a temp SQLite file, or a new PostgreSQL database.
struct Fixture {
    store: Store,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    Fixture { store: Store::open(&url, StoreOptions::default()).await.unwrap(), _dir: Some(dir) }
}

async fn postgres() -> Option<Fixture> {
    let Ok(base) = std::env::var(PG_ENV) else {
        eprintln!("SKIPPED on PostgreSQL: set {PG_ENV} (e.g. postgres://postgres@127.0.0.1:5432/test) to run");
        return None;
    };
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!("huiliu_t_{}_{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&base).await.expect("connect to PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}"))).execute(&admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin).await.unwrap();
    let (prefix, _) = base.rsplit_once('/').expect("URL with a database name");
    let url = format!("{prefix}/{name}");
    eprintln!("running on PostgreSQL database {name}");
    // Several intake writers side by side, the harder case (the default is one).
    let options = StoreOptions { pg_writers: 4, ..StoreOptions::default() };
    Some(Fixture { store: Store::open(&url, options).await.unwrap(), _dir: None })
}

/// Defines `mod $name { sqlite, postgres }` running `$body(store)` on each backend.
macro_rules! suite {
    ($($name:ident => $body:expr;)*) => {$(
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let f = super::sqlite().await;
                ($body)(f.store.clone()).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(f) = super::postgres().await {
                    ($body)(f.store.clone()).await;
                }
            }
        }
    )*};
}

const T0: Millis = 1_700_000_000_000;
const IDLE: Millis = 30 * 60 * 1000;

fn chat(id: &str, buyer: &str, text: &str) -> InboundEvent {
    InboundEvent {
        platform: "douyin".into(),
        shop: "dy-1".into(),
        event_id: id.into(),
        buyer: Buyer { open_id: buyer.into(), nick: Some(format!("nick-{buyer}")) },
        occurred_at: T0,
        kind: EventKind::BuyerMessage(BuyerMessage {
            conversation: Some(format!("conv-{buyer}")),
            content: vec![Content::text(text)],
            vip: VipHint { member_level: 2, fans_level: 0 },
            reply_context: [("k".to_owned(), "v".to_owned())].into(),
        }),
    }
}

fn item(event: InboundEvent, screen: Screen) -> IntakeItem {
    let text = match &event.kind {
        EventKind::BuyerMessage(m) => fallback_text(&m.content),
        _ => String::new(),
    };
    IntakeItem { event, text, sealed: None, screen }
}

fn batch(items: Vec<IntakeItem>, now: Millis) -> IntakeBatch {
    IntakeBatch { items, dead_letters: vec![], now, idle_close_ms: IDLE }
}

async fn one(store: &Store, event: InboundEvent, screen: Screen, now: Millis) -> ItemOutcome {
    store.intake(batch(vec![item(event, screen)], now)).await.unwrap().remove(0)
}

fn trade(id: &str, buyer: &str, kind: EventKind) -> InboundEvent {
    InboundEvent {
        platform: "douyin".into(),
        shop: "dy-1".into(),
        event_id: id.into(),
        buyer: Buyer { open_id: buyer.into(), nick: None },
        occurred_at: T0,
        kind,
    }
}

fn reply(session_id: i64, client: &str, text: &str) -> NewReply {
    NewReply {
        session_id,
        author: Some("agent-1".into()),
        content: vec![Content::text(text)],
        text: text.into(),
        outgoing: OutgoingMessage {
            staff_account: None,
            client_msg_id: client.into(),
            shop: "dy-1".into(),
            buyer: Buyer { open_id: "b1".into(), nick: None },
            conversation: None,
            reply_context: Default::default(),
            content: vec![Content::text(text)],
        },
    }
}

suite! {
    intake_opens_a_session_and_stores_the_message => |store: Store| async move {
        let ItemOutcome::Message { session_id, customer_id, new_session, .. } =
            one(&store, chat("m1", "b1", "在吗"), Screen::Pass, T0).await else { panic!("not stored") };
        assert!(new_session);
        let s = store.session(session_id).await.unwrap().unwrap();
        assert_eq!(s.state, SessionState::Queued);
        assert_eq!(s.conversation.as_deref(), Some("conv-b1"));
        assert_eq!(s.reply_context.get("k").map(String::as_str), Some("v"));
        assert_eq!((s.unread, s.last_inbound_at, s.last_message_at), (1, Some(T0), T0));
        let c = store.customer(customer_id).await.unwrap().unwrap();
        assert_eq!((c.buyer_id.as_str(), c.vip_level, c.nick.as_deref()), ("b1", 2, Some("nick-b1")));
        let msgs = store.session_messages(session_id).await.unwrap();
        assert_eq!(msgs.len(), 1);
        assert_eq!((msgs[0].direction, msgs[0].text.as_str()), (Direction::In, "在吗"));
        assert_eq!(msgs[0].platform_msg_id.as_deref(), Some("m1"));
        // A second message joins the same session.
        let ItemOutcome::Message { session_id: again, new_session, .. } =
            one(&store, chat("m2", "b1", "亲"), Screen::Pass, T0 + 1000).await else { panic!() };
        assert_eq!((again, new_session), (session_id, false));
        assert_eq!(store.session(session_id).await.unwrap().unwrap().unread, 2);
    };

    redelivery_is_absorbed => |store: Store| async move {
        assert!(matches!(one(&store, chat("m1", "b1", "在吗"), Screen::Pass, T0).await, ItemOutcome::Message { .. }));
        assert_eq!(one(&store, chat("m1", "b1", "在吗"), Screen::Pass, T0 + 5).await, ItemOutcome::Duplicate);
        // Also inside one batch.
        let out = store.intake(batch(vec![item(chat("m2", "b1", "x"), Screen::Pass), item(chat("m2", "b1", "x"), Screen::Pass)], T0)).await.unwrap();
        assert!(matches!(out[0], ItemOutcome::Message { .. }));
        assert_eq!(out[1], ItemOutcome::Duplicate);
        assert_eq!(store.counts().await.unwrap(), (2, 0, 1));
    };

    blocked_buyers_create_nothing => |store: Store| async move {
        assert_eq!(one(&store, chat("m1", "bad", "差评警告"), Screen::Block, T0).await, ItemOutcome::Blocked);
        assert_eq!(one(&store, chat("m1", "bad", "差评警告"), Screen::Block, T0).await, ItemOutcome::Duplicate);
        assert_eq!(store.counts().await.unwrap(), (0, 0, 0));
        assert_eq!(store.customer_id("douyin", "dy-1", "bad").await.unwrap(), None);
    };

    restricted_buyers_are_held_by_the_bot => |store: Store| async move {
        let ItemOutcome::Message { session_id, screen, .. } = one(&store, chat("m1", "r", "x"), Screen::Restrict, T0).await else { panic!() };
        assert_eq!(screen, Screen::Restrict);
        let s = store.session(session_id).await.unwrap().unwrap();
        assert_eq!(s.state, SessionState::Bot);
        assert!(s.priority < 0);
    };

    idle_sessions_close_and_history_spans_them => |store: Store| async move {
        let ItemOutcome::Message { session_id: first, customer_id, .. } = one(&store, chat("m1", "b1", "一"), Screen::Pass, T0).await else { panic!() };
        let ItemOutcome::Message { session_id: second, new_session, .. } =
            one(&store, chat("m2", "b1", "二"), Screen::Pass, T0 + IDLE + 1).await else { panic!() };
        assert!(new_session);
        assert_ne!(first, second);
        let old = store.session(first).await.unwrap().unwrap();
        assert_eq!((old.state, old.close_reason.as_deref()), (SessionState::Closed, Some("idle")));
        one(&store, chat("m3", "b1", "三"), Screen::Pass, T0 + IDLE + 2).await;
        let page1 = store.customer_history(customer_id, None, 2).await.unwrap();
        assert_eq!(page1.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["三", "二"]);
        let page2 = store.customer_history(customer_id, Some(page1[1].id), 2).await.unwrap();
        assert_eq!(page2.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["一"]);
        // The sweeper closes what is idle now.
        let closed = store.close_idle(T0 + 2 * IDLE + 10, T0 + 2 * IDLE + 10).await.unwrap();
        assert_eq!(closed, vec![second]);
    };

    a_known_buyer_is_updated_only_by_what_changed => |store: Store| async move {
        let ItemOutcome::Message { customer_id, session_id, .. } = one(&store, chat("m1", "b1", "在吗"), Screen::Pass, T0).await else { panic!() };
        let level = |vip: u32, fans: u32, nick: Option<&str>, id: &str| {
            let mut e = chat(id, "b1", "亲");
            e.buyer.nick = nick.map(str::to_owned);
            if let EventKind::BuyerMessage(m) = &mut e.kind {
                m.vip = VipHint { member_level: vip, fans_level: fans };
            }
            e
        };
        // Lower levels and no nick change nothing; the message still joins the open session.
        let ItemOutcome::Message { customer_id: same, session_id: open, .. } =
            one(&store, level(1, 0, None, "m2"), Screen::Pass, T0 + 1).await else { panic!() };
        assert_eq!((same, open), (customer_id, session_id));
        let c = store.customer(customer_id).await.unwrap().unwrap();
        assert_eq!((c.nick.as_deref(), c.vip_level, c.fans_level), (Some("nick-b1"), 2, 0));
        // A new nick and higher levels are taken.
        one(&store, level(3, 5, Some("小王"), "m3"), Screen::Pass, T0 + 2).await;
        let c = store.customer(customer_id).await.unwrap().unwrap();
        assert_eq!((c.nick.as_deref(), c.vip_level, c.fans_level), (Some("小王"), 3, 5));
        // A trade event (no nick, no levels) finds the same customer and their open session.
        let paid = trade("o1", "b1", EventKind::Order(OrderEvent { stage: OrderStage::Paid, order_id: "4200000000000000009".into(), amount_fen: Some(100), status: None }));
        assert_eq!(one(&store, paid, Screen::Pass, T0 + 3).await, ItemOutcome::Trade { customer_id, session_id: Some(session_id) });
        let c = store.customer(customer_id).await.unwrap().unwrap();
        assert_eq!((c.nick.as_deref(), c.vip_level), (Some("小王"), 3));
        // A trade for a buyer never seen creates the customer, with no session to note it in.
        let ItemOutcome::Trade { session_id: none, customer_id: new } = one(&store, trade("o2", "b9", EventKind::Order(OrderEvent { stage: OrderStage::Created, order_id: "4200000000000000010".into(), amount_fen: None, status: None })), Screen::Pass, T0 + 4).await else { panic!() };
        assert_eq!(none, None);
        assert_ne!(new, customer_id);
    };

    orders_and_refunds_join_the_customer => |store: Store| async move {
        let ItemOutcome::Message { session_id, customer_id, .. } = one(&store, chat("m1", "b1", "发货了吗"), Screen::Pass, T0).await else { panic!() };
        let paid = trade("o1", "b1", EventKind::Order(OrderEvent { stage: OrderStage::Paid, order_id: "4200000000000000001".into(), amount_fen: Some(19900), status: None }));
        assert_eq!(one(&store, paid, Screen::Pass, T0).await, ItemOutcome::Trade { customer_id, session_id: Some(session_id) });
        assert!(!store.has_open_refund(customer_id).await.unwrap());
        let refund = trade("r1", "b1", EventKind::Refund(RefundEvent { stage: RefundStage::Requested, refund_id: "R9".into(), order_id: Some("4200000000000000001".into()), amount_fen: Some(19900) }));
        one(&store, refund, Screen::Pass, T0 + 1).await;
        assert!(store.has_open_refund(customer_id).await.unwrap());
        let done = trade("r2", "b1", EventKind::Refund(RefundEvent { stage: RefundStage::Succeeded, refund_id: "R9".into(), order_id: None, amount_fen: None }));
        one(&store, done, Screen::Pass, T0 + 2).await;
        assert!(!store.has_open_refund(customer_id).await.unwrap());
        assert_eq!(store.customer(customer_id).await.unwrap().unwrap().lifetime_fen, 19900);
        let trades = store.customer_trades(customer_id, 10).await.unwrap();
        assert_eq!(trades.len(), 3);
        assert_eq!(trades[2].order_id.as_deref(), Some("4200000000000000001"));
        let notes: Vec<_> = store.session_messages(session_id).await.unwrap().into_iter().filter(|m| m.direction == Direction::System).collect();
        assert_eq!(notes.len(), 3);
        assert!(notes[0].text.contains("已付款"), "{}", notes[0].text);
    };

    concurrent_intakes_are_stored_exactly_once => |store: Store| async move {
        let mut tasks = Vec::new();
        for i in 0..200 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                // Every message twice, from different tasks, like a redelivering platform
                // (the same event: the same buyer).
                let id = format!("m{}", i / 2);
                let buyer = format!("b{}", (i / 2) % 17);
                store.intake(batch(vec![item(chat(&id, &buyer, "hi"), Screen::Pass)], T0)).await.unwrap()
            }));
        }
        let mut stored = 0;
        for t in tasks {
            if matches!(t.await.unwrap()[0], ItemOutcome::Message { .. }) {
                stored += 1;
            }
        }
        assert_eq!(stored, 100);
        let (inbound, _, sessions) = store.counts().await.unwrap();
        assert_eq!((inbound, sessions), (100, 17));
    };

    intake_and_assignments_side_by_side_lose_nothing => |store: Store| async move {
        // On PostgreSQL several intake writers commit side by side (a buyer's events always to
        // the same one, an assignment to its session's): a buyer's messages and the assignment
        // of their session may be written by two writers at once.
        let mut sessions = Vec::new();
        for b in 0..20 {
            let ItemOutcome::Message { session_id, .. } = one(&store, chat(&format!("first{b}"), &format!("b{b}"), "在吗"), Screen::Pass, T0).await else { panic!() };
            sessions.push(session_id);
        }
        let mut tasks = Vec::new();
        for i in 0..200 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let event = chat(&format!("m{i}"), &format!("b{}", i % 20), "发货了吗");
                assert!(matches!(one(&store, event, Screen::Pass, T0 + 1).await, ItemOutcome::Message { new_session: false, .. }));
            }));
        }
        for &s in &sessions {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store.assign(s, Some("presales"), &format!("a{}", s % 3), 0, None, T0 + 2).await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(store.counts().await.unwrap(), (220, 0, 20));
        for &s in &sessions {
            let session = store.session(s).await.unwrap().unwrap();
            assert_eq!(session.agent, Some(format!("a{}", s % 3)), "session {s}");
            assert_eq!(store.session_messages(s).await.unwrap().len(), 11, "session {s}");
        }
    };

    other_writers_keep_their_turn_during_flat_out_intake => |store: Store| async move {
        // SQLite: intake runs on its own thread and connection; replies, closes and the rest
        // write through the pool. Every one of them must commit while intake never pauses.
        let ItemOutcome::Message { session_id, .. } = one(&store, chat("first", "b0", "在吗"), Screen::Pass, T0).await else { panic!() };
        let mut intakes = Vec::new();
        for w in 0..16 {
            let store = store.clone();
            intakes.push(tokio::spawn(async move {
                for i in 0..60 {
                    let id = format!("w{w}-{i}");
                    let out = store.intake(batch(vec![item(chat(&id, &format!("b{}", i % 40), "hi"), Screen::Pass)], T0)).await.unwrap();
                    assert!(matches!(out[0], ItemOutcome::Message { .. }), "{out:?}");
                }
            }));
        }
        for i in 0..40 {
            store.enqueue_reply(&reply(session_id, &format!("c{i}"), "好的"), T0 + i).await.unwrap();
        }
        for t in intakes {
            t.await.unwrap();
        }
        let (inbound, outbound, _) = store.counts().await.unwrap();
        assert_eq!((inbound, outbound), (16 * 60 + 1, 40));
    };

    routing_reads_what_it_needs_in_one_query => |store: Store| async move {
        let ItemOutcome::Message { session_id, customer_id, .. } = one(&store, chat("m1", "b1", "发货了吗"), Screen::Pass, T0).await else { panic!() };
        one(&store, chat("m2", "b1", "在吗"), Screen::Pass, T0 + 1).await;
        let i = store.routing_inputs(session_id).await.unwrap().unwrap();
        assert_eq!(i.state, SessionState::Queued);
        assert_eq!((i.platform.as_str(), i.shop.as_str(), i.buyer_id.as_str()), ("douyin", "dy-1", "b1"));
        assert_eq!((i.customer_id, i.vip_level, i.fans_level), (customer_id, 2, 0));
        assert_eq!(i.first_text, "发货了吗", "the first buyer message, not the latest");
        assert!(!i.has_open_refund && i.last_agent.is_none());
        // The same answers as the separate reads it replaces.
        assert_eq!(i.first_text, store.first_inbound_text(session_id).await.unwrap());
        // On an SQLite file one session's read runs on the routing reader's own connection, the
        // open sessions' on the pool: both read the same.
        assert_eq!(store.open_routing_inputs().await.unwrap().get(&session_id), Some(&i));
        let refund = trade("r1", "b1", EventKind::Refund(RefundEvent { stage: RefundStage::Requested, refund_id: "R9".into(), order_id: None, amount_fen: Some(100) }));
        one(&store, refund, Screen::Pass, T0 + 2).await;
        assert!(store.routing_inputs(session_id).await.unwrap().unwrap().has_open_refund);
        let done = trade("r2", "b1", EventKind::Refund(RefundEvent { stage: RefundStage::Succeeded, refund_id: "R9".into(), order_id: None, amount_fen: Some(100) }));
        one(&store, done, Screen::Pass, T0 + 3).await;
        assert!(!store.routing_inputs(session_id).await.unwrap().unwrap().has_open_refund, "a finished refund is not open");
        store.assign(session_id, Some("presales"), "a1", 0, None, T0 + 4).await.unwrap();
        let i = store.routing_inputs(session_id).await.unwrap().unwrap();
        assert_eq!((i.state, i.last_agent.as_deref(), i.last_agent_at), (SessionState::Assigned, Some("a1"), Some(T0 + 4)));
        assert_eq!(store.open_routing_inputs().await.unwrap().get(&session_id), Some(&i), "a commit is seen at once");
        assert!(store.routing_inputs(session_id + 1000).await.unwrap().is_none());
    };

    dead_letters_are_kept_once => |store: Store| async move {
        let dl = DeadLetter { reason: "bad json".into(), event_id: Some("x1".into()), raw: b"{nope".to_vec() };
        for _ in 0..2 {
            let b = IntakeBatch { items: vec![], dead_letters: vec![("douyin".into(), "dy-1".into(), dl.clone())], now: T0, idle_close_ms: IDLE };
            store.intake(b).await.unwrap();
        }
        assert_eq!(store.dead_letter_counts().await.unwrap(), vec![("douyin".to_owned(), 1)]);
    };

    outbox_lifecycle => |store: Store| async move {
        let ItemOutcome::Message { session_id, .. } = one(&store, chat("m1", "b1", "在吗"), Screen::Pass, T0).await else { panic!() };
        let (message_id, outbox_id) = store.enqueue_reply(&reply(session_id, "c-1", "在的"), T0 + 10).await.unwrap();
        let s = store.session(session_id).await.unwrap().unwrap();
        assert_eq!((s.first_response_at, s.unread), (Some(T0 + 10), 0));
        assert_eq!(store.message(message_id).await.unwrap().unwrap().delivery, Some(Delivery::Pending));
        let due = store.due_outbox(T0 + 10, 10).await.unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].outgoing.client_msg_id, "c-1");
        // Only one claimant wins an attempt; the lease hides it until it expires.
        assert!(store.claim_outbox(outbox_id, T0 + 10, T0 + 70).await.unwrap());
        assert!(!store.claim_outbox(outbox_id, T0 + 10, T0 + 70).await.unwrap());
        assert!(store.due_outbox(T0 + 20, 10).await.unwrap().is_empty());
        store.outbox_retry_at(outbox_id, T0 + 1000, "rate limited", T0 + 20).await.unwrap();
        assert_eq!(store.next_outbox_due().await.unwrap(), Some(T0 + 1000));
        assert!(store.claim_outbox(outbox_id, T0 + 1000, T0 + 2000).await.unwrap());
        store.outbox_failed(outbox_id, "code 40001: 参数错误", T0 + 1001).await.unwrap();
        let m = store.message(message_id).await.unwrap().unwrap();
        assert_eq!((m.delivery, m.delivery_error.as_deref()), (Some(Delivery::Failed), Some("code 40001: 参数错误")));
        assert!(store.outbox_manual_retry(outbox_id, T0 + 2000).await.unwrap());
        assert!(!store.outbox_manual_retry(outbox_id, T0 + 2000).await.unwrap());
        let item = store.outbox_item(outbox_id).await.unwrap().unwrap();
        assert_eq!((item.state.as_str(), item.attempts), ("pending", 0));
        assert!(store.claim_outbox(outbox_id, T0 + 2000, T0 + 3000).await.unwrap());
        store.outbox_sent(outbox_id, Some("p-77"), T0 + 2001).await.unwrap();
        let m = store.message(message_id).await.unwrap().unwrap();
        assert_eq!((m.delivery, m.platform_msg_id.as_deref()), (Some(Delivery::Sent), Some("p-77")));
        assert_eq!(store.outbox_counts().await.unwrap(), vec![("sent".to_owned(), 1)]);
        // A client message id is unique: the same reply cannot be queued twice.
        assert!(store.enqueue_reply(&reply(session_id, "c-1", "again"), T0 + 3000).await.is_err());
    };

    a_reply_sent_part_by_part_keeps_its_progress_and_ids => |store: Store| async move {
        let ItemOutcome::Message { session_id, .. } = one(&store, chat("m1", "b1", "在吗"), Screen::Pass, T0).await else { panic!() };
        let (message_id, outbox_id) = store.enqueue_reply(&reply(session_id, "c-9", "在的"), T0 + 10).await.unwrap();
        assert!(store.claim_outbox(outbox_id, T0 + 10, T0 + 70).await.unwrap());
        store.outbox_part_sent(outbox_id, 1, Some("p-1"), T0 + 100, T0 + 20).await.unwrap();
        store.outbox_part_sent(outbox_id, 2, None, T0 + 100, T0 + 21).await.unwrap();
        // The lease was renewed with each element; a retry after a failure resumes at element 3.
        assert!(store.due_outbox(T0 + 99, 10).await.unwrap().is_empty());
        store.outbox_retry_at(outbox_id, T0 + 200, "rate limited", T0 + 22).await.unwrap();
        let item = store.outbox_item(outbox_id).await.unwrap().unwrap();
        assert_eq!(item.parts_sent, 2);
        assert!(store.claim_outbox(outbox_id, T0 + 200, T0 + 300).await.unwrap());
        store.outbox_part_sent(outbox_id, 3, Some("p-3"), T0 + 300, T0 + 201).await.unwrap();
        store.outbox_sent(outbox_id, None, T0 + 202).await.unwrap();
        let m = store.message(message_id).await.unwrap().unwrap();
        assert_eq!((m.delivery, m.platform_msg_id.as_deref()), (Some(Delivery::Sent), Some("p-1,p-3")));
    };

    retention_deletes_what_the_policy_no_longer_keeps => |store: Store| async move {
        const DAY: Millis = 86_400_000;
        // b1's conversation closed on day 0; b2's is open; both were sealed.
        let sealed = |e| IntakeItem { sealed: Some(vec![1, 2, 3]), ..item(e, Screen::Pass) };
        let out = store.intake(batch(vec![sealed(chat("m1", "b1", "电话****")), sealed(chat("m2", "b2", "在吗"))], T0)).await.unwrap();
        let (ItemOutcome::Message { session_id: old, .. }, ItemOutcome::Message { session_id: open, .. }) = (&out[0], &out[1]) else { panic!() };
        let (old, open) = (*old, *open);
        let (_, outbox_id) = store.enqueue_reply(&reply(old, "c-r", "好的"), T0 + 1).await.unwrap();
        store.outbox_sent(outbox_id, Some("p-1"), T0 + 2).await.unwrap();
        store.close(old, "agent", T0 + 3).await.unwrap();
        let dl = DeadLetter { reason: "bad json".into(), event_id: None, raw: b"{13812345678".to_vec() };
        store.intake(IntakeBatch { items: vec![], dead_letters: vec![("douyin".into(), "dy-1".into(), dl)], now: T0, idle_close_ms: IDLE }).await.unwrap();
        store.audit("lead-l", "reveal", "message 1", "dispute", T0).await.unwrap();

        // Day 10 with the defaults: only the sealed originals (7 days) go.
        let policy = huiliu_store::Retention::default();
        let day10 = store.sweep(&policy, T0 + 10 * DAY).await.unwrap();
        assert_eq!((day10.sealed, day10.sessions, day10.messages, day10.dead_letters, day10.outbox), (2, 0, 0, 0, 0));
        // Day 40: dead letters and the sent outbox row (30 days) too.
        let day40 = store.sweep(&policy, T0 + 40 * DAY).await.unwrap();
        assert_eq!((day40.dead_letters, day40.outbox, day40.sessions), (1, 1, 0));
        assert!(store.dead_letter_counts().await.unwrap().is_empty());
        // Day 200: the closed conversation (180 days) with its messages, and its buyer; the open
        // one stays whatever its age. The audit log stays (730 days).
        let day200 = store.sweep(&policy, T0 + 200 * DAY).await.unwrap();
        assert_eq!((day200.sessions, day200.messages, day200.customers, day200.audit), (1, 2, 1, 0));
        assert!(store.session(old).await.unwrap().is_none());
        assert!(store.session(open).await.unwrap().is_some());
        assert_eq!(store.counts().await.unwrap(), (1, 0, 1));
        // 0 keeps forever.
        let forever = huiliu_store::Retention { conversations_days: 0, sealed_days: 0, dead_letters_days: 0, outbox_days: 0, audit_days: 0 };
        assert_eq!(store.sweep(&forever, T0 + 9_999 * DAY).await.unwrap(), huiliu_store::SweepReport::default());
        let day800 = store.sweep(&policy, T0 + 800 * DAY).await.unwrap();
        assert_eq!(day800.audit, 1);
    };

    assignment_transfer_and_search => |store: Store| async move {
        let ItemOutcome::Message { session_id: s1, customer_id, .. } = one(&store, chat("m1", "b1", "x"), Screen::Pass, T0).await else { panic!() };
        let ItemOutcome::Message { session_id: s2, .. } = one(&store, chat("m2", "b2", "y"), Screen::Pass, T0 + 100).await else { panic!() };
        store.assign(s1, Some("presales"), "alice", 10, None, T0 + 5).await.unwrap();
        store.set_waiting(s2, SessionState::Queued, Some("aftersales"), 5, Some("aftersales")).await.unwrap();
        store.record_transfer(s1, Some("alice"), Some("bob"), None, &HandoverNote { problem: "尺码".into(), tried: "发了尺码表".into(), expectation: "换大一号".into() }, T0 + 6).await.unwrap();
        store.record_decision(s1, &serde_json::json!({"rule": "vip", "chosen": "alice"}), T0 + 5).await.unwrap();
        assert_eq!(store.decisions(s1).await.unwrap()[0]["chosen"], "alice");
        assert_eq!(store.transfers(s1).await.unwrap()[0].note.expectation, "换大一号");
        assert_eq!(store.customer(customer_id).await.unwrap().unwrap().last_agent.as_deref(), Some("alice"));
        let by_agent = store.search_sessions(&SessionFilter { agent: Some("alice".into()), ..Default::default() }).await.unwrap();
        assert_eq!(by_agent.iter().map(|s| s.id).collect::<Vec<_>>(), vec![s1]);
        let queued = store.search_sessions(&SessionFilter { state: Some(SessionState::Queued), platform: Some("douyin".into()), ..Default::default() }).await.unwrap();
        assert_eq!(queued.iter().map(|s| s.id).collect::<Vec<_>>(), vec![s2]);
        let window = store.search_sessions(&SessionFilter { from: Some(T0 + 50), to: Some(T0 + 200), shop: Some("dy-1".into()), ..Default::default() }).await.unwrap();
        assert_eq!(window.iter().map(|s| s.id).collect::<Vec<_>>(), vec![s2]);
        assert_eq!(store.open_sessions().await.unwrap().len(), 2);
        store.close(s1, "agent", T0 + 9).await.unwrap();
        assert_eq!(store.open_sessions().await.unwrap().len(), 1);
    };

    blacklist_review_flow_and_roles => |store: Store| async move {
        let bl = Blacklist::load(store.clone()).await.unwrap();
        let agent = Actor::new("agent-a", Role::Agent);
        let lead = Actor::new("lead-l", Role::Lead);
        let other_lead = Actor::new("lead-m", Role::Lead);
        let p = Proposal { platform: "douyin".into(), shop: Some("dy-1".into()), buyer_id: "troll".into(), level: BlacklistLevel::Block,
            reason: "以差评威胁索要赔偿".into(), evidence: vec!["m1".into(), "m2".into()], expires_at: None };
        // An agent must bring evidence.
        let bare = Proposal { evidence: vec![], ..p.clone() };
        assert!(matches!(bl.propose(&agent, &bare, T0).await, Err(BlacklistError::Invalid(_))));
        let id = bl.propose(&agent, &p, T0).await.unwrap();
        // Proposed entries do not act.
        assert_eq!(bl.screen(&chat("x", "troll", "差评"), T0), Screen::Pass);
        // An agent cannot approve; nor can a lead approve their own proposal.
        assert!(matches!(bl.approve(&agent, id, None, T0).await, Err(BlacklistError::Forbidden(_))));
        let own = bl.propose(&lead, &Proposal { buyer_id: "other".into(), ..p.clone() }, T0).await.unwrap();
        assert!(matches!(bl.approve(&lead, own, None, T0).await, Err(BlacklistError::Forbidden(_))));
        let approved = bl.approve(&lead, id, Some("证据确凿"), T0 + 1).await.unwrap();
        assert_eq!((approved.state, approved.decided_by.as_deref()), (EntryState::Approved, Some("lead-l")));
        assert_eq!(bl.screen(&chat("x", "troll", "差评"), T0 + 2), Screen::Block);
        // Scoped to its shop.
        let mut elsewhere = chat("x", "troll", "差评");
        elsewhere.shop = "dy-2".into();
        assert_eq!(bl.screen(&elsewhere, T0 + 2), Screen::Pass);
        // Approving twice is refused; rejecting an approved entry too.
        assert!(matches!(bl.approve(&other_lead, id, None, T0).await, Err(BlacklistError::WrongState { .. })));
        assert!(matches!(bl.reject(&other_lead, id, None, T0).await, Err(BlacklistError::WrongState { .. })));
        bl.reject(&other_lead, own, Some("证据不足"), T0 + 3).await.unwrap();
        // Removal stops it acting.
        assert!(matches!(bl.remove(&agent, id, None, T0).await, Err(BlacklistError::Forbidden(_))));
        bl.remove(&other_lead, id, Some("已和解"), T0 + 4).await.unwrap();
        assert_eq!(bl.screen(&chat("x", "troll", "差评"), T0 + 5), Screen::Pass);
        // Every change is audited with who.
        let trail = store.audit_trail(&format!("blacklist:{id}")).await.unwrap();
        let actions: Vec<(&str, &str)> = trail.iter().map(|(_, who, what, _)| (who.as_str(), what.as_str())).collect();
        assert_eq!(actions, [("agent-a", "blacklist.propose"), ("lead-l", "blacklist.approve"), ("lead-m", "blacklist.remove")]);
        assert_eq!(store.audit_trail(&format!("blacklist:{own}")).await.unwrap().last().unwrap().2, "blacklist.reject");
    };

    blacklist_entries_expire_and_levels_combine => |store: Store| async move {
        let bl = Blacklist::load(store.clone()).await.unwrap();
        let agent = Actor::new("agent-a", Role::Agent);
        let admin = Actor::new("admin", Role::Admin);
        let flag = Proposal { platform: "douyin".into(), shop: None, buyer_id: "b".into(), level: BlacklistLevel::Flag,
            reason: "多次恶意退货".into(), evidence: vec!["m9".into()], expires_at: None };
        let restrict = Proposal { level: BlacklistLevel::Restrict, expires_at: Some(T0 + 1000), ..flag.clone() };
        let f = bl.propose(&agent, &flag, T0).await.unwrap();
        let r = bl.propose(&agent, &restrict, T0).await.unwrap();
        bl.approve(&admin, f, None, T0).await.unwrap();
        bl.approve(&admin, r, None, T0).await.unwrap();
        // All shops of the platform; the highest level wins.
        assert_eq!(bl.screen(&chat("x", "b", "hi"), T0 + 10), Screen::Restrict);
        // Past its expiry the restriction stops acting even before the sweeper runs…
        assert_eq!(bl.screen(&chat("x", "b", "hi"), T0 + 1000), Screen::Flag);
        // …and the sweeper records it.
        assert_eq!(bl.expire(T0 + 1000).await.unwrap(), 1);
        assert_eq!(bl.list(Some(EntryState::Expired)).await.unwrap().iter().map(|e| e.id).collect::<Vec<_>>(), vec![r]);
        assert_eq!(store.audit_trail(&format!("blacklist:{r}")).await.unwrap().last().unwrap().1, "system");
        // A reload (another node, a restart) sees the same.
        let again = Blacklist::load(store.clone()).await.unwrap();
        assert_eq!(again.screen(&chat("x", "b", "hi"), T0 + 2000), Screen::Flag);
    };

    tokens_persist => |store: Store| async move {
        let g = TokenGrant { access_token: "a1".into(), expires_at: T0, refresh_token: Some("r1".into()), refresh_expires_at: None };
        store.save_token("jd", "jd-1", &g, T0).await.unwrap();
        let g2 = TokenGrant { access_token: "a2".into(), expires_at: T0 + 1, refresh_token: None, refresh_expires_at: None };
        store.save_token("jd", "jd-1", &g2, T0).await.unwrap();
        let all = store.tokens().await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!((all[0].grant.access_token.as_str(), all[0].grant.refresh_token.as_deref()), ("a2", Some("r1")));
    };
}

#[tokio::test]
async fn sqlite_data_survives_reopen_and_migrations_run_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    {
        let store = Store::open(&url, StoreOptions::default()).await.unwrap();
        one(&store, chat("m1", "b1", "x"), Screen::Pass, T0).await;
    }
    let store = Store::open(&url, StoreOptions { group_commit: false, ..StoreOptions::default() }).await.unwrap();
    assert_eq!(store.counts().await.unwrap(), (1, 0, 1));
    assert_eq!(one(&store, chat("m1", "b1", "x"), Screen::Pass, T0).await, ItemOutcome::Duplicate);
}

/// Under intake that never pauses, the SQLite WAL still starts over from its beginning: each
/// restart bumps the checkpoint sequence number in the WAL header (bytes 12..16, big-endian),
/// and the file stays near `wal_restart_frames` pages. Before, each checkpoint ended behind the
/// writer's last commit and the WAL grew by every page written (1.7 GB in a load run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_wal_starts_over_under_steady_intake() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let restart = 256; // frames of 4 KiB: 1 MiB
    let store =
        Store::open(&url, StoreOptions { wal_restart_frames: restart, ..StoreOptions::default() }).await.unwrap();
    let wal = dir.path().join("t.db-wal");
    let text = "我的订单怎么还没发货，麻烦帮我看一下物流。".repeat(20);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(4);
    let mut tasks = Vec::new();
    for w in 0..16 {
        let (store, text) = (store.clone(), text.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while std::time::Instant::now() < deadline {
                let event = chat(&format!("w{w}-{n}"), &format!("b{}", (n * 16 + w) % 500), &text);
                store.intake(batch(vec![item(event, Screen::Pass)], T0)).await.unwrap();
                n += 1;
            }
            n
        }));
    }
    let mut largest = 0;
    while std::time::Instant::now() < deadline {
        largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut stored = 0;
    for t in tasks {
        stored += t.await.unwrap();
    }
    let header = std::fs::read(&wal).unwrap();
    let restarts = u32::from_be_bytes(header[12..16].try_into().unwrap());
    eprintln!("{stored} messages in 4 s; the WAL started over {restarts} times, at most {largest} bytes");
    assert!(restarts >= 2, "the WAL started over {restarts} times under {stored} messages (largest {largest} bytes)");
}

/// A database written by a newer Huiliu is refused, with both versions named, and nothing in it
/// changes; `schema_status` says what would run without running it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused_and_the_status_is_read_without_changes() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let status = huiliu_store::schema_status(&url).await.unwrap();
    assert!(status.applied.is_empty() && !status.pending.is_empty());
    assert!(!dir.path().join("t.db").exists(), "reading the status created no database");
    let binary = huiliu_store::schema_version();
    drop(Store::open(&url, StoreOptions::default()).await.unwrap());
    let status = huiliu_store::schema_status(&url).await.unwrap();
    assert_eq!((status.applied.last().copied(), status.pending.len(), status.too_new()), (Some(binary), 0, None));

    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, 'from the future', 0)")
        .bind(binary + 1)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let err = Store::open(&url, StoreOptions::default()).await.unwrap_err();
    assert!(
        matches!(err, huiliu_store::StoreError::SchemaTooNew { database, binary: b } if database == binary + 1 && b == binary)
    );
    assert!(err.to_string().contains("newer"), "{err}");
    assert_eq!(huiliu_store::schema_status(&url).await.unwrap().too_new(), Some(binary + 1));
}

/// `fixtures/store-v4-demo.db` is what the previous release (e4fdab5, schema 4) wrote running
/// `huiliu demo --rate 4 --duration 15`: today's binary migrates it in place and reads every row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_previous_release_database_migrates_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huiliu.db");
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/store-v4-demo.db"), &path).unwrap();
    let url = format!("sqlite://{}", path.display());
    let before = huiliu_store::schema_status(&url).await.unwrap();
    assert_eq!(before.applied.last().copied(), Some(4), "the fixture is the previous release's schema");
    assert!(!before.pending.is_empty());

    let store = Store::open(&url, StoreOptions::default()).await.unwrap();
    let after = huiliu_store::schema_status(&url).await.unwrap();
    assert!(after.pending.is_empty() && after.applied.last().copied() == Some(huiliu_store::schema_version()));
    assert_eq!(store.counts().await.unwrap(), (60, 102, 48), "every row survives");
    // The old outbox payloads (no staff_account, no parts_sent) read as today's rows.
    let first = store.outbox_item(1).await.unwrap().expect("outbox row 1");
    assert_eq!((first.state.as_str(), first.parts_sent, first.outgoing.staff_account.clone()), ("sent", 0, None));
    let sessions = store.search_sessions(&SessionFilter::default()).await.unwrap();
    assert!(!sessions.is_empty());
    let detail = store.session_messages(sessions[0].id).await.unwrap();
    assert!(!detail.is_empty(), "messages read back");
}

suite! {
    // The handle time routing's wait estimate learns: per group, the conversations closed since
    // a time that an agent had, with their total assignment-to-close time (the last assignment's).
    closed_handling_per_group => |store: Store| async move {
        let mut open = Vec::new();
        for (i, (group, held_s)) in [("presales", 100), ("presales", 300), ("aftersales", 60), ("presales", 0)].into_iter().enumerate() {
            let ItemOutcome::Message { session_id, .. } =
                one(&store, chat(&format!("h{i}"), &format!("hb{i}"), "在吗"), Screen::Pass, T0).await else { panic!() };
            store.assign(session_id, Some(group), "a1", 0, None, T0 + 1_000).await.unwrap();
            if held_s > 0 {
                store.close(session_id, "agent", T0 + 1_000 + held_s * 1_000).await.unwrap();
            } else {
                open.push(session_id);
            }
        }
        // Closed before the window, never assigned: not counted.
        let ItemOutcome::Message { session_id: never, .. } = one(&store, chat("h9", "hb9", "x"), Screen::Pass, T0).await else { panic!() };
        store.close(never, "idle", T0 + 50_000).await.unwrap();
        let got = store.closed_handling(T0).await.unwrap();
        let got: Vec<(String, i64, i64)> = got.into_iter().map(|g| (g.group, g.closed, g.total_ms)).collect();
        assert_eq!(got, [("aftersales".into(), 1, 60_000), ("presales".into(), 2, 400_000)], "open: {open:?}");
        assert!(store.closed_handling(T0 + 200_000).await.unwrap().iter().all(|g| g.group != "aftersales"), "the window");
    };
}

/// `huiliu check` reads the same figures without opening the store (no migration, read-only),
/// and says nothing is learned when the database does not exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_handling_is_read_without_opening_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    assert_eq!(huiliu_store::peek_closed_handling(&url, T0).await.unwrap(), None);
    assert!(!dir.path().join("t.db").exists(), "nothing created");
    let store = Store::open(&url, StoreOptions::default()).await.unwrap();
    let ItemOutcome::Message { session_id, .. } = one(&store, chat("p1", "pb1", "在吗"), Screen::Pass, T0).await
    else {
        panic!()
    };
    store.assign(session_id, Some("presales"), "a1", 0, None, T0).await.unwrap();
    store.close(session_id, "agent", T0 + 42_000).await.unwrap();
    let peeked = huiliu_store::peek_closed_handling(&url, T0).await.unwrap().unwrap();
    assert_eq!(peeked, store.closed_handling(T0).await.unwrap());
    assert_eq!((peeked[0].closed, peeked[0].total_ms), (1, 42_000));
}

/// The knowledge-base bot's figures (store/src/bot.rs): counted per answer and hand-over, the
/// conversations settled from the stored sessions (did the buyer write after the bot's last
/// answer?), each counted once even when two settle at the same time (two nodes), the unmatched
/// questions kept short and erased with their buyer.
mod bot_figures {
    use super::*;
    use huiliu_store::{BotCountKind, BuyerRef};

    async fn session(store: &Store, id: &str, buyer: &str, at: Millis) -> (i64, i64) {
        let ItemOutcome::Message { session_id, customer_id, .. } =
            one(store, chat(id, buyer, "在吗"), Screen::Pass, at).await
        else {
            panic!("not stored")
        };
        (session_id, customer_id)
    }

    fn count(f: &huiliu_store::BotFigures, kind: BotCountKind, name: &str) -> i64 {
        f.counts.iter().filter(|c| c.kind == kind && c.name == name).map(|c| c.n).sum()
    }

    suite! {
        counted_once_and_settled_from_the_session => |store: Store| async move {
            let (s1, _) = session(&store, "m1", "b1", T0).await;
            let (s2, _) = session(&store, "m2", "b2", T0).await;
            let (s3, c3) = session(&store, "m3", "b3", T0).await;
            store.bot_answered(s1, "douyin", "ship", true, T0).await.unwrap();
            store.bot_answered(s2, "douyin", "ship", true, T0).await.unwrap();
            let long = "衣服起球了怎么办".repeat(40);
            store.bot_handed_over(s3, c3, "douyin", "low_confidence", Some(&long), T0 + 1).await.unwrap();
            // b2 writes again and asks for a person: not resolved.
            session(&store, "m4", "b2", T0 + 2).await;
            store.bot_handed_over(s2, 2, "douyin", "asked_for_agent", None, T0 + 2).await.unwrap();
            assert_eq!(store.bot_figures(10).await.unwrap().awaiting, 1);

            // Two nodes settle at once: b1's conversation is resolved once.
            let (a, b) = tokio::join!(store.bot_settle(T0, T0 + 600_000), store.bot_settle(T0, T0 + 600_000));
            let (a, b) = (a.unwrap(), b.unwrap());
            assert_eq!(a.resolved.len() + b.resolved.len(), 1, "{a:?} {b:?}");
            assert!(a.unresolved.is_empty() && b.unresolved.is_empty());

            let f = store.bot_figures(10).await.unwrap();
            assert_eq!(count(&f, BotCountKind::Answered, "ship"), 2);
            assert_eq!(count(&f, BotCountKind::Conversation, ""), 2);
            assert_eq!(count(&f, BotCountKind::Resolved, ""), 1);
            assert_eq!(count(&f, BotCountKind::Unresolved, ""), 1);
            assert_eq!(count(&f, BotCountKind::Handover, "low_confidence"), 1);
            assert_eq!(count(&f, BotCountKind::Handover, "asked_for_agent"), 1);
            assert_eq!(f.awaiting, 0);
            assert_eq!(f.counts.iter().map(|c| c.since).min(), Some(T0));
            assert_eq!(f.unanswered.len(), 1);
            assert_eq!(f.unanswered[0].text.chars().count(), huiliu_store::UNANSWERED_CHARS, "kept short");
            assert_eq!((f.unanswered[0].times, f.unanswered[0].last_at), (1, T0 + 1));

            // A conversation answered again after the buyer wrote: settled on the new answer.
            let (s5, _) = session(&store, "m5", "b5", T0).await;
            store.bot_answered(s5, "douyin", "ship", true, T0).await.unwrap();
            session(&store, "m6", "b5", T0 + 5).await;
            assert_eq!(store.bot_settle(T0 + 4, T0 + 4).await.unwrap(), huiliu_store::Settled::default(), "b5's message waits for the bot, not long enough to count as unanswered");
            store.bot_answered(s5, "douyin", "return", false, T0 + 6).await.unwrap();
            let settled = store.bot_settle(T0 + 6, T0 + 6).await.unwrap();
            assert_eq!((settled.resolved.len(), settled.unresolved.len()), (1, 0));

            // The buyer's unmatched question goes with their erasure.
            let b3 = BuyerRef { platform: "douyin".into(), shop: "dy-1".into(), buyer_id: "b3".into() };
            let export = store.export_buyer(&b3).await.unwrap().unwrap();
            assert_eq!(export["bot_unanswered_questions"].as_array().map(Vec::len), Some(1), "{export}");
            store.erase_buyer(&b3, "admin", "asked", T0 + 10).await.unwrap().unwrap();
            assert!(store.bot_figures(10).await.unwrap().unanswered.is_empty());
        };
    }
}

mod erasure {
    use super::*;
    use huiliu_store::BuyerRef;

    const PHRASE: &str = "紫色羊毛大衣袖口开线了想退";

    fn b1() -> BuyerRef {
        BuyerRef { platform: "douyin".into(), shop: "dy-1".into(), buyer_id: "b1".into() }
    }

    /// Stores b1's conversation (a phrase, a reply, an order) and b2's; exports b1; erases b1.
    async fn export_then_erase(store: &Store) {
        let ItemOutcome::Message { session_id, .. } = one(store, chat("m1", "b1", PHRASE), Screen::Pass, T0).await
        else {
            panic!()
        };
        one(store, chat("m2", "b2", "在吗"), Screen::Pass, T0).await;
        one(
            store,
            trade(
                "t1",
                "b1",
                EventKind::Order(OrderEvent {
                    stage: OrderStage::Paid,
                    order_id: "O-1".into(),
                    amount_fen: Some(100),
                    status: None,
                }),
            ),
            Screen::Pass,
            T0,
        )
        .await;
        store.enqueue_reply(&reply(session_id, "c-e", "亲，袖口开线可以退"), T0 + 1).await.unwrap();

        let export = store.export_buyer(&b1()).await.unwrap().expect("b1 has data");
        let text = export.to_string();
        assert!(
            text.contains(PHRASE)
                && text.contains("nick-b1")
                && text.contains("O-1")
                && text.contains("袖口开线可以退"),
            "{export:#}"
        );
        assert!(!text.contains("在吗"), "only b1's data: {export:#}");

        let report =
            store.erase_buyer(&b1(), "admin", "buyer asked (ticket 42)", T0 + 5).await.unwrap().expect("erased");
        assert_eq!(
            (report.sessions, report.messages, report.order_events, report.outbox_rows),
            (1, 3, 1, 1),
            "the message, the reply and the order notice"
        );
        assert!(store.export_buyer(&b1()).await.unwrap().is_none(), "nothing left");
        assert!(store.erase_buyer(&b1(), "admin", "again", T0 + 6).await.unwrap().is_none());
        let trail = store.audit_trail(&b1().subject()).await.unwrap();
        assert_eq!(trail.len(), 1, "{trail:?}");
        assert!(trail[0].1 == "admin" && trail[0].3.contains("ticket 42"), "{trail:?}");
        assert_eq!(store.counts().await.unwrap(), (1, 0, 1), "b2 untouched");
    }

    /// After the erasure: the old push redelivered is still a duplicate; a new one starts fresh.
    async fn writes_again(store: &Store) {
        // The old push redelivered is still a duplicate; a new message starts fresh.
        let again = store.intake(batch(vec![item(chat("m1", "b1", PHRASE), Screen::Pass)], T0 + 7)).await.unwrap();
        assert!(matches!(again[0], ItemOutcome::Duplicate), "{again:?}");
        let ItemOutcome::Message { new_session, .. } = one(store, chat("m3", "b1", "你好"), Screen::Pass, T0 + 8).await
        else {
            panic!()
        };
        assert!(new_session);
    }

    suite! {
        export_and_erase_one_buyer => |store: Store| async move {
            export_then_erase(&store).await;
            writes_again(&store).await;
        };
    }

    /// On SQLite the erased text is not left in the file's free pages nor in the WAL.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_erased_text_survives_in_the_sqlite_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = Store::open(&format!("sqlite://{}", path.display()), StoreOptions::default()).await.unwrap();
        export_then_erase(&store).await;
        for file in ["t.db", "t.db-wal"] {
            let bytes = std::fs::read(dir.path().join(file)).unwrap_or_default();
            for needle in [PHRASE, "nick-b1", "袖口开线可以退"] {
                let needle = needle.as_bytes();
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle),
                    "`{}` survives in {file}",
                    String::from_utf8_lossy(needle)
                );
            }
        }
    }
}

/// Several nodes: a lease is held by one node at a time under a rising epoch, and a routing write
/// under a stale epoch, above the agent's cap or of a session already claimed writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_leases_fence_stale_holders_and_caps_hold_under_concurrent_assignments() {
    use huiliu_store::{Fence, FencedAssign, StoreError};
    let Some(f) = postgres().await else { return };
    let store = f.store.clone();
    let session = |o: ItemOutcome| match o {
        ItemOutcome::Message { session_id, .. } => session_id,
        other => panic!("{other:?}"),
    };
    let mut sessions = Vec::new();
    for i in 0..12 {
        sessions.push(session(one(&store, chat(&format!("m{i}"), &format!("b{i}"), "在吗"), Screen::Pass, T0).await));
    }
    // Node a takes the lease; b cannot while it is held.
    assert_eq!(store.lease_acquire("routing", "a", 400).await.unwrap(), Some(1));
    assert_eq!(store.lease_acquire("routing", "b", 400).await.unwrap(), None);
    let a = Fence { lease: "routing".into(), holder: "a".into(), epoch: 1 };
    assert!(store.lease_renew(&a, 400).await.unwrap());
    let assign = |sid: i64, agent: &'static str, cap: u32| FencedAssign {
        session_id: sid,
        group: Some("pre"),
        agent,
        priority: 0,
        decision: None,
        cap: Some(cap),
        now: T0,
    };
    store.assign_fenced(&a, &assign(sessions[0], "x", 1)).await.unwrap();
    let over = store.assign_fenced(&a, &assign(sessions[1], "x", 1)).await.unwrap_err();
    assert!(matches!(over, StoreError::OverCap { held: 1, cap: 1, .. }), "{over}");
    let claimed = store.assign_fenced(&a, &assign(sessions[0], "y", 5)).await.unwrap_err();
    assert!(matches!(claimed, StoreError::Claimed(_)), "{claimed}");
    // Unassigned under the lease, the session can be claimed by another agent.
    assert!(store.unassign_fenced(&a, sessions[0], "x").await.unwrap());
    store.assign_fenced(&a, &assign(sessions[0], "y", 5)).await.unwrap();

    // Ten assignments to one agent with a cap of 3, at once: exactly 3 are taken.
    let tries = sessions[2..].iter().map(|&sid| {
        let (store, a) = (store.clone(), a.clone());
        tokio::spawn(async move { store.assign_fenced(&a, &assign(sid, "z", 3)).await })
    });
    let results: Vec<_> = futures_util::future::join_all(tries).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 3, "{results:?}");
    assert!(results.iter().filter_map(|r| r.as_ref().err()).all(|e| matches!(e, StoreError::OverCap { .. })));

    // a stops renewing; b takes over under epoch 2; every write of a is refused from then on.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(store.lease_acquire("routing", "b", 5_000).await.unwrap(), Some(2));
    assert!(!store.lease_renew(&a, 400).await.unwrap(), "a stale holder cannot renew");
    let fenced = store.assign_fenced(&a, &assign(sessions[1], "w", 5)).await.unwrap_err();
    assert!(matches!(&fenced, StoreError::Fenced(m) if m.contains("held by b under epoch 2")), "{fenced}");
    let fenced = store.unassign_fenced(&a, sessions[0], "y").await.unwrap_err();
    assert!(matches!(fenced, StoreError::Fenced(_)), "{fenced}");
    let decision = serde_json::json!({});
    let fenced = store
        .queue_fenced(&a, sessions[1], SessionState::Queued, Some("pre"), 0, None, &decision, T0)
        .await
        .unwrap_err();
    assert!(matches!(fenced, StoreError::Fenced(_)), "{fenced}");
    assert_eq!(store.session(sessions[1]).await.unwrap().unwrap().agent, None, "nothing written");
    let b = Fence { lease: "routing".into(), holder: "b".into(), epoch: 2 };
    store.assign_fenced(&b, &assign(sessions[1], "w", 5)).await.unwrap();
    // A clean release lets the next node in at once, under a higher epoch.
    store.lease_release(&b).await.unwrap();
    assert_eq!(store.lease_acquire("routing", "a", 5_000).await.unwrap(), Some(3));
    let view = store.cluster_view().await.unwrap();
    assert_eq!(view.leases.len(), 1);
    assert_eq!((view.leases[0].holder.as_str(), view.leases[0].epoch), ("a", 3));
}
