//! The engine's inputs and outputs: conversations in, actions and decisions out.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::config::Policy;
use super::reason::Reason;

/// The gateway's id for a session (one conversation of one buyer with one shop).
pub type SessionId = u64;

/// A conversation that needs an agent: what routing may look at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Conversation {
    pub session: SessionId,
    /// Platform id: `taobao`, `douyin`, `jd`.
    pub platform: String,
    /// The gateway's shop id.
    pub shop: String,
    /// The platform's open buyer id (only shown in decisions; routing does not use it).
    pub buyer: String,
    /// The buyer's (masked) first message, for the category keywords.
    pub text: String,
    /// Member / VIP level, 0 = none.
    pub vip_level: u32,
    /// Shop fan level (抖音 `fans_level`), 0 = not a fan.
    pub fans_level: u32,
    /// Customer tags.
    pub tags: Vec<String>,
    /// Whether the buyer has a refund in progress (from platform refund events).
    pub has_open_refund: bool,
    /// Whether the buyer has talked to the shop before (有历史会话). Implied by `last_agent`.
    pub returning: bool,
    /// The agent who last served this buyer, for sticky routing.
    pub last_agent: Option<String>,
    /// When `last_agent` last served the buyer (epoch ms). Absent: treated as within the TTL.
    pub last_agent_at: Option<i64>,
}

/// An agent's presence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    /// Receiving conversations.
    Online,
    /// Logged in, working their sessions, receiving no new ones (忙碌).
    Busy,
    /// On a short break (小休): no new conversations; sessions kept or requeued (`routing.on_away`).
    Away,
    /// Logged out: sessions requeued or kept (`routing.on_offline`).
    #[default]
    Offline,
}

impl fmt::Display for AgentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AgentStatus::Online => "online",
            AgentStatus::Busy => "busy",
            AgentStatus::Away => "away",
            AgentStatus::Offline => "offline",
        })
    }
}

/// The handover note of a transfer (规范转接: problem, what was tried, what the buyer expects):
/// the session model's one type.
pub use huiliu_domain::session::HandoverNote;

/// Where a transfer goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferTo {
    /// A named agent (who must be online or busy and serve the shop). If they have no room
    /// the session waits for them `routing.transfer_wait_s`, then goes to its group.
    Agent(String),
    /// A group: routed there at once (the transferring agent excluded), or queued there.
    Group(String),
}

/// Why a session waits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum WaitState {
    /// In the group's queue with a position.
    Queued,
    /// The group is closed; waiting for opening time.
    OffHours { opens_at: Option<i64> },
    /// Every target's queue was full: kept and served in turn, no position promised.
    Overflow,
    /// Waiting a short time for one agent (the buyer's last agent, or a transfer's target).
    ForAgent { agent: String, until: i64 },
}

/// What made the engine decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Arrival,
    /// Capacity freed or an agent came online: the queue drained.
    Drain,
    /// The wait at a target ran out.
    Overflow,
    /// The wait for the buyer's last agent ran out.
    StickyExpired,
    /// The wait for a transfer's named agent ran out.
    TransferWaitExpired,
    /// The assigned agent did not answer in time.
    FirstResponseTimeout,
    /// The assigned agent went away or offline.
    AgentLeft,
    Transfer,
    Reload,
    Restore,
}

/// Why a session left an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnassignReason {
    NoFirstResponse,
    AgentAway,
    AgentOffline,
    /// The agent is no longer in the configuration.
    AgentRemoved,
    Transfer,
}

/// Whether an agent could take the conversation, and if not why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Eligibility {
    Eligible,
    Offline,
    Away,
    Busy,
    AtCap {
        active: u32,
        cap: u32,
    },
    NotServingShop,
    NotInGroup,
    BelowProficiency {
        has: u8,
        needs: u8,
    },
    /// The agent handed this conversation off (transfer) and does not get it back.
    Excluded,
}

impl Eligibility {
    /// The eligibility as a reason code (`eligibility.*`).
    pub fn reason(&self) -> Reason {
        match self {
            Eligibility::Eligible => Reason::new("eligibility.eligible"),
            Eligibility::Offline => Reason::new("eligibility.offline"),
            Eligibility::Away => Reason::new("eligibility.away"),
            Eligibility::Busy => Reason::new("eligibility.busy"),
            Eligibility::AtCap { active, cap } => {
                Reason::new("eligibility.at_cap").with("active", active).with("cap", cap)
            }
            Eligibility::NotServingShop => Reason::new("eligibility.not_serving_shop"),
            Eligibility::NotInGroup => Reason::new("eligibility.not_in_group"),
            Eligibility::BelowProficiency { has, needs } => {
                Reason::new("eligibility.below_proficiency").with("has", has).with("needs", needs)
            }
            Eligibility::Excluded => Reason::new("eligibility.excluded"),
        }
    }
}

impl fmt::Display for Eligibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason().english())
    }
}

/// One agent considered for a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub agent: String,
    pub name: String,
    pub eligibility: Eligibility,
    pub active: u32,
    pub cap: u32,
    /// Proficiency in the decision's group (0: not a member).
    pub proficiency: u8,
}

/// The matched rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleRef {
    pub index: usize,
    pub name: String,
}

/// A transfer's origin and note, carried by the decisions it leads to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handover {
    pub from_agent: Option<String>,
    pub note: HandoverNote,
}

/// Every routing decision, with its reasons (DESIGN §1: recorded with the rule, group,
/// candidates, chosen agent and why).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub at: i64,
    pub session: SessionId,
    pub trigger: Trigger,
    /// `None`: no rule matched and the fallback group was used (or a transfer chose the group).
    pub rule: Option<RuleRef>,
    /// Why earlier rules did not match (dry runs only; empty in live decisions).
    pub rules_skipped: Vec<String>,
    pub category: String,
    pub category_why: String,
    pub priority: i32,
    /// The group the decision is about, its position in the rule's targets, its policy.
    pub group: String,
    pub target: usize,
    pub policy: Policy,
    /// What sticky routing did, when it applied (`returning buyer: back to a03 …`).
    pub sticky: Option<String>,
    /// Agents considered: the best few in live decisions (`routing.decision_candidates`),
    /// every member of the group in dry runs. Eligible ones first, best first.
    pub candidates: Vec<Candidate>,
    /// How many members the group has, and how many are online / have room.
    pub members: usize,
    pub members_online: usize,
    pub members_with_room: usize,
    pub chosen: Option<String>,
    /// How the conversation waits when no agent was chosen.
    pub wait: Option<WaitState>,
    /// Why the chosen agent, or why the conversation waits.
    pub why: String,
    pub handover: Option<Handover>,
    /// Earlier steps of this decision (overflows on a full queue, on-duty redirects).
    pub path: Vec<String>,
    /// The same reasons as codes with parameters, for renderings in any language (the
    /// strings above are their English forms). Absent in decisions recorded before codes.
    #[serde(default)]
    pub reasons: DecisionReasons,
}

/// A decision's reasons as data ([`Reason`]): what `why`, `category_why`, `sticky`, `path`
/// and `rules_skipped` say, in codes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DecisionReasons {
    pub why: Reason,
    pub category: Reason,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sticky: Option<Reason>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<Reason>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules_skipped: Vec<Reason>,
}

impl Decision {
    /// Sets why the agent was chosen or the conversation waits (code and English text).
    pub fn set_why(&mut self, r: Reason) {
        self.why = r.english();
        self.reasons.why = r;
    }

    pub fn set_category_why(&mut self, r: Reason) {
        self.category_why = r.english();
        self.reasons.category = r;
    }

    pub fn set_sticky(&mut self, r: Option<Reason>) {
        self.sticky = r.as_ref().map(Reason::english);
        self.reasons.sticky = r;
    }

    pub fn set_path(&mut self, path: Vec<Reason>) {
        self.path = path.iter().map(Reason::english).collect();
        self.reasons.path = path;
    }

    pub fn set_rules_skipped(&mut self, skipped: Vec<Reason>) {
        self.rules_skipped = skipped.iter().map(Reason::english).collect();
        self.reasons.rules_skipped = skipped;
    }
}

/// What the gateway must do. Actions are returned in order; executing them in order keeps
/// the session store in step with the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Action {
    /// Give the session to the agent (push it to the workbench). The agent must reply by
    /// `respond_by` (call [`super::Engine::first_response`]) or the session moves on.
    Assign { session: SessionId, agent: String, respond_by: i64, decision: Box<Decision> },
    /// The session waits in `group`. `position` 1 is next; `estimate_s` is a rough wait.
    Queue {
        session: SessionId,
        group: String,
        wait: WaitState,
        position: u32,
        estimate_s: u64,
        decision: Box<Decision>,
    },
    /// Send this text to the buyer as a system message.
    NotifyBuyer { session: SessionId, text: String },
    /// Take the session away from the agent (it is reassigned or queued by the actions after).
    Unassign { session: SessionId, agent: String, reason: UnassignReason },
    /// The agent missed the first-response limit and nobody else had room: the session
    /// stays with them; alert the lead. Checked again after another limit.
    FirstResponseOverdue { session: SessionId, agent: String, assigned_at: i64 },
}

impl Action {
    /// The session the action is about.
    pub fn session(&self) -> SessionId {
        match self {
            Action::Assign { session, .. }
            | Action::Queue { session, .. }
            | Action::NotifyBuyer { session, .. }
            | Action::Unassign { session, .. }
            | Action::FirstResponseOverdue { session, .. } => *session,
        }
    }
}

/// A short, stable one-line form (`assign 7 a01`, `queue 8 presales #2`, …) for logs and
/// the scenario tests.
impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Assign { session, agent, .. } => write!(f, "assign {session} {agent}"),
            Action::Queue { session, group, wait, position, .. } => match wait {
                WaitState::Queued => write!(f, "queue {session} {group} #{position}"),
                WaitState::OffHours { .. } => write!(f, "queue {session} {group} off_hours #{position}"),
                WaitState::Overflow => write!(f, "queue {session} {group} overflow #{position}"),
                WaitState::ForAgent { agent, .. } => write!(f, "wait {session} {agent}"),
            },
            Action::NotifyBuyer { session, text } => write!(f, "notify {session} {text}"),
            Action::Unassign { session, agent, reason } => {
                let r = serde_json::to_value(reason).ok().and_then(|v| v.as_str().map(str::to_owned));
                write!(f, "unassign {session} {agent} {}", r.unwrap_or_default())
            }
            Action::FirstResponseOverdue { session, agent, .. } => write!(f, "overdue {session} {agent}"),
        }
    }
}

/// Errors of engine calls; the engine's state is unchanged when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouterError {
    #[error("unknown session {0}")]
    UnknownSession(SessionId),
    #[error("session {0} is already routed")]
    DuplicateSession(SessionId),
    #[error("unknown agent `{0}`")]
    UnknownAgent(String),
    #[error("unknown group `{0}`")]
    UnknownGroup(String),
    #[error("agent `{0}` is {1}: a transfer needs them online or busy")]
    AgentUnavailable(String, AgentStatus),
    #[error("agent `{0}` does not serve shop `{1}`")]
    AgentNotServingShop(String, String),
    #[error("the session is already with `{0}`")]
    SameAgent(String),
    #[error("nobody else in group `{0}` serves this shop")]
    NobodyElse(String),
}

/// Where a session is, for the store and the workbench.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum SessionView {
    Assigned { agent: String, group: String, assigned_at: i64, responded: bool, priority: i32 },
    Waiting { group: String, wait: WaitState, position: u32, enqueued_at: i64, priority: i32 },
}

/// An agent's live state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentView {
    pub id: String,
    pub name: String,
    pub role: super::config::Role,
    pub status: AgentStatus,
    pub active: u32,
    pub cap: u32,
    pub sessions: Vec<SessionId>,
    pub idle_since: i64,
}
