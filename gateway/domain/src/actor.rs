//! Who acts: the three roles of 飞鸽's permission levels, an actor for the audit log, and the
//! signed-in principal with the sessions it may see.

use serde::{Deserialize, Serialize};

use crate::session::{Scope, Session};

/// A user's role.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Serves buyers: sees their own sessions, proposes blacklist entries.
    #[default]
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

/// A signed-in user as the API sees them, resolved against the running routing configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Principal {
    pub id: String,
    pub name: String,
    pub role: Role,
    /// The skill groups whose sessions a lead sees (an agent's own groups, for display).
    pub groups: Vec<String>,
}

impl Principal {
    /// The operator token's identity.
    pub fn operator() -> Principal {
        Principal { id: "operator".into(), name: "operator".into(), role: Role::Admin, groups: Vec::new() }
    }

    pub fn actor(&self) -> Actor {
        Actor::new(self.id.clone(), self.role)
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// The sessions this user may see; `None` = all (admin).
    pub fn scope(&self) -> Option<Scope> {
        match self.role {
            Role::Admin => None,
            Role::Lead => Some(Scope { agent: self.id.clone(), groups: self.groups.clone() }),
            Role::Agent => Some(Scope { agent: self.id.clone(), groups: Vec::new() }),
        }
    }

    /// Whether this user may see and act on `session`: an agent their own, a lead also those
    /// of their groups, an admin all.
    pub fn may_see(&self, session: &Session) -> bool {
        match self.scope() {
            None => true,
            Some(scope) => {
                session.agent.as_deref() == Some(scope.agent.as_str())
                    || session.skill_group.as_ref().is_some_and(|g| scope.groups.contains(g))
            }
        }
    }

    /// Whether this user oversees `group`.
    pub fn oversees(&self, group: &str) -> bool {
        self.is_admin() || (self.role == Role::Lead && self.groups.iter().any(|g| g == group))
    }
}
