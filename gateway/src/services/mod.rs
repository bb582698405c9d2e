//! Services: what the edge (API, ingress) and the flow act through. Each owns one concern over
//! the store and the engines; none imports the flow, the edge or the composition root.
//!
//! - `auth`: users, passwords and the login limiter; `logins`: bearer tokens and who a token is.
//! - `blacklist`: reviewed, audited blacklist entries and the in-memory screen.
//! - `routing`: the live routing engine, its restore from the store and the record of each
//!   decision.
//! - `desk`: what the workbench reads and changes of sessions and customers (scope-checked),
//!   quick replies, the reveal of a masked original (audited).
//! - `dashboard`: the lead's figures and alerts.
//! - `status`: channel states, shops and plugins for readiness and the status API.

pub mod auth;
pub mod blacklist;
pub mod dashboard;
pub mod desk;
pub mod faq_file;
pub mod knowledge;
pub mod logins;
pub mod quick;
pub mod routing;
pub mod status;
pub mod timeline;
pub mod users_file;

use huiliu_store::StoreError;

/// Why a service refused or failed. The API maps each kind to its HTTP status; `code` is the
/// stable error code clients see.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0} not found")]
    NotFound(String),
    /// Something that exists but is not available here (answered 404 with its own code).
    #[error("{message}")]
    Unavailable { code: &'static str, message: String },
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ServiceError {
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> ServiceError {
        ServiceError::Forbidden { code, message: message.into() }
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> ServiceError {
        ServiceError::Conflict { code, message: message.into() }
    }
}
