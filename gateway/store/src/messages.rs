//! Messages: a session's, a customer's across sessions, one with its sealed original, and counts.
//!
//! Every SQL string built at run time here is assembled from constant column lists and `$n`
//! placeholders only; all values are bound, never formatted in (hence `AssertSqlSafe`).

use huiliu_sdk::Content;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use super::{Store, StoreError};
use huiliu_domain::session::{Delivery, Direction, Message};

const MESSAGE_COLUMNS: &str = "id, session_id, customer_id, direction, platform_msg_id, client_msg_id, author, content, \
    text, delivery, delivery_error, created_at";

fn message_from(r: &AnyRow) -> Result<Message, StoreError> {
    let direction: String = r.try_get(3)?;
    let content: String = r.try_get(7)?;
    let delivery: Option<String> = r.try_get(9)?;
    Ok(Message {
        id: r.try_get(0)?,
        session_id: r.try_get(1)?,
        customer_id: r.try_get(2)?,
        direction: Direction::parse(&direction)
            .ok_or_else(|| StoreError::Corrupt(format!("direction `{direction}`")))?,
        platform_msg_id: r.try_get(4)?,
        client_msg_id: r.try_get(5)?,
        author: r.try_get(6)?,
        content: serde_json::from_str::<Vec<Content>>(&content).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        text: r.try_get(8)?,
        delivery: delivery.as_deref().and_then(Delivery::parse),
        delivery_error: r.try_get(10)?,
        created_at: r.try_get(11)?,
    })
}

impl Store {
    /// A session's messages, oldest first.
    pub async fn session_messages(&self, session_id: i64) -> Result<Vec<Message>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE session_id = $1 ORDER BY id"
        )))
        .bind(session_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(message_from).collect()
    }

    /// A page of a session's messages, oldest first: the `limit` newest, or the `limit` just
    /// before message id `before`.
    pub async fn session_messages_page(
        &self,
        session_id: i64,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Message>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE session_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
        )))
        .bind(session_id)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit.clamp(1, 500))
        .fetch_all(self.pool())
        .await?;
        let mut page = rows.iter().map(message_from).collect::<Result<Vec<_>, _>>()?;
        page.reverse();
        Ok(page)
    }

    /// One message.
    pub async fn message(&self, id: i64) -> Result<Option<Message>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1")))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(message_from).transpose()
    }

    /// The sealed original of a message, if one was kept.
    pub async fn message_sealed(&self, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(sqlx::query_scalar("SELECT sealed FROM messages WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .flatten())
    }

    /// A customer's messages across all sessions, newest first, `limit` at a time, older than
    /// message id `before` when given (read session by session: messages are indexed by
    /// session only).
    pub async fn customer_history(
        &self,
        customer_id: i64,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Message>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE session_id IN (SELECT id FROM sessions WHERE customer_id = $1) \
             AND id < $2 ORDER BY id DESC LIMIT $3"
        )))
        .bind(customer_id)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit.clamp(1, 500))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(message_from).collect()
    }

    /// The first inbound message text of a session (masked), for routing categories.
    pub async fn first_inbound_text(&self, session_id: i64) -> Result<String, StoreError> {
        let text: Option<String> = sqlx::query_scalar(
            "SELECT text FROM messages WHERE session_id = $1 AND direction = 'in' ORDER BY id LIMIT 1",
        )
        .bind(session_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(text.unwrap_or_default())
    }

    /// Counts for tests and the dashboard: (messages in, messages out, sessions).
    pub async fn counts(&self) -> Result<(i64, i64, i64), StoreError> {
        let inbound: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE direction = 'in'").fetch_one(self.pool()).await?;
        let outbound: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE direction = 'out'").fetch_one(self.pool()).await?;
        let sessions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions").fetch_one(self.pool()).await?;
        Ok((inbound, outbound, sessions))
    }
}
