//! Reading one decrypted WeChat Shop push (one unit: every push carries exactly one event).
//!
//! | `Event`                                   | becomes                                   |
//! |-------------------------------------------|-------------------------------------------|
//! | `commkf_send_msg_to_kf`                   | a buyer message (every `msg_type`)         |
//! | `channels_ec_order_new` / `_pay` / `_deliver` / `_confirm` / `_cancel` | an order event |
//! | `channels_ec_aftersale_update`            | a refund event                            |
//! | any other event, or a non-event `MsgType` | an ignored unit (reported, not stored)    |
//!
//! Sources: kf_msg_event
//! (<https://developers.weixin.qq.com/doc/store/shop/notify/kf_callback/kf_msg_event>), the
//! order callbacks (<https://developers.weixin.qq.com/doc/store/shop/notify/order_callback>), the
//! after-sale callback
//! (<https://developers.weixin.qq.com/doc/store/shop/notify/aftersale_callback/channels_ec_aftersale_update>).
//! The chat event's per-type objects are documented only as "the structure of that message type,
//! see sendmsg"; this connector reads them with the sendmsg field names (`text.content`,
//! `image.cos_url`, `video.cos_url`, `file.cos_url`, `order_share.order_id`) and, MODELED,
//! `product_share.product_id`, `file.file_name` and `voice.cos_url`, accepting `url` wherever
//! `cos_url` is read.

use huiliu_sdk::{
    Buyer, BuyerMessage, Content, EventKind, ExactId, IgnoredUnit, InboundEvent, Millis, OrderEvent, OrderStage,
    RefundEvent, RefundStage,
};
use serde_json::{Map, Value};

/// The platform name events carry and shops.toml uses.
pub const PLATFORM: &str = "wechat-shop";
/// The buyer-chat event.
pub const CHAT_EVENT: &str = "commkf_send_msg_to_kf";
/// The after-sale event.
pub const AFTERSALE_EVENT: &str = "channels_ec_aftersale_update";
/// The chat sub-event of a message the buyer sent.
pub const SEND_MSG: &str = "EVENT_TYPE_SEND_MSG";

/// What one unit became.
#[derive(Debug)]
pub enum Unit {
    Event(Box<InboundEvent>),
    Ignored(IgnoredUnit),
}

/// An authentic unit that cannot be read; the reason and the id when one was readable.
#[derive(Debug)]
pub struct Undecodable {
    pub reason: String,
    pub event_id: Option<String>,
}

fn undecodable(reason: impl Into<String>, event_id: Option<String>) -> Undecodable {
    Undecodable { reason: reason.into(), event_id }
}

/// Reads a field as an exact id (number or string).
fn exact(obj: &Map<String, Value>, name: &str) -> Option<String> {
    let id: ExactId = serde_json::from_value(obj.get(name)?.clone()).ok()?;
    (!id.is_empty()).then(|| id.into_string())
}

fn text(obj: &Map<String, Value>, name: &str) -> Option<String> {
    obj.get(name).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// Decodes one push message (plain JSON, already verified and decrypted).
pub fn decode(shop: &str, msg: &[u8], _now: Millis) -> Result<Unit, Undecodable> {
    let value: Value =
        serde_json::from_slice(msg).map_err(|e| undecodable(format!("push body is not JSON: {e}"), None))?;
    let Some(obj) = value.as_object() else {
        return Err(undecodable("push body is not a JSON object", None));
    };
    let msg_type = text(obj, "MsgType").unwrap_or_default();
    let event = text(obj, "Event").unwrap_or_default();
    if msg_type != "event" {
        return Ok(ignored(if msg_type.is_empty() { "(no MsgType)" } else { &msg_type }, None, "not an event push"));
    }
    match event.as_str() {
        CHAT_EVENT => chat(shop, obj),
        AFTERSALE_EVENT => aftersale(shop, obj),
        e => match order_stage(e) {
            Some(stage) => order(shop, obj, e, stage),
            None => Ok(ignored(e, None, "an event this connector has no use for")),
        },
    }
}

fn ignored(unit_type: &str, event_id: Option<String>, reason: &str) -> Unit {
    Unit::Ignored(IgnoredUnit { unit_type: unit_type.to_owned(), event_id, reason: reason.to_owned() })
}

fn occurred_at(obj: &Map<String, Value>) -> Result<Millis, String> {
    let seconds = exact(obj, "CreateTime").ok_or("missing `CreateTime`")?;
    seconds
        .parse::<i64>()
        .ok()
        .and_then(|s| s.checked_mul(1000))
        .ok_or_else(|| "`CreateTime` is not Unix seconds".into())
}

fn buyer(obj: &Map<String, Value>) -> Result<Buyer, String> {
    Ok(Buyer { open_id: text(obj, "FromUserName").ok_or("missing `FromUserName` (the buyer's OpenID)")?, nick: None })
}

fn chat(shop: &str, obj: &Map<String, Value>) -> Result<Unit, Undecodable> {
    let msg_id = exact(obj, "msg_id");
    let fail = |reason: String| undecodable(reason, msg_id.clone());
    if !is_buyer_message(obj.get("msg_event")) {
        let sub = obj.get("msg_event").map(Value::to_string).unwrap_or_default();
        return Ok(ignored(&format!("{CHAT_EVENT}/{sub}"), msg_id, "a chat event other than a buyer message"));
    }
    let event_id = msg_id.clone().ok_or_else(|| fail("missing `msg_id`".into()))?;
    let buyer = buyer(obj).map_err(fail)?;
    let occurred_at = occurred_at(obj).map_err(fail)?;
    let kind = text(obj, "msg_type").ok_or_else(|| fail("missing `msg_type`".into()))?;
    let content = content(obj, &kind).map_err(fail)?;
    Ok(Unit::Event(Box::new(InboundEvent {
        platform: PLATFORM.into(),
        shop: shop.to_owned(),
        event_id,
        buyer,
        occurred_at,
        kind: EventKind::BuyerMessage(BuyerMessage {
            conversation: None,
            content: vec![content],
            vip: Default::default(),
            reply_context: Default::default(),
        }),
    })))
}

/// `msg_event` absent, the string `EVENT_TYPE_SEND_MSG`, or an object keyed by it.
fn is_buyer_message(msg_event: Option<&Value>) -> bool {
    match msg_event {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty() || s == SEND_MSG,
        Some(Value::Object(o)) => o.is_empty() || o.contains_key(SEND_MSG),
        Some(_) => false,
    }
}

fn media_url(part: &Map<String, Value>) -> Option<String> {
    text(part, "cos_url").or_else(|| text(part, "url"))
}

fn content(obj: &Map<String, Value>, kind: &str) -> Result<Content, String> {
    let part = obj.get(kind).and_then(Value::as_object);
    let need = || part.ok_or_else(|| format!("`msg_type` {kind} without its `{kind}` object"));
    Ok(match kind {
        "text" => Content::text(text(need()?, "content").ok_or("text without `content`")?),
        "image" => Content::image(media_url(need()?).ok_or("image without `cos_url`")?),
        // The normalized model has no video, file or voice element: they arrive as text that
        // names the kind and carries the media URL, so an agent can open it.
        "video" => Content::text(format!("[视频] {}", media_url(need()?).ok_or("video without `cos_url`")?)),
        "voice" => Content::text(format!("[语音] {}", media_url(need()?).unwrap_or_default()).trim_end().to_owned()),
        "file" => {
            let p = need()?;
            let name = text(p, "file_name").unwrap_or_default();
            let url = media_url(p).ok_or("file without `cos_url`")?;
            Content::text(if name.is_empty() { format!("[文件] {url}") } else { format!("[文件] {name} {url}") })
        }
        "product_share" => {
            let p = need()?;
            let id = exact(p, "product_id").ok_or("product_share without `product_id`")?;
            Content::product(id, text(p, "title"))
        }
        "order_share" => Content::order(exact(need()?, "order_id").ok_or("order_share without `order_id`")?),
        // An unknown type becomes its raw content as text rather than being dropped.
        other => Content::text(format!(
            "[{other}] {}",
            part.map(|p| Value::Object(p.clone()).to_string()).unwrap_or_default()
        )),
    })
}

/// The order events mapped, by `Event`.
pub fn order_stage(event: &str) -> Option<OrderStage> {
    Some(match event {
        "channels_ec_order_new" => OrderStage::Created,
        "channels_ec_order_pay" => OrderStage::Paid,
        "channels_ec_order_deliver" => OrderStage::Shipped,
        "channels_ec_order_confirm" => OrderStage::Received,
        "channels_ec_order_cancel" => OrderStage::Closed,
        _ => return None,
    })
}

fn order(shop: &str, obj: &Map<String, Value>, event: &str, stage: OrderStage) -> Result<Unit, Undecodable> {
    let info = obj.get("order_info").and_then(Value::as_object);
    let order_id = info.and_then(|i| exact(i, "order_id"));
    let Some(order_id) = order_id else {
        return Err(undecodable(format!("{event} without `order_info.order_id`"), None));
    };
    // One event per (kind, order): a redelivery carries the same pair.
    let event_id = format!("{event}:{order_id}");
    let fail = |reason: String| undecodable(reason, Some(event_id.clone()));
    let buyer = buyer(obj).map_err(fail)?;
    let occurred_at = occurred_at(obj).map_err(fail)?;
    Ok(Unit::Event(Box::new(InboundEvent {
        platform: PLATFORM.into(),
        shop: shop.to_owned(),
        event_id: event_id.clone(),
        buyer,
        occurred_at,
        kind: EventKind::Order(OrderEvent { stage, order_id, amount_fen: None, status: Some(event.to_owned()) }),
    })))
}

/// The after-sale statuses (EcAftersaleInfoStatus), by the refund stage they mean.
pub fn refund_stage(status: &str) -> Option<RefundStage> {
    Some(match status {
        "MERCHANT_PROCESSING" => RefundStage::Requested,
        "USER_WAIT_RETURN" | "MERCHANT_WAIT_RECEIPT" | "PLATFORM_REFUNDING" | "MERCHANT_OVERDUE_REFUND" => {
            RefundStage::Agreed
        }
        "MERCHANT_REFUND_SUCCESS" | "MERCHANT_RETURN_SUCCESS" => RefundStage::Succeeded,
        "USER_CANCELD" | "MERCHANT_REJECT_REFUND" | "MERCHANT_REJECT_RETURN" | "RETURN_CLOSED" => RefundStage::Closed,
        _ => return None,
    })
}

fn aftersale(shop: &str, obj: &Map<String, Value>) -> Result<Unit, Undecodable> {
    let info = obj.get("finder_shop_aftersale_status_update").and_then(Value::as_object);
    let Some(info) = info else {
        return Err(undecodable("after-sale event without `finder_shop_aftersale_status_update`", None));
    };
    let refund_id = exact(info, "after_sale_order_id");
    let status = text(info, "status").unwrap_or_default();
    let event_id = refund_id.as_ref().map(|id| format!("{AFTERSALE_EVENT}:{id}:{status}"));
    let fail = |reason: String| undecodable(reason, event_id.clone());
    let refund_id = refund_id.ok_or_else(|| fail("missing `after_sale_order_id`".into()))?;
    let stage = refund_stage(&status).ok_or_else(|| fail(format!("unknown after-sale status `{status}`")))?;
    let buyer = buyer(obj).map_err(fail)?;
    let occurred_at = occurred_at(obj).map_err(fail)?;
    Ok(Unit::Event(Box::new(InboundEvent {
        platform: PLATFORM.into(),
        shop: shop.to_owned(),
        event_id: event_id.unwrap_or_default(),
        buyer,
        occurred_at,
        kind: EventKind::Refund(RefundEvent { stage, refund_id, order_id: exact(info, "order_id"), amount_fen: None }),
    })))
}
