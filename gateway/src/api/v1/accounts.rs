//! Accounts: a user changes their own password; an admin lists, adds, disables, enables and
//! resets users. Every change is written to `users.toml` (only the block concerned changes),
//! is in force at once, and is audited; disabling or resetting a user ends their tokens, and
//! their open event streams close with a reason.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use huiliu_domain::Role;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::ApiState;
use crate::api::caller::{Admin, Caller};
use crate::api::error::{ApiError, ApiResult, ErrorBody, Json, Path};
use crate::services::logins::{AccountError, NewUser, UserRow};

fn account_error(e: AccountError) -> ApiError {
    let message = e.to_string();
    match e {
        AccountError::WrongPassword => ApiError(StatusCode::CONFLICT, "wrong_password", message),
        AccountError::WeakPassword(_) => ApiError::bad_request("weak_password", message),
        AccountError::Invalid(_) => ApiError(StatusCode::CONFLICT, "not_allowed", message),
        AccountError::UnknownUser(_) => ApiError(StatusCode::NOT_FOUND, "unknown_user", message),
        AccountError::Exists(_) => ApiError(StatusCode::CONFLICT, "user_exists", message),
        AccountError::File(_) => ApiError(StatusCode::INTERNAL_SERVER_ERROR, "users_file", message),
        AccountError::Store(e) => crate::services::ServiceError::from(e).into(),
    }
}

/// A password change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"current_password": "demo", "new_password": "a longer one"}))]
pub struct PasswordChange {
    pub current_password: String,
    /// 8 to 128 characters.
    #[schema(min_length = 8, max_length = 128)]
    pub new_password: String,
}

/// Done.
#[derive(Debug, Serialize, ToSchema)]
pub struct Changed {
    pub changed: bool,
}

/// Changes the caller's own password (the current one is checked, and a wrong one counts
/// toward the login limiter). The caller's tokens stay valid.
#[utoipa::path(post, path = "/me/password", tag = "auth", request_body = PasswordChange,
    responses(
        (status = 200, description = "Changed", body = Changed),
        (status = 409, description = "The current password is wrong", body = ErrorBody),
        (status = 404, description = "The caller is not a configured user (the operator token)", body = ErrorBody),
    ))]
pub async fn change_password(
    State(state): State<Arc<ApiState>>,
    Caller(me): Caller,
    Json(body): Json<PasswordChange>,
) -> ApiResult<Changed> {
    if body.new_password.chars().count() < 8 || body.new_password.chars().count() > 128 {
        return Err(ApiError::bad_request("weak_password", "the new password needs 8 to 128 characters"));
    }
    state.logins.change_password(&me, &body.current_password, &body.new_password).await.map_err(account_error)?;
    Ok(Json(Changed { changed: true }))
}

/// The users.
#[derive(Debug, Serialize, ToSchema)]
pub struct Users {
    pub users: Vec<UserRow>,
}

/// Every configured user (never a password hash).
#[utoipa::path(get, path = "/users", tag = "admin", responses((status = 200, description = "The users", body = Users)))]
pub async fn list_users(State(state): State<Arc<ApiState>>, Admin(_): Admin) -> ApiResult<Users> {
    Ok(Json(Users { users: state.logins.users() }))
}

/// A user to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"id": "a09", "password": "first password", "name": "小新", "role": "agent"}))]
pub struct NewUserBody {
    /// The login id (for an agent, its `[[agent]]` id in routing.toml): 1 to 64 characters,
    /// not blank.
    #[schema(min_length = 1, max_length = 64, pattern = "[^ \\t\\n\\r\u{3000}]")]
    pub id: String,
    /// 8 to 128 characters.
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
    /// Display name (default: the agent's name in routing.toml, else the id). May be left out,
    /// not sent as null.
    #[serde(default, deserialize_with = "crate::api::error::present")]
    #[schema(nullable = false)]
    pub name: Option<String>,
    /// Default: the agent's role in routing.toml, else `agent`. May be left out, not sent as null.
    #[serde(default, deserialize_with = "crate::api::error::present")]
    #[schema(nullable = false)]
    pub role: Option<Role>,
    /// The groups a lead oversees (default: their groups in routing.toml).
    #[serde(default)]
    pub groups: Vec<String>,
}

/// Adds a user (written to users.toml, audited).
#[utoipa::path(post, path = "/users", tag = "admin", request_body = NewUserBody,
    responses(
        (status = 201, description = "Added", body = UserRow),
        (status = 409, description = "The id is taken", body = ErrorBody),
    ))]
pub async fn add_user(
    State(state): State<Arc<ApiState>>,
    Admin(me): Admin,
    Json(body): Json<NewUserBody>,
) -> Result<(StatusCode, Json<UserRow>), ApiError> {
    if body.id.chars().count() > 64 || super::is_blank(&body.id) {
        return Err(ApiError::bad_request("invalid_body", "the id must be 1 to 64 characters, not blank"));
    }
    if body.password.chars().count() < 8 || body.password.chars().count() > 128 {
        return Err(ApiError::bad_request("weak_password", "the password needs 8 to 128 characters"));
    }
    let new = NewUser { id: body.id, password: body.password, name: body.name, role: body.role, groups: body.groups };
    let row = state.logins.add_user(&me, new).await.map_err(account_error)?;
    Ok((StatusCode::CREATED, Json(row)))
}

/// What to do with a user.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserAction {
    /// No more logins; every token ends and open event streams close.
    Disable,
    Enable,
}

/// Disables or enables a user (written to users.toml, audited).
#[utoipa::path(post, path = "/users/{id}/{action}", tag = "admin",
    params(("id" = String, Path, description = "User id"), ("action" = UserAction, Path, description = "disable or enable")),
    responses(
        (status = 200, description = "The user now", body = UserRow),
        (status = 409, description = "An admin cannot disable themselves", body = ErrorBody),
    ))]
pub async fn user_action(
    State(state): State<Arc<ApiState>>,
    Admin(me): Admin,
    Path((id, action)): Path<(String, UserAction)>,
) -> ApiResult<UserRow> {
    let disabled = matches!(action, UserAction::Disable);
    Ok(Json(state.logins.set_disabled(&me, &id, disabled).await.map_err(account_error)?))
}

/// A new password set by an admin.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    /// 8 to 128 characters.
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
}

/// Gives a user a new password (audited); their tokens end and open event streams close.
#[utoipa::path(post, path = "/users/{id}/password", tag = "admin", request_body = PasswordReset,
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, description = "Reset", body = Changed)))]
pub async fn reset_password(
    State(state): State<Arc<ApiState>>,
    Admin(me): Admin,
    Path(id): Path<String>,
    Json(body): Json<PasswordReset>,
) -> ApiResult<Changed> {
    if body.password.chars().count() < 8 || body.password.chars().count() > 128 {
        return Err(ApiError::bad_request("weak_password", "the password needs 8 to 128 characters"));
    }
    state.logins.reset_password(&me, &id, &body.password).await.map_err(account_error)?;
    Ok(Json(Changed { changed: true }))
}
