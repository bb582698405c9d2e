//! TMC message content → normalized events.
//!
//! Public: the trade and refund topics and their content fields (`tid`, `buyer_nick`,
//! `payment`, `status`, `refund_id`, `refund_fee`, …). MODELED: the chat topic's content
//! (PROTOCOLS.md §1.3).
//!
//! Identity: a chat event's id is its `msg_id`; a trade or refund event's id is the TMC message
//! `id`, which TMC keeps across redeliveries of the same message. The buyer of a trade or refund
//! is `buyer_open_uid` when the content carries one, else `buyer_nick` (trade messages of older
//! apps carry only the nick); either way it is the id the platform gives, never a phone number.

use huiliu_sdk::time::parse_beijing_datetime;
use huiliu_sdk::{
    Buyer, BuyerMessage, Content, EventKind, InboundEvent, Millis, OrderEvent, OrderStage, RefundEvent, RefundStage,
    ReplyContext, VipHint,
};
use serde_json::Value;

use crate::json::{amount_fen, id_text, text};

/// The platform name events carry.
pub(crate) const PLATFORM: &str = "taobao";

/// What a TMC topic means to this connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Topic {
    Chat,
    Order(OrderStage),
    Refund(RefundStage),
    /// A topic the app is subscribed to but the gateway has no event for.
    Unhandled,
}

impl Topic {
    pub(crate) fn of(topic: &str, chat_topic: &str) -> Topic {
        if topic == chat_topic {
            return Topic::Chat;
        }
        match topic {
            "taobao_trade_TradeCreate" => Topic::Order(OrderStage::Created),
            "taobao_trade_TradeBuyerPay" => Topic::Order(OrderStage::Paid),
            "taobao_trade_TradeSellerShip" => Topic::Order(OrderStage::Shipped),
            "taobao_trade_TradeSuccess" => Topic::Order(OrderStage::Received),
            "taobao_trade_TradeClose" => Topic::Order(OrderStage::Closed),
            "taobao_refund_RefundCreated" => Topic::Refund(RefundStage::Requested),
            "taobao_refund_RefundSellerAgreeAgreement" => Topic::Refund(RefundStage::Agreed),
            "taobao_refund_RefundSuccess" => Topic::Refund(RefundStage::Succeeded),
            _ => Topic::Unhandled,
        }
    }
}

/// One TMC data message, as far as the envelope could be read.
#[derive(Debug, Clone)]
pub(crate) struct Message<'a> {
    /// The TMC message id.
    pub id: i64,
    pub content: &'a str,
    /// The frame's `outtime`, used when the content carries no time of its own.
    pub outtime: Option<Millis>,
}

/// Why a message could not become an event, and the id it can be filed under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Undecodable {
    pub reason: String,
    pub event_id: Option<String>,
}

/// Where events go and what time it is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    pub shop: &'a str,
    pub now: Millis,
}

/// Decodes the content of a handled topic; `Ok(None)` for an unhandled one.
pub(crate) fn decode(topic: Topic, msg: &Message<'_>, cx: Context<'_>) -> Result<Option<InboundEvent>, Undecodable> {
    if topic == Topic::Unhandled {
        return Ok(None);
    }
    let tmc_id = msg.id.to_string();
    // Until the content is read, the TMC id is the only id to file a dead letter under.
    let content = json_object(msg.content).map_err(|reason| Undecodable { reason, event_id: Some(tmc_id.clone()) })?;
    let fallback_time = msg.outtime.unwrap_or(cx.now);
    match topic {
        Topic::Chat => chat(&content, fallback_time, cx).map(Some),
        Topic::Order(stage) => order(stage, &content, tmc_id, fallback_time, cx).map(Some),
        Topic::Refund(stage) => refund(stage, &content, tmc_id, fallback_time, cx).map(Some),
        Topic::Unhandled => Ok(None),
    }
}

fn json_object(text: &str) -> Result<Value, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(v) if v.is_object() => Ok(v),
        Ok(_) => Err("content is not a JSON object".to_owned()),
        Err(e) => Err(format!("content is not JSON: {e}")),
    }
}

/// A buyer chat message (MODELED content, PROTOCOLS.md §1.3).
fn chat(c: &Value, fallback_time: Millis, cx: Context<'_>) -> Result<InboundEvent, Undecodable> {
    let msg_id = c.get("msg_id").and_then(id_text);
    let fail = |reason: &str| Undecodable { reason: reason.to_owned(), event_id: msg_id.clone() };
    let Some(event_id) = msg_id.clone() else { return Err(fail("chat message without msg_id")) };
    let open_id =
        c.get("buyer_open_uid").and_then(id_text).ok_or_else(|| fail("chat message without buyer_open_uid"))?;
    let element = chat_content(c).map_err(|reason| fail(&reason))?;
    let mut reply_context = ReplyContext::new();
    if let Some(sub_nick) = text(c, "sub_nick") {
        reply_context.insert("sub_nick".into(), sub_nick.to_owned());
    }
    // A missing or garbled send_time should not cost the buyer their message: fall back to the
    // frame's time, then to the clock the host passed in.
    let occurred_at = text(c, "send_time").and_then(parse_beijing_datetime).unwrap_or(fallback_time);
    Ok(InboundEvent {
        platform: PLATFORM.into(),
        shop: cx.shop.into(),
        event_id,
        buyer: Buyer { open_id, nick: text(c, "buyer_nick").map(str::to_owned) },
        occurred_at,
        kind: EventKind::BuyerMessage(BuyerMessage {
            conversation: None,
            content: vec![element],
            vip: VipHint::default(),
            reply_context,
        }),
    })
}

/// The one element a chat message carries. Unknown `msg_type`s keep their text so nothing a
/// buyer sent is dropped; an item or order message whose id cannot be found is undecodable.
fn chat_content(c: &Value) -> Result<Content, String> {
    let msg_type = text(c, "msg_type").unwrap_or("text");
    // `content` is text, but a rich message may carry its id there as a bare number.
    let body = match c.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let id_or_body = |key: &str| c.get(key).and_then(id_text).or_else(|| id_text(&Value::String(body.clone())));
    match msg_type {
        "text" => Ok(Content::text(body)),
        "image" if body.trim().is_empty() => Err("image message without a URL in content".into()),
        "image" => Ok(Content::image(body.trim())),
        "item" | "product" | "sku" => id_or_body("item_id")
            .map(|id| Content::product(id, None))
            .ok_or_else(|| "item message without item_id".to_owned()),
        "order" => id_or_body("tid").map(Content::order).ok_or_else(|| "order message without tid".to_owned()),
        other if body.trim().is_empty() => Ok(Content::text(format!("[不支持的消息类型: {other}]"))),
        _ => Ok(Content::text(body)),
    }
}

/// The buyer of a trade or refund message: `buyer_open_uid`, else `buyer_nick`.
fn trade_buyer(c: &Value) -> Option<Buyer> {
    let nick = text(c, "buyer_nick").map(str::to_owned);
    let open_id = c.get("buyer_open_uid").and_then(id_text).or_else(|| nick.clone())?;
    Some(Buyer { open_id, nick })
}

/// A `taobao_trade_*` message (public topic).
fn order(
    stage: OrderStage,
    c: &Value,
    event_id: String,
    occurred_at: Millis,
    cx: Context<'_>,
) -> Result<InboundEvent, Undecodable> {
    let fail = |reason: &str| Undecodable { reason: reason.to_owned(), event_id: Some(event_id.clone()) };
    let order_id =
        c.get("tid").and_then(id_text).ok_or_else(|| fail("trade message without an integer or text tid"))?;
    let buyer = trade_buyer(c).ok_or_else(|| fail("trade message without buyer_open_uid or buyer_nick"))?;
    let order = OrderEvent {
        stage,
        order_id,
        amount_fen: c.get("payment").and_then(amount_fen),
        status: text(c, "status").map(str::to_owned),
    };
    Ok(event(cx, event_id, buyer, occurred_at, EventKind::Order(order)))
}

/// A `taobao_refund_*` message (public topic).
fn refund(
    stage: RefundStage,
    c: &Value,
    event_id: String,
    occurred_at: Millis,
    cx: Context<'_>,
) -> Result<InboundEvent, Undecodable> {
    let fail = |reason: &str| Undecodable { reason: reason.to_owned(), event_id: Some(event_id.clone()) };
    let refund_id = c
        .get("refund_id")
        .and_then(id_text)
        .ok_or_else(|| fail("refund message without an integer or text refund_id"))?;
    let buyer = trade_buyer(c).ok_or_else(|| fail("refund message without buyer_open_uid or buyer_nick"))?;
    let refund = RefundEvent {
        stage,
        refund_id,
        order_id: c.get("tid").and_then(id_text),
        amount_fen: c.get("refund_fee").and_then(amount_fen),
    };
    Ok(event(cx, event_id, buyer, occurred_at, EventKind::Refund(refund)))
}

fn event(cx: Context<'_>, event_id: String, buyer: Buyer, occurred_at: Millis, kind: EventKind) -> InboundEvent {
    InboundEvent { platform: PLATFORM.into(), shop: cx.shop.into(), event_id, buyer, occurred_at, kind }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CX: Context<'static> = Context { shop: "s1", now: 1_700_000_000_000 };

    fn run(topic: Topic, content: &Value) -> Result<Option<InboundEvent>, Undecodable> {
        let text = content.to_string();
        decode(topic, &Message { id: 42, content: &text, outtime: None }, CX)
    }

    fn chat_element(content: Value) -> Result<Content, String> {
        chat_content(&content)
    }

    #[test]
    fn topics() {
        assert_eq!(Topic::of("taobao_qianniu_BuyerMessage", "taobao_qianniu_BuyerMessage"), Topic::Chat);
        assert_eq!(Topic::of("custom_chat", "custom_chat"), Topic::Chat);
        assert_eq!(Topic::of("taobao_qianniu_BuyerMessage", "custom_chat"), Topic::Unhandled);
        assert_eq!(Topic::of("taobao_trade_TradeSuccess", "x"), Topic::Order(OrderStage::Received));
        assert_eq!(Topic::of("taobao_refund_RefundSuccess", "x"), Topic::Refund(RefundStage::Succeeded));
        assert_eq!(Topic::of("taobao_item_ItemAdd", "x"), Topic::Unhandled);
    }

    #[test]
    fn chat_elements() {
        assert_eq!(chat_element(json!({"msg_type": "text", "content": "在吗"})), Ok(Content::text("在吗")));
        assert_eq!(chat_element(json!({"content": "no type"})), Ok(Content::text("no type")));
        assert_eq!(
            chat_element(json!({"msg_type": "image", "content": "https://x/1.jpg"})),
            Ok(Content::image("https://x/1.jpg"))
        );
        assert!(chat_element(json!({"msg_type": "image"})).is_err());
        assert_eq!(
            chat_element(json!({"msg_type": "item", "item_id": 9007199254740993u64, "content": "ignored"})),
            Ok(Content::product("9007199254740993", None))
        );
        assert_eq!(chat_element(json!({"msg_type": "item", "content": "123"})), Ok(Content::product("123", None)));
        assert!(chat_element(json!({"msg_type": "item"})).is_err());
        assert_eq!(chat_element(json!({"msg_type": "order", "tid": "77"})), Ok(Content::order("77")));
        assert!(chat_element(json!({"msg_type": "order", "tid": 1.5})).is_err());
        assert_eq!(chat_element(json!({"msg_type": "voice", "content": "v.amr"})), Ok(Content::text("v.amr")));
        assert_eq!(chat_element(json!({"msg_type": "voice"})), Ok(Content::text("[不支持的消息类型: voice]")));
    }

    #[test]
    fn unhandled_topics_decode_to_nothing_even_when_not_json() {
        let msg = Message { id: 1, content: "not json", outtime: None };
        assert_eq!(decode(Topic::Unhandled, &msg, CX), Ok(None));
    }

    #[test]
    fn chat_needs_msg_id_and_buyer() {
        let e = run(Topic::Chat, &json!({"buyer_open_uid": "b", "content": "x"})).unwrap_err();
        assert_eq!(e.event_id, None);
        let e = run(Topic::Chat, &json!({"msg_id": 5, "content": "x"})).unwrap_err();
        assert_eq!(e.event_id.as_deref(), Some("5"));
        assert!(e.reason.contains("buyer_open_uid"), "{}", e.reason);
    }

    #[test]
    fn trade_buyer_falls_back_to_nick_and_time_to_now() {
        let e = run(Topic::Order(OrderStage::Paid), &json!({"tid": 1, "buyer_nick": "张三"})).unwrap().unwrap();
        assert_eq!(e.buyer, Buyer { open_id: "张三".into(), nick: Some("张三".into()) });
        assert_eq!(e.event_id, "42");
        assert_eq!(e.occurred_at, CX.now);
        let e = run(Topic::Order(OrderStage::Paid), &json!({"tid": 1, "buyer_open_uid": "AAx", "buyer_nick": "n"}))
            .unwrap()
            .unwrap();
        assert_eq!(e.buyer.open_id, "AAx");
    }

    #[test]
    fn refund_needs_refund_id() {
        let e = run(Topic::Refund(RefundStage::Agreed), &json!({"tid": 1, "buyer_nick": "n"})).unwrap_err();
        assert_eq!(e.event_id.as_deref(), Some("42"));
        assert!(e.reason.contains("refund_id"));
    }

    #[test]
    fn non_object_content_is_undecodable() {
        for content in ["[1]", "\"x\"", "{", ""] {
            let msg = Message { id: 3, content, outtime: None };
            assert!(decode(Topic::Chat, &msg, CX).is_err(), "{content}");
        }
    }
}
