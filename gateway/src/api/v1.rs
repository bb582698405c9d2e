//! `/api/v1`: sessions, history, replies and the outbox, as JSON. Errors are JSON with a stable
//! `code` and a human `message`.
//!
//! Access: `Authorization: Bearer <api.admin_token>` (operator). Agent logins and roles come
//! with the workbench.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use huiliu_sdk::Content;
use serde::Deserialize;
use serde_json::json;

use crate::Gateway;
use crate::auth::{Actor, Role};
use crate::filters::blacklist::BlacklistError;
use crate::pipeline::{ReplyError, ReplyOutcome, ReplyRequest};
use crate::sessions::{SessionFilter, SessionState};
use crate::store::StoreError;
use crate::store::blacklist::{EntryState, Proposal};

pub fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/status", get(status))
        .route("/sessions", get(list_sessions))
        .route("/sessions/{id}", get(session))
        .route("/sessions/{id}/reply", post(reply))
        .route("/sessions/{id}/close", post(close))
        .route("/customers/{id}/history", get(history))
        .route("/outbox/{id}/retry", post(retry))
        .route("/blacklist", get(blacklist_list).post(blacklist_propose))
        .route("/messages/{id}/reveal", post(reveal))
        .route("/audit", get(audit))
        .route("/config/reload", post(config_reload))
        .route("/routing", get(routing_state))
        .route("/agents/{id}/status", post(agent_status))
        .route("/sessions/{id}/transfer", post(transfer))
        .route("/blacklist/reload", post(blacklist_reload))
        .route("/blacklist/{id}/{action}", post(blacklist_decide))
}

/// The operator token acts as an admin named `operator` until agent logins exist.
fn operator() -> Actor {
    Actor::new("operator", Role::Admin)
}

fn blacklist_error(e: BlacklistError) -> ApiError {
    match e {
        BlacklistError::Forbidden(m) => ApiError(StatusCode::FORBIDDEN, "forbidden", m),
        BlacklistError::Invalid(m) => ApiError(StatusCode::BAD_REQUEST, "invalid", m),
        BlacklistError::NotFound(id) => not_found(format!("blacklist entry {id}")),
        e @ BlacklistError::WrongState { .. } => ApiError(StatusCode::CONFLICT, "wrong_state", e.to_string()),
        BlacklistError::Store(e) => e.into(),
    }
}

#[derive(Debug, Deserialize)]
struct StateQuery {
    state: Option<String>,
}

async fn blacklist_list(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Query(q): Query<StateQuery>,
) -> ApiResult<serde_json::Value> {
    authorize(&gw, &headers)?;
    let state = match q.state.as_deref() {
        None => None,
        Some(s) => Some(
            EntryState::parse(s)
                .ok_or_else(|| ApiError(StatusCode::BAD_REQUEST, "bad_state", format!("unknown state `{s}`")))?,
        ),
    };
    Ok(Json(json!({"entries": gw.blacklist.list(state).await.map_err(blacklist_error)?})))
}

async fn blacklist_propose(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Json(p): Json<Proposal>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    authorize(&gw, &headers)?;
    let id = gw.blacklist.propose(&operator(), &p, crate::now_millis()).await.map_err(blacklist_error)?;
    Ok((StatusCode::CREATED, Json(json!({"id": id, "state": "proposed"}))))
}

#[derive(Debug, Deserialize)]
struct RevealBody {
    /// Why the original is needed (written to the audit log).
    reason: String,
}

/// Reveals the original of a masked message to a lead or admin, audited with the reason.
async fn reveal(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Json(body): Json<RevealBody>,
) -> ApiResult<serde_json::Value> {
    authorize(&gw, &headers)?;
    let actor = operator();
    if !actor.role.can_review() {
        return Err(ApiError(StatusCode::FORBIDDEN, "forbidden", "only a lead or an admin may reveal".into()));
    }
    if body.reason.trim().is_empty() {
        return Err(ApiError(StatusCode::BAD_REQUEST, "reason_required", "say why the original is needed".into()));
    }
    let Some(sealer) = &gw.pipeline.sealer else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            "not_kept",
            "originals are not kept (privacy.seal_key is not set)".into(),
        ));
    };
    gw.store.message(id).await?.ok_or_else(|| not_found(format!("message {id}")))?;
    let sealed = gw.store.message_sealed(id).await?.ok_or_else(|| {
        ApiError(StatusCode::NOT_FOUND, "not_kept", format!("message {id} has no kept original (nothing was masked)"))
    })?;
    let original = sealer.open(&sealed).map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "cannot_open", e))?;
    let detail = json!({"reason": body.reason}).to_string();
    gw.store.audit(&actor.id, "message.reveal", &format!("message:{id}"), &detail, crate::now_millis()).await?;
    tracing::info!(message = id, actor = %actor.id, "masked message revealed (audited)");
    Ok(Json(json!({"message_id": id, "original": original})))
}

/// Reloads the reloadable configuration (admin). 422 with every error when a file is bad; the
/// running configuration stays.
async fn config_reload(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    authorize(&gw, &headers)?;
    match crate::reload::reload_all(&gw).await {
        Ok(report) => Ok((StatusCode::OK, Json(json!({"reloaded": report.reloaded})))),
        Err(errors) => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({
                "code": "invalid_config",
                "message": "the configuration was not reloaded; the running configuration stays",
                "errors": errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
            })),
        )),
    }
}

fn no_routing() -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "routing_off", "routing is not configured (no routing.toml)".into())
}

/// Queues and agents as the router sees them.
async fn routing_state(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> ApiResult<serde_json::Value> {
    authorize(&gw, &headers)?;
    let d = gw.dispatch.as_ref().ok_or_else(no_routing)?;
    Ok(Json(serde_json::to_value(d.state().await).unwrap_or_default()))
}

#[derive(Debug, Deserialize)]
struct StatusBody {
    /// online, busy, away or offline.
    status: String,
}

/// Sets an agent's status (the workbench's status switch).
async fn agent_status(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(agent): Path<String>,
    Json(body): Json<StatusBody>,
) -> ApiResult<serde_json::Value> {
    authorize(&gw, &headers)?;
    let d = gw.dispatch.as_ref().ok_or_else(no_routing)?;
    let status = crate::dispatch::parse_status(&body.status).ok_or_else(|| {
        ApiError(
            StatusCode::BAD_REQUEST,
            "bad_status",
            format!("unknown status `{}` (online, busy, away, offline)", body.status),
        )
    })?;
    d.set_status(&gw, &agent, status).await.map_err(|e| ApiError(StatusCode::NOT_FOUND, "unknown_agent", e))?;
    Ok(Json(json!({"agent": agent, "status": body.status})))
}

#[derive(Debug, Deserialize)]
struct TransferBody {
    to_agent: Option<String>,
    to_group: Option<String>,
    /// The handover note: the buyer's problem, what was tried, what the buyer expects.
    problem: String,
    #[serde(default)]
    tried: String,
    #[serde(default)]
    expects: String,
}

/// Transfers a session to an agent or a group with a handover note.
async fn transfer(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Json(body): Json<TransferBody>,
) -> ApiResult<serde_json::Value> {
    authorize(&gw, &headers)?;
    let d = gw.dispatch.as_ref().ok_or_else(no_routing)?;
    if body.problem.trim().is_empty() {
        return Err(ApiError(StatusCode::BAD_REQUEST, "note_required", "a handover note needs the problem".into()));
    }
    let session = gw.store.session(id).await?.ok_or_else(|| not_found(format!("session {id}")))?;
    let to = match (&body.to_agent, &body.to_group) {
        (Some(a), None) => crate::router::TransferTo::Agent(a.clone()),
        (None, Some(g)) => crate::router::TransferTo::Group(g.clone()),
        _ => {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                "bad_target",
                "give exactly one of to_agent, to_group".into(),
            ));
        }
    };
    let note = crate::router::HandoverNote {
        problem: body.problem.clone(),
        tried: body.tried.clone(),
        expects: body.expects.clone(),
    };
    d.transfer(&gw, id, to, note).await.map_err(|e| ApiError(StatusCode::CONFLICT, "transfer_refused", e))?;
    let stored = crate::sessions::HandoverNote { problem: body.problem, tried: body.tried, expectation: body.expects };
    gw.store
        .record_transfer(
            id,
            session.agent.as_deref(),
            body.to_agent.as_deref(),
            body.to_group.as_deref(),
            &stored,
            crate::now_millis(),
        )
        .await?;
    Ok(Json(json!({"transferred": id})))
}

#[derive(Debug, Deserialize)]
struct AuditQuery {
    subject: String,
}

/// The audit trail of one subject (`message:12`, `blacklist:3`).
async fn audit(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Query(q): Query<AuditQuery>,
) -> ApiResult<serde_json::Value> {
    authorize(&gw, &headers)?;
    let rows = gw.store.audit_trail(&q.subject).await?;
    let entries: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|(at, actor, action, detail)| json!({"at": at, "actor": actor, "action": action, "detail": detail}))
        .collect();
    Ok(Json(json!({"subject": q.subject, "entries": entries})))
}

/// Re-reads approved entries now (decisions made by the CLI or another node otherwise arrive
/// within the 30 s background reload).
async fn blacklist_reload(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> ApiResult<serde_json::Value> {
    authorize(&gw, &headers)?;
    gw.blacklist.reload().await?;
    Ok(Json(json!({"reloaded": true})))
}

#[derive(Debug, Deserialize, Default)]
struct DecisionBody {
    note: Option<String>,
}

async fn blacklist_decide(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path((id, action)): Path<(i64, String)>,
    body: Option<Json<DecisionBody>>,
) -> ApiResult<serde_json::Value> {
    authorize(&gw, &headers)?;
    let note = body.and_then(|b| b.0.note);
    let now = crate::now_millis();
    let actor = operator();
    let entry = match action.as_str() {
        "approve" => gw.blacklist.approve(&actor, id, note.as_deref(), now).await,
        "reject" => gw.blacklist.reject(&actor, id, note.as_deref(), now).await,
        "remove" => gw.blacklist.remove(&actor, id, note.as_deref(), now).await,
        other => {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                "unknown_action",
                format!("`{other}`: use approve, reject or remove"),
            ));
        }
    }
    .map_err(blacklist_error)?;
    Ok(Json(json!({"entry": entry})))
}

/// An API error: HTTP status, stable code, message.
#[derive(Debug)]
pub struct ApiError(StatusCode, &'static str, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"code": self.1, "message": self.2}))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!("store error in API: {e}");
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, "store_error", "the store failed; see the gateway log".into())
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

fn authorize(gw: &Gateway, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = &gw.config.api.admin_token;
    if token.is_empty() {
        return Err(ApiError(StatusCode::FORBIDDEN, "api_disabled", "set api.admin_token to use the API".into()));
    }
    let given = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(g) if huiliu_sdk::crypto::signature_eq(g, token) => Ok(()),
        _ => Err(ApiError(StatusCode::UNAUTHORIZED, "unauthorized", "missing or wrong bearer token".into())),
    }
}

async fn status(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> ApiResult<serde_json::Value> {
    authorize(&gw, &headers)?;
    let channels = gw.channel_status.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(Json(json!({
        "channels": channels,
        "outbox": gw.store.outbox_counts().await?.into_iter().collect::<std::collections::BTreeMap<_, _>>(),
        "dead_letters": gw.store.dead_letter_counts().await?.into_iter().collect::<std::collections::BTreeMap<_, _>>(),
        "shop_errors": gw.shop_errors,
    })))
}

#[derive(Debug, Deserialize)]
struct SessionQuery {
    shop: Option<String>,
    platform: Option<String>,
    state: Option<String>,
    agent: Option<String>,
    from: Option<i64>,
    to: Option<i64>,
    limit: Option<i64>,
}

async fn list_sessions(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Query(q): Query<SessionQuery>,
) -> ApiResult<serde_json::Value> {
    authorize(&gw, &headers)?;
    let state = match q.state.as_deref() {
        None => None,
        Some(s) => Some(SessionState::parse(s).ok_or_else(|| {
            ApiError(
                StatusCode::BAD_REQUEST,
                "bad_state",
                format!("unknown state `{s}` (queued, assigned, bot, off_hours, closed)"),
            )
        })?),
    };
    let filter = SessionFilter {
        shop: q.shop,
        platform: q.platform,
        state,
        agent: q.agent,
        from: q.from,
        to: q.to,
        limit: q.limit,
    };
    Ok(Json(json!({"sessions": gw.store.search_sessions(&filter).await?})))
}

fn not_found(what: String) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "not_found", what)
}

async fn session(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<serde_json::Value> {
    authorize(&gw, &headers)?;
    let s = gw.store.session(id).await?.ok_or_else(|| not_found(format!("session {id}")))?;
    let customer = gw.store.customer(s.customer_id).await?;
    Ok(Json(json!({
        "session": s,
        "customer": customer,
        "messages": gw.store.session_messages(id).await?,
        "trades": gw.store.customer_trades(s.customer_id, 20).await?,
        "transfers": gw.store.transfers(id).await?,
        "decisions": gw.store.decisions(id).await?,
    })))
}

#[derive(Debug, Deserialize)]
struct ReplyBody {
    /// Plain text to send.
    text: Option<String>,
    /// Or rich content elements.
    content: Option<Vec<Content>>,
    /// The agent sending it (defaults to `operator`).
    author: Option<String>,
}

async fn reply(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Json(body): Json<ReplyBody>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    authorize(&gw, &headers)?;
    let content = match (body.content, body.text) {
        (Some(c), _) if !c.is_empty() => c,
        (_, Some(t)) if !t.trim().is_empty() => vec![Content::text(t)],
        _ => return Err(ApiError(StatusCode::BAD_REQUEST, "empty_reply", "give `text` or `content`".into())),
    };
    let request = ReplyRequest { session_id: id, author: body.author.unwrap_or_else(|| "operator".into()), content };
    match gw.reply(request).await {
        Ok(ReplyOutcome::Queued { message_id, outbox_id, client_msg_id, warnings }) => Ok((
            StatusCode::ACCEPTED,
            Json(json!({
                "message_id": message_id, "outbox_id": outbox_id, "client_msg_id": client_msg_id,
                "delivery": "pending", "compliance": {"action": if warnings.is_empty() { "allow" } else { "warn" }, "hits": warnings},
            })),
        )),
        Ok(ReplyOutcome::Blocked { message_id, hits }) => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({
                "code": "compliance_blocked", "message": "the reply was not sent: it breaks a compliance rule",
                "message_id": message_id, "delivery": "failed", "compliance": {"action": "block", "hits": hits},
            })),
        )),
        Err(ReplyError::NoSession(id)) => Err(not_found(format!("session {id}"))),
        Err(ReplyError::Closed(id)) => {
            Err(ApiError(StatusCode::CONFLICT, "session_closed", format!("session {id} is closed")))
        }
        Err(ReplyError::Empty) => Err(ApiError(StatusCode::BAD_REQUEST, "empty_reply", "nothing to send".into())),
        Err(ReplyError::Store(e)) => Err(e.into()),
    }
}

async fn close(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<serde_json::Value> {
    authorize(&gw, &headers)?;
    gw.store.session(id).await?.ok_or_else(|| not_found(format!("session {id}")))?;
    gw.close_session(id, "agent").await?;
    Ok(Json(json!({"closed": id})))
}

#[derive(Debug, Deserialize)]
struct HistoryQuery {
    before: Option<i64>,
    limit: Option<i64>,
}

async fn history(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(q): Query<HistoryQuery>,
) -> ApiResult<serde_json::Value> {
    authorize(&gw, &headers)?;
    let messages = gw.store.customer_history(id, q.before, q.limit.unwrap_or(50)).await?;
    let next = messages.last().map(|m| m.id);
    Ok(Json(json!({"messages": messages, "next_before": next})))
}

async fn retry(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<serde_json::Value> {
    authorize(&gw, &headers)?;
    if gw.store.outbox_manual_retry(id, crate::now_millis()).await? {
        gw.pipeline.outbox_wake.notify_one();
        Ok(Json(json!({"retrying": id})))
    } else {
        Err(ApiError(StatusCode::CONFLICT, "not_failed", format!("outbox item {id} is not failed (or does not exist)")))
    }
}
