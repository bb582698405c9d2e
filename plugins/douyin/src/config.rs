//! The shop table keys this connector reads, their defaults, and their validation.
//!
//! `chat_tag` and `send_method` name the **modeled** buyer-chat API (PROTOCOLS.md §2.3); every
//! other key is a public Douyin convention. Every URL is configurable so tests and simulators
//! can point the connector at loopback.

use huiliu_sdk::{ConfigKey, ConnectorError, Millis, ShopConfig, TokenGrant};

use crate::sign::SignMethod;

/// The production OpenAPI gateway.
pub const DEFAULT_API_URL: &str = "https://openapi-fxg.jinritemai.com";
/// The push tag of a buyer chat message (modeled).
pub const DEFAULT_CHAT_TAG: &str = "9001";
/// The method that sends a chat reply (modeled).
pub const DEFAULT_SEND_METHOD: &str = "im.sendMsg";
/// Signing of OpenAPI calls.
pub const DEFAULT_SIGN_METHOD: &str = "hmac-sha256";

/// Public push tags the modeled chat tag must not shadow: the address check and the order and
/// refund tags this connector maps (plus 102, shipped, which a future mapping will want).
const RESERVED_TAGS: [&str; 7] = ["0", "100", "101", "102", "103", "200", "201"];

/// Every key the shop table may hold, for the manifest.
pub fn config_keys() -> Vec<ConfigKey> {
    vec![
        ConfigKey::required("app_key", "Douyin app key; pushes carry it in the `app-id` header."),
        ConfigKey::required("app_secret", "Douyin app secret; signs API calls and verifies pushes.").secret(),
        ConfigKey::optional("access_token", None, "Shop access token (7 days); required to send.").secret(),
        ConfigKey::optional("refresh_token", None, "Shop refresh token (14 days); required to refresh.").secret(),
        ConfigKey::optional(
            "token_expires_at",
            None,
            "Access-token expiry, epoch ms; refreshed within the last hour before it.",
        ),
        ConfigKey::optional("api_url", Some(DEFAULT_API_URL), "OpenAPI gateway URL (sandbox or loopback in tests)."),
        ConfigKey::optional("sign_method", Some(DEFAULT_SIGN_METHOD), "OpenAPI signing: `hmac-sha256` or `md5`."),
        ConfigKey::optional("chat_tag", Some(DEFAULT_CHAT_TAG), "MODELED: push tag of a buyer chat message.").modeled(),
        ConfigKey::optional("send_method", Some(DEFAULT_SEND_METHOD), "MODELED: OpenAPI method that sends a reply.")
            .modeled(),
    ]
}

/// The validated, immutable part of a shop's configuration.
#[derive(Clone)]
pub struct Settings {
    pub shop_id: String,
    pub app_key: String,
    pub app_secret: String,
    /// Without a trailing `/`.
    pub api_url: String,
    pub sign_method: SignMethod,
    pub chat_tag: String,
    pub send_method: String,
}

// Hand-written so the secret never reaches a log line.
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("shop_id", &self.shop_id)
            .field("app_key", &self.app_key)
            .field("app_secret", &"<redacted>")
            .field("api_url", &self.api_url)
            .field("sign_method", &self.sign_method)
            .field("chat_tag", &self.chat_tag)
            .field("send_method", &self.send_method)
            .finish()
    }
}

/// The shop's tokens: configured at start, replaced by each refresh.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Tokens {
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
    pub expires_at: Option<Millis>,
}

impl Tokens {
    /// Starts using a fresh grant. A grant without a refresh token keeps the old one (Douyin
    /// always returns one, but a missing field must not lose the only way to refresh).
    pub fn apply(&mut self, grant: &TokenGrant) {
        self.access_token = Some(grant.access_token.clone());
        self.expires_at = Some(grant.expires_at);
        if let Some(rt) = &grant.refresh_token {
            self.refresh_token = Some(rt.clone());
        }
    }
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

/// Reads and validates a shop table, reporting every problem at once.
pub fn load(config: &ShopConfig) -> Result<(Settings, Tokens), ConnectorError> {
    let mut errors = Vec::new();
    let mut require = |key: &str| match config.get(key).map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) => v.to_owned(),
        None => {
            errors.push(format!("missing required key `{key}`"));
            String::new()
        }
    };
    let app_key = require("app_key");
    let app_secret = require("app_secret");

    let api_url = config.get_or("api_url", DEFAULT_API_URL).trim().trim_end_matches('/').to_owned();
    if !(api_url.starts_with("https://") || api_url.starts_with("http://")) || api_url.contains(['?', '#', ' ']) {
        errors.push(format!("key `api_url` must be an http(s) URL without query or fragment, got `{api_url}`"));
    }

    let sign_method = config.get_or("sign_method", DEFAULT_SIGN_METHOD);
    let sign_method = SignMethod::parse(sign_method).unwrap_or_else(|| {
        errors.push(format!("key `sign_method` must be `hmac-sha256` or `md5`, got `{sign_method}`"));
        SignMethod::HmacSha256
    });

    let chat_tag = config.get_or("chat_tag", DEFAULT_CHAT_TAG).trim().to_owned();
    if RESERVED_TAGS.contains(&chat_tag.as_str()) {
        errors.push(format!("key `chat_tag` must not be a public Douyin tag (0, 100-103, 200-201), got `{chat_tag}`"));
    }

    let send_method = config.get_or("send_method", DEFAULT_SEND_METHOD).trim().to_owned();
    if !is_method_name(&send_method) {
        errors.push(format!("key `send_method` must be a dotted method name like `im.sendMsg`, got `{send_method}`"));
    }

    let expires_at = config.get("token_expires_at").and_then(|v| {
        let parsed = v.trim().parse::<Millis>().ok();
        if parsed.is_none() {
            errors.push(format!("key `token_expires_at` must be epoch milliseconds, got `{v}`"));
        }
        parsed
    });

    if !errors.is_empty() {
        return Err(ConnectorError::config(format!("shop `{}`: {}", config.shop_id, errors.join("; "))));
    }
    let token = |key: &str| config.get(key).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let settings =
        Settings { shop_id: config.shop_id.clone(), app_key, app_secret, api_url, sign_method, chat_tag, send_method };
    let tokens = Tokens { access_token: token("access_token"), refresh_token: token("refresh_token"), expires_at };
    Ok((settings, tokens))
}

/// `im.sendMsg`: dot-separated segments of ASCII letters, digits and `_`; it becomes a URL path.
fn is_method_name(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|seg| !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ShopConfig {
        ShopConfig::new("s1").with("app_key", "k").with("app_secret", "s")
    }

    #[test]
    fn defaults_apply() {
        let (settings, tokens) = load(&base()).unwrap();
        assert_eq!(settings.api_url, DEFAULT_API_URL);
        assert_eq!(settings.chat_tag, "9001");
        assert_eq!(settings.send_method, "im.sendMsg");
        assert_eq!(settings.sign_method, SignMethod::HmacSha256);
        assert_eq!(tokens, Tokens::default());
    }

    #[test]
    fn overrides_apply() {
        let config = base()
            .with("api_url", "http://127.0.0.1:8080/")
            .with("sign_method", "md5")
            .with("chat_tag", "777")
            .with("send_method", "im.send_message")
            .with("access_token", "at")
            .with("refresh_token", "rt")
            .with("token_expires_at", "1700000000000");
        let (settings, tokens) = load(&config).unwrap();
        assert_eq!(settings.api_url, "http://127.0.0.1:8080");
        assert_eq!(settings.sign_method, SignMethod::Md5);
        assert_eq!(settings.chat_tag, "777");
        assert_eq!(settings.send_method, "im.send_message");
        assert_eq!(tokens.access_token.as_deref(), Some("at"));
        assert_eq!(tokens.refresh_token.as_deref(), Some("rt"));
        assert_eq!(tokens.expires_at, Some(1_700_000_000_000));
    }

    #[test]
    fn reports_every_error_at_once() {
        let config = ShopConfig::new("s1")
            .with("api_url", "ftp://x")
            .with("sign_method", "sha1")
            .with("send_method", "im/send")
            .with("chat_tag", "101")
            .with("token_expires_at", "soon");
        let err = load(&config).unwrap_err();
        assert_eq!(err.kind, huiliu_sdk::ErrorKind::Config);
        for needle in ["app_key", "app_secret", "api_url", "sign_method", "send_method", "chat_tag", "token_expires_at"]
        {
            assert!(err.message.contains(needle), "{needle} missing from: {}", err.message);
        }
    }

    #[test]
    fn debug_hides_secrets() {
        let (settings, tokens) = load(&base().with("app_secret", "TOPSECRET").with("access_token", "TOKEN1")).unwrap();
        let shown = format!("{settings:?} {tokens:?}");
        assert!(!shown.contains("TOPSECRET") && !shown.contains("TOKEN1"), "{shown}");
    }

    #[test]
    fn every_read_key_is_declared() {
        let declared: Vec<String> = config_keys().into_iter().map(|k| k.name).collect();
        for key in [
            "app_key",
            "app_secret",
            "access_token",
            "refresh_token",
            "token_expires_at",
            "api_url",
            "sign_method",
            "chat_tag",
            "send_method",
        ] {
            assert!(declared.iter().any(|d| d == key), "{key}");
        }
        let modeled: Vec<String> = config_keys().into_iter().filter(|k| k.modeled).map(|k| k.name).collect();
        assert_eq!(modeled, ["chat_tag", "send_method"]);
    }
}
