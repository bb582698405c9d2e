//! The pipeline: the order of the stages, written once, top to bottom.
//!
//! ```text
//! inbound:  connector.decode (plugin) ─▶ [1] blacklist screen ─▶ [2] privacy mask
//!           ─▶ [3] dedupe + session find/open + durable append (one transaction, group commit)
//!           ─▶ caller acknowledges the platform ─▶ [4] route ─▶ [5] notify agents
//!
//! reply:    [1] compliance check ─▶ [2] mask for storage ─▶ [3] outbox (durable)
//!           ─▶ outbox worker: connector.encode ─▶ HTTP ─▶ connector.classify ─▶ delivery status
//! ```
//!
//! Architecture invariants held here:
//! - [`Pipeline::intake`] returns `Ok` only after the store committed; callers acknowledge the
//!   platform only then (push: the connector's `ack`; TMC: the `on_durable` frames).
//! - Dedupe lives inside the store's transaction because that is the only race-free place.
//! - Nothing after step [2] sees unmasked text: events handed to the store, the router, the
//!   event bus and the logs carry masked content only.
//! - A blocked buyer's event stops at step [3] with only its dedupe key stored: no session,
//!   no notification, no agent work — yet the platform is still acknowledged.

use std::sync::{Arc, RwLock};

use huiliu_sdk::{Content, DeadLetter, EventKind, InboundEvent, Millis, OutgoingMessage};
use tokio::sync::Notify;

use crate::events::GatewayEvent;
use crate::metrics::Metrics;
use huiliu_privacy::{Action, Hit, Verdict};
use huiliu_store::{IntakeBatch, IntakeItem, ItemOutcome, NewReply, Screen, Store, StoreError};

/// The privacy-mask stage as the pipeline needs it.
pub trait MaskStage: Send + Sync + std::fmt::Debug {
    /// `text` with personal data masked, and how many items were masked.
    fn mask_text(&self, text: &str) -> (String, usize);
}

/// The blacklist stage as the pipeline needs it.
pub trait ScreenStage: Send + Sync + std::fmt::Debug {
    /// The screening decision for the buyer of `event`.
    fn screen(&self, event: &InboundEvent, now: Millis) -> Screen;
}

/// A reply an agent wants sent.
#[derive(Debug, Clone)]
pub struct ReplyRequest {
    pub session_id: i64,
    pub author: String,
    pub content: Vec<Content>,
}

/// What became of a reply request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyOutcome {
    /// Stored in the outbox; the worker sends it. `warnings` are compliance hits configured to
    /// warn: the reply goes out, and the agent is told.
    Queued { message_id: i64, outbox_id: i64, client_msg_id: String, warnings: Vec<Hit> },
    /// Not sent: compliance blocked it. The message is stored as failed with the reason.
    Blocked { message_id: i64, hits: Vec<Hit> },
}

/// Errors of the reply path.
#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    #[error("session {0} not found")]
    NoSession(i64),
    #[error("session {0} is closed")]
    Closed(i64),
    #[error("nothing to send")]
    Empty,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The outbound compliance stage as the pipeline needs it.
pub trait ComplianceStage: Send + Sync + std::fmt::Debug {
    fn check(&self, text: &str) -> Verdict;
}

/// The stages, wired.
#[derive(Debug)]
pub struct Pipeline {
    pub store: Store,
    /// Swapped atomically on a configuration reload.
    pub mask: RwLock<Arc<dyn MaskStage>>,
    pub screen: Arc<dyn ScreenStage>,
    /// Swapped atomically on a configuration reload.
    pub compliance: RwLock<Arc<dyn ComplianceStage>>,
    pub metrics: Arc<Metrics>,
    pub events: crate::events::EventHub,
    /// Wakes the outbox worker when a reply is queued.
    pub outbox_wake: Arc<Notify>,
    pub idle_close_ms: Millis,
    /// Keeps originals of masked messages encrypted, when configured.
    pub sealer: Option<huiliu_privacy::seal::Sealer>,
    /// The auto-reply for restricted buyers (empty: none). Swapped on reload.
    pub restrict_reply: RwLock<String>,
}

impl Pipeline {
    /// The mask stage in force (a reload may replace it between two messages).
    pub fn mask(&self) -> Arc<dyn MaskStage> {
        self.mask.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The compliance stage in force.
    pub fn compliance(&self) -> Arc<dyn ComplianceStage> {
        self.compliance.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the mask and compliance stages at once.
    pub fn swap_filters(&self, mask: Arc<dyn MaskStage>, compliance: Arc<dyn ComplianceStage>) {
        *self.mask.write().unwrap_or_else(|p| p.into_inner()) = mask;
        *self.compliance.write().unwrap_or_else(|p| p.into_inner()) = compliance;
    }

    /// Screens, masks and durably stores what a connector decoded. `Ok` means committed.
    pub async fn intake(
        &self,
        events: Vec<InboundEvent>,
        dead_letters: Vec<DeadLetter>,
        platform: &str,
        shop: &str,
        now: Millis,
    ) -> Result<Vec<ItemOutcome>, StoreError> {
        let mut items = Vec::with_capacity(events.len());
        let mask = self.mask();
        for event in events {
            // [1] blacklist screen
            let screen = self.screen.screen(&event, now);
            if matches!(screen, Screen::Flag | Screen::Restrict) {
                let level = if screen == Screen::Flag { "flag" } else { "restrict" };
                let label = crate::metrics::PlatformReasonLabels { platform: platform.into(), reason: level.into() };
                self.metrics.screened.get_or_create(&label).inc();
            }
            // [2] privacy mask: from here on only masked text exists (and, when configured, the
            // sealed original).
            let (event, text, sealed) = self.mask_event(&*mask, event);
            items.push(IntakeItem { event, text, sealed, screen });
        }
        if !dead_letters.is_empty() {
            self.metrics
                .dead_letters
                .get_or_create(&crate::metrics::PlatformLabels { platform: platform.into() })
                .inc_by(dead_letters.len() as u64);
            tracing::warn!(platform, shop, count = dead_letters.len(), "kept undecodable push units as dead letters");
        }
        let dead_letters = dead_letters.into_iter().map(|d| (platform.to_owned(), shop.to_owned(), d)).collect();
        let summaries: Vec<(String, String, String)> =
            items.iter().map(|i| (i.event.shop.clone(), i.text.clone(), i.event.event_id.clone())).collect();
        // [3] dedupe + session + durable append
        let batch = IntakeBatch { items, dead_letters, now, idle_close_ms: self.idle_close_ms };
        let outcomes = self.store.intake(batch).await?;
        // The caller acknowledges the platform after this returns; [4]/[5] follow.
        for (outcome, (shop, text, event_id)) in outcomes.iter().zip(summaries) {
            self.after_commit(platform, &shop, outcome, &text, event_id);
        }
        // Restricted buyers get the auto-reply once per session and no agent.
        let auto = self.restrict_reply.read().unwrap_or_else(|p| p.into_inner()).clone();
        if !auto.is_empty() {
            for outcome in &outcomes {
                if let ItemOutcome::Message { session_id, new_session: true, screen: Screen::Restrict, .. } = outcome {
                    let request = ReplyRequest {
                        session_id: *session_id,
                        author: "auto-reply".into(),
                        content: vec![Content::text(auto.clone())],
                    };
                    if let Err(e) = self.reply(request, now).await {
                        tracing::warn!(session = session_id, "auto-reply to a restricted buyer failed: {e}");
                    }
                }
            }
        }
        Ok(outcomes)
    }

    /// Masks the typed text of a buyer message; returns the event, its masked fallback text and
    /// the sealed original when something was masked and a seal key is configured.
    fn mask_event(&self, mask: &dyn MaskStage, mut event: InboundEvent) -> (InboundEvent, String, Option<Vec<u8>>) {
        let EventKind::BuyerMessage(m) = &mut event.kind else { return (event, String::new(), None) };
        let original = self.sealer.as_ref().map(|_| huiliu_sdk::fallback_text(&m.content));
        let mut masked_items = 0;
        for c in &mut m.content {
            if let Content::Text { text } = c {
                let (masked, n) = mask.mask_text(text);
                masked_items += n;
                *text = masked;
            }
        }
        let mut sealed = None;
        if masked_items > 0 {
            self.metrics.masked.inc_by(masked_items as u64);
            if let (Some(sealer), Some(original)) = (&self.sealer, original) {
                sealed = Some(sealer.seal(&original));
            }
        }
        let text = huiliu_sdk::fallback_text(&m.content);
        (event, text, sealed)
    }

    /// Counts, logs and publishes what one item's intake did.
    fn after_commit(&self, platform: &str, shop: &str, outcome: &ItemOutcome, masked_text: &str, event_id: String) {
        let label = crate::metrics::PlatformLabels { platform: platform.into() };
        match outcome {
            ItemOutcome::Duplicate => {
                self.metrics.deduped.get_or_create(&label).inc();
            }
            ItemOutcome::Blocked => {
                self.metrics.blocked.get_or_create(&label).inc();
                tracing::info!(platform, shop, "blocked buyer's message dropped");
            }
            ItemOutcome::Message { session_id, message_id, new_session, customer_id, .. } => {
                self.metrics.stored.get_or_create(&label).inc();
                tracing::info!(platform, shop, session = session_id, new_session, "buyer: {masked_text}");
                let _ = self.events.send(GatewayEvent::MessageIn {
                    session_id: *session_id,
                    customer_id: *customer_id,
                    message_id: *message_id,
                    new_session: *new_session,
                    platform: platform.into(),
                    shop: shop.into(),
                    event_id,
                });
            }
            ItemOutcome::Trade { customer_id, session_id } => {
                self.metrics.stored.get_or_create(&label).inc();
                let _ = self.events.send(GatewayEvent::Trade { customer_id: *customer_id, session_id: *session_id });
            }
        }
    }

    /// Stores a reply in the outbox (durably) and wakes the worker.
    pub async fn reply(&self, request: ReplyRequest, now: Millis) -> Result<ReplyOutcome, ReplyError> {
        if request.content.is_empty() {
            return Err(ReplyError::Empty);
        }
        let session = self.store.session(request.session_id).await?.ok_or(ReplyError::NoSession(request.session_id))?;
        if session.state == huiliu_domain::session::SessionState::Closed {
            return Err(ReplyError::Closed(session.id));
        }
        let customer =
            self.store.customer(session.customer_id).await?.ok_or(ReplyError::NoSession(request.session_id))?;
        // [1] compliance: every typed text of the reply.
        let typed: Vec<&str> = request.content.iter().filter_map(Content::typed_text).collect();
        let verdict = self.compliance().check(&typed.join("\n"));
        let mask = self.mask();
        for hit in &verdict.hits {
            let label = crate::metrics::PlatformReasonLabels {
                platform: session.platform.clone(),
                reason: hit.category.as_str().into(),
            };
            self.metrics.compliance_hits.get_or_create(&label).inc();
        }
        // [2] mask for storage; the outbox payload keeps the agent's words for the platform.
        let stored: Vec<Content> = request
            .content
            .iter()
            .map(|c| match c {
                Content::Text { text } => Content::text(mask.mask_text(text).0),
                other => other.clone(),
            })
            .collect();
        let client_msg_id = format!("hl-{}-{:016x}", session.id, rand::random::<u64>());
        let outgoing = OutgoingMessage {
            client_msg_id: client_msg_id.clone(),
            shop: session.shop.clone(),
            buyer: huiliu_sdk::Buyer { open_id: customer.buyer_id.clone(), nick: customer.nick.clone() },
            conversation: session.conversation.clone(),
            reply_context: session.reply_context.clone(),
            content: request.content,
        };
        let text = huiliu_sdk::fallback_text(&stored);
        if verdict.action == Action::Block {
            let reasons: Vec<String> = verdict.hits.iter().map(|h| format!("「{}」{}", h.term, h.reason)).collect();
            let reason = format!("未发送：{}", reasons.join("；"));
            let message_id = self
                .store
                .record_blocked_reply(
                    session.id,
                    Some(&request.author),
                    &stored,
                    &text,
                    &mask.mask_text(&reason).0,
                    now,
                )
                .await?;
            let _ = self.events.send(GatewayEvent::MessageOut { session_id: session.id, message_id });
            return Ok(ReplyOutcome::Blocked { message_id, hits: verdict.hits });
        }
        let warnings = if verdict.action == Action::Warn { verdict.hits } else { Vec::new() };
        let reply = NewReply { session_id: session.id, author: Some(request.author), content: stored, text, outgoing };
        // [3] outbox
        let (message_id, outbox_id) = self.store.enqueue_reply(&reply, now).await?;
        self.outbox_wake.notify_one();
        let _ = self.events.send(GatewayEvent::MessageOut { session_id: session.id, message_id });
        Ok(ReplyOutcome::Queued { message_id, outbox_id, client_msg_id, warnings })
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
