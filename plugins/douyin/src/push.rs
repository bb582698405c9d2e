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
//! tags acknowledged without an event are reported as ignored units. The acknowledgement is `{"code":0,"msg":"success"}`, the negative
//! acknowledgement (storage failed, please redeliver) `{"code":1,"msg":"fail"}`, both HTTP 200.

use huiliu_sdk::crypto::signature_eq;
use huiliu_sdk::{
    DeadLetter, HttpPush, HttpResponse, IgnoredUnit, InboundEvent, Millis, PushOutcome, RejectKind, header,
};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::config::Settings;
use crate::events::{self, TagKind, Undecodable, Unit};
use crate::json::{Object, id_text};
use crate::sign::push_sign;

/// The largest body accepted. Douyin batches a handful of small messages per push.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// The acknowledgement Douyin expects, byte for byte.
pub const ACK_BODY: &str = r#"{"code":0,"msg":"success"}"#;
/// The failure answer that makes Douyin redeliver.
pub const FAIL_BODY: &str = r#"{"code":1,"msg":"fail"}"#;

pub const APP_ID_HEADER: &str = "app-id";
pub const SIGN_HEADER: &str = "event-sign";

/// Verifies and decodes one push.
pub fn decode_push(settings: &Settings, push: &HttpPush, now: Millis) -> PushOutcome {
    if let Err((kind, reason)) = verify(settings, push) {
        return PushOutcome::Rejected { kind, reason, response: HttpResponse::json(refusal_status(kind), FAIL_BODY) };
    }
    let (events, dead_letters, ignored) = decode_body(settings, &push.body, now);
    PushOutcome::Accepted {
        events,
        dead_letters,
        ack: HttpResponse::json(200, ACK_BODY),
        nack: HttpResponse::json(200, FAIL_BODY),
        ignored,
    }
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

/// Splits an authentic body into events, dead letters and ignored units.
fn decode_body(
    settings: &Settings,
    body: &[u8],
    now: Millis,
) -> (Vec<InboundEvent>, Vec<DeadLetter>, Vec<IgnoredUnit>) {
    let units: Vec<&RawValue> = match serde_json::from_slice(body) {
        Ok(units) => units,
        Err(e) => {
            let reason = format!("body is not a JSON array of push units: {e}");
            return (Vec::new(), vec![DeadLetter { reason, event_id: None, raw: body.to_vec() }], Vec::new());
        }
    };
    let mut events = Vec::new();
    let mut dead_letters = Vec::new();
    let mut ignored = Vec::new();
    for raw in units {
        match decode_unit(settings, raw.get(), now) {
            Ok(Ok(event)) => events.push(event),
            Ok(Err(unit)) => ignored.push(unit),
            Err((Undecodable(reason), event_id)) => {
                dead_letters.push(DeadLetter { reason, event_id, raw: raw.get().as_bytes().to_vec() })
            }
        }
    }
    (events, dead_letters, ignored)
}

type UnitError = (Undecodable, Option<String>);

/// One unit: the envelope, then its `data` by tag. On failure, also the envelope `msg_id` when
/// it could be read, so operators can find the unit on the platform.
fn decode_unit(settings: &Settings, raw: &str, now: Millis) -> Result<Result<InboundEvent, IgnoredUnit>, UnitError> {
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
    let ignored = |reason: &str| IgnoredUnit {
        unit_type: format!("tag {tag}"),
        event_id: envelope_id.clone(),
        reason: reason.to_owned(),
    };
    match kind {
        TagKind::AddressCheck => return Ok(Err(ignored("the platform's address check"))),
        TagKind::Unknown => return Ok(Err(ignored("a tag this connector does not map"))),
        _ => {}
    }
    let data = parse_data(envelope.get("data")).map_err(|reason| fail(reason, envelope_id.clone()))?;
    let unit = Unit { shop: &settings.shop_id, envelope_id: envelope_id.clone(), data: &data, now };
    match events::decode(&unit, kind) {
        Ok(Some(event)) => Ok(Ok(event)),
        Ok(None) => Ok(Err(ignored("a tag acknowledged without an event"))),
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
        let outcome = decode_push(&settings(), &push(body, "356532ab10e2668eb4f1c9b6665b6864"), 0);
        let PushOutcome::Accepted { events, dead_letters, ack, nack, ignored } = outcome else { panic!("{outcome:?}") };
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
        let (kind, status, answer) = rejection(decode_push(&settings(), &push(body, "00"), 0));
        assert_eq!((kind, status, answer.as_slice()), (RejectKind::BadSignature, 401, FAIL_BODY.as_bytes()));

        let mut tampered = signed(body);
        tampered.body.push(b' ');
        assert_eq!(rejection(decode_push(&settings(), &tampered, 0)).0, RejectKind::BadSignature);

        let mut wrong_app = signed(body);
        wrong_app.headers[0].1 = "1".into();
        assert_eq!(rejection(decode_push(&settings(), &wrong_app, 0)).0, RejectKind::WrongApp);

        let mut get = signed(body);
        get.method = "GET".into();
        assert_eq!(rejection(decode_push(&settings(), &get, 0)).0, RejectKind::Malformed);

        let mut unsigned = signed(body);
        unsigned.headers.truncate(1);
        let (kind, status, _) = rejection(decode_push(&settings(), &unsigned, 0));
        assert_eq!((kind, status), (RejectKind::Malformed, 400));
    }

    #[test]
    fn size_limit_is_checked_before_hashing() {
        let body = vec![b' '; MAX_BODY_BYTES + 1];
        let (kind, status, _) = rejection(decode_push(&settings(), &signed(&body), 0));
        assert_eq!((kind, status), (RejectKind::TooLarge, 413));
        let body = vec![b' '; MAX_BODY_BYTES];
        assert!(matches!(decode_push(&settings(), &signed(&body), 0), PushOutcome::Accepted { .. }));
    }

    #[test]
    fn one_bad_unit_does_not_spoil_the_others() {
        let body = br#"[{"tag":"9001","msg_id":"a","data":"{not json"},{"tag":"9001","msg_id":"b","data":"{\"buyer_open_id\":\"x\",\"content\":\"hi\"}"},7]"#;
        let PushOutcome::Accepted { events, dead_letters, .. } = decode_push(&settings(), &signed(body), 0) else {
            panic!()
        };
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_id, "b");
        assert_eq!(dead_letters.len(), 2);
        assert_eq!(dead_letters[0].event_id.as_deref(), Some("a"));
        assert_eq!(dead_letters[0].raw, br#"{"tag":"9001","msg_id":"a","data":"{not json"}"#);
        assert_eq!(dead_letters[1].raw, b"7");
    }
}
