//! OpenAPI requests and responses (public convention, PROTOCOLS.md §2.1).
//!
//! A call is `POST {api_url}/{method with . → /}?app_key=…&method=…&access_token=…&timestamp=…
//! &v=2&sign_method=…&sign=…` with the canonical `param_json` as the `application/json` body.
//! The timestamp is always sent as `yyyy-MM-dd HH:mm:ss` Beijing time (the documented form; the
//! official SDKs send Unix seconds, and the gateway accepts both), percent-encoded in the query
//! (`%20` for the space, never `+`, which a strict decoder would keep as a plus sign).

use huiliu_sdk::time::beijing_datetime;
use huiliu_sdk::{HttpRequest, Millis, PlatformError};
use serde_json::Value;

use crate::canonical::canonical_json;
use crate::config::Settings;
use crate::json::{Object, id_text, text_of};
use crate::sign::{ApiSignInput, api_sign};

/// The API version every call carries.
pub const API_VERSION: &str = "2";
/// `code` of a successful response.
pub const SUCCESS_CODE: &str = "10000";

/// The latest instant `yyyy` can show (9999-12-31 23:59:59.999 Beijing time); `now` is clamped into
/// `0..=MAX_MILLIS` before formatting, so an absurd clock cannot overflow the date arithmetic.
const MAX_MILLIS: Millis = 253_402_300_799_999 - 8 * 3_600_000;

/// `yyyy-MM-dd HH:mm:ss` in Beijing time, as signed and sent.
pub fn timestamp(now: Millis) -> String {
    beijing_datetime(now.clamp(0, MAX_MILLIS))
}

/// `order.orderDetail` → `order/orderDetail`.
pub fn method_path(method: &str) -> String {
    method.replace('.', "/")
}

/// One query value, percent-encoded (`application/x-www-form-urlencoded` bytes, with the space
/// as `%20`: the form encoder writes a literal `+` as `%2B`, so every `+` it emits is a space).
fn encode_query_value(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>().replace('+', "%20")
}

/// The fully signed request for OpenAPI `method` with business parameters `params`.
/// `access_token` is `None` for the token calls themselves.
pub fn signed_request(
    settings: &Settings,
    method: &str,
    params: &Value,
    access_token: Option<&str>,
    now: Millis,
) -> HttpRequest {
    let param_json = canonical_json(params);
    let timestamp = timestamp(now);
    let input = ApiSignInput {
        app_key: &settings.app_key,
        method,
        param_json: &param_json,
        timestamp: &timestamp,
        v: API_VERSION,
    };
    let sign = api_sign(&settings.app_secret, settings.sign_method, &input);

    let mut query: Vec<(&str, &str)> = vec![("app_key", &settings.app_key), ("method", method)];
    if let Some(token) = access_token {
        query.push(("access_token", token));
    }
    query.extend([
        ("timestamp", timestamp.as_str()),
        ("v", API_VERSION),
        ("sign_method", settings.sign_method.as_str()),
        ("sign", sign.as_str()),
    ]);
    let query: Vec<String> = query.into_iter().map(|(k, v)| format!("{k}={}", encode_query_value(v))).collect();

    HttpRequest {
        method: "POST".into(),
        url: format!("{}/{}?{}", settings.api_url, method_path(method), query.join("&")),
        headers: vec![("content-type".into(), "application/json".into())],
        body: param_json.into_bytes(),
    }
}

/// The envelope of every OpenAPI response.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiReply {
    /// `"10000"` on success; numbers and strings are both accepted.
    pub code: String,
    pub msg: String,
    pub sub_code: Option<String>,
    pub sub_msg: Option<String>,
    pub data: Option<Value>,
}

impl ApiReply {
    /// Parses a response body; `None` when it is not a Douyin envelope (no `code`).
    pub fn parse(body: &[u8]) -> Option<ApiReply> {
        let value: Value = serde_json::from_slice(body).ok()?;
        let obj: &Object = value.as_object()?;
        let code = obj.get("code").and_then(code_text)?;
        let text = |key: &str| obj.get(key).and_then(text_of).filter(|s| !s.is_empty());
        Some(ApiReply {
            code,
            msg: text("msg").unwrap_or_default(),
            sub_code: text("sub_code"),
            sub_msg: text("sub_msg"),
            data: obj.get("data").filter(|d| !d.is_null()).cloned(),
        })
    }

    pub fn is_success(&self) -> bool {
        self.code == SUCCESS_CODE
    }

    /// The platform's error, kept verbatim: `msg` and `sub_msg` joined when both are present.
    pub fn error(&self, http_status: u16) -> PlatformError {
        let message = match &self.sub_msg {
            Some(sub) if !self.msg.is_empty() => format!("{}: {sub}", self.msg),
            Some(sub) => sub.clone(),
            None => self.msg.clone(),
        };
        PlatformError { http_status, code: self.code.clone(), sub_code: self.sub_code.clone(), message }
    }
}

/// A response code: an integer or a non-empty string.
fn code_text(value: &Value) -> Option<String> {
    match value {
        Value::Number(n) => n.as_i64().map(|i| i.to_string()),
        other => id_text(other),
    }
}

/// The error for a response that is not a Douyin envelope, with the start of the body for the
/// operator (bounded: an HTML error page can be large).
pub fn unparseable(http_status: u16, body: &[u8]) -> PlatformError {
    const SHOWN: usize = 200;
    let shown = String::from_utf8_lossy(body.get(..SHOWN).unwrap_or(body));
    let ellipsis = if body.len() > SHOWN { "…" } else { "" };
    PlatformError {
        http_status,
        code: format!("http_{http_status}"),
        sub_code: None,
        message: format!("unparseable response body: {shown}{ellipsis}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::SignMethod;
    use serde_json::json;

    fn settings() -> Settings {
        Settings {
            shop_id: "s1".into(),
            app_key: "3409409348479354011".into(),
            app_secret: "2ad2355c-01d0-11f8-91dc-05a8cd1054b1".into(),
            api_url: "https://openapi-fxg.jinritemai.com".into(),
            sign_method: SignMethod::HmacSha256,
            chat_tag: "9001".into(),
            send_method: "im.sendMsg".into(),
        }
    }

    /// 2020-09-15 14:48:13 Beijing time.
    const VECTOR_NOW: Millis = 1_600_152_493_000;

    #[test]
    fn timestamp_is_beijing_wall_clock() {
        assert_eq!(timestamp(VECTOR_NOW), "2020-09-15 14:48:13");
        assert_eq!(timestamp(i64::MAX), "9999-12-31 23:59:59");
        assert_eq!(timestamp(i64::MIN), "1970-01-01 08:00:00");
    }

    #[test]
    fn request_reproduces_the_vector() {
        let request = signed_request(
            &settings(),
            "product.getGoodsCategory",
            &json!({"page": "1", "cid": "12"}),
            Some("tok en"),
            VECTOR_NOW,
        );
        assert_eq!(request.method, "POST");
        assert_eq!(
            request.url,
            "https://openapi-fxg.jinritemai.com/product/getGoodsCategory?app_key=3409409348479354011\
             &method=product.getGoodsCategory&access_token=tok%20en&timestamp=2020-09-15%2014%3A48%3A13&v=2\
             &sign_method=hmac-sha256&sign=7bb73a7e14f593bbac6615fc5c30bf6ccc348c060e80e9a2edd96744a1fb8312"
        );
        assert_eq!(request.body, br#"{"cid":"12","page":"1"}"#);
        assert_eq!(request.headers, vec![("content-type".to_owned(), "application/json".to_owned())]);
    }

    #[test]
    fn md5_signing_and_no_token() {
        let settings = Settings { sign_method: SignMethod::Md5, ..settings() };
        let request =
            signed_request(&settings, "product.getGoodsCategory", &json!({"cid": "12", "page": "1"}), None, VECTOR_NOW);
        assert!(!request.url.contains("access_token"), "{}", request.url);
        assert!(request.url.ends_with("&sign_method=md5&sign=cf5c13e551eb2f3e4e883a472e2c12f8"), "{}", request.url);
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode_query_value("a+b c&d=e/你"), "a%2Bb%20c%26d%3De%2F%E4%BD%A0");
    }

    #[test]
    fn parses_envelopes_with_numeric_or_string_codes() {
        let reply =
            ApiReply::parse(br#"{"code":10000,"msg":"success","sub_code":"","sub_msg":"","data":{"msg_id":"m1"}}"#)
                .unwrap();
        assert!(reply.is_success());
        assert_eq!(reply.sub_code, None);
        assert_eq!(reply.data, Some(json!({"msg_id": "m1"})));
        let reply = ApiReply::parse(br#"{"code":"40003","msg":"bad","sub_code":"isv.x","sub_msg":"why"}"#).unwrap();
        assert_eq!(reply.error(200).to_string(), "code 40003 (isv.x): bad: why");
        for bad in [&b"{}"[..], b"[]", b"null", b"<html>", b"{\"code\":1.5}", b"{\"code\":\"\"}"] {
            assert_eq!(ApiReply::parse(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn unparseable_bodies_are_bounded() {
        let body = "x".repeat(1000);
        let err = unparseable(502, body.as_bytes());
        assert_eq!(err.code, "http_502");
        assert!(err.message.len() < 300);
        // Cutting inside a multi-byte character must not panic.
        let _ = unparseable(200, "你".repeat(100).as_bytes());
    }
}
