//! Sessions: reading and searching them, assignment and waiting, closing (by hand or idle), routing
//! decisions and transfers, and agents' presence for a restart.
//!
//! Every SQL string built at run time here is assembled from constant column lists and `$n`
//! placeholders only; all values are bound, never formatted in (hence `AssertSqlSafe`).

use huiliu_sdk::Millis;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use super::intake::{Assignment, Job, close_session};
use super::{Store, StoreError};
use huiliu_domain::session::{HandoverNote, Session, SessionFilter, SessionState, Transfer};

const SESSION_COLUMNS: &str = "id, customer_id, platform, shop, state, skill_group, agent, priority, category, \
    conversation, reply_context, opened_at, assigned_at, first_response_at, last_message_at, last_inbound_at, \
    closed_at, close_reason, unread";

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
        // Text searches: LIKE with `\` escaping the pattern characters of the searched text.
        let like = |s: &str| s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        if let Some(nick) = filter.nick.as_deref().filter(|s| !s.is_empty()) {
            let clause = " AND customer_id IN (SELECT id FROM customers WHERE nick LIKE ? ESCAPE '\\')";
            push(&mut sql, clause, Bind::T(format!("%{}%", like(nick))));
        }
        if let Some(order) = filter.order.as_deref().filter(|s| !s.is_empty()) {
            push(
                &mut sql,
                " AND (customer_id IN (SELECT customer_id FROM trade_events WHERE order_id = ?)",
                Bind::T(order.to_owned()),
            );
            let clause = " OR id IN (SELECT session_id FROM messages WHERE text LIKE ? ESCAPE '\\'))";
            push(&mut sql, clause, Bind::T(format!("%{}%", like(order))));
        }
        if let Some(tail) = filter.phone_tail.as_deref().filter(|s| !s.is_empty()) {
            // Masked mobiles read `138****5678`: three digits, four stars, the tail.
            let clause = " AND id IN (SELECT session_id FROM messages WHERE text LIKE ? ESCAPE '\\')";
            push(&mut sql, clause, Bind::T(format!("%___****{}%", like(tail))));
        }
        if let Some(scope) = &filter.scope {
            push(&mut sql, " AND (agent = ?", Bind::T(scope.agent.clone()));
            for g in &scope.groups {
                push(&mut sql, " OR skill_group = ?", Bind::T(g.clone()));
            }
            sql.push(')');
        }
        push(&mut sql, " ORDER BY opened_at DESC, id DESC LIMIT ?", Bind::N(filter.limit.unwrap_or(50).clamp(1, 500)));
        push(&mut sql, " OFFSET ?", Bind::N(filter.offset.unwrap_or(0).clamp(0, 100_000)));
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
        // The decision in the same commit, and the commit shared with intake's (the writer's
        // group): one durable write per assignment would cap new conversations at the disk's
        // sync rate.
        let assignment = Assignment {
            session_id,
            group: group.map(str::to_owned),
            agent: agent.to_owned(),
            priority,
            decision: decision.map(ToString::to_string),
            now,
        };
        let (done, wait) = tokio::sync::oneshot::channel();
        self.writer
            .for_session(session_id)
            .send(Job::Assign { assignment, done })
            .await
            .map_err(|_| StoreError::Closed)?;
        wait.await.map_err(|_| StoreError::Closed)?
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
        let _turn = self.write_turn().await;
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
        let _turn = self.write_turn().await;
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
        let _turn = self.write_turn().await;
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
        let _turn = self.write_turn().await;
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

    /// Records an agent's presence (status word, run-time cap, idle since).
    pub async fn save_presence(
        &self,
        agent: &str,
        status: &str,
        max_sessions: Option<i64>,
        idle_since: Option<Millis>,
        now: Millis,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
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
}
