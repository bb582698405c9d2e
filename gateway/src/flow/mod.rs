//! The flow: the order of the stages, written once. Every inbound event and every outgoing
//! message of the gateway passes through here.
//!
//! ```text
//! inbound (inbound.rs, Flow::inbound — the one function every ingress calls):
//!   connector.decode (plugin) ─▶ [1] blacklist screen ─▶ [2] privacy mask
//!   ─▶ [3] dedupe + session find/open + durable append (one transaction, group commit)
//!   ─▶ returns Ack::Durable: the caller acknowledges the platform
//!   ─▶ [4] route (and a restricted buyer's auto-reply) ─▶ [5] notify agents
//!
//! bot (bot.rs, before [4]): where faq.toml turns a shop's bot on and no agent has the
//! conversation, the knowledge base answers first through the reply door, or hands over
//! (转人工, low confidence, a complaint, a third question after two answers) to [4] routing.
//!
//! reply (reply.rs, Flow::reply — the one door every outgoing message goes through: agent
//! replies, routing notices, restricted-buyer auto-replies, the bot, the demo's agents):
//!   [1] compliance check ─▶ [2] mask for storage ─▶ [3] outbox (durable) ─▶ metrics
//!   ─▶ an agent's reply stops the first-response clock
//!   ─▶ outbox worker: connector.encode ─▶ HTTP ─▶ connector.classify ─▶ delivery status
//!
//! routing (route.rs, Flow::apply): the engine's actions recorded before anyone is told;
//! notices to the buyer go out through the reply door.
//! ```
//!
//! Architecture invariants held here:
//! - [`Flow::inbound`] answers [`Ack::Durable`] only after the store committed; callers
//!   acknowledge the platform only then (push: the connector's `ack`; TMC: the `on_durable`
//!   frames).
//! - Dedupe lives inside the store's transaction because that is the only race-free place.
//! - Nothing after step [2] sees unmasked text: events handed to the store, the engine, the
//!   event hub and the logs carry masked content only.
//! - A blocked buyer's event stops at step [3] with only its dedupe key stored: no session,
//!   no notification, no agent work — yet the platform is still acknowledged.
//! - Routing runs after the acknowledgement, never before it.

mod bot;
mod cluster;
pub mod followup;
mod inbound;
mod reply;
mod route;
mod tally;

use std::sync::{Arc, OnceLock, RwLock};

use huiliu_privacy::Verdict;
use huiliu_sdk::{InboundEvent, Millis};
use huiliu_store::{Screen, Store};
use tokio::sync::Notify;

use crate::events::EventHub;
use crate::metrics::Metrics;
use crate::services::routing::Routing;

pub use inbound::Ack;
pub use reply::{Author, ReplyError, ReplyOutcome, ReplyRequest};
pub use route::TransferError;
pub use tally::{ShopTally, Tally};

/// The authors the gateway writes as itself (routing notices, auto-replies): never an agent's.
pub use huiliu_store::SYSTEM_AUTHORS as RESERVED_AUTHORS;

/// The privacy-mask stage as the flow needs it.
pub trait MaskStage: Send + Sync + std::fmt::Debug {
    /// `text` with personal data masked, and how many items were masked.
    fn mask_text(&self, text: &str) -> (String, usize);
}

/// The blacklist stage as the flow needs it.
pub trait ScreenStage: Send + Sync + std::fmt::Debug {
    /// The screening decision for the buyer of `event`.
    fn screen(&self, event: &InboundEvent, now: Millis) -> Screen;
}

/// The outbound compliance stage as the flow needs it.
pub trait ComplianceStage: Send + Sync + std::fmt::Debug {
    fn check(&self, text: &str) -> Verdict;
}

/// The stages, wired.
#[derive(Debug)]
pub struct Flow {
    pub store: Store,
    /// Swapped atomically on a configuration reload.
    mask: RwLock<Arc<dyn MaskStage>>,
    screen: Arc<dyn ScreenStage>,
    /// Swapped atomically on a configuration reload.
    compliance: RwLock<Arc<dyn ComplianceStage>>,
    metrics: Arc<Metrics>,
    pub events: EventHub,
    /// Wakes the outbox worker when a reply is queued.
    pub outbox_wake: Arc<Notify>,
    idle_close_ms: Millis,
    /// Keeps originals of masked messages encrypted, when configured.
    pub sealer: Option<huiliu_privacy::seal::Sealer>,
    /// The auto-reply for restricted buyers (empty: none). Swapped on reload.
    restrict_reply: RwLock<String>,
    /// Live routing, when `routing.toml` exists.
    pub routing: Option<Arc<Routing>>,
    /// The delivery worker's world: connectors and the HTTP client, for the platform-side half
    /// of a transfer.
    outbox: Arc<crate::outbox::Outbox>,
    /// The knowledge base, when the bot may answer first (set once at start).
    knowledge: OnceLock<Arc<crate::services::knowledge::Knowledge>>,
    /// What intake did per shop since the last summary line.
    pub tally: Tally,
}

/// What a [`Flow`] is made of (the composition root fills it).
#[derive(Debug)]
pub struct Parts {
    pub store: Store,
    pub mask: Arc<dyn MaskStage>,
    pub screen: Arc<dyn ScreenStage>,
    pub compliance: Arc<dyn ComplianceStage>,
    pub metrics: Arc<Metrics>,
    pub events: EventHub,
    pub idle_close_ms: Millis,
    pub sealer: Option<huiliu_privacy::seal::Sealer>,
    pub restrict_reply: String,
    pub routing: Option<Arc<Routing>>,
    pub outbox: Arc<crate::outbox::Outbox>,
}

impl Flow {
    pub fn new(p: Parts) -> Flow {
        Flow {
            store: p.store,
            mask: RwLock::new(p.mask),
            screen: p.screen,
            compliance: RwLock::new(p.compliance),
            metrics: p.metrics,
            events: p.events,
            outbox_wake: p.outbox.wake.clone(),
            idle_close_ms: p.idle_close_ms,
            sealer: p.sealer,
            restrict_reply: RwLock::new(p.restrict_reply),
            routing: p.routing,
            outbox: p.outbox,
            knowledge: OnceLock::new(),
            tally: Tally::default(),
        }
    }

    /// Lets the knowledge-base bot answer first for the shops faq.toml turns it on for.
    pub fn set_knowledge(&self, knowledge: Arc<crate::services::knowledge::Knowledge>) {
        let _ = self.knowledge.set(knowledge);
    }

    /// The platform staff account `agent` speaks as on `shop` (routing's `accounts`), if any.
    pub async fn staff_account(&self, agent: &str, shop: &str) -> Option<String> {
        let routing = self.routing.as_ref()?;
        routing
            .with_config(|c| c.agents.iter().find(|a| a.id == agent).and_then(|a| a.accounts.get(shop).cloned()))
            .await
    }

    /// The mask stage in force (a reload may replace it between two messages).
    pub fn mask(&self) -> Arc<dyn MaskStage> {
        self.mask.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The compliance stage in force.
    pub fn compliance(&self) -> Arc<dyn ComplianceStage> {
        self.compliance.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the mask and compliance stages and the restricted-buyer auto-reply at once.
    pub fn swap_filters(&self, mask: Arc<dyn MaskStage>, compliance: Arc<dyn ComplianceStage>, restrict_reply: String) {
        *self.mask.write().unwrap_or_else(|p| p.into_inner()) = mask;
        *self.compliance.write().unwrap_or_else(|p| p.into_inner()) = compliance;
        *self.restrict_reply.write().unwrap_or_else(|p| p.into_inner()) = restrict_reply;
    }

    /// Minutes of silence after which a session closes, in milliseconds.
    pub fn idle_close_ms(&self) -> Millis {
        self.idle_close_ms
    }
}

impl MaskStage for huiliu_privacy::Masker {
    fn mask_text(&self, text: &str) -> (String, usize) {
        let masked = self.mask(text);
        let n = masked.findings.len();
        (masked.text, n)
    }
}

impl ComplianceStage for huiliu_privacy::Compliance {
    fn check(&self, text: &str) -> Verdict {
        huiliu_privacy::Compliance::check(self, text)
    }
}

impl ScreenStage for crate::services::blacklist::Blacklist {
    fn screen(&self, event: &InboundEvent, now: Millis) -> Screen {
        crate::services::blacklist::Blacklist::screen(self, event, now)
    }
}
