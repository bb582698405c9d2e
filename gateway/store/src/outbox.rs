//! The outbox: replies stored before any attempt to send them, claimed with a lease, and their
//! delivery state.
//!
//! Every SQL string built at run time here is assembled from constant column lists and `$n`
//! placeholders only; all values are bound, never formatted in (hence `AssertSqlSafe`).

use huiliu_sdk::{Content, Millis, OutgoingMessage};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::intake::json;
use super::{Store, StoreError};

/// Authors of outbound messages that are not an agent's answer.
pub const SYSTEM_AUTHORS: &[&str] = &["system", "auto-reply", "bot"];

fn is_system_author(author: &str) -> bool {
    SYSTEM_AUTHORS.contains(&author)
}

/// A reply to store and send.
#[derive(Debug, Clone)]
pub struct NewReply {
    pub session_id: i64,
    pub author: Option<String>,
    /// Content as displayed and stored (masked).
    pub content: Vec<Content>,
    pub text: String,
    /// What the connector will send (the agent's words as written).
    pub outgoing: OutgoingMessage,
}

/// A row of the outbox.
#[derive(Debug, Clone)]
pub struct OutboxItem {
    pub id: i64,
    pub message_id: i64,
    pub session_id: i64,
    pub platform: String,
    pub shop: String,
    pub client_msg_id: String,
    pub outgoing: OutgoingMessage,
    pub attempts: i64,
    pub state: String,
    pub last_error: Option<String>,
    /// When the reply was queued.
    pub created_at: Millis,
    /// Elements already delivered, for a reply sent one element at a time.
    pub parts_sent: i64,
}

impl Store {
    /// Stores a reply and its outbox row in one transaction; returns (message id, outbox id).
    pub async fn enqueue_reply(&self, reply: &NewReply, now: Millis) -> Result<(i64, i64), StoreError> {
        let mut tx = self.write_tx().await?;
        let session = sqlx::query("SELECT customer_id, platform, shop FROM sessions WHERE id = $1")
            .bind(reply.session_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("session {}", reply.session_id)))?;
        let customer_id: i64 = session.try_get(0)?;
        let platform: String = session.try_get(1)?;
        let shop: String = session.try_get(2)?;
        let client = reply.outgoing.client_msg_id.as_str();
        let message_id: i64 = sqlx::query_scalar(
            "INSERT INTO messages (session_id, customer_id, direction, client_msg_id, author, content, text, delivery, created_at) \
             VALUES ($1, $2, 'out', $3, $4, $5, $6, 'pending', $7) RETURNING id",
        )
        .bind(reply.session_id)
        .bind(customer_id)
        .bind(client)
        .bind(reply.author.clone())
        .bind(json(&reply.content))
        .bind(reply.text.as_str())
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let outbox_id: i64 = sqlx::query_scalar(
            "INSERT INTO outbox (message_id, session_id, platform, shop, client_msg_id, payload, state, next_attempt_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $7, $7) RETURNING id",
        )
        .bind(message_id)
        .bind(reply.session_id)
        .bind(platform)
        .bind(shop)
        .bind(client)
        .bind(json(&reply.outgoing))
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        // Only an agent's reply answers the buyer: routing notices and auto-replies neither stop
        // the first-response clock nor clear the unread count.
        let by_agent = !reply.author.as_deref().is_some_and(is_system_author);
        sqlx::query(if by_agent {
            "UPDATE sessions SET first_response_at = COALESCE(first_response_at, $1), last_message_at = $1, unread = 0 WHERE id = $2"
        } else {
            "UPDATE sessions SET last_message_at = $1 WHERE id = $2"
        })
        .bind(now)
        .bind(reply.session_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((message_id, outbox_id))
    }

    /// Stores an outbound message that was not sent (blocked by compliance): shown to the
    /// agent as failed with the reason.
    pub async fn record_blocked_reply(
        &self,
        session_id: i64,
        author: Option<&str>,
        content: &[Content],
        text: &str,
        reason: &str,
        now: Millis,
    ) -> Result<i64, StoreError> {
        let customer_id: i64 = sqlx::query_scalar("SELECT customer_id FROM sessions WHERE id = $1")
            .bind(session_id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("session {session_id}")))?;
        let _turn = self.write_turn().await;
        Ok(sqlx::query_scalar(
            "INSERT INTO messages (session_id, customer_id, direction, author, content, text, delivery, delivery_error, created_at) \
             VALUES ($1, $2, 'out', $3, $4, $5, 'failed', $6, $7) RETURNING id",
        )
        .bind(session_id)
        .bind(customer_id)
        .bind(author.map(str::to_owned))
        .bind(json(&content))
        .bind(text)
        .bind(reason)
        .bind(now)
        .fetch_one(self.pool())
        .await?)
    }

    /// Outbox rows due at `now`, oldest first.
    pub async fn due_outbox(&self, now: Millis, limit: i64) -> Result<Vec<OutboxItem>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, message_id, session_id, platform, shop, client_msg_id, payload, attempts, state, last_error, created_at, parts_sent \
             FROM outbox WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(outbox_from).collect()
    }

    /// One outbox row.
    pub async fn outbox_item(&self, id: i64) -> Result<Option<OutboxItem>, StoreError> {
        let row = sqlx::query(
            "SELECT id, message_id, session_id, platform, shop, client_msg_id, payload, attempts, state, last_error, created_at, parts_sent \
             FROM outbox WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(outbox_from).transpose()
    }

    /// The earliest `next_attempt_at` of a pending row.
    pub async fn next_outbox_due(&self) -> Result<Option<Millis>, StoreError> {
        Ok(sqlx::query_scalar("SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending'")
            .fetch_one(self.pool())
            .await?)
    }

    /// Claims a due row for one attempt until `lease_until` (so another worker, or this one
    /// after a crash, retries only after the lease). False if someone else has it.
    pub async fn claim_outbox(&self, id: i64, now: Millis, lease_until: Millis) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let done = sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $1, updated_at = $2 \
             WHERE id = $3 AND state = 'pending' AND next_attempt_at <= $2",
        )
        .bind(lease_until)
        .bind(now)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The platform accepted element `parts_sent - 1` of a reply sent one element at a time
    /// (its id, when the platform gave one, appended to the row's); the lease is renewed to
    /// `lease_until` for the next element.
    pub async fn outbox_part_sent(
        &self,
        id: i64,
        parts_sent: i64,
        platform_msg_id: Option<&str>,
        lease_until: Millis,
        now: Millis,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "UPDATE outbox SET parts_sent = $1, next_attempt_at = $2, updated_at = $3, \
             platform_msg_id = CASE WHEN $4 IS NULL THEN platform_msg_id \
                                    WHEN platform_msg_id IS NULL THEN $4 \
                                    ELSE platform_msg_id || ',' || $4 END \
             WHERE id = $5 AND state = 'pending'",
        )
        .bind(parts_sent)
        .bind(lease_until)
        .bind(now)
        .bind(platform_msg_id.map(str::to_owned))
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The platform accepted the reply (`platform_msg_id`: its id for the reply; `None` keeps
    /// the ids recorded part by part).
    pub async fn outbox_sent(&self, id: i64, platform_msg_id: Option<&str>, now: Millis) -> Result<(), StoreError> {
        self.outbox_finish(id, "sent", platform_msg_id, None, now).await
    }

    /// The reply failed for good.
    pub async fn outbox_failed(&self, id: i64, reason: &str, now: Millis) -> Result<(), StoreError> {
        self.outbox_finish(id, "failed", None, Some(reason), now).await
    }

    async fn outbox_finish(
        &self,
        id: i64,
        state: &str,
        platform_msg_id: Option<&str>,
        reason: Option<&str>,
        now: Millis,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let finished: Option<(i64, Option<String>)> = sqlx::query_as(
            "UPDATE outbox SET state = $1, platform_msg_id = COALESCE($2, platform_msg_id), last_error = COALESCE($3, last_error), updated_at = $4 \
             WHERE id = $5 RETURNING message_id, platform_msg_id",
        )
        .bind(state)
        .bind(platform_msg_id.map(str::to_owned))
        .bind(reason.map(str::to_owned))
        .bind(now)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((message_id, platform_msg_id)) = finished {
            sqlx::query("UPDATE messages SET delivery = $1, delivery_error = $2, platform_msg_id = COALESCE($3, platform_msg_id) WHERE id = $4")
                .bind(state)
                .bind(reason.map(str::to_owned))
                .bind(platform_msg_id)
                .bind(message_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Schedules another attempt at `next_at`, keeping the last error for operators.
    pub async fn outbox_retry_at(&self, id: i64, next_at: Millis, error: &str, now: Millis) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query("UPDATE outbox SET next_attempt_at = $1, last_error = $2, updated_at = $3 WHERE id = $4 AND state = 'pending'")
            .bind(next_at)
            .bind(error)
            .bind(now)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// An operator asks to retry a failed reply now. False if it was not failed.
    pub async fn outbox_manual_retry(&self, id: i64, now: Millis) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let message_id: Option<i64> = sqlx::query_scalar(
            "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = $1, updated_at = $1 \
             WHERE id = $2 AND state = 'failed' RETURNING message_id",
        )
        .bind(now)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(m) = message_id {
            sqlx::query("UPDATE messages SET delivery = 'pending', delivery_error = NULL WHERE id = $1")
                .bind(m)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(message_id.is_some())
    }

    /// Counts of outbox rows by state.
    pub async fn outbox_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(sqlx::query_as("SELECT state, COUNT(*) FROM outbox GROUP BY state ORDER BY state")
            .fetch_all(self.pool())
            .await?)
    }
}

fn outbox_from(r: &AnyRow) -> Result<OutboxItem, StoreError> {
    let payload: String = r.try_get(6)?;
    Ok(OutboxItem {
        id: r.try_get(0)?,
        message_id: r.try_get(1)?,
        session_id: r.try_get(2)?,
        platform: r.try_get(3)?,
        shop: r.try_get(4)?,
        client_msg_id: r.try_get(5)?,
        outgoing: serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt(format!("outbox payload: {e}")))?,
        attempts: r.try_get(7)?,
        state: r.try_get(8)?,
        last_error: r.try_get(9)?,
        created_at: r.try_get(10)?,
        parts_sent: r.try_get(11)?,
    })
}
