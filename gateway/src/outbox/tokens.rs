//! Access-token refresh: ahead of expiry on a timer, and once when a call says the token expired.

use std::sync::Arc;
use std::time::Duration;

use super::Outbox;
use crate::metrics::Metrics;
use crate::plugins::ShopConnector;

/// Asks the connector whether a refresh is due (or forced), performs it and persists the
/// grant. Returns true when a new token is in use.
pub async fn refresh(gw: &Outbox, connector: &ShopConnector, force: bool) -> bool {
    let now = huiliu_domain::now_millis();
    let request = match connector.token_refresh(now, force) {
        Ok(Some(r)) => r,
        Ok(None) => return false,
        Err(e) => {
            tracing::warn!(shop = %connector.shop, "token refresh request failed: {e}");
            Metrics::count(&gw.metrics.token_refreshes, &connector.platform, "error");
            return false;
        }
    };
    let timeout = Duration::from_millis(gw.config.request_timeout_ms);
    let response = match super::http::perform(&gw.http, request, timeout).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(shop = %connector.shop, "token refresh call failed: {e}");
            Metrics::count(&gw.metrics.token_refreshes, &connector.platform, "unreachable");
            return false;
        }
    };
    match connector.token_refreshed(&response, huiliu_domain::now_millis()) {
        Ok(grant) => {
            if let Err(e) =
                gw.store.save_token(&connector.platform, &connector.shop, &grant, huiliu_domain::now_millis()).await
            {
                tracing::error!(shop = %connector.shop, "refreshed token could not be saved: {e}");
            }
            tracing::info!(shop = %connector.shop, expires_at = grant.expires_at, "access token refreshed");
            Metrics::count(&gw.metrics.token_refreshes, &connector.platform, "ok");
            true
        }
        Err(e) => {
            tracing::warn!(shop = %connector.shop, status = response.status, "token refresh refused: {e}");
            Metrics::count(&gw.metrics.token_refreshes, &connector.platform, "refused");
            false
        }
    }
}

/// Checks every shop's token once a minute and refreshes those due.
pub async fn run(gw: Arc<Outbox>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        for connector in gw.connectors.all() {
            if connector.has(huiliu_sdk::Capability::TokenRefresh) {
                refresh(&gw, &connector, false).await;
            }
        }
    }
}
