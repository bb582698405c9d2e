//! The outbox worker: sends stored replies through their shop's connector, retries with
//! exponential backoff and jitter on retryable and rate-limited outcomes, keeps a per-shop send
//! rate, refreshes an expired token once and retries once, and records the final delivery
//! state (with the platform's reason) on the message.
//!
//! A reply with several elements (text, picture, product card…) goes out as one native platform
//! message per element, in order, each with its own client message id (`{id}-1`, `{id}-2`, …);
//! the row counts the delivered ones, so a retry resumes with the first undelivered element.
//!
//! Architecture invariant: a reply is sent only after it is stored; every attempt carries the
//! same client message id, so a retry after a crash or a lost answer cannot double-send on a
//! platform that deduplicates by it. Each attempt is claimed with a lease, so two workers
//! (or one restarted) never send the same row at the same time.

pub mod http;
pub mod tokens;
pub mod transfer;

use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use huiliu_sdk::{Millis, SendOutcome};

use crate::events::GatewayEvent;
use crate::metrics::Metrics;
use huiliu_store::OutboxItem;

/// How long an attempt holds its row beyond the request timeout before another worker (or this
/// one after a crash) may retry it. A crash mid-send delays that reply by at most
/// `request_timeout_ms + LEASE_MARGIN_MS`; the retry reuses the client message id.
const LEASE_MARGIN_MS: Millis = 5_000;

/// The delay before attempt `attempt + 1`: base·2^(attempt−1), capped, ±25% jitter.
pub fn backoff_ms(attempt: u32, base_ms: u64, max_ms: u64, jitter: f64) -> u64 {
    let exp = base_ms.saturating_mul(1u64 << attempt.saturating_sub(1).min(30));
    let capped = exp.min(max_ms) as f64;
    (capped * (1.0 + 0.25 * jitter.clamp(-1.0, 1.0))).max(1.0) as u64
}

/// Per-shop send pacing: the earliest time the next send may start.
#[derive(Debug, Default)]
struct Pacer {
    next_slot: BTreeMap<(String, String), Millis>,
}

impl Pacer {
    /// Reserves a slot for the shop; returns how long to wait before sending.
    fn reserve(&mut self, key: (String, String), now: Millis, per_sec: u32) -> Millis {
        let gap = 1000 / Millis::from(per_sec.max(1));
        let slot = self.next_slot.entry(key).or_insert(now);
        let start = (*slot).max(now);
        *slot = start + gap;
        start - now
    }
}

/// The delivery worker's world: the outbox rows, the connectors that encode and classify, the
/// HTTP client that sends.
#[derive(Debug)]
pub struct Outbox {
    pub store: huiliu_store::Store,
    pub connectors: Arc<crate::plugins::Connectors>,
    pub metrics: Arc<Metrics>,
    pub events: crate::events::EventHub,
    /// Rung by the reply door when a reply is queued.
    pub wake: Arc<tokio::sync::Notify>,
    pub config: OutboxConfig,
    /// The HTTP client every platform call goes through.
    pub http: reqwest::Client,
    /// Where each shop's token refreshes are shown.
    pub status: Arc<crate::services::status::Status>,
    /// In a cluster: only the holder of a shop's token lease refreshes its token.
    pub leases: Option<Arc<crate::cluster::Leases>>,
}

/// Runs the worker forever.
pub async fn run(gw: Arc<Outbox>) {
    let in_flight: Arc<Mutex<BTreeSet<(String, String)>>> = Arc::default();
    let pacer: Arc<Mutex<Pacer>> = Arc::default();
    loop {
        let now = huiliu_domain::now_millis();
        let due = match gw.store.due_outbox(now, 256).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!("outbox poll failed: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        // One sender per shop keeps each shop's replies in order and its rate honest.
        let mut by_shop: BTreeMap<(String, String), Vec<OutboxItem>> = BTreeMap::new();
        for item in due {
            by_shop.entry((item.platform.clone(), item.shop.clone())).or_default().push(item);
        }
        for (key, items) in by_shop {
            if !in_flight.lock().unwrap_or_else(|p| p.into_inner()).insert(key.clone()) {
                continue;
            }
            let (gw, in_flight, pacer) = (gw.clone(), in_flight.clone(), pacer.clone());
            tokio::spawn(async move {
                let pace = || async {
                    let wait = pacer.lock().unwrap_or_else(|p| p.into_inner()).reserve(
                        key.clone(),
                        huiliu_domain::now_millis(),
                        gw.config.send_rate_per_sec,
                    );
                    if wait > 0 {
                        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
                    }
                };
                for item in items {
                    pace().await;
                    attempt(&gw, item, &pace).await;
                }
                in_flight.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
            });
        }
        // Sleep until the next row is due, a reply is queued, or a second passes.
        let next = gw.store.next_outbox_due().await.ok().flatten();
        let sleep_ms = next.map(|n| (n - huiliu_domain::now_millis()).clamp(5, 1000)).unwrap_or(1000);
        tokio::select! {
            _ = gw.wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(sleep_ms as u64)) => {}
        }
    }
}

/// The platform messages a reply goes out as: itself when it has one element, else one per
/// element in order, each with its own client message id `{id}-{n}` (n from 1).
pub fn split(outgoing: &huiliu_sdk::OutgoingMessage) -> Vec<huiliu_sdk::OutgoingMessage> {
    if outgoing.content.len() <= 1 {
        return vec![outgoing.clone()];
    }
    outgoing
        .content
        .iter()
        .enumerate()
        .map(|(i, element)| huiliu_sdk::OutgoingMessage {
            client_msg_id: format!("{}-{}", outgoing.client_msg_id, i + 1),
            content: vec![element.clone()],
            ..outgoing.clone()
        })
        .collect()
}

/// One attempt at one row (plus the single retry after a token refresh); a reply of several
/// elements sends its undelivered elements in order (`pace` spaces them like replies), and stops
/// at the first that is not delivered.
async fn attempt<F: Future<Output = ()>>(gw: &Outbox, item: OutboxItem, pace: &impl Fn() -> F) {
    let now = huiliu_domain::now_millis();
    let lease = gw.config.request_timeout_ms as Millis + LEASE_MARGIN_MS;
    match gw.store.claim_outbox(item.id, now, now + lease).await {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => return tracing::error!(outbox = item.id, "cannot claim outbox row: {e}"),
    }
    let attempts = item.attempts as u32 + 1;
    let Some(connector) = gw.connectors.get(&item.platform, &item.shop) else {
        return finish_failed(gw, &item, "the shop is not configured or its connector did not start").await;
    };
    let parts = split(&item.outgoing);
    let several = parts.len() > 1;
    let mut sent = usize::try_from(item.parts_sent).unwrap_or(0).min(parts.len());
    let mut outcome = SendOutcome::Delivered { platform_msg_id: None };
    while let Some(part) = parts.get(sent) {
        if sent > usize::try_from(item.parts_sent).unwrap_or(0) {
            pace().await;
        }
        outcome = send_with_refresh(gw, &connector, &item, part).await;
        Metrics::count(&gw.metrics.sends, &item.platform, outcome.class());
        let SendOutcome::Delivered { platform_msg_id } = &outcome else {
            if several {
                name_element(&mut outcome, sent + 1, parts.len());
            }
            break;
        };
        sent += 1;
        if several {
            let now = huiliu_domain::now_millis();
            if let Err(e) =
                gw.store.outbox_part_sent(item.id, sent as i64, platform_msg_id.as_deref(), now + lease, now).await
            {
                tracing::error!(outbox = item.id, "element delivered but not recorded: {e}");
            }
        }
    }
    let now = huiliu_domain::now_millis();
    let cfg = &gw.config;
    match outcome {
        SendOutcome::Delivered { platform_msg_id } => {
            gw.metrics.send_seconds.observe((now - item.created_at).max(0) as f64 / 1000.0);
            // Several elements: their ids are on the row already.
            let platform_msg_id = if several { None } else { platform_msg_id };
            if let Err(e) = gw.store.outbox_sent(item.id, platform_msg_id.as_deref(), now).await {
                tracing::error!(outbox = item.id, "delivered but not recorded: {e}");
            }
            tracing::info!(shop = %item.shop, session = item.session_id, "reply delivered");
            publish(gw, &item, "sent", None);
        }
        SendOutcome::Permanent { error } => finish_failed(gw, &item, &error.to_string()).await,
        SendOutcome::TokenExpired { error }
        | SendOutcome::Retryable { error }
        | SendOutcome::RateLimited { error, .. }
            if attempts >= cfg.max_attempts =>
        {
            finish_failed(gw, &item, &format!("gave up after {attempts} attempts: {error}")).await
        }
        SendOutcome::Retryable { error } | SendOutcome::TokenExpired { error } => {
            let delay =
                backoff_ms(attempts, cfg.backoff_base_ms, cfg.backoff_max_ms, rand::random::<f64>() * 2.0 - 1.0);
            retry_later(gw, &item, now + delay as Millis, &error.to_string()).await;
        }
        SendOutcome::RateLimited { error, retry_after_ms } => {
            let delay =
                backoff_ms(attempts, cfg.backoff_base_ms, cfg.backoff_max_ms, rand::random::<f64>() * 2.0 - 1.0)
                    .max(retry_after_ms.unwrap_or(0));
            retry_later(gw, &item, now + delay as Millis, &format!("rate limited: {error}")).await;
        }
    }
}

/// Says which element of a reply of several a failure is about.
fn name_element(outcome: &mut SendOutcome, n: usize, of: usize) {
    match outcome {
        SendOutcome::Delivered { .. } => {}
        SendOutcome::Retryable { error }
        | SendOutcome::RateLimited { error, .. }
        | SendOutcome::TokenExpired { error }
        | SendOutcome::Permanent { error } => error.message = format!("element {n} of {of}: {}", error.message),
    }
}

/// One send; an expired token is refreshed once and the send retried once.
async fn send_with_refresh(
    gw: &Outbox,
    connector: &crate::plugins::ShopConnector,
    item: &OutboxItem,
    part: &huiliu_sdk::OutgoingMessage,
) -> SendOutcome {
    let outcome = send_once(gw, connector, part).await;
    let SendOutcome::TokenExpired { error } = &outcome else { return outcome };
    tracing::info!(shop = %item.shop, "token expired ({error}); refreshing once and retrying");
    match tokens::refresh(gw, connector, true).await {
        tokens::Refresh::Refreshed => send_once(gw, connector, part).await,
        // Retrying cannot help until an operator authorizes the shop again: fail the reply now,
        // with the reason (the agent can retry it once the shop is fixed).
        tokens::Refresh::Reauthorize(why) => SendOutcome::Permanent {
            error: huiliu_sdk::PlatformError {
                message: format!("{}; re-authorization needed: {why}", error.message),
                ..error.clone()
            },
        },
        tokens::Refresh::NotNeeded | tokens::Refresh::Temporary(_) => SendOutcome::Retryable { error: error.clone() },
    }
}

/// The largest picture the gateway fetches for an upload.
const MAX_MEDIA_BYTES: usize = 10 << 20;
/// Uploads one reply may need (one element each; a split reply has one element).
const MAX_UPLOADS: usize = 4;

/// Encodes, performs and classifies one send, after the steps the connector asks for first
/// (uploading a picture to the platform's media storage).
async fn send_once(
    gw: &Outbox,
    connector: &crate::plugins::ShopConnector,
    outgoing: &huiliu_sdk::OutgoingMessage,
) -> SendOutcome {
    let error = |code: &str, message: String| huiliu_sdk::PlatformError {
        http_status: 0,
        code: code.into(),
        sub_code: None,
        message,
    };
    let timeout = Duration::from_millis(gw.config.request_timeout_ms);
    let mut message = std::borrow::Cow::Borrowed(outgoing);
    for _ in 0..MAX_UPLOADS {
        let (element, url) = match connector.prepare_send(&message, huiliu_domain::now_millis()) {
            Ok(huiliu_sdk::SendPrep::Ready) => break,
            Ok(huiliu_sdk::SendPrep::Upload { element, url }) => (element, url),
            Err(e) => return SendOutcome::Permanent { error: error("prepare", e.to_string()) },
        };
        let media = match http::fetch_media(&gw.http, &url, MAX_MEDIA_BYTES, timeout).await {
            Ok(bytes) => bytes,
            Err(e) => {
                let error = error("media", format!("cannot fetch {url}: {}", e.reason));
                return if e.retryable { SendOutcome::Retryable { error } } else { SendOutcome::Permanent { error } };
            }
        };
        let request = match connector.encode_upload(&message, element, &media, huiliu_domain::now_millis()) {
            Ok(r) => r,
            Err(e) => return SendOutcome::Permanent { error: error("upload", e.to_string()) },
        };
        let response = match http::perform(&gw.http, request, timeout).await {
            Ok(r) => r,
            Err(e) => return SendOutcome::Retryable { error: error("transport", e) },
        };
        match connector.uploaded(&message, element, &response, huiliu_domain::now_millis()) {
            Ok(huiliu_sdk::UploadOutcome::Ready { message: next }) => message = std::borrow::Cow::Owned(next),
            Ok(huiliu_sdk::UploadOutcome::Failed { outcome }) => return outcome,
            Err(e) => return SendOutcome::Retryable { error: error("upload", e.to_string()) },
        }
    }
    let outgoing = message.as_ref();
    let request = match connector.encode_send(outgoing, huiliu_domain::now_millis()) {
        Ok(r) => r,
        Err(e) => return SendOutcome::Permanent { error: error("encode", e.to_string()) },
    };
    match http::perform(&gw.http, request, timeout).await {
        Ok(response) => connector
            .classify_send(&response, huiliu_domain::now_millis())
            .unwrap_or_else(|e| SendOutcome::Retryable { error: error("classify", e.to_string()) }),
        Err(e) => SendOutcome::Retryable { error: error("transport", e) },
    }
}

async fn retry_later(gw: &Outbox, item: &OutboxItem, at: Millis, reason: &str) {
    tracing::warn!(shop = %item.shop, session = item.session_id, "reply not delivered yet, retrying: {reason}");
    if let Err(e) = gw.store.outbox_retry_at(item.id, at, reason, huiliu_domain::now_millis()).await {
        tracing::error!(outbox = item.id, "cannot schedule retry: {e}");
    }
    publish(gw, item, "retrying", Some(reason.to_owned()));
}

async fn finish_failed(gw: &Outbox, item: &OutboxItem, reason: &str) {
    tracing::warn!(shop = %item.shop, session = item.session_id, "reply failed: {reason}");
    if let Err(e) = gw.store.outbox_failed(item.id, reason, huiliu_domain::now_millis()).await {
        tracing::error!(outbox = item.id, "cannot record failure: {e}");
    }
    publish(gw, item, "failed", Some(reason.to_owned()));
}

fn publish(gw: &Outbox, item: &OutboxItem, state: &str, detail: Option<String>) {
    let _ = gw.events.send(GatewayEvent::Delivery {
        session_id: item.session_id,
        message_id: item.message_id,
        state: state.into(),
        detail,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters() {
        assert_eq!(backoff_ms(1, 1000, 300_000, 0.0), 1000);
        assert_eq!(backoff_ms(2, 1000, 300_000, 0.0), 2000);
        assert_eq!(backoff_ms(5, 1000, 300_000, 0.0), 16_000);
        assert_eq!(backoff_ms(40, 1000, 300_000, 0.0), 300_000);
        assert_eq!(backoff_ms(1, 1000, 300_000, 1.0), 1250);
        assert_eq!(backoff_ms(1, 1000, 300_000, -1.0), 750);
        assert_eq!(backoff_ms(0, 1000, 300_000, 0.0), 1000);
    }

    #[test]
    fn a_reply_of_several_elements_splits_into_one_message_each_in_order() {
        use huiliu_sdk::{Buyer, Content, OutgoingMessage};
        let reply = OutgoingMessage {
            staff_account: None,
            client_msg_id: "hl-7".into(),
            shop: "s".into(),
            buyer: Buyer { open_id: "b".into(), nick: None },
            conversation: Some("c".into()),
            reply_context: Default::default(),
            content: vec![Content::text("您好"), Content::image("https://x/1.jpg"), Content::text("请看图")],
        };
        let parts = split(&reply);
        let ids: Vec<&str> = parts.iter().map(|p| p.client_msg_id.as_str()).collect();
        assert_eq!(ids, ["hl-7-1", "hl-7-2", "hl-7-3"]);
        assert!(parts.iter().zip(&reply.content).all(|(p, c)| p.content == [c.clone()]));
        assert!(parts.iter().all(|p| p.conversation.as_deref() == Some("c") && p.buyer == reply.buyer));
        // One element: the reply itself, id unchanged (what every platform already saw).
        let one = OutgoingMessage { content: vec![Content::text("好的")], ..reply };
        assert_eq!(split(&one), std::slice::from_ref(&one));
        let mut failed = SendOutcome::Permanent {
            error: huiliu_sdk::PlatformError {
                http_status: 400,
                code: "x".into(),
                sub_code: None,
                message: "bad".into(),
            },
        };
        name_element(&mut failed, 2, 3);
        assert!(matches!(&failed, SendOutcome::Permanent { error } if error.message == "element 2 of 3: bad"));
    }

    #[test]
    fn pacer_spaces_sends_per_shop() {
        let mut p = Pacer::default();
        let k = || ("douyin".to_owned(), "s".to_owned());
        assert_eq!(p.reserve(k(), 0, 10), 0);
        assert_eq!(p.reserve(k(), 0, 10), 100);
        assert_eq!(p.reserve(k(), 0, 10), 200);
        assert_eq!(p.reserve(("jd".into(), "s".into()), 0, 10), 0);
        assert_eq!(p.reserve(k(), 1000, 10), 0);
    }
}

/// `[outbox]`: delivery of replies.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxConfig {
    /// Most replies sent per second per shop (platform rate limits). Default 10.
    pub send_rate_per_sec: u32,
    /// Attempts before a retryable failure is given up and shown as failed. Default 12.
    pub max_attempts: u32,
    /// First retry delay in ms; doubles each attempt, with ±25% jitter. Default 1000.
    pub backoff_base_ms: u64,
    /// Longest retry delay in ms. Default 300000 (5 minutes).
    pub backoff_max_ms: u64,
    /// Timeout of one platform API call in ms. Default 10000.
    pub request_timeout_ms: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            send_rate_per_sec: 10,
            max_attempts: 12,
            backoff_base_ms: 1000,
            backoff_max_ms: 300_000,
            request_timeout_ms: 10_000,
        }
    }
}
