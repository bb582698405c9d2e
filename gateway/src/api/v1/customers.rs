//! Customers (history, profile) and the outbox (manual retry of a failed reply).

use std::sync::Arc;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::{IntoParams, ToSchema};

use super::sessions::bounded;
use crate::api::ApiState;
use crate::api::caller::Caller;
use crate::api::error::{ApiError, ApiResult, ErrorBody, Json, Path, Query};
use crate::services::desk::MessagePage;

/// A page of a customer's history.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Messages with an id below this (from the previous page's `next_before`).
    before: Option<i64>,
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// A customer's messages across all their sessions, newest first.
#[utoipa::path(get, path = "/customers/{id}/history", tag = "customers",
    params(("id" = i64, Path, description = "Customer id"), HistoryQuery),
    responses((status = 200, description = "A page of messages", body = MessagePage)))]
pub async fn history(
    State(state): State<Arc<ApiState>>,
    Caller(me): Caller,
    Path(id): Path<i64>,
    Query(q): Query<HistoryQuery>,
) -> ApiResult<MessagePage> {
    let limit = bounded(q.limit, 1, 500, "limit")?.unwrap_or(50);
    Ok(Json(state.desk.history(&me, id, q.before, limit).await?))
}

fn tags_schema() -> RefOr<Schema> {
    ArrayBuilder::new()
        .items(ObjectBuilder::new().schema_type(Type::String).max_length(Some(20)))
        .max_items(Some(20))
        .description(Some("At most 20 tags of at most 20 characters; blank ones are dropped"))
        .into()
}

/// A customer's tags and notes.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[schema(example = json!({"tags": ["回头客"], "notes": "喜欢蓝色"}))]
pub struct Profile {
    #[schema(schema_with = tags_schema)]
    pub tags: Vec<String>,
    /// Free notes (at most 2000 characters).
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub notes: String,
}

/// A customer's profile as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileSet {
    pub customer_id: i64,
    pub tags: Vec<String>,
    pub notes: String,
}

/// Sets a customer's tags and notes.
#[utoipa::path(put, path = "/customers/{id}/profile", tag = "customers", params(("id" = i64, Path, description = "Customer id")),
    request_body = Profile,
    responses((status = 200, description = "Stored", body = ProfileSet)))]
pub async fn profile(
    State(state): State<Arc<ApiState>>,
    Caller(me): Caller,
    Path(id): Path<i64>,
    Json(body): Json<Profile>,
) -> ApiResult<ProfileSet> {
    if body.tags.len() > 20 || body.tags.iter().any(|t| t.chars().count() > 20) {
        return Err(ApiError::bad_request("bad_tags", "at most 20 tags of at most 20 characters"));
    }
    if body.notes.chars().count() > 2000 {
        return Err(ApiError::bad_request("notes_too_long", "notes are at most 2000 characters"));
    }
    let tags: Vec<String> = body.tags.iter().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect();
    state.desk.set_profile(&me, id, &tags, &body.notes).await?;
    Ok(Json(ProfileSet { customer_id: id, tags, notes: body.notes }))
}

/// A failed reply back in the outbox.
#[derive(Debug, Serialize, ToSchema)]
pub struct Retrying {
    pub retrying: i64,
}

/// Sends a failed reply again.
#[utoipa::path(post, path = "/outbox/{id}/retry", tag = "sessions", params(("id" = i64, Path, description = "Outbox item id")),
    responses(
        (status = 200, description = "Queued again", body = Retrying),
        (status = 409, description = "The item has not failed", body = ErrorBody),
    ))]
pub async fn retry(State(state): State<Arc<ApiState>>, Caller(me): Caller, Path(id): Path<i64>) -> ApiResult<Retrying> {
    state.desk.retry_outbox(&me, id).await?;
    Ok(Json(Retrying { retrying: id }))
}
