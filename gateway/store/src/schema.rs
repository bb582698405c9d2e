//! The schema, as numbered migrations applied in order at start.
//!
//! One SQL text serves both backends; the few differences (identity columns, byte columns)
//! are the `{ID}` and `{BLOB}` placeholders. A migration is never edited once shipped: add a
//! new one.

use super::Backend;

/// (version, name, statements)
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "sessions, messages, intake, outbox", V1),
    (2, "blacklist with review", V2),
    (3, "agent presence", V3),
    (4, "workbench logins", V4),
    (5, "replies sent one element at a time", V5),
    (6, "sessions indexed by state and close time, not by last message", V6),
    (7, "cluster leases with epochs, nodes, agents' event streams per node", V7),
    (8, "the knowledge-base bot's figures", V8),
    (9, "messages no longer indexed by customer", V9),
];

const V1: &str = r#"
CREATE TABLE customers (
    id {ID},
    platform TEXT NOT NULL,
    shop TEXT NOT NULL,
    buyer_id TEXT NOT NULL,
    nick TEXT,
    vip_level BIGINT NOT NULL DEFAULT 0,
    fans_level BIGINT NOT NULL DEFAULT 0,
    tags TEXT NOT NULL DEFAULT '[]',
    notes TEXT NOT NULL DEFAULT '',
    lifetime_fen BIGINT NOT NULL DEFAULT 0,
    last_agent TEXT,
    last_agent_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (platform, shop, buyer_id)
);
CREATE TABLE sessions (
    id {ID},
    customer_id BIGINT NOT NULL,
    platform TEXT NOT NULL,
    shop TEXT NOT NULL,
    state TEXT NOT NULL,
    skill_group TEXT,
    agent TEXT,
    priority BIGINT NOT NULL DEFAULT 0,
    category TEXT,
    conversation TEXT,
    reply_context TEXT NOT NULL DEFAULT '{}',
    opened_at BIGINT NOT NULL,
    assigned_at BIGINT,
    first_response_at BIGINT,
    last_message_at BIGINT NOT NULL,
    last_inbound_at BIGINT,
    closed_at BIGINT,
    close_reason TEXT,
    unread BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX sessions_one_open ON sessions (customer_id) WHERE state <> 'closed';
CREATE INDEX sessions_by_state ON sessions (state, last_message_at);
CREATE INDEX sessions_by_shop ON sessions (platform, shop, opened_at);
CREATE INDEX sessions_by_agent ON sessions (agent, opened_at);
CREATE TABLE messages (
    id {ID},
    session_id BIGINT NOT NULL,
    customer_id BIGINT NOT NULL,
    direction TEXT NOT NULL,
    platform_msg_id TEXT,
    client_msg_id TEXT,
    author TEXT,
    content TEXT NOT NULL,
    text TEXT NOT NULL,
    sealed {BLOB},
    delivery TEXT,
    delivery_error TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX messages_by_customer ON messages (customer_id, id);
CREATE INDEX messages_by_session ON messages (session_id, id);
CREATE TABLE intake_keys (
    platform TEXT NOT NULL,
    shop TEXT NOT NULL,
    event_id TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (platform, shop, event_id)
);
CREATE TABLE trade_events (
    id {ID},
    customer_id BIGINT NOT NULL,
    platform TEXT NOT NULL,
    shop TEXT NOT NULL,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    stage TEXT NOT NULL,
    order_id TEXT,
    refund_id TEXT,
    amount_fen BIGINT,
    status TEXT,
    occurred_at BIGINT NOT NULL
);
CREATE INDEX trade_events_by_customer ON trade_events (customer_id, occurred_at);
CREATE TABLE transfers (
    id {ID},
    session_id BIGINT NOT NULL,
    from_agent TEXT,
    to_agent TEXT,
    to_group TEXT,
    problem TEXT NOT NULL,
    tried TEXT NOT NULL,
    expectation TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX transfers_by_session ON transfers (session_id);
CREATE TABLE outbox (
    id {ID},
    message_id BIGINT NOT NULL,
    session_id BIGINT NOT NULL,
    platform TEXT NOT NULL,
    shop TEXT NOT NULL,
    client_msg_id TEXT NOT NULL UNIQUE,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    platform_msg_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
CREATE TABLE dead_letters (
    id {ID},
    platform TEXT NOT NULL,
    shop TEXT NOT NULL,
    event_id TEXT,
    reason TEXT NOT NULL,
    raw {BLOB} NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE TABLE tokens (
    platform TEXT NOT NULL,
    shop TEXT NOT NULL,
    access_token TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    refresh_token TEXT,
    refresh_expires_at BIGINT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (platform, shop)
);
CREATE TABLE routing_decisions (
    id {ID},
    session_id BIGINT NOT NULL,
    at BIGINT NOT NULL,
    decision TEXT NOT NULL
);
CREATE INDEX routing_decisions_by_session ON routing_decisions (session_id, id);
CREATE TABLE audit_log (
    id {ID},
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL
)
"#;

const V2: &str = r#"
CREATE TABLE blacklist (
    id {ID},
    platform TEXT NOT NULL,
    shop TEXT,
    buyer_id TEXT NOT NULL,
    level TEXT NOT NULL,
    reason TEXT NOT NULL,
    evidence TEXT NOT NULL DEFAULT '[]',
    expires_at BIGINT,
    state TEXT NOT NULL,
    proposed_by TEXT NOT NULL,
    proposed_at BIGINT NOT NULL,
    decided_by TEXT,
    decided_at BIGINT,
    decision_note TEXT
);
CREATE INDEX blacklist_by_buyer ON blacklist (platform, buyer_id, state);
CREATE INDEX blacklist_by_state ON blacklist (state, proposed_at)
"#;

const V3: &str = r#"
CREATE TABLE agent_presence (
    agent TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    max_sessions BIGINT,
    idle_since BIGINT,
    updated_at BIGINT NOT NULL
)
"#;

const V4: &str = r#"
CREATE TABLE api_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX api_tokens_by_expiry ON api_tokens (expires_at)
"#;

/// The statements of `sql` for `backend`, placeholders filled, split on `;`.
pub fn statements(sql: &str, backend: Backend) -> Vec<String> {
    let (id, blob) = match backend {
        Backend::Sqlite => ("INTEGER PRIMARY KEY", "BLOB"),
        Backend::Postgres => ("BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "BYTEA"),
    };
    sql.split(';')
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| s.replace("{ID}", id).replace("{BLOB}", blob))
        .collect()
}

/// A reply with several elements goes out as one platform message per element; the row keeps
/// how many are delivered, so a retry resumes after them instead of sending them twice.
const V5: &str = r#"
ALTER TABLE outbox ADD COLUMN parts_sent BIGINT NOT NULL DEFAULT 0
"#;

// `(state, last_message_at)` moved in the index with every buyer message (two more pages
// written per message); nothing needs it: the idle sweep reads open sessions through
// `sessions_one_open`, and retention looks for closed sessions by close time.
const V6: &str = r#"
DROP INDEX sessions_by_state;
CREATE INDEX sessions_by_state ON sessions (state, closed_at)
"#;

// Several nodes on one PostgreSQL database (`[cluster]`): who holds what (the routing queues, a
// shop's long-lived channel) under which epoch (a fencing token, raised at every takeover) until
// when (the database's clock, ms), and the nodes seen. Created on SQLite too, unused there.
const V7: &str = r#"
CREATE TABLE cluster_leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    acquired_at BIGINT NOT NULL
);
CREATE TABLE cluster_nodes (
    node TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    seen_at BIGINT NOT NULL
);
CREATE TABLE cluster_streams (
    agent TEXT NOT NULL,
    node TEXT NOT NULL,
    seen_at BIGINT NOT NULL,
    PRIMARY KEY (agent, node)
)
"#;

// The knowledge-base bot's figures (store/src/bot.rs), kept across restarts and shared by the
// nodes of a cluster: counts per platform (`kind`: answered per entry, handover per reason,
// conversation, resolved, unresolved; `name`: the entry id or reason, else ''), the bot's
// conversations not settled yet (one row per session, the time of the bot's last answer), and
// the masked questions it could not match (per occurrence, with the buyer for an erasure).
const V8: &str = r#"
CREATE TABLE bot_counts (
    platform TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    n BIGINT NOT NULL,
    since BIGINT NOT NULL,
    PRIMARY KEY (platform, kind, name)
);
CREATE TABLE bot_open (
    session_id BIGINT PRIMARY KEY,
    platform TEXT NOT NULL,
    answered_at BIGINT NOT NULL
);
CREATE TABLE bot_unanswered (
    id {ID},
    customer_id BIGINT NOT NULL,
    text TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX bot_unanswered_by_time ON bot_unanswered (at);
CREATE INDEX bot_unanswered_by_customer ON bot_unanswered (customer_id)
"#;

// `messages_by_customer` took a page write (a random one: buyers write in turn) with every
// message. A customer's history is read through their sessions (`messages_by_session`), which
// are few per customer; erasure deletes by session too.
const V9: &str = r#"
DROP INDEX messages_by_customer
"#;
