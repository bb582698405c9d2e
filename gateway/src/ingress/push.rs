//! The push route: `POST /hooks/{platform}/{shop}`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, to_bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use huiliu_sdk::abi::host::CallError;
use huiliu_sdk::{DeadLetter, HttpPush, HttpResponse, InboundEvent, Lookup, LookupOutcome, PushOutcome};
use serde_json::json;

use crate::flow::{Ack, Flow};
use crate::metrics::Metrics;
use crate::outbox::http;
use crate::plugins::{Connectors, ShopConnector};

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
    /// The HTTP client lookups go through.
    pub http: reqwest::Client,
    /// Timeout of one lookup call (kept short: the platform waits for the push's answer).
    pub lookup_timeout_ms: u64,
}

/// `/hooks/{platform}/{shop}` (POST; GET for platforms that verify a URL that way).
pub fn routes(state: Arc<PushState>) -> axum::Router {
    axum::Router::new().route("/hooks/{platform}/{shop}", axum::routing::post(hook).get(hook)).with_state(state)
}

/// Attempts per lookup before the push is answered with `nack`, and the pause after each.
const LOOKUP_BACKOFF_MS: [u64; 2] = [200, 800];

/// Performs each lookup (retrying a `Retry` answer or a transport failure twice) and has the
/// connector complete its unit: the events and dead letters they make, or why one could not
/// complete yet.
async fn lookup_all(
    gw: &PushState,
    connector: &ShopConnector,
    lookups: Vec<Lookup>,
) -> Result<(Vec<InboundEvent>, Vec<DeadLetter>), String> {
    let (mut events, mut dead) = (Vec::new(), Vec::new());
    for lookup in lookups {
        let mut attempt = 0;
        loop {
            let timeout = Duration::from_millis(gw.lookup_timeout_ms);
            let answer = match http::perform(&gw.http, lookup.request.clone(), timeout).await {
                Ok(response) => connector
                    .complete_lookup(&lookup.context, &response, huiliu_domain::now_millis())
                    .unwrap_or_else(|e| LookupOutcome::Retry { reason: format!("the connector failed: {e}") }),
                Err(e) => LookupOutcome::Retry { reason: format!("the platform did not answer: {e}") },
            };
            match answer {
                LookupOutcome::Complete { events: done } => {
                    Metrics::count(&gw.metrics.lookups, &connector.platform, "complete");
                    events.extend(done);
                }
                LookupOutcome::Failed { reason } => {
                    Metrics::count(&gw.metrics.lookups, &connector.platform, "failed");
                    dead.push(DeadLetter {
                        reason: format!("lookup failed: {reason}"),
                        event_id: lookup.event_id.clone(),
                        raw: lookup.raw.clone(),
                    });
                }
                LookupOutcome::Retry { reason } => match LOOKUP_BACKOFF_MS.get(attempt) {
                    Some(pause) => {
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(*pause)).await;
                        continue;
                    }
                    None => {
                        Metrics::count(&gw.metrics.lookups, &connector.platform, "pending");
                        return Err(reason);
                    }
                },
            }
            break;
        }
    }
    Ok((events, dead))
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
    let Some(connector) = gw.connectors.get(&platform, &shop) else {
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
        Ok(PushOutcome::Accepted { mut events, mut dead_letters, ack, nack, ignored, lookups }) => {
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
            // Units that need one more platform call first (order enrichment): completed, or
            // dead-lettered for good, before anything is stored; one that cannot complete yet
            // makes the platform push again.
            match lookup_all(&gw, &connector, lookups).await {
                Ok((more, dead)) => {
                    events.extend(more);
                    dead_letters.extend(dead);
                    // The one inbound flow; routing follows the acknowledgement.
                    match gw.flow.inbound(events, dead_letters, &platform, &shop, now).await {
                        Ack::Durable => to_response(ack),
                        Ack::Redeliver => to_response(nack),
                    }
                }
                Err(reason) => {
                    Metrics::count(&metrics.pushes_rejected, &platform, "lookup_pending");
                    tracing::warn!(platform, shop, "push not acknowledged, a lookup could not complete: {reason}");
                    to_response(nack)
                }
            }
        }
    };
    metrics.push_seconds.observe(started.elapsed().as_secs_f64());
    response
}
