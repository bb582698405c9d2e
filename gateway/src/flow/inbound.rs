//! The one inbound flow: stages [1]–[5] for what a connector decoded, called by every ingress
//! (pushes, TMC WebSockets, JD streams, polls).

use std::sync::Arc;

use huiliu_sdk::{Content, DeadLetter, EventKind, InboundEvent, Millis};
use huiliu_store::{IntakeBatch, IntakeItem, ItemOutcome, Screen, StoreError};

use super::{Author, Flow, MaskStage, ReplyRequest};
use crate::events::GatewayEvent;
use crate::metrics::{PlatformLabels, PlatformReasonLabels};

/// What the ingress tells the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "the platform must be answered"]
pub enum Ack {
    /// Everything is committed: acknowledge (push: the connector's `ack`; TMC: `on_durable`).
    Durable,
    /// Nothing is committed: ask the platform to deliver again (push: `nack`; TMC: `on_failure`).
    Redeliver,
}

impl Flow {
    /// Screens, masks and durably stores what a connector decoded, then — once the caller can
    /// acknowledge — routes it. [`Ack::Durable`] means committed.
    pub async fn inbound(
        self: &Arc<Self>,
        events: Vec<InboundEvent>,
        dead_letters: Vec<DeadLetter>,
        platform: &str,
        shop: &str,
        now: Millis,
    ) -> Ack {
        if events.is_empty() && dead_letters.is_empty() {
            return Ack::Durable;
        }
        match self.store_stage(events, dead_letters, platform, shop, now).await {
            Ok(outcomes) => {
                self.after_ack(outcomes);
                Ack::Durable
            }
            Err(e) => {
                self.metrics.intake_errors.get_or_create(&PlatformLabels { platform: platform.into() }).inc();
                tracing::error!(platform, shop, "intake failed, asking the platform to deliver again: {e}");
                Ack::Redeliver
            }
        }
    }

    /// Stages [1]–[3] and [5]: `Ok` only after the store committed.
    async fn store_stage(
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
                let label = PlatformReasonLabels { platform: platform.into(), reason: level.into() };
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
                .get_or_create(&PlatformLabels { platform: platform.into() })
                .inc_by(dead_letters.len() as u64);
            tracing::warn!(platform, shop, count = dead_letters.len(), "kept undecodable push units as dead letters");
        }
        let dead = dead_letters.len();
        let dead_letters = dead_letters.into_iter().map(|d| (platform.to_owned(), shop.to_owned(), d)).collect();
        let summaries: Vec<(String, String)> =
            items.iter().map(|i| (i.event.shop.clone(), i.event.event_id.clone())).collect();
        // [3] dedupe + session + durable append
        let batch = IntakeBatch { items, dead_letters, now, idle_close_ms: self.idle_close_ms };
        let outcomes = self.store.intake(batch).await?;
        self.tally.add(platform, &outcomes, summaries.iter().map(|(shop, _)| shop.as_str()), (shop, dead));
        // [5] notify agents (ids only; the hub is in-process and never blocks).
        for (outcome, (shop, event_id)) in outcomes.iter().zip(summaries) {
            self.announce(platform, &shop, outcome, event_id);
        }
        Ok(outcomes)
    }

    /// [4] after the acknowledgement: each session that got a buyer message and needs an agent
    /// goes to routing; a restricted buyer's new session gets the auto-reply instead.
    fn after_ack(self: &Arc<Self>, outcomes: Vec<ItemOutcome>) {
        let auto = self.restrict_reply.read().unwrap_or_else(|p| p.into_inner()).clone();
        let work: Vec<(i64, bool)> = outcomes
            .into_iter()
            .filter_map(|o| match o {
                ItemOutcome::Message { session_id, screen: Screen::Restrict, new_session, .. } => {
                    (new_session && !auto.is_empty()).then_some((session_id, true))
                }
                ItemOutcome::Message { session_id, .. } if self.routing.is_some() || self.knowledge.get().is_some() => {
                    Some((session_id, false))
                }
                _ => None,
            })
            .collect();
        if work.is_empty() {
            return;
        }
        let flow = self.clone();
        tokio::spawn(async move {
            for (session_id, restricted) in work {
                if restricted {
                    let request = ReplyRequest {
                        session_id,
                        author: Author::AutoReply,
                        content: vec![Content::text(auto.clone())],
                    };
                    if let Err(e) = flow.reply(request).await {
                        tracing::warn!(session = session_id, "auto-reply to a restricted buyer failed: {e}");
                    }
                } else if flow.bot_turn(session_id).await {
                    // The bot answered: no agent needed for this message.
                } else if let Some(routing) = &flow.routing {
                    let actions = routing.arrive(session_id, huiliu_domain::now_millis()).await;
                    flow.apply(actions).await;
                }
            }
        });
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
    fn announce(&self, platform: &str, shop: &str, outcome: &ItemOutcome, event_id: String) {
        let label = PlatformLabels { platform: platform.into() };
        match outcome {
            ItemOutcome::Duplicate => {
                self.metrics.deduped.get_or_create(&label).inc();
            }
            ItemOutcome::Blocked => {
                self.metrics.blocked.get_or_create(&label).inc();
                tracing::debug!(platform, shop, "blocked buyer's message dropped");
            }
            ItemOutcome::Message { session_id, message_id, new_session, customer_id, .. } => {
                self.metrics.stored.get_or_create(&label).inc();
                tracing::debug!(platform, shop, session = session_id, new_session, "buyer message stored");
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
}
