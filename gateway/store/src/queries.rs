//! Reads and the smaller writes: sessions, history, outbox, tokens, decisions.
//!
//! Every SQL string built at run time here is assembled from constant column lists and
//! `$n` placeholders only; all values are bound, never formatted in (hence `AssertSqlSafe`).

use huiliu_sdk::{Content, Millis, OutgoingMessage, TokenGrant};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use super::intake::{close_session, json};
use super::{Store, StoreError};
use huiliu_domain::session::{
    Customer, Delivery, Direction, HandoverNote, Message, Session, SessionFilter, SessionState, TradeRecord, Transfer,
};

const SESSION_COLUMNS: &str = "id, customer_id, platform, shop, state, skill_group, agent, priority, category, \
    conversation, reply_context, opened_at, assigned_at, first_response_at, last_message_at, last_inbound_at, \
    closed_at, close_reason, unread";

const MESSAGE_COLUMNS: &str = "id, session_id, customer_id, direction, platform_msg_id, client_msg_id, author, content, \
    text, delivery, delivery_error, created_at";

/// Authors of outbound messages that are not an agent's answer.
pub const SYSTEM_AUTHORS: &[&str] = &["system", "auto-reply"];

fn is_system_author(author: &str) -> bool {
    SYSTEM_AUTHORS.contains(&author)
}

fn session_from(r: &AnyRow) -> Result<Session, StoreError> {
    let state: String = r.try_get(4)?;
    let reply_context: String = r.try_get(10)?;
    Ok(Session {
        id: r.try_get(0)?,
        customer_id: r.try_get(1)?,
        platform: r.try_get(2)?,
        shop: r.try_get(3)?,
        state: SessionState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("session state `{state}`")))?,
        skill_group: r.try_get(5)?,
        agent: r.try_get(6)?,
        priority: r.try_get(7)?,
        category: r.try_get(8)?,
        conversation: r.try_get(9)?,
        reply_context: serde_json::from_str(&reply_context).unwrap_or_default(),
        opened_at: r.try_get(11)?,
        assigned_at: r.try_get(12)?,
        first_response_at: r.try_get(13)?,
        last_message_at: r.try_get(14)?,
        last_inbound_at: r.try_get(15)?,
        closed_at: r.try_get(16)?,
        close_reason: r.try_get(17)?,
        unread: r.try_get(18)?,
    })
}

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
}

/// A persisted token grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    pub platform: String,
    pub shop: String,
    pub grant: TokenGrant,
}

impl Store {
    /// One session.
    pub async fn session(&self, id: i64) -> Result<Option<Session>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1")))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(session_from).transpose()
    }

    /// Every session not closed (for recovery at start).
    pub async fn open_sessions(&self) -> Result<Vec<Session>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE state <> 'closed' ORDER BY id"
        )))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(session_from).collect()
    }

    /// Sessions matching `filter`, newest first.
    pub async fn search_sessions(&self, filter: &SessionFilter) -> Result<Vec<Session>, StoreError> {
        enum Bind {
            T(String),
            N(i64),
        }
        let mut sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE 1 = 1");
        let mut binds: Vec<Bind> = Vec::new();
        let mut push = |sql: &mut String, clause: &str, b: Bind| {
            binds.push(b);
            sql.push_str(&clause.replace('?', &format!("${}", binds.len())));
        };
        for (column, value) in [
            ("shop", &filter.shop),
            ("platform", &filter.platform),
            ("state", &filter.state.map(|s| s.as_str().to_owned())),
            ("agent", &filter.agent),
        ] {
            if let Some(v) = value {
                push(&mut sql, &format!(" AND {column} = ?"), Bind::T(v.clone()));
            }
        }
        if let Some(from) = filter.from {
            push(&mut sql, " AND opened_at >= ?", Bind::N(from));
        }
        if let Some(to) = filter.to {
            push(&mut sql, " AND opened_at < ?", Bind::N(to));
        }
        if let Some(c) = filter.customer {
            push(&mut sql, " AND customer_id = ?", Bind::N(c));
        }
        if filter.open_only {
            sql.push_str(" AND state <> 'closed'");
        }
        if let Some(scope) = &filter.scope {
            push(&mut sql, " AND (agent = ?", Bind::T(scope.agent.clone()));
            for g in &scope.groups {
                push(&mut sql, " OR skill_group = ?", Bind::T(g.clone()));
            }
            sql.push(')');
        }
        push(&mut sql, " ORDER BY opened_at DESC, id DESC LIMIT ?", Bind::N(filter.limit.unwrap_or(50).clamp(1, 500)));
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for b in binds {
            q = match b {
                Bind::T(t) => q.bind(t),
                Bind::N(n) => q.bind(n),
            };
        }
        let rows = q.fetch_all(self.pool()).await?;
        rows.iter().map(session_from).collect()
    }

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
        sqlx::query("UPDATE customers SET tags = $1, notes = $2 WHERE id = $3")
            .bind(json(&tags))
            .bind(notes)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// A customer's messages across all sessions, newest first, `limit` at a time, older than
    /// message id `before` when given.
    pub async fn customer_history(
        &self,
        customer_id: i64,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Message>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE customer_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
        )))
        .bind(customer_id)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit.clamp(1, 500))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(message_from).collect()
    }

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

    /// Records that `agent` of `group` took the session (with the routing decision that chose
    /// them, when given, in the same commit).
    pub async fn assign(
        &self,
        session_id: i64,
        group: Option<&str>,
        agent: &str,
        priority: i64,
        decision: Option<&serde_json::Value>,
        now: Millis,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        // The decision in the same commit: one durable write per assignment, not two.
        if let Some(decision) = decision {
            sqlx::query("INSERT INTO routing_decisions (session_id, at, decision) VALUES ($1, $2, $3)")
                .bind(session_id)
                .bind(now)
                .bind(decision.to_string())
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "UPDATE sessions SET state = 'assigned', agent = $1, skill_group = COALESCE($2, skill_group), priority = $3, \
             assigned_at = $4 WHERE id = $5 AND state <> 'closed'",
        )
        .bind(agent)
        .bind(group.map(str::to_owned))
        .bind(priority)
        .bind(now)
        .bind(session_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE customers SET last_agent = $1, last_agent_at = $2 WHERE id = (SELECT customer_id FROM sessions WHERE id = $3)",
        )
        .bind(agent)
        .bind(now)
        .bind(session_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records that the session waits in `group`'s queue (or off-hours / bot).
    pub async fn set_waiting(
        &self,
        session_id: i64,
        state: SessionState,
        group: Option<&str>,
        priority: i64,
        category: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE sessions SET state = $1, agent = NULL, skill_group = COALESCE($2, skill_group), priority = $3, \
             category = COALESCE($4, category) WHERE id = $5 AND state <> 'closed'",
        )
        .bind(state.as_str())
        .bind(group.map(str::to_owned))
        .bind(priority)
        .bind(category.map(str::to_owned))
        .bind(session_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Closes a session.
    pub async fn close(&self, session_id: i64, reason: &str, now: Millis) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        close_session(&mut tx, session_id, reason, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Closes every open session idle since before `idle_before`; returns their ids.
    pub async fn close_idle(&self, idle_before: Millis, now: Millis) -> Result<Vec<i64>, StoreError> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "UPDATE sessions SET state = 'closed', closed_at = $1, close_reason = 'idle' \
             WHERE state <> 'closed' AND last_message_at < $2 RETURNING id",
        )
        .bind(now)
        .bind(idle_before)
        .fetch_all(self.pool())
        .await?;
        Ok(ids)
    }

    /// Appends a routing decision (JSON) to a session's record.
    pub async fn record_decision(
        &self,
        session_id: i64,
        decision: &serde_json::Value,
        now: Millis,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO routing_decisions (session_id, at, decision) VALUES ($1, $2, $3)")
            .bind(session_id)
            .bind(now)
            .bind(decision.to_string())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// A session's routing decisions, oldest first.
    pub async fn decisions(&self, session_id: i64) -> Result<Vec<serde_json::Value>, StoreError> {
        let rows: Vec<String> =
            sqlx::query_scalar("SELECT decision FROM routing_decisions WHERE session_id = $1 ORDER BY id")
                .bind(session_id)
                .fetch_all(self.pool())
                .await?;
        Ok(rows.iter().filter_map(|r| serde_json::from_str(r).ok()).collect())
    }

    /// Records a transfer with its handover note.
    pub async fn record_transfer(
        &self,
        session_id: i64,
        from_agent: Option<&str>,
        to_agent: Option<&str>,
        to_group: Option<&str>,
        note: &HandoverNote,
        now: Millis,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO transfers (session_id, from_agent, to_agent, to_group, problem, tried, expectation, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(session_id)
        .bind(from_agent.map(str::to_owned))
        .bind(to_agent.map(str::to_owned))
        .bind(to_group.map(str::to_owned))
        .bind(note.problem.as_str())
        .bind(note.tried.as_str())
        .bind(note.expectation.as_str())
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// A session's transfers, oldest first.
    pub async fn transfers(&self, session_id: i64) -> Result<Vec<Transfer>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, session_id, from_agent, to_agent, to_group, problem, tried, expectation, at FROM transfers \
             WHERE session_id = $1 ORDER BY id",
        )
        .bind(session_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Transfer {
                    id: r.try_get(0)?,
                    session_id: r.try_get(1)?,
                    from_agent: r.try_get(2)?,
                    to_agent: r.try_get(3)?,
                    to_group: r.try_get(4)?,
                    note: HandoverNote { problem: r.try_get(5)?, tried: r.try_get(6)?, expectation: r.try_get(7)? },
                    at: r.try_get(8)?,
                })
            })
            .collect()
    }

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
            "SELECT id, message_id, session_id, platform, shop, client_msg_id, payload, attempts, state, last_error, created_at \
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
            "SELECT id, message_id, session_id, platform, shop, client_msg_id, payload, attempts, state, last_error, created_at \
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

    /// The platform accepted the reply.
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
        let message_id: Option<i64> = sqlx::query_scalar(
            "UPDATE outbox SET state = $1, platform_msg_id = $2, last_error = COALESCE($3, last_error), updated_at = $4 \
             WHERE id = $5 RETURNING message_id",
        )
        .bind(state)
        .bind(platform_msg_id.map(str::to_owned))
        .bind(reason.map(str::to_owned))
        .bind(now)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(message_id) = message_id {
            sqlx::query("UPDATE messages SET delivery = $1, delivery_error = $2, platform_msg_id = COALESCE($3, platform_msg_id) WHERE id = $4")
                .bind(state)
                .bind(reason.map(str::to_owned))
                .bind(platform_msg_id.map(str::to_owned))
                .bind(message_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Schedules another attempt at `next_at`, keeping the last error for operators.
    pub async fn outbox_retry_at(&self, id: i64, next_at: Millis, error: &str, now: Millis) -> Result<(), StoreError> {
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

    /// Records an agent's presence (status word, run-time cap, idle since).
    pub async fn save_presence(
        &self,
        agent: &str,
        status: &str,
        max_sessions: Option<i64>,
        idle_since: Option<Millis>,
        now: Millis,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO agent_presence (agent, status, max_sessions, idle_since, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (agent) DO UPDATE SET status = excluded.status, max_sessions = excluded.max_sessions, \
             idle_since = excluded.idle_since, updated_at = excluded.updated_at",
        )
        .bind(agent)
        .bind(status)
        .bind(max_sessions)
        .bind(idle_since)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Every recorded agent presence: (agent, status, max_sessions, idle_since).
    pub async fn presences(&self) -> Result<Vec<(String, String, Option<i64>, Option<Millis>)>, StoreError> {
        Ok(sqlx::query_as("SELECT agent, status, max_sessions, idle_since FROM agent_presence ORDER BY agent")
            .fetch_all(self.pool())
            .await?)
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

    /// Persists a token grant for a shop.
    pub async fn save_token(
        &self,
        platform: &str,
        shop: &str,
        grant: &TokenGrant,
        now: Millis,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tokens (platform, shop, access_token, expires_at, refresh_token, refresh_expires_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (platform, shop) DO UPDATE SET \
             access_token = excluded.access_token, expires_at = excluded.expires_at, \
             refresh_token = COALESCE(excluded.refresh_token, tokens.refresh_token), \
             refresh_expires_at = COALESCE(excluded.refresh_expires_at, tokens.refresh_expires_at), updated_at = excluded.updated_at",
        )
        .bind(platform)
        .bind(shop)
        .bind(grant.access_token.as_str())
        .bind(grant.expires_at)
        .bind(grant.refresh_token.clone())
        .bind(grant.refresh_expires_at)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Every persisted token.
    pub async fn tokens(&self) -> Result<Vec<StoredToken>, StoreError> {
        let rows = sqlx::query(
            "SELECT platform, shop, access_token, expires_at, refresh_token, refresh_expires_at FROM tokens",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredToken {
                    platform: r.try_get(0)?,
                    shop: r.try_get(1)?,
                    grant: TokenGrant {
                        access_token: r.try_get(2)?,
                        expires_at: r.try_get(3)?,
                        refresh_token: r.try_get(4)?,
                        refresh_expires_at: r.try_get(5)?,
                    },
                })
            })
            .collect()
    }

    /// How many dead letters are kept, by platform.
    pub async fn dead_letter_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(sqlx::query_as("SELECT platform, COUNT(*) FROM dead_letters GROUP BY platform ORDER BY platform")
            .fetch_all(self.pool())
            .await?)
    }

    /// Appends to the audit log.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &str,
        now: Millis,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO audit_log (at, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5)")
            .bind(now)
            .bind(actor)
            .bind(action)
            .bind(subject)
            .bind(detail)
            .execute(self.pool())
            .await?;
        Ok(())
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
    })
}
