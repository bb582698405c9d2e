//! `/api/v1`: the workbench's API, as JSON. Errors are JSON with a stable `code` and a human
//! `message`. The OpenAPI document (`openapi.json` beside this file, served at
//! `/api/v1/openapi.json`) lists every route; a test keeps the two in step.
//!
//! Access: `Authorization: Bearer <token>` with a token from `POST /auth/login`, or the
//! operator's `api.admin_token` (admin). Every handler starts by resolving the caller and checks
//! their role and, for a session, that they may see it ([`Principal::may_see`]): an agent their
//! own sessions, a lead also their groups', an admin everything.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post, put};
use huiliu_sdk::Content;
use serde::Deserialize;
use serde_json::json;

use crate::Gateway;
use crate::auth::LoginError;
use crate::flow::{Author, ReplyError, ReplyOutcome, ReplyRequest, TransferError};
use crate::services::blacklist::BlacklistError;
use huiliu_domain::session::{Session, SessionFilter, SessionState};
use huiliu_domain::{Principal, Role};
use huiliu_store::StoreError;
use huiliu_store::blacklist::{EntryState, Proposal};

/// The OpenAPI 3.1 description of this module's routes.
pub const OPENAPI: &str = include_str!("openapi.json");

pub fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/me", get(me))
        .route("/events", get(super::stream::events))
        .route("/status", get(status))
        .route("/dashboard", get(super::dashboard::dashboard))
        .route("/agents", get(agents))
        .route("/agents/{id}/status", post(agent_status))
        .route("/sessions", get(list_sessions))
        .route("/sessions/{id}", get(session))
        .route("/sessions/{id}/messages", get(messages))
        .route("/sessions/{id}/reply", post(reply))
        .route("/sessions/{id}/quick-replies", get(session_quick_replies))
        .route("/sessions/{id}/close", post(close))
        .route("/sessions/{id}/transfer", post(transfer))
        .route("/sessions/{id}/explain", get(explain))
        .route("/quick-replies", get(quick_replies))
        .route("/customers/{id}/history", get(history))
        .route("/customers/{id}/profile", put(profile))
        .route("/outbox/{id}/retry", post(retry))
        .route("/blacklist", get(blacklist_list).post(blacklist_propose))
        .route("/blacklist/reload", post(blacklist_reload))
        .route("/blacklist/{id}/{action}", post(blacklist_decide))
        .route("/messages/{id}/reveal", post(reveal))
        .route("/audit", get(audit))
        .route("/routing", get(routing_state))
        .route("/config/reload", post(config_reload))
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

#[derive(Debug, Deserialize)]
struct LoginBody {
    user: String,
    password: String,
}

/// Logs in with a user id and password; returns a bearer token.
async fn login(
    State(gw): State<Arc<Gateway>>,
    Json(body): Json<LoginBody>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let now = huiliu_domain::now_millis();
    let user = match gw.auth.login(&body.user, &body.password, now).await {
        Ok(u) => u.clone(),
        Err(LoginError::BadCredentials) => {
            gw.metrics.logins.get_or_create(&crate::metrics::ResultLabels { result: "bad_credentials".into() }).inc();
            return Err(ApiError(StatusCode::UNAUTHORIZED, "bad_credentials", "wrong user id or password".into()));
        }
        Err(LoginError::Locked(secs)) => {
            gw.metrics.logins.get_or_create(&crate::metrics::ResultLabels { result: "locked".into() }).inc();
            return Err(ApiError(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                format!("too many failed logins for this id; try again in {secs} s"),
            ));
        }
    };
    gw.metrics.logins.get_or_create(&crate::metrics::ResultLabels { result: "ok".into() }).inc();
    let token = crate::auth::new_token();
    let expires_at = now + gw.auth.token_ttl_ms;
    gw.store.save_api_token(&crate::auth::token_hash(&token), &user.id, now, expires_at).await?;
    let _ = gw.store.purge_api_tokens(now).await;
    let principal = principal_of(&gw, &user).await;
    tracing::info!(user = %principal.id, role = principal.role.as_str(), "login");
    Ok((StatusCode::OK, Json(json!({"token": token, "expires_at": expires_at, "user": principal}))))
}

/// Ends the caller's token.
async fn logout(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> ApiResult<serde_json::Value> {
    caller(&gw, &headers).await?;
    if let Some(token) = bearer(&headers) {
        gw.store.delete_api_tokens(Some(&crate::auth::token_hash(token)), None).await?;
    }
    Ok(Json(json!({"logged_out": true})))
}

/// Who the caller is, with their live routing status.
async fn me(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> ApiResult<serde_json::Value> {
    let p = caller(&gw, &headers).await?;
    let agent = match &gw.flow.routing {
        Some(d) => d.state().await.agents.get(&p.id).cloned(),
        None => None,
    };
    Ok(Json(json!({"user": p, "agent": agent, "event_seq": gw.flow.events.last_seq()})))
}

/// The bearer token of a request.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::trim)
}

/// Resolves the caller from the `Authorization` header.
pub(super) async fn caller(gw: &Gateway, headers: &HeaderMap) -> Result<Principal, ApiError> {
    match bearer(headers) {
        Some(token) => resolve_token(gw, token).await,
        None => Err(ApiError(StatusCode::UNAUTHORIZED, "unauthorized", "log in first (missing bearer token)".into())),
    }
}

/// Resolves a token: the operator token, or a login token that has not expired, of a user who
/// still exists (removing a user from `users.toml` ends their access at the next restart).
pub(super) async fn resolve_token(gw: &Gateway, token: &str) -> Result<Principal, ApiError> {
    let admin = &gw.config.api.admin_token;
    if !admin.is_empty() && huiliu_sdk::crypto::signature_eq(token, admin) {
        return Ok(Principal::operator());
    }
    let unauthorized =
        || ApiError(StatusCode::UNAUTHORIZED, "unauthorized", "the token is wrong or has expired; log in again".into());
    let id = gw
        .store
        .api_token_user(&crate::auth::token_hash(token), huiliu_domain::now_millis())
        .await?
        .ok_or_else(unauthorized)?;
    let user = gw.auth.user(&id).ok_or_else(unauthorized)?;
    Ok(principal_of(gw, user).await)
}

/// The principal of a configured user, with their groups and role from the routing config.
async fn principal_of(gw: &Gateway, user: &crate::auth::UserConfig) -> Principal {
    match &gw.flow.routing {
        Some(d) => d.with_config(|routing| crate::auth::principal(user, Some(routing))).await,
        None => crate::auth::principal(user, gw.config.routing.as_ref()),
    }
}

/// Refuses callers below `role`.
pub(super) fn require(p: &Principal, role: Role) -> Result<(), ApiError> {
    if p.role >= role {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this needs the {} role (you are {})", role.as_str(), p.role.as_str()),
        ))
    }
}

/// The session `id`, if the caller may see it.
async fn visible_session(gw: &Gateway, p: &Principal, id: i64) -> Result<Session, ApiError> {
    let s = gw.store.session(id).await?.ok_or_else(|| not_found(format!("session {id}")))?;
    if p.may_see(&s) {
        Ok(s)
    } else {
        Err(ApiError(StatusCode::FORBIDDEN, "not_your_session", format!("session {id} is not yours or your groups'")))
    }
}

/// Refuses a customer the caller has no visible session with.
async fn visible_customer(gw: &Gateway, p: &Principal, id: i64) -> Result<(), ApiError> {
    if p.scope().is_none() {
        return Ok(());
    }
    let filter = SessionFilter { customer: Some(id), scope: p.scope(), limit: Some(1), ..Default::default() };
    if gw.store.search_sessions(&filter).await?.is_empty() {
        Err(ApiError(
            StatusCode::FORBIDDEN,
            "not_your_customer",
            format!("customer {id} has no session of yours or your groups'"),
        ))
    } else {
        Ok(())
    }
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
    require(&caller(&gw, &headers).await?, Role::Lead)?;
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
    let me = caller(&gw, &headers).await?;
    let id = gw.blacklist.propose(&me.actor(), &p, huiliu_domain::now_millis()).await.map_err(blacklist_error)?;
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
    let me = caller(&gw, &headers).await?;
    require(&me, Role::Lead)?;
    let actor = me.actor();
    if body.reason.trim().is_empty() {
        return Err(ApiError(StatusCode::BAD_REQUEST, "reason_required", "say why the original is needed".into()));
    }
    let message = gw.store.message(id).await?.ok_or_else(|| not_found(format!("message {id}")))?;
    visible_session(&gw, &me, message.session_id).await?;
    let Some(sealer) = &gw.flow.sealer else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            "not_kept",
            "originals are not kept (privacy.seal_key is not set)".into(),
        ));
    };
    let sealed = gw.store.message_sealed(id).await?.ok_or_else(|| {
        ApiError(StatusCode::NOT_FOUND, "not_kept", format!("message {id} has no kept original (nothing was masked)"))
    })?;
    let original = sealer.open(&sealed).map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "cannot_open", e))?;
    let detail = json!({"reason": body.reason}).to_string();
    gw.store.audit(&actor.id, "message.reveal", &format!("message:{id}"), &detail, huiliu_domain::now_millis()).await?;
    tracing::info!(message = id, actor = %actor.id, "masked message revealed (audited)");
    Ok(Json(json!({"message_id": id, "original": original})))
}

/// Reloads the reloadable configuration (admin). 422 with every error when a file is bad; the
/// running configuration stays.
async fn config_reload(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    require(&caller(&gw, &headers).await?, Role::Admin)?;
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
    require(&caller(&gw, &headers).await?, Role::Lead)?;
    let d = gw.flow.routing.as_ref().ok_or_else(no_routing)?;
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
    let me = caller(&gw, &headers).await?;
    let d = gw.flow.routing.as_ref().ok_or_else(no_routing)?;
    if me.id != agent && !me.is_admin() {
        let theirs = d
            .with_config(|c| {
                c.agents.iter().find(|a| a.id == agent).is_some_and(|a| a.groups.keys().any(|g| me.oversees(g)))
            })
            .await;
        if !theirs {
            return Err(ApiError(StatusCode::FORBIDDEN, "forbidden", format!("you may not set `{agent}`'s status")));
        }
    }
    let status = crate::services::routing::parse_status(&body.status).ok_or_else(|| {
        ApiError(
            StatusCode::BAD_REQUEST,
            "bad_status",
            format!("unknown status `{}` (online, busy, away, offline)", body.status),
        )
    })?;
    gw.flow.set_status(&agent, status).await.map_err(|e| ApiError(StatusCode::NOT_FOUND, "unknown_agent", e))?;
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
    let me = caller(&gw, &headers).await?;
    let session = visible_session(&gw, &me, id).await?;
    gw.flow.routing.as_ref().ok_or_else(no_routing)?;
    if body.problem.trim().is_empty() {
        return Err(ApiError(StatusCode::BAD_REQUEST, "note_required", "a handover note needs the problem".into()));
    }
    let to = match (&body.to_agent, &body.to_group) {
        (Some(a), None) => huiliu_routing::TransferTo::Agent(a.clone()),
        (None, Some(g)) => huiliu_routing::TransferTo::Group(g.clone()),
        _ => {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                "bad_target",
                "give exactly one of to_agent, to_group".into(),
            ));
        }
    };
    let note =
        huiliu_domain::session::HandoverNote { problem: body.problem, tried: body.tried, expectation: body.expects };
    gw.flow.transfer(id, session.agent.as_deref(), to, note).await.map_err(|e| match e {
        TransferError::Store(e) => e.into(),
        e => ApiError(StatusCode::CONFLICT, "transfer_refused", e.to_string()),
    })?;
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
    require(&caller(&gw, &headers).await?, Role::Lead)?;
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
    require(&caller(&gw, &headers).await?, Role::Admin)?;
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
    let me = caller(&gw, &headers).await?;
    require(&me, Role::Lead)?;
    let note = body.and_then(|b| b.0.note);
    let now = huiliu_domain::now_millis();
    let actor = me.actor();
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
pub struct ApiError(pub StatusCode, pub &'static str, pub String);

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

async fn status(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> ApiResult<serde_json::Value> {
    require(&caller(&gw, &headers).await?, Role::Lead)?;
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
    /// `true`: only sessions that are not closed.
    open: Option<bool>,
}

async fn list_sessions(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Query(q): Query<SessionQuery>,
) -> ApiResult<serde_json::Value> {
    let me = caller(&gw, &headers).await?;
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
        open_only: q.open.unwrap_or(false),
        customer: None,
        scope: me.scope(),
    };
    let now = huiliu_domain::now_millis();
    let mut out = Vec::new();
    for s in gw.store.search_sessions(&filter).await? {
        let customer = gw.store.customer(s.customer_id).await?;
        let last = gw.store.session_messages_page(s.id, None, 1).await?.pop();
        // Waiting: since the oldest unanswered buyer message, approximated by the last one
        // when the session has unread messages.
        let waiting_ms =
            (s.state != SessionState::Closed && s.unread > 0).then(|| now - s.last_inbound_at.unwrap_or(s.opened_at));
        // The session's own fields, plus what the list shows.
        let mut row = serde_json::to_value(&s).unwrap_or_default();
        if let Some(obj) = row.as_object_mut() {
            obj.insert("customer".into(), json!(customer.map(|c| json!({"id": c.id, "nick": c.nick, "vip_level": c.vip_level, "fans_level": c.fans_level, "tags": c.tags}))));
            obj.insert(
                "last_message".into(),
                json!(last.map(|m| json!({"id": m.id, "direction": m.direction, "text": m.text, "at": m.created_at}))),
            );
            obj.insert("waiting_ms".into(), json!(waiting_ms));
        }
        out.push(row);
    }
    Ok(Json(json!({"sessions": out})))
}

fn not_found(what: String) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "not_found", what)
}

async fn session(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<serde_json::Value> {
    let me = caller(&gw, &headers).await?;
    let s = visible_session(&gw, &me, id).await?;
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
    /// Who the reply is written as; only the operator token may set it (default: the caller).
    author: Option<String>,
}

async fn reply(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Json(body): Json<ReplyBody>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let me = caller(&gw, &headers).await?;
    visible_session(&gw, &me, id).await?;
    let content = match (body.content, body.text) {
        (Some(c), _) if !c.is_empty() => c,
        (_, Some(t)) if !t.trim().is_empty() => vec![Content::text(t)],
        _ => return Err(ApiError(StatusCode::BAD_REQUEST, "empty_reply", "give `text` or `content`".into())),
    };
    let author = match body.author {
        Some(a) if me == Principal::operator() => a,
        Some(a) if a != me.id => {
            return Err(ApiError(StatusCode::FORBIDDEN, "forbidden", "you may only reply as yourself".into()));
        }
        _ => me.id.clone(),
    };
    if huiliu_store::SYSTEM_AUTHORS.contains(&author.as_str()) {
        return Err(ApiError(StatusCode::BAD_REQUEST, "reserved_author", format!("`{author}` is reserved")));
    }
    let request = ReplyRequest { session_id: id, author: Author::Agent(author), content };
    match gw.flow.reply(request).await {
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
    let me = caller(&gw, &headers).await?;
    let s = visible_session(&gw, &me, id).await?;
    if s.state == SessionState::Closed {
        return Err(ApiError(StatusCode::CONFLICT, "session_closed", format!("session {id} is already closed")));
    }
    gw.flow.close(id, "agent").await?;
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
    let me = caller(&gw, &headers).await?;
    visible_customer(&gw, &me, id).await?;
    let messages = gw.store.customer_history(id, q.before, q.limit.unwrap_or(50)).await?;
    let next = messages.last().map(|m| m.id);
    Ok(Json(json!({"messages": messages, "next_before": next})))
}

async fn retry(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<serde_json::Value> {
    let me = caller(&gw, &headers).await?;
    let item = gw.store.outbox_item(id).await?.ok_or_else(|| not_found(format!("outbox item {id}")))?;
    visible_session(&gw, &me, item.session_id).await?;
    if gw.store.outbox_manual_retry(id, huiliu_domain::now_millis()).await? {
        gw.flow.outbox_wake.notify_one();
        Ok(Json(json!({"retrying": id})))
    } else {
        Err(ApiError(StatusCode::CONFLICT, "not_failed", format!("outbox item {id} is not failed (or does not exist)")))
    }
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    before: Option<i64>,
    limit: Option<i64>,
}

/// A page of a session's messages, oldest first; `next_before` fetches the page before it.
async fn messages(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(q): Query<PageQuery>,
) -> ApiResult<serde_json::Value> {
    let me = caller(&gw, &headers).await?;
    visible_session(&gw, &me, id).await?;
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let page = gw.store.session_messages_page(id, q.before, limit).await?;
    let next = if page.len() as i64 == limit { page.first().map(|m| m.id) } else { None };
    Ok(Json(json!({"messages": page, "next_before": next})))
}

/// The quick-reply templates as configured.
async fn quick_replies(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> ApiResult<serde_json::Value> {
    caller(&gw, &headers).await?;
    Ok(Json(json!({"replies": gw.config.quick_replies, "variables": super::quick::VARIABLES})))
}

/// The quick replies filled in for one session (buyer nick, latest order, agent, shop).
async fn session_quick_replies(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<serde_json::Value> {
    let me = caller(&gw, &headers).await?;
    let s = visible_session(&gw, &me, id).await?;
    let customer = gw.store.customer(s.customer_id).await?;
    let order = gw.store.customer_trades(s.customer_id, 20).await?.into_iter().find_map(|t| t.order_id);
    let shop = gw.config.shops.iter().find(|x| x.id == s.shop).map_or_else(|| s.shop.clone(), |x| x.name.clone());
    let mut values = BTreeMap::from([("agent", me.name.clone()), ("shop", shop)]);
    if let Some(nick) = customer.and_then(|c| c.nick) {
        values.insert("buyer", nick);
    }
    if let Some(order) = order {
        values.insert("order", order);
    }
    let rendered: Vec<_> = gw.config.quick_replies.iter().map(|r| super::quick::render(r, &values)).collect();
    Ok(Json(json!({"replies": rendered})))
}

/// Why a session is where it is: the recorded routing decisions (newest last) and, when
/// routing is on, where the router has it now.
async fn explain(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<serde_json::Value> {
    let me = caller(&gw, &headers).await?;
    let s = visible_session(&gw, &me, id).await?;
    Ok(Json(json!({
        "session_id": id,
        "state": s.state,
        "agent": s.agent,
        "group": s.skill_group,
        "decisions": gw.store.decisions(id).await?,
        "transfers": gw.store.transfers(id).await?,
    })))
}

#[derive(Debug, Deserialize)]
struct ProfileBody {
    tags: Vec<String>,
    #[serde(default)]
    notes: String,
}

/// Sets a customer's tags and notes.
async fn profile(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Json(body): Json<ProfileBody>,
) -> ApiResult<serde_json::Value> {
    let me = caller(&gw, &headers).await?;
    visible_customer(&gw, &me, id).await?;
    gw.store.customer(id).await?.ok_or_else(|| not_found(format!("customer {id}")))?;
    let tags: Vec<String> = body.tags.iter().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect();
    if tags.len() > 20 || tags.iter().any(|t| t.chars().count() > 20) {
        return Err(ApiError(StatusCode::BAD_REQUEST, "bad_tags", "at most 20 tags of at most 20 characters".into()));
    }
    if body.notes.chars().count() > 2000 {
        return Err(ApiError(StatusCode::BAD_REQUEST, "notes_too_long", "notes are at most 2000 characters".into()));
    }
    gw.store.set_customer_profile(id, &tags, &body.notes).await?;
    Ok(Json(json!({"customer_id": id, "tags": tags, "notes": body.notes})))
}

/// Agents with their live status and load: an agent sees themself, a lead the members of their
/// groups, an admin everyone.
async fn agents(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> ApiResult<serde_json::Value> {
    let me = caller(&gw, &headers).await?;
    let d = gw.flow.routing.as_ref().ok_or_else(no_routing)?;
    let (config, state) = (d.config().await, d.state().await);
    let list: Vec<serde_json::Value> = config
        .agents
        .iter()
        .filter(|a| me.is_admin() || a.id == me.id || a.groups.keys().any(|g| me.oversees(g)))
        .map(|a| {
            let live = state.agents.get(&a.id);
            let cap = live.and_then(|l| l.max_sessions).unwrap_or(a.max_sessions);
            json!({
                "id": a.id,
                "name": a.name.clone().unwrap_or_else(|| a.id.clone()),
                "role": a.role,
                "groups": a.groups,
                "status": live.map_or(huiliu_routing::AgentStatus::Offline, |l| l.status),
                "active": live.map_or(0, |l| l.active),
                "cap": cap,
            })
        })
        .collect();
    Ok(Json(json!({"agents": list})))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// `/sessions/{id}` and `/sessions/{x}` are the same route.
    fn shape(path: &str) -> String {
        path.split('/').map(|p| if p.starts_with('{') { "{}" } else { p }).collect::<Vec<_>>().join("/")
    }

    /// Every (method, path) that `routes()` declares, read from this file's source.
    fn declared() -> BTreeSet<(String, String)> {
        let source = include_str!("v1.rs");
        let body = &source[source.find("pub fn routes()").unwrap()..source.find("async fn openapi()").unwrap()];
        let re = regex::Regex::new(r#"\.route\("([^"]+)",\s*([^\n]+)\)\n"#).unwrap();
        let method = regex::Regex::new(r"\b(get|post|put|delete|patch)\(").unwrap();
        let mut out = BTreeSet::new();
        for c in re.captures_iter(body) {
            for m in method.captures_iter(&c[2]) {
                out.insert((m[1].to_string(), shape(&c[1])));
            }
        }
        out
    }

    #[test]
    fn the_openapi_document_lists_exactly_the_routes() {
        let doc: serde_json::Value = serde_json::from_str(super::OPENAPI).expect("openapi.json is JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        let mut documented = BTreeSet::new();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                assert!(op["summary"].is_string(), "{method} {path} has a summary");
                assert!(op["x-roles"].is_array(), "{method} {path} says who may call it");
                documented.insert((method.clone(), shape(path)));
            }
        }
        let declared = declared();
        assert!(declared.len() >= 28, "parsed the routes: {declared:?}");
        assert_eq!(documented, declared, "openapi.json and routes() differ");
    }
}
