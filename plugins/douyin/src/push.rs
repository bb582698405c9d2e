//! Verifying and splitting a Douyin push (public convention, PROTOCOLS.md §2.2).
//!
//! Order of checks, each refusing before anything is parsed:
//!
//! | check                                       | refusal        | answer |
//! |---------------------------------------------|----------------|--------|
//! | method is `POST`                            | `Malformed`    | 400    |
//! | body ≤ 1 MiB                                | `TooLarge`     | 413    |
//! | `app-id` and `event-sign` headers present   | `Malformed`    | 400    |
//! | `app-id` equals the shop's `app_key`        | `WrongApp`     | 401    |
//! | `event-sign` = MD5(app_key + body + secret) | `BadSignature` | 401    |
//!
//! Every refusal answers with the platform's failure body `{"code":1,"msg":"fail"}`: Douyin
//! retries anything but success, and a forged or misrouted push must never be acknowledged.
//! The non-200 statuses are this connector's choice (Douyin only looks at the body), so that
//! refusals stand out in access logs.
//!
//! An authentic body is a JSON array of `{"tag","msg_id","data":"<JSON string>"}` units (a
//! `data` object is accepted too). Each unit decodes on its own: a unit that cannot be read is
//! a dead letter with its exact raw bytes, and the other units still decode. A body that is not
//! an array at all is one dead letter. Tag `"0"` (the platform's address check), unknown tags and
//! tags acknowledged without an event are reported as ignored units. The acknowledgement is
//! `{"code":0,"msg":"success"}`, the negative acknowledgement (storage failed, please redeliver)
//! `{"code":1,"msg":"fail"}`, both HTTP 200.

use huiliu_sdk::crypto::signature_eq;
use huiliu_sdk::{
    DeadLetter, HttpPush, HttpRequest, HttpResponse, IgnoredUnit, InboundEvent, Lookup, LookupOutcome, Millis,
    PushOutcome, RejectKind, SendOutcome, header,
};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::config::Settings;
use crate::events::{self, TagKind, Undecodable, Unit};
use crate::json::{Object, id_text};
use crate::openapi::ApiReply;
use crate::sign::push_sign;

/// The largest body accepted. Douyin batches a handful of small messages per push.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// The acknowledgement Douyin expects, byte for byte.
pub const ACK_BODY: &str = r#"{"code":0,"msg":"success"}"#;
/// The failure answer that makes Douyin redeliver.
pub const FAIL_BODY: &str = r#"{"code":1,"msg":"fail"}"#;

pub const APP_ID_HEADER: &str = "app-id";
pub const SIGN_HEADER: &str = "event-sign";

/// Verifies and decodes one push. An order or refund unit that names no buyer (real Douyin
/// trade messages carry none) becomes a lookup built by `order_lookup` (the signed
/// `order.orderDetail` call for the order id), or a dead letter when it returns `None` (no
/// access token).
pub fn decode_push(
    settings: &Settings,
    push: &HttpPush,
    now: Millis,
    order_lookup: &dyn Fn(&str) -> Option<HttpRequest>,
) -> PushOutcome {
    if let Err((kind, reason)) = verify(settings, push) {
        return PushOutcome::Rejected { kind, reason, response: HttpResponse::json(refusal_status(kind), FAIL_BODY) };
    }
    let (events, dead_letters, lookups, ignored) = decode_body(settings, &push.body, now, order_lookup);
    PushOutcome::Accepted {
        events,
        dead_letters,
        ack: HttpResponse::json(200, ACK_BODY),
        nack: HttpResponse::json(200, FAIL_BODY),
        ignored,
        lookups,
    }
}

/// Finishes a unit whose buyer an `order.orderDetail` answer names: `raw` is the unit as
/// pushed (the lookup's context).
pub fn complete_lookup(settings: &Settings, raw: &[u8], response: &HttpResponse, now: Millis) -> LookupOutcome {
    let buyer = match crate::classify::classify_send(response) {
        SendOutcome::Delivered { .. } => ApiReply::parse(&response.body).and_then(|r| order_buyer(r.data.as_ref())),
        SendOutcome::Permanent { error } => {
            return LookupOutcome::Failed { reason: format!("order.orderDetail refused: {error}") };
        }
        SendOutcome::Retryable { error }
        | SendOutcome::RateLimited { error, .. }
        | SendOutcome::TokenExpired { error } => {
            return LookupOutcome::Retry { reason: format!("order.orderDetail: {error}") };
        }
    };
    let Some(buyer) = buyer else {
        return LookupOutcome::Failed { reason: "the order detail names no buyer (`doudian_open_id`)".into() };
    };
    let raw = String::from_utf8_lossy(raw);
    match decode_unit(settings, &raw, now, Some(&buyer)) {
        Ok(Decoded::Event(event)) => LookupOutcome::Complete { events: vec![event] },
        Ok(Decoded::Ignored(_)) => LookupOutcome::Complete { events: Vec::new() },
        Ok(Decoded::NeedsBuyer { .. }) => LookupOutcome::Failed { reason: "the buyer could not be added".into() },
        Err((Undecodable(reason), _)) => LookupOutcome::Failed { reason },
    }
}

/// The buyer of `order.orderDetail`'s `data` (`shop_order_detail.doudian_open_id`).
fn order_buyer(data: Option<&Value>) -> Option<String> {
    let data = data?;
    let detail = data.get("shop_order_detail").unwrap_or(data);
    detail.get("doudian_open_id").and_then(id_text).filter(|b| !b.is_empty())
}

fn refusal_status(kind: RejectKind) -> u16 {
    match kind {
        RejectKind::BadSignature | RejectKind::WrongApp => 401,
        RejectKind::TooLarge => 413,
        RejectKind::Malformed | RejectKind::Stale => 400,
    }
}

/// The checks that run before any parsing. Reasons never echo header values: they are
/// attacker-controlled and end up in logs.
fn verify(settings: &Settings, push: &HttpPush) -> Result<(), (RejectKind, String)> {
    if !push.method.eq_ignore_ascii_case("POST") {
        return Err((RejectKind::Malformed, "Douyin pushes are POST requests".into()));
    }
    if push.body.len() > MAX_BODY_BYTES {
        let reason = format!("body of {} bytes exceeds the {MAX_BODY_BYTES}-byte limit", push.body.len());
        return Err((RejectKind::TooLarge, reason));
    }
    let app_id = header(&push.headers, APP_ID_HEADER)
        .ok_or((RejectKind::Malformed, format!("missing `{APP_ID_HEADER}` header")))?;
    let sign =
        header(&push.headers, SIGN_HEADER).ok_or((RejectKind::Malformed, format!("missing `{SIGN_HEADER}` header")))?;
    if app_id.trim() != settings.app_key {
        return Err((RejectKind::WrongApp, format!("`{APP_ID_HEADER}` is not this shop's app_key")));
    }
    let expected = push_sign(&settings.app_key, &push.body, &settings.app_secret);
    if !signature_eq(&expected, sign.trim()) {
        return Err((
            RejectKind::BadSignature,
            format!("`{SIGN_HEADER}` does not match MD5(app_key + body + app_secret)"),
        ));
    }
    Ok(())
}

type Decodedbody = (Vec<InboundEvent>, Vec<DeadLetter>, Vec<Lookup>, Vec<IgnoredUnit>);

/// Splits an authentic body into events, dead letters, lookups and ignored units.
fn decode_body(
    settings: &Settings,
    body: &[u8],
    now: Millis,
    order_lookup: &dyn Fn(&str) -> Option<HttpRequest>,
) -> Decodedbody {
    let units: Vec<&RawValue> = match serde_json::from_slice(body) {
        Ok(units) => units,
        Err(e) => {
            let reason = format!("body is not a JSON array of push units: {e}");
            return (
                Vec::new(),
                vec![DeadLetter { reason, event_id: None, raw: body.to_vec() }],
                Vec::new(),
                Vec::new(),
            );
        }
    };
    let mut events = Vec::new();
    let mut dead_letters = Vec::new();
    let mut lookups = Vec::new();
    let mut ignored = Vec::new();
    for raw in units {
        let bytes = || raw.get().as_bytes().to_vec();
        match decode_unit(settings, raw.get(), now, None) {
            Ok(Decoded::Event(event)) => events.push(event),
            Ok(Decoded::Ignored(unit)) => ignored.push(unit),
            Ok(Decoded::NeedsBuyer { order_id, event_id }) => match order_lookup(&order_id) {
                Some(request) => lookups.push(Lookup { request, context: bytes(), event_id, raw: bytes() }),
                None => dead_letters.push(DeadLetter {
                    reason: format!(
                        "order {order_id} names no buyer, and without an access_token it cannot be looked up"
                    ),
                    event_id,
                    raw: bytes(),
                }),
            },
            Err((Undecodable(reason), event_id)) => dead_letters.push(DeadLetter { reason, event_id, raw: bytes() }),
        }
    }
    (events, dead_letters, lookups, ignored)
}

type UnitError = (Undecodable, Option<String>);

/// What one unit decoded to.
#[derive(Debug)]
enum Decoded {
    /// An event.
    Event(InboundEvent),
    /// Nothing to store, reported: the address check, an unknown tag, a tag acknowledged
    /// without an event.
    Ignored(IgnoredUnit),
    /// An order or refund message without a buyer: the order must be looked up.
    NeedsBuyer { order_id: String, event_id: Option<String> },
}

/// One unit: the envelope, then its `data` by tag (with `buyer`, the `doudian_open_id` a lookup
/// found, added). On failure, also the envelope `msg_id` when it could be read, so operators can
/// find the unit on the platform.
fn decode_unit(settings: &Settings, raw: &str, now: Millis, buyer: Option<&str>) -> Result<Decoded, UnitError> {
    let fail = |reason: String, id: Option<String>| (Undecodable(reason), id);
    let envelope: Value = serde_json::from_str(raw).map_err(|e| fail(format!("unit is not JSON: {e}"), None))?;
    let Some(envelope) = envelope.as_object() else {
        return Err(fail("unit is not a JSON object".into(), None));
    };
    let envelope_id = envelope.get("msg_id").and_then(id_text);
    let Some(tag) = envelope.get("tag").and_then(id_text) else {
        return Err(fail("unit has no `tag`".into(), envelope_id));
    };
    let kind = TagKind::of(&tag, &settings.chat_tag);
    let ignored = |reason: &str| {
        Decoded::Ignored(IgnoredUnit {
            unit_type: format!("tag {tag}"),
            event_id: envelope_id.clone(),
            reason: reason.to_owned(),
        })
    };
    match kind {
        TagKind::AddressCheck => return Ok(ignored("the platform's address check")),
        TagKind::Unknown => return Ok(ignored("a tag this connector does not map")),
        _ => {}
    }
    let mut data = parse_data(envelope.get("data")).map_err(|reason| fail(reason, envelope_id.clone()))?;
    if let Some(buyer) = buyer {
        data.insert("doudian_open_id".into(), Value::String(buyer.to_owned()));
    }
    let unit = Unit { shop: &settings.shop_id, envelope_id: envelope_id.clone(), data: &data, now };
    if let Some(order_id) = events::needs_buyer(&unit, kind) {
        return Ok(Decoded::NeedsBuyer { order_id, event_id: envelope_id });
    }
    match events::decode(&unit, kind) {
        Ok(Some(event)) => Ok(Decoded::Event(event)),
        Ok(None) => Ok(ignored("a tag acknowledged without an event")),
        Err(e) => Err((e, envelope_id)),
    }
}

/// `data` is a JSON object serialized into a string; an object given directly is accepted.
fn parse_data(data: Option<&Value>) -> Result<Object, String> {
    match data {
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(obj)) => Ok(obj),
            Ok(_) => Err("`data` is not a JSON object".into()),
            Err(e) => Err(format!("`data` is not valid JSON: {e}")),
        },
        Some(Value::Object(obj)) => Ok(obj.clone()),
        Some(_) => Err("`data` is neither a JSON string nor an object".into()),
        None => Err("unit has no `data`".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::SignMethod;

    const APP_KEY: &str = "3409409348479354011";
    const SECRET: &str = "2ad2355c-01d0-11f8-91dc-05a8cd1054b1";

    fn settings() -> Settings {
        Settings {
            shop_id: "s1".into(),
            app_key: APP_KEY.into(),
            app_secret: SECRET.into(),
            api_url: "http://127.0.0.1".into(),
            sign_method: SignMethod::HmacSha256,
            chat_tag: "9001".into(),
            send_method: "im.sendMsg".into(),
        }
    }

    fn push(body: &[u8], sign: &str) -> HttpPush {
        HttpPush {
            method: "POST".into(),
            path: "/hooks/douyin/s1".into(),
            query: String::new(),
            headers: vec![("App-Id".into(), APP_KEY.into()), ("Event-Sign".into(), sign.into())],
            body: body.to_vec(),
        }
    }

    fn signed(body: &[u8]) -> HttpPush {
        push(body, &push_sign(APP_KEY, body, SECRET))
    }

    fn rejection(outcome: PushOutcome) -> (RejectKind, u16, Vec<u8>) {
        match outcome {
            PushOutcome::Rejected { kind, response, .. } => (kind, response.status, response.body),
            accepted => panic!("expected a rejection, got {accepted:?}"),
        }
    }

    #[test]
    fn address_check_vector_is_acknowledged_with_nothing_to_store() {
        // The push test vector: the body and event-sign from vectors.json.
        let body = br#"[{"tag":"0","msg_id":"0","data":"{}"}]"#;
        let outcome = decode_push(&settings(), &push(body, "356532ab10e2668eb4f1c9b6665b6864"), 0, &|_| None);
        let PushOutcome::Accepted { events, dead_letters, ack, nack, ignored, .. } = outcome else {
            panic!("{outcome:?}")
        };
        assert!(events.is_empty() && dead_letters.is_empty());
        // Nothing stored, nothing dropped silently: the address check is an ignored unit.
        assert_eq!(ignored.len(), 1, "{ignored:?}");
        assert_eq!((ignored[0].unit_type.as_str(), ignored[0].event_id.as_deref()), ("tag 0", Some("0")));
        assert_eq!((ack.status, ack.body.as_slice()), (200, ACK_BODY.as_bytes()));
        assert_eq!(ack.body, br#"{"code":0,"msg":"success"}"#);
        assert_eq!((nack.status, nack.body.as_slice()), (200, &br#"{"code":1,"msg":"fail"}"#[..]));
    }

    #[test]
    fn refusals() {
        let body = br#"[{"tag":"0","msg_id":"0","data":"{}"}]"#;
        let (kind, status, answer) = rejection(decode_push(&settings(), &push(body, "00"), 0, &|_| None));
        assert_eq!((kind, status, answer.as_slice()), (RejectKind::BadSignature, 401, FAIL_BODY.as_bytes()));

        let mut tampered = signed(body);
        tampered.body.push(b' ');
        assert_eq!(rejection(decode_push(&settings(), &tampered, 0, &|_| None)).0, RejectKind::BadSignature);

        let mut wrong_app = signed(body);
        wrong_app.headers[0].1 = "1".into();
        assert_eq!(rejection(decode_push(&settings(), &wrong_app, 0, &|_| None)).0, RejectKind::WrongApp);

        let mut get = signed(body);
        get.method = "GET".into();
        assert_eq!(rejection(decode_push(&settings(), &get, 0, &|_| None)).0, RejectKind::Malformed);

        let mut unsigned = signed(body);
        unsigned.headers.truncate(1);
        let (kind, status, _) = rejection(decode_push(&settings(), &unsigned, 0, &|_| None));
        assert_eq!((kind, status), (RejectKind::Malformed, 400));
    }

    #[test]
    fn size_limit_is_checked_before_hashing() {
        let body = vec![b' '; MAX_BODY_BYTES + 1];
        let (kind, status, _) = rejection(decode_push(&settings(), &signed(&body), 0, &|_| None));
        assert_eq!((kind, status), (RejectKind::TooLarge, 413));
        let body = vec![b' '; MAX_BODY_BYTES];
        assert!(matches!(decode_push(&settings(), &signed(&body), 0, &|_| None), PushOutcome::Accepted { .. }));
    }

    #[test]
    fn one_bad_unit_does_not_spoil_the_others() {
        let body = br#"[{"tag":"9001","msg_id":"a","data":"{not json"},{"tag":"9001","msg_id":"b","data":"{\"buyer_open_id\":\"x\",\"content\":\"hi\"}"},7]"#;
        let PushOutcome::Accepted { events, dead_letters, .. } = decode_push(&settings(), &signed(body), 0, &|_| None)
        else {
            panic!()
        };
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_id, "b");
        assert_eq!(dead_letters.len(), 2);
        assert_eq!(dead_letters[0].event_id.as_deref(), Some("a"));
        assert_eq!(dead_letters[0].raw, br#"{"tag":"9001","msg_id":"a","data":"{not json"}"#);
        assert_eq!(dead_letters[1].raw, b"7");
    }

    #[test]
    fn a_lookup_answer_completes_fails_or_waits() {
        let raw = br#"{"tag":"101","msg_id":"7301000000000000901","data":"{\"p_id\":\"4781320682406083640\",\"pay_amount\":100}"}"#;
        let answer = |body: &str| HttpResponse::json(200, body);
        let found = r#"{"code":10000,"msg":"success","data":{"shop_order_detail":{"order_id":"4781320682406083640","doudian_open_id":"1@#B=="}}}"#;
        let LookupOutcome::Complete { events } = complete_lookup(&settings(), raw, &answer(found), 7) else {
            panic!("completed")
        };
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].buyer.open_id, "1@#B==");
        assert_eq!(events[0].event_id, "7301000000000000901");
        let not_found =
            r#"{"code":40004,"msg":"业务处理失败","sub_code":"isv.business-failed","sub_msg":"订单不存在"}"#;
        assert!(matches!(complete_lookup(&settings(), raw, &answer(not_found), 7), LookupOutcome::Failed { .. }));
        let no_buyer = r#"{"code":10000,"msg":"success","data":{"shop_order_detail":{"order_id":"1"}}}"#;
        assert!(matches!(complete_lookup(&settings(), raw, &answer(no_buyer), 7), LookupOutcome::Failed { .. }));
        for busy in [
            r#"{"code":20000,"msg":"服务不可用","sub_code":"isp.service-error","sub_msg":"x"}"#,
            r#"{"code":60000,"msg":"调用频率超限","sub_code":"isv.traffic-limited","sub_msg":"x"}"#,
        ] {
            assert!(
                matches!(complete_lookup(&settings(), raw, &answer(busy), 7), LookupOutcome::Retry { .. }),
                "{busy}"
            );
        }
    }

    #[test]
    fn an_order_without_a_buyer_is_a_lookup_or_without_a_token_a_dead_letter() {
        let body = br#"[{"tag":"101","msg_id":"m9","data":"{\"p_id\":\"42\"}"}]"#;
        let request = HttpRequest {
            method: "POST".into(),
            url: "http://x/order/orderDetail".into(),
            headers: vec![],
            body: vec![],
        };
        let with = decode_push(&settings(), &signed(body), 0, &|id| (id == "42").then(|| request.clone()));
        let PushOutcome::Accepted { events, dead_letters, lookups, .. } = with else { panic!() };
        assert_eq!((events.len(), dead_letters.len(), lookups.len()), (0, 0, 1));
        assert_eq!(lookups[0].event_id.as_deref(), Some("m9"));
        let without = decode_push(&settings(), &signed(body), 0, &|_| None);
        let PushOutcome::Accepted { dead_letters, lookups, .. } = without else { panic!() };
        assert!(lookups.is_empty());
        assert!(dead_letters[0].reason.contains("access_token"), "{:?}", dead_letters[0]);
    }
}
