//! Bearer tokens: logging in and out, and who a token is. A login token is kept only as its
//! SHA-256 in the store; the operator's `api.admin_token` (admin) is compared in constant time.
//! A user's role and groups are resolved against the routing configuration in force.

use std::sync::Arc;

use huiliu_domain::Principal;
use huiliu_routing::RoutingConfig;
use huiliu_store::{Store, StoreError};

use super::auth::{self, Auth, LoginError, UserConfig};
use super::routing::Routing;
use crate::metrics::{Metrics, ResultLabels};

/// A successful login.
#[derive(Debug, Clone)]
pub struct LoggedIn {
    pub token: String,
    pub expires_at: i64,
    pub user: Principal,
}

/// Why a login did not happen.
#[derive(Debug, thiserror::Error)]
pub enum LoginFailure {
    #[error("wrong user id or password")]
    BadCredentials,
    #[error("too many failed logins for this id or from this address; try again in {0} s")]
    Locked(u64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Logins and tokens.
#[derive(Debug)]
pub struct Logins {
    /// Shared with the reloader, which replaces the users when `users.toml` changes.
    auth: Arc<Auth>,
    /// `users.toml`, where account changes made through the API are written.
    users_file: std::path::PathBuf,
    /// One account edit at a time (each reads, edits and writes the whole file).
    editing: tokio::sync::Mutex<()>,
    store: Store,
    admin_token: String,
    routing: Option<Arc<Routing>>,
    /// The routing configuration read at start, for principals when routing is not live.
    configured: Option<RoutingConfig>,
    metrics: Arc<Metrics>,
}

impl Logins {
    pub fn new(
        auth: Arc<Auth>,
        users_file: std::path::PathBuf,
        store: Store,
        admin_token: String,
        routing: Option<Arc<Routing>>,
        configured: Option<RoutingConfig>,
        metrics: Arc<Metrics>,
    ) -> Logins {
        Logins {
            auth,
            users_file,
            editing: tokio::sync::Mutex::new(()),
            store,
            admin_token,
            routing,
            configured,
            metrics,
        }
    }

    /// Checks the password and hands out a token. `addr` is the client's address, for the
    /// per-address limiter (`None` when unknown).
    pub async fn login(
        &self,
        id: &str,
        password: &str,
        addr: Option<std::net::IpAddr>,
    ) -> Result<LoggedIn, LoginFailure> {
        let now = huiliu_domain::now_millis();
        let count = |result: &str| self.metrics.logins.get_or_create(&ResultLabels { result: result.into() }).inc();
        let user = match self.auth.login(id, password, addr, now).await {
            Ok(u) => u,
            Err(LoginError::BadCredentials) => {
                count("bad_credentials");
                return Err(LoginFailure::BadCredentials);
            }
            Err(LoginError::Locked(secs)) => {
                count("locked");
                return Err(LoginFailure::Locked(secs));
            }
        };
        count("ok");
        let token = auth::new_token();
        let expires_at = now + self.auth.token_ttl_ms;
        self.store.save_api_token(&auth::token_hash(&token), &user.id, now, expires_at).await?;
        let _ = self.store.purge_api_tokens(now).await;
        let user = self.principal_of(&user).await;
        tracing::info!(user = %user.id, role = user.role.as_str(), "login");
        Ok(LoggedIn { token, expires_at, user })
    }

    /// Ends a token (the operator token cannot be ended).
    pub async fn logout(&self, token: &str) -> Result<(), StoreError> {
        self.store.delete_api_tokens(Some(&auth::token_hash(token)), None).await?;
        self.auth.tokens_may_have_ended();
        Ok(())
    }

    /// When `token` stops working by itself (its expiry; `None`: the operator token, or no such
    /// token).
    pub async fn token_expiry(&self, token: &str) -> Result<Option<i64>, StoreError> {
        self.store.api_token_expiry(&auth::token_hash(token)).await
    }

    /// A receiver that changes whenever a token may have stopped working (logout, a user
    /// disabled, removed or reset, users.toml reloaded).
    pub fn revocations(&self) -> tokio::sync::watch::Receiver<u64> {
        self.auth.revocations()
    }

    /// Why `token`, once of user `id`, no longer works: `expired`, `user_disabled`,
    /// `user_removed` or `revoked` (logged out, or the password was reset).
    pub async fn why_ended(&self, token: &str, id: &str) -> &'static str {
        let now = huiliu_domain::now_millis();
        match self.auth.user(id) {
            None => "user_removed",
            Some(u) if u.disabled => "user_disabled",
            Some(_) => match self.token_expiry(token).await {
                Ok(Some(at)) if at <= now => "expired",
                _ => "revoked",
            },
        }
    }

    /// Who `token` is: the operator, or the user of a login token that has not expired and who
    /// still exists and is not disabled (removing or disabling a user in `users.toml` ends their
    /// access at the next reload; through the API, at once).
    pub async fn resolve(&self, token: &str) -> Result<Option<Principal>, StoreError> {
        if !self.admin_token.is_empty() && huiliu_sdk::crypto::signature_eq(token, &self.admin_token) {
            return Ok(Some(Principal::operator()));
        }
        let Some(id) = self.store.api_token_user(&auth::token_hash(token), huiliu_domain::now_millis()).await? else {
            return Ok(None);
        };
        match self.auth.user(&id) {
            Some(user) if !user.disabled => Ok(Some(self.principal_of(&user).await)),
            _ => Ok(None),
        }
    }

    /// The principal of a configured user, with their groups and role from the routing config.
    async fn principal_of(&self, user: &UserConfig) -> Principal {
        match &self.routing {
            Some(r) => r.with_config(|routing| auth::principal(user, Some(routing))).await,
            None => auth::principal(user, self.configured.as_ref()),
        }
    }
}

/// Why an account change was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("the current password is wrong")]
    WrongPassword,
    #[error("{0}")]
    WeakPassword(String),
    #[error("no user `{0}`")]
    UnknownUser(String),
    #[error("user `{0}` already exists")]
    Exists(String),
    #[error("{0}")]
    Invalid(String),
    /// `users.toml` could not be read, checked or written; nothing changed.
    #[error("users.toml: {0}")]
    File(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The password rule: 8 to 128 characters (the API's schema says the same).
pub fn check_password(password: &str) -> Result<(), AccountError> {
    let n = password.chars().count();
    if !(8..=128).contains(&n) {
        return Err(AccountError::WeakPassword("the password needs 8 to 128 characters".into()));
    }
    Ok(())
}

/// A user as an admin sees it (never the hash).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct UserRow {
    pub id: String,
    pub name: Option<String>,
    pub role: Option<huiliu_domain::Role>,
    pub groups: Vec<String>,
    pub disabled: bool,
}

/// A user to add.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: String,
    pub password: String,
    pub name: Option<String>,
    pub role: Option<huiliu_domain::Role>,
    pub groups: Vec<String>,
}

impl Logins {
    /// The configured users.
    pub fn users(&self) -> Vec<UserRow> {
        self.auth
            .users()
            .into_iter()
            .map(|u| UserRow { id: u.id, name: u.name, role: u.role, groups: u.groups, disabled: u.disabled })
            .collect()
    }

    /// Reads `users.toml`, applies `edit` to its text, checks and writes the result and puts
    /// the new users in force. Nothing changes on any error.
    async fn edit_users(
        &self,
        edit: impl FnOnce(&str, &[UserConfig]) -> Result<String, AccountError>,
    ) -> Result<(), AccountError> {
        let _one = self.editing.lock().await;
        let text = match std::fs::read_to_string(&self.users_file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(AccountError::File(format!("cannot read: {e}"))),
        };
        let current = auth::parse_users(&text, &self.users_file.display().to_string()).map_err(|errors| {
            AccountError::File(errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
        })?;
        let edited = edit(&text, &current)?;
        let users = super::users_file::write_checked(&self.users_file, &edited).map_err(AccountError::File)?;
        self.auth.set_users(users);
        Ok(())
    }

    /// Sets one key of user `id`'s block.
    async fn set_key(&self, id: &str, key: &str, value: String) -> Result<(), AccountError> {
        self.edit_users(|text, users| {
            let index = users.iter().position(|u| u.id == id).ok_or_else(|| AccountError::UnknownUser(id.into()))?;
            super::users_file::set(text, index, key, &value).ok_or_else(|| AccountError::UnknownUser(id.into()))
        })
        .await
    }

    async fn hash(password: &str) -> String {
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || auth::hash_password(&password)).await.unwrap_or_default()
    }

    /// A user changes their own password (the current one is checked like a login, and counts
    /// as a failure when wrong). Other tokens of the user stay valid.
    pub async fn change_password(&self, me: &Principal, current: &str, new: &str) -> Result<(), AccountError> {
        check_password(new)?;
        if self.auth.user(&me.id).is_none() {
            return Err(AccountError::UnknownUser(me.id.clone()));
        }
        let now = huiliu_domain::now_millis();
        match self.auth.login(&me.id, current, None, now).await {
            Ok(_) => {}
            Err(_) => return Err(AccountError::WrongPassword),
        }
        let hash = Self::hash(new).await;
        self.set_key(&me.id, "password_hash", format!("\"{hash}\"")).await?;
        self.store.audit(&me.id, "password_changed", &format!("user:{}", me.id), "", now).await?;
        tracing::info!(user = %me.id, "password changed");
        Ok(())
    }

    /// An admin adds a user.
    pub async fn add_user(&self, actor: &Principal, new: NewUser) -> Result<UserRow, AccountError> {
        let id = new.id;
        if id.chars().count() > 64 || huiliu_domain::text::is_blank(&id) {
            return Err(AccountError::Invalid("the id must be 1 to 64 characters, not blank".into()));
        }
        check_password(&new.password)?;
        let user = UserConfig {
            id: id.clone(),
            password_hash: Self::hash(&new.password).await,
            name: new.name.filter(|n| !n.trim().is_empty()),
            role: new.role,
            groups: new.groups,
            disabled: false,
        };
        let row = UserRow {
            id: id.clone(),
            name: user.name.clone(),
            role: user.role,
            groups: user.groups.clone(),
            disabled: false,
        };
        self.edit_users(|text, users| {
            if users.iter().any(|u| u.id == id) {
                return Err(AccountError::Exists(id.clone()));
            }
            Ok(super::users_file::append(text, &user))
        })
        .await?;
        let now = huiliu_domain::now_millis();
        let role = row.role.map_or("(from routing)", |r| r.as_str());
        self.store.audit(&actor.id, "user_added", &format!("user:{id}"), &format!("role {role}"), now).await?;
        tracing::info!(user = %id, by = %actor.id, "user added");
        Ok(row)
    }

    /// An admin disables (or enables again) a user; disabling ends every token of theirs at once.
    pub async fn set_disabled(&self, actor: &Principal, id: &str, disabled: bool) -> Result<UserRow, AccountError> {
        if disabled && actor.id == id {
            return Err(AccountError::Invalid("an admin cannot disable themselves".into()));
        }
        self.set_key(id, "disabled", disabled.to_string()).await?;
        let now = huiliu_domain::now_millis();
        if disabled {
            self.store.delete_api_tokens(None, Some(id)).await?;
            self.auth.tokens_may_have_ended();
        }
        let action = if disabled { "user_disabled" } else { "user_enabled" };
        self.store.audit(&actor.id, action, &format!("user:{id}"), "", now).await?;
        tracing::info!(user = %id, by = %actor.id, "{action}");
        self.users().into_iter().find(|u| u.id == id).ok_or_else(|| AccountError::UnknownUser(id.into()))
    }

    /// An admin gives a user a new password; the user's tokens end at once.
    pub async fn reset_password(&self, actor: &Principal, id: &str, password: &str) -> Result<(), AccountError> {
        check_password(password)?;
        if self.auth.user(id).is_none() {
            return Err(AccountError::UnknownUser(id.into()));
        }
        let hash = Self::hash(password).await;
        self.set_key(id, "password_hash", format!("\"{hash}\"")).await?;
        let now = huiliu_domain::now_millis();
        self.store.delete_api_tokens(None, Some(id)).await?;
        self.auth.tokens_may_have_ended();
        self.store.audit(&actor.id, "password_reset", &format!("user:{id}"), "", now).await?;
        tracing::info!(user = %id, by = %actor.id, "password reset");
        Ok(())
    }
}
