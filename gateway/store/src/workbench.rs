//! What the workbench needs beyond sessions and messages: login tokens and the figures of the
//! lead's dashboard.

use huiliu_sdk::Millis;
use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError};

/// Response figures over a window, per skill group (`""`: sessions without a group).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ResponseStats {
    pub group: String,
    /// Sessions opened in the window.
    pub sessions: i64,
    /// Of those, sessions an agent replied to.
    pub answered: i64,
    /// Mean time from assignment to the first agent reply (ms), over answered sessions.
    pub first_response_ms: Option<f64>,
    /// Mean time from a buyer message to the next agent reply in its session (ms).
    pub response_ms: Option<f64>,
}

/// How long a group's conversations closed in a window held their agent, for the learned
/// handle time of routing's wait estimate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClosedHandling {
    pub group: String,
    /// Conversations closed in the window after an assignment.
    pub closed: i64,
    /// Their total time from assignment to close, ms.
    pub total_ms: i64,
}

/// See [`Store::closed_handling`]; also read by `peek_closed_handling` without opening the store.
pub(crate) async fn closed_handling(pool: &sqlx::AnyPool, since: Millis) -> Result<Vec<ClosedHandling>, StoreError> {
    let rows = sqlx::query(
        "SELECT skill_group, COUNT(*), CAST(SUM(closed_at - assigned_at) AS BIGINT) FROM sessions \
         WHERE state = 'closed' AND closed_at >= $1 AND assigned_at IS NOT NULL AND skill_group IS NOT NULL \
         AND closed_at >= assigned_at GROUP BY skill_group ORDER BY skill_group",
    )
    .bind(since)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| Ok(ClosedHandling { group: r.try_get(0)?, closed: r.try_get(1)?, total_ms: r.try_get(2)? }))
        .collect()
}

impl Store {
    /// Per skill group, the conversations closed at or after `since` that an agent had, and
    /// their total time from assignment to close. `assigned_at` is the latest assignment, so a
    /// transferred conversation counts its last agent's share — the time a seat was held, as
    /// the routing engine measures it.
    pub async fn closed_handling(&self, since: Millis) -> Result<Vec<ClosedHandling>, StoreError> {
        closed_handling(self.pool(), since).await
    }

    /// Keeps a login token (only its SHA-256 is stored).
    pub async fn save_api_token(
        &self,
        token_hash: &str,
        user: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query("INSERT INTO api_tokens (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(token_hash)
            .bind(user)
            .bind(now)
            .bind(expires_at)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The user a token belongs to, if it has not expired.
    pub async fn api_token_user(&self, token_hash: &str, now: Millis) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT user_id FROM api_tokens WHERE token_hash = $1 AND expires_at > $2")
            .bind(token_hash)
            .bind(now)
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get(0)?),
            None => None,
        })
    }

    /// When a token stops working (ms since the epoch), if it exists.
    pub async fn api_token_expiry(&self, token_hash: &str) -> Result<Option<Millis>, StoreError> {
        let row = sqlx::query("SELECT expires_at FROM api_tokens WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get(0)?),
            None => None,
        })
    }

    /// Ends one token (logout); with `user`, every token of that user.
    pub async fn delete_api_tokens(&self, token_hash: Option<&str>, user: Option<&str>) -> Result<u64, StoreError> {
        let done = match (token_hash, user) {
            (Some(h), _) => {
                let _turn = self.write_turn().await;
                sqlx::query("DELETE FROM api_tokens WHERE token_hash = $1").bind(h).execute(self.pool()).await?
            }
            (None, Some(u)) => {
                sqlx::query("DELETE FROM api_tokens WHERE user_id = $1").bind(u).execute(self.pool()).await?
            }
            (None, None) => return Ok(0),
        };
        Ok(done.rows_affected())
    }

    /// Drops expired tokens.
    pub async fn purge_api_tokens(&self, now: Millis) -> Result<u64, StoreError> {
        let _turn = self.write_turn().await;
        Ok(sqlx::query("DELETE FROM api_tokens WHERE expires_at <= $1")
            .bind(now)
            .execute(self.pool())
            .await?
            .rows_affected())
    }

    /// Response figures of sessions opened since `since`, per group. Agent replies are outbound
    /// messages not written by the system (routing notices, auto-replies).
    pub async fn response_stats(&self, since: Millis) -> Result<Vec<ResponseStats>, StoreError> {
        let rows = sqlx::query(
            "SELECT COALESCE(skill_group, ''), COUNT(*), \
                    SUM(CASE WHEN first_response_at IS NOT NULL THEN 1 ELSE 0 END), \
                    AVG(CASE WHEN first_response_at IS NOT NULL AND assigned_at IS NOT NULL \
                             THEN CAST(first_response_at - assigned_at AS DOUBLE PRECISION) END) \
             FROM sessions WHERE opened_at >= $1 GROUP BY COALESCE(skill_group, '') ORDER BY 1",
        )
        .bind(since)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::new();
        for r in rows {
            out.push(ResponseStats {
                group: r.try_get(0)?,
                sessions: r.try_get(1)?,
                answered: r.try_get::<Option<i64>, _>(2)?.unwrap_or(0),
                first_response_ms: r.try_get(3)?,
                response_ms: None,
            });
        }
        let rows = sqlx::query(
            "SELECT COALESCE(s.skill_group, ''), AVG(CAST(( \
                 SELECT MIN(o.created_at) FROM messages o \
                 WHERE o.session_id = m.session_id AND o.id > m.id AND o.direction = 'out' AND o.author NOT IN ('system', 'auto-reply') \
             ) - m.created_at AS DOUBLE PRECISION)) \
             FROM messages m JOIN sessions s ON s.id = m.session_id \
             WHERE m.direction = 'in' AND m.created_at >= $1 GROUP BY COALESCE(s.skill_group, '')",
        )
        .bind(since)
        .fetch_all(self.pool())
        .await?;
        for r in rows {
            let group: String = r.try_get(0)?;
            let avg: Option<f64> = r.try_get(1)?;
            if let Some(s) = out.iter_mut().find(|s| s.group == group) {
                s.response_ms = avg;
            }
        }
        Ok(out)
    }
}
