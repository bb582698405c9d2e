//! Order and refund business messages on the stream — **MODELED**: JD does not publish the
//! stream payloads of its order and refund messages (PROTOCOLS.md §3 names none), so, like the
//! chat type, their names are configuration: a business `type` of `order_type_prefix` + stage
//! (`order_created`, `order_paid`, `order_shipped`, `order_received`, `order_closed` by default)
//! or `refund_type_prefix` + stage (`refund_requested`, `refund_agreed`, `refund_succeeded`,
//! `refund_closed`). The fields read: `msg_id` (the event id), `order_id`, `customer_open_id`,
//! `customer_nick`, `amount` (yuan, a decimal string or number, read exactly into fen), `time`
//! (ms), `status`, and for refunds `refund_id`.

use huiliu_sdk::{Buyer, EventKind, InboundEvent, Millis, OrderEvent, OrderStage, RefundEvent, RefundStage};
use serde_json::{Map, Value};

use crate::json::{id_text, int, text};

/// Which trade event a business `type` names, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradeType {
    Order(OrderStage),
    Refund(RefundStage),
}

/// The trade event named by `kind` under the configured prefixes.
pub fn trade_type(kind: &str, order_prefix: &str, refund_prefix: &str) -> Option<TradeType> {
    if let Some(stage) = kind.strip_prefix(order_prefix) {
        return Some(TradeType::Order(match stage {
            "created" => OrderStage::Created,
            "paid" => OrderStage::Paid,
            "shipped" => OrderStage::Shipped,
            "received" => OrderStage::Received,
            "closed" => OrderStage::Closed,
            _ => return None,
        }));
    }
    let stage = kind.strip_prefix(refund_prefix)?;
    Some(TradeType::Refund(match stage {
        "requested" => RefundStage::Requested,
        "agreed" => RefundStage::Agreed,
        "succeeded" => RefundStage::Succeeded,
        "closed" => RefundStage::Closed,
        _ => return None,
    }))
}

/// Decodes an order or refund message, or says why it cannot be read.
/// `platform` is the platform name events carry.
pub fn decode(
    obj: &Map<String, Value>,
    trade: TradeType,
    platform: &str,
    shop_id: &str,
    now: Millis,
) -> Result<InboundEvent, String> {
    let event_id = obj.get("msg_id").and_then(id_text).ok_or("trade message without a usable `msg_id`")?;
    let open_id =
        obj.get("customer_open_id").and_then(id_text).ok_or("trade message without a usable `customer_open_id`")?;
    let nick = obj.get("customer_nick").and_then(text).filter(|n| !n.is_empty());
    let order_id = obj.get("order_id").and_then(id_text);
    let amount_fen = match obj.get("amount") {
        None | Some(Value::Null) => None,
        Some(v) => Some(fen(v).ok_or_else(|| format!("trade message `amount` is not a yuan amount: {v}"))?),
    };
    let occurred_at = match obj.get("time") {
        None | Some(Value::Null) => now,
        Some(v) => int(v).ok_or_else(|| format!("trade message `time` is not epoch milliseconds: {v}"))?,
    };
    let kind = match trade {
        TradeType::Order(stage) => EventKind::Order(OrderEvent {
            stage,
            order_id: order_id.ok_or("order message without a usable `order_id`")?,
            amount_fen,
            status: obj.get("status").and_then(text),
        }),
        TradeType::Refund(stage) => EventKind::Refund(RefundEvent {
            stage,
            refund_id: obj.get("refund_id").and_then(id_text).ok_or("refund message without a usable `refund_id`")?,
            order_id,
            amount_fen,
        }),
    };
    Ok(InboundEvent {
        platform: platform.into(),
        shop: shop_id.into(),
        event_id,
        buyer: Buyer { open_id, nick },
        occurred_at,
        kind,
    })
}

/// Yuan as a decimal string (`"129.00"`, `"5"`, `"0.5"`) or an integer number, exactly in fen;
/// no floats, at most two decimals.
fn fen(value: &Value) -> Option<i64> {
    let s = match value {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) if n.is_i64() => return n.as_i64()?.checked_mul(100),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let (negative, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.as_str()),
    };
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() || frac.len() > 2 || !whole.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac = format!("{frac:0<2}");
    let fen = whole.parse::<i64>().ok()?.checked_mul(100)?.checked_add(frac.parse::<i64>().ok()?)?;
    Some(if negative { -fen } else { fen })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn types_by_prefix_and_stage() {
        assert_eq!(trade_type("order_paid", "order_", "refund_"), Some(TradeType::Order(OrderStage::Paid)));
        assert_eq!(
            trade_type("refund_succeeded", "order_", "refund_"),
            Some(TradeType::Refund(RefundStage::Succeeded))
        );
        assert_eq!(trade_type("order_lost", "order_", "refund_"), None);
        assert_eq!(trade_type("dd_chat", "order_", "refund_"), None);
        assert_eq!(trade_type("jos_order_paid", "jos_order_", "jos_refund_"), Some(TradeType::Order(OrderStage::Paid)));
    }

    #[test]
    fn an_order_and_a_refund_decode_exactly() {
        let order = obj(json!({"type": "order_paid", "msg_id": "t-1", "order_id": 300012345678901234_i64,
            "customer_open_id": "buyer-9", "amount": "129.50", "time": 1_700_000_000_000_i64}));
        let e = decode(&order, TradeType::Order(OrderStage::Paid), "jd", "jd-1", 0).unwrap();
        assert_eq!(
            (e.event_id.as_str(), e.buyer.open_id.as_str(), e.occurred_at),
            ("t-1", "buyer-9", 1_700_000_000_000)
        );
        let EventKind::Order(o) = e.kind else { panic!() };
        assert_eq!((o.order_id.as_str(), o.amount_fen), ("300012345678901234", Some(12_950)));
        let refund = obj(json!({"msg_id": "t-2", "order_id": "3000", "refund_id": 77, "customer_open_id": "b",
            "amount": 5}));
        let e = decode(&refund, TradeType::Refund(RefundStage::Requested), "jd", "jd-1", 9).unwrap();
        let EventKind::Refund(r) = e.kind else { panic!() };
        assert_eq!(
            (r.refund_id.as_str(), r.order_id.as_deref(), r.amount_fen, e.occurred_at),
            ("77", Some("3000"), Some(500), 9)
        );
    }

    #[test]
    fn what_cannot_be_read_says_why() {
        let t = TradeType::Order(OrderStage::Paid);
        assert!(
            decode(&obj(json!({"order_id": "1", "customer_open_id": "b"})), t, "jd", "s", 0)
                .unwrap_err()
                .contains("msg_id")
        );
        assert!(
            decode(&obj(json!({"msg_id": "m", "order_id": "1"})), t, "jd", "s", 0)
                .unwrap_err()
                .contains("customer_open_id")
        );
        assert!(
            decode(&obj(json!({"msg_id": "m", "customer_open_id": "b"})), t, "jd", "s", 0)
                .unwrap_err()
                .contains("order_id")
        );
        let bad_amount = obj(json!({"msg_id": "m", "order_id": "1", "customer_open_id": "b", "amount": "1.234"}));
        assert!(decode(&bad_amount, t, "jd", "s", 0).unwrap_err().contains("amount"));
        let refund = TradeType::Refund(RefundStage::Agreed);
        assert!(
            decode(&obj(json!({"msg_id": "m", "customer_open_id": "b"})), refund, "jd", "s", 0)
                .unwrap_err()
                .contains("refund_id")
        );
    }

    #[test]
    fn yuan_to_fen_without_floats() {
        for (v, want) in [
            (json!("129.00"), Some(12_900)),
            (json!("0.5"), Some(50)),
            (json!("-3.10"), Some(-310)),
            (json!(7), Some(700)),
            (json!("1e3"), None),
            (json!("."), None),
            (json!(true), None),
        ] {
            assert_eq!(fen(&v), want, "{v}");
        }
    }
}
