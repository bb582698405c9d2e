//! Durable, idempotent intake with group commit.

use huiliu_sdk::{Content, DeadLetter, EventKind, InboundEvent, Millis, OrderStage};
use sqlx::any::AnyRow;
use sqlx::{Any, AnyPool, Row, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::{Backend, StoreError, StoreOptions};

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

pub(super) struct Job {
    pub batch: IntakeBatch,
    pub done: oneshot::Sender<Result<Vec<ItemOutcome>, StoreError>>,
}

/// The single intake writer. With group commit, every job waiting when a commit starts joins
/// the next one.
pub(super) async fn writer(pool: AnyPool, backend: Backend, mut rx: mpsc::Receiver<Job>, options: StoreOptions) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        if options.group_commit {
            let mut events = jobs[0].batch.items.len();
            while events < options.max_group_events {
                match rx.try_recv() {
                    Ok(job) => {
                        events += job.batch.items.len();
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
        }
        match write_group(&pool, backend, &jobs).await {
            Ok(results) => {
                for (job, result) in jobs.into_iter().zip(results) {
                    let _ = job.done.send(Ok(result));
                }
            }
            Err(e) if jobs.len() > 1 => {
                // One bad job must not fail its neighbours forever: redo each alone.
                tracing::warn!("group commit of {} intakes failed ({e}); retrying them one by one", jobs.len());
                for job in jobs {
                    let result = write_group(&pool, backend, std::slice::from_ref(&job)).await.map(|mut r| r.remove(0));
                    let _ = job.done.send(result);
                }
            }
            Err(e) => {
                for job in jobs {
                    let _ = job.done.send(Err(StoreError::Corrupt(e.to_string())));
                }
            }
        }
    }
}

async fn write_group(pool: &AnyPool, backend: Backend, jobs: &[Job]) -> Result<Vec<Vec<ItemOutcome>>, StoreError> {
    let mut tx = super::begin_write(pool, backend).await?;
    let mut all = Vec::with_capacity(jobs.len());
    for job in jobs {
        let mut outcomes = Vec::with_capacity(job.batch.items.len());
        for item in &job.batch.items {
            outcomes.push(store_item(&mut tx, item, &job.batch).await?);
        }
        for (platform, shop, dl) in &job.batch.dead_letters {
            store_dead_letter(&mut tx, platform, shop, dl, job.batch.now).await?;
        }
        all.push(outcomes);
    }
    tx.commit().await?;
    Ok(all)
}

/// Inserts the dedupe key; false if it was there already.
async fn claim_key(
    tx: &mut Transaction<'_, Any>,
    platform: &str,
    shop: &str,
    id: &str,
    now: Millis,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO intake_keys (platform, shop, event_id, received_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(platform)
    .bind(shop)
    .bind(id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

async fn store_dead_letter(
    tx: &mut Transaction<'_, Any>,
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
    sqlx::query(
        "INSERT INTO dead_letters (platform, shop, event_id, reason, raw, received_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(platform)
    .bind(shop)
    .bind(dl.event_id.clone())
    .bind(dl.reason.as_str())
    .bind(dl.raw.clone())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Upserts the customer of `event` and returns its id.
async fn upsert_customer(tx: &mut Transaction<'_, Any>, event: &InboundEvent, now: Millis) -> Result<i64, StoreError> {
    let (vip, fans) = match &event.kind {
        EventKind::BuyerMessage(m) => (i64::from(m.vip.member_level), i64::from(m.vip.fans_level)),
        _ => (0, 0),
    };
    let row: AnyRow = sqlx::query(
        "INSERT INTO customers (platform, shop, buyer_id, nick, vip_level, fans_level, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
         ON CONFLICT (platform, shop, buyer_id) DO UPDATE SET \
           nick = COALESCE(excluded.nick, customers.nick), \
           vip_level = CASE WHEN excluded.vip_level > customers.vip_level THEN excluded.vip_level ELSE customers.vip_level END, \
           fans_level = CASE WHEN excluded.fans_level > customers.fans_level THEN excluded.fans_level ELSE customers.fans_level END, \
           updated_at = excluded.updated_at \
         RETURNING id",
    )
    .bind(event.platform.as_str())
    .bind(event.shop.as_str())
    .bind(event.buyer.open_id.as_str())
    .bind(event.buyer.nick.clone())
    .bind(vip)
    .bind(fans)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.try_get::<i64, _>(0)?)
}

/// The open session of a customer as (id, last_message_at).
async fn open_session(tx: &mut Transaction<'_, Any>, customer_id: i64) -> Result<Option<(i64, Millis)>, StoreError> {
    let row = sqlx::query("SELECT id, last_message_at FROM sessions WHERE customer_id = $1 AND state <> 'closed'")
        .bind(customer_id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(match row {
        Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
        None => None,
    })
}

async fn store_item(
    tx: &mut Transaction<'_, Any>,
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
    let customer_id = upsert_customer(tx, e, now).await?;
    match &e.kind {
        EventKind::BuyerMessage(m) => {
            let mut session = open_session(tx, customer_id).await?;
            if let Some((id, last)) = session
                && batch.idle_close_ms > 0
                && now - last >= batch.idle_close_ms
            {
                close_session(tx, id, "idle", now).await?;
                session = None;
            }
            let new_session = session.is_none();
            let session_id = match session {
                Some((id, _)) => id,
                None => {
                    let state = if item.screen == Screen::Restrict { "bot" } else { "queued" };
                    let priority: i64 = if item.screen == Screen::Restrict { -1000 } else { 0 };
                    let row = sqlx::query(
                        "INSERT INTO sessions (customer_id, platform, shop, state, priority, conversation, reply_context, \
                         opened_at, last_message_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id",
                    )
                    .bind(customer_id)
                    .bind(e.platform.as_str())
                    .bind(e.shop.as_str())
                    .bind(state)
                    .bind(priority)
                    .bind(m.conversation.clone())
                    .bind(json(&m.reply_context))
                    .bind(now)
                    .fetch_one(&mut **tx)
                    .await?;
                    row.try_get::<i64, _>(0)?
                }
            };
            let row = sqlx::query(
                "INSERT INTO messages (session_id, customer_id, direction, platform_msg_id, content, text, sealed, created_at) \
                 VALUES ($1, $2, 'in', $3, $4, $5, $6, $7) RETURNING id",
            )
            .bind(session_id)
            .bind(customer_id)
            .bind(e.event_id.as_str())
            .bind(json(&m.content))
            .bind(item.text.as_str())
            .bind(item.sealed.clone())
            .bind(now)
            .fetch_one(&mut **tx)
            .await?;
            let message_id: i64 = row.try_get(0)?;
            sqlx::query(
                "UPDATE sessions SET last_message_at = $1, last_inbound_at = $1, unread = unread + 1, \
                 conversation = COALESCE($2, conversation), reply_context = $3 WHERE id = $4",
            )
            .bind(now)
            .bind(m.conversation.clone())
            .bind(json(&m.reply_context))
            .bind(session_id)
            .execute(&mut **tx)
            .await?;
            Ok(ItemOutcome::Message { customer_id, session_id, message_id, new_session, screen: item.screen })
        }
        EventKind::Order(o) => {
            let stage = stage_name_order(o.stage);
            insert_trade(
                tx,
                customer_id,
                e,
                "order",
                stage,
                Some(&o.order_id),
                None,
                o.amount_fen,
                o.status.as_deref(),
            )
            .await?;
            if o.stage == OrderStage::Paid
                && let Some(fen) = o.amount_fen
            {
                sqlx::query("UPDATE customers SET lifetime_fen = lifetime_fen + $1 WHERE id = $2")
                    .bind(fen)
                    .bind(customer_id)
                    .execute(&mut **tx)
                    .await?;
            }
            let note = format!("订单 {} {}", o.order_id, order_stage_zh(o.stage));
            let session_id = note_in_open_session(tx, customer_id, &note, now).await?;
            Ok(ItemOutcome::Trade { customer_id, session_id })
        }
        EventKind::Refund(r) => {
            let stage = stage_name_refund(r.stage);
            insert_trade(
                tx,
                customer_id,
                e,
                "refund",
                stage,
                r.order_id.as_deref(),
                Some(&r.refund_id),
                r.amount_fen,
                None,
            )
            .await?;
            let note = format!("退款 {} {}", r.refund_id, refund_stage_zh(r.stage));
            let session_id = note_in_open_session(tx, customer_id, &note, now).await?;
            Ok(ItemOutcome::Trade { customer_id, session_id })
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn insert_trade(
    tx: &mut Transaction<'_, Any>,
    customer_id: i64,
    e: &InboundEvent,
    kind: &str,
    stage: &str,
    order_id: Option<&str>,
    refund_id: Option<&str>,
    amount_fen: Option<i64>,
    status: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO trade_events (customer_id, platform, shop, event_id, kind, stage, order_id, refund_id, amount_fen, status, occurred_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(customer_id)
    .bind(e.platform.as_str())
    .bind(e.shop.as_str())
    .bind(e.event_id.as_str())
    .bind(kind)
    .bind(stage)
    .bind(order_id.map(str::to_owned))
    .bind(refund_id.map(str::to_owned))
    .bind(amount_fen)
    .bind(status.map(str::to_owned))
    .bind(e.occurred_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Adds a system message to the customer's open session, if there is one.
async fn note_in_open_session(
    tx: &mut Transaction<'_, Any>,
    customer_id: i64,
    note: &str,
    now: Millis,
) -> Result<Option<i64>, StoreError> {
    let Some((session_id, _)) = open_session(tx, customer_id).await? else { return Ok(None) };
    sqlx::query(
        "INSERT INTO messages (session_id, customer_id, direction, content, text, created_at) VALUES ($1, $2, 'system', $3, $4, $5)",
    )
    .bind(session_id)
    .bind(customer_id)
    .bind(json(&vec![Content::text(note)]))
    .bind(note)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(Some(session_id))
}

pub(super) async fn close_session(
    tx: &mut Transaction<'_, Any>,
    id: i64,
    reason: &str,
    now: Millis,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE sessions SET state = 'closed', closed_at = $1, close_reason = $2 WHERE id = $3 AND state <> 'closed'",
    )
    .bind(now)
    .bind(reason)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
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
