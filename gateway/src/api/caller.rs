//! Who is calling: extractors that resolve the caller from `Authorization: Bearer <token>` and
//! check their role before a handler runs. No handler resolves its caller by hand.
//!
//! - [`Caller`]: any signed-in user (401 without a valid token);
//! - [`Lead`]: a lead or an admin (403 otherwise);
//! - [`Admin`]: an admin (403 otherwise).
//!
//! What a caller may see of a session is checked by the services (`Principal::may_see`).

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use huiliu_domain::{Principal, Role};

use super::ApiState;
use super::error::ApiError;

/// The bearer token of a request.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::trim)
}

/// Resolves `token`, or 401.
pub async fn resolve(state: &ApiState, token: Option<&str>) -> Result<Principal, ApiError> {
    let Some(token) = token else {
        return Err(ApiError(StatusCode::UNAUTHORIZED, "unauthorized", "log in first (missing bearer token)".into()));
    };
    state.logins.resolve(token).await.map_err(crate::services::ServiceError::from)?.ok_or_else(|| {
        ApiError(StatusCode::UNAUTHORIZED, "unauthorized", "the token is wrong or has expired; log in again".into())
    })
}

/// Any signed-in user.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl FromRequestParts<Arc<ApiState>> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &Arc<ApiState>) -> Result<Self, ApiError> {
        Ok(Caller(resolve(state, bearer(&parts.headers)).await?))
    }
}

fn require(p: Principal, role: Role) -> Result<Principal, ApiError> {
    if p.role >= role {
        Ok(p)
    } else {
        Err(ApiError(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this needs the {} role (you are {})", role.as_str(), p.role.as_str()),
        ))
    }
}

/// A lead or an admin.
#[derive(Debug, Clone)]
pub struct Lead(pub Principal);

impl FromRequestParts<Arc<ApiState>> for Lead {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &Arc<ApiState>) -> Result<Self, ApiError> {
        Ok(Lead(require(Caller::from_request_parts(parts, state).await?.0, Role::Lead)?))
    }
}

/// An admin.
#[derive(Debug, Clone)]
pub struct Admin(pub Principal);

impl FromRequestParts<Arc<ApiState>> for Admin {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &Arc<ApiState>) -> Result<Self, ApiError> {
        Ok(Admin(require(Caller::from_request_parts(parts, state).await?.0, Role::Admin)?))
    }
}

/// The client's address: the TCP peer the listener saw (`None` in-process, where no listener
/// recorded one). For the login limiter.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>();
        Ok(ClientAddr(peer.map(|c| c.0.ip())))
    }
}
