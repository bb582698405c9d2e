//! Events the gateway publishes to its own listeners (the workbench stream, the demo log).
//! They carry ids only: listeners read masked content from the store.

use serde::Serialize;

/// Something happened that a listener may want to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum GatewayEvent {
    /// A buyer message was stored.
    MessageIn { session_id: i64, customer_id: i64, message_id: i64, new_session: bool, platform: String, shop: String },
    /// A reply was queued.
    MessageOut { session_id: i64, message_id: i64 },
    /// A reply's delivery state changed (`sent`, `failed`, `retrying`).
    Delivery { session_id: i64, message_id: i64, state: String, detail: Option<String> },
    /// An order or refund event was stored.
    Trade { customer_id: i64, session_id: Option<i64> },
    /// Routing gave a session to an agent.
    Assigned { session_id: i64, agent: String },
    /// Routing put a session in a group's queue.
    Queued { session_id: i64, group: String, position: u32 },
    /// Routing took a session from an agent (a reassignment follows).
    Unassigned { session_id: i64, agent: String },
    /// Something a lead should look at.
    Alert { kind: String, session_id: Option<i64>, detail: String },
    /// A channel (TMC, stream) changed state.
    Channel { platform: String, shop: String, channel: String, status: String },
}
