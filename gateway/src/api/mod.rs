//! The HTTP surface: platform pushes (`/hooks`), health, readiness, metrics, the agent and
//! operator API (`/api/v1`, with its OpenAPI document) and the workbench.
//!
//! Every refusal is JSON `{code, message}` — an unknown route, a wrong method, a bad body,
//! query or path included ([`error`]).
//!
//! `app()` is kept apart from `main` so tests drive it with `oneshot` and no socket.

pub mod caller;
pub mod error;
pub mod headers;
mod v1;
mod workbench;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use serde_json::json;

use crate::flow::Flow;
use crate::ingress::push::PushState;
use crate::metrics::Metrics;
use crate::services::blacklist::Blacklist;
use crate::services::dashboard::Dashboard;
use crate::services::desk::Desk;
use crate::services::logins::Logins;
use crate::services::status::Status;

/// Reloads the reloadable configuration files (the composition root implements it: it owns the
/// config loader). `Err` carries every problem; the running configuration stays.
pub trait Reloader: Send + Sync + std::fmt::Debug {
    fn reload_all(&self) -> ReloadFuture<'_>;
}

/// What [`Reloader::reload_all`] returns: the files reloaded, or every problem.
pub type ReloadFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<String>, Vec<String>>> + Send + 'a>>;

/// What the API acts through.
#[derive(Debug)]
pub struct ApiState {
    pub flow: Arc<Flow>,
    pub desk: Desk,
    pub logins: Logins,
    pub blacklist: Arc<Blacklist>,
    pub dashboard: Arc<Dashboard>,
    pub metrics: Arc<Metrics>,
    pub status: Arc<Status>,
    pub reloader: Arc<dyn Reloader>,
    /// Edits of faq.toml's entries (leads and admins).
    pub faq: Arc<crate::services::faq_file::FaqFile>,
    /// `api.image_origins`: where buyers' pictures may be shown from (the CSP's `img-src`).
    pub image_origins: Vec<String>,
    /// In a cluster: this node's leases and NATS connection (shown on `/readyz`).
    pub cluster: Option<(Arc<crate::cluster::Leases>, crate::cluster::Bus)>,
}

/// The router for the whole daemon.
pub fn app(state: ApiState, push: Arc<PushState>) -> Router {
    let csp = Arc::new(headers::policy(&state.image_origins));
    let (v1, _) = v1::routes();
    let state = Arc::new(state);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .nest("/api/v1", v1.method_not_allowed_fallback(error::wrong_method))
        .with_state(state)
        .merge(crate::ingress::push::routes(push))
        .merge(workbench::routes())
        .fallback(error::no_route)
        .method_not_allowed_fallback(error::wrong_method)
        .layer(axum::middleware::from_fn_with_state(csp, headers::security_headers))
}

/// The OpenAPI document of `/api/v1`, as served (generated from the routes' declaration on the
/// first request for it, then kept).
pub fn openapi_document() -> &'static str {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOC.get_or_init(|| v1::document(&v1::routes().1))
}

/// Liveness: the process answers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: the store answers and every enabled shop has its connector. The body says what
/// is missing, so an operator sees why without reading logs.
async fn readyz(State(state): State<Arc<ApiState>>) -> impl IntoResponse {
    let store_ok = state.desk.store_ok().await;
    let mut problems: Vec<serde_json::Value> =
        state.status.shop_errors().iter().map(|(shop, reason)| json!({"shop": shop, "error": reason})).collect();
    if !store_ok {
        problems.push(json!({"store": "the database does not answer"}));
    }
    let ready = state.status.shops_ready() && store_ok;
    let body = json!({
        "ready": ready,
        "plugins": state.status.plugins,
        "shops": state.status.shops(),
        "channels": state.status.channels(),
        "channel_states": state.status.channel_states(),
        "shop_tokens": state.status.tokens(),
        "problems": problems,
        "cluster": state.cluster.as_ref().map(|(leases, bus)| json!({
            "node": leases.node(),
            "nats": if bus.connected() { "connected" } else { "disconnected" },
            "leases": leases.held().into_iter().map(|(name, epoch)| json!({"name": name, "epoch": epoch})).collect::<Vec<_>>(),
            "routing_leader": state.flow.routing.as_ref().is_some_and(|r| r.leads()),
        })),
    });
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body))
}

async fn metrics(State(state): State<Arc<ApiState>>) -> impl IntoResponse {
    // The bot's figures are the store's totals (the same on every node), read at each scrape.
    state.desk.publish_bot_metrics(&state.metrics).await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render())
}
