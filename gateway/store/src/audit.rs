//! The audit log (who did what, when) and the dead letters kept of undecodable pushes.
//!
//! Every SQL string built at run time here is assembled from constant column lists and `$n`
//! placeholders only; all values are bound, never formatted in (hence `AssertSqlSafe`).

use huiliu_sdk::Millis;

use super::{Store, StoreError};

impl Store {
    /// Appends to the audit log.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &str,
        now: Millis,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
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

    /// How many dead letters are kept, by platform.
    pub async fn dead_letter_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(sqlx::query_as("SELECT platform, COUNT(*) FROM dead_letters GROUP BY platform ORDER BY platform")
            .fetch_all(self.pool())
            .await?)
    }
}
