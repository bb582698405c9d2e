//! Customers: profiles (tags, notes), their orders and refunds.
//!
//! Every SQL string built at run time here is assembled from constant column lists and `$n`
//! placeholders only; all values are bound, never formatted in (hence `AssertSqlSafe`).

use sqlx::Row;

use super::intake::json;
use super::reader::RoutingRow;
use super::{Store, StoreError};
use huiliu_domain::session::{Customer, SessionState, TradeRecord};
use huiliu_sdk::Millis;

impl Store {
    /// A customer.
    pub async fn customer(&self, id: i64) -> Result<Option<Customer>, StoreError> {
        let row = sqlx::query(
            "SELECT id, platform, shop, buyer_id, nick, vip_level, fans_level, tags, notes, lifetime_fen, last_agent, last_agent_at \
             FROM customers WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        let Some(r) = row else { return Ok(None) };
        let tags: String = r.try_get(7)?;
        Ok(Some(Customer {
            id: r.try_get(0)?,
            platform: r.try_get(1)?,
            shop: r.try_get(2)?,
            buyer_id: r.try_get(3)?,
            nick: r.try_get(4)?,
            vip_level: r.try_get(5)?,
            fans_level: r.try_get(6)?,
            tags: serde_json::from_str(&tags).unwrap_or_default(),
            notes: r.try_get(8)?,
            lifetime_fen: r.try_get(9)?,
            last_agent: r.try_get(10)?,
            last_agent_at: r.try_get(11)?,
        }))
    }

    /// A customer's id by (platform, shop, buyer id).
    pub async fn customer_id(&self, platform: &str, shop: &str, buyer_id: &str) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar("SELECT id FROM customers WHERE platform = $1 AND shop = $2 AND buyer_id = $3")
            .bind(platform)
            .bind(shop)
            .bind(buyer_id)
            .fetch_optional(self.pool())
            .await?)
    }

    /// Sets a customer's tags and notes.
    pub async fn set_customer_profile(&self, id: i64, tags: &[String], notes: &str) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query("UPDATE customers SET tags = $1, notes = $2 WHERE id = $3")
            .bind(json(&tags))
            .bind(notes)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// A customer's recent orders and refunds, newest first.
    pub async fn customer_trades(&self, customer_id: i64, limit: i64) -> Result<Vec<TradeRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT event_id, kind, stage, order_id, refund_id, amount_fen, status, occurred_at FROM trade_events \
             WHERE customer_id = $1 ORDER BY occurred_at DESC, id DESC LIMIT $2",
        )
        .bind(customer_id)
        .bind(limit.clamp(1, 200))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TradeRecord {
                    event_id: r.try_get(0)?,
                    kind: r.try_get(1)?,
                    stage: r.try_get(2)?,
                    order_id: r.try_get(3)?,
                    refund_id: r.try_get(4)?,
                    amount_fen: r.try_get(5)?,
                    status: r.try_get(6)?,
                    occurred_at: r.try_get(7)?,
                })
            })
            .collect()
    }

    /// Whether the customer has a refund requested or agreed and not yet finished.
    /// What routing needs to place a new conversation, in one read: the session's state and
    /// shop, its customer, its first buyer message, whether the customer has refund events at
    /// all (only then is [`Store::has_open_refund`] worth asking). `None` when the session is
    /// gone. (Four reads before; at thousands of new conversations a second they were most of
    /// routing's cost.)
    pub async fn routing_inputs(&self, session_id: i64) -> Result<Option<RoutingInputs>, StoreError> {
        // On an SQLite file, its own reader thread (`reader.rs`); else the pool.
        let row = match &self.reader {
            Some(reader) => reader.routing_row(session_id).await?,
            None => sqlx::query(ROUTING_INPUTS_ONE)
                .bind(session_id)
                .fetch_optional(self.pool())
                .await?
                .map(|r| routing_row(&r))
                .transpose()?,
        };
        match row {
            Some(r) => Ok(Some(self.routing_inputs_from(r).await?)),
            None => Ok(None),
        }
    }

    /// [`Store::routing_inputs`] of every open session, by session id, in one read: what a
    /// routing engine rebuilt from the store (a restart, a cluster takeover) needs, without a
    /// query per session.
    pub async fn open_routing_inputs(&self) -> Result<std::collections::HashMap<i64, RoutingInputs>, StoreError> {
        let rows = sqlx::query(ROUTING_INPUTS_OPEN).fetch_all(self.pool()).await?;
        let mut out = std::collections::HashMap::with_capacity(rows.len());
        for r in &rows {
            out.insert(r.try_get::<i64, _>(12)?, self.routing_inputs_from(routing_row(r)?).await?);
        }
        Ok(out)
    }

    async fn routing_inputs_from(&self, r: RoutingRow) -> Result<RoutingInputs, StoreError> {
        Ok(RoutingInputs {
            state: SessionState::parse(&r.state)
                .ok_or_else(|| StoreError::Corrupt(format!("session state `{}`", r.state)))?,
            platform: r.platform,
            shop: r.shop,
            customer_id: r.customer_id,
            buyer_id: r.buyer_id,
            vip_level: r.vip_level,
            fans_level: r.fans_level,
            tags: serde_json::from_str(&r.tags).unwrap_or_default(),
            last_agent: r.last_agent,
            last_agent_at: r.last_agent_at,
            first_text: r.first_text,
            has_open_refund: r.has_refunds == 1 && self.has_open_refund(r.customer_id).await?,
        })
    }

    pub async fn has_open_refund(&self, customer_id: i64) -> Result<bool, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT refund_id, stage FROM trade_events WHERE customer_id = $1 AND kind = 'refund' ORDER BY occurred_at, id",
        )
        .bind(customer_id)
        .fetch_all(self.pool())
        .await?;
        let mut open = std::collections::BTreeMap::new();
        for (refund, stage) in rows {
            open.insert(refund, matches!(stage.as_str(), "requested" | "agreed"));
        }
        Ok(open.values().any(|o| *o))
    }
}

/// The read behind [`Store::routing_inputs`]; a `WHERE` on `s` follows. (A macro, so that the
/// two statements below are constants: no `format!` per read, and static SQL for sqlx.)
macro_rules! routing_inputs_sql {
    () => {
        "SELECT s.state, s.platform, s.shop, s.customer_id, COALESCE(c.buyer_id, ''), \
     COALESCE(c.vip_level, 0), COALESCE(c.fans_level, 0), COALESCE(c.tags, '[]'), c.last_agent, c.last_agent_at, \
     COALESCE((SELECT m.text FROM messages m WHERE m.session_id = s.id AND m.direction = 'in' ORDER BY m.id LIMIT 1), ''), \
     CAST(CASE WHEN EXISTS (SELECT 1 FROM trade_events t WHERE t.customer_id = s.customer_id AND t.kind = 'refund') \
       THEN 1 ELSE 0 END AS BIGINT), s.id \
     FROM sessions s LEFT JOIN customers c ON c.id = s.customer_id"
    };
}
/// Routing's read of one session (`$1`).
pub(crate) const ROUTING_INPUTS_ONE: &str = concat!(routing_inputs_sql!(), " WHERE s.id = $1");
const ROUTING_INPUTS_OPEN: &str = concat!(routing_inputs_sql!(), " WHERE s.state <> 'closed'");

fn routing_row(r: &sqlx::any::AnyRow) -> Result<RoutingRow, StoreError> {
    Ok(RoutingRow {
        state: r.try_get(0)?,
        platform: r.try_get(1)?,
        shop: r.try_get(2)?,
        customer_id: r.try_get(3)?,
        buyer_id: r.try_get(4)?,
        vip_level: r.try_get(5)?,
        fans_level: r.try_get(6)?,
        tags: r.try_get(7)?,
        last_agent: r.try_get(8)?,
        last_agent_at: r.try_get(9)?,
        first_text: r.try_get(10)?,
        has_refunds: r.try_get(11)?,
    })
}

/// See [`Store::routing_inputs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingInputs {
    pub state: SessionState,
    pub platform: String,
    pub shop: String,
    pub customer_id: i64,
    pub buyer_id: String,
    pub vip_level: i64,
    pub fans_level: i64,
    pub tags: Vec<String>,
    pub last_agent: Option<String>,
    pub last_agent_at: Option<Millis>,
    pub first_text: String,
    pub has_open_refund: bool,
}
