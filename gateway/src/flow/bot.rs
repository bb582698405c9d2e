//! The bot's turn (智能客服 answers first): after a buyer message is stored and acknowledged,
//! before routing. Where `faq.toml` turns the shop's bot on (`[[shop]] bot`: always, in its own
//! hours, while routing's group for the shop is closed, or while the expected wait for an agent
//! is long — the last two read from the routing engine's hours, queue and free room) and no
//! agent has the conversation, the knowledge base answers through the reply door as `Author::Bot` — the same
//! compliance, masking and outbox as an agent's reply — or hands over to routing:
//!
//! - the buyer asks for a person (`handover_words`: 人工, 真人),
//! - no entry reaches the shop's threshold,
//! - the message matches a complaint entry,
//! - the bot has already answered twice in a row and the buyer writes again (taken as: the
//!   answers did not help).
//!
//! A first message it cannot place ("在吗") gets the welcome with numbered card questions
//! (`[knowledge] welcome`, `cards`) instead, when configured; a number then asks that card.
//! A message of product or order cards alone asks nothing: the bot keeps the conversation
//! (welcoming a buyer it has not greeted). The newest product card of the conversation is the
//! product its answers are about: per-product entries (`[entry.when] products`) and `{product}`.
//! An answer is one reply of the entry's text followed by its attachments (`[[entry.attach]]`:
//! pictures, product cards, the order card), those naming a value the conversation lacks left
//! out.
//!
//! A buyer the bot had answered is told of the hand-over (`handover_notice`); the agent sees the
//! bot's answers in the conversation, authored `bot`. A blocked buyer's message never reaches
//! here (no session), and a restricted buyer gets the auto-reply instead.

use huiliu_domain::session::Direction;
use huiliu_knowledge::{Context, Decision, HandOver, Vars};
use huiliu_sdk::Content;

use super::{Author, Flow, ReplyOutcome, ReplyRequest};
use crate::services::knowledge::HandedOver;

/// Categories the bot never answers.
const HAND_OVER_CATEGORIES: &[&str] = &["complaint"];

impl Flow {
    /// The desk as a new conversation of the shop would meet it (routing's hours, queue and
    /// free room; see `huiliu_routing::outlook`), for the bot modes that depend on it. `None`
    /// without routing.toml. `off_hours` reads the configuration only; `long_wait` also takes
    /// a snapshot of the agents and queues (O(agents), and only for conversations no agent has
    /// in shops with that mode).
    async fn desk(
        &self,
        mode: huiliu_knowledge::BotMode,
        platform: &str,
        shop: &str,
        now: i64,
    ) -> Option<huiliu_knowledge::Desk> {
        let routing = self.routing.as_ref()?;
        let state = match mode {
            huiliu_knowledge::BotMode::LongWait => Some(routing.state().await),
            _ => None,
        };
        let learned = routing.handle_times();
        let outlook = routing
            .with_config(|cfg| huiliu_routing::outlook(cfg, state.as_ref(), &learned, platform, shop, now))
            .await?;
        tracing::debug!(shop, group = %outlook.group, open = outlook.open, wait_s = ?outlook.wait_s,
            handle_s = outlook.handle.seconds(), "the desk for the bot");
        Some(huiliu_knowledge::Desk { open: outlook.open, wait_s: outlook.wait_s })
    }

    /// The bot's turn for a session's newest buyer message: true when the bot answered (no
    /// agent is needed for it), false when routing should take it.
    pub(super) async fn bot_turn(&self, session_id: i64) -> bool {
        let Some(kb) = self.knowledge.get().and_then(|k| k.current()) else { return false };
        let now = huiliu_domain::now_millis();
        // Most messages belong to a conversation an agent already holds: answered from the
        // engine's memory, without reading the session from the store.
        if let Some(routing) = &self.routing
            && matches!(routing.session(session_id).await, Some(huiliu_routing::SessionView::Assigned { .. }))
        {
            return false;
        }
        let Ok(Some(session)) = self.store.session(session_id).await else { return false };
        let minute = huiliu_knowledge::beijing_minute(now);
        if session.agent.is_some() {
            return false;
        }
        let mode = kb.config().bot_mode(&session.shop);
        let desk = if mode.needs_desk() { self.desk(mode, &session.platform, &session.shop, now).await } else { None };
        if !kb.config().bot_active(&session.shop, minute, desk.as_ref()) {
            return false;
        }
        let Ok(messages) = self.store.session_messages(session_id).await else { return false };
        let Some(last) = messages.iter().rev().find(|m| m.direction == Direction::In) else { return false };
        let is_bot = |m: &&huiliu_domain::session::Message| m.author.as_deref() == Some(Author::Bot.as_stored());
        let notice = kb.config().knowledge.handover_notice.clone();
        // The bot speaks only in a conversation that is still its own: no agent reply, routing
        // notice or hand-over yet.
        let handed_over = messages
            .iter()
            .filter(|m| m.direction == Direction::Out)
            .any(|m| !is_bot(&m) || (!notice.is_empty() && m.text == notice));
        if handed_over {
            return false;
        }
        let bot_spoke = messages.iter().any(|m| is_bot(&m));
        let welcome = kb.config().welcome_text();
        // A product or order card alone asks nothing yet (the buyer came from a product page):
        // the bot keeps the conversation — it now knows the product — and welcomes a buyer it
        // has not greeted yet, when a welcome is configured.
        if crate::services::knowledge::only_cards(&last.content) {
            if !bot_spoke && let Some(welcome) = welcome {
                let request = ReplyRequest { session_id, author: Author::Bot, content: vec![Content::text(welcome)] };
                if let Err(e) = self.reply(request).await {
                    tracing::warn!(session = session_id, "the bot's welcome failed: {e}");
                }
            }
            if let Some(k) = self.knowledge.get() {
                k.record_kept(session_id, now).await;
            }
            tracing::info!(session = session_id, "the bot keeps the conversation: a card asks nothing yet");
            return true;
        }
        let bot_answered = messages.iter().any(|m| is_bot(&m) && welcome.as_deref() != Some(m.text.as_str()));
        let answers_in_a_row =
            messages.iter().rev().filter(|m| m.direction == Direction::Out).take_while(|m| is_bot(m)).count();
        // A number after the welcome picks a card question.
        let asked = kb.config().card(&last.text).filter(|_| bot_spoke).unwrap_or(&last.text).to_owned();
        let trades = self.store.customer_trades(session.customer_id, 20).await.unwrap_or_default();
        let product = crate::services::knowledge::conversation_product(&messages);
        let ctx = Context {
            platform: Some(&session.platform),
            shop: Some(&session.shop),
            product: product.map(|(id, _)| id),
            order_state: crate::services::knowledge::order_state(&trades),
            minute: Some(minute),
        };
        let reason = if kb.config().wants_human(&asked) {
            "asked_for_agent".to_owned()
        } else if answers_in_a_row >= 2 {
            "two_answers_did_not_help".to_owned()
        } else {
            match kb.decide(&asked, &ctx, HAND_OVER_CATEGORIES).0 {
                Decision::Answer(m) => {
                    let Some(entry) = kb.entry(m.entry) else { return false };
                    let customer = self.store.customer(session.customer_id).await.ok().flatten();
                    let nick = customer.and_then(|c| c.nick);
                    let order = trades.iter().find_map(|t| t.order_id.clone());
                    let shop = self.outbox.status.shop_name(&session.shop);
                    let vars = Vars {
                        buyer: nick.as_deref(),
                        order: order.as_deref(),
                        product: crate::services::knowledge::product_name(&kb, product),
                        shop: Some(&shop),
                    };
                    // The text, then the entry's pictures and cards: one reply, one pass through
                    // the door (compliance reads the text; each element goes out as a message).
                    let subject = huiliu_knowledge::Subject { product, order: order.as_deref() };
                    let content = crate::services::knowledge::answer_content(&kb, entry, &vars, &subject);
                    let request = ReplyRequest { session_id, author: Author::Bot, content };
                    match self.reply(request).await {
                        Ok(ReplyOutcome::Queued { .. }) => {
                            if let Some(k) = self.knowledge.get() {
                                k.record_answer(&entry.id, session_id, &session.platform, !bot_answered, now).await;
                            }
                            tracing::info!(session = session_id, entry = %entry.id, confidence = m.confidence, "the bot answered");
                            return true;
                        }
                        // Compliance stopped the answer: a person takes it.
                        Ok(ReplyOutcome::Blocked { .. }) => "answer_blocked".to_owned(),
                        Err(e) => {
                            tracing::warn!(session = session_id, "the bot's answer failed: {e}");
                            return false;
                        }
                    }
                }
                Decision::HandOver(HandOver::Category(c)) => format!("category_{c}"),
                Decision::HandOver(HandOver::LowConfidence) => "low_confidence".to_owned(),
            }
        };
        // A first message the bot cannot place ("在吗") gets the welcome and its card questions,
        // when configured, instead of an agent.
        if reason == "low_confidence"
            && !bot_spoke
            && let Some(welcome) = welcome
        {
            let request = ReplyRequest { session_id, author: Author::Bot, content: vec![Content::text(welcome)] };
            if matches!(self.reply(request).await, Ok(ReplyOutcome::Queued { .. })) {
                tracing::info!(session = session_id, "the bot welcomed the buyer with its card questions");
                return true;
            }
        }
        tracing::info!(session = session_id, reason = %reason, "the bot hands over to an agent");
        if let Some(k) = self.knowledge.get() {
            let unmatched = (reason == "low_confidence").then_some(last.text.as_str());
            let at = HandedOver { session_id, customer_id: session.customer_id, platform: &session.platform };
            k.record_handover(&reason, unmatched, &at, now).await;
        }
        if bot_spoke && !notice.is_empty() {
            let request = ReplyRequest { session_id, author: Author::Bot, content: vec![Content::text(notice)] };
            if let Err(e) = self.reply(request).await {
                tracing::warn!(session = session_id, "the bot's hand-over notice failed: {e}");
            }
        }
        false
    }

    /// Settles the bot's conversations now (see `Knowledge::settle`): counted in the store,
    /// once, whichever node settles them.
    pub async fn settle_bot_conversations(&self) {
        let Some(k) = self.knowledge.get() else { return };
        match k.settle(huiliu_domain::now_millis()).await {
            Ok(settled) if !settled.resolved.is_empty() || !settled.unresolved.is_empty() => tracing::debug!(
                resolved = settled.resolved.len(),
                unresolved = settled.unresolved.len(),
                "the bot's conversations settled"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!("the bot's conversations were not settled: {e}"),
        }
    }

    /// How often the bot's conversations are settled: often enough for a short
    /// `resolved_after_minutes` to be seen on time, at most every 15 s.
    pub fn settle_interval(&self) -> std::time::Duration {
        let after = self.knowledge.get().map_or(600_000, |k| k.resolved_after_ms());
        std::time::Duration::from_millis((after / 4).clamp(250, 15_000) as u64)
    }
}
