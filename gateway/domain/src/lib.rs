//! # huiliu-domain — what the gateway's crates share
//!
//! The session model (customers, sessions, messages, transfers), who acts (roles, actors,
//! principals and the sessions they may see), the one clock and the shared error type. No I/O,
//! no async runtime: every other gateway crate depends on this one and it on the SDK only.

#![deny(unsafe_code)]

pub mod actor;
pub mod clock;
pub mod error;
pub mod session;
pub mod text;

pub use actor::{Actor, Principal, Role};
pub use clock::now_millis;
pub use error::ConfigError;
