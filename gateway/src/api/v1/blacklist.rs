//! The blacklist (propose, review, list, reload), the audited reveal of a masked original and
//! the audit trail.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::is_blank;
use crate::api::ApiState;
use crate::api::caller::{Admin, Caller, Lead};
use crate::api::error::{ApiError, ApiResult, ErrorBody, Json, Path, Query};
use crate::services::ServiceError;
use crate::services::blacklist::{BlacklistEntry, BlacklistError, BlacklistLevel, EntryState, Proposal};
use crate::services::desk::AuditEntry;

fn blacklist_error(e: BlacklistError) -> ApiError {
    match e {
        BlacklistError::Forbidden(m) => ApiError(StatusCode::FORBIDDEN, "forbidden", m),
        BlacklistError::Invalid(m) => ApiError::bad_request("invalid", m),
        BlacklistError::NotFound(id) => ApiError::not_found(format!("blacklist entry {id}")),
        e @ BlacklistError::WrongState { .. } => ApiError(StatusCode::CONFLICT, "wrong_state", e.to_string()),
        e @ BlacklistError::Expired => ApiError(StatusCode::CONFLICT, "expires_in_the_past", e.to_string()),
        BlacklistError::Store(e) => ServiceError::from(e).into(),
    }
}

/// Which entries.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StateQuery {
    /// Only entries in this state.
    state: Option<EntryState>,
}

/// Blacklist entries.
#[derive(Debug, Serialize, ToSchema)]
pub struct Entries {
    pub entries: Vec<BlacklistEntry>,
}

/// Blacklist entries, newest first.
#[utoipa::path(get, path = "/blacklist", tag = "blacklist", params(StateQuery),
    responses((status = 200, description = "Entries", body = Entries)))]
pub async fn list(
    State(state): State<Arc<ApiState>>,
    Lead(_): Lead,
    Query(q): Query<StateQuery>,
) -> ApiResult<Entries> {
    Ok(Json(Entries { entries: state.blacklist.list(q.state).await.map_err(blacklist_error)? }))
}

/// A proposed entry. An agent must give evidence (message ids); every proposer a reason.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"platform": "douyin", "buyer_id": "dy_open_000021", "level": "flag", "reason": "多次以差评威胁索要赔偿", "evidence": ["1"]}))]
pub struct ProposalBody {
    /// The platform (`taobao`, `douyin`, `jd`).
    #[schema(pattern = "[^ \\t\\n\\r\u{3000}]")]
    pub platform: String,
    /// The shop it applies to; absent: every shop of the platform.
    #[serde(default)]
    pub shop: Option<String>,
    /// The platform's open buyer id.
    #[schema(pattern = "[^ \\t\\n\\r\u{3000}]")]
    pub buyer_id: String,
    pub level: BlacklistLevel,
    /// Why (written to the audit log).
    #[schema(pattern = "[^ \\t\\n\\r\u{3000}]")]
    pub reason: String,
    /// Message ids (or platform message ids) that show the behaviour; required from agents.
    #[serde(default)]
    pub evidence: Vec<String>,
    /// When the entry stops acting (ms since the epoch); absent: never. A time already past is
    /// refused with 409.
    #[serde(default, deserialize_with = "crate::api::error::lenient_i64")]
    pub expires_at: Option<i64>,
}

/// A new proposal.
#[derive(Debug, Serialize, ToSchema)]
pub struct Proposed {
    pub id: i64,
    /// `proposed`: it acts once a lead or admin other than the proposer approves it.
    pub state: EntryState,
}

/// Proposes a blacklist entry (reviewed by a lead or admin before it acts).
#[utoipa::path(post, path = "/blacklist", tag = "blacklist", request_body = ProposalBody,
    responses(
        (status = 201, description = "Proposed", body = Proposed),
        (status = 409, description = "`expires_at` is already past", body = ErrorBody),
    ))]
pub async fn propose(
    State(state): State<Arc<ApiState>>,
    Caller(me): Caller,
    Json(p): Json<ProposalBody>,
) -> Result<(StatusCode, Json<Proposed>), ApiError> {
    let proposal = Proposal {
        platform: p.platform,
        shop: p.shop,
        buyer_id: p.buyer_id,
        level: p.level,
        reason: p.reason,
        evidence: p.evidence,
        expires_at: p.expires_at,
    };
    let id =
        state.blacklist.propose(&me.actor(), &proposal, huiliu_domain::now_millis()).await.map_err(blacklist_error)?;
    Ok((StatusCode::CREATED, Json(Proposed { id, state: EntryState::Proposed })))
}

/// A reload done.
#[derive(Debug, Serialize, ToSchema)]
pub struct Reloaded {
    pub reloaded: bool,
}

/// Re-reads approved entries now (decisions made by the CLI or another node otherwise arrive
/// within the 30 s background reload).
#[utoipa::path(post, path = "/blacklist/reload", tag = "blacklist", responses((status = 200, description = "Reloaded", body = Reloaded)))]
pub async fn reload(State(state): State<Arc<ApiState>>, Admin(_): Admin) -> ApiResult<Reloaded> {
    state.blacklist.reload_everywhere().await.map_err(ServiceError::from)?;
    Ok(Json(Reloaded { reloaded: true }))
}

/// A review decision.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewAction {
    Approve,
    Reject,
    Remove,
}

/// An optional note on a decision.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct DecisionBody {
    /// Written to the audit log.
    pub note: Option<String>,
}

/// The entry after the decision.
#[derive(Debug, Serialize, ToSchema)]
pub struct Decided {
    pub entry: BlacklistEntry,
}

/// Approves, rejects or removes an entry (a lead or admin other than the proposer).
#[utoipa::path(post, path = "/blacklist/{id}/{action}", tag = "blacklist",
    params(("id" = i64, Path, description = "Entry id"), ("action" = ReviewAction, Path, description = "The decision")),
    request_body(content = Option<DecisionBody>, description = "An optional note"),
    responses(
        (status = 200, description = "Decided", body = Decided),
        (status = 409, description = "The entry's state does not allow it", body = ErrorBody),
    ))]
pub async fn decide(
    State(state): State<Arc<ApiState>>,
    Lead(me): Lead,
    Path((id, action)): Path<(i64, ReviewAction)>,
    body: Option<Json<Option<DecisionBody>>>,
) -> ApiResult<Decided> {
    let note = body.and_then(|b| b.0).and_then(|b| b.note);
    let (now, actor) = (huiliu_domain::now_millis(), me.actor());
    let entry = match action {
        ReviewAction::Approve => state.blacklist.approve(&actor, id, note.as_deref(), now).await,
        ReviewAction::Reject => state.blacklist.reject(&actor, id, note.as_deref(), now).await,
        ReviewAction::Remove => state.blacklist.remove(&actor, id, note.as_deref(), now).await,
    }
    .map_err(blacklist_error)?;
    Ok(Json(Decided { entry }))
}

/// Why the original is needed.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"reason": "核对收货地址"}))]
pub struct RevealBody {
    /// Written to the audit log.
    #[schema(pattern = "[^ \\t\\n\\r\u{3000}]")]
    pub reason: String,
}

/// A masked message's original.
#[derive(Debug, Serialize, ToSchema)]
pub struct Revealed {
    pub message_id: i64,
    pub original: String,
}

/// Reveals the original of a masked message to a lead or admin, audited with the reason.
#[utoipa::path(post, path = "/messages/{id}/reveal", tag = "blacklist", params(("id" = i64, Path, description = "Message id")),
    request_body = RevealBody,
    responses(
        (status = 200, description = "The original", body = Revealed),
        (status = 409, description = "The kept original does not open with the configured key", body = ErrorBody),
    ))]
pub async fn reveal(
    State(state): State<Arc<ApiState>>,
    Lead(me): Lead,
    Path(id): Path<i64>,
    Json(body): Json<RevealBody>,
) -> ApiResult<Revealed> {
    if is_blank(&body.reason) {
        return Err(ApiError::bad_request("reason_required", "say why the original is needed"));
    }
    let original = state.desk.reveal(&me, id, &body.reason).await?;
    Ok(Json(Revealed { message_id: id, original }))
}

/// Which audit trail.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// The subject: `message:12`, `blacklist:3`.
    #[param(min_length = 1)]
    subject: String,
}

/// One subject's audit trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditTrail {
    pub subject: String,
    pub entries: Vec<AuditEntry>,
}

/// The audit trail of one subject.
#[utoipa::path(get, path = "/audit", tag = "blacklist", params(AuditQuery),
    responses((status = 200, description = "Who did what, when", body = AuditTrail)))]
pub async fn audit(
    State(state): State<Arc<ApiState>>,
    Lead(_): Lead,
    Query(q): Query<AuditQuery>,
) -> ApiResult<AuditTrail> {
    if q.subject.is_empty() {
        return Err(ApiError::bad_request("bad_query", "`subject` must not be empty"));
    }
    let entries = state.desk.audit_trail(&q.subject).await?;
    Ok(Json(AuditTrail { subject: q.subject, entries }))
}
