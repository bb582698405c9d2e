//! One JSON error shape for every refusal of the HTTP surface — handler errors, body, query
//! and path deserialization, an unknown route, a wrong method, a body too large or of the wrong
//! type: `{"code": "...", "message": "..."}` with a stable `code`.
//!
//! The extractors here wrap axum's own (whose rejections answer `text/plain`) and turn their
//! rejections into [`ApiError`]. Written by hand because they are ours: a dozen lines each, no
//! macro crate needed.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

use crate::services::ServiceError;

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable (`unauthorized`, `forbidden`, `not_found`, `bad_request`, …).
    pub code: String,
    /// For people.
    pub message: String,
}

/// An API error: HTTP status, stable code, message.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub &'static str, pub String);

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError(StatusCode::BAD_REQUEST, code, message.into())
    }
    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError(StatusCode::NOT_FOUND, "not_found", what.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(ErrorBody { code: self.1.to_owned(), message: self.2 })).into_response()
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound(what) => ApiError::not_found(what),
            ServiceError::Unavailable { code, message } => ApiError(StatusCode::NOT_FOUND, code, message),
            ServiceError::Forbidden { code, message } => ApiError(StatusCode::FORBIDDEN, code, message),
            ServiceError::Conflict { code, message } => ApiError(StatusCode::CONFLICT, code, message),
            ServiceError::Store(e) => {
                tracing::error!("store error in API: {e}");
                ApiError(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "store_error",
                    "the store failed; see the gateway log".into(),
                )
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let status = r.status();
        let code = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            // A body that is JSON but not of the schema is a bad request like any other (422 is
            // kept for what the API refuses on its merits: a blocked reply, a bad config file).
            StatusCode::UNPROCESSABLE_ENTITY => return ApiError::bad_request("invalid_body", r.body_text()),
            _ => "bad_json",
        };
        ApiError(status, code, r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError(StatusCode::BAD_REQUEST, "bad_query", r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError(StatusCode::BAD_REQUEST, "bad_path", r.body_text())
    }
}

/// A JSON body in (its rejections as [`ApiError`]) or out.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Ok(Json(axum::Json::<T>::from_request(req, state).await?.0))
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Query parameters (their rejections as [`ApiError`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Ok(Query(axum::extract::Query::<T>::from_request_parts(parts, state).await?.0))
    }
}

/// Path parameters (their rejections as [`ApiError`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Ok(Path(axum::extract::Path::<T>::from_request_parts(parts, state).await?.0))
    }
}

/// Unknown routes.
pub async fn no_route() -> ApiError {
    ApiError::not_found("no such route")
}

/// A known route asked with a method it does not have.
pub async fn wrong_method() -> ApiError {
    ApiError(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not take that method".into())
}

/// The result of a handler answering JSON.
pub type ApiResult<T> = Result<Json<T>, ApiError>;

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::OptionalFromRequest<S> for Json<T> {
    type Rejection = ApiError;
    /// No body (no `Content-Type`): `None`; otherwise the body must be JSON of `T`.
    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, ApiError> {
        if !req.headers().contains_key(axum::http::header::CONTENT_TYPE) {
            return Ok(None);
        }
        Ok(Some(<Json<T> as FromRequest<S>>::from_request(req, state).await?))
    }
}

/// An optional integer that also accepts a JSON number with a zero fraction (`5.0`): JSON Schema's
/// `integer` admits those, so the contract does too.
pub fn lenient_i64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let Some(n) = <Option<serde_json::Number> as serde::Deserialize>::deserialize(d)? else { return Ok(None) };
    if let Some(i) = n.as_i64() {
        return Ok(Some(i));
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 => Ok(Some(f as i64)),
        _ => Err(serde::de::Error::custom(format!("{n} is not a 64-bit integer"))),
    }
}

/// An optional field that may be left out but not sent as `null`: the documented schema types it
/// (string, array…) without admitting `null`, so the server refuses what the contract refuses.
/// Use with `#[serde(default)]`.
pub fn present<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}
