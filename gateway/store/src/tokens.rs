//! Platform tokens refreshed by the gateway, kept for a restart.
//!
//! Every SQL string built at run time here is assembled from constant column lists and `$n`
//! placeholders only; all values are bound, never formatted in (hence `AssertSqlSafe`).

use huiliu_sdk::{Millis, TokenGrant};
use sqlx::Row;

use super::{Store, StoreError};

/// A persisted token grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    pub platform: String,
    pub shop: String,
    pub grant: TokenGrant,
}

impl Store {
    /// Persists a token grant for a shop.
    pub async fn save_token(
        &self,
        platform: &str,
        shop: &str,
        grant: &TokenGrant,
        now: Millis,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
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
}
