//! The push side (PROTOCOLS.md §2.2, chat payload §2.3): envelopes, signing, delivery with retry.

use serde_json::{Map, Value, json};

use super::{CHAT_TAG, PUSH_SUCCESS, PushAttempt, Shared, lock, sign};
use crate::{BuyerChat, Delivery, Faults, SimConfig, TradeEvent, TradeKind};

/// The address check's body (the vector body of PROTOCOLS.md §2.2).
pub(crate) const ADDRESS_CHECK_BODY: &str = r#"[{"tag":"0","msg_id":"0","data":"{}"}]"#;

/// A platform id as Douyin sends it: a JSON number when it is a plain unsigned integer (ids may
/// exceed 2^53, which is the point), otherwise a string.
pub(crate) fn id_value(id: &str) -> Value {
    let plain = !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) && (id == "0" || !id.starts_with('0'));
    match id.parse::<u64>() {
        Ok(n) if plain => Value::from(n),
        _ => Value::from(id),
    }
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// One-unit envelope `[{"tag":…,"msg_id":…,"data":"<json>"}]`, fields in Douyin's order.
pub(crate) fn envelope(tag: &str, msg_id: &str, data: &Value) -> Vec<u8> {
    let data = serde_json::to_string(data).unwrap_or_else(|_| "{}".into());
    format!(r#"[{{"tag":{},"msg_id":{},"data":{}}}]"#, json_str(tag), json_str(msg_id), json_str(&data)).into_bytes()
}

/// A buyer chat push (modeled tag and `data`, PROTOCOLS.md §2.3). The envelope `msg_id` is the
/// chat `msg_id`, so a redelivery repeats both.
pub(crate) fn chat_envelope(cfg: &SimConfig, chat: &BuyerChat) -> Vec<u8> {
    let mut data = Map::new();
    data.insert("msg_id".into(), Value::from(chat.msg_id.as_str()));
    data.insert("shop_id".into(), id_value(&cfg.platform_shop_id));
    data.insert("conversation_id".into(), Value::from(format!("conv-{}", chat.buyer_id)));
    data.insert("buyer_open_id".into(), Value::from(chat.buyer_id.as_str()));
    data.insert("buyer_nick".into(), Value::from(chat.nick.as_str()));
    data.insert("msg_type".into(), Value::from(chat.msg_type.as_str()));
    data.insert("content".into(), Value::from(chat.text.as_str()));
    match (chat.msg_type.as_str(), &chat.ref_id) {
        ("product", Some(id)) => {
            data.insert("product_id".into(), id_value(id));
        }
        ("order", Some(id)) => {
            data.insert("order_id".into(), Value::from(id.as_str()));
        }
        _ => {}
    }
    data.insert("create_time".into(), Value::from(chat.sent_at_ms.div_euclid(1000)));
    data.insert("fans_level".into(), Value::from(chat.fans_level));
    envelope(CHAT_TAG, &chat.msg_id, &Value::Object(data))
}

/// The push tag of a trade event: the public tags 100/101/103/200/201, and for the kinds the
/// connector does not map, Douyin's own tags (102 shipped, 106 cancelled, 206 refund succeeded),
/// which it acknowledges without producing an event.
pub fn trade_tag(kind: TradeKind) -> &'static str {
    match kind {
        TradeKind::OrderCreated => "100",
        TradeKind::OrderPaid => "101",
        TradeKind::OrderShipped => "102",
        TradeKind::OrderReceived => "103",
        TradeKind::OrderClosed => "106",
        TradeKind::RefundRequested => "200",
        TradeKind::RefundAgreed => "201",
        TradeKind::RefundSucceeded => "206",
    }
}

/// An order or refund push. `data` follows Douyin's public message docs (`p_id`, `s_ids`,
/// `shop_id`, `order_status`, `*_time` in Unix seconds, amounts in fen; refunds `aftersale_id`,
/// `s_id`, `refund_amount`), plus `buyer_open_id`, which the real pushes lack but the modeled
/// mapping requires (plugins/douyin/README.md). The envelope `msg_id` is `event_id`.
pub(crate) fn trade_envelope(cfg: &SimConfig, ev: &TradeEvent) -> Vec<u8> {
    let at = ev.at_ms.div_euclid(1000);
    let shop = id_value(&cfg.platform_shop_id);
    let order = id_value(&ev.order_id);
    let refund = id_value(ev.refund_id.as_deref().unwrap_or(&ev.event_id));
    let buyer = ev.buyer_id.as_str();
    let data = match ev.kind {
        TradeKind::OrderCreated => json!({
            "p_id": order, "s_ids": [order.clone()], "shop_id": shop, "biz": 2, "order_type": 0,
            "order_status": 1, "create_time": at, "pay_amount": ev.amount_fen, "buyer_open_id": buyer,
        }),
        TradeKind::OrderPaid => json!({
            "p_id": order, "s_ids": [order.clone()], "shop_id": shop, "biz": 2, "order_type": 0,
            "order_status": 2, "pay_type": 1, "pay_time": at, "pay_amount": ev.amount_fen, "buyer_open_id": buyer,
        }),
        TradeKind::OrderShipped => json!({
            "p_id": order, "s_ids": [order.clone()], "shop_id": shop, "biz": 2, "order_status": 3,
            "update_time": at, "buyer_open_id": buyer,
        }),
        TradeKind::OrderReceived => json!({
            "p_id": order, "s_ids": [order.clone()], "shop_id": shop, "biz": 2, "order_status": 5,
            "complete_time": at, "pay_amount": ev.amount_fen, "buyer_open_id": buyer,
        }),
        TradeKind::OrderClosed => json!({
            "p_id": order, "s_ids": [order.clone()], "shop_id": shop, "biz": 2, "order_status": 4,
            "cancel_time": at, "cancel_reason": "买家取消", "buyer_open_id": buyer,
        }),
        TradeKind::RefundRequested => json!({
            "aftersale_id": refund, "aftersale_status": 6, "aftersale_type": 2, "p_id": order, "s_id": order.clone(),
            "shop_id": shop, "refund_amount": ev.amount_fen, "apply_time": at, "reason_code": 1, "buyer_open_id": buyer,
        }),
        TradeKind::RefundAgreed => json!({
            "aftersale_id": refund, "aftersale_status": 7, "aftersale_type": 2, "p_id": order, "s_id": order.clone(),
            "shop_id": shop, "refund_amount": ev.amount_fen, "agree_time": at, "buyer_open_id": buyer,
        }),
        TradeKind::RefundSucceeded => json!({
            "aftersale_id": refund, "aftersale_status": 12, "aftersale_type": 2, "p_id": order, "s_id": order.clone(),
            "shop_id": shop, "refund_amount": ev.amount_fen, "success_time": at, "buyer_open_id": buyer,
        }),
    };
    envelope(trade_tag(ev.kind), &ev.event_id, &data)
}

/// An order or refund push exactly as the live platform sends it: no `buyer_open_id`.
pub(crate) fn trade_envelope_without_buyer(cfg: &SimConfig, ev: &TradeEvent) -> Vec<u8> {
    let with: Value = serde_json::from_slice(&trade_envelope(cfg, ev)).unwrap_or_default();
    let mut units = with.as_array().cloned().unwrap_or_default();
    for unit in &mut units {
        if let Some(data) = unit.get("data").and_then(Value::as_str) {
            let mut data: Value = serde_json::from_str(data).unwrap_or_default();
            if let Some(obj) = data.as_object_mut() {
                obj.remove("buyer_open_id");
            }
            unit["data"] = Value::String(data.to_string());
        }
    }
    serde_json::to_vec(&units).unwrap_or_default()
}

/// Delivers `body` like the platform: retry until acked (`retries` more times, `backoff` apart),
/// twice over when the duplicate fault fires.
pub(crate) async fn deliver(shared: &Shared, body: Vec<u8>) -> Delivery {
    let times = if Faults::take(&shared.faults.duplicate_deliveries) { 2 } else { 1 };
    let mut all_acked = true;
    let mut last = Delivery { acked: false, status: 0, detail: String::new() };
    for _ in 0..times {
        last = deliver_with_retry(shared, &body).await;
        all_acked &= last.acked;
    }
    last.acked = all_acked;
    last
}

async fn deliver_with_retry(shared: &Shared, body: &[u8]) -> Delivery {
    let (retries, backoff) = *lock(&shared.retry);
    let mut tries = 0;
    loop {
        let sign_ok = !Faults::take(&shared.faults.bad_signature_pushes);
        let d = attempt(shared, body, sign_ok).await;
        if d.acked || tries >= retries || d.status == 0 && d.detail.starts_with(NO_GATEWAY) {
            return d;
        }
        tries += 1;
        tokio::time::sleep(backoff).await;
    }
}

const NO_GATEWAY: &str = "no gateway hook URL set";

/// One HTTP push. Acked only on HTTP 200 with exactly `{"code":0,"msg":"success"}`.
pub(crate) async fn attempt(shared: &Shared, body: &[u8], sign_ok: bool) -> Delivery {
    let balanced = {
        let urls = lock(&shared.hook_urls);
        (!urls.is_empty()).then(|| {
            let i = shared.next_hook.fetch_add(1, std::sync::atomic::Ordering::Relaxed) as usize;
            urls[i % urls.len()].clone()
        })
    };
    let Some(url) = balanced.or_else(|| lock(&shared.hook_url).clone()) else {
        return Delivery { acked: false, status: 0, detail: NO_GATEWAY.into() };
    };
    let cfg = &shared.cfg;
    let event_sign = if sign_ok {
        sign::event_sign(&cfg.app_key, body, &cfg.app_secret)
    } else {
        sign::event_sign(&cfg.app_key, body, &format!("{}-wrong", cfg.app_secret))
    };
    let req = shared
        .http
        .post(&url)
        .header("content-type", "application/json")
        .header("app-id", &cfg.app_key)
        .header("event-sign", event_sign)
        .body(body.to_vec());
    let (status, response) = match req.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            match resp.bytes().await {
                Ok(b) => (status, String::from_utf8_lossy(&b).into_owned()),
                Err(e) => (status, format!("error reading the answer: {e}")),
            }
        }
        Err(e) => (0, format!("push failed: {e}")),
    };
    let acked = status == 200 && response == PUSH_SUCCESS;
    let (tag, msg_id) = first_unit(body);
    lock(&shared.pushes).push(PushAttempt {
        tag,
        msg_id,
        signed_ok: sign_ok,
        status,
        response: response.clone(),
        acked,
    });
    Delivery { acked, status, detail: response }
}

/// Tag and msg_id of the first unit, for the push log (empty when unreadable).
fn first_unit(body: &[u8]) -> (String, String) {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let unit = &v[0];
    let s = |k: &str| match &unit[k] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    (s("tag"), s("msg_id"))
}
