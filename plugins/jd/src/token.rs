//! Access-token refresh through JD OAuth (public, PROTOCOLS.md §3.1).
//!
//! `POST {oauth_url}` with the form `app_key`, `app_secret`, `grant_type=refresh_token`,
//! `refresh_token`. JD documents these as query parameters; they go in the form body here so
//! the app secret never lands in a URL (proxies and the host log URLs). JD tokens live long
//! (example `expires_in` one year), so the refresh starts a day before expiry.
//!
//! The answer is read leniently: the token fields may sit at the top level or one or two
//! objects down (`data`, `result`, …); `expires_in` is seconds as a number or a string; a
//! non-zero `code` without an `access_token` is an error.

use huiliu_sdk::{ConnectorError, HttpRequest, HttpResponse, Millis, TokenGrant};
use serde_json::{Map, Value};

use crate::api::FORM_CONTENT_TYPE;
use crate::json::{clip, code_text, int, text};

/// Refresh this long before the access token expires.
pub const REFRESH_MARGIN_MS: Millis = 86_400_000;

/// Whether a token expiring at `expires_at` is due for refresh at `now`.
pub fn due(expires_at: Option<Millis>, now: Millis) -> bool {
    expires_at.is_some_and(|at| now >= at.saturating_sub(REFRESH_MARGIN_MS))
}

/// The refresh request.
pub fn refresh_request(oauth_url: &str, app_key: &str, app_secret: &str, refresh_token: &str) -> HttpRequest {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("app_key", app_key)
        .append_pair("app_secret", app_secret)
        .append_pair("grant_type", "refresh_token")
        .append_pair("refresh_token", refresh_token)
        .finish();
    HttpRequest {
        method: "POST".to_owned(),
        url: oauth_url.to_owned(),
        headers: vec![("content-type".to_owned(), FORM_CONTENT_TYPE.to_owned())],
        body: body.into_bytes(),
    }
}

/// The grant in JD's answer; expiry counts from `now` (when the host received it).
pub fn parse_grant(response: &HttpResponse, now: Millis) -> Result<TokenGrant, ConnectorError> {
    let body: Value = serde_json::from_slice(&response.body).map_err(|_| {
        ConnectorError::platform(format!(
            "token refresh: HTTP {} with a body that is not JSON: {}",
            response.status,
            clip(&String::from_utf8_lossy(&response.body), 200)
        ))
    })?;
    let Some(fields) = find_token_object(&body, 3) else {
        // JD does not publish the refresh error shape (modeled): a refusal with HTTP 401 or 403
        // is taken as the grant refused (authorize again), anything else as temporary.
        if matches!(response.status, 401 | 403) {
            return Err(ConnectorError::reauthorize(format!(
                "the shop must authorize the app again: token refresh refused (HTTP {}): {}",
                response.status,
                describe_failure(&body)
            )));
        }
        return Err(ConnectorError::platform(format!(
            "token refresh failed (HTTP {}): {}",
            response.status,
            describe_failure(&body)
        )));
    };
    let access_token = fields.get("access_token").and_then(text).unwrap_or_default();
    let expires_in =
        fields.get("expires_in").and_then(int).filter(|s| *s > 0).ok_or_else(|| {
            ConnectorError::platform("token refresh: the answer has no positive `expires_in`".to_owned())
        })?;
    let refresh_token = fields.get("refresh_token").and_then(text).filter(|t| !t.is_empty());
    let refresh_expires_at = ["refresh_expires_in", "re_expires_in"]
        .iter()
        .find_map(|k| fields.get(*k).and_then(int))
        .filter(|s| *s > 0)
        .map(|s| now.saturating_add(s.saturating_mul(1000)));
    Ok(TokenGrant {
        access_token,
        expires_at: now.saturating_add(expires_in.saturating_mul(1000)),
        refresh_token,
        refresh_expires_at,
    })
}

/// The first object (breadth first, `depth` levels) holding a non-empty `access_token`.
fn find_token_object(value: &Value, depth: usize) -> Option<&Map<String, Value>> {
    let obj = match value {
        Value::Object(obj) => obj,
        _ => return None,
    };
    if obj.get("access_token").and_then(text).is_some_and(|t| !t.is_empty()) {
        return Some(obj);
    }
    if depth == 0 {
        return None;
    }
    obj.values().find_map(|v| find_token_object(v, depth - 1))
}

/// What went wrong, in the platform's words when it gave any.
fn describe_failure(body: &Value) -> String {
    let obj = body.get("error_response").unwrap_or(body);
    let code = obj.get("code").and_then(code_text);
    let msg = ["msg", "message", "zh_desc", "error_description", "en_desc"]
        .iter()
        .find_map(|k| obj.get(*k).and_then(text))
        .unwrap_or_else(|| "no access_token in the answer".to_owned());
    match code {
        Some(code) => format!("code {code}: {msg}"),
        None => msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_700_000_000_000;

    #[test]
    fn a_refused_grant_asks_for_re_authorization_and_a_server_error_is_temporary() {
        let refused = HttpResponse::json(401, r#"{"code":"19","msg":"refresh_token invalid"}"#);
        let err = parse_grant(&refused, NOW).unwrap_err();
        assert_eq!(err.kind, huiliu_sdk::ErrorKind::Reauthorize, "{}", err.message);
        assert!(err.message.contains("code 19"), "{}", err.message);
        let busy = HttpResponse::json(500, r#"{"code":"66","msg":"busy"}"#);
        assert_eq!(parse_grant(&busy, NOW).unwrap_err().kind, huiliu_sdk::ErrorKind::Platform);
    }

    #[test]
    fn due_a_day_before_expiry() {
        let expires = NOW + REFRESH_MARGIN_MS;
        assert!(due(Some(expires), NOW));
        assert!(!due(Some(expires + 1), NOW));
        assert!(due(Some(NOW - 5), NOW));
        assert!(!due(None, NOW));
        assert!(due(Some(Millis::MIN), NOW));
    }

    #[test]
    fn top_level_grant() {
        let body = r#"{"access_token":"at2","expires_in":31536000,"refresh_token":"rt2","scope":"snsapi_base","open_id":"o","uid":"u","time":1700000000000,"token_type":"bearer","code":0}"#;
        let g = parse_grant(&HttpResponse::json(200, body), NOW).expect("grant");
        assert_eq!(g.access_token, "at2");
        assert_eq!(g.expires_at, NOW + 31_536_000_000);
        assert_eq!(g.refresh_token.as_deref(), Some("rt2"));
        assert_eq!(g.refresh_expires_at, None);
    }

    #[test]
    fn wrapped_grant_with_string_expiry() {
        let body = r#"{"code":"0","data":{"access_token":"at3","expires_in":"86400"}}"#;
        let g = parse_grant(&HttpResponse::json(200, body), NOW).expect("grant");
        assert_eq!((g.access_token.as_str(), g.expires_at, g.refresh_token), ("at3", NOW + 86_400_000, None));
    }

    #[test]
    fn errors_carry_the_platform_words() {
        let err = parse_grant(&HttpResponse::json(200, r#"{"code":402,"msg":"refresh_token过期"}"#), NOW)
            .expect_err("no token");
        assert!(err.message.contains("code 402: refresh_token过期"), "{}", err.message);
        assert!(parse_grant(&HttpResponse::json(200, r#"{"access_token":"x"}"#), NOW).is_err());
        assert!(parse_grant(&HttpResponse::text(502, "bad gateway"), NOW).is_err());
    }

    #[test]
    fn request_keeps_the_secret_out_of_the_url() {
        let req = refresh_request("https://open-oauth.jd.com/oauth2/refresh_token", "k", "s3cr3t", "rt");
        assert!(!req.url.contains("s3cr3t"));
        let body = String::from_utf8(req.body).expect("utf-8");
        assert_eq!(body, "app_key=k&app_secret=s3cr3t&grant_type=refresh_token&refresh_token=rt");
    }
}
