//! Decoding one business message (stream packet 202) into a normalized event.
//!
//! Buyer chat is MODELED (PROTOCOLS.md §3.3): a message whose `type` is the shop's `chat_type`
//! (default `dd_chat`) carries `msg_id`, `sid`, `customer_open_id`, `customer_nick`, `waiter`,
//! `msg_type` (`text` | `image` | `sku` | `order`), `content`, `sku_id`, `order_id`, `time` (ms)
//! and `vip_level`. `msg` may be the object itself or a JSON string of it.
//!
//! Order and refund messages are not specified by PROTOCOLS.md either: they are modeled with
//! configurable type names like the chat type ([`crate::trade`]). Any other business type is
//! reported as ignored (a status line the host logs) rather than guessed at. A chat message that cannot be read
//! becomes a dead letter: it came over the authenticated stream, and a redelivery would fail the
//! same way.

use huiliu_sdk::time::parse_beijing_datetime;
use huiliu_sdk::{Buyer, BuyerMessage, Content, DeadLetter, EventKind, InboundEvent, Millis, ReplyContext, VipHint};
use serde_json::{Map, Value};

use crate::json::{id_text, int, text};
use crate::outgoing::{IMAGE, ORDER, SKU, TEXT, WAITER_CONTEXT_KEY};

/// The platform name events carry.
pub const PLATFORM: &str = "jd";

/// What became of one business message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Business {
    Event(Box<InboundEvent>),
    Dead(DeadLetter),
    /// A well-formed message of a type this connector does not map.
    Ignored {
        kind: String,
        id: Option<String>,
    },
}

/// Who the events are for and which business type is chat.
#[derive(Debug, Clone, Copy)]
pub struct ChatScope<'a> {
    pub shop_id: &'a str,
    pub chat_type: &'a str,
    /// Business `type` prefixes of order and refund messages (modeled; see [`crate::trade`]).
    pub order_prefix: &'a str,
    pub refund_prefix: &'a str,
}

/// Decodes the `msg` of a 202 packet; `raw` is the whole packet line, kept for dead letters.
pub fn decode_business(msg: Option<&Value>, raw: &[u8], scope: ChatScope<'_>, now: Millis) -> Business {
    let dead =
        |reason: String, event_id: Option<String>| Business::Dead(DeadLetter { reason, event_id, raw: raw.to_vec() });
    let parsed;
    let obj = match msg {
        Some(Value::Object(obj)) => obj,
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(obj)) => {
                parsed = obj;
                &parsed
            }
            _ => return dead("business message `msg` is a string but not a JSON object".into(), None),
        },
        Some(_) => return dead("business message `msg` is neither an object nor a JSON string".into(), None),
        None => return dead("business packet without `msg`".into(), None),
    };
    let id = obj.get("msg_id").and_then(id_text);
    let Some(kind) = obj.get("type").and_then(text).filter(|t| !t.is_empty()) else {
        return dead("business message without `type`".into(), id);
    };
    if kind != scope.chat_type {
        return match crate::trade::trade_type(&kind, scope.order_prefix, scope.refund_prefix) {
            Some(trade) => match crate::trade::decode(obj, trade, PLATFORM, scope.shop_id, now) {
                Ok(event) => Business::Event(Box::new(event)),
                Err(reason) => dead(reason, id),
            },
            None => Business::Ignored { kind, id },
        };
    }
    match decode_chat(obj, scope.shop_id, now) {
        Ok(event) => Business::Event(Box::new(event)),
        Err(reason) => dead(reason, id),
    }
}

/// A chat message, or why it cannot be read.
fn decode_chat(obj: &Map<String, Value>, shop_id: &str, now: Millis) -> Result<InboundEvent, String> {
    let event_id = obj.get("msg_id").and_then(id_text).ok_or("chat message without a usable `msg_id`")?;
    let open_id =
        obj.get("customer_open_id").and_then(id_text).ok_or("chat message without a usable `customer_open_id`")?;
    let nick = obj.get("customer_nick").and_then(text).filter(|n| !n.is_empty());
    let occurred_at = occurred_at(obj.get("time"), now)?;
    let content = chat_content(obj)?;

    let mut reply_context = ReplyContext::new();
    if let Some(waiter) = obj.get("waiter").and_then(text).filter(|w| !w.is_empty()) {
        reply_context.insert(WAITER_CONTEXT_KEY.to_owned(), waiter);
    }
    let member_level = obj.get("vip_level").and_then(int).map_or(0, |l| u32::try_from(l.max(0)).unwrap_or(u32::MAX));

    Ok(InboundEvent {
        platform: PLATFORM.to_owned(),
        shop: shop_id.to_owned(),
        event_id,
        buyer: Buyer { open_id, nick },
        occurred_at,
        kind: EventKind::BuyerMessage(BuyerMessage {
            conversation: obj.get("sid").and_then(id_text),
            content: vec![content],
            vip: VipHint { member_level, fans_level: 0 },
            reply_context,
        }),
    })
}

/// `time` in epoch ms (number or numeric string; a Beijing date-time is accepted too);
/// absent means "now", when the host received it.
fn occurred_at(time: Option<&Value>, now: Millis) -> Result<Millis, String> {
    match time {
        None | Some(Value::Null) => Ok(now),
        Some(v) => int(v)
            .or_else(|| v.as_str().and_then(parse_beijing_datetime))
            .ok_or_else(|| format!("chat message `time` is not epoch milliseconds: {v}")),
    }
}

/// The message element for `msg_type`.
fn chat_content(obj: &Map<String, Value>) -> Result<Content, String> {
    let msg_type = obj.get("msg_type").and_then(text).unwrap_or_else(|| TEXT.to_owned());
    let content = obj.get("content").and_then(text);
    let non_empty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
    match msg_type.as_str() {
        TEXT => content.map(Content::text).ok_or_else(|| "text message without `content`".to_owned()),
        IMAGE => non_empty(content).map(Content::image).ok_or_else(|| "image message without a URL".to_owned()),
        SKU => obj
            .get("sku_id")
            .and_then(id_text)
            .map(|id| Content::product(id, None))
            .ok_or_else(|| "sku message without a usable `sku_id`".to_owned()),
        ORDER => obj
            .get("order_id")
            .and_then(id_text)
            .map(Content::order)
            .ok_or_else(|| "order message without a usable `order_id`".to_owned()),
        // A type JD added later still reaches an agent, as its text or a visible marker.
        other => Ok(Content::text(non_empty(content).unwrap_or_else(|| format!("[不支持的消息类型: {other}]")))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const SCOPE: ChatScope<'static> =
        ChatScope { shop_id: "shop-1", chat_type: "dd_chat", order_prefix: "order_", refund_prefix: "refund_" };
    const NOW: Millis = 1_700_000_000_000;

    fn decode(msg: Value) -> Business {
        decode_business(Some(&msg), b"raw", SCOPE, NOW)
    }

    fn event(msg: Value) -> InboundEvent {
        match decode(msg) {
            Business::Event(e) => *e,
            other => panic!("not an event: {other:?}"),
        }
    }

    fn message(e: &InboundEvent) -> &BuyerMessage {
        match &e.kind {
            EventKind::BuyerMessage(m) => m,
            other => panic!("not a buyer message: {other:?}"),
        }
    }

    #[test]
    fn full_text_message() {
        let e = event(json!({"type":"dd_chat","msg_id":"m1","sid":"s1","customer_open_id":"c1","customer_nick":"小王",
            "waiter":"jd_waiter","msg_type":"text","content":"在吗","time":1700000001234_i64,"vip_level":3}));
        assert_eq!((e.platform.as_str(), e.shop.as_str(), e.event_id.as_str()), ("jd", "shop-1", "m1"));
        assert_eq!(e.buyer, Buyer { open_id: "c1".into(), nick: Some("小王".into()) });
        assert_eq!(e.occurred_at, 1_700_000_001_234);
        let m = message(&e);
        assert_eq!(m.conversation.as_deref(), Some("s1"));
        assert_eq!(m.content, [Content::text("在吗")]);
        assert_eq!(m.vip.member_level, 3);
        assert_eq!(m.reply_context.get("waiter").map(String::as_str), Some("jd_waiter"));
    }

    #[test]
    fn rich_types() {
        let base = json!({"type":"dd_chat","msg_id":1,"customer_open_id":"c"});
        let with = |extra: Value| {
            let mut v = base.clone();
            if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
                o.extend(e);
            }
            message(&event(v)).content.clone()
        };
        assert_eq!(
            with(json!({"msg_type":"image","content":"https://img/x.jpg"})),
            [Content::image("https://img/x.jpg")]
        );
        assert_eq!(with(json!({"msg_type":"sku","sku_id":100012043978_u64})), [Content::product("100012043978", None)]);
        assert_eq!(
            with(json!({"msg_type":"order","order_id":"9007199254740993"})),
            [Content::order("9007199254740993")]
        );
        assert_eq!(with(json!({"msg_type":"video","content":"https://v/x.mp4"})), [Content::text("https://v/x.mp4")]);
        assert_eq!(with(json!({"msg_type":"video"})), [Content::text("[不支持的消息类型: video]")]);
    }

    #[test]
    fn string_msg_and_optional_fields_absent() {
        let e =
            event(Value::String(r#"{"type":"dd_chat","msg_id":"m2","customer_open_id":"c","content":"hi"}"#.into()));
        assert_eq!(e.occurred_at, NOW);
        assert_eq!(e.buyer.nick, None);
        let m = message(&e);
        assert_eq!((m.conversation.clone(), m.vip.member_level, m.reply_context.len()), (None, 0, 0));
    }

    #[test]
    fn unreadable_chat_is_a_dead_letter_with_its_id() {
        let Business::Dead(d) = decode(json!({"type":"dd_chat","msg_id":"m3","msg_type":"sku","customer_open_id":"c"}))
        else {
            panic!("not dead")
        };
        assert_eq!(d.event_id.as_deref(), Some("m3"));
        assert!(d.reason.contains("sku_id"));
        assert_eq!(d.raw, b"raw");
        assert!(matches!(decode(json!({"type":"dd_chat","customer_open_id":"c"})), Business::Dead(_)));
        assert!(matches!(
            decode(json!({"type":"dd_chat","msg_id":"m","customer_open_id":"c","content":"x","time":"soon"})),
            Business::Dead(_)
        ));
        assert!(matches!(decode(json!("not json")), Business::Dead(_)));
        assert!(matches!(decode(json!([1])), Business::Dead(_)));
        assert!(matches!(decode_business(None, b"", SCOPE, NOW), Business::Dead(_)));
    }

    #[test]
    fn other_types_are_ignored_by_name() {
        assert_eq!(
            decode(json!({"type":"ORDER_CREATE","msg_id":"o1"})),
            Business::Ignored { kind: "ORDER_CREATE".into(), id: Some("o1".into()) }
        );
    }

    #[test]
    fn vip_level_is_clamped() {
        let base = |l: Value| json!({"type":"dd_chat","msg_id":"m","customer_open_id":"c","content":"x","vip_level":l});
        assert_eq!(message(&event(base(json!(-1)))).vip.member_level, 0);
        assert_eq!(message(&event(base(json!(99999999999_i64)))).vip.member_level, u32::MAX);
        assert_eq!(message(&event(base(json!("2")))).vip.member_level, 2);
    }
}
