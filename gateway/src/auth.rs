//! Who is acting: the three roles of 飞鸽's permission levels, and an actor.
//!
//! Agent logins, tokens and per-endpoint checks build on these with the workbench.

use serde::{Deserialize, Serialize};

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Serves buyers: sees their own sessions, proposes blacklist entries.
    Agent,
    /// Team lead: sees their groups, approves blacklist entries, may reveal masked data.
    Lead,
    /// Changes configuration; everything a lead may do.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Lead => "lead",
            Role::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "agent" => Role::Agent,
            "lead" => Role::Lead,
            "admin" => Role::Admin,
            _ => return None,
        })
    }
    /// Lead or admin.
    pub fn can_review(self) -> bool {
        self >= Role::Lead
    }
}

/// Someone acting, for permission checks and the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub id: String,
    pub role: Role,
}

impl Actor {
    pub fn new(id: impl Into<String>, role: Role) -> Actor {
        Actor { id: id.into(), role }
    }
}
