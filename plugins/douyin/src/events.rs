//! One push unit's `data` → a normalized event.
//!
//! - **Chat** (tag `chat_tag`, MODELED, PROTOCOLS.md §2.3): `msg_id`, `buyer_open_id`,
//!   `buyer_nick`, `conversation_id`, `msg_type` (`text|image|product|order`), `content`,
//!   `product_id`, `order_id`, `create_time` (Unix s), `fans_level`. The event id is the chat
//!   `msg_id`, or the envelope `msg_id` when the data has none.
//! - **Orders** (tags 100 created, 101 paid, 103 receipt confirmed) and **refunds** (200
//!   requested, 201 agreed): the tags are public (§2.2); PROTOCOLS.md does not specify their
//!   `data`, so the fields read here follow Douyin's public message docs as far as known and
//!   are **best-effort**: order id `p_id` (else `order_id`); amount `pay_amount` (fen); status
//!   `order_status`; time `create_time` / `pay_time` / `complete_time` by tag, else
//!   `update_time`; refund id `aftersale_id`, its order `p_id` (else `order_id`, `s_id`),
//!   amount `refund_amount` (fen), time `apply_time` / `agree_time` by tag, else `update_time`.
//!   The buyer is `buyer_open_id` (else `doudian_open_id`) with `buyer_nick`. The event id is
//!   the envelope `msg_id`.
//!
//! A unit missing what the gateway cannot do without (an event id, the buyer, the order or
//! refund id) is an [`Undecodable`] the caller dead-letters. Optional fields that are absent or
//! unreadable are left out; a missing time falls back to `now`.

use huiliu_sdk::{
    Buyer, BuyerMessage, Content, EventKind, InboundEvent, Millis, OrderEvent, OrderStage, RefundEvent, RefundStage,
    ReplyContext, VipHint,
};
use serde_json::Value;

use crate::json::{Object, fen, field, id_text, level, non_empty, text_of, time_ms};
use crate::outgoing::CONVERSATION_KEY;

/// The platform name events carry.
pub const PLATFORM: &str = "douyin";

/// What a push tag means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagKind {
    /// Tag `"0"`: the platform checking the push URL; answered with success, nothing stored.
    AddressCheck,
    Chat,
    Order(OrderStage),
    Refund(RefundStage),
    /// Any other tag: the shop subscribed to more than this connector understands. Ignored.
    Unknown,
}

impl TagKind {
    pub fn of(tag: &str, chat_tag: &str) -> TagKind {
        match tag {
            "0" => TagKind::AddressCheck,
            t if t == chat_tag => TagKind::Chat,
            "100" => TagKind::Order(OrderStage::Created),
            "101" => TagKind::Order(OrderStage::Paid),
            "103" => TagKind::Order(OrderStage::Received),
            "200" => TagKind::Refund(RefundStage::Requested),
            "201" => TagKind::Refund(RefundStage::Agreed),
            _ => TagKind::Unknown,
        }
    }
}

/// Why a unit could not become an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undecodable(pub String);

/// One unit, after the envelope was read.
#[derive(Debug)]
pub struct Unit<'a> {
    pub shop: &'a str,
    /// The envelope's `msg_id`, when readable.
    pub envelope_id: Option<String>,
    pub data: &'a Object,
    pub now: Millis,
}

impl Unit<'_> {
    fn get(&self, names: &[&str]) -> Option<&Value> {
        field(self.data, names)
    }

    fn id(&self, names: &[&str]) -> Option<String> {
        self.get(names).and_then(id_text)
    }

    fn time(&self, names: &[&str]) -> Millis {
        names.iter().find_map(|n| self.get(&[n]).and_then(time_ms)).unwrap_or(self.now)
    }

    fn buyer(&self) -> Result<Buyer, Undecodable> {
        let open_id = self
            .id(&["buyer_open_id", "doudian_open_id"])
            .ok_or_else(|| Undecodable("no buyer: `buyer_open_id` is missing".into()))?;
        Ok(Buyer { open_id, nick: self.get(&["buyer_nick"]).and_then(non_empty) })
    }

    fn envelope_id(&self) -> Result<String, Undecodable> {
        self.envelope_id.clone().ok_or_else(|| Undecodable("no event id: the envelope `msg_id` is missing".into()))
    }

    fn event(&self, event_id: String, buyer: Buyer, occurred_at: Millis, kind: EventKind) -> InboundEvent {
        InboundEvent { platform: PLATFORM.into(), shop: self.shop.into(), event_id, buyer, occurred_at, kind }
    }
}

/// The order id of an order or refund unit that names no buyer (real Douyin trade messages
/// carry none; `order.orderDetail` does), else `None`.
pub fn needs_buyer(unit: &Unit<'_>, kind: TagKind) -> Option<String> {
    if !matches!(kind, TagKind::Order(_) | TagKind::Refund(_))
        || unit.id(&["buyer_open_id", "doudian_open_id"]).is_some()
    {
        return None;
    }
    unit.id(&["p_id", "order_id"])
}

/// Decodes the unit as `kind` (which must be an event kind, not a check or unknown tag).
pub fn decode(unit: &Unit<'_>, kind: TagKind) -> Result<Option<InboundEvent>, Undecodable> {
    match kind {
        TagKind::AddressCheck | TagKind::Unknown => Ok(None),
        TagKind::Chat => chat(unit).map(Some),
        TagKind::Order(stage) => order(unit, stage).map(Some),
        TagKind::Refund(stage) => refund(unit, stage).map(Some),
    }
}

fn chat(unit: &Unit<'_>) -> Result<InboundEvent, Undecodable> {
    let event_id = unit
        .id(&["msg_id"])
        .or_else(|| unit.envelope_id.clone())
        .ok_or_else(|| Undecodable("no event id: neither `data.msg_id` nor the envelope `msg_id`".into()))?;
    let buyer = unit.buyer()?;
    let conversation = unit.id(&["conversation_id"]);
    let reply_context: ReplyContext = conversation.iter().map(|c| (CONVERSATION_KEY.to_owned(), c.clone())).collect();
    let message = BuyerMessage {
        conversation,
        content: vec![chat_content(unit)],
        vip: VipHint { member_level: 0, fans_level: level(unit.get(&["fans_level"])) },
        reply_context,
    };
    Ok(unit.event(event_id, buyer, unit.time(&["create_time"]), EventKind::BuyerMessage(message)))
}

/// The element a chat message carries. A card without its id, or a type this connector does
/// not know, becomes text (the raw `content`, else `[<msg_type>]`) so the message still reaches
/// an agent.
fn chat_content(unit: &Unit<'_>) -> Content {
    let text = unit.get(&["content"]).and_then(text_of);
    let msg_type = unit.get(&["msg_type"]).and_then(non_empty).unwrap_or_else(|| "text".into());
    let fallback = || match text.as_deref().map(str::trim) {
        Some(t) if !t.is_empty() => Content::text(t),
        _ => Content::text(format!("[{msg_type}]")),
    };
    match msg_type.as_str() {
        "text" => Content::text(text.clone().unwrap_or_default()),
        "image" => match text.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            Some(url) => Content::image(url),
            None => fallback(),
        },
        "product" => unit.id(&["product_id"]).map_or_else(fallback, |id| Content::product(id, None)),
        "order" => unit.id(&["order_id"]).map_or_else(fallback, Content::order),
        _ => fallback(),
    }
}

fn order(unit: &Unit<'_>, stage: OrderStage) -> Result<InboundEvent, Undecodable> {
    let event_id = unit.envelope_id()?;
    let order_id = unit.id(&["p_id", "order_id"]).ok_or_else(|| Undecodable("order message has no `p_id`".into()))?;
    let buyer = unit.buyer()?;
    let time_field = match stage {
        OrderStage::Paid => "pay_time",
        OrderStage::Received => "complete_time",
        _ => "create_time",
    };
    let event = OrderEvent {
        stage,
        order_id,
        amount_fen: unit.get(&["pay_amount"]).and_then(fen),
        status: unit.get(&["order_status"]).and_then(text_of),
    };
    Ok(unit.event(event_id, buyer, unit.time(&[time_field, "update_time"]), EventKind::Order(event)))
}

fn refund(unit: &Unit<'_>, stage: RefundStage) -> Result<InboundEvent, Undecodable> {
    let event_id = unit.envelope_id()?;
    let refund_id =
        unit.id(&["aftersale_id"]).ok_or_else(|| Undecodable("refund message has no `aftersale_id`".into()))?;
    let buyer = unit.buyer()?;
    let time_field = match stage {
        RefundStage::Agreed => "agree_time",
        _ => "apply_time",
    };
    let event = RefundEvent {
        stage,
        refund_id,
        order_id: unit.id(&["p_id", "order_id", "s_id"]),
        amount_fen: unit.get(&["refund_amount"]).and_then(fen),
    };
    Ok(unit.event(event_id, buyer, unit.time(&[time_field, "update_time"]), EventKind::Refund(event)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decode_json(data: Value, kind: TagKind) -> Result<Option<InboundEvent>, Undecodable> {
        let obj = data.as_object().cloned().unwrap_or_default();
        decode(&Unit { shop: "s1", envelope_id: Some("env-1".into()), data: &obj, now: 42 }, kind)
    }

    #[test]
    fn tags() {
        assert_eq!(TagKind::of("0", "9001"), TagKind::AddressCheck);
        assert_eq!(TagKind::of("9001", "9001"), TagKind::Chat);
        assert_eq!(TagKind::of("777", "777"), TagKind::Chat);
        assert_eq!(TagKind::of("9001", "777"), TagKind::Unknown);
        assert_eq!(TagKind::of("103", "9001"), TagKind::Order(OrderStage::Received));
        assert_eq!(TagKind::of("201", "9001"), TagKind::Refund(RefundStage::Agreed));
        assert_eq!(TagKind::of("102", "9001"), TagKind::Unknown);
    }

    #[test]
    fn chat_text_with_everything() {
        let event = decode_json(
            json!({"msg_id": "m1", "buyer_open_id": "b1", "buyer_nick": "小王", "conversation_id": "c1",
                   "msg_type": "text", "content": "在吗", "create_time": 1_700_000_000, "fans_level": 2}),
            TagKind::Chat,
        )
        .unwrap()
        .unwrap();
        assert_eq!(event.event_id, "m1");
        assert_eq!(event.buyer, Buyer { open_id: "b1".into(), nick: Some("小王".into()) });
        assert_eq!(event.occurred_at, 1_700_000_000_000);
        let EventKind::BuyerMessage(m) = event.kind else { panic!() };
        assert_eq!(m.conversation.as_deref(), Some("c1"));
        assert_eq!(m.content, vec![Content::text("在吗")]);
        assert_eq!(m.vip.fans_level, 2);
        assert_eq!(m.reply_context.get(CONVERSATION_KEY).map(String::as_str), Some("c1"));
    }

    #[test]
    fn chat_falls_back_to_the_envelope_id_and_now() {
        let event = decode_json(json!({"buyer_open_id": "b1", "content": "hi"}), TagKind::Chat).unwrap().unwrap();
        assert_eq!((event.event_id.as_str(), event.occurred_at), ("env-1", 42));
    }

    #[test]
    fn chat_cards_without_ids_and_unknown_types_become_text() {
        let content = |data: Value| {
            let event = decode_json(data, TagKind::Chat).unwrap().unwrap();
            let EventKind::BuyerMessage(m) = event.kind else { panic!() };
            m.content
        };
        let b = |extra: Value| {
            let mut data = json!({"buyer_open_id": "b1"});
            data.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            data
        };
        assert_eq!(content(b(json!({"msg_type": "product"}))), vec![Content::text("[product]")]);
        assert_eq!(content(b(json!({"msg_type": "order", "content": "订单"}))), vec![Content::text("订单")]);
        assert_eq!(content(b(json!({"msg_type": "image", "content": ""}))), vec![Content::text("[image]")]);
        assert_eq!(
            content(b(json!({"msg_type": "video", "content": {"vid": 1}}))),
            vec![Content::text(r#"{"vid":1}"#)]
        );
        assert_eq!(
            content(b(json!({"msg_type": "order", "order_id": 6918000000000000001_u64}))),
            vec![Content::order("6918000000000000001")]
        );
    }

    #[test]
    fn required_fields() {
        assert!(decode_json(json!({"content": "hi"}), TagKind::Chat).is_err());
        assert!(decode_json(json!({"buyer_open_id": "b"}), TagKind::Order(OrderStage::Paid)).is_err());
        assert!(decode_json(json!({"p_id": 1}), TagKind::Order(OrderStage::Paid)).is_err());
        assert!(decode_json(json!({"buyer_open_id": "b", "p_id": 1}), TagKind::Refund(RefundStage::Agreed)).is_err());
        let obj = json!({"buyer_open_id": "b", "p_id": 1});
        let unit = Unit { shop: "s1", envelope_id: None, data: obj.as_object().unwrap(), now: 0 };
        assert!(decode(&unit, TagKind::Order(OrderStage::Created)).is_err(), "orders need the envelope id");
    }

    #[test]
    fn ignored_kinds_decode_to_nothing() {
        assert_eq!(decode_json(json!({}), TagKind::AddressCheck), Ok(None));
        assert_eq!(decode_json(json!({}), TagKind::Unknown), Ok(None));
    }
}
