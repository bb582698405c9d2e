//! The desk: what the workbench reads and changes of sessions and customers, each call checked
//! against what the caller may see ([`Principal::may_see`]: an agent their own sessions, a lead
//! also their groups', an admin everything). The API goes through here, never to the store.

pub use huiliu_store::{BuyerRef, ErasureReport};
use std::collections::BTreeMap;
use std::sync::Arc;

use huiliu_domain::Principal;
use huiliu_domain::session::{Customer, Message, Session, SessionFilter, SessionState, TradeRecord, Transfer};
use huiliu_store::Store;
use serde::Serialize;
use tokio::sync::Notify;
use utoipa::ToSchema;

use super::ServiceError;
use super::quick::{QuickReply, Rendered};

/// A session as the list shows it: the session's own fields, plus the customer, the last
/// message and how long the buyer has waited.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionRow {
    #[serde(flatten)]
    pub session: Session,
    pub customer: Option<CustomerBrief>,
    pub last_message: Option<LastMessage>,
    /// Since the oldest unanswered buyer message (approximated by the last one), for open
    /// sessions with unread messages.
    pub waiting_ms: Option<i64>,
}

/// The customer fields of a list row.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerBrief {
    pub id: i64,
    pub nick: Option<String>,
    pub vip_level: i64,
    pub fans_level: i64,
    pub tags: Vec<String>,
}

/// The last message of a list row.
#[derive(Debug, Serialize, ToSchema)]
pub struct LastMessage {
    pub id: i64,
    pub direction: huiliu_domain::session::Direction,
    pub text: String,
    pub at: i64,
}

/// One session with everything the chat pane and the customer panel show.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionDetail {
    pub session: Session,
    pub customer: Option<Customer>,
    pub messages: Vec<Message>,
    pub trades: Vec<TradeRecord>,
    pub transfers: Vec<Transfer>,
    /// The recorded routing decisions, oldest first (rule, group, candidates with why each
    /// was or was not eligible, chosen agent and why).
    #[schema(value_type = Vec<Object>)]
    pub decisions: Vec<serde_json::Value>,
}

/// Why a session is where it is.
#[derive(Debug, Serialize, ToSchema)]
pub struct Explanation {
    pub session_id: i64,
    pub state: SessionState,
    pub agent: Option<String>,
    pub group: Option<String>,
    #[schema(value_type = Vec<Object>)]
    pub decisions: Vec<serde_json::Value>,
    pub transfers: Vec<Transfer>,
}

/// A page of messages; `next_before` fetches the page before it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessagePage {
    pub messages: Vec<Message>,
    pub next_before: Option<i64>,
}

/// One audit entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub detail: String,
}

/// Sessions and customers for the workbench.
#[derive(Debug)]
pub struct Desk {
    store: Store,
    /// Wakes the outbox worker after a manual retry.
    outbox_wake: Arc<Notify>,
    /// Keeps originals of masked messages, when configured.
    sealer: Option<huiliu_privacy::seal::Sealer>,
    /// Replaced when `quick_replies.toml` is reloaded (shared with the reloader).
    quick_replies: Arc<std::sync::RwLock<Vec<QuickReply>>>,
    /// What is running (shop display names, which change when shops.toml is reloaded).
    status: Arc<super::status::Status>,
    /// The knowledge base, for agent assist.
    knowledge: Arc<super::knowledge::Knowledge>,
}

impl Desk {
    pub fn new(
        store: Store,
        outbox_wake: Arc<Notify>,
        sealer: Option<huiliu_privacy::seal::Sealer>,
        quick_replies: Arc<std::sync::RwLock<Vec<QuickReply>>>,
        status: Arc<super::status::Status>,
    ) -> Desk {
        let knowledge = Arc::new(super::knowledge::Knowledge::new(None, store.clone()));
        Desk { store, outbox_wake, sealer, quick_replies, status, knowledge }
    }

    /// The desk with the running knowledge base (agent assist); without one it suggests nothing.
    pub fn with_knowledge(mut self, knowledge: Arc<super::knowledge::Knowledge>) -> Desk {
        self.knowledge = knowledge;
        self
    }

    /// The bot's figures, the store's totals (a lead's view).
    pub async fn knowledge_figures(&self) -> Result<super::knowledge::KnowledgeFigures, ServiceError> {
        Ok(self.knowledge.figures().await?)
    }

    /// Sets the bot's counters in `/metrics` to the store's totals (before a scrape).
    pub async fn publish_bot_metrics(&self, metrics: &crate::metrics::Metrics) {
        if let Err(e) = self.knowledge.publish(metrics).await {
            tracing::warn!("the bot's figures were not read for /metrics: {e}");
        }
    }

    /// Agent assist: the best three knowledge-base answers for the session's last buyer
    /// message (masked text), filled in with the buyer's nick, latest order and the shop.
    pub async fn suggestions(&self, me: &Principal, id: i64) -> Result<super::knowledge::Suggestions, ServiceError> {
        let s = self.session(me, id).await?;
        let messages = self.store.session_messages(id).await?;
        let last = messages.iter().rev().find(|m| m.direction == huiliu_domain::session::Direction::In);
        let customer = self.store.customer(s.customer_id).await?;
        let trades = self.store.customer_trades(s.customer_id, 20).await?;
        let order = trades.iter().find_map(|t| t.order_id.clone());
        let shop = self.status.shop_name(&s.shop);
        let nick = customer.and_then(|c| c.nick);
        let product = super::knowledge::conversation_product(&messages);
        let kb = self.knowledge.current();
        let vars = huiliu_knowledge::Vars {
            buyer: nick.as_deref(),
            order: order.as_deref(),
            product: kb.as_deref().and_then(|kb| super::knowledge::product_name(kb, product)),
            shop: Some(shop.as_str()),
        };
        let asked = super::knowledge::Asked {
            text: last.map(|m| m.text.as_str()).unwrap_or_default(),
            platform: &s.platform,
            shop: &s.shop,
            product: product.map(|(id, _)| id),
            order_state: super::knowledge::order_state(&trades),
            now: huiliu_domain::now_millis(),
            vars,
            subject: huiliu_knowledge::Subject { product, order: order.as_deref() },
        };
        let (suggestions, threshold) = if last.is_some() {
            self.knowledge.suggest(&asked, 3)
        } else {
            (Vec::new(), self.knowledge.suggest(&asked, 0).1)
        };
        Ok(super::knowledge::Suggestions { message: last.map(|m| m.text.clone()), suggestions, threshold })
    }

    /// The session `id`, if `me` may see it.
    pub async fn session(&self, me: &Principal, id: i64) -> Result<Session, ServiceError> {
        let s = self.store.session(id).await?.ok_or_else(|| ServiceError::NotFound(format!("session {id}")))?;
        if me.may_see(&s) {
            Ok(s)
        } else {
            Err(ServiceError::forbidden("not_your_session", format!("session {id} is not yours or your groups'")))
        }
    }

    /// Refuses a customer `me` has no visible session with.
    async fn check_customer(&self, me: &Principal, id: i64) -> Result<(), ServiceError> {
        if me.scope().is_none() {
            return Ok(());
        }
        let filter = SessionFilter { customer: Some(id), scope: me.scope(), limit: Some(1), ..Default::default() };
        if self.store.search_sessions(&filter).await?.is_empty() {
            Err(ServiceError::forbidden(
                "not_your_customer",
                format!("customer {id} has no session of yours or your groups'"),
            ))
        } else {
            Ok(())
        }
    }

    /// The sessions `me` may see that match `filter` (its scope is `me`'s), newest first.
    pub async fn list(&self, me: &Principal, mut filter: SessionFilter) -> Result<Vec<SessionRow>, ServiceError> {
        filter.scope = me.scope();
        let now = huiliu_domain::now_millis();
        let mut out = Vec::new();
        for s in self.store.search_sessions(&filter).await? {
            let customer = self.store.customer(s.customer_id).await?.map(|c| CustomerBrief {
                id: c.id,
                nick: c.nick,
                vip_level: c.vip_level,
                fans_level: c.fans_level,
                tags: c.tags,
            });
            let last = self.store.session_messages_page(s.id, None, 1).await?.pop().map(|m| LastMessage {
                id: m.id,
                direction: m.direction,
                text: m.text,
                at: m.created_at,
            });
            let waiting_ms = (s.state != SessionState::Closed && s.unread > 0)
                .then(|| now - s.last_inbound_at.unwrap_or(s.opened_at));
            out.push(SessionRow { session: s, customer, last_message: last, waiting_ms });
        }
        Ok(out)
    }

    /// One session with its messages, customer, orders, transfers and routing decisions.
    pub async fn detail(&self, me: &Principal, id: i64) -> Result<SessionDetail, ServiceError> {
        let session = self.session(me, id).await?;
        Ok(SessionDetail {
            customer: self.store.customer(session.customer_id).await?,
            messages: self.store.session_messages(id).await?,
            trades: self.store.customer_trades(session.customer_id, 20).await?,
            transfers: self.store.transfers(id).await?,
            decisions: self.store.decisions(id).await?,
            session,
        })
    }

    /// A page of a session's messages, oldest first.
    pub async fn messages(
        &self,
        me: &Principal,
        id: i64,
        before: Option<i64>,
        limit: i64,
    ) -> Result<MessagePage, ServiceError> {
        self.session(me, id).await?;
        let page = self.store.session_messages_page(id, before, limit).await?;
        let next_before = if page.len() as i64 == limit { page.first().map(|m| m.id) } else { None };
        Ok(MessagePage { messages: page, next_before })
    }

    /// A customer's messages across sessions, newest first.
    pub async fn history(
        &self,
        me: &Principal,
        customer: i64,
        before: Option<i64>,
        limit: i64,
    ) -> Result<MessagePage, ServiceError> {
        self.check_customer(me, customer).await?;
        let messages = self.store.customer_history(customer, before, limit).await?;
        let next_before = messages.last().map(|m| m.id);
        Ok(MessagePage { messages, next_before })
    }

    /// Why a session is where it is: the recorded decisions and transfers.
    pub async fn explain(&self, me: &Principal, id: i64) -> Result<Explanation, ServiceError> {
        let s = self.session(me, id).await?;
        Ok(Explanation {
            session_id: id,
            state: s.state,
            agent: s.agent,
            group: s.skill_group,
            decisions: self.store.decisions(id).await?,
            transfers: self.store.transfers(id).await?,
        })
    }

    /// Sets a customer's tags and notes (already checked for shape by the caller).
    pub async fn set_profile(
        &self,
        me: &Principal,
        customer: i64,
        tags: &[String],
        notes: &str,
    ) -> Result<(), ServiceError> {
        self.check_customer(me, customer).await?;
        self.store.customer(customer).await?.ok_or_else(|| ServiceError::NotFound(format!("customer {customer}")))?;
        self.store.set_customer_profile(customer, tags, notes).await?;
        Ok(())
    }

    /// Puts a failed reply back in the outbox.
    pub async fn retry_outbox(&self, me: &Principal, id: i64) -> Result<(), ServiceError> {
        let item =
            self.store.outbox_item(id).await?.ok_or_else(|| ServiceError::NotFound(format!("outbox item {id}")))?;
        self.session(me, item.session_id).await?;
        if self.store.outbox_manual_retry(id, huiliu_domain::now_millis()).await? {
            self.outbox_wake.notify_one();
            Ok(())
        } else {
            Err(ServiceError::conflict("not_failed", format!("outbox item {id} is not failed (or does not exist)")))
        }
    }

    /// The quick-reply templates as configured.
    pub fn quick_replies(&self) -> Vec<QuickReply> {
        self.quick_replies.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The quick replies filled in for one session (buyer nick, latest order, agent, shop).
    pub async fn quick_replies_for(&self, me: &Principal, id: i64) -> Result<Vec<Rendered>, ServiceError> {
        let s = self.session(me, id).await?;
        let customer = self.store.customer(s.customer_id).await?;
        let order = self.store.customer_trades(s.customer_id, 20).await?.into_iter().find_map(|t| t.order_id);
        let shop = self.status.shop_name(&s.shop);
        let mut values = BTreeMap::from([("agent", me.name.clone()), ("shop", shop)]);
        if let Some(nick) = customer.and_then(|c| c.nick) {
            values.insert("buyer", nick);
        }
        if let Some(order) = order {
            values.insert("order", order);
        }
        Ok(self.quick_replies().iter().map(|r| super::quick::render(r, &values)).collect())
    }

    /// Reveals the original of a masked message to a lead or admin, audited with the reason.
    pub async fn reveal(&self, me: &Principal, id: i64, reason: &str) -> Result<String, ServiceError> {
        let message = self.store.message(id).await?.ok_or_else(|| ServiceError::NotFound(format!("message {id}")))?;
        self.session(me, message.session_id).await?;
        let Some(sealer) = &self.sealer else {
            return Err(ServiceError::Unavailable {
                code: "not_kept",
                message: "originals are not kept (privacy.seal_key is not set)".into(),
            });
        };
        let sealed = self.store.message_sealed(id).await?.ok_or_else(|| ServiceError::Unavailable {
            code: "not_kept",
            message: format!("message {id} has no kept original (nothing was masked)"),
        })?;
        let original = sealer.open(&sealed).map_err(|e| {
            tracing::error!(message = id, "a kept original does not open: {e}");
            ServiceError::conflict("cannot_open", "the kept original cannot be opened with the configured key")
        })?;
        let detail = serde_json::json!({"reason": reason}).to_string();
        self.store
            .audit(&me.id, "message.reveal", &format!("message:{id}"), &detail, huiliu_domain::now_millis())
            .await?;
        tracing::info!(message = id, actor = %me.id, "masked message revealed (audited)");
        Ok(original)
    }

    /// The audit trail of one subject (`message:12`, `blacklist:3`).
    pub async fn audit_trail(&self, subject: &str) -> Result<Vec<AuditEntry>, ServiceError> {
        let rows = self.store.audit_trail(subject).await?;
        Ok(rows.into_iter().map(|(at, actor, action, detail)| AuditEntry { at, actor, action, detail }).collect())
    }

    /// Replies waiting, sending, sent and failed; dead letters per platform.
    pub async fn counts(&self) -> Result<(BTreeMap<String, i64>, BTreeMap<String, i64>), ServiceError> {
        let outbox = self.store.outbox_counts().await?.into_iter().collect();
        let dead = self.store.dead_letter_counts().await?.into_iter().collect();
        Ok((outbox, dead))
    }

    /// Whether the store answers.
    pub async fn store_ok(&self) -> bool {
        self.store.ping().await
    }
}

/// A person's rights (个人信息保护法): export and erase everything stored about one buyer.
impl Desk {
    /// Open sessions of `buyer` (to be closed through the flow before an erasure, so routing
    /// frees the agent's seat).
    pub async fn open_sessions_of(&self, buyer: &BuyerRef) -> Result<Vec<i64>, ServiceError> {
        Ok(self.store.open_sessions_of(buyer).await?)
    }

    /// Everything stored about `buyer`, audited (`by`, `reason`).
    pub async fn export_buyer(
        &self,
        buyer: &BuyerRef,
        by: &str,
        reason: &str,
    ) -> Result<serde_json::Value, ServiceError> {
        let doc = self.store.export_buyer(buyer).await?.ok_or_else(|| ServiceError::NotFound(buyer.subject()))?;
        self.store.audit(by, "export", &buyer.subject(), reason, huiliu_domain::now_millis()).await?;
        Ok(doc)
    }

    /// Erases everything stored about `buyer` (audited in the same transaction).
    pub async fn erase_buyer(&self, buyer: &BuyerRef, by: &str, reason: &str) -> Result<ErasureReport, ServiceError> {
        self.store
            .erase_buyer(buyer, by, reason, huiliu_domain::now_millis())
            .await?
            .ok_or_else(|| ServiceError::NotFound(buyer.subject()))
    }
}
