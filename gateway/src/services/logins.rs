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
    #[error("too many failed logins for this id; try again in {0} s")]
    Locked(u64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Logins and tokens.
#[derive(Debug)]
pub struct Logins {
    auth: Auth,
    store: Store,
    admin_token: String,
    routing: Option<Arc<Routing>>,
    /// The routing configuration read at start, for principals when routing is not live.
    configured: Option<RoutingConfig>,
    metrics: Arc<Metrics>,
}

impl Logins {
    pub fn new(
        auth: Auth,
        store: Store,
        admin_token: String,
        routing: Option<Arc<Routing>>,
        configured: Option<RoutingConfig>,
        metrics: Arc<Metrics>,
    ) -> Logins {
        Logins { auth, store, admin_token, routing, configured, metrics }
    }

    /// Checks the password and hands out a token.
    pub async fn login(&self, id: &str, password: &str) -> Result<LoggedIn, LoginFailure> {
        let now = huiliu_domain::now_millis();
        let count = |result: &str| self.metrics.logins.get_or_create(&ResultLabels { result: result.into() }).inc();
        let user = match self.auth.login(id, password, now).await {
            Ok(u) => u.clone(),
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
        Ok(())
    }

    /// Who `token` is: the operator, or the user of a login token that has not expired and who
    /// still exists (removing a user from `users.toml` ends their access at the next restart).
    pub async fn resolve(&self, token: &str) -> Result<Option<Principal>, StoreError> {
        if !self.admin_token.is_empty() && huiliu_sdk::crypto::signature_eq(token, &self.admin_token) {
            return Ok(Some(Principal::operator()));
        }
        let Some(id) = self.store.api_token_user(&auth::token_hash(token), huiliu_domain::now_millis()).await? else {
            return Ok(None);
        };
        match self.auth.user(&id) {
            Some(user) => Ok(Some(self.principal_of(user).await)),
            None => Ok(None),
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
