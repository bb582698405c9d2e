//! Classifying JOS answers to a send (PROTOCOLS.md §3.1 public error codes, §4 modeled success).
//!
//! - `{"<method with dots→_>_responce":{"code":"0","result":{"success":true,"msg_id":…}}}`
//!   (JD's own spelling; `_response` is accepted too) → `Delivered`;
//!   a non-`"0"` inner code or `success: false` → `Permanent` with the platform's words.
//! - `{"error_response":{"code":…,"zh_desc":…,"en_desc":…}}`: `2` app call limit →
//!   `RateLimited`; `18`/`19` access token → `TokenExpired`; `8` invalid timestamp →
//!   `Retryable` (clock skew passes); everything else (`11`, `12`, `20`, `21`, `24`, …) →
//!   `Permanent`.
//! - HTTP 5xx → `Retryable` (a rate or token error in the body still wins); a body that is not
//!   JSON or has neither shape → `Retryable`, which is safe because `client_msg_id` makes the
//!   send idempotent.

use huiliu_sdk::{HttpResponse, PlatformError, SendOutcome, header};
use serde_json::{Map, Value};

use crate::json::{clip, code_text, id_text, text};

/// JOS gateway codes with a class of their own.
const APP_CALL_LIMIT: &str = "2";
const INVALID_TIMESTAMP: &str = "8";
const TOKEN_CODES: [&str; 2] = ["18", "19"];

/// The code recorded when the answer is not one of JD's shapes.
pub const UNPARSEABLE: &str = "unparseable_response";
pub const UNRECOGNIZED: &str = "unrecognized_response";

/// How the platform answered `method` (the JOS method that was called).
pub fn classify_send(response: &HttpResponse, method: &str) -> SendOutcome {
    let status = response.status;
    let outcome = match serde_json::from_slice::<Value>(&response.body) {
        Ok(Value::Object(body)) => classify_body(&body, method, response),
        Ok(_) | Err(_) => SendOutcome::Retryable {
            error: error(
                status,
                UNPARSEABLE,
                format!("HTTP {status}: {}", clip(&String::from_utf8_lossy(&response.body), 200)),
            ),
        },
    };
    if status < 500 {
        return outcome;
    }
    match outcome {
        SendOutcome::RateLimited { .. } | SendOutcome::TokenExpired { .. } | SendOutcome::Retryable { .. } => outcome,
        SendOutcome::Permanent { error } => SendOutcome::Retryable { error },
        SendOutcome::Delivered { .. } => {
            SendOutcome::Retryable { error: error(status, UNRECOGNIZED, format!("HTTP {status} with a success body")) }
        }
    }
}

fn classify_body(body: &Map<String, Value>, method: &str, response: &HttpResponse) -> SendOutcome {
    if let Some(Value::Object(err)) = body.get("error_response") {
        return classify_error_response(err, response);
    }
    match success_object(body, method) {
        Some(inner) => classify_success_object(inner, response.status),
        None => SendOutcome::Retryable {
            error: error(response.status, UNRECOGNIZED, format!("no `error_response` or `{}`", success_key(method))),
        },
    }
}

/// `jingdong.im.pop.message.send` → `jingdong_im_pop_message_send_responce`.
pub fn success_key(method: &str) -> String {
    format!("{}_responce", method.replace('.', "_"))
}

/// The method's `_responce` object, or the only `_responce`/`_response` object there is.
fn success_object<'a>(body: &'a Map<String, Value>, method: &str) -> Option<&'a Map<String, Value>> {
    if let Some(Value::Object(inner)) = body.get(&success_key(method)) {
        return Some(inner);
    }
    let mut candidates = body.iter().filter(|(k, _)| k.ends_with("_responce") || k.ends_with("_response"));
    match (candidates.next(), candidates.next()) {
        (Some((_, Value::Object(inner))), None) => Some(inner),
        _ => None,
    }
}

fn classify_error_response(err: &Map<String, Value>, response: &HttpResponse) -> SendOutcome {
    let code = err.get("code").and_then(code_text).unwrap_or_default();
    let error = error(response.status, &code, describe(err));
    match code.as_str() {
        APP_CALL_LIMIT => SendOutcome::RateLimited { error, retry_after_ms: retry_after_ms(response) },
        c if TOKEN_CODES.contains(&c) => SendOutcome::TokenExpired { error },
        INVALID_TIMESTAMP => SendOutcome::Retryable { error },
        _ => SendOutcome::Permanent { error },
    }
}

fn classify_success_object(inner: &Map<String, Value>, status: u16) -> SendOutcome {
    let code = inner.get("code").and_then(code_text).unwrap_or_else(|| "0".to_owned());
    if code != "0" {
        return SendOutcome::Permanent { error: error(status, &code, describe(inner)) };
    }
    // JD sometimes nests `result` as a JSON string.
    let result = match inner.get("result") {
        Some(Value::Object(r)) => Some(r.clone()),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(r)) => Some(r),
            _ => None,
        },
        _ => None,
    };
    let Some(result) = result else {
        return SendOutcome::Retryable { error: error(status, UNRECOGNIZED, "success body without a `result`".into()) };
    };
    match result.get("success") {
        Some(Value::Bool(true)) => SendOutcome::Delivered { platform_msg_id: result.get("msg_id").and_then(id_text) },
        Some(Value::String(s)) if s == "true" => {
            SendOutcome::Delivered { platform_msg_id: result.get("msg_id").and_then(id_text) }
        }
        _ => {
            let code = ["code", "error_code", "errorCode"]
                .iter()
                .find_map(|k| result.get(*k).and_then(code_text))
                .unwrap_or(code);
            SendOutcome::Permanent { error: error(status, &code, describe(&result)) }
        }
    }
}

/// The platform's message: `zh_desc (en_desc)`, or the first message-like field there is.
fn describe(obj: &Map<String, Value>) -> String {
    let field = |k: &str| obj.get(k).and_then(text).filter(|s| !s.is_empty());
    match (field("zh_desc"), field("en_desc")) {
        (Some(zh), Some(en)) => format!("{zh} ({en})"),
        (Some(one), None) | (None, Some(one)) => one,
        (None, None) => ["message", "msg", "errorMsg", "error_msg"].iter().find_map(|k| field(k)).unwrap_or_default(),
    }
}

/// The HTTP `Retry-After` header in milliseconds, when it is a number of seconds.
fn retry_after_ms(response: &HttpResponse) -> Option<u64> {
    header(&response.headers, "retry-after")?.trim().parse::<u64>().ok().map(|s| s.saturating_mul(1000))
}

fn error(http_status: u16, code: &str, message: String) -> PlatformError {
    PlatformError { http_status, code: code.to_owned(), sub_code: None, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    const METHOD: &str = "jingdong.im.pop.message.send";

    fn classify(status: u16, body: &str) -> SendOutcome {
        classify_send(&HttpResponse::json(status, body), METHOD)
    }

    #[test]
    fn success_with_big_numeric_msg_id() {
        let out = classify(
            200,
            r#"{"jingdong_im_pop_message_send_responce":{"code":"0","result":{"success":true,"msg_id":9007199254740993}}}"#,
        );
        assert_eq!(out, SendOutcome::Delivered { platform_msg_id: Some("9007199254740993".into()) });
    }

    #[test]
    fn error_keeps_the_platform_words() {
        let out = classify(
            200,
            r#"{"error_response":{"code":"19","zh_desc":"token已过期","en_desc":"Invalid access_token"}}"#,
        );
        let SendOutcome::TokenExpired { error } = out else { panic!("not token expired: {out:?}") };
        assert_eq!(error.code, "19");
        assert_eq!(error.message, "token已过期 (Invalid access_token)");
        assert_eq!(error.http_status, 200);
    }

    #[test]
    fn rate_limit_reads_retry_after() {
        let mut resp = HttpResponse::json(200, r#"{"error_response":{"code":2,"zh_desc":"调用次数超限"}}"#);
        resp.headers.push(("Retry-After".into(), "30".into()));
        let out = classify_send(&resp, METHOD);
        assert!(matches!(out, SendOutcome::RateLimited { retry_after_ms: Some(30_000), .. }), "{out:?}");
    }

    #[test]
    fn server_errors_retry_unless_the_body_says_more() {
        assert_eq!(classify(502, "<html>bad gateway</html>").class(), "retryable");
        assert_eq!(classify(503, r#"{"error_response":{"code":"24","zh_desc":"无权限"}}"#).class(), "retryable");
        assert_eq!(classify(503, r#"{"error_response":{"code":"2"}}"#).class(), "rate_limited");
    }

    #[test]
    fn string_result_is_read() {
        let body = r#"{"jingdong_im_pop_message_send_responce":{"code":"0","result":"{\"success\":false,\"code\":\"1001\",\"message\":\"会话已关闭\"}"}}"#;
        let SendOutcome::Permanent { error } = classify(200, body) else { panic!("not permanent") };
        assert_eq!((error.code.as_str(), error.message.as_str()), ("1001", "会话已关闭"));
    }
}
