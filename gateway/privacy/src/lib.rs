//! # huiliu-privacy — the privacy stages
//!
//! Two filters, each a pure synchronous library the gateway's flow calls:
//!
//! 1. **Privacy masking** (隐私脱敏, [`mask`]) — inbound, before anything is stored: finds mobile
//!    and fixed-line numbers, ID numbers, bank cards, e-mail, street and village addresses,
//!    WeChat ids and QQ numbers (obfuscated forms included: every digit script, look-alike
//!    letters, separators and emoji, numbers given in parts, spoken e-mail) and replaces
//!    exactly the characters the buyer typed with the customary mask; public hotlines stay.
//!    Entry point: [`Masker::mask`]; [`Masker::explain`] says why for every span. [`seal`]
//!    keeps the original, encrypted, for an audited reveal.
//! 2. **Compliance** ([`compliance`]) — outbound replies, before the outbox: Advertising
//!    Law absolute terms and off-platform contact (also when split by spaces or symbols),
//!    each warned about or blocked per config.
//!    Entry point: [`Compliance::check`].
//!
//! The third screening stage, the blacklist, is backed by the store and lives in the daemon
//! (`services/blacklist.rs`); its `[blacklist]` section of `filters.toml` is typed here.
//!
//! No async runtime, no store: `huiliu mask` and the benches use this crate alone.
//!
//! Configuration: `filters.toml` (`config/filters.toml` ships the defaults, every key
//! commented), deserialized into [`FiltersConfig`]. [`FiltersConfig::validate`] returns every
//! problem with its dotted key; [`Filters::new`] compiles both filters once (`Send + Sync`,
//! share behind an `Arc`, swap atomically on reload; a bad file keeps the running filters).
//!
//! Architecture invariant: nothing here does I/O, reads a clock or panics on any input; the
//! same text and config always give the same result.

#![deny(unsafe_code)]

pub mod compliance;
pub mod mask;
pub(crate) mod normalize;
pub mod seal;

use serde::Deserialize;

pub use compliance::{Action, Category, Compliance, ComplianceConfig, Hit, RuleAction, Verdict};
pub use mask::{CustomPattern, Detectors, Finding, MaskConfig, Masked, Masker, PiiKind};

/// `filters.toml`: the privacy mask and the compliance check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FiltersConfig {
    /// `[mask]`: privacy masking of inbound (and stored) text.
    pub mask: MaskConfig,
    /// `[compliance]`: checks of outbound agent replies.
    pub compliance: ComplianceConfig,
    /// `[blacklist]`: what restricted buyers are told.
    pub blacklist: BlacklistConfig,
}

/// `[blacklist]` in `filters.toml`. (Entries themselves live in the store and are managed with
/// `huiliu blacklist` or the API.)
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlacklistConfig {
    /// The auto-reply a `restrict`-level buyer gets once per session (their sessions get no
    /// agent). Empty: no reply.
    pub restrict_reply: String,
}

impl Default for BlacklistConfig {
    fn default() -> Self {
        BlacklistConfig {
            restrict_reply: "您好，您的问题已记录，我们会通过平台消息尽快处理，请耐心等待。".into()
        }
    }
}

impl FiltersConfig {
    /// Every problem in the configuration, as (dotted key, message): bad regular expressions,
    /// empty or duplicate names and words, unknown actions, allow words that allow nothing.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errors = self.mask.validate();
        errors.extend(self.compliance.validate());
        errors
    }
}

/// Both compiled filters.
#[derive(Debug, Clone)]
pub struct Filters {
    pub masker: Masker,
    pub compliance: Compliance,
}

impl Filters {
    /// Compiles `config`, or returns every problem in it.
    pub fn new(config: &FiltersConfig) -> Result<Filters, Vec<(String, String)>> {
        let errors = config.validate();
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Filters { masker: Masker::new(&config.mask)?, compliance: Compliance::new(&config.compliance)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped `config/filters.toml`, parsed the way the gateway parses its TOML files.
    fn shipped() -> FiltersConfig {
        let text = include_str!("../../../config/filters.toml");
        config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize::<FiltersConfig>())
            .unwrap_or_else(|e| panic!("config/filters.toml does not parse: {e}"))
    }

    #[test]
    fn shipped_file_equals_the_defaults() {
        assert_eq!(shipped(), FiltersConfig::default());
        assert!(FiltersConfig::default().validate().is_empty());
        assert!(Filters::new(&FiltersConfig::default()).is_ok());
    }

    #[test]
    fn filters_are_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Filters>();
        assert_send_sync::<Masker>();
        assert_send_sync::<Compliance>();
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let text = "[mask]\nprotect_word = [\"x\"]\n";
        let r = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize::<FiltersConfig>());
        assert!(r.unwrap_err().to_string().contains("protect_word"));
    }

    #[test]
    fn validation_collects_every_error_with_its_key() {
        let text = r#"
[mask]
protect_words = ["订单", ""]
[[mask.custom]]
name = "member"
regex = "会员号(\\d{8}"
[[mask.custom]]
name = "mobile"
regex = "a*"
[[mask.custom]]
name = "member"
regex = "VIP\\d{6}"
keep_prefix = 3
[compliance.absolute_terms]
action = "forbid"
terms = ["最", ""]
allow = []
[compliance.off_platform]
action = "block"
phrases = ["加微信", " "]
allow = []
"#;
        let cfg: FiltersConfig = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize())
            .unwrap();
        let errors = cfg.validate();
        let keys: Vec<&str> = errors.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "mask.protect_words[1]",
                "mask.custom[0].regex",
                "mask.custom[1].name",
                "mask.custom[1].regex",
                "mask.custom[2].name",
                "compliance.absolute_terms.action",
                "compliance.absolute_terms.terms[1]",
                "compliance.off_platform.phrases[1]",
            ],
            "{errors:#?}"
        );
        assert!(errors[1].1.contains("invalid regular expression"), "{}", errors[1].1);
        assert!(errors[3].1.contains("empty string"));
        assert!(errors[4].1.contains("duplicate"));
        assert!(errors[5].1.contains("forbid"));
        assert_eq!(Filters::new(&cfg).unwrap_err(), errors);
    }
}
