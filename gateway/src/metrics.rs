//! Prometheus metrics, typed: one field per metric family, labels as structs.
//!
//! Architecture invariant: no label ever carries personal data or free text from a platform —
//! only plugin ids, shop ids, op names and fixed reason words.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginOpLabels {
    pub plugin: String,
    pub op: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PlatformReasonLabels {
    pub platform: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PlatformLabels {
    pub platform: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GroupLabels {
    /// A skill-group id from routing.toml.
    pub group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AuthorLabels {
    /// `agent` or `system` (routing notices, auto-replies): never a name.
    pub author: String,
}

/// Every metric the gateway exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    /// Panics caught inside plugin calls.
    pub plugin_panics: Family<PluginOpLabels, Counter>,
    /// Plugin libraries loaded / rejected at start.
    pub plugins_loaded: Gauge,
    pub plugins_rejected: Gauge,
    /// Pushes received at `/hooks`, by platform.
    pub pushes_received: Family<PlatformLabels, Counter>,
    /// Pushes refused before parsing, by platform and reason (`bad_signature`, `unknown_shop`, …).
    pub pushes_rejected: Family<PlatformReasonLabels, Counter>,
    /// Events stored (messages and trade events), by platform.
    pub stored: Family<PlatformLabels, Counter>,
    /// Events absorbed as redeliveries, by platform.
    pub deduped: Family<PlatformLabels, Counter>,
    /// Events of blocked buyers dropped, by platform.
    pub blocked: Family<PlatformLabels, Counter>,
    /// Units kept as dead letters, by platform.
    pub dead_letters: Family<PlatformLabels, Counter>,
    /// Personal-data items masked.
    pub masked: Counter,
    /// Intake failures (storage errors; the platform was not acknowledged), by platform.
    pub intake_errors: Family<PlatformLabels, Counter>,
    /// Reply send outcomes, by platform and outcome class.
    pub sends: Family<PlatformReasonLabels, Counter>,
    /// Token refreshes, by platform and result.
    pub token_refreshes: Family<PlatformReasonLabels, Counter>,
    /// Lookups completing pushed units (order enrichment), by platform and result
    /// (`complete`, `failed`, `pending`).
    pub lookups: Family<PlatformReasonLabels, Counter>,
    /// Rows deleted by the retention sweeper, by kind.
    pub retention_deleted: Family<KindLabels, Counter>,
    /// Platform-side transfers (a Huiliu transfer between agents with staff accounts), by
    /// platform and outcome class.
    pub platform_transfers: Family<PlatformReasonLabels, Counter>,
    /// Channel (re)connections, by platform and result.
    pub channel_connects: Family<PlatformReasonLabels, Counter>,
    /// Push handling latency (receipt to acknowledgement), seconds.
    pub push_seconds: Histogram,
    /// Compliance hits in replies, by platform and category.
    pub compliance_hits: Family<PlatformReasonLabels, Counter>,
    /// Messages of flagged / restricted buyers, by platform and level.
    pub screened: Family<PlatformReasonLabels, Counter>,
    /// Configuration reloads, by part (`platform` label) and result (`reason`: ok / rejected).
    pub config_reloads: Family<PlatformReasonLabels, Counter>,
    /// Conversations put in a group's queue, by group.
    pub queued: Family<GroupLabels, Counter>,
    /// Conversations assigned to an agent, by group.
    pub assigned: Family<GroupLabels, Counter>,
    /// Time from a session's opening to its assignment (first assignment only), seconds.
    pub assign_seconds: Histogram,
    /// Replies queued for sending, by author kind.
    pub replies: Family<AuthorLabels, Counter>,
    /// Buyer messages the knowledge-base bot handed to agents, by platform and reason
    /// (asked_for_agent, low_confidence, category_complaint, two_answers_did_not_help,
    /// answer_blocked).
    ///
    /// The `bot_*` families are the store's totals (the bot's figures, `store/src/bot.rs`), set
    /// at each scrape: they survive a restart and every node of a cluster shows the same value
    /// (aggregate with `max`, not `sum`).
    pub bot_handovers: Family<PlatformReasonLabels, Counter>,
    /// Conversations the bot answered (counted at its first answer), by platform.
    pub bot_conversations: Family<PlatformLabels, Counter>,
    /// Of those, resolved without a human: the buyer wrote nothing further within faq.toml's
    /// `resolved_after_minutes` of the bot's last answer, by platform.
    pub bot_resolved: Family<PlatformLabels, Counter>,
    /// Of those, not resolved by the bot (handed over, or the buyer's next message got no
    /// answer from it in time), by platform.
    pub bot_unresolved: Family<PlatformLabels, Counter>,
    /// Buyer messages the bot answered, by platform.
    pub bot_answers: Family<PlatformLabels, Counter>,
    /// Time from assignment to the agent's first reply, seconds.
    pub first_response_seconds: Histogram,
    /// Time from a reply being queued to the platform accepting it, seconds.
    pub send_seconds: Histogram,
    /// Sessions closed, by reason (`agent`, `idle`).
    pub closed: Family<ResultLabels, Counter>,
    /// Workbench logins by result (`ok`, `bad_credentials`, `locked`).
    pub logins: Family<ResultLabels, Counter>,
    /// Event-stream (WebSocket) clients connected.
    pub stream_clients: Gauge,
    /// Open conversations waiting for an answer, as of the last dashboard read.
    pub backlog: Gauge,
    /// Cluster leases this node holds now (`kind`: `routing`, `channel`).
    pub cluster_leases_held: Family<KindLabels, Gauge>,
    /// Cluster leases this node took (`kind`); one taken under an epoch above 1 is a takeover.
    pub cluster_lease_takeovers: Family<KindLabels, Counter>,
    /// Cluster leases this node lost before it let them go (`kind`; a failed renewal, a pause).
    pub cluster_leases_lost: Family<KindLabels, Counter>,
    /// Routing writes refused because this node's lease was no longer current (`kind`:
    /// `assign`, `unassign`, `queue`), and assignments refused by the store's cap or claim check.
    pub cluster_fenced_writes: Family<KindLabels, Counter>,
    /// Events this node published to the cluster's event stream.
    pub cluster_events_published: Counter,
    /// Events this node received from the cluster's event stream.
    pub cluster_events_received: Counter,
    /// Routing requests forwarded to the routing leader (`kind`: the operation), by result.
    pub cluster_forwarded: Family<KindResultLabels, Counter>,
    /// Agents set offline because their node died and they did not reconnect in the grace period.
    pub cluster_agents_orphaned: Family<KindLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindResultLabels {
    pub kind: String,
    pub result: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("huiliu");
        let m = Metrics {
            registry: Mutex::new(Registry::default()),
            plugin_panics: Family::default(),
            plugins_loaded: Gauge::default(),
            plugins_rejected: Gauge::default(),
            pushes_received: Family::default(),
            pushes_rejected: Family::default(),
            stored: Family::default(),
            deduped: Family::default(),
            blocked: Family::default(),
            dead_letters: Family::default(),
            masked: Counter::default(),
            intake_errors: Family::default(),
            sends: Family::default(),
            token_refreshes: Family::default(),
            platform_transfers: Family::default(),
            retention_deleted: Family::default(),
            lookups: Family::default(),
            channel_connects: Family::default(),
            push_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            compliance_hits: Family::default(),
            screened: Family::default(),
            config_reloads: Family::default(),
            queued: Family::default(),
            assigned: Family::default(),
            assign_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 20)),
            replies: Family::default(),
            bot_handovers: Family::default(),
            bot_conversations: Family::default(),
            bot_resolved: Family::default(),
            bot_unresolved: Family::default(),
            bot_answers: Family::default(),
            first_response_seconds: Histogram::new(exponential_buckets(0.5, 2.0, 14)),
            send_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 20)),
            closed: Family::default(),
            logins: Family::default(),
            stream_clients: Gauge::default(),
            backlog: Gauge::default(),
            cluster_leases_held: Family::default(),
            cluster_lease_takeovers: Family::default(),
            cluster_leases_lost: Family::default(),
            cluster_fenced_writes: Family::default(),
            cluster_events_published: Counter::default(),
            cluster_events_received: Counter::default(),
            cluster_forwarded: Family::default(),
            cluster_agents_orphaned: Family::default(),
        };
        registry.register("cluster_leases_held", "Cluster leases this node holds", m.cluster_leases_held.clone());
        registry.register(
            "cluster_lease_takeovers",
            "Cluster leases this node took (epoch above 1: from another holder)",
            m.cluster_lease_takeovers.clone(),
        );
        registry.register("cluster_leases_lost", "Cluster leases this node lost", m.cluster_leases_lost.clone());
        registry.register(
            "cluster_fenced_writes",
            "Routing writes the store refused: stale lease epoch, agent cap or session already claimed",
            m.cluster_fenced_writes.clone(),
        );
        registry.register(
            "cluster_events_published",
            "Events published to the cluster's event stream",
            m.cluster_events_published.clone(),
        );
        registry.register(
            "cluster_events_received",
            "Events received from the cluster's event stream",
            m.cluster_events_received.clone(),
        );
        registry.register(
            "cluster_agents_orphaned",
            "Agents set offline: their node died and they did not reconnect within the grace period",
            m.cluster_agents_orphaned.clone(),
        );
        registry.register(
            "cluster_forwarded",
            "Routing requests forwarded to the routing leader",
            m.cluster_forwarded.clone(),
        );
        registry.register("plugin_panics", "Panics caught inside plugin calls", m.plugin_panics.clone());
        registry.register("plugins_loaded", "Plugin libraries loaded", m.plugins_loaded.clone());
        registry.register(
            "plugins_rejected",
            "Files in the plugins directory that were rejected",
            m.plugins_rejected.clone(),
        );
        registry.register("pushes_received", "Platform pushes received", m.pushes_received.clone());
        registry.register("pushes_rejected", "Platform pushes refused before parsing", m.pushes_rejected.clone());
        registry.register("events_stored", "Events durably stored", m.stored.clone());
        registry.register("events_deduped", "Redelivered events absorbed", m.deduped.clone());
        registry.register("events_blocked", "Events of blocked buyers dropped", m.blocked.clone());
        registry.register("dead_letters", "Undecodable units kept raw", m.dead_letters.clone());
        registry.register("pii_masked", "Personal-data items masked", m.masked.clone());
        registry.register("intake_errors", "Intakes that failed to store (not acknowledged)", m.intake_errors.clone());
        registry.register("sends", "Reply send attempts by outcome", m.sends.clone());
        registry.register("token_refreshes", "Access token refreshes by result", m.token_refreshes.clone());
        registry.register("lookups", "Lookups completing pushed units, by result", m.lookups.clone());
        registry.register(
            "platform_transfers",
            "Platform-side transfers of a buyer between staff accounts, by outcome",
            m.platform_transfers.clone(),
        );
        registry.register("channel_connects", "Channel connection attempts by result", m.channel_connects.clone());
        registry.register("compliance_hits", "Compliance hits in replies by category", m.compliance_hits.clone());
        registry.register(
            "bot_handovers",
            "Buyer messages the knowledge-base bot handed to agents, by reason (store totals, the same on every node)",
            m.bot_handovers.clone(),
        );
        registry.register(
            "bot_conversations",
            "Conversations the knowledge-base bot answered (store totals, the same on every node)",
            m.bot_conversations.clone(),
        );
        registry.register(
            "bot_resolved",
            "Conversations the bot answered that the buyer left without a human (no further message in time)",
            m.bot_resolved.clone(),
        );
        registry.register(
            "bot_unresolved",
            "Conversations the bot answered that it did not resolve (handed over, or a message it left unanswered)",
            m.bot_unresolved.clone(),
        );
        registry.register("bot_answers", "Buyer messages the knowledge-base bot answered", m.bot_answers.clone());
        registry.register("screened", "Messages of flagged or restricted buyers", m.screened.clone());
        registry.register("config_reloads", "Configuration reloads by result", m.config_reloads.clone());
        registry.register("push_seconds", "Push handling time, receipt to acknowledgement", m.push_seconds.clone());
        registry.register("queued", "Conversations put in a group's queue", m.queued.clone());
        registry.register("assigned", "Conversations assigned to an agent", m.assigned.clone());
        registry.register("assign_seconds", "Session opened to first assignment", m.assign_seconds.clone());
        registry.register("replies", "Replies queued for sending, by author kind", m.replies.clone());
        registry.register(
            "first_response_seconds",
            "Assignment to the agent's first reply",
            m.first_response_seconds.clone(),
        );
        registry.register("send_seconds", "Reply queued to accepted by the platform", m.send_seconds.clone());
        registry.register("sessions_closed", "Sessions closed, by reason", m.closed.clone());
        registry.register(
            "retention_deleted",
            "Rows deleted (sealed originals: cleared) by the retention sweeper, by kind",
            m.retention_deleted.clone(),
        );
        registry.register("logins", "Workbench logins by result", m.logins.clone());
        registry.register("stream_clients", "Event-stream clients connected", m.stream_clients.clone());
        registry.register(
            "backlog",
            "Open conversations waiting for an answer (last dashboard read)",
            m.backlog.clone(),
        );
        *m.registry.lock().unwrap_or_else(|p| p.into_inner()) = registry;
        m
    }

    /// Counts under a (platform, reason) family.
    pub fn count(family: &Family<PlatformReasonLabels, Counter>, platform: &str, reason: &str) {
        family.get_or_create(&PlatformReasonLabels { platform: platform.into(), reason: reason.into() }).inc();
    }

    /// Counts a plugin panic.
    pub fn plugin_panic(&self, plugin: &str, op: &str) {
        self.plugin_panics.get_or_create(&PluginOpLabels { plugin: plugin.into(), op: op.into() }).inc();
    }

    /// The text exposition format for `/metrics`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &registry);
        out
    }
}
