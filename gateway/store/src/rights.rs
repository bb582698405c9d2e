//! A person's rights under 个人信息保护法: everything stored about one buyer, exported; and
//! erased. Dedupe keys (platform, shop, event id) stay — they carry no personal data — so a
//! redelivered old push is still recognized, and an erased buyer who writes again starts fresh.
//! A blacklist decision about the buyer stays in force (the shop's legitimate interest), with its
//! reason and evidence erased.

use huiliu_sdk::Millis;
use serde_json::{Value, json};
use sqlx::Row;

use super::{Store, StoreError};

/// Who a request is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuyerRef {
    pub platform: String,
    pub shop: String,
    pub buyer_id: String,
}

impl BuyerRef {
    /// `platform/shop/buyer_id`, the audit subject.
    pub fn subject(&self) -> String {
        format!("buyer {}/{}/{}", self.platform, self.shop, self.buyer_id)
    }
}

/// What an erasure removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErasureReport {
    pub sessions: u64,
    pub messages: u64,
    pub order_events: u64,
    pub outbox_rows: u64,
    pub blacklist_entries_cleared: u64,
}

impl Store {
    /// The ids of `buyer`'s open sessions (none when nothing is stored about them).
    pub async fn open_sessions_of(&self, buyer: &BuyerRef) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT s.id FROM sessions s JOIN customers c ON c.id = s.customer_id \
             WHERE c.platform = $1 AND c.shop = $2 AND c.buyer_id = $3 AND s.state <> 'closed' ORDER BY s.id",
        )
        .bind(&buyer.platform)
        .bind(&buyer.shop)
        .bind(&buyer.buyer_id)
        .fetch_all(self.pool())
        .await?)
    }

    async fn session_ids_of(&self, customer_id: i64) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar("SELECT id FROM sessions WHERE customer_id = $1 ORDER BY id")
            .bind(customer_id)
            .fetch_all(self.pool())
            .await?)
    }

    /// Everything stored about `buyer` as one JSON document (customer record, every session
    /// with its messages, transfers and routing decisions, order and refund events, blacklist
    /// entries, the questions of theirs the bot kept as unmatched), or `None` when nothing is.
    pub async fn export_buyer(&self, buyer: &BuyerRef) -> Result<Option<Value>, StoreError> {
        let customer_id = self.customer_id(&buyer.platform, &buyer.shop, &buyer.buyer_id).await?;
        let blacklist = sqlx::query(
            "SELECT level, reason, evidence, state, proposed_at, decided_at, expires_at FROM blacklist \
             WHERE platform = $1 AND buyer_id = $2 AND (shop IS NULL OR shop = $3) ORDER BY id",
        )
        .bind(&buyer.platform)
        .bind(&buyer.buyer_id)
        .bind(&buyer.shop)
        .fetch_all(self.pool())
        .await?;
        let blacklist: Vec<Value> = blacklist
            .iter()
            .map(|r| -> Result<Value, StoreError> {
                let evidence: String = r.try_get(2)?;
                Ok(json!({
                    "level": r.try_get::<String, _>(0)?,
                    "reason": r.try_get::<String, _>(1)?,
                    "evidence": serde_json::from_str::<Value>(&evidence).unwrap_or(Value::Null),
                    "state": r.try_get::<String, _>(3)?,
                    "proposed_at": r.try_get::<i64, _>(4)?,
                    "decided_at": r.try_get::<Option<i64>, _>(5)?,
                    "expires_at": r.try_get::<Option<i64>, _>(6)?,
                }))
            })
            .collect::<Result<_, _>>()?;
        let Some(customer_id) = customer_id else {
            return Ok((!blacklist.is_empty()).then(|| json!({"buyer": buyer_json(buyer), "blacklist": blacklist})));
        };
        let mut sessions = Vec::new();
        for id in self.session_ids_of(customer_id).await? {
            sessions.push(json!({
                "session": self.session(id).await?,
                "messages": self.session_messages(id).await?,
                "transfers": self.transfers(id).await?,
                "routing_decisions": self.decisions(id).await?,
            }));
        }
        let unanswered: Vec<Value> =
            sqlx::query("SELECT text, at FROM bot_unanswered WHERE customer_id = $1 ORDER BY id")
                .bind(customer_id)
                .fetch_all(self.pool())
                .await?
                .iter()
                .map(|r| -> Result<Value, StoreError> {
                    Ok(json!({"text": r.try_get::<String, _>(0)?, "at": r.try_get::<i64, _>(1)?}))
                })
                .collect::<Result<_, _>>()?;
        Ok(Some(json!({
            "buyer": buyer_json(buyer),
            "customer": self.customer(customer_id).await?,
            "sessions": sessions,
            "orders_and_refunds": self.customer_trades(customer_id, i64::MAX).await?,
            "blacklist": blacklist,
            "bot_unanswered_questions": unanswered,
        })))
    }

    /// Erases everything stored about `buyer` in one transaction and audits it (`by`, `reason`).
    /// `None` when nothing was stored. Open sessions must be closed first (the caller frees
    /// their routing capacity); they are erased like the others.
    pub async fn erase_buyer(
        &self,
        buyer: &BuyerRef,
        by: &str,
        reason: &str,
        now: Millis,
    ) -> Result<Option<ErasureReport>, StoreError> {
        let customer_id = self.customer_id(&buyer.platform, &buyer.shop, &buyer.buyer_id).await?;
        let mut report = ErasureReport::default();
        let mut tx = self.write_tx().await?;
        if let Some(customer_id) = customer_id {
            let of_sessions = "SELECT id FROM sessions WHERE customer_id = $1";
            for table in ["transfers", "routing_decisions", "bot_open"] {
                sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE session_id IN ({of_sessions})")))
                    .bind(customer_id)
                    .execute(&mut *tx)
                    .await?;
            }
            report.outbox_rows =
                sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM outbox WHERE session_id IN ({of_sessions})")))
                    .bind(customer_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            // The bot's copies of the buyer's questions it could not match.
            sqlx::query("DELETE FROM bot_unanswered WHERE customer_id = $1")
                .bind(customer_id)
                .execute(&mut *tx)
                .await?;
            report.messages =
                sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM messages WHERE session_id IN ({of_sessions})")))
                    .bind(customer_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            report.sessions = sqlx::query("DELETE FROM sessions WHERE customer_id = $1")
                .bind(customer_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            report.order_events = sqlx::query("DELETE FROM trade_events WHERE customer_id = $1")
                .bind(customer_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query("DELETE FROM customers WHERE id = $1").bind(customer_id).execute(&mut *tx).await?;
        }
        report.blacklist_entries_cleared = sqlx::query(
            "UPDATE blacklist SET reason = '(erased)', evidence = '[]', decision_note = NULL \
             WHERE platform = $1 AND buyer_id = $2 AND (shop IS NULL OR shop = $3)",
        )
        .bind(&buyer.platform)
        .bind(&buyer.buyer_id)
        .bind(&buyer.shop)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if customer_id.is_none() && report.blacklist_entries_cleared == 0 {
            return Ok(None);
        }
        sqlx::query("INSERT INTO audit_log (at, actor, action, subject, detail) VALUES ($1, $2, 'erase', $3, $4)")
            .bind(now)
            .bind(by)
            .bind(buyer.subject())
            .bind(format!(
                "{reason} ({} sessions, {} messages, {} order events)",
                report.sessions, report.messages, report.order_events
            ))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if self.backend == super::Backend::Sqlite {
            // Deleted pages are zeroed (secure_delete); move them out of the WAL into the file
            // now, so no old page image of the buyer's text lingers in the log.
            // A checkpoint that meets another (the intake checkpointer's) answers "busy" and
            // does nothing: try again until one has run whole.
            let _turn = self.write_turn().await;
            let mut tries = 0;
            loop {
                let row = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").fetch_one(self.pool()).await?;
                let busy: i64 = row.try_get(0)?;
                tries += 1;
                if busy == 0 {
                    break;
                }
                if tries == 100 {
                    tracing::warn!("the WAL could not be checkpointed after the erasure; the next checkpoint will");
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
        Ok(Some(report))
    }
}

fn buyer_json(b: &BuyerRef) -> Value {
    json!({"platform": b.platform, "shop": b.shop, "buyer_id": b.buyer_id})
}
