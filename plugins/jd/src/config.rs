//! The shop configuration this connector reads, validated once in [`Settings::from_config`].
//!
//! Every URL is a key so tests (and the simulator) can point the connector at loopback, and
//! every *modeled* name (PROTOCOLS.md §3.3) is a key so an operator holding a granted JD chat
//! API can switch to the real name without a code change.

use std::fmt;

use huiliu_sdk::{ConfigKey, ConnectorError, Millis, ShopConfig};

use crate::sign::SignMethod;

pub const APP_KEY: &str = "app_key";
pub const APP_SECRET: &str = "app_secret";
pub const ACCESS_TOKEN: &str = "access_token";
pub const REFRESH_TOKEN: &str = "refresh_token";
pub const TOKEN_EXPIRES_AT: &str = "token_expires_at";
pub const SIGN_METHOD: &str = "sign_method";
pub const API_URL: &str = "api_url";
pub const OAUTH_URL: &str = "oauth_url";
pub const STREAM_URL: &str = "stream_url";
pub const STREAM_USER: &str = "stream_user";
pub const SEND_METHOD: &str = "send_method";
pub const CHAT_TYPE: &str = "chat_type";
pub const ORDER_TYPE_PREFIX: &str = "order_type_prefix";
pub const REFUND_TYPE_PREFIX: &str = "refund_type_prefix";
pub const WAITER: &str = "waiter";

/// The JOS API gateway (public).
pub const DEFAULT_API_URL: &str = "https://api.jd.com/routerjson";
/// The OAuth refresh endpoint (public).
pub const DEFAULT_OAUTH_URL: &str = "https://open-oauth.jd.com/oauth2/refresh_token";
/// The legacy JOS message stream (public; JD serves it over plain HTTP on port 80).
pub const DEFAULT_STREAM_URL: &str = "http://comet.jd.com:80/stream";
/// The chat send method (MODELED: JD does not publish its buyer-chat send API).
pub const DEFAULT_SEND_METHOD: &str = "jingdong.im.pop.message.send";
/// The business-message `type` of a buyer chat message (MODELED).
pub const DEFAULT_CHAT_TYPE: &str = "dd_chat";
/// The business-message `type` prefix of order messages, followed by the stage (MODELED).
pub const DEFAULT_ORDER_TYPE_PREFIX: &str = "order_";
/// The business-message `type` prefix of refund messages, followed by the stage (MODELED).
pub const DEFAULT_REFUND_TYPE_PREFIX: &str = "refund_";

/// Every key the shop table may hold, for the manifest.
pub fn config_keys() -> Vec<ConfigKey> {
    vec![
        ConfigKey::required(APP_KEY, "JOS app key (also the stream `id`)."),
        ConfigKey::required(APP_SECRET, "JOS app secret: signs every API call and the stream connect.").secret(),
        ConfigKey::optional(ACCESS_TOKEN, None, "The shop's OAuth access token (sent as `access_token`).").secret(),
        ConfigKey::optional(REFRESH_TOKEN, None, "The shop's OAuth refresh token; without it no refresh is attempted.")
            .secret(),
        ConfigKey::optional(
            TOKEN_EXPIRES_AT,
            None,
            "When the access token expires (epoch ms); refreshed from 1 day before.",
        ),
        ConfigKey::optional(
            SIGN_METHOD,
            Some("md5"),
            "API signing: `md5` (MD5 of secret+params+secret) or `hmacsha256` (HMAC-SHA256, sent and signed).",
        ),
        ConfigKey::optional(API_URL, Some(DEFAULT_API_URL), "JOS API gateway URL (routerjson)."),
        ConfigKey::optional(OAUTH_URL, Some(DEFAULT_OAUTH_URL), "JD OAuth refresh-token endpoint."),
        ConfigKey::optional(STREAM_URL, Some(DEFAULT_STREAM_URL), "JOS message stream URL."),
        ConfigKey::optional(STREAM_USER, None, "Optional `user` form field of the stream connect."),
        ConfigKey::optional(
            SEND_METHOD,
            Some(DEFAULT_SEND_METHOD),
            "JOS method that sends a chat reply (modeled: not published by JD).",
        )
        .modeled(),
        ConfigKey::optional(
            CHAT_TYPE,
            Some(DEFAULT_CHAT_TYPE),
            "Business-message `type` of a buyer chat message on the stream (modeled).",
        )
        .modeled(),
        ConfigKey::optional(
            ORDER_TYPE_PREFIX,
            Some(DEFAULT_ORDER_TYPE_PREFIX),
            "Business-message `type` prefix of order messages, before the stage: created, paid, shipped, received, closed (modeled).",
        )
        .modeled(),
        ConfigKey::optional(
            REFUND_TYPE_PREFIX,
            Some(DEFAULT_REFUND_TYPE_PREFIX),
            "Business-message `type` prefix of refund messages, before the stage: requested, agreed, succeeded, closed (modeled).",
        )
        .modeled(),
        ConfigKey::optional(
            WAITER,
            None,
            "Default JD staff account (waiter) replies are sent as, when the buyer's message named none.",
        ),
    ]
}

/// The validated configuration of one shop. `Debug` redacts the secrets.
#[derive(Clone)]
pub(crate) struct Settings {
    pub shop_id: String,
    pub app_key: String,
    pub app_secret: String,
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
    pub token_expires_at: Option<Millis>,
    pub sign_method: SignMethod,
    pub api_url: String,
    pub oauth_url: String,
    pub stream_url: String,
    pub stream_user: Option<String>,
    pub send_method: String,
    pub chat_type: String,
    pub order_type_prefix: String,
    pub refund_type_prefix: String,
    pub waiter: Option<String>,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("Settings")
            .field("shop_id", &self.shop_id)
            .field("app_key", &self.app_key)
            .field("app_secret", &"<redacted>")
            .field("access_token", &redacted(&self.access_token))
            .field("refresh_token", &redacted(&self.refresh_token))
            .field("token_expires_at", &self.token_expires_at)
            .field("sign_method", &self.sign_method)
            .field("api_url", &self.api_url)
            .field("oauth_url", &self.oauth_url)
            .field("stream_url", &self.stream_url)
            .field("stream_user", &self.stream_user)
            .field("send_method", &self.send_method)
            .field("chat_type", &self.chat_type)
            .field("waiter", &self.waiter)
            .finish()
    }
}

impl Settings {
    /// Reads and validates `config`, reporting every problem at once.
    pub fn from_config(config: &ShopConfig) -> Result<Self, ConnectorError> {
        let mut errors = Vec::new();
        let mut required = |key: &str| match config.require(key) {
            Ok(v) => v.to_owned(),
            Err(e) => {
                errors.push(e.message);
                String::new()
            }
        };
        let app_key = required(APP_KEY);
        let app_secret = required(APP_SECRET);

        let token_expires_at = config.get_i64(TOKEN_EXPIRES_AT).unwrap_or_else(|e| {
            errors.push(e.message);
            None
        });
        let sign_method = match config.get_or(SIGN_METHOD, "md5").parse::<SignMethod>() {
            Ok(m) => m,
            Err(e) => {
                errors.push(format!("shop `{}`: key `{SIGN_METHOD}`: {e}", config.shop_id));
                SignMethod::Md5
            }
        };
        let mut url = |key: &str, default: &str| {
            let value = config.get_or(key, default).trim().to_owned();
            if !(value.starts_with("http://") || value.starts_with("https://")) {
                errors.push(format!(
                    "shop `{}`: key `{key}` must be an http:// or https:// URL, got `{value}`",
                    config.shop_id
                ));
            }
            value
        };
        let api_url = url(API_URL, DEFAULT_API_URL);
        let oauth_url = url(OAUTH_URL, DEFAULT_OAUTH_URL);
        let stream_url = url(STREAM_URL, DEFAULT_STREAM_URL);

        if !errors.is_empty() {
            return Err(ConnectorError::config(errors.join("; ")));
        }
        let owned = |key: &str| config.get(key).map(str::to_owned);
        Ok(Settings {
            shop_id: config.shop_id.clone(),
            app_key,
            app_secret,
            access_token: owned(ACCESS_TOKEN),
            refresh_token: owned(REFRESH_TOKEN),
            token_expires_at,
            sign_method,
            api_url,
            oauth_url,
            stream_url,
            stream_user: owned(STREAM_USER),
            send_method: config.get_or(SEND_METHOD, DEFAULT_SEND_METHOD).to_owned(),
            chat_type: config.get_or(CHAT_TYPE, DEFAULT_CHAT_TYPE).to_owned(),
            order_type_prefix: config.get_or(ORDER_TYPE_PREFIX, DEFAULT_ORDER_TYPE_PREFIX).to_owned(),
            refund_type_prefix: config.get_or(REFUND_TYPE_PREFIX, DEFAULT_REFUND_TYPE_PREFIX).to_owned(),
            waiter: owned(WAITER),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ShopConfig {
        ShopConfig::new("s1").with(APP_KEY, "k").with(APP_SECRET, "s")
    }

    #[test]
    fn defaults_apply() {
        let s = Settings::from_config(&base()).expect("valid config");
        assert_eq!(s.api_url, DEFAULT_API_URL);
        assert_eq!(s.stream_url, DEFAULT_STREAM_URL);
        assert_eq!(s.send_method, DEFAULT_SEND_METHOD);
        assert_eq!(s.chat_type, DEFAULT_CHAT_TYPE);
        assert_eq!(s.sign_method, SignMethod::Md5);
        assert_eq!(s.access_token, None);
    }

    #[test]
    fn reports_every_error_at_once() {
        let config = ShopConfig::new("s1")
            .with(TOKEN_EXPIRES_AT, "soon")
            .with(SIGN_METHOD, "sha1")
            .with(STREAM_URL, "comet.jd.com/stream");
        let err = Settings::from_config(&config).expect_err("invalid config");
        for needle in [APP_KEY, APP_SECRET, TOKEN_EXPIRES_AT, SIGN_METHOD, STREAM_URL] {
            assert!(err.message.contains(&format!("`{needle}`")), "{needle} missing from: {}", err.message);
        }
    }

    #[test]
    fn debug_hides_secrets() {
        let config = base().with(APP_SECRET, "s3cr3t").with(ACCESS_TOKEN, "t0k3n").with(REFRESH_TOKEN, "r3fr3sh");
        let shown = format!("{:?}", Settings::from_config(&config).expect("valid config"));
        for secret in ["s3cr3t", "t0k3n", "r3fr3sh"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn every_read_key_is_declared() {
        let declared: Vec<String> = config_keys().into_iter().map(|k| k.name).collect();
        for key in [
            APP_KEY,
            APP_SECRET,
            ACCESS_TOKEN,
            REFRESH_TOKEN,
            TOKEN_EXPIRES_AT,
            SIGN_METHOD,
            API_URL,
            OAUTH_URL,
            STREAM_URL,
            STREAM_USER,
            SEND_METHOD,
            CHAT_TYPE,
            ORDER_TYPE_PREFIX,
            REFUND_TYPE_PREFIX,
            WAITER,
        ] {
            assert!(declared.iter().any(|d| d == key), "{key} not declared");
        }
        let modeled: Vec<String> = config_keys().into_iter().filter(|k| k.modeled).map(|k| k.name).collect();
        assert_eq!(modeled, [SEND_METHOD, CHAT_TYPE, ORDER_TYPE_PREFIX, REFUND_TYPE_PREFIX]);
    }
}
