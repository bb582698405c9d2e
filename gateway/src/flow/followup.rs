//! Follow-ups on order events (自动跟单): `faq.toml`'s `[[followup]]` messages, sent by the bot
//! through the reply door when a buyer's order is shipped, delivered, refund-approved, or still
//! unpaid `after_minutes` after it was created. Never in the quiet hours, at most one per buyer
//! per `followup_min_interval_minutes`, and only to a buyer with an open conversation (a reply
//! needs one; the gateway does not start conversations).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use huiliu_knowledge::Vars;
use huiliu_sdk::Content;

use super::{Author, Flow, ReplyRequest};
use crate::events::GatewayEvent;

/// The follow-up event an order or refund stage stands for.
fn event_of(kind: &str, stage: &str) -> Option<&'static str> {
    match (kind, stage) {
        ("order", "created") => Some("unpaid"),
        ("order", "shipped") => Some("shipped"),
        ("order", "received") => Some("delivered"),
        ("refund", "agreed" | "succeeded") => Some("refund_approved"),
        _ => None,
    }
}

/// Watches the event hub for order events and sends the configured follow-ups; runs for the
/// daemon's life.
pub async fn run(flow: Arc<Flow>) {
    let mut events = flow.events.subscribe();
    let last_sent: Arc<Mutex<HashMap<i64, i64>>> = Arc::default();
    loop {
        let stamped = match events.recv().await {
            Ok(s) => s,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "follow-ups missed order events (the hub overflowed)");
                continue;
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        let GatewayEvent::Trade { customer_id, session_id: Some(session_id) } = stamped.event.clone() else {
            continue;
        };
        let Some(kb) = flow.knowledge.get().and_then(|k| k.current()) else { continue };
        if kb.config().followup.is_empty() {
            continue;
        }
        let Ok(trades) = flow.store.customer_trades(customer_id, 1).await else { continue };
        let Some(trade) = trades.into_iter().next() else { continue };
        let Some(event) = event_of(&trade.kind, &trade.stage) else { continue };
        let Ok(Some(session)) = flow.store.session(session_id).await else { continue };
        for followup in kb.config().followup.iter().filter(|f| f.event == event) {
            if !followup.shops.is_empty() && !followup.shops.contains(&session.shop) {
                continue;
            }
            let flow = flow.clone();
            let last_sent = last_sent.clone();
            let followup = followup.clone();
            let order = trade.order_id.clone();
            tokio::spawn(async move {
                if event == "unpaid" {
                    let wait = u64::from(followup.after_minutes.unwrap_or(30)) * 60;
                    tokio::time::sleep(Duration::from_secs(wait)).await;
                    // Still unpaid: the latest event of that order is its creation.
                    let latest = flow.store.customer_trades(customer_id, 20).await.unwrap_or_default();
                    let still_unpaid = latest
                        .iter()
                        .find(|t| t.kind == "order" && t.order_id == order)
                        .is_some_and(|t| t.stage == "created");
                    if !still_unpaid {
                        return;
                    }
                }
                send(&flow, &last_sent, session_id, customer_id, &followup.text, order.as_deref(), event).await;
            });
        }
    }
}

async fn send(
    flow: &Flow,
    last_sent: &Mutex<HashMap<i64, i64>>,
    session_id: i64,
    customer_id: i64,
    template: &str,
    order: Option<&str>,
    event: &str,
) {
    let Some(kb) = flow.knowledge.get().and_then(|k| k.current()) else { return };
    let now = huiliu_domain::now_millis();
    if !kb.config().followup_allowed_at(huiliu_knowledge::beijing_minute(now)) {
        tracing::info!(session = session_id, event, "follow-up not sent: quiet hours");
        return;
    }
    let interval = i64::from(kb.config().knowledge.followup_min_interval_minutes) * 60_000;
    {
        let mut sent = last_sent.lock().unwrap_or_else(|p| p.into_inner());
        if sent.get(&customer_id).is_some_and(|at| now - at < interval) {
            tracing::info!(session = session_id, event, "follow-up not sent: this buyer had one recently");
            return;
        }
        sent.insert(customer_id, now);
    }
    let nick = flow.store.customer(customer_id).await.ok().flatten().and_then(|c| c.nick);
    // The conversation's newest product card (order events name no product) and the shop's name.
    let messages = flow.store.session_messages(session_id).await.unwrap_or_default();
    let product =
        crate::services::knowledge::product_name(&kb, crate::services::knowledge::conversation_product(&messages));
    let shop = match flow.store.session(session_id).await {
        Ok(Some(s)) => Some(flow.outbox.status.shop_name(&s.shop)),
        _ => None,
    };
    let vars = Vars { buyer: nick.as_deref(), order, product, shop: shop.as_deref() };
    let text = huiliu_knowledge::render(template, &vars);
    let request = ReplyRequest { session_id, author: Author::Bot, content: vec![Content::text(text)] };
    match flow.reply(request).await {
        Ok(_) => tracing::info!(session = session_id, event, "follow-up sent"),
        Err(e) => tracing::warn!(session = session_id, event, "follow-up not sent: {e}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn stages_map_to_followup_events() {
        assert_eq!(super::event_of("order", "created"), Some("unpaid"));
        assert_eq!(super::event_of("order", "received"), Some("delivered"));
        assert_eq!(super::event_of("refund", "agreed"), Some("refund_approved"));
        assert_eq!(super::event_of("order", "paid"), None);
    }
}
