//! Verifying and answering a WeChat message push (消息推送), plain and safe mode, and the URL
//! verification GET. Source: the message-push guide the WeChat Shop docs defer to
//! (<https://developers.weixin.qq.com/doc/store/shop/dev_before/message_push>,
//! <https://developers.weixin.qq.com/miniprogram/dev/framework/server-ability/message-push.html>).
//!
//! Order of checks, each refusing before anything is parsed:
//!
//! | check                                                         | refusal        | answer |
//! |---------------------------------------------------------------|----------------|--------|
//! | method is `GET` or `POST`                                     | `Malformed`    | 405    |
//! | body ≤ 1 MiB                                                  | `TooLarge`     | 413    |
//! | `timestamp`, `nonce` and the signature parameter present      | `Malformed`    | 400    |
//! | `timestamp` within 4 hours of now                             | `Stale`        | 400    |
//! | GET: `signature` = SHA1(sort(token, timestamp, nonce))        | `BadSignature` | 401    |
//! | safe: `msg_signature` = SHA1(sort(token, ts, nonce, Encrypt)) | `BadSignature` | 401    |
//! | safe: `Encrypt` opens with the EncodingAESKey                 | `BadSignature` | 401    |
//! | safe: the appid inside equals the shop's `appid`              | `WrongApp`     | 401    |
//! | plain: `signature` = SHA1(sort(token, timestamp, nonce))      | `BadSignature` | 401    |
//!
//! A push whose signature parameter is absent is `Malformed` (it is not the shape of a WeChat
//! push); one whose signature is present and wrong is `BadSignature`. A safe-mode body that
//! verifies but does not open (wrong EncodingAESKey configured) is refused too, so WeChat keeps
//! retrying (about 3.5 hours) while the operator fixes the key, instead of acknowledging it.
//!
//! The 4-hour window is this connector's choice: WeChat signs the timestamp but publishes no
//! tolerance, and retries a push for about 3.6 hours; the window covers every retry.
//!
//! Answers: the URL verification echoes `echostr` (HTTP 200, text); an accepted push is
//! acknowledged with `success` (200, "回复 success 或空字符串"); the negative acknowledgement
//! is HTTP 503, which WeChat treats as a failed delivery and retries; refusals are 4xx with
//! the body `fail`, never `success`.

use huiliu_sdk::crypto::signature_eq;
use huiliu_sdk::{DeadLetter, HttpPush, HttpResponse, Millis, PushOutcome, RejectKind};
use serde_json::Value;

use crate::config::Settings;
use crate::crypto::sorted_sha1;
use crate::events::{self, Unit};

/// The largest body accepted.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// How far a push's timestamp may be from now.
pub const TOLERANCE_MS: Millis = 4 * 3_600_000;
/// The acknowledgement WeChat expects.
pub const ACK_BODY: &str = "success";

/// The query parameters of a push, percent-decoded.
#[derive(Debug, Default)]
pub struct Query {
    pub signature: Option<String>,
    pub msg_signature: Option<String>,
    pub timestamp: Option<String>,
    pub nonce: Option<String>,
    pub echostr: Option<String>,
    pub encrypt_type: Option<String>,
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() && bytes[i + 1].is_ascii_hexdigit() && bytes[i + 2].is_ascii_hexdigit() => {
                let hex = [bytes[i + 1], bytes[i + 2]];
                out.push(u8::from_str_radix(std::str::from_utf8(&hex).unwrap_or("00"), 16).unwrap_or(0));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Query {
    pub fn parse(query: &str) -> Query {
        let mut q = Query::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = Some(percent_decode(v)).filter(|v| !v.is_empty());
            match k {
                "signature" => q.signature = v,
                "msg_signature" => q.msg_signature = v,
                "timestamp" => q.timestamp = v,
                "nonce" => q.nonce = v,
                "echostr" => q.echostr = v,
                "encrypt_type" => q.encrypt_type = v,
                _ => {}
            }
        }
        q
    }
}

type Refusal = (RejectKind, String);

fn reject((kind, reason): Refusal) -> PushOutcome {
    let status = match kind {
        RejectKind::BadSignature | RejectKind::WrongApp => 401,
        RejectKind::TooLarge => 413,
        RejectKind::Malformed | RejectKind::Stale => 400,
    };
    PushOutcome::Rejected { kind, reason, response: HttpResponse::text(status, "fail") }
}

/// Verifies, decrypts and decodes one push.
pub fn decode_push(settings: &Settings, push: &HttpPush, now: Millis) -> PushOutcome {
    if !push.method.eq_ignore_ascii_case("GET") && !push.method.eq_ignore_ascii_case("POST") {
        let reason = "WeChat pushes are POST (GET only to verify the URL)".to_owned();
        return PushOutcome::Rejected {
            kind: RejectKind::Malformed,
            reason,
            response: HttpResponse::text(405, "fail"),
        };
    }
    match verify(settings, push, now) {
        Err(refusal) => reject(refusal),
        Ok(Verified::Echo(echostr)) => PushOutcome::answer(HttpResponse::text(200, echostr)),
        Ok(Verified::Message(msg)) => accept(settings, msg, now),
    }
}

enum Verified {
    /// The URL verification: answer `echostr`.
    Echo(String),
    /// The plain message.
    Message(Vec<u8>),
}

fn required<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, Refusal> {
    value.as_deref().ok_or_else(|| (RejectKind::Malformed, format!("missing query parameter `{name}`")))
}

fn verify(settings: &Settings, push: &HttpPush, now: Millis) -> Result<Verified, Refusal> {
    let get = push.method.eq_ignore_ascii_case("GET");
    if push.body.len() > MAX_BODY_BYTES {
        return Err((RejectKind::TooLarge, format!("body of {} bytes exceeds {MAX_BODY_BYTES}", push.body.len())));
    }
    let q = Query::parse(&push.query);
    let timestamp = required(&q.timestamp, "timestamp")?;
    let nonce = required(&q.nonce, "nonce")?;
    let safe = !get && q.encrypt_type.as_deref() == Some("aes");
    // Which signature this request must carry, checked for presence before anything else.
    let signature =
        if safe { required(&q.msg_signature, "msg_signature")? } else { required(&q.signature, "signature")? };
    let echostr = if get { Some(required(&q.echostr, "echostr")?) } else { None };
    let at = timestamp.parse::<i64>().ok().and_then(|s| s.checked_mul(1000));
    match at {
        Some(at) if (now - at).abs() <= TOLERANCE_MS => {}
        Some(_) => return Err((RejectKind::Stale, "`timestamp` is more than 4 hours from now".into())),
        None => return Err((RejectKind::Malformed, "`timestamp` is not Unix seconds".into())),
    }
    if !safe {
        let expected = sorted_sha1(&[&settings.token, timestamp, nonce]);
        if !signature_eq(&expected, signature) {
            return Err((RejectKind::BadSignature, "`signature` is not SHA1(sort(token, timestamp, nonce))".into()));
        }
        return Ok(match echostr {
            Some(e) => Verified::Echo(e.to_owned()),
            None => Verified::Message(push.body.clone()),
        });
    }
    let envelope: Value = serde_json::from_slice(&push.body)
        .map_err(|_| (RejectKind::Malformed, "a safe-mode body must be JSON with `Encrypt`".to_string()))?;
    let encrypt = envelope
        .get("Encrypt")
        .and_then(Value::as_str)
        .ok_or_else(|| (RejectKind::Malformed, "a safe-mode body must carry `Encrypt`".to_string()))?;
    let expected = sorted_sha1(&[&settings.token, timestamp, nonce, encrypt]);
    if !signature_eq(&expected, signature) {
        return Err((
            RejectKind::BadSignature,
            "`msg_signature` is not SHA1(sort(token, timestamp, nonce, Encrypt))".into(),
        ));
    }
    let Some(key) = &settings.aes_key else {
        return Err((
            RejectKind::BadSignature,
            "a safe-mode (encrypted) push arrived but the shop has no `encoding_aes_key`".into(),
        ));
    };
    let (msg, appid) =
        key.decrypt(encrypt).map_err(|e| (RejectKind::BadSignature, format!("`Encrypt` does not open: {}", e.0)))?;
    if appid != settings.appid {
        return Err((RejectKind::WrongApp, "the encrypted push names another appid".into()));
    }
    Ok(Verified::Message(msg))
}

fn accept(settings: &Settings, msg: Vec<u8>, now: Millis) -> PushOutcome {
    let (mut events, mut dead_letters, mut ignored) = (Vec::new(), Vec::new(), Vec::new());
    match events::decode(&settings.shop_id, &msg, now) {
        Ok(Unit::Event(event)) => events.push(*event),
        Ok(Unit::Ignored(unit)) => ignored.push(unit),
        Err(e) => dead_letters.push(DeadLetter { reason: e.reason, event_id: e.event_id, raw: msg }),
    }
    PushOutcome::Accepted {
        events,
        dead_letters,
        ack: HttpResponse::text(200, ACK_BODY),
        nack: HttpResponse::text(503, "retry"),
        ignored,
        lookups: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let q = Query::parse("signature=ab&timestamp=1&nonce=2&echostr=a%2Bb+c&encrypt_type=aes&x=%zz");
        assert_eq!(q.echostr.as_deref(), Some("a+b c"));
        assert_eq!(q.encrypt_type.as_deref(), Some("aes"));
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%41"), "A");
    }
}
