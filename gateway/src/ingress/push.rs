//! The push route: `POST /hooks/{platform}/{shop}`.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, to_bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use huiliu_sdk::abi::host::CallError;
use huiliu_sdk::{HttpPush, HttpResponse, PushOutcome};
use serde_json::json;

use crate::flow::{Ack, Flow};
use crate::metrics::Metrics;
use crate::plugins::Connectors;

/// Turns a connector's response into an HTTP response.
pub fn to_response(r: HttpResponse) -> Response {
    let mut response = Response::new(Body::from(r.body));
    *response.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in r.headers {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
            response.headers_mut().append(k, v);
        }
    }
    response
}

fn refuse(metrics: &Metrics, platform: &str, status: StatusCode, reason: &str, message: String) -> Response {
    Metrics::count(&metrics.pushes_rejected, platform, reason);
    tracing::warn!(platform, reason, "push refused: {message}");
    (status, axum::Json(json!({"error": reason, "message": message}))).into_response()
}

/// What the push route needs.
#[derive(Debug)]
pub struct PushState {
    pub flow: Arc<Flow>,
    pub connectors: Arc<Connectors>,
    pub metrics: Arc<Metrics>,
    /// Largest accepted push body in bytes.
    pub max_push_bytes: usize,
}

/// `/hooks/{platform}/{shop}` (POST; GET for platforms that verify a URL that way).
pub fn routes(state: Arc<PushState>) -> axum::Router {
    axum::Router::new().route("/hooks/{platform}/{shop}", axum::routing::post(hook).get(hook)).with_state(state)
}

/// Handles one platform push.
async fn hook(
    State(gw): State<Arc<PushState>>,
    Path((platform, shop)): Path<(String, String)>,
    request: Request,
) -> Response {
    let started = Instant::now();
    let metrics = &gw.metrics;
    // Label only with configured platforms, never with whatever a client put in the path.
    let Some(connector) = gw.connectors.get(&platform, &shop).cloned() else {
        return refuse(
            metrics,
            "unknown",
            StatusCode::NOT_FOUND,
            "unknown_shop",
            format!("no shop `{shop}` on platform `{platform}`"),
        );
    };
    metrics.pushes_received.get_or_create(&crate::metrics::PlatformLabels { platform: platform.clone() }).inc();
    let (parts, body) = request.into_parts();
    let limit = gw.max_push_bytes;
    let body = match to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return refuse(
                metrics,
                &platform,
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("body over {limit} bytes"),
            );
        }
    };
    let push = HttpPush {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or("").to_owned(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        body: body.to_vec(),
    };
    let now = huiliu_domain::now_millis();
    let response = match connector.decode_push(&push, now) {
        Err(CallError::Panicked(message)) => {
            // Already logged with the plugin id and counted by the connector wrapper.
            Metrics::count(&metrics.pushes_rejected, &platform, "plugin_panic");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(json!({"error": "plugin_panic", "plugin": connector.plugin_id, "message": message})),
            )
                .into_response()
        }
        Err(e) => refuse(metrics, &platform, StatusCode::INTERNAL_SERVER_ERROR, "plugin_error", e.to_string()),
        Ok(PushOutcome::Rejected { kind, reason, response }) => {
            Metrics::count(&metrics.pushes_rejected, &platform, kind.as_str());
            tracing::warn!(platform, shop, reason = kind.as_str(), "push rejected: {reason}");
            to_response(response)
        }
        Ok(PushOutcome::Accepted { events, dead_letters, ack, nack, ignored }) => {
            // Authentic units the connector has no use for: logged, never stored, never refused.
            for unit in &ignored {
                tracing::info!(
                    platform,
                    shop,
                    unit_type = unit.unit_type,
                    event_id = unit.event_id.as_deref().unwrap_or(""),
                    "push unit ignored: {}",
                    unit.reason
                );
            }
            // The one inbound flow; routing follows the acknowledgement.
            match gw.flow.inbound(events, dead_letters, &platform, &shop, now).await {
                Ack::Durable => to_response(ack),
                Ack::Redeliver => to_response(nack),
            }
        }
    };
    metrics.push_seconds.observe(started.elapsed().as_secs_f64());
    response
}
