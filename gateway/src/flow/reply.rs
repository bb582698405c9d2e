//! The one reply door: every message the gateway sends a buyer goes through [`Flow::reply`] —
//! agent replies, routing notices, a restricted buyer's auto-reply, the demo's scripted agents.
//! Here, once: compliance, masking for storage, the durable outbox, metrics and the
//! first-response clock.

use huiliu_privacy::{Action, Hit};
use huiliu_sdk::{Content, OutgoingMessage};
use huiliu_store::{NewReply, StoreError};

use super::Flow;
use crate::events::GatewayEvent;
use crate::metrics::{AuthorLabels, PlatformReasonLabels};

/// Who a reply is from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Author {
    /// An agent (by id): a person answering, so the reply stops the first-response clock.
    Agent(String),
    /// A routing notice (queue position, off hours, transfer).
    System,
    /// The auto-reply a restricted buyer gets.
    AutoReply,
    /// The knowledge-base bot (智能客服): an answer from faq.toml, or its hand-over notice.
    Bot,
}

impl Author {
    /// The author as stored on the message (the store's `SYSTEM_AUTHORS` for the gateway's own).
    pub fn as_stored(&self) -> &str {
        match self {
            Author::Agent(id) => id,
            Author::System => "system",
            Author::AutoReply => "auto-reply",
            Author::Bot => "bot",
        }
    }

    fn is_agent(&self) -> bool {
        matches!(self, Author::Agent(_))
    }
}

/// A message to send a buyer.
#[derive(Debug, Clone)]
pub struct ReplyRequest {
    pub session_id: i64,
    pub author: Author,
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

/// Errors of the reply door.
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

impl Flow {
    /// Sends a message to the session's buyer: checked, stored durably in the outbox, counted,
    /// and — when an agent wrote it — the session's first-response clock stopped.
    pub async fn reply(&self, request: ReplyRequest) -> Result<ReplyOutcome, ReplyError> {
        let now = huiliu_domain::now_millis();
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
            let label =
                PlatformReasonLabels { platform: session.platform.clone(), reason: hit.category.as_str().into() };
            self.metrics.compliance_hits.get_or_create(&label).inc();
        }
        // [2] mask for storage; the outbox payload keeps the author's words for the platform.
        let stored: Vec<Content> = request
            .content
            .iter()
            .map(|c| match c {
                Content::Text { text } => Content::text(mask.mask_text(text).0),
                other => other.clone(),
            })
            .collect();
        let client_msg_id = format!("hl-{}-{:016x}", session.id, rand::random::<u64>());
        // An agent speaks as their own platform account where one is configured; notices and
        // auto-replies as the connector's usual account.
        let staff_account = match &request.author {
            Author::Agent(id) => self.staff_account(id, &session.shop).await,
            Author::System | Author::AutoReply | Author::Bot => None,
        };
        let outgoing = OutgoingMessage {
            staff_account,
            client_msg_id: client_msg_id.clone(),
            shop: session.shop.clone(),
            buyer: huiliu_sdk::Buyer { open_id: customer.buyer_id.clone(), nick: customer.nick.clone() },
            conversation: session.conversation.clone(),
            reply_context: session.reply_context.clone(),
            content: request.content,
        };
        let text = huiliu_sdk::fallback_text(&stored);
        let author = request.author.as_stored().to_owned();
        if verdict.action == Action::Block {
            let reasons: Vec<String> = verdict.hits.iter().map(|h| format!("「{}」{}", h.term, h.reason)).collect();
            let reason = format!("未发送：{}", reasons.join("；"));
            let message_id = self
                .store
                .record_blocked_reply(session.id, Some(&author), &stored, &text, &mask.mask_text(&reason).0, now)
                .await?;
            let _ = self.events.send(GatewayEvent::MessageOut { session_id: session.id, message_id });
            return Ok(ReplyOutcome::Blocked { message_id, hits: verdict.hits });
        }
        let warnings = if verdict.action == Action::Warn { verdict.hits } else { Vec::new() };
        let reply = NewReply { session_id: session.id, author: Some(author), content: stored, text, outgoing };
        // [3] outbox
        let (message_id, outbox_id) = self.store.enqueue_reply(&reply, now).await?;
        self.outbox_wake.notify_one();
        let _ = self.events.send(GatewayEvent::MessageOut { session_id: session.id, message_id });
        // Metrics and the first-response clock.
        let by_agent = request.author.is_agent();
        let label = AuthorLabels {
            author: match request.author {
                Author::Agent(_) => "agent",
                Author::Bot => "bot",
                Author::System | Author::AutoReply => "system",
            }
            .into(),
        };
        self.metrics.replies.get_or_create(&label).inc();
        if by_agent {
            if session.first_response_at.is_none()
                && let Some(at) = session.assigned_at
            {
                self.metrics.first_response_seconds.observe((now - at).max(0) as f64 / 1000.0);
            }
            if let Some(routing) = &self.routing {
                let actions = routing.first_response(session.id, now).await;
                Box::pin(self.apply(actions)).await;
            }
        }
        Ok(ReplyOutcome::Queued { message_id, outbox_id, client_msg_id, warnings })
    }
}
