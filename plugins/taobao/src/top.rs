//! TOP API calls (public conventions, PROTOCOLS.md §1.1): building the signed form request
//! and classifying the gateway's answer.

use std::collections::BTreeMap;

use huiliu_sdk::time::beijing_datetime;
use huiliu_sdk::{HttpRequest, HttpResponse, Millis, PlatformError, SendOutcome};
use serde_json::Value;

use crate::json::{id_text, int, text};
use crate::settings::Settings;
use crate::sign::top_sign;

pub(crate) const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded;charset=utf-8";

/// How much of an unreadable body an error message quotes.
const SNIPPET_CHARS: usize = 200;

/// A signed TOP call: system parameters (`method`, `app_key`, `session`, `timestamp` in
/// Beijing time, `format=json`, `v=2.0`, `sign_method`) plus `business`, empty values dropped
/// (TOP leaves them out of the signature, so sending them would only invite a mismatch), all in
/// the form body.
pub(crate) fn request(
    settings: &Settings,
    method: &str,
    session: &str,
    business: BTreeMap<String, String>,
    now: Millis,
) -> HttpRequest {
    let mut params = business;
    let timestamp = beijing_datetime(now);
    for (name, value) in [
        ("method", method),
        ("app_key", settings.app_key.as_str()),
        ("session", session),
        ("timestamp", timestamp.as_str()),
        ("format", "json"),
        ("v", "2.0"),
        ("sign_method", settings.sign_method.as_str()),
    ] {
        params.insert(name.to_owned(), value.to_owned());
    }
    params.retain(|_, v| !v.is_empty());
    let sign = top_sign(&params, &settings.app_secret, settings.sign_method);
    params.insert("sign".to_owned(), sign);
    form_post(&settings.api_url, &params)
}

/// A POST of `params` as an url-encoded form.
pub(crate) fn form_post(url: &str, params: &BTreeMap<String, String>) -> HttpRequest {
    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
    HttpRequest {
        method: "POST".to_owned(),
        url: url.to_owned(),
        headers: vec![("Content-Type".to_owned(), FORM_CONTENT_TYPE.to_owned())],
        body: body.into_bytes(),
    }
}

/// Classifies TOP's answer to a call of `method`.
///
/// - `error_response`: code 7/8 → rate limited (with the ban length when TOP states it),
///   27 → token expired, `isp.*` sub-code → retryable, `isv.*` sub-code → permanent,
///   15 → retryable, any other code → permanent. Under HTTP 5xx it is retryable whatever it says.
/// - `<method, dots → underscores>_response` (or the same without the `taobao_` prefix, which
///   live TOP drops): delivered, unless its `result.success` is false (permanent).
/// - HTTP 5xx, HTTP 429, or a body that is neither: retryable (429: rate limited), quoting the
///   HTTP status and the start of the body.
pub(crate) fn classify(response: &HttpResponse, method: &str) -> SendOutcome {
    let status = response.status;
    let body: Option<Value> = serde_json::from_slice(&response.body).ok();
    if let Some(err) = body.as_ref().and_then(|b| b.get("error_response")) {
        let error = platform_error(status, err);
        return if status >= 500 { SendOutcome::Retryable { error } } else { classify_error(error, err) };
    }
    let answer = body.as_ref().and_then(|b| success_body(b, method)).filter(|_| (200..300).contains(&status));
    if let Some(answer) = answer {
        return classify_answer(status, answer);
    }
    let error = http_error(status, &response.body);
    if status == 429 {
        SendOutcome::RateLimited { error, retry_after_ms: None }
    } else {
        SendOutcome::Retryable { error }
    }
}

fn classify_error(error: PlatformError, err: &Value) -> SendOutcome {
    let code = err.get("code").and_then(int);
    let sub_code = error.sub_code.as_deref().unwrap_or_default();
    match code {
        Some(7 | 8) => {
            let retry_after_ms = ["sub_msg", "msg"].iter().find_map(|k| text(err, k).and_then(ban_ms));
            SendOutcome::RateLimited { error, retry_after_ms }
        }
        Some(27) => SendOutcome::TokenExpired { error },
        _ if sub_code.starts_with("isp.") => SendOutcome::Retryable { error },
        _ if sub_code.starts_with("isv.") => SendOutcome::Permanent { error },
        Some(15) => SendOutcome::Retryable { error },
        _ => SendOutcome::Permanent { error },
    }
}

/// The platform's error verbatim: code, sub-code, and `msg: sub_msg`.
fn platform_error(http_status: u16, err: &Value) -> PlatformError {
    let code = err.get("code").and_then(id_text).unwrap_or_else(|| "unknown".to_owned());
    let message = match (text(err, "msg"), text(err, "sub_msg")) {
        (Some(msg), Some(sub)) => format!("{msg}: {sub}"),
        (Some(one), None) | (None, Some(one)) => one.to_owned(),
        (None, None) => "error_response without msg".to_owned(),
    };
    PlatformError { http_status, code, sub_code: text(err, "sub_code").map(str::to_owned), message }
}

fn http_error(http_status: u16, body: &[u8]) -> PlatformError {
    PlatformError {
        http_status,
        code: format!("http_{http_status}"),
        sub_code: None,
        message: format!("unexpected TOP answer (HTTP {http_status}): {}", snippet(body)),
    }
}

/// The start of a body for an error message, lossily decoded.
pub(crate) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text.chars().take(SNIPPET_CHARS).collect();
    if text.chars().nth(SNIPPET_CHARS).is_some() {
        out.push('…');
    }
    if out.trim().is_empty() { "(empty body)".to_owned() } else { out }
}

fn success_body<'a>(body: &'a Value, method: &str) -> Option<&'a Value> {
    let key = format!("{}_response", method.replace('.', "_"));
    body.get(&key).or_else(|| key.strip_prefix("taobao_").and_then(|k| body.get(k)))
}

/// A `<method>_response`: delivered unless `result.success` says otherwise.
fn classify_answer(http_status: u16, answer: &Value) -> SendOutcome {
    let result = answer.get("result").unwrap_or(answer);
    let success = result.get("success");
    let failed = matches!(success, Some(Value::Bool(false))) || success.and_then(Value::as_str) == Some("false");
    if failed {
        let first = |keys: &[&str]| keys.iter().find_map(|k| result.get(*k).and_then(id_text));
        let error = PlatformError {
            http_status,
            code: first(&["error_code", "err_code", "code"]).unwrap_or_else(|| "result_failed".to_owned()),
            sub_code: first(&["sub_code"]),
            message: first(&["error_msg", "err_msg", "msg", "message"])
                .unwrap_or_else(|| "the platform answered success=false".to_owned()),
        };
        return SendOutcome::Permanent { error };
    }
    SendOutcome::Delivered { platform_msg_id: result.get("msg_id").and_then(id_text) }
}

/// TOP states the length of a call-limit ban in its message:
/// `This ban will last 71 more seconds` → 71 000 ms.
fn ban_ms(message: &str) -> Option<u64> {
    let (_, rest) = message.split_once("will last ")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let unit = rest.strip_prefix(digits.as_str())?.trim_start();
    if !unit.starts_with("more second") {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ban_length() {
        assert_eq!(ban_ms("This ban will last 71 more seconds"), Some(71_000));
        assert_eq!(ban_ms("This ban will last 1 more second"), Some(1_000));
        assert_eq!(ban_ms("This ban will last soon"), None);
        assert_eq!(ban_ms("App Call Limited"), None);
        assert_eq!(ban_ms("will last 99999999999999999999999 more seconds"), None);
    }

    #[test]
    fn snippets_are_bounded() {
        assert_eq!(snippet(b""), "(empty body)");
        let long = "汇".repeat(500);
        let s = snippet(long.as_bytes());
        assert_eq!(s.chars().count(), SNIPPET_CHARS + 1);
        assert!(s.ends_with('…'));
        assert_eq!(snippet(&[0xff, b'a']), "\u{fffd}a");
    }
}
