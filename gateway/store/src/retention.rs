//! Retention: how long personal data is kept (个人信息保护法 asks for a limit), and the sweep
//! that deletes what is older. Dedupe keys (`intake_keys`: platform, shop, event id) stay: they
//! hold no personal data and keep a redelivered old push from coming back as new.

use huiliu_sdk::Millis;
use serde::Deserialize;

use super::{Store, StoreError};

const DAY_MS: Millis = 86_400_000;

/// `[retention]` in huiliu.toml: days each kind of data is kept; 0 keeps it forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// Closed conversations, with their messages, transfers, routing decisions and order
    /// events, this many days after they closed. Default 180.
    pub conversations_days: u32,
    /// Sealed originals of masked messages (the encrypted personal data), this many days after
    /// the message. Default 7: kept only while a dispute about a message is likely.
    pub sealed_days: u32,
    /// Undecodable pushes kept verbatim (they may hold unmasked personal data). Default 30.
    pub dead_letters_days: u32,
    /// Delivered or failed outbox rows (the agent's words as sent, unmasked). Default 30.
    pub outbox_days: u32,
    /// The audit log (who revealed, erased, decided what). Default 730.
    pub audit_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention { conversations_days: 180, sealed_days: 7, dead_letters_days: 30, outbox_days: 30, audit_days: 730 }
    }
}

impl Retention {
    /// One line per kind, for `huiliu check`.
    pub fn describe(&self) -> Vec<String> {
        let days = |d: u32| if d == 0 { "kept forever".to_owned() } else { format!("{d} days") };
        vec![
            format!("closed conversations and their messages: {}", days(self.conversations_days)),
            format!("sealed originals of masked data: {}", days(self.sealed_days)),
            format!("dead letters (raw pushes): {}", days(self.dead_letters_days)),
            format!("sent and failed outbox rows: {}", days(self.outbox_days)),
            format!("audit log: {}", days(self.audit_days)),
        ]
    }

    /// Problems with the policy as `(key, message)`.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.conversations_days != 0 && self.sealed_days > self.conversations_days {
            problems.push((
                "retention.sealed_days".into(),
                "must not exceed conversations_days: sealed originals outliving their message".into(),
            ));
        }
        problems
    }
}

/// What one sweep deleted, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub sessions: u64,
    pub customers: u64,
    pub messages: u64,
    pub sealed: u64,
    pub dead_letters: u64,
    pub outbox: u64,
    pub audit: u64,
}

impl SweepReport {
    /// `(kind, count)` pairs for metrics and logs.
    pub fn kinds(&self) -> [(&'static str, u64); 7] {
        [
            ("sessions", self.sessions),
            ("customers", self.customers),
            ("messages", self.messages),
            ("sealed", self.sealed),
            ("dead_letters", self.dead_letters),
            ("outbox", self.outbox),
            ("audit", self.audit),
        ]
    }
}

fn cutoff(now: Millis, days: u32) -> Option<Millis> {
    (days > 0).then(|| now - Millis::from(days) * DAY_MS)
}

impl Store {
    /// Deletes what `policy` no longer keeps, as of `now`, in one transaction.
    pub async fn sweep(&self, policy: &Retention, now: Millis) -> Result<SweepReport, StoreError> {
        let mut report = SweepReport::default();
        let mut tx = self.write_tx().await?;
        if let Some(before) = cutoff(now, policy.conversations_days) {
            let old = "SELECT id FROM sessions WHERE state = 'closed' AND closed_at < $1";
            for table in ["transfers", "routing_decisions", "bot_open"] {
                sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE session_id IN ({old})")))
                    .bind(before)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM outbox WHERE session_id IN ({old})")))
                .bind(before)
                .execute(&mut *tx)
                .await?;
            report.messages =
                sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM messages WHERE session_id IN ({old})")))
                    .bind(before)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            report.sessions = sqlx::query("DELETE FROM sessions WHERE state = 'closed' AND closed_at < $1")
                .bind(before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query("DELETE FROM trade_events WHERE occurred_at < $1").bind(before).execute(&mut *tx).await?;
            // The bot's copies of questions it could not match go with the conversations.
            sqlx::query("DELETE FROM bot_unanswered WHERE at < $1").bind(before).execute(&mut *tx).await?;
            // A buyer with nothing left (no conversation, no order event) is forgotten too.
            report.customers = sqlx::query(
                "DELETE FROM customers WHERE updated_at < $1 \
                 AND id NOT IN (SELECT customer_id FROM sessions) AND id NOT IN (SELECT customer_id FROM trade_events)",
            )
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        if let Some(before) = cutoff(now, policy.sealed_days) {
            report.sealed =
                sqlx::query("UPDATE messages SET sealed = NULL WHERE sealed IS NOT NULL AND created_at < $1")
                    .bind(before)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
        }
        if let Some(before) = cutoff(now, policy.dead_letters_days) {
            report.dead_letters = sqlx::query("DELETE FROM dead_letters WHERE received_at < $1")
                .bind(before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        if let Some(before) = cutoff(now, policy.outbox_days) {
            report.outbox = sqlx::query("DELETE FROM outbox WHERE state IN ('sent', 'failed') AND updated_at < $1")
                .bind(before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        if let Some(before) = cutoff(now, policy.audit_days) {
            report.audit = sqlx::query("DELETE FROM audit_log WHERE at < $1")
                .bind(before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(report)
    }
}
