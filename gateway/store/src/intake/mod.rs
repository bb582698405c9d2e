//! Durable, idempotent intake with group commit.
//!
//! What one item does to the database is written once ([`store_item`]) over a two-method
//! executor ([`IntakeTx`]); two writers run it:
//! - [`thread`]: SQLite files (the embedded default). A dedicated OS thread owns its own
//!   `rusqlite` connection and runs every statement of a whole group on it, with cached
//!   prepared statements — no hand-off to another thread per statement.
//! - [`pooled`]: PostgreSQL (and in-memory SQLite, which only the pool's connections can see),
//!   through sqlx on a pooled connection.
//!
//! Both take whole groups from one channel: every job waiting when a commit starts joins it.

mod pooled;
mod thread;

pub(crate) use pooled::close_session;
pub(super) use pooled::writer as pooled_writer;
pub(super) use thread::spawn as spawn_thread_writer;

use huiliu_sdk::{Content, DeadLetter, EventKind, InboundEvent, Millis, OrderStage};
use tokio::sync::{mpsc, oneshot};

use super::StoreError;

/// What the screening stage decided for an event's buyer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// Normal.
    Pass,
    /// Marked for the agent; otherwise normal.
    Flag,
    /// Auto-replies only: the session is held by the bot, lowest priority, no agent work.
    Restrict,
    /// Dropped: only the dedupe key is kept (so redeliveries stay absorbed).
    Block,
}

/// One screened, masked event ready to store.
#[derive(Debug, Clone)]
pub struct IntakeItem {
    /// The event, its content already masked.
    pub event: InboundEvent,
    /// The masked text fallback of a buyer message.
    pub text: String,
    /// The sealed original text, when the mask stage keeps one.
    pub sealed: Option<Vec<u8>>,
    pub screen: Screen,
}

/// Everything one push (or channel batch) brought.
#[derive(Debug, Clone, Default)]
pub struct IntakeBatch {
    pub items: Vec<IntakeItem>,
    /// (platform, shop, dead letter).
    pub dead_letters: Vec<(String, String, DeadLetter)>,
    /// The gateway's clock at arrival.
    pub now: Millis,
    /// An open session idle this long is closed and a new one opened.
    pub idle_close_ms: Millis,
}

/// What happened to one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Already stored before: nothing changed.
    Duplicate,
    /// Blocked buyer: nothing but the dedupe key stored.
    Blocked,
    /// A buyer message stored in a session.
    Message { customer_id: i64, session_id: i64, message_id: i64, new_session: bool, screen: Screen },
    /// An order/refund event stored on the customer (and noted in the open session if any).
    Trade { customer_id: i64, session_id: Option<i64> },
}

/// One unit of work for the writer, answered when its group committed.
pub(crate) enum Job {
    /// A push's (or channel batch's) events.
    Intake { batch: IntakeBatch, done: oneshot::Sender<Result<Vec<ItemOutcome>, StoreError>> },
    /// A routing assignment: committed in the same groups as intake, so opening conversations
    /// flat out does not cost a commit (an fsync) each.
    Assign { assignment: Assignment, done: oneshot::Sender<Result<(), StoreError>> },
}

/// What a committed job did.
pub(crate) enum Done {
    Intake(Vec<ItemOutcome>),
    Assigned,
}

impl Job {
    /// How much of a group this job fills.
    fn weight(&self) -> usize {
        match self {
            Job::Intake { batch, .. } => batch.items.len().max(1),
            Job::Assign { .. } => 1,
        }
    }

    /// Hands the job its result.
    fn answer(self, result: Result<Done, StoreError>) {
        match self {
            Job::Intake { done, .. } => {
                let _ = done.send(result.and_then(|d| match d {
                    Done::Intake(outcomes) => Ok(outcomes),
                    Done::Assigned => Err(StoreError::Corrupt("an intake was answered as an assignment".into())),
                }));
            }
            Job::Assign { done, .. } => {
                let _ = done.send(result.map(|_| ()));
            }
        }
    }
}

/// An agent took a session, with the routing decision that chose them (JSON).
#[derive(Debug, Clone)]
pub(crate) struct Assignment {
    pub session_id: i64,
    pub group: Option<String>,
    pub agent: String,
    pub priority: i64,
    pub decision: Option<String>,
    pub now: Millis,
}

/// Takes the next group off the channel: the first job (waiting for it) and, with group commit,
/// every job already queued, up to `max_events` events.
fn group(first: Job, rx: &mut mpsc::Receiver<Job>, group_commit: bool, max_events: usize) -> Vec<Job> {
    let mut events = first.weight();
    let mut jobs = vec![first];
    while group_commit && events < max_events {
        match rx.try_recv() {
            Ok(job) => {
                events += job.weight();
                jobs.push(job);
            }
            Err(_) => break,
        }
    }
    jobs
}

/// Answers a group's jobs: each its outcomes on success; on failure a lone job gets the error,
/// and a group is handed back to be redone one job at a time (one bad job must not fail its
/// neighbours forever).
fn settle(jobs: Vec<Job>, result: Result<Vec<Done>, StoreError>) -> Option<Vec<Job>> {
    match result {
        Ok(results) => {
            for (job, result) in jobs.into_iter().zip(results) {
                job.answer(Ok(result));
            }
            None
        }
        Err(e) if jobs.len() > 1 => {
            tracing::warn!("group commit of {} intakes failed ({e}); retrying them one by one", jobs.len());
            Some(jobs)
        }
        Err(e) => {
            for job in jobs {
                job.answer(Err(StoreError::Corrupt(e.to_string())));
            }
            None
        }
    }
}

/// A bound value, typed even when null (PostgreSQL refuses a text null in a bigint column).
/// Borrowed: the thread writer binds it without a copy.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Val<'a> {
    Int(Option<i64>),
    Text(Option<&'a str>),
    Blob(Option<&'a [u8]>),
}

impl<'a> From<i64> for Val<'a> {
    fn from(v: i64) -> Self {
        Val::Int(Some(v))
    }
}

impl<'a> From<Option<i64>> for Val<'a> {
    fn from(v: Option<i64>) -> Self {
        Val::Int(v)
    }
}

impl<'a> From<&'a str> for Val<'a> {
    fn from(v: &'a str) -> Self {
        Val::Text(Some(v))
    }
}

impl<'a> From<Option<&'a str>> for Val<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Val::Text(v)
    }
}

impl<'a> From<Option<&'a [u8]>> for Val<'a> {
    fn from(v: Option<&'a [u8]>) -> Self {
        Val::Blob(v)
    }
}

/// One open write transaction, as intake needs it: statements run in order inside it.
pub(crate) trait IntakeTx {
    /// Runs a statement; the number of rows it changed.
    async fn execute(&mut self, sql: &'static str, params: &[Val<'_>]) -> Result<u64, StoreError>;
    /// The first row's first integer columns (up to [`INTS`]; a null or missing column is `None`).
    async fn ints(&mut self, sql: &'static str, params: &[Val<'_>]) -> Result<Option<Ints>, StoreError>;
}

/// How many integer columns [`IntakeTx::ints`] reads.
pub(crate) const INTS: usize = 4;
/// A row of up to [`INTS`] integers.
pub(crate) type Ints = [Option<i64>; INTS];

// The statements (one SQL text for both backends: `$n` parameters, bound by position).
const CLAIM_KEY: &str =
    "INSERT INTO intake_keys (platform, shop, event_id, received_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";
const INSERT_DEAD_LETTER: &str =
    "INSERT INTO dead_letters (platform, shop, event_id, reason, raw, received_at) VALUES ($1, $2, $3, $4, $5, $6)";
/// The buyer's customer row, whether what the event says of them changes it, and their open
/// session: one read in the common case (a known buyer writing again), where an upsert would
/// dirty the customer's page on every message.
const FIND_CUSTOMER: &str = "SELECT c.id, \
       CAST(CASE WHEN ($4 IS NOT NULL AND (c.nick IS NULL OR c.nick <> $4)) OR $5 > c.vip_level OR $6 > c.fans_level \
            THEN 1 ELSE 0 END AS BIGINT), \
       s.id, s.last_message_at \
     FROM customers c LEFT JOIN sessions s ON s.customer_id = c.id AND s.state <> 'closed' \
     WHERE c.platform = $1 AND c.shop = $2 AND c.buyer_id = $3";
/// A new buyer: their id, or no row when another writer inserted them since [`FIND_CUSTOMER`]
/// (then [`UPSERT_CUSTOMER`]). A customer inserted here has no session yet, which saves the
/// look for one.
const INSERT_CUSTOMER: &str = "INSERT INTO customers (platform, shop, buyer_id, nick, vip_level, fans_level, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (platform, shop, buyer_id) DO NOTHING RETURNING id";
/// A buyer another writer inserted meanwhile (an upsert: it may have changed since).
const UPSERT_CUSTOMER: &str = "INSERT INTO customers (platform, shop, buyer_id, nick, vip_level, fans_level, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
     ON CONFLICT (platform, shop, buyer_id) DO UPDATE SET \
       nick = COALESCE(excluded.nick, customers.nick), \
       vip_level = CASE WHEN excluded.vip_level > customers.vip_level THEN excluded.vip_level ELSE customers.vip_level END, \
       fans_level = CASE WHEN excluded.fans_level > customers.fans_level THEN excluded.fans_level ELSE customers.fans_level END, \
       updated_at = excluded.updated_at \
     RETURNING id";
/// A known buyer whose nick or levels changed (`updated_at`: the profile's last change).
const UPDATE_CUSTOMER: &str = "UPDATE customers SET nick = COALESCE($1, nick), \
       vip_level = CASE WHEN $2 > vip_level THEN $2 ELSE vip_level END, \
       fans_level = CASE WHEN $3 > fans_level THEN $3 ELSE fans_level END, \
       updated_at = $4 WHERE id = $5";
const OPEN_SESSION: &str = "SELECT id, last_message_at FROM sessions WHERE customer_id = $1 AND state <> 'closed'";
/// A session opened by a buyer's message: the message's own touch ([`TOUCH_SESSION`]) written
/// with it.
const INSERT_SESSION: &str = "INSERT INTO sessions (customer_id, platform, shop, state, priority, conversation, reply_context, \
     opened_at, last_message_at, last_inbound_at, unread) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $8, 1) RETURNING id";
const INSERT_MESSAGE: &str = "INSERT INTO messages (session_id, customer_id, direction, platform_msg_id, content, text, sealed, created_at) \
     VALUES ($1, $2, 'in', $3, $4, $5, $6, $7) RETURNING id";
const TOUCH_SESSION: &str = "UPDATE sessions SET last_message_at = $1, last_inbound_at = $1, unread = unread + 1, \
     conversation = COALESCE($2, conversation), reply_context = $3 WHERE id = $4";
const INSERT_TRADE: &str = "INSERT INTO trade_events (customer_id, platform, shop, event_id, kind, stage, order_id, refund_id, amount_fen, status, occurred_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
const ADD_LIFETIME: &str = "UPDATE customers SET lifetime_fen = lifetime_fen + $1 WHERE id = $2";
const INSERT_NOTE: &str = "INSERT INTO messages (session_id, customer_id, direction, content, text, created_at) VALUES ($1, $2, 'system', $3, $4, $5)";
const INSERT_DECISION: &str = "INSERT INTO routing_decisions (session_id, at, decision) VALUES ($1, $2, $3)";
const ASSIGN_SESSION: &str = "UPDATE sessions SET state = 'assigned', agent = $1, skill_group = COALESCE($2, skill_group), \
     priority = $3, assigned_at = $4 WHERE id = $5 AND state <> 'closed'";
const LAST_AGENT: &str = "UPDATE customers SET last_agent = $1, last_agent_at = $2 WHERE id = (SELECT customer_id FROM sessions WHERE id = $3)";
pub(crate) const CLOSE_SESSION: &str =
    "UPDATE sessions SET state = 'closed', closed_at = $1, close_reason = $2 WHERE id = $3 AND state <> 'closed'";

/// Writes every job of a group inside the caller's transaction; one result per job.
async fn write_jobs<T: IntakeTx>(tx: &mut T, jobs: &[Job]) -> Result<Vec<Done>, StoreError> {
    let mut all = Vec::with_capacity(jobs.len());
    for job in jobs {
        all.push(match job {
            Job::Intake { batch, .. } => {
                let mut outcomes = Vec::with_capacity(batch.items.len());
                for item in &batch.items {
                    outcomes.push(store_item(tx, item, batch).await?);
                }
                for (platform, shop, dl) in &batch.dead_letters {
                    store_dead_letter(tx, platform, shop, dl, batch.now).await?;
                }
                Done::Intake(outcomes)
            }
            Job::Assign { assignment, .. } => {
                assign(tx, assignment).await?;
                Done::Assigned
            }
        });
    }
    Ok(all)
}

/// Records an assignment: the decision, the session's agent, the customer's last agent.
async fn assign<T: IntakeTx>(tx: &mut T, a: &Assignment) -> Result<(), StoreError> {
    if let Some(decision) = &a.decision {
        tx.execute(INSERT_DECISION, &[a.session_id.into(), a.now.into(), decision.as_str().into()]).await?;
    }
    // The customer row before the session row, the order intake locks them in: on PostgreSQL
    // another writer may be storing this buyer's message at the same time.
    tx.execute(LAST_AGENT, &[a.agent.as_str().into(), a.now.into(), a.session_id.into()]).await?;
    let session =
        [a.agent.as_str().into(), a.group.as_deref().into(), a.priority.into(), a.now.into(), a.session_id.into()];
    tx.execute(ASSIGN_SESSION, &session).await?;
    Ok(())
}

/// Inserts the dedupe key; false if it was there already.
async fn claim_key<T: IntakeTx>(
    tx: &mut T,
    platform: &str,
    shop: &str,
    id: &str,
    now: Millis,
) -> Result<bool, StoreError> {
    Ok(tx.execute(CLAIM_KEY, &[platform.into(), shop.into(), id.into(), now.into()]).await? == 1)
}

async fn store_dead_letter<T: IntakeTx>(
    tx: &mut T,
    platform: &str,
    shop: &str,
    dl: &DeadLetter,
    now: Millis,
) -> Result<(), StoreError> {
    if let Some(id) = &dl.event_id
        && !claim_key(tx, platform, shop, &format!("dead:{id}"), now).await?
    {
        return Ok(());
    }
    let params = [
        platform.into(),
        shop.into(),
        dl.event_id.as_deref().into(),
        dl.reason.as_str().into(),
        Val::Blob(Some(&dl.raw)),
        now.into(),
    ];
    tx.execute(INSERT_DEAD_LETTER, &params).await?;
    Ok(())
}

/// The id a `RETURNING id` statement gave back.
async fn returning_id<T: IntakeTx>(tx: &mut T, sql: &'static str, params: &[Val<'_>]) -> Result<i64, StoreError> {
    match tx.ints(sql, params).await? {
        Some([Some(id), ..]) => Ok(id),
        _ => Err(StoreError::Corrupt("an insert returned no id".into())),
    }
}

/// The open session of a customer as (id, last_message_at).
async fn open_session<T: IntakeTx>(tx: &mut T, customer_id: i64) -> Result<Option<(i64, Millis)>, StoreError> {
    Ok(match tx.ints(OPEN_SESSION, &[customer_id.into()]).await? {
        Some([Some(id), last, ..]) => Some((id, last.unwrap_or(0))),
        _ => None,
    })
}

/// The event's buyer as a customer id (created or brought up to date) and their open session
/// as (id, last_message_at).
async fn customer_of<T: IntakeTx>(
    tx: &mut T,
    e: &InboundEvent,
    now: Millis,
) -> Result<(i64, Option<(i64, Millis)>), StoreError> {
    let (vip, fans) = match &e.kind {
        EventKind::BuyerMessage(m) => (i64::from(m.vip.member_level), i64::from(m.vip.fans_level)),
        _ => (0, 0),
    };
    let nick = e.buyer.nick.as_deref();
    let key = [e.platform.as_str().into(), e.shop.as_str().into(), e.buyer.open_id.as_str().into()];
    let find = [key[0], key[1], key[2], nick.into(), vip.into(), fans.into()];
    match tx.ints(FIND_CUSTOMER, &find).await? {
        Some([Some(id), changed, session, last]) => {
            if changed == Some(1) {
                tx.execute(UPDATE_CUSTOMER, &[nick.into(), vip.into(), fans.into(), now.into(), id.into()]).await?;
            }
            Ok((id, session.map(|s| (s, last.unwrap_or(0)))))
        }
        _ => {
            let customer = [key[0], key[1], key[2], nick.into(), vip.into(), fans.into(), now.into()];
            if let Some([Some(id), ..]) = tx.ints(INSERT_CUSTOMER, &customer).await? {
                return Ok((id, None));
            }
            // Another writer (or node) inserted the buyer, and may have opened a session, since
            // the read.
            let id = returning_id(tx, UPSERT_CUSTOMER, &customer).await?;
            Ok((id, open_session(tx, id).await?))
        }
    }
}

async fn store_item<T: IntakeTx>(
    tx: &mut T,
    item: &IntakeItem,
    batch: &IntakeBatch,
) -> Result<ItemOutcome, StoreError> {
    let e = &item.event;
    let now = batch.now;
    if !claim_key(tx, &e.platform, &e.shop, &e.event_id, now).await? {
        return Ok(ItemOutcome::Duplicate);
    }
    if item.screen == Screen::Block {
        return Ok(ItemOutcome::Blocked);
    }
    let (customer_id, mut session) = customer_of(tx, e, now).await?;
    match &e.kind {
        EventKind::BuyerMessage(m) => {
            if let Some((id, last)) = session
                && batch.idle_close_ms > 0
                && now - last >= batch.idle_close_ms
            {
                tx.execute(CLOSE_SESSION, &[now.into(), "idle".into(), id.into()]).await?;
                session = None;
            }
            let new_session = session.is_none();
            let reply_context = json(&m.reply_context);
            let session_id = match session {
                Some((id, _)) => id,
                None => {
                    let (state, priority) =
                        if item.screen == Screen::Restrict { ("bot", -1000) } else { ("queued", 0) };
                    let params = [
                        customer_id.into(),
                        e.platform.as_str().into(),
                        e.shop.as_str().into(),
                        state.into(),
                        priority.into(),
                        m.conversation.as_deref().into(),
                        reply_context.as_str().into(),
                        now.into(),
                    ];
                    returning_id(tx, INSERT_SESSION, &params).await?
                }
            };
            let content = json(&m.content);
            let message = [
                session_id.into(),
                customer_id.into(),
                e.event_id.as_str().into(),
                content.as_str().into(),
                item.text.as_str().into(),
                item.sealed.as_deref().into(),
                now.into(),
            ];
            let message_id = returning_id(tx, INSERT_MESSAGE, &message).await?;
            if !new_session {
                let touch =
                    [now.into(), m.conversation.as_deref().into(), reply_context.as_str().into(), session_id.into()];
                tx.execute(TOUCH_SESSION, &touch).await?;
            }
            Ok(ItemOutcome::Message { customer_id, session_id, message_id, new_session, screen: item.screen })
        }
        EventKind::Order(o) => {
            let trade = Trade {
                kind: "order",
                stage: stage_name_order(o.stage),
                order_id: Some(&o.order_id),
                refund_id: None,
                amount_fen: o.amount_fen,
                status: o.status.as_deref(),
            };
            insert_trade(tx, customer_id, e, &trade).await?;
            if o.stage == OrderStage::Paid
                && let Some(fen) = o.amount_fen
            {
                tx.execute(ADD_LIFETIME, &[fen.into(), customer_id.into()]).await?;
            }
            let note = format!("订单 {} {}", o.order_id, order_stage_zh(o.stage));
            let session_id = note_in_session(tx, customer_id, session, &note, now).await?;
            Ok(ItemOutcome::Trade { customer_id, session_id })
        }
        EventKind::Refund(r) => {
            let trade = Trade {
                kind: "refund",
                stage: stage_name_refund(r.stage),
                order_id: r.order_id.as_deref(),
                refund_id: Some(&r.refund_id),
                amount_fen: r.amount_fen,
                status: None,
            };
            insert_trade(tx, customer_id, e, &trade).await?;
            let note = format!("退款 {} {}", r.refund_id, refund_stage_zh(r.stage));
            let session_id = note_in_session(tx, customer_id, session, &note, now).await?;
            Ok(ItemOutcome::Trade { customer_id, session_id })
        }
    }
}

/// An order or refund event's row.
struct Trade<'a> {
    kind: &'static str,
    stage: &'static str,
    order_id: Option<&'a str>,
    refund_id: Option<&'a str>,
    amount_fen: Option<i64>,
    status: Option<&'a str>,
}

async fn insert_trade<T: IntakeTx>(
    tx: &mut T,
    customer_id: i64,
    e: &InboundEvent,
    t: &Trade<'_>,
) -> Result<(), StoreError> {
    let params = [
        customer_id.into(),
        e.platform.as_str().into(),
        e.shop.as_str().into(),
        e.event_id.as_str().into(),
        t.kind.into(),
        t.stage.into(),
        t.order_id.into(),
        t.refund_id.into(),
        t.amount_fen.into(),
        t.status.into(),
        e.occurred_at.into(),
    ];
    tx.execute(INSERT_TRADE, &params).await?;
    Ok(())
}

/// Adds a system message to the customer's open session, if there is one.
async fn note_in_session<T: IntakeTx>(
    tx: &mut T,
    customer_id: i64,
    session: Option<(i64, Millis)>,
    note: &str,
    now: Millis,
) -> Result<Option<i64>, StoreError> {
    let Some((session_id, _)) = session else { return Ok(None) };
    let content = json(&vec![Content::text(note)]);
    tx.execute(INSERT_NOTE, &[session_id.into(), customer_id.into(), content.as_str().into(), note.into(), now.into()])
        .await?;
    Ok(Some(session_id))
}

pub(super) fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

fn stage_name_order(s: OrderStage) -> &'static str {
    match s {
        OrderStage::Created => "created",
        OrderStage::Paid => "paid",
        OrderStage::Shipped => "shipped",
        OrderStage::Received => "received",
        OrderStage::Closed => "closed",
    }
}

fn order_stage_zh(s: OrderStage) -> &'static str {
    match s {
        OrderStage::Created => "已下单",
        OrderStage::Paid => "已付款",
        OrderStage::Shipped => "已发货",
        OrderStage::Received => "已确认收货",
        OrderStage::Closed => "已关闭",
    }
}

fn stage_name_refund(s: huiliu_sdk::RefundStage) -> &'static str {
    use huiliu_sdk::RefundStage::*;
    match s {
        Requested => "requested",
        Agreed => "agreed",
        Succeeded => "succeeded",
        Closed => "closed",
    }
}

fn refund_stage_zh(s: huiliu_sdk::RefundStage) -> &'static str {
    use huiliu_sdk::RefundStage::*;
    match s {
        Requested => "买家申请退款",
        Agreed => "卖家同意退款",
        Succeeded => "退款成功",
        Closed => "退款关闭",
    }
}
