//! The session model (DESIGN.md §4): customers, sessions and messages as the gateway keeps
//! them. Stored by the `huiliu-store` crate; every text here is already masked. Times are
//! milliseconds since the Unix epoch.

use serde::{Deserialize, Serialize};

/// A customer: one buyer of one shop on one platform, keyed by the platform's open buyer id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Customer {
    pub id: i64,
    pub platform: String,
    pub shop: String,
    pub buyer_id: String,
    pub nick: Option<String>,
    pub vip_level: i64,
    pub fans_level: i64,
    pub tags: Vec<String>,
    pub notes: String,
    /// Sum of paid order amounts seen in order events, in fen.
    pub lifetime_fen: i64,
    pub last_agent: Option<String>,
    pub last_agent_at: Option<i64>,
}

/// Where a session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// Waiting for an agent.
    Queued,
    /// An agent has it.
    Assigned,
    /// Held by an auto-reply (restricted buyers).
    Bot,
    /// Waiting for business hours.
    OffHours,
    /// Over.
    Closed,
}

impl SessionState {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Queued => "queued",
            SessionState::Assigned => "assigned",
            SessionState::Bot => "bot",
            SessionState::OffHours => "off_hours",
            SessionState::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<SessionState> {
        Some(match s {
            "queued" => SessionState::Queued,
            "assigned" => SessionState::Assigned,
            "bot" => SessionState::Bot,
            "off_hours" => SessionState::OffHours,
            "closed" => SessionState::Closed,
            _ => return None,
        })
    }
}

/// One conversation of one customer with one shop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Session {
    pub id: i64,
    pub customer_id: i64,
    pub platform: String,
    pub shop: String,
    pub state: SessionState,
    pub skill_group: Option<String>,
    pub agent: Option<String>,
    pub priority: i64,
    pub category: Option<String>,
    /// The platform's conversation id, when it has one.
    pub conversation: Option<String>,
    /// The connector's reply context from the buyer's last message.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub reply_context: huiliu_sdk::ReplyContext,
    pub opened_at: i64,
    pub assigned_at: Option<i64>,
    pub first_response_at: Option<i64>,
    pub last_message_at: i64,
    pub last_inbound_at: Option<i64>,
    pub closed_at: Option<i64>,
    pub close_reason: Option<String>,
    /// Inbound messages since the agent last replied.
    pub unread: i64,
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the buyer.
    In,
    /// From an agent (or an auto-reply) to the buyer.
    Out,
    /// A note by the gateway (assignment, transfer, platform event).
    System,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
            Direction::System => "system",
        }
    }
    pub fn parse(s: &str) -> Option<Direction> {
        Some(match s {
            "in" => Direction::In,
            "out" => Direction::Out,
            "system" => Direction::System,
            _ => return None,
        })
    }
}

/// Delivery of an outbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Stored, not yet accepted by the platform (being sent or retried).
    Pending,
    /// The platform accepted it.
    Sent,
    /// The platform refused it for good, or it was blocked; see `delivery_error`.
    Failed,
}

impl Delivery {
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Pending => "pending",
            Delivery::Sent => "sent",
            Delivery::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Delivery> {
        Some(match s {
            "pending" => Delivery::Pending,
            "sent" => Delivery::Sent,
            "failed" => Delivery::Failed,
            _ => return None,
        })
    }
}

/// One message of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Message {
    pub id: i64,
    pub session_id: i64,
    pub customer_id: i64,
    pub direction: Direction,
    pub platform_msg_id: Option<String>,
    pub client_msg_id: Option<String>,
    /// The agent who wrote an outbound message.
    pub author: Option<String>,
    /// Normalized content, masked.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub content: Vec<huiliu_sdk::Content>,
    /// The text fallback of the content, masked.
    pub text: String,
    pub delivery: Option<Delivery>,
    pub delivery_error: Option<String>,
    pub created_at: i64,
}

/// A handover note written when a session changes hands (problem, what was tried, what the
/// buyer expects — the three questions of a good 交接).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct HandoverNote {
    /// The buyer's problem.
    pub problem: String,
    /// What was tried.
    pub tried: String,
    /// What the buyer expects (`expects` is accepted too, as the API's transfer body writes it).
    #[serde(alias = "expects")]
    pub expectation: String,
}

/// A transfer in a session's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Transfer {
    pub id: i64,
    pub session_id: i64,
    pub from_agent: Option<String>,
    pub to_agent: Option<String>,
    pub to_group: Option<String>,
    pub note: HandoverNote,
    pub at: i64,
}

/// An order or refund event as kept on the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TradeRecord {
    pub event_id: String,
    /// `order` or `refund`.
    pub kind: String,
    pub stage: String,
    pub order_id: Option<String>,
    pub refund_id: Option<String>,
    pub amount_fen: Option<i64>,
    pub status: Option<String>,
    pub occurred_at: i64,
}

/// A filter for searching sessions; unset fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionFilter {
    pub shop: Option<String>,
    pub platform: Option<String>,
    pub state: Option<SessionState>,
    pub agent: Option<String>,
    /// Opened at or after.
    pub from: Option<i64>,
    /// Opened before.
    pub to: Option<i64>,
    /// At most this many, newest first (default 50, max 500).
    pub limit: Option<i64>,
    /// Only sessions that are not closed.
    pub open_only: bool,
    /// Only this customer's sessions.
    pub customer: Option<i64>,
    /// Only what a user may see: sessions with `agent`, or in one of `groups`.
    pub scope: Option<Scope>,
    /// Only customers whose nick contains this.
    pub nick: Option<String>,
    /// Only sessions of a customer with this order number (order events), or whose (masked)
    /// messages contain it.
    pub order: Option<String>,
    /// Only sessions whose masked messages show a mobile number ending so (`138****5678`
    /// keeps the last four digits). Searches masked text only, never sealed originals.
    pub phone_tail: Option<String>,
    /// Skip this many (paging; with `limit`).
    pub offset: Option<i64>,
}

/// The sessions a user may see: their own, and those of their skill groups.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    pub agent: String,
    pub groups: Vec<String>,
}
