//! Token refresh through Taobao OAuth (public, PROTOCOLS.md §1.1): POST to the token endpoint
//! with `grant_type=refresh_token`; the answer carries `access_token`, `expires_in` (seconds),
//! `refresh_token` and `re_expires_in` (seconds).
//!
//! Error messages never quote a token response body: a half-readable one may hold a token.

use std::collections::BTreeMap;

use huiliu_sdk::{ConnectorError, HttpRequest, HttpResponse, Millis, ShopConfig, TokenGrant};
use serde_json::Value;

use crate::json::{int, text};
use crate::settings::Settings;
use crate::top::form_post;

/// Refresh this long before the access token expires, so a slow or failed refresh can be
/// retried while the old token still works. Taobao tokens live hours to a year; ten minutes is
/// shorter than any of them.
pub(crate) const REFRESH_MARGIN_MS: Millis = 10 * 60 * 1000;

/// The shop's current OAuth tokens: as configured at start (the host persists each grant and
/// hands it back in the config), then replaced by each refresh. Its `Debug` shows only which
/// tokens are present.
#[derive(Clone, Default)]
pub(crate) struct Tokens {
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
    pub expires_at: Option<Millis>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |t: &Option<String>| if t.is_some() { "<redacted>" } else { "<none>" };
        f.debug_struct("Tokens")
            .field("access_token", &shown(&self.access_token))
            .field("refresh_token", &shown(&self.refresh_token))
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl Tokens {
    /// The tokens the shop table carries at start (keys declared in `settings::config_keys`).
    /// Read after [`Settings::from_config`], so a bad `token_expires_at` is reported after any
    /// other bad key, as before.
    pub(crate) fn from_config(config: &ShopConfig) -> Result<Tokens, ConnectorError> {
        Ok(Tokens {
            access_token: config.get("access_token").map(str::to_owned),
            refresh_token: config.get("refresh_token").map(str::to_owned),
            expires_at: config.get_i64("token_expires_at")?,
        })
    }

    /// Whether a refresh is due: forced, or within [`REFRESH_MARGIN_MS`] of expiry.
    pub(crate) fn refresh_due(&self, now: Millis, force: bool) -> bool {
        force || self.expires_at.is_some_and(|at| at.saturating_sub(now) <= REFRESH_MARGIN_MS)
    }

    /// Starts using `grant`. A grant without a refresh token keeps the old one.
    pub(crate) fn apply(&mut self, grant: &TokenGrant) {
        self.access_token = Some(grant.access_token.clone());
        self.expires_at = Some(grant.expires_at);
        if let Some(refresh) = &grant.refresh_token {
            self.refresh_token = Some(refresh.clone());
        }
    }
}

/// The refresh request.
pub(crate) fn refresh_request(settings: &Settings, refresh_token: &str) -> HttpRequest {
    let params: BTreeMap<String, String> = [
        ("grant_type", "refresh_token"),
        ("client_id", settings.app_key.as_str()),
        ("client_secret", settings.app_secret.as_str()),
        ("refresh_token", refresh_token),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    form_post(&settings.oauth_token_url, &params)
}

/// Reads the refresh answer into a grant, with expiries relative to `now`.
pub(crate) fn parse_grant(response: &HttpResponse, now: Millis) -> Result<TokenGrant, ConnectorError> {
    let status = response.status;
    let body: Option<Value> = serde_json::from_slice(&response.body).ok().filter(Value::is_object);
    if let Some(error) = body.as_ref().and_then(oauth_error) {
        // RFC 6749 §5.2: `invalid_grant` (the refresh token expired or was revoked),
        // `invalid_client` / `unauthorized_client` (the app's credentials or rights) need an
        // operator to authorize again; anything else is temporary.
        let code = body.as_ref().and_then(|b| text(b, "error")).unwrap_or("");
        if matches!(code, "invalid_grant" | "invalid_client" | "unauthorized_client") {
            return Err(ConnectorError::reauthorize(format!(
                "the shop must authorize the app again: token refresh refused (HTTP {status}): {error}"
            )));
        }
        return Err(ConnectorError::platform(format!("token refresh refused (HTTP {status}): {error}")));
    }
    if !(200..300).contains(&status) {
        return Err(ConnectorError::platform(format!("token refresh failed with HTTP {status}")));
    }
    let body = body.ok_or_else(|| ConnectorError::platform("token refresh answer is not a JSON object"))?;
    let missing = |what: &str| ConnectorError::platform(format!("token refresh answer lacks {what}"));
    let access_token = text(&body, "access_token").ok_or_else(|| missing("access_token"))?.to_owned();
    let expires_in = body.get("expires_in").and_then(int).ok_or_else(|| missing("an integer expires_in"))?;
    let expires_at = after(now, expires_in).ok_or_else(|| missing("a sane expires_in"))?;
    let refresh_expires_at = body.get("re_expires_in").and_then(int).and_then(|s| after(now, s));
    Ok(TokenGrant {
        access_token,
        expires_at,
        refresh_token: text(&body, "refresh_token").map(str::to_owned),
        refresh_expires_at,
    })
}

/// `now + seconds`, refusing negative or overflowing values.
fn after(now: Millis, seconds: i64) -> Option<Millis> {
    if seconds < 0 {
        return None;
    }
    now.checked_add(seconds.checked_mul(1000)?)
}

/// OAuth's `{"error": "...", "error_description": "..."}`, or TOP's `error_response` shape.
fn oauth_error(body: &Value) -> Option<String> {
    if let Some(error) = text(body, "error") {
        return Some(match text(body, "error_description") {
            Some(d) => format!("{error}: {d}"),
            None => error.to_owned(),
        });
    }
    let err = body.get("error_response")?;
    let code = err.get("code").map(Value::to_string).unwrap_or_default();
    Some(format!("code {code}: {}", text(err, "sub_msg").or_else(|| text(err, "msg")).unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_700_000_000_000;

    fn answer(status: u16, body: &str) -> HttpResponse {
        HttpResponse::json(status, body.as_bytes().to_vec())
    }

    #[test]
    fn tokens_from_config() {
        let base = ShopConfig::new("s1").with("app_key", "k").with("app_secret", "s");
        let t = Tokens::from_config(&base).expect("valid");
        assert!(t.access_token.is_none() && t.refresh_token.is_none() && t.expires_at.is_none());
        let t = Tokens::from_config(&base.clone().with("access_token", "a").with("token_expires_at", "5")).unwrap();
        assert_eq!((t.access_token.as_deref(), t.expires_at), (Some("a"), Some(5)));
        let err = Tokens::from_config(&base.with("token_expires_at", "tomorrow")).expect_err("not a number");
        assert!(err.message.contains("`token_expires_at`") && err.message.contains("s1"), "{}", err.message);
    }

    #[test]
    fn parses_a_grant() {
        let r = answer(
            200,
            r#"{"access_token":"new","token_type":"Bearer","expires_in":86400,"refresh_token":"r2",
                "re_expires_in":"172800","taobao_user_nick":"%E5%BA%97","taobao_user_id":"2200000000001"}"#,
        );
        assert_eq!(
            parse_grant(&r, NOW),
            Ok(TokenGrant {
                access_token: "new".into(),
                expires_at: NOW + 86_400_000,
                refresh_token: Some("r2".into()),
                refresh_expires_at: Some(NOW + 172_800_000),
            })
        );
    }

    #[test]
    fn refusals_and_garbage_are_errors_without_secrets() {
        let cases = [
            answer(400, r#"{"error":"invalid_grant","error_description":"refresh token expired"}"#),
            answer(200, r#"{"error_response":{"code":27,"msg":"Invalid session"}}"#),
            answer(502, "<html>bad gateway</html>"),
            answer(200, r#"{"expires_in":1,"refresh_token":"SECRET"}"#),
            answer(200, r#"{"access_token":"SECRET","expires_in":"soon"}"#),
            answer(200, r#"{"access_token":"SECRET","expires_in":-1}"#),
            answer(200, r#"{"access_token":"SECRET","expires_in":9223372036854775807}"#),
            answer(200, r#"["access_token"]"#),
        ];
        for r in cases {
            let err = parse_grant(&r, NOW).expect_err("not a grant");
            assert!(!err.message.contains("SECRET"), "{}", err.message);
        }
        let err = parse_grant(&answer(400, r#"{"error":"invalid_grant","error_description":"expired"}"#), NOW);
        assert_eq!(
            err.map_err(|e| (e.kind, e.message)),
            Err((
                huiliu_sdk::ErrorKind::Reauthorize,
                "the shop must authorize the app again: token refresh refused (HTTP 400): invalid_grant: expired"
                    .into()
            ))
        );
        // A server-side failure is temporary.
        for r in [answer(503, r#"{"error":"temporarily_unavailable"}"#), answer(502, "<html>bad gateway</html>")] {
            assert_eq!(parse_grant(&r, NOW).map_err(|e| e.kind), Err(huiliu_sdk::ErrorKind::Platform));
        }
    }
}
