//! The shop table keys this connector reads, their defaults, and their validation.
//!
//! Every key is a public WeChat convention except where marked MODELED. Every URL is
//! configurable so tests and simulators can point the connector at loopback.

use huiliu_sdk::{ConfigKey, ConnectorError, Millis, ShopConfig};

use crate::crypto::AesKey;

/// The production API host.
pub const DEFAULT_API_URL: &str = "https://api.weixin.qq.com";

/// Every key the shop table may hold, for the manifest.
pub fn config_keys() -> Vec<ConfigKey> {
    vec![
        ConfigKey::required("appid", "The shop's AppID (小店 appid); safe-mode pushes carry it."),
        ConfigKey::required("token", "Message-push Token (消息推送 Token); signs every push.").secret(),
        ConfigKey::optional(
            "encoding_aes_key",
            None,
            "Message-push EncodingAESKey (43 chars); required for safe-mode (encrypted) pushes.",
        )
        .secret(),
        ConfigKey::optional("appsecret", None, "The shop's AppSecret; fetches access tokens (stable_token).")
            .secret()
            .required_to_send(),
        ConfigKey::optional("access_token", None, "A current access token (persisted by the gateway).").secret(),
        ConfigKey::optional("token_expires_at", None, "Access-token expiry, epoch ms; refreshed 5 minutes before it."),
        ConfigKey::optional("api_url", Some(DEFAULT_API_URL), "API base URL (loopback in tests)."),
    ]
}

/// The validated, immutable part of a shop's configuration.
#[derive(Clone)]
pub struct Settings {
    pub shop_id: String,
    pub appid: String,
    pub token: String,
    pub aes_key: Option<AesKey>,
    pub appsecret: Option<String>,
    /// Without a trailing `/`.
    pub api_url: String,
}

// Hand-written so no secret reaches a log line.
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("shop_id", &self.shop_id)
            .field("appid", &self.appid)
            .field("token", &"<redacted>")
            .field("aes_key", &self.aes_key.as_ref().map(|_| "<redacted>"))
            .field("appsecret", &self.appsecret.as_ref().map(|_| "<redacted>"))
            .field("api_url", &self.api_url)
            .finish()
    }
}

/// The shop's access token: configured or persisted at start, replaced by each refresh.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Tokens {
    pub access_token: Option<String>,
    pub expires_at: Option<Millis>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("access_token", &self.access_token.as_ref().map(|_| "<redacted>"))
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Reads and validates a shop table.
pub fn load(config: &ShopConfig) -> Result<(Settings, Tokens), ConnectorError> {
    let shop = &config.shop_id;
    let appid = config.require("appid")?.trim().to_owned();
    let token = config.require("token")?.to_owned();
    if !token.chars().all(|c| c.is_ascii_alphanumeric()) || token.len() < 3 || token.len() > 32 {
        return Err(ConnectorError::config(format!(
            "shop `{shop}`: key `token` must be 3–32 letters or digits (the WeChat console's rule)"
        )));
    }
    let aes_key = match config.get("encoding_aes_key") {
        None => None,
        Some(k) => Some(
            AesKey::from_encoding_key(k)
                .map_err(|e| ConnectorError::config(format!("shop `{shop}`: key `encoding_aes_key`: {}", e.0)))?,
        ),
    };
    let api_url = config.get_or("api_url", DEFAULT_API_URL).trim_end_matches('/').to_owned();
    if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
        return Err(ConnectorError::config(format!("shop `{shop}`: key `api_url` must be an http(s) URL")));
    }
    let tokens = Tokens {
        access_token: config.get("access_token").map(str::to_owned),
        expires_at: config.get_i64("token_expires_at")?,
    };
    let settings = Settings {
        shop_id: shop.clone(),
        appid,
        token,
        aes_key,
        appsecret: config.get("appsecret").map(str::to_owned),
        api_url,
    };
    Ok((settings, tokens))
}
