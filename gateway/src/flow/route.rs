//! Routing in the flow: the engine's actions applied in order — each recorded (store, then the
//! event hub) by the routing service, notices to the buyer sent through the reply door — and
//! the operations that change routing state (close, status, transfer, reload, deadlines).

use std::time::Duration;

use huiliu_domain::session::HandoverNote;
use huiliu_routing::{Action, AgentStatus, RoutingConfig, TransferTo};
use huiliu_sdk::Content;
use huiliu_store::StoreError;

use super::{Author, Flow, ReplyRequest};
use crate::events::GatewayEvent;
use crate::metrics::ResultLabels;

/// Why a transfer was refused.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("routing is not configured (no routing.toml)")]
    NoRouting,
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Flow {
    /// Applies the engine's actions in order.
    pub async fn apply(&self, actions: Vec<Action>) {
        let Some(routing) = &self.routing else { return };
        if actions.is_empty() {
            return;
        }
        let now = huiliu_domain::now_millis();
        for action in actions {
            let session_id = action.session() as i64;
            if let Err(e) = routing.record(&action, now).await {
                tracing::error!(session = session_id, "routing action not recorded: {e}");
                continue;
            }
            if let Action::NotifyBuyer { text, .. } = &action {
                let request =
                    ReplyRequest { session_id, author: Author::System, content: vec![Content::text(text.clone())] };
                if let Err(e) = Box::pin(self.reply(request)).await {
                    tracing::warn!(session = session_id, "routing notice not sent: {e}");
                }
            }
        }
        routing.wake.notify_one();
    }

    /// Closes a session (by an agent, or idle) and frees its agent's capacity.
    pub async fn close(&self, session_id: i64, reason: &str) -> Result<(), StoreError> {
        let now = huiliu_domain::now_millis();
        self.store.close(session_id, reason, now).await?;
        self.closed(session_id, reason).await;
        Ok(())
    }

    /// What follows a close the store already recorded (the idle sweep closes in bulk).
    pub async fn closed(&self, session_id: i64, reason: &str) {
        if let Some(routing) = &self.routing {
            let actions = routing.close(session_id, huiliu_domain::now_millis()).await;
            self.apply(actions).await;
        }
        self.metrics.closed.get_or_create(&ResultLabels { result: reason.to_owned() }).inc();
        self.events.send(GatewayEvent::Closed { session_id, reason: reason.to_owned() });
    }

    /// An agent's status changes.
    pub async fn set_status(&self, agent: &str, status: AgentStatus) -> Result<(), String> {
        let routing = self.routing.as_ref().ok_or("routing is not configured (no routing.toml)")?;
        let actions = routing.set_status(agent, status, huiliu_domain::now_millis()).await?;
        self.apply(actions).await;
        Ok(())
    }

    /// Transfers a session to an agent or a group with a handover note: the engine decides, the
    /// transfer is recorded, then the moves are applied (and announced).
    pub async fn transfer(
        &self,
        session_id: i64,
        from_agent: Option<&str>,
        to: TransferTo,
        note: HandoverNote,
    ) -> Result<(), TransferError> {
        let routing = self.routing.as_ref().ok_or(TransferError::NoRouting)?;
        let now = huiliu_domain::now_millis();
        let before = self.store.session(session_id).await?.and_then(|s| s.agent);
        let actions =
            routing.transfer(session_id, to.clone(), note.clone(), now).await.map_err(TransferError::Refused)?;
        let (to_agent, to_group) = match &to {
            TransferTo::Agent(a) => (Some(a.as_str()), None),
            TransferTo::Group(g) => (None, Some(g.as_str())),
        };
        self.store.record_transfer(session_id, from_agent, to_agent, to_group, &note, now).await?;
        self.apply(actions).await;
        if let Some(before) = before {
            self.platform_handover(session_id, &before).await;
        }
        Ok(())
    }

    /// The platform-side half of a transfer: when the agent who had the session and the one
    /// who has it now both have a staff account on its shop, and the shop's connector can
    /// transfer, the buyer is handed over on the platform too (in the background; the outcome
    /// is logged and counted in `huiliu_platform_transfers_total`).
    async fn platform_handover(&self, session_id: i64, before: &str) {
        let Ok(Some(session)) = self.store.session(session_id).await else { return };
        let Some(now_agent) = session.agent.clone().filter(|a| a != before) else { return };
        let (Some(from_account), Some(to_account)) =
            (self.staff_account(before, &session.shop).await, self.staff_account(&now_agent, &session.shop).await)
        else {
            tracing::debug!(session = session_id, "no platform transfer: both agents need a staff account on the shop");
            return;
        };
        let Ok(Some(customer)) = self.store.customer(session.customer_id).await else { return };
        let request = huiliu_sdk::TransferRequest {
            shop: session.shop.clone(),
            buyer: huiliu_sdk::Buyer { open_id: customer.buyer_id, nick: customer.nick },
            from_account,
            to_account,
            reply_context: session.reply_context.clone(),
        };
        let outbox = self.outbox.clone();
        tokio::spawn(async move {
            crate::outbox::transfer::hand_over(&outbox, &session.platform, session_id, request).await;
        });
    }

    /// Swaps in a new routing configuration; `Err` keeps the running one.
    pub async fn reload_routing(&self, config: RoutingConfig) -> Result<(), Vec<String>> {
        let Some(routing) = &self.routing else { return Ok(()) };
        let actions = routing.reload(config, huiliu_domain::now_millis()).await?;
        self.apply(actions).await;
        Ok(())
    }

    /// Calls the engine at each of its deadlines (overflow waits, first-response limits,
    /// opening hours, sticky waits) for the life of the process.
    pub async fn run_deadlines(self: std::sync::Arc<Self>) {
        let Some(routing) = self.routing.clone() else { return };
        loop {
            let sleep = match routing.next_deadline().await {
                Some(at) => Duration::from_millis((at - huiliu_domain::now_millis()).clamp(0, 60_000) as u64),
                None => Duration::from_secs(60),
            };
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {
                    let actions = routing.tick(huiliu_domain::now_millis()).await;
                    self.apply(actions).await;
                }
                _ = routing.wake.notified() => {}
            }
        }
    }
}
