//! The access token, from `stable_token`
//! (<https://developers.weixin.qq.com/doc/store/shop/API/apimgnt/common/api_getstableaccesstoken>):
//! `POST {api_url}/cgi-bin/stable_token` with
//! `{"grant_type":"client_credential","appid","secret","force_refresh"}` answers
//! `{"access_token","expires_in"}` (7200 s). The stable token is shared by every caller of the
//! same appid and is not invalidated by an ordinary fetch, so refreshing early is harmless;
//! `force_refresh` (limited per day) is set only after the platform refused the token.

use huiliu_sdk::{ConnectorError, HttpRequest, HttpResponse, Millis, TokenGrant};
use serde_json::{Value, json};

use crate::classify::parse_reply;
use crate::config::{Settings, Tokens};

/// The token endpoint path.
pub const TOKEN_PATH: &str = "/cgi-bin/stable_token";
/// Refresh this long before expiry.
pub const MARGIN_MS: Millis = 5 * 60_000;

/// Whether a refresh is due.
pub fn is_due(tokens: &Tokens, now: Millis, force: bool) -> bool {
    force || tokens.access_token.is_none() || tokens.expires_at.is_some_and(|at| at - now <= MARGIN_MS)
}

/// The stable_token request, or `None` without an appsecret (a configured token is used as it is).
pub fn refresh_request(settings: &Settings, force: bool) -> Option<HttpRequest> {
    let secret = settings.appsecret.as_deref()?;
    let body = json!({
        "grant_type": "client_credential",
        "appid": settings.appid,
        "secret": secret,
        "force_refresh": force,
    });
    Some(HttpRequest {
        method: "POST".into(),
        url: format!("{}{TOKEN_PATH}", settings.api_url),
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    })
}

/// Reads a grant.
pub fn parse_grant(response: &HttpResponse, now: Millis) -> Result<TokenGrant, ConnectorError> {
    let obj = parse_reply(response.status, &response.body)
        .map_err(|e| ConnectorError::platform(format!("stable_token refused: {e}")))?;
    let access_token = obj
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ConnectorError::platform("stable_token answered without `access_token`"))?;
    let expires_in = obj.get("expires_in").and_then(Value::as_i64).unwrap_or(7200).clamp(60, 86_400);
    Ok(TokenGrant {
        access_token: access_token.to_owned(),
        expires_at: now + expires_in * 1000,
        refresh_token: None,
        refresh_expires_at: None,
    })
}
