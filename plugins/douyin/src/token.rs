//! Access-token refresh (public convention, PROTOCOLS.md §2.1): the signed OpenAPI call
//! `token.refresh` (path `/token/refresh`) with `{"grant_type":"refresh_token","refresh_token":…}`,
//! answered with `data = {access_token, expires_in (s), refresh_token, …}`.
//!
//! Douyin hands out a new token only within the last hour before expiry (earlier it returns
//! the same one), so a refresh is due from one hour before `token_expires_at` on, or at once
//! when forced after a token error or when no access token is known at all.

use huiliu_sdk::{ConnectorError, HttpResponse, Millis, TokenGrant};
use serde_json::{Value, json};

use crate::config::Tokens;
use crate::json::{field, integer, non_empty};
use crate::openapi::{ApiReply, unparseable};

/// The refresh method.
pub const REFRESH_METHOD: &str = "token.refresh";
/// How long before expiry a refresh is due.
pub const REFRESH_MARGIN_MS: Millis = 3_600_000;

/// Whether the connector should refresh now.
pub fn is_due(tokens: &Tokens, now: Millis, force: bool) -> bool {
    if tokens.refresh_token.is_none() {
        return false;
    }
    if force || tokens.access_token.is_none() {
        return true;
    }
    // Without a known expiry the token is used until the platform calls it expired.
    tokens.expires_at.is_some_and(|expires_at| now >= expires_at.saturating_sub(REFRESH_MARGIN_MS))
}

/// The `param_json` of the refresh call.
pub fn refresh_params(refresh_token: &str) -> Value {
    json!({"grant_type": "refresh_token", "refresh_token": refresh_token})
}

/// Reads the platform's answer to a refresh into a grant.
pub fn parse_grant(response: &HttpResponse, now: Millis) -> Result<TokenGrant, ConnectorError> {
    let refused = |why: String| ConnectorError::platform(format!("token refresh failed: {why}"));
    let Some(reply) = ApiReply::parse(&response.body) else {
        return Err(refused(unparseable(response.status, &response.body).to_string()));
    };
    if !reply.is_success() || !(200..300).contains(&response.status) {
        let error = reply.error(response.status);
        // The grant itself is refused (the refresh token is invalid or past its 14 days, the
        // shop withdrew the app's permission): only re-authorizing the shop helps. Anything
        // else (20000 service error, rate limits) is temporary.
        let sub = error.sub_code.as_deref().unwrap_or("");
        if matches!(error.code.as_str(), "30001" | "50001") || sub.starts_with("isv.refresh-token") {
            return Err(ConnectorError::reauthorize(format!(
                "the shop must authorize the app again: token refresh refused: {error}"
            )));
        }
        return Err(refused(error.to_string()));
    }
    let data = reply.data.as_ref().and_then(Value::as_object).ok_or_else(|| refused("no `data` object".into()))?;
    let access_token = field(data, &["access_token"])
        .and_then(non_empty)
        .ok_or_else(|| refused("no `access_token` in `data`".into()))?;
    let expires_in = field(data, &["expires_in"])
        .and_then(integer)
        .filter(|s| *s > 0)
        .ok_or_else(|| refused("no positive `expires_in` in `data`".into()))?;
    let expires_at = expires_in
        .checked_mul(1000)
        .and_then(|ms| now.checked_add(ms))
        .ok_or_else(|| refused("`expires_in` out of range".into()))?;
    Ok(TokenGrant {
        access_token,
        expires_at,
        refresh_token: field(data, &["refresh_token"]).and_then(non_empty),
        // Douyin does not say when the refresh token ends beyond its documented 14-day life
        // from issue, which the connector cannot know here.
        refresh_expires_at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Millis = 3_600_000;

    fn tokens(access: Option<&str>, refresh: Option<&str>, expires_at: Option<Millis>) -> Tokens {
        Tokens { access_token: access.map(Into::into), refresh_token: refresh.map(Into::into), expires_at }
    }

    #[test]
    fn due_only_within_the_last_hour_or_when_forced() {
        let t = tokens(Some("a"), Some("r"), Some(10 * HOUR));
        assert!(!is_due(&t, 10 * HOUR - HOUR - 1, false));
        assert!(is_due(&t, 10 * HOUR - HOUR, false));
        assert!(is_due(&t, 11 * HOUR, false));
        assert!(is_due(&t, 0, true));
        assert!(is_due(&tokens(None, Some("r"), None), 0, false), "no access token at all");
        assert!(!is_due(&tokens(Some("a"), Some("r"), None), 0, false), "expiry unknown");
        assert!(!is_due(&tokens(Some("a"), None, Some(0)), 10 * HOUR, true), "nothing to refresh with");
        assert!(is_due(&tokens(Some("a"), Some("r"), Some(Millis::MIN)), 0, false));
    }

    #[test]
    fn grant_from_a_success_answer() {
        let body = r#"{"code":10000,"msg":"success","data":{"access_token":"new-at","expires_in":604800,
            "refresh_token":"new-rt","scope":"SCOPE","shop_id":4463798,"shop_name":"店"},"log_id":"x"}"#;
        let grant = parse_grant(&HttpResponse::json(200, body), 1_000).unwrap();
        assert_eq!(
            grant,
            TokenGrant {
                access_token: "new-at".into(),
                expires_at: 1_000 + 604_800_000,
                refresh_token: Some("new-rt".into()),
                refresh_expires_at: None
            }
        );
    }

    #[test]
    fn refusals_name_the_platform_error() {
        let body = r#"{"code":40003,"msg":"参数不合法","sub_code":"isv.refresh-token-expired","sub_msg":"过期"}"#;
        let err = parse_grant(&HttpResponse::json(200, body), 0).unwrap_err();
        assert_eq!(err.kind, huiliu_sdk::ErrorKind::Reauthorize);
        assert!(err.message.contains("40003") && err.message.contains("isv.refresh-token-expired"), "{}", err.message);
        // Temporary or re-authorize, by the platform's code.
        for (body, kind) in [
            (
                r#"{"code":50001,"msg":"无效的授权","sub_code":"isv.refresh-token-invalid","sub_msg":"x"}"#,
                "reauthorize",
            ),
            (r#"{"code":30001,"msg":"无权限","sub_code":"isv.permission-denied","sub_msg":"x"}"#, "reauthorize"),
            (r#"{"code":20000,"msg":"服务不可用","sub_code":"isp.service-error","sub_msg":"x"}"#, "platform"),
            (r#"{"code":60000,"msg":"调用频率超限","sub_code":"isv.traffic-limited","sub_msg":"x"}"#, "platform"),
        ] {
            let err = parse_grant(&HttpResponse::json(200, body), 0).unwrap_err();
            let got = if err.kind == huiliu_sdk::ErrorKind::Reauthorize { "reauthorize" } else { "platform" };
            assert_eq!(got, kind, "{body}");
        }

        for body in [
            r#"{"code":10000,"data":{}}"#,
            r#"{"code":10000,"data":{"access_token":"a"}}"#,
            r#"{"code":10000,"data":{"access_token":"a","expires_in":-5}}"#,
            r#"{"code":10000,"data":{"access_token":"a","expires_in":9223372036854775807}}"#,
            r#"{"code":10000}"#,
            "<html>",
        ] {
            assert!(parse_grant(&HttpResponse::json(200, body), 0).is_err(), "{body}");
        }
        let ok = r#"{"code":10000,"data":{"access_token":"a","expires_in":"60"}}"#;
        assert!(parse_grant(&HttpResponse::json(500, ok), 0).is_err(), "an error status is not a grant");
        assert_eq!(parse_grant(&HttpResponse::json(200, ok), 0).unwrap().expires_at, 60_000);
    }
}
