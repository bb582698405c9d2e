//! The HTTP surface: health, readiness and metrics (the agent API joins here).
//!
//! `app()` is kept apart from `main` so tests drive it with `oneshot` and no socket.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use serde_json::json;

use crate::Gateway;

/// The router for the whole daemon.
pub fn app(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(gateway)
}

/// Liveness: the process answers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: plugins loaded and every enabled shop has its connector. The body says what is
/// missing, so an operator sees why without reading logs.
async fn readyz(State(gw): State<Arc<Gateway>>) -> impl IntoResponse {
    let problems: Vec<serde_json::Value> =
        gw.shop_errors.iter().map(|(shop, reason)| json!({"shop": shop, "error": reason})).collect();
    let ready = gw.is_ready();
    let body = json!({
        "ready": ready,
        "plugins": gw.host.loaded.iter().map(|l| &l.manifest.id).collect::<Vec<_>>(),
        "shops": gw.connectors.keys().map(|(p, s)| format!("{p}/{s}")).collect::<Vec<_>>(),
        "problems": problems,
    });
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body))
}

async fn metrics(State(gw): State<Arc<Gateway>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], gw.metrics.render())
}
