//! Access-token refresh: ahead of expiry on a timer, and once when a call says the token expired.
//! Each outcome is shown on the shop's status: refreshed, failed for now (tried again), or
//! refused by the platform so that an operator must authorize the shop again — then refreshing
//! stops until the shop's settings change (a reload of shops.toml gives it a new connector).

use std::sync::Arc;
use std::time::Duration;

use huiliu_sdk::ErrorKind;
use huiliu_sdk::abi::host::CallError;

use super::Outbox;
use crate::metrics::Metrics;
use crate::plugins::ShopConnector;
use crate::services::status::TokenState;

/// What a refresh came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    /// A new token is in use.
    Refreshed,
    /// None was due (or the connector cannot refresh and was not asked to).
    NotNeeded,
    /// Failed for a reason that passes; tried again later.
    Temporary(String),
    /// The platform refused the grant, or the connector cannot refresh an expired token: an
    /// operator must authorize the shop again.
    Reauthorize(String),
}

/// How a connector's refusal of the platform's answer counts.
fn judge(error: &CallError) -> Refresh {
    match error {
        CallError::Connector(e) if e.kind == ErrorKind::Reauthorize => Refresh::Reauthorize(e.message.clone()),
        other => Refresh::Temporary(other.to_string()),
    }
}

/// Asks the connector whether a refresh is due (or forced), performs it and persists the
/// grant; records the outcome on the shop's status.
pub async fn refresh(gw: &Outbox, connector: &ShopConnector, force: bool) -> Refresh {
    let outcome = attempt(gw, connector, force).await;
    let (platform, shop) = (&connector.platform, &connector.shop);
    match &outcome {
        Refresh::Refreshed => gw.status.set_token(platform, shop, TokenState::Ok, "refreshed"),
        Refresh::NotNeeded => {}
        Refresh::Temporary(why) => {
            tracing::warn!(shop = %shop, "token refresh failed, will try again: {why}");
            gw.status.set_token(platform, shop, TokenState::TemporaryFailure, why);
        }
        Refresh::Reauthorize(why) => {
            tracing::error!(shop = %shop, "the shop must be authorized again (refreshing stops): {why}");
            gw.status.set_token(platform, shop, TokenState::ReauthorizeNeeded, why);
        }
    }
    outcome
}

async fn attempt(gw: &Outbox, connector: &ShopConnector, force: bool) -> Refresh {
    if let Some(leases) = &gw.leases
        && connector.has(huiliu_sdk::Capability::TokenRefresh)
        && leases.fence(&crate::cluster::token_lease(&connector.platform, &connector.shop)).is_none()
    {
        // Refresh tokens are often single-use: two nodes refreshing one grant would make the
        // platform refuse the second. The holder refreshes; this node adopts the stored token.
        return Refresh::Temporary(
            "another node refreshes this shop's token (cluster); this node adopts it from the store".into(),
        );
    }
    if !connector.has(huiliu_sdk::Capability::TokenRefresh) {
        return if force {
            Metrics::count(&gw.metrics.token_refreshes, &connector.platform, "reauthorize");
            Refresh::Reauthorize(
                "the access token expired and this connector cannot refresh it: put a new token in shops.toml".into(),
            )
        } else {
            Refresh::NotNeeded
        };
    }
    if gw.status.token(&connector.platform, &connector.shop).is_some_and(|t| t.state == TokenState::ReauthorizeNeeded) {
        // The platform said no to this grant; asking again changes nothing until the shop's
        // settings do (which replaces this connector and clears the state).
        return Refresh::Reauthorize("the platform refused this shop's authorization earlier".into());
    }
    let now = huiliu_domain::now_millis();
    let request = match connector.token_refresh(now, force) {
        Ok(Some(r)) => r,
        Ok(None) => return Refresh::NotNeeded,
        Err(e) => {
            Metrics::count(&gw.metrics.token_refreshes, &connector.platform, "error");
            return Refresh::Temporary(format!("the connector could not build the refresh: {e}"));
        }
    };
    let timeout = Duration::from_millis(gw.config.request_timeout_ms);
    let response = match super::http::perform(&gw.http, request, timeout).await {
        Ok(r) => r,
        Err(e) => {
            Metrics::count(&gw.metrics.token_refreshes, &connector.platform, "unreachable");
            return Refresh::Temporary(format!("the token endpoint did not answer: {e}"));
        }
    };
    match connector.token_refreshed(&response, huiliu_domain::now_millis()) {
        Ok(grant) => {
            if let Err(e) =
                gw.store.save_token(&connector.platform, &connector.shop, &grant, huiliu_domain::now_millis()).await
            {
                tracing::error!(shop = %connector.shop, "refreshed token could not be saved: {e}");
            }
            connector.token_expires_at.store(grant.expires_at, std::sync::atomic::Ordering::SeqCst);
            tracing::info!(shop = %connector.shop, expires_at = grant.expires_at, "access token refreshed");
            Metrics::count(&gw.metrics.token_refreshes, &connector.platform, "ok");
            Refresh::Refreshed
        }
        Err(e) => {
            let outcome = judge(&e);
            let reason = if matches!(outcome, Refresh::Reauthorize(_)) { "reauthorize" } else { "refused" };
            Metrics::count(&gw.metrics.token_refreshes, &connector.platform, reason);
            outcome
        }
    }
}

/// Checks every shop's token once a minute and refreshes those due (in a cluster, those whose
/// token lease this node holds).
pub async fn run(gw: Arc<Outbox>) {
    // In a cluster every 5 s: the token lease may come to this node at any time.
    let mut tick = tokio::time::interval(Duration::from_secs(if gw.leases.is_some() { 5 } else { 60 }));
    // In a cluster: the token leases this node asked for (each shop's, once).
    let mut wanted = std::collections::BTreeSet::new();
    loop {
        tick.tick().await;
        for connector in gw.connectors.all() {
            if !connector.has(huiliu_sdk::Capability::TokenRefresh) {
                continue;
            }
            if let Some(leases) = &gw.leases {
                let name = crate::cluster::token_lease(&connector.platform, &connector.shop);
                if wanted.insert(name.clone()) {
                    let _ = leases.want(&name);
                }
                if leases.fence(&name).is_none() {
                    continue; // another node refreshes it
                }
            }
            refresh(&gw, &connector, false).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use huiliu_sdk::ConnectorError;

    #[test]
    fn only_a_refused_grant_needs_an_operator() {
        let refused = CallError::Connector(ConnectorError::reauthorize("invalid_grant"));
        assert_eq!(judge(&refused), Refresh::Reauthorize("invalid_grant".into()));
        for temporary in [
            CallError::Connector(ConnectorError::platform("code 20000: 服务不可用")),
            CallError::Connector(ConnectorError::invalid("unreadable")),
            CallError::Panicked("boom".into()),
        ] {
            assert!(matches!(judge(&temporary), Refresh::Temporary(_)), "{temporary:?}");
        }
    }
}
