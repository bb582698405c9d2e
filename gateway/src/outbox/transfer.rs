//! The platform-side half of a transfer: the shop's connector builds the platform's transfer
//! call (e.g. Taobao's `taobao.qianniu.cloudkefu.forward`), it is performed here like a send,
//! with one token refresh on expiry. Best effort: a transfer inside Huiliu is complete without
//! it, so a failure is logged and counted, never retried for hours.

use std::time::Duration;

use huiliu_sdk::{Capability, SendOutcome, TransferRequest};

use super::{Outbox, http, tokens};
use crate::metrics::Metrics;

/// Hands `request`'s buyer over on the platform; returns the outcome class it was counted as
/// (`delivered`, `unsupported`, `no_shop`, or the failure's class).
pub async fn hand_over(gw: &Outbox, platform: &str, session_id: i64, request: TransferRequest) -> &'static str {
    let Some(connector) = gw.connectors.get(platform, &request.shop) else {
        Metrics::count(&gw.metrics.platform_transfers, platform, "no_shop");
        return "no_shop";
    };
    if !connector.has(Capability::Transfer) {
        tracing::debug!(shop = %request.shop, "the platform has no transfer API; handed over inside Huiliu only");
        Metrics::count(&gw.metrics.platform_transfers, platform, "unsupported");
        return "unsupported";
    }
    let mut outcome = once(gw, &connector, &request).await;
    if matches!(outcome, SendOutcome::TokenExpired { .. })
        && tokens::refresh(gw, &connector, true).await == tokens::Refresh::Refreshed
    {
        outcome = once(gw, &connector, &request).await;
    }
    let class = outcome.class();
    Metrics::count(&gw.metrics.platform_transfers, platform, class);
    match &outcome {
        SendOutcome::Delivered { .. } => tracing::info!(
            session = session_id, shop = %request.shop, from = %request.from_account, to = %request.to_account,
            "buyer handed over on the platform"
        ),
        SendOutcome::Retryable { error }
        | SendOutcome::RateLimited { error, .. }
        | SendOutcome::TokenExpired { error }
        | SendOutcome::Permanent { error } => tracing::warn!(
            session = session_id, shop = %request.shop, from = %request.from_account, to = %request.to_account,
            "platform transfer failed ({class}); the session moved inside Huiliu only: {error}"
        ),
    }
    class
}

async fn once(gw: &Outbox, connector: &crate::plugins::ShopConnector, request: &TransferRequest) -> SendOutcome {
    let error = |code: &str, message: String| huiliu_sdk::PlatformError {
        http_status: 0,
        code: code.into(),
        sub_code: None,
        message,
    };
    let call = match connector.encode_transfer(request, huiliu_domain::now_millis()) {
        Ok(r) => r,
        Err(e) => return SendOutcome::Permanent { error: error("encode", e.to_string()) },
    };
    match http::perform(&gw.http, call, Duration::from_millis(gw.config.request_timeout_ms)).await {
        Ok(response) => connector
            .classify_transfer(&response, huiliu_domain::now_millis())
            .unwrap_or_else(|e| SendOutcome::Retryable { error: error("classify", e.to_string()) }),
        Err(e) => SendOutcome::Retryable { error: error("transport", e) },
    }
}
