//! Logging in and out, and who the caller is.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use huiliu_domain::Principal;
use huiliu_routing::AgentState;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::ApiState;
use crate::api::caller::{Caller, ClientAddr, bearer};
use crate::api::error::{ApiError, ApiResult, Json};
use crate::services::ServiceError;
use crate::services::logins::LoginFailure;

/// A login.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"user": "a01", "password": "demo"}))]
pub struct LoginBody {
    /// The user id (`users.toml`).
    pub user: String,
    pub password: String,
}

/// A bearer token and who it is.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginOk {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    /// When the token stops working (ms since the epoch).
    pub expires_at: i64,
    pub user: Principal,
}

/// Logs in with a user id and password; returns a bearer token.
#[utoipa::path(post, path = "/auth/login", tag = "auth", security(()), request_body = LoginBody,
    responses(
        (status = 200, description = "Logged in", body = LoginOk),
        (status = 401, description = "Wrong user id or password", body = crate::api::error::ErrorBody),
        (status = 429, description = "Too many failed logins for this id or from this address; try later", body = crate::api::error::ErrorBody),
    ))]
pub async fn login(
    State(state): State<Arc<ApiState>>,
    ClientAddr(addr): ClientAddr,
    Json(body): Json<LoginBody>,
) -> ApiResult<LoginOk> {
    match state.logins.login(&body.user, &body.password, addr).await {
        Ok(s) => Ok(Json(LoginOk { token: s.token, expires_at: s.expires_at, user: s.user })),
        Err(LoginFailure::BadCredentials) => {
            Err(ApiError(StatusCode::UNAUTHORIZED, "bad_credentials", "wrong user id or password".into()))
        }
        Err(e @ LoginFailure::Locked(_)) => {
            Err(ApiError(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", e.to_string()))
        }
        Err(LoginFailure::Store(e)) => Err(ServiceError::from(e).into()),
    }
}

/// The answer to a logout.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoggedOut {
    pub logged_out: bool,
}

/// Ends the caller's token.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", responses((status = 200, description = "The token no longer works", body = LoggedOut)))]
pub async fn logout(
    State(state): State<Arc<ApiState>>,
    Caller(_): Caller,
    headers: axum::http::HeaderMap,
) -> ApiResult<LoggedOut> {
    if let Some(token) = bearer(&headers) {
        state.logins.logout(token).await.map_err(ServiceError::from)?;
    }
    Ok(Json(LoggedOut { logged_out: true }))
}

/// The caller, with their live routing state.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub user: Principal,
    /// Their status and load as routing sees them (absent when they are not an agent or routing
    /// is off).
    pub agent: Option<AgentState>,
    /// The last event published: open the event stream with `?since=` this.
    pub event_seq: u64,
}

/// Who the caller is, with their live routing status.
#[utoipa::path(get, path = "/me", tag = "auth", responses((status = 200, description = "The caller", body = Me)))]
pub async fn me(State(state): State<Arc<ApiState>>, Caller(user): Caller) -> ApiResult<Me> {
    let agent = match &state.flow.routing {
        Some(r) => r.agent_state(&user.id).await,
        None => None,
    };
    Ok(Json(Me { user, agent, event_seq: state.flow.events.last_seq() }))
}
