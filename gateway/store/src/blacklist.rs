//! Blacklist rows and their audited state changes.

use huiliu_sdk::Millis;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::intake::json;
use super::{Store, StoreError};

/// How hard a blacklist entry acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BlacklistLevel {
    /// Marked for the agent; otherwise normal.
    Flag,
    /// Auto-replies only, lowest priority, no agent work.
    Restrict,
    /// Dropped: no session, no notification, no agent work.
    Block,
}

impl BlacklistLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            BlacklistLevel::Flag => "flag",
            BlacklistLevel::Restrict => "restrict",
            BlacklistLevel::Block => "block",
        }
    }
    pub fn parse(s: &str) -> Option<BlacklistLevel> {
        Some(match s {
            "flag" => BlacklistLevel::Flag,
            "restrict" => BlacklistLevel::Restrict,
            "block" => BlacklistLevel::Block,
            _ => return None,
        })
    }
}

/// Where an entry stands in its review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EntryState {
    /// Proposed by an agent, waiting for a lead or admin. Does not act.
    Proposed,
    /// Approved: acts until it expires or is removed.
    Approved,
    Rejected,
    Removed,
    Expired,
}

impl EntryState {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryState::Proposed => "proposed",
            EntryState::Approved => "approved",
            EntryState::Rejected => "rejected",
            EntryState::Removed => "removed",
            EntryState::Expired => "expired",
        }
    }
    pub fn parse(s: &str) -> Option<EntryState> {
        Some(match s {
            "proposed" => EntryState::Proposed,
            "approved" => EntryState::Approved,
            "rejected" => EntryState::Rejected,
            "removed" => EntryState::Removed,
            "expired" => EntryState::Expired,
            _ => return None,
        })
    }
}

/// One blacklist entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BlacklistEntry {
    pub id: i64,
    pub platform: String,
    /// The shop it applies to; `None`: every shop of the platform.
    pub shop: Option<String>,
    /// The platform's open buyer id.
    pub buyer_id: String,
    pub level: BlacklistLevel,
    pub reason: String,
    /// Message ids (or platform message ids) that show the behaviour.
    pub evidence: Vec<String>,
    pub expires_at: Option<i64>,
    pub state: EntryState,
    pub proposed_by: String,
    pub proposed_at: i64,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub decision_note: Option<String>,
}

/// A new proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub platform: String,
    #[serde(default)]
    pub shop: Option<String>,
    pub buyer_id: String,
    pub level: BlacklistLevel,
    pub reason: String,
    #[serde(default)]
    pub evidence: Vec<String>,
    #[serde(default)]
    pub expires_at: Option<Millis>,
}

const COLUMNS: &str = "id, platform, shop, buyer_id, level, reason, evidence, expires_at, state, proposed_by, \
    proposed_at, decided_by, decided_at, decision_note";

fn entry_from(r: &AnyRow) -> Result<BlacklistEntry, StoreError> {
    let level: String = r.try_get(4)?;
    let evidence: String = r.try_get(6)?;
    let state: String = r.try_get(8)?;
    Ok(BlacklistEntry {
        id: r.try_get(0)?,
        platform: r.try_get(1)?,
        shop: r.try_get(2)?,
        buyer_id: r.try_get(3)?,
        level: BlacklistLevel::parse(&level)
            .ok_or_else(|| StoreError::Corrupt(format!("blacklist level `{level}`")))?,
        reason: r.try_get(5)?,
        evidence: serde_json::from_str(&evidence).unwrap_or_default(),
        expires_at: r.try_get(7)?,
        state: EntryState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("blacklist state `{state}`")))?,
        proposed_by: r.try_get(9)?,
        proposed_at: r.try_get(10)?,
        decided_by: r.try_get(11)?,
        decided_at: r.try_get(12)?,
        decision_note: r.try_get(13)?,
    })
}

impl Store {
    /// Inserts a proposal and audits it; returns its id.
    pub async fn blacklist_propose(&self, p: &Proposal, by: &str, now: Millis) -> Result<i64, StoreError> {
        let mut tx = self.write_tx().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO blacklist (platform, shop, buyer_id, level, reason, evidence, expires_at, state, proposed_by, proposed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'proposed', $8, $9) RETURNING id",
        )
        .bind(p.platform.as_str())
        .bind(p.shop.clone())
        .bind(p.buyer_id.as_str())
        .bind(p.level.as_str())
        .bind(p.reason.as_str())
        .bind(json(&p.evidence))
        .bind(p.expires_at)
        .bind(by)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        audit_in(&mut tx, by, "blacklist.propose", id, &json(p), now).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Moves entry `id` from one of `from` to `to`, recording who and why, and audits it.
    /// Returns the entry after the change, or `None` if it was not in one of `from`.
    pub async fn blacklist_transition(
        &self,
        id: i64,
        from: &[EntryState],
        to: EntryState,
        by: &str,
        note: Option<&str>,
        now: Millis,
    ) -> Result<Option<BlacklistEntry>, StoreError> {
        let mut tx = self.write_tx().await?;
        let current: Option<String> =
            sqlx::query_scalar("SELECT state FROM blacklist WHERE id = $1").bind(id).fetch_optional(&mut *tx).await?;
        let Some(current) = current.and_then(|s| EntryState::parse(&s)) else { return Ok(None) };
        if !from.contains(&current) {
            return Ok(None);
        }
        sqlx::query(
            "UPDATE blacklist SET state = $1, decided_by = $2, decided_at = $3, decision_note = $4 WHERE id = $5",
        )
        .bind(to.as_str())
        .bind(by)
        .bind(now)
        .bind(note.map(str::to_owned))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let detail = serde_json::json!({"from": current.as_str(), "to": to.as_str(), "note": note}).to_string();
        audit_in(&mut tx, by, &format!("blacklist.{}", verb(to)), id, &detail, now).await?;
        tx.commit().await?;
        self.blacklist_entry(id).await
    }

    /// One entry.
    pub async fn blacklist_entry(&self, id: i64) -> Result<Option<BlacklistEntry>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM blacklist WHERE id = $1")))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(entry_from).transpose()
    }

    /// Entries, newest first, optionally only those in `state`.
    pub async fn blacklist_list(&self, state: Option<EntryState>) -> Result<Vec<BlacklistEntry>, StoreError> {
        // Constant text with one bound value.
        let rows = match state {
            Some(s) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM blacklist WHERE state = $1 ORDER BY id DESC"
                )))
                .bind(s.as_str())
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM blacklist ORDER BY id DESC")))
                    .fetch_all(self.pool())
                    .await?
            }
        };
        rows.iter().map(entry_from).collect()
    }

    /// Marks approved entries past their expiry as expired (audited as `system`); returns them.
    pub async fn blacklist_expire(&self, now: Millis) -> Result<Vec<i64>, StoreError> {
        let mut tx = self.write_tx().await?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "UPDATE blacklist SET state = 'expired', decided_at = $1 \
             WHERE state = 'approved' AND expires_at IS NOT NULL AND expires_at <= $1 RETURNING id",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        for id in &ids {
            audit_in(&mut tx, "system", "blacklist.expire", *id, "{}", now).await?;
        }
        tx.commit().await?;
        Ok(ids)
    }

    /// Audit rows about a subject, oldest first: (at, actor, action, detail).
    pub async fn audit_trail(&self, subject: &str) -> Result<Vec<(Millis, String, String, String)>, StoreError> {
        Ok(sqlx::query_as("SELECT at, actor, action, detail FROM audit_log WHERE subject = $1 ORDER BY id")
            .bind(subject)
            .fetch_all(self.pool())
            .await?)
    }
}

fn verb(to: EntryState) -> &'static str {
    match to {
        EntryState::Proposed => "propose",
        EntryState::Approved => "approve",
        EntryState::Rejected => "reject",
        EntryState::Removed => "remove",
        EntryState::Expired => "expire",
    }
}

async fn audit_in(
    tx: &mut sqlx::AnyConnection,
    actor: &str,
    action: &str,
    id: i64,
    detail: &str,
    now: Millis,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO audit_log (at, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5)")
        .bind(now)
        .bind(actor)
        .bind(action)
        .bind(format!("blacklist:{id}"))
        .bind(detail)
        .execute(tx)
        .await?;
    Ok(())
}
