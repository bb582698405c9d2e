//! The HTTP surface: platform pushes (`/hooks`), health, readiness, metrics and the agent /
//! operator API (`/api/v1`).
//!
//! `app()` is kept apart from `main` so tests drive it with `oneshot` and no socket.

mod dashboard;
pub mod quick;
mod stream;
mod v1;
mod workbench;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json};
use axum::routing::{get, post};
use serde_json::json;

use crate::Gateway;

/// The router for the whole daemon.
pub fn app(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/hooks/{platform}/{shop}", post(crate::ingress::push::hook).get(crate::ingress::push::hook))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .nest("/api/v1", v1::routes())
        .merge(workbench::routes())
        .with_state(gateway)
}

/// Liveness: the process answers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: the store answers and every enabled shop has its connector. The body says what
/// is missing, so an operator sees why without reading logs.
async fn readyz(State(gw): State<Arc<Gateway>>) -> impl IntoResponse {
    let store_ok = gw.store.ping().await;
    let mut problems: Vec<serde_json::Value> =
        gw.shop_errors.iter().map(|(shop, reason)| json!({"shop": shop, "error": reason})).collect();
    if !store_ok {
        problems.push(json!({"store": "the database does not answer"}));
    }
    let channels = gw.channel_status.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let ready = gw.is_ready() && store_ok;
    let body = json!({
        "ready": ready,
        "plugins": gw.host.loaded.iter().map(|l| &l.manifest.id).collect::<Vec<_>>(),
        "shops": gw.connectors.keys().map(|(p, s)| format!("{p}/{s}")).collect::<Vec<_>>(),
        "channels": channels,
        "problems": problems,
    });
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body))
}

async fn metrics(State(gw): State<Arc<Gateway>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], gw.metrics.render())
}
