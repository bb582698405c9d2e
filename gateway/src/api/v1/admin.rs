//! The lead's and the operator's side: status, dashboard, agents and their status, the
//! routing state, quick-reply templates and the configuration reload.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use huiliu_domain::Role;
use huiliu_routing::{AgentStatus, RouterState};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::sessions::no_routing;
use crate::api::ApiState;
use crate::api::caller::{Admin, Caller, Lead};
use crate::api::error::{ApiError, ApiResult, ErrorBody, Json, Path};
use crate::services::dashboard::Figures;
use crate::services::quick::QuickReply;
use crate::services::status::{ChannelStatus, TokenStatus};

/// Channels, the outbox and dead letters.
#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    /// Each long-lived channel's one-line state by `platform/shop/channel` (`connected`,
    /// `connecting`, `reconnecting in … ms: …`, `stopped: …`).
    pub channels: BTreeMap<String, String>,
    /// Each long-lived channel's state as data, by the same keys.
    pub channel_states: BTreeMap<String, ChannelStatus>,
    /// Outbox rows by delivery state.
    pub outbox: BTreeMap<String, i64>,
    /// Undecodable pushes kept, by platform.
    pub dead_letters: BTreeMap<String, i64>,
    /// Enabled shops that could not start.
    pub shop_errors: Vec<ShopError>,
    /// Each shop's token state after its last refresh (or failed refresh), by `platform/shop`;
    /// shops never refreshed are absent.
    pub shop_tokens: BTreeMap<String, TokenStatus>,
}

/// A shop that could not start.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShopError {
    pub shop: String,
    pub error: String,
}

/// Channels, outbox and dead letters at a glance.
#[utoipa::path(get, path = "/status", tag = "admin", responses((status = 200, description = "Status", body = Status)))]
pub async fn status(State(state): State<Arc<ApiState>>, Lead(_): Lead) -> ApiResult<Status> {
    let (outbox, dead_letters) = state.desk.counts().await?;
    Ok(Json(Status {
        channels: state.status.channels(),
        channel_states: state.status.channel_states(),
        shop_tokens: state.status.tokens(),
        outbox,
        dead_letters,
        shop_errors: state.status.shop_errors().into_iter().map(|(shop, error)| ShopError { shop, error }).collect(),
    }))
}

/// The team lead's dashboard (lead: their groups; admin: all).
#[utoipa::path(get, path = "/dashboard", tag = "admin", responses((status = 200, description = "Figures and alerts", body = Figures)))]
pub async fn dashboard(State(state): State<Arc<ApiState>>, Lead(me): Lead) -> ApiResult<Figures> {
    Ok(Json(state.dashboard.figures(&me).await?))
}

/// One agent with their live status and load.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentRow {
    pub id: String,
    pub name: String,
    pub role: Role,
    /// Skill groups and the agent's proficiency in each (1–5).
    pub groups: BTreeMap<String, i64>,
    pub status: AgentStatus,
    pub active: u32,
    /// 接待上限 in force.
    pub cap: u32,
}

/// Agents.
#[derive(Debug, Serialize, ToSchema)]
pub struct Agents {
    pub agents: Vec<AgentRow>,
}

/// Agents with their live status and load: an agent sees themself, a lead the members of their
/// groups, an admin everyone.
#[utoipa::path(get, path = "/agents", tag = "admin", responses(
    (status = 200, description = "Agents", body = Agents),
    (status = 404, description = "Routing is off", body = ErrorBody),
))]
pub async fn agents(State(state): State<Arc<ApiState>>, Caller(me): Caller) -> ApiResult<Agents> {
    let routing = state.flow.routing.as_ref().ok_or_else(no_routing)?;
    let (config, live) = (routing.config().await, routing.state().await);
    let agents = config
        .agents
        .iter()
        .filter(|a| me.is_admin() || a.id == me.id || a.groups.keys().any(|g| me.oversees(g)))
        .map(|a| {
            let l = live.agents.get(&a.id);
            AgentRow {
                id: a.id.clone(),
                name: a.name.clone().unwrap_or_else(|| a.id.clone()),
                role: a.role,
                groups: a.groups.clone(),
                status: l.map_or(AgentStatus::Offline, |l| l.status),
                active: l.map_or(0, |l| l.active),
                cap: l.and_then(|l| l.max_sessions).unwrap_or(a.max_sessions),
            }
        })
        .collect();
    Ok(Json(Agents { agents }))
}

/// A status change.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[schema(example = json!({"status": "online"}))]
pub struct StatusBody {
    pub status: AgentStatus,
}

/// An agent's status as set.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentStatusSet {
    pub agent: String,
    pub status: AgentStatus,
}

/// Sets an agent's status (the workbench's status switch): the agent themself, a lead of one
/// of their groups, or an admin.
#[utoipa::path(post, path = "/agents/{agent}/status", tag = "admin", params(("agent" = String, Path, description = "Agent id")),
    request_body = StatusBody,
    responses(
        (status = 200, description = "Set", body = AgentStatusSet),
        (status = 404, description = "No such agent, or routing is off", body = ErrorBody),
    ))]
pub async fn agent_status(
    State(state): State<Arc<ApiState>>,
    Caller(me): Caller,
    Path(agent): Path<String>,
    Json(body): Json<StatusBody>,
) -> ApiResult<AgentStatusSet> {
    let routing = state.flow.routing.as_ref().ok_or_else(no_routing)?;
    if me.id != agent && !me.is_admin() {
        let theirs = routing
            .with_config(|c| {
                c.agents.iter().find(|a| a.id == agent).is_some_and(|a| a.groups.keys().any(|g| me.oversees(g)))
            })
            .await;
        if !theirs {
            return Err(ApiError(StatusCode::FORBIDDEN, "forbidden", format!("you may not set `{agent}`'s status")));
        }
    }
    state
        .flow
        .set_status(&agent, body.status)
        .await
        .map_err(|e| ApiError(StatusCode::NOT_FOUND, "unknown_agent", e))?;
    Ok(Json(AgentStatusSet { agent, status: body.status }))
}

/// Queues and agents as routing sees them.
#[utoipa::path(get, path = "/routing", tag = "admin", responses(
    (status = 200, description = "The routing state", body = RouterState),
    (status = 404, description = "Routing is off", body = ErrorBody),
))]
pub async fn routing(State(state): State<Arc<ApiState>>, Lead(_): Lead) -> ApiResult<RouterState> {
    let routing = state.flow.routing.as_ref().ok_or_else(no_routing)?;
    Ok(Json(routing.state().await))
}

/// The reply templates.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuickReplies {
    pub replies: Vec<QuickReply>,
    /// The variables a template may use (`{buyer}` …).
    pub variables: Vec<String>,
}

/// The quick-reply templates as configured.
#[utoipa::path(get, path = "/quick-replies", tag = "admin", responses((status = 200, description = "Templates", body = QuickReplies)))]
pub async fn quick_replies(State(state): State<Arc<ApiState>>, Caller(_): Caller) -> ApiResult<QuickReplies> {
    let variables = crate::services::quick::VARIABLES.iter().map(|v| (*v).to_owned()).collect();
    Ok(Json(QuickReplies { replies: state.desk.quick_replies(), variables }))
}

/// What a reload did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigReloaded {
    /// The files reloaded.
    pub reloaded: Vec<String>,
}

/// A reload refused.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigRejected {
    /// `invalid_config`.
    pub code: String,
    pub message: String,
    /// Every problem, with its file and key.
    pub errors: Vec<String>,
}

/// Reloads the reloadable configuration (`filters.toml`, `shops.toml`, `routing.toml`). 422 with every error
/// when a file is bad; the running configuration stays.
#[utoipa::path(post, path = "/config/reload", tag = "admin", responses(
    (status = 200, description = "Reloaded", body = ConfigReloaded),
    (status = 422, description = "A file is bad; nothing changed", body = ConfigRejected),
))]
pub async fn config_reload(
    State(state): State<Arc<ApiState>>,
    Admin(_): Admin,
) -> Result<(StatusCode, axum::response::Response), ApiError> {
    use axum::response::IntoResponse;
    match state.reloader.reload_all().await {
        Ok(reloaded) => Ok((StatusCode::OK, Json(ConfigReloaded { reloaded }).into_response())),
        Err(errors) => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(ConfigRejected {
                code: "invalid_config".into(),
                message: "the configuration was not reloaded; the running configuration stays".into(),
                errors,
            })
            .into_response(),
        )),
    }
}

/// The bot's figures (智能客服), totals kept in the store — across restarts, the same on every
/// node: messages considered, answered (per entry), handed over (by reason), conversations
/// resolved without a human, and the latest questions no entry matched — for the trainer.
#[utoipa::path(get, path = "/knowledge/figures", tag = "admin", responses(
    (status = 200, description = "The knowledge-base bot's figures", body = crate::services::knowledge::KnowledgeFigures),
))]
pub async fn knowledge_figures(
    State(state): State<Arc<ApiState>>,
    Lead(_): Lead,
) -> ApiResult<crate::services::knowledge::KnowledgeFigures> {
    Ok(Json(state.desk.knowledge_figures().await?))
}

/// How much of the day.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeriesQuery {
    /// The last this many minutes (default 1440: the day).
    #[param(minimum = 1, maximum = 1440)]
    minutes: Option<i64>,
}

/// The day in pictures: per-minute queue length, longest wait, first-response time and reply
/// rate of each group the caller oversees (lead: their groups; admin: all), oldest first, the
/// last point taken now.
#[utoipa::path(get, path = "/dashboard/series", tag = "admin", params(SeriesQuery),
    responses((status = 200, description = "Per-minute series", body = crate::services::timeline::Series)))]
pub async fn dashboard_series(
    State(state): State<Arc<ApiState>>,
    Lead(me): Lead,
    crate::api::error::Query(q): crate::api::error::Query<SeriesQuery>,
) -> ApiResult<crate::services::timeline::Series> {
    let minutes = super::sessions::bounded(q.minutes, 1, 1440, "minutes")?.unwrap_or(1440);
    Ok(Json(state.dashboard.series(&me, minutes as u32).await?))
}
