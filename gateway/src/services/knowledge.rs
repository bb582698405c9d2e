//! The knowledge base as the daemon runs it (智能客服): the compiled `faq.toml`, swapped whole
//! on reload, and agent assist — the best answers for a session's last buyer message.
//!
//! Matching itself is `huiliu-knowledge` (pure); this module only decides what it is asked
//! about: the masked text of the buyer's message, the session's platform and shop, the state of
//! the buyer's latest order, Beijing time.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;

use huiliu_domain::session::{Direction, Message, TradeRecord};
use huiliu_knowledge::config::DEFAULT_RESOLVED_AFTER_MINUTES;
use huiliu_knowledge::config::Entry;
use huiliu_knowledge::{Attachment, Context, FaqConfig, KnowledgeBase, Subject, Vars};
use huiliu_sdk::Content;
use huiliu_store::{BotCountKind, Store, StoreError};

/// The running knowledge base, if `faq.toml` exists, and the bot's figures, kept in the store
/// (`huiliu_store`'s `bot_*` tables): they survive a restart, and every node of a cluster counts
/// into and reads the same totals.
pub struct Knowledge {
    base: RwLock<Option<Arc<KnowledgeBase>>>,
    /// The configuration it was built from, so an unchanged file is not rebuilt.
    config: RwLock<Option<FaqConfig>>,
    store: Store,
}

/// How many unanswered questions the figures list.
const UNANSWERED_LISTED: i64 = 100;

/// The bot's figures (智能客服训练的核心指标), totals kept in the store since its first count:
/// how many buyer messages it considered, answered (per entry: the hit rate) and handed over
/// (by reason), the conversations it resolved without a human, and the questions it could not
/// match, for the trainer to add as entries or variants.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct KnowledgeFigures {
    /// Entries in the running knowledge base (0 without faq.toml).
    pub entries: usize,
    /// When the first of these figures was counted (Unix ms); absent before any.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub since: Option<i64>,
    /// Buyer messages the bot considered (its shops, conversations no agent had).
    pub considered: u64,
    /// Of those, answered by the bot.
    pub answered: u64,
    /// answered / considered (0 when none).
    pub recognition_rate: f64,
    /// Answers per entry, most used first.
    pub by_entry: Vec<EntryHits>,
    /// Hand-overs by reason.
    pub handovers: BTreeMap<String, u64>,
    /// The latest questions no entry matched (masked), with how often each came, newest first.
    pub unanswered: Vec<Unanswered>,
    /// Conversations the bot answered (at least once).
    pub bot_conversations: u64,
    /// Of those, resolved without a human (解决率): the buyer wrote nothing further within
    /// `resolved_after_minutes` of the bot's last answer.
    pub resolved: u64,
    /// Of those, not resolved by the bot: handed to an agent, or the buyer wrote again and the
    /// bot did not answer.
    pub unresolved: u64,
    /// resolved / (resolved + unresolved), 0 when none is settled yet.
    pub resolution_rate: f64,
    /// The bot's conversations still open (within the silence that would resolve them).
    pub awaiting: u64,
    /// faq.toml's `[knowledge] resolved_after_minutes`.
    pub resolved_after_minutes: f64,
}

/// One entry's answers.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct EntryHits {
    pub entry: String,
    pub answered: u64,
}

/// A question the bot could not match.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Unanswered {
    pub text: String,
    pub times: u64,
    /// When it last came (Unix ms).
    pub last_at: i64,
}

impl std::fmt::Debug for Knowledge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let entries = self.current().map(|k| k.entries().len());
        f.debug_struct("Knowledge").field("entries", &entries).finish()
    }
}

/// One suggested answer for the agent (or what the bot would say).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Suggestion {
    /// The entry's id in faq.toml.
    pub entry: String,
    /// The standard question or variant that matched best.
    pub question: String,
    /// The answer with the session's values filled in, ready to edit and send.
    pub answer: String,
    /// The entry's rich elements (faq.toml `[[entry.attach]]`: a picture, a product card, the
    /// order card), as a reply's `content` elements to send after the text; one naming a value
    /// this conversation lacks (no product card, no order) is left out.
    #[schema(value_type = Vec<Object>)]
    pub attach: Vec<Content>,
    /// 0–1; the bot answers on its own at or above the shop's threshold. For the best
    /// suggestion it is the similarity less a share of the runner-up's, plus a share of its lead
    /// in meaning over the others (an answer is only as sure as it is distinct), so it can read
    /// lower than the second one's.
    pub confidence: f64,
    /// 0–1: how close the buyer's words are to the entry's question.
    pub similarity: f64,
    /// −1–1: how close in meaning (word vectors) the message is to the entry's nearest question;
    /// 0 when faq.toml's `semantic_weight` is 0. The suggestions are ordered by similarity +
    /// `semantic_weight` × this.
    pub semantic: f64,
    /// The buyer's words found in the question.
    pub matched: Vec<String>,
    /// The entry's category (`complaint` is never answered by the bot).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
}

/// The suggestions for one session.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Suggestions {
    /// The buyer message the suggestions answer (masked), absent when the buyer has not
    /// written yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Best first, at most three.
    pub suggestions: Vec<Suggestion>,
    /// The shop's confidence threshold.
    pub threshold: f64,
}

/// The session a hand-over happened in.
#[derive(Debug, Clone, Copy)]
pub struct HandedOver<'a> {
    pub session_id: i64,
    pub customer_id: i64,
    pub platform: &'a str,
}

/// What the knowledge base is asked about a conversation.
#[derive(Debug, Clone, Default)]
pub struct Asked<'a> {
    pub text: &'a str,
    pub platform: &'a str,
    pub shop: &'a str,
    /// The product the conversation is about (its newest product card).
    pub product: Option<&'a str>,
    pub order_state: Option<&'a str>,
    pub now: i64,
    pub vars: Vars<'a>,
    /// What the entries' attachments may name: the conversation's product card, its order.
    pub subject: Subject<'a>,
}

impl Knowledge {
    /// A knowledge base compiled from `faq.toml`, or none; its figures kept in `store`.
    pub fn new(cfg: Option<&FaqConfig>, store: Store) -> Knowledge {
        Knowledge {
            base: RwLock::new(cfg.map(|c| Arc::new(KnowledgeBase::build(c)))),
            config: RwLock::new(cfg.cloned()),
            store,
        }
    }

    /// Counts a bot answer in a session (`first`: the bot's first answer there, which opens a
    /// bot conversation). A failure to count is logged; the answer stands.
    pub async fn record_answer(&self, entry: &str, session: i64, platform: &str, first: bool, now: i64) {
        if let Err(e) = self.store.bot_answered(session, platform, entry, first, now).await {
            tracing::warn!(session, "the bot's answer was not counted: {e}");
        }
    }

    /// The bot kept a conversation without answering (a buyer's card asked nothing): the
    /// buyer's message is not left waiting.
    pub async fn record_kept(&self, session: i64, now: i64) {
        if let Err(e) = self.store.bot_kept(session, now).await {
            tracing::warn!(session, "the bot's keeping of a conversation was not recorded: {e}");
        }
    }

    /// Counts a hand-over; a low-confidence one keeps the (masked) question for the trainer.
    /// A conversation the bot had answered is settled as not resolved.
    pub async fn record_handover(&self, reason: &str, unmatched: Option<&str>, session: &HandedOver<'_>, now: i64) {
        let HandedOver { session_id, customer_id, platform } = *session;
        if let Err(e) = self.store.bot_handed_over(session_id, customer_id, platform, reason, unmatched, now).await {
            tracing::warn!(session = session_id, "the bot's hand-over was not counted: {e}");
        }
    }

    /// How long a buyer's silence after the bot's answer resolves a conversation.
    pub fn resolved_after_ms(&self) -> i64 {
        let minutes =
            self.current().map_or(DEFAULT_RESOLVED_AFTER_MINUTES, |k| k.config().knowledge.resolved_after_minutes);
        (minutes * 60_000.0) as i64
    }

    /// Settles the bot's conversations at `now`: resolved when the buyer has been silent for
    /// `resolved_after_minutes` since the bot's last answer; not resolved when the buyer's last
    /// message got no answer from the bot within that time (an agent or nobody took it). Each
    /// conversation is counted once however many nodes settle (`Store::bot_settle`).
    pub async fn settle(&self, now: i64) -> Result<huiliu_store::Settled, StoreError> {
        self.store.bot_settle(now - self.resolved_after_ms(), now).await
    }

    /// The figures so far (the store's totals).
    pub async fn figures(&self) -> Result<KnowledgeFigures, StoreError> {
        let entries = self.current().map(|k| k.entries().len()).unwrap_or(0);
        let stored = self.store.bot_figures(UNANSWERED_LISTED).await?;
        let sum = |kind: BotCountKind| stored.counts.iter().filter(|c| c.kind == kind).map(|c| c.n.max(0) as u64).sum();
        let per_name = |kind: BotCountKind| {
            let mut per: BTreeMap<String, u64> = BTreeMap::new();
            for c in stored.counts.iter().filter(|c| c.kind == kind) {
                *per.entry(c.name.clone()).or_default() += c.n.max(0) as u64;
            }
            per
        };
        let answered: u64 = sum(BotCountKind::Answered);
        let handed_over: u64 = sum(BotCountKind::Handover);
        let considered = answered + handed_over;
        let mut by_entry: Vec<EntryHits> = per_name(BotCountKind::Answered)
            .into_iter()
            .map(|(entry, answered)| EntryHits { entry, answered })
            .collect();
        by_entry.sort_by(|a, b| b.answered.cmp(&a.answered).then(a.entry.cmp(&b.entry)));
        let (resolved, unresolved) = (sum(BotCountKind::Resolved), sum(BotCountKind::Unresolved));
        Ok(KnowledgeFigures {
            entries,
            since: stored.counts.iter().map(|c| c.since).min(),
            considered,
            answered,
            recognition_rate: if considered > 0 { answered as f64 / considered as f64 } else { 0.0 },
            by_entry,
            handovers: per_name(BotCountKind::Handover),
            unanswered: stored
                .unanswered
                .into_iter()
                .map(|q| Unanswered { text: q.text, times: q.times.max(0) as u64, last_at: q.last_at })
                .collect(),
            bot_conversations: sum(BotCountKind::Conversation),
            resolved,
            unresolved,
            resolution_rate: if resolved + unresolved > 0 {
                resolved as f64 / (resolved + unresolved) as f64
            } else {
                0.0
            },
            awaiting: stored.awaiting.max(0) as u64,
            resolved_after_minutes: resolved_after_minutes(&self.current()),
        })
    }

    /// Sets the bot's counters in `/metrics` to the store's totals (the same on every node: in a
    /// cluster take one node's value, or `max`, never the sum).
    pub async fn publish(&self, metrics: &crate::metrics::Metrics) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering::Relaxed;
        let stored = self.store.bot_figures(0).await?;
        let mut answered: BTreeMap<&str, u64> = BTreeMap::new();
        for c in &stored.counts {
            let n = c.n.max(0) as u64;
            let platform = crate::metrics::PlatformLabels { platform: c.platform.clone() };
            match c.kind {
                BotCountKind::Answered => *answered.entry(c.platform.as_str()).or_default() += n,
                BotCountKind::Handover => {
                    let labels =
                        crate::metrics::PlatformReasonLabels { platform: c.platform.clone(), reason: c.name.clone() };
                    metrics.bot_handovers.get_or_create(&labels).inner().store(n, Relaxed);
                }
                BotCountKind::Conversation => {
                    metrics.bot_conversations.get_or_create(&platform).inner().store(n, Relaxed)
                }
                BotCountKind::Resolved => metrics.bot_resolved.get_or_create(&platform).inner().store(n, Relaxed),
                BotCountKind::Unresolved => metrics.bot_unresolved.get_or_create(&platform).inner().store(n, Relaxed),
            }
        }
        for (platform, n) in answered {
            let labels = crate::metrics::PlatformLabels { platform: platform.to_owned() };
            metrics.bot_answers.get_or_create(&labels).inner().store(n, Relaxed);
        }
        Ok(())
    }

    /// Replaces the running knowledge base (a reload); questions in flight finish on the old one.
    /// Returns false (and builds nothing) when the configuration is unchanged.
    pub fn swap(&self, cfg: Option<&FaqConfig>) -> bool {
        let mut config = self.config.write().unwrap_or_else(|p| p.into_inner());
        if config.as_ref() == cfg {
            return false;
        }
        let next = cfg.map(|c| Arc::new(KnowledgeBase::build(c)));
        *self.base.write().unwrap_or_else(|p| p.into_inner()) = next;
        *config = cfg.cloned();
        true
    }

    pub fn current(&self) -> Option<Arc<KnowledgeBase>> {
        self.base.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The best `top` answers for a message, filled in; empty without a knowledge base.
    pub fn suggest(&self, asked: &Asked<'_>, top: usize) -> (Vec<Suggestion>, f64) {
        let Some(kb) = self.current() else { return (Vec::new(), huiliu_knowledge::config::DEFAULT_THRESHOLD) };
        let ctx = Context {
            platform: Some(asked.platform),
            shop: Some(asked.shop),
            product: asked.product,
            order_state: asked.order_state,
            minute: Some(huiliu_knowledge::beijing_minute(asked.now)),
        };
        let found = kb.lookup(asked.text, &ctx, top);
        let suggestions = found
            .matches
            .into_iter()
            .filter_map(|m| {
                let entry = kb.entry(m.entry)?;
                Some(Suggestion {
                    entry: entry.id.clone(),
                    question: m.question,
                    answer: huiliu_knowledge::render(&entry.answer, &asked.vars),
                    attach: attachments(&kb, entry, &asked.subject),
                    confidence: (m.confidence * 1000.0).round() / 1000.0,
                    similarity: (m.similarity * 1000.0).round() / 1000.0,
                    semantic: (m.semantic * 1000.0).round() / 1000.0,
                    matched: m.matched,
                    category: entry.category.clone(),
                })
            })
            .collect();
        (suggestions, kb.threshold(Some(asked.shop)))
    }
}

fn resolved_after_minutes(kb: &Option<Arc<KnowledgeBase>>) -> f64 {
    kb.as_ref().map_or(DEFAULT_RESOLVED_AFTER_MINUTES, |k| k.config().knowledge.resolved_after_minutes)
}

/// The product a conversation is about: the newest product card in it (the buyer's, or one an
/// agent or the bot sent), as (product id, the card's title when the platform sent one).
/// Order events carry no product ids, so cards are the only place the gateway learns it.
pub fn conversation_product(messages: &[Message]) -> Option<(&str, Option<&str>)> {
    messages.iter().rev().filter(|m| m.direction != Direction::System).find_map(|m| {
        m.content.iter().rev().find_map(|c| match c {
            Content::Product { product_id, title, .. } if !product_id.trim().is_empty() => {
                Some((product_id.as_str(), title.as_deref().filter(|t| !t.trim().is_empty())))
            }
            _ => None,
        })
    })
}

/// An entry's attachments in a conversation as content elements, in order; one naming a value
/// the conversation lacks is left out.
pub fn attachments(kb: &KnowledgeBase, entry: &Entry, subject: &Subject<'_>) -> Vec<Content> {
    kb.config().attachments(entry, subject).into_iter().map(content_of).collect()
}

/// An entry's answer as one reply's content: the text, its placeholders filled, then its
/// attachments ([`attachments`]).
pub fn answer_content(kb: &KnowledgeBase, entry: &Entry, vars: &Vars<'_>, subject: &Subject<'_>) -> Vec<Content> {
    let mut content = vec![Content::text(huiliu_knowledge::render(&entry.answer, vars))];
    content.extend(attachments(kb, entry, subject));
    content
}

/// The SDK's element for an attachment, with the customary text fallback.
fn content_of(a: Attachment) -> Content {
    match a {
        Attachment::Image { url } => Content::image(url),
        Attachment::Product { id, title } => Content::product(id, title),
        Attachment::Order { id } => Content::order(id),
    }
}

/// What `{product}` says for a conversation's product: the card's title, else its name in
/// faq.toml's `[[product]]`, else nothing (the placeholder's default, 这款商品).
pub fn product_name<'a>(kb: &'a KnowledgeBase, product: Option<(&'a str, Option<&'a str>)>) -> Option<&'a str> {
    let (id, title) = product?;
    title.or_else(|| kb.config().product_name(id))
}

/// Whether a buyer message carries only product or order cards: it asks nothing yet (a buyer
/// who came from a product page, say), so the bot neither answers nor hands it over.
pub fn only_cards(content: &[Content]) -> bool {
    !content.is_empty() && content.iter().all(|c| matches!(c, Content::Product { .. } | Content::Order { .. }))
}

/// The state of the buyer's latest order, in faq.toml's words, from their trade events
/// (newest first).
pub fn order_state(trades: &[TradeRecord]) -> Option<&'static str> {
    trades.iter().find_map(|t| match (t.kind.as_str(), t.stage.as_str()) {
        ("order", "created") => Some("unpaid"),
        ("order", "paid") => Some("paid"),
        ("order", "shipped") => Some("shipped"),
        ("order", "received") => Some("delivered"),
        ("order", "closed") => Some("closed"),
        ("refund", "requested" | "agreed") => Some("refunding"),
        ("refund", "succeeded") => Some("refunded"),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trade(kind: &str, stage: &str) -> TradeRecord {
        TradeRecord {
            event_id: String::new(),
            kind: kind.into(),
            stage: stage.into(),
            order_id: None,
            refund_id: None,
            amount_fen: None,
            status: None,
            occurred_at: 0,
        }
    }

    #[test]
    fn the_latest_trade_that_says_something_gives_the_state() {
        assert_eq!(order_state(&[trade("refund", "closed"), trade("order", "shipped")]), Some("shipped"));
        assert_eq!(order_state(&[trade("refund", "agreed"), trade("order", "paid")]), Some("refunding"));
        assert_eq!(order_state(&[]), None);
    }

    fn message(direction: Direction, content: Vec<Content>) -> Message {
        Message {
            id: 0,
            session_id: 1,
            customer_id: 1,
            direction,
            platform_msg_id: None,
            client_msg_id: None,
            author: None,
            text: huiliu_sdk::fallback_text(&content),
            content,
            delivery: None,
            delivery_error: None,
            created_at: 0,
        }
    }

    #[test]
    fn the_conversations_product_is_its_newest_product_card() {
        let card = |id: &str, title: Option<&str>| Content::product(id, title.map(String::from));
        let messages = [
            message(Direction::In, vec![card("p1", Some("小汇电热水器"))]),
            message(Direction::In, vec![Content::text("这款呢"), card("p2", None)]),
            message(Direction::Out, vec![Content::text("亲，在的")]),
            message(Direction::In, vec![Content::text("功率多大")]),
        ];
        assert_eq!(conversation_product(&messages), Some(("p2", None)));
        assert_eq!(conversation_product(&messages[..1]), Some(("p1", Some("小汇电热水器"))));
        assert_eq!(conversation_product(&messages[2..]), None);
        let cfg = huiliu_knowledge::parse("[[product]]\nid = \"p2\"\nname = \"燃气热水器16升\"\n", "faq.toml").unwrap();
        let kb = KnowledgeBase::build(&cfg);
        assert_eq!(product_name(&kb, conversation_product(&messages)), Some("燃气热水器16升"));
        assert_eq!(
            product_name(&kb, conversation_product(&messages[..1])),
            Some("小汇电热水器"),
            "the card's title first"
        );
        assert_eq!(product_name(&kb, Some(("p9", None))), None);
        assert!(only_cards(&[card("p1", None), Content::order("o1")]));
        assert!(!only_cards(&[card("p1", None), Content::text("包邮吗")]) && !only_cards(&[]));
        assert!(!only_cards(&[Content::image("https://x/1.jpg")]), "a picture may show a problem: not a card");
    }

    /// A fresh SQLite store in a temp directory.
    async fn store() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        (Store::open(&url, huiliu_store::StoreOptions::default()).await.unwrap(), dir)
    }

    /// Stores a message of `buyer` at `at`: their session's id.
    async fn wrote(store: &Store, buyer: &str, at: i64) -> i64 {
        use huiliu_sdk::{Buyer, BuyerMessage, EventKind, InboundEvent};
        let event = InboundEvent {
            platform: "douyin".into(),
            shop: "dy-1".into(),
            event_id: format!("{buyer}-{at}"),
            buyer: Buyer { open_id: buyer.into(), nick: None },
            occurred_at: at,
            kind: EventKind::BuyerMessage(BuyerMessage {
                conversation: None,
                content: vec![Content::text("在吗")],
                vip: Default::default(),
                reply_context: Default::default(),
            }),
        };
        let item =
            huiliu_store::IntakeItem { event, text: "在吗".into(), sealed: None, screen: huiliu_store::Screen::Pass };
        let batch = huiliu_store::IntakeBatch {
            items: vec![item],
            dead_letters: Vec::new(),
            now: at,
            idle_close_ms: i64::MAX / 4,
        };
        match store.intake(batch).await.unwrap().remove(0) {
            huiliu_store::ItemOutcome::Message { session_id, .. } => session_id,
            other => panic!("{other:?}"),
        }
    }

    fn at(session_id: i64) -> HandedOver<'static> {
        HandedOver { session_id, customer_id: session_id, platform: "taobao" }
    }

    #[tokio::test]
    async fn figures_count_answers_handovers_and_keep_unanswered_questions() {
        let (store, _dir) = store().await;
        let k = Knowledge::new(None, store);
        k.record_answer("ship", 1, "taobao", true, 10).await;
        k.record_answer("ship", 2, "taobao", true, 11).await;
        k.record_handover("low_confidence", Some("衣服起球怎么办"), &at(3), 12).await;
        k.record_handover("low_confidence", Some("衣服起球怎么办"), &at(3), 13).await;
        k.record_handover("asked_for_agent", None, &at(4), 14).await;
        let f = k.figures().await.unwrap();
        assert_eq!((f.considered, f.answered, f.since), (5, 2, Some(10)));
        assert_eq!(f.by_entry, [EntryHits { entry: "ship".into(), answered: 2 }]);
        assert_eq!(f.handovers["low_confidence"], 2);
        assert_eq!(f.unanswered, [Unanswered { text: "衣服起球怎么办".into(), times: 2, last_at: 13 }]);
        // The metrics show the store's totals.
        let metrics = crate::metrics::Metrics::new();
        k.publish(&metrics).await.unwrap();
        let text = metrics.render();
        assert!(text.contains("huiliu_bot_handovers_total{platform=\"taobao\",reason=\"low_confidence\"} 2"), "{text}");
        assert!(text.contains("huiliu_bot_answers_total{platform=\"taobao\"} 2"), "{text}");
    }

    /// Whether the buyer wrote again after the bot's answer is read from the stored session.
    #[tokio::test]
    async fn a_bot_conversation_is_resolved_by_the_buyers_silence_and_not_by_a_hand_over() {
        let (store, _dir) = store().await;
        let cfg = huiliu_knowledge::parse("[knowledge]\nresolved_after_minutes = 10\n", "faq.toml").unwrap();
        let k = Knowledge::new(Some(&cfg), store.clone());
        const T: i64 = 1_700_000_000_000;
        const MIN: i64 = 60_000;
        // 1: answered, then silence. 2: answered, asked again, answered again, silence.
        // 3: answered, then 转人工. 4: answered, the buyer wrote, the bot said nothing more.
        let mut s = Vec::new();
        for buyer in ["b1", "b2", "b3", "b4"] {
            let id = wrote(&store, buyer, T).await;
            k.record_answer("ship", id, "douyin", true, T).await;
            s.push(id);
        }
        wrote(&store, "b2", T + 5 * MIN).await;
        k.record_answer("return", s[1], "douyin", false, T + 5 * MIN).await;
        wrote(&store, "b3", T + MIN).await;
        k.record_handover(
            "asked_for_agent",
            None,
            &HandedOver { session_id: s[2], customer_id: 3, platform: "douyin" },
            T + MIN,
        )
        .await;
        wrote(&store, "b4", T + 2 * MIN).await;
        let settled = |at: i64| {
            let k = &k;
            async move {
                let r = k.settle(at).await.unwrap();
                (r.resolved.len(), r.unresolved.len())
            }
        };
        assert_eq!(settled(T + 9 * MIN).await, (0, 0), "nobody silent for 10 minutes yet");
        assert_eq!(settled(T + 10 * MIN).await, (1, 0), "the first");
        assert_eq!(settled(T + 12 * MIN).await, (0, 1), "4 is settled unresolved, 2 still waits");
        assert_eq!(settled(T + 15 * MIN).await, (1, 0));
        // The first comes back after being resolved: not counted again.
        wrote(&store, "b1", T + 20 * MIN).await;
        k.record_answer("ship", s[0], "douyin", false, T + 20 * MIN).await;
        assert_eq!(settled(T + 40 * MIN).await, (0, 0));
        let f = k.figures().await.unwrap();
        assert_eq!((f.bot_conversations, f.resolved, f.unresolved, f.awaiting), (4, 2, 2, 0));
        assert_eq!((f.resolution_rate, f.resolved_after_minutes), (0.5, 10.0));
    }

    #[tokio::test]
    async fn suggestions_fill_the_answer_and_a_swap_takes_effect() {
        let cfg = huiliu_knowledge::parse(
            "[[entry]]\nid = \"ship\"\nquestion = \"什么时候发货\"\nanswer = \"{buyer}，{order}今天发\"\n",
            "faq.toml",
        )
        .unwrap();
        let (store, _dir) = store().await;
        let k = Knowledge::new(None, store);
        let vars = Vars { buyer: Some("王芳"), order: Some("4512339871"), ..Vars::default() };
        let asked = Asked { text: "什么时候发货呀", platform: "taobao", shop: "tb", vars, ..Asked::default() };
        assert!(k.suggest(&asked, 3).0.is_empty());
        k.swap(Some(&cfg));
        let (s, _) = k.suggest(&asked, 3);
        assert_eq!(s[0].entry, "ship");
        assert_eq!(s[0].answer, "王芳，4512339871今天发");
    }

    /// A suggestion carries its entry's pictures and cards as content elements, as the bot's
    /// answer does after its text; a `{product}` or `{order}` the conversation lacks is left out.
    #[tokio::test]
    async fn suggestions_and_answers_carry_the_entrys_attachments() {
        let cfg = huiliu_knowledge::parse(
            "[[product]]\nid = \"e60\"\nname = \"小汇电热水器E60\"\n\
             [[entry]]\nid = \"power\"\nquestion = \"功率多大\"\nanswer = \"{product}是3000W\"\n\
             [[entry.attach]]\nimage = \"https://img.example.com/e60.png\"\n\
             [[entry.attach]]\nproduct = \"{product}\"\n[[entry.attach]]\norder = \"{order}\"\n",
            "faq.toml",
        )
        .unwrap();
        let (store, _dir) = store().await;
        let k = Knowledge::new(Some(&cfg), store);
        let subject = Subject { product: Some(("e60", None)), order: None };
        let asked = Asked { text: "功率多大", platform: "douyin", shop: "dy", subject, ..Asked::default() };
        let (s, _) = k.suggest(&asked, 3);
        assert_eq!(
            s[0].attach,
            [
                Content::image("https://img.example.com/e60.png"),
                Content::product("e60", Some("小汇电热水器E60".into()))
            ],
            "no order yet: no order card"
        );
        let kb = k.current().unwrap();
        let entry = kb.entry(0).unwrap();
        let vars = Vars { product: Some("小汇电热水器E60"), ..Vars::default() };
        let ordered = Subject { order: Some("4512339871"), ..subject };
        let content = answer_content(&kb, entry, &vars, &ordered);
        assert_eq!(content.len(), 4, "{content:?}");
        assert_eq!(content[0], Content::text("小汇电热水器E60是3000W"));
        assert_eq!(content[3], Content::order("4512339871"));
        let nothing = answer_content(&kb, entry, &Vars::default(), &Subject::default());
        assert_eq!(nothing, [Content::text("这款商品是3000W"), Content::image("https://img.example.com/e60.png")]);
    }
}
