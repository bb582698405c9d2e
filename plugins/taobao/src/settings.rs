//! The shop's configuration, read and validated once in `Connector::new`.
//!
//! Every key is declared in [`config_keys`] (the manifest) from the same constants the reader
//! uses, so the documented defaults cannot drift from the ones applied.

use huiliu_sdk::{ConfigKey, ConnectorError, ShopConfig};

use crate::sign::SignMethod;

/// Production TOP gateway (public).
pub const DEFAULT_API_URL: &str = "https://eco.taobao.com/router/rest";
/// OAuth token endpoint (public).
pub const DEFAULT_OAUTH_TOKEN_URL: &str = "https://oauth.taobao.com/token";
/// Production TMC WebSocket (public).
pub const DEFAULT_TMC_URL: &str = "ws://mc.api.taobao.com/";
/// TMC group every app has (public).
pub const DEFAULT_TMC_GROUP: &str = "default";
/// MODELED: the buyer-chat TMC topic.
pub const DEFAULT_CHAT_TOPIC: &str = "taobao_qianniu_BuyerMessage";
/// MODELED: the TOP method that sends a chat reply.
pub const DEFAULT_SEND_METHOD: &str = "taobao.qianniu.cloudkefu.message.send";
/// Public: the TOP method that hands a buyer to another staff account.
pub const DEFAULT_TRANSFER_METHOD: &str = "taobao.qianniu.cloudkefu.forward";
pub const DEFAULT_SIGN_METHOD: &str = "hmac-sha256";

/// Everything the connector reads from its shop table except the tokens, which change at run
/// time and live in `oauth::Tokens` (read by `Tokens::from_config`). Its `Debug` leaves the
/// secret out.
#[derive(Clone)]
pub(crate) struct Settings {
    pub shop_id: String,
    pub app_key: String,
    pub app_secret: String,
    pub sign_method: SignMethod,
    pub api_url: String,
    pub oauth_token_url: String,
    pub send_method: String,
    pub transfer_method: String,
    /// The staff account replies go out from when the buyer's message named none.
    pub sub_nick: Option<String>,
    pub tmc_url: String,
    pub tmc_group: String,
    pub chat_topic: String,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("shop_id", &self.shop_id)
            .field("app_key", &self.app_key)
            .field("app_secret", &"<redacted>")
            .field("sign_method", &self.sign_method)
            .field("api_url", &self.api_url)
            .field("oauth_token_url", &self.oauth_token_url)
            .field("send_method", &self.send_method)
            .field("transfer_method", &self.transfer_method)
            .field("sub_nick", &self.sub_nick)
            .field("tmc_url", &self.tmc_url)
            .field("tmc_group", &self.tmc_group)
            .field("chat_topic", &self.chat_topic)
            .finish()
    }
}

impl Settings {
    /// Reads and validates the shop table; the error names the shop and the key.
    pub fn from_config(config: &ShopConfig) -> Result<Settings, ConnectorError> {
        let bad =
            |key: &str, why: String| ConnectorError::config(format!("shop `{}`: key `{key}` {why}", config.shop_id));
        let url = |key: &str, default: &str, schemes: &[&str]| -> Result<String, ConnectorError> {
            let value = config.get_or(key, default).trim();
            if schemes.iter().any(|s| value.starts_with(s) && value.len() > s.len()) {
                Ok(value.to_owned())
            } else {
                Err(bad(key, format!("must be a {} URL, got `{value}`", schemes.join(" or "))))
            }
        };
        let name = |key: &str, default: &str| config.get_or(key, default).trim().to_owned();

        let sign_name = config.get_or("sign_method", DEFAULT_SIGN_METHOD);
        let sign_method = SignMethod::parse(sign_name)
            .ok_or_else(|| bad("sign_method", format!("must be one of {:?}, got `{sign_name}`", SignMethod::NAMES)))?;
        let settings = Settings {
            shop_id: config.shop_id.clone(),
            app_key: config.require("app_key")?.trim().to_owned(),
            app_secret: config.require("app_secret")?.to_owned(),
            sign_method,
            api_url: url("api_url", DEFAULT_API_URL, &["https://", "http://"])?,
            oauth_token_url: url("oauth_token_url", DEFAULT_OAUTH_TOKEN_URL, &["https://", "http://"])?,
            send_method: name("send_method", DEFAULT_SEND_METHOD),
            transfer_method: name("transfer_method", DEFAULT_TRANSFER_METHOD),
            sub_nick: config.get("sub_nick").map(str::to_owned),
            tmc_url: url("tmc_url", DEFAULT_TMC_URL, &["wss://", "ws://"])?,
            tmc_group: name("tmc_group", DEFAULT_TMC_GROUP),
            chat_topic: name("chat_topic", DEFAULT_CHAT_TOPIC),
        };
        for (key, value) in [
            ("send_method", &settings.send_method),
            ("transfer_method", &settings.transfer_method),
            ("tmc_group", &settings.tmc_group),
            ("chat_topic", &settings.chat_topic),
        ] {
            if value.is_empty() {
                return Err(bad(key, "must not be blank".into()));
            }
        }
        Ok(settings)
    }
}

/// The manifest's declaration of every key [`Settings::from_config`] and `Tokens::from_config`
/// read.
pub(crate) fn config_keys() -> Vec<ConfigKey> {
    vec![
        ConfigKey::required("app_key", "TOP app key of the shop's Taobao open-platform app."),
        ConfigKey::required("app_secret", "TOP app secret; signs every API call and the TMC connect.").secret(),
        ConfigKey::optional("access_token", None, "The shop's TOP session (access token), sent as `session`.").secret(),
        ConfigKey::optional("refresh_token", None, "OAuth refresh token used to renew `access_token`.").secret(),
        ConfigKey::optional(
            "token_expires_at",
            None,
            "When `access_token` expires, epoch ms; refreshed 10 minutes before.",
        ),
        ConfigKey::optional("api_url", Some(DEFAULT_API_URL), "TOP API gateway URL (sandbox or a simulator in tests)."),
        ConfigKey::optional(
            "sign_method",
            Some(DEFAULT_SIGN_METHOD),
            "TOP signing digest: `md5`, `hmac` or `hmac-sha256`.",
        ),
        ConfigKey::optional("oauth_token_url", Some(DEFAULT_OAUTH_TOKEN_URL), "OAuth token endpoint for refreshes."),
        ConfigKey::optional(
            "send_method",
            Some(DEFAULT_SEND_METHOD),
            "MODELED: TOP method that sends a chat reply; set it to the name your granted API uses.",
        )
        .modeled(),
        ConfigKey::optional(
            "transfer_method",
            Some(DEFAULT_TRANSFER_METHOD),
            "TOP method that transfers a buyer between staff accounts (public API).",
        ),
        ConfigKey::optional(
            "sub_nick",
            None,
            "Staff account (`店铺:客服`) replies are sent from when the buyer's message named none.",
        ),
        ConfigKey::optional("tmc_url", Some(DEFAULT_TMC_URL), "TMC WebSocket URL (sandbox or a simulator in tests)."),
        ConfigKey::optional("tmc_group", Some(DEFAULT_TMC_GROUP), "TMC group name to connect as."),
        ConfigKey::optional(
            "chat_topic",
            Some(DEFAULT_CHAT_TOPIC),
            "MODELED: TMC topic carrying buyer chat messages; set it to your granted topic.",
        )
        .modeled(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ShopConfig {
        ShopConfig::new("s1").with("app_key", "k").with("app_secret", "s")
    }

    #[test]
    fn defaults_apply() {
        let s = Settings::from_config(&base()).expect("valid");
        assert_eq!(s.api_url, DEFAULT_API_URL);
        assert_eq!(s.sign_method, SignMethod::HmacSha256);
        assert_eq!(s.send_method, DEFAULT_SEND_METHOD);
        assert_eq!(s.chat_topic, DEFAULT_CHAT_TOPIC);
        assert_eq!(s.tmc_url, DEFAULT_TMC_URL);
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (ShopConfig::new("s1").with("app_secret", "s"), "`app_key`"),
            (ShopConfig::new("s1").with("app_key", "k"), "`app_secret`"),
            (base().with("sign_method", "sha1"), "`sign_method`"),
            (base().with("api_url", "ftp://x"), "`api_url`"),
            (base().with("tmc_url", "https://mc.api.taobao.com/"), "`tmc_url`"),
            (base().with("oauth_token_url", "https://"), "`oauth_token_url`"),
            (base().with("chat_topic", "  "), "`chat_topic`"),
        ];
        for (config, key) in cases {
            let err = Settings::from_config(&config).expect_err(key);
            assert!(err.message.contains(key) && err.message.contains("s1"), "{key}: {}", err.message);
        }
    }

    #[test]
    fn every_key_read_is_declared_once() {
        let keys = config_keys();
        for name in [
            "app_key",
            "app_secret",
            "access_token",
            "refresh_token",
            "token_expires_at",
            "api_url",
            "sign_method",
            "oauth_token_url",
            "send_method",
            "transfer_method",
            "sub_nick",
            "tmc_url",
            "tmc_group",
            "chat_topic",
        ] {
            assert_eq!(keys.iter().filter(|k| k.name == name).count(), 1, "{name}");
        }
        assert_eq!(keys.len(), 14);
        let modeled: Vec<_> = keys.iter().filter(|k| k.modeled).map(|k| k.name.as_str()).collect();
        assert_eq!(modeled, ["send_method", "chat_topic"]);
        let secret: Vec<_> = keys.iter().filter(|k| k.secret).map(|k| k.name.as_str()).collect();
        assert_eq!(secret, ["app_secret", "access_token", "refresh_token"]);
    }
}
