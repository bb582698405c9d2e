//! `GET /api/v1/events`: the workbench's live event stream, a WebSocket.
//!
//! Authenticate with `Authorization: Bearer <token>` or, from a browser (which cannot set
//! headers on a WebSocket), `?token=<token>`. Each text frame is one JSON event with `seq`,
//! `at` and `type` (see [`crate::events::GatewayEvent`]), only those the user may see. The
//! first frame is `{"type":"hello","seq":N,...}`, N being the last event published.
//!
//! The token is watched while the stream is open: when it is revoked (logout, the user's
//! password reset), expires, or its user is disabled or removed, the server sends
//! `{"type":"closed","reason":"revoked"|"expired"|"user_disabled"|"user_removed"}` and closes
//! the socket (close code 4001).
//!
//! Resume: reconnect with `?since=<last seq seen>`; the missed events (that the user may see)
//! come first, then live ones, none twice. When `since` is older than the events kept (or the
//! client fell too far behind), the server sends `{"type":"resync"}`: reload the lists, then go
//! on from the `seq` of the frames that follow.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use huiliu_domain::Principal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use crate::api::ApiState;
use crate::api::caller::{bearer, resolve};
use crate::api::error::{ApiError, ErrorBody, Json, Query};
use crate::events::Stamped;

/// How to open the stream.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// The bearer token, for browsers (which cannot set headers on a WebSocket).
    token: Option<String>,
    /// Resume after this event number.
    #[param(minimum = 0)]
    since: Option<i64>,
}

/// Where the stream stands, for a plain GET (no WebSocket upgrade).
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamInfo {
    /// The last event published: connect with `?since=` this to miss nothing from now on.
    pub seq: u64,
    /// How to connect: `websocket` (send `Connection: Upgrade`, `Upgrade: websocket`).
    pub upgrade: String,
}

/// The live event stream: a WebSocket (101). A plain GET, without the upgrade headers, answers
/// where the stream stands.
#[utoipa::path(get, path = "/events", tag = "auth", params(StreamQuery),
    responses(
        (status = 101, description = "Switching to the WebSocket"),
        (status = 200, description = "Not a WebSocket request: where the stream stands", body = StreamInfo),
        (status = 426, description = "A WebSocket request on a connection that cannot be upgraded", body = ErrorBody),
    ))]
pub async fn events(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Query(q): Query<StreamQuery>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    // Who first: an anonymous caller hears 401 whether or not they asked for a WebSocket.
    let token = q.token.clone().or_else(|| bearer(&headers).map(str::to_owned)).unwrap_or_default();
    let user = resolve(&state, q.token.as_deref().or_else(|| bearer(&headers))).await?;
    let since = match q.since {
        Some(s) if s < 0 => return Err(ApiError::bad_request("bad_query", "`since` must not be negative")),
        s => s.map(|s| s as u64),
    };
    match ws {
        // Small buffers: thousands of agents stay connected, and clients send almost nothing
        // (the defaults reserve 128 KiB per connection for reading).
        Ok(ws) => Ok(ws
            .read_buffer_size(4 * 1024)
            .write_buffer_size(8 * 1024)
            .on_upgrade(move |socket| serve(state, user, token, since, socket))),
        Err(WebSocketUpgradeRejection::ConnectionNotUpgradable(r)) => {
            Err(ApiError(StatusCode::UPGRADE_REQUIRED, "upgrade_required", r.body_text()))
        }
        Err(_) => {
            Ok(Json(StreamInfo { seq: state.flow.events.last_seq(), upgrade: "websocket".into() }).into_response())
        }
    }
}

fn frame(e: &Stamped) -> Message {
    Message::Text(Utf8Bytes::from(serde_json::to_string(e).unwrap_or_default()))
}
/// Waits until `token` may have stopped working: a revocation signal, or its expiry.
async fn token_check_due(revocations: &mut tokio::sync::watch::Receiver<u64>, expires_at: Option<i64>) {
    let until_expiry = async {
        match expires_at {
            Some(at) => {
                let ms = at.saturating_sub(huiliu_domain::now_millis()).max(0) as u64;
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        changed = revocations.changed() => {
            if changed.is_err() {
                std::future::pending::<()>().await;
            }
        }
        _ = until_expiry => {}
    }
}

async fn serve(state: Arc<ApiState>, user: Principal, token: String, since: Option<u64>, mut socket: WebSocket) {
    let hub = &state.flow.events;
    let mut revocations = state.logins.revocations();
    revocations.mark_unchanged();
    let mut expires_at = state.logins.token_expiry(&token).await.ok().flatten();
    let mut sub = hub.resume_for(&user, since.unwrap_or(u64::MAX));
    state.metrics.stream_clients.inc();
    let guard = Subscribed(state.clone(), std::cell::Cell::new(sub.id));
    let hello = json!({"type": "hello", "seq": sub.last, "user": user.id, "role": user.role});
    if socket.send(Message::Text(hello.to_string().into())).await.is_err() {
        return;
    }
    // The last event this client has been given (or that a resync covered).
    // A `since` ahead of this process's numbering came from before a restart (the numbers
    // start again at 1): everything kept counts as missed. In a cluster the numbers are the
    // event stream's, the same on every node: a `since` ahead is an event this node has not read
    // from the stream yet, and it must not be given twice.
    let mut sent = match since {
        Some(s) if hub.is_global() => s,
        Some(s) => s.min(sub.last),
        None => sub.last,
    };
    let mut ping = tokio::time::interval(Duration::from_secs(20));
    ping.tick().await;
    loop {
        match std::mem::replace(&mut sub.replay, Ok(Vec::new())) {
            Ok(events) => {
                for e in events.iter().filter(|e| e.seq > sent) {
                    if socket.send(frame(e)).await.is_err() {
                        return;
                    }
                }
            }
            Err(gap) => {
                let msg = json!({"type": "resync", "reason": "gap", "oldest": gap.oldest, "seq": sub.last});
                if socket.send(Message::Text(msg.to_string().into())).await.is_err() {
                    return;
                }
            }
        }
        sent = sent.max(sub.last);
        loop {
            tokio::select! {
                event = sub.rx.recv() => match event {
                    Some(e) => {
                        if e.seq <= sent {
                            continue;
                        }
                        sent = e.seq;
                        if socket.send(frame(&e)).await.is_err() {
                            return;
                        }
                    }
                    // Fell behind (or the hub dropped us): catch up from the ring.
                    None => break,
                },
                incoming = socket.recv() => match incoming {
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => {}
                },
                _ = ping.tick() => {
                    if socket.send(Message::Ping(Default::default())).await.is_err() {
                        return;
                    }
                }
                _ = token_check_due(&mut revocations, expires_at) => {
                    if let Ok(Some(_)) = state.logins.resolve(&token).await {
                        // Still good (another user's token ended, or the expiry moved).
                        expires_at = state.logins.token_expiry(&token).await.ok().flatten();
                        continue;
                    }
                    let reason = state.logins.why_ended(&token, &user.id).await;
                    tracing::info!(user = %user.id, reason, "event stream closed: the token no longer works");
                    let msg = json!({"type": "closed", "reason": reason});
                    let _ = socket.send(Message::Text(msg.to_string().into())).await;
                    let close = axum::extract::ws::CloseFrame { code: 4001, reason: Utf8Bytes::from(reason) };
                    let _ = socket.send(Message::Close(Some(close))).await;
                    return;
                }
            }
        }
        tracing::warn!(user = %user.id, last = sent, "event stream client fell behind; resuming from the ring");
        // The hub has already dropped the old subscription.
        sub = hub.resume_for(&user, sent);
        guard.1.set(sub.id);
    }
}

/// Counts the client and ends its subscription when it goes.
struct Subscribed(Arc<ApiState>, std::cell::Cell<u64>);

impl Drop for Subscribed {
    fn drop(&mut self) {
        self.0.flow.events.unsubscribe(self.1.get());
        self.0.metrics.stream_clients.dec();
    }
}
