//! Gateway configuration: TOML files in one directory, environment overrides, and validation
//! that reports **every** error at once with its file and key.
//!
//! Files (all optional; a missing file means defaults):
//! - `huiliu.toml` — server, plugins, store, logging. Any key can be overridden from the
//!   environment as `HUILIU__<SECTION>__<KEY>` (e.g. `HUILIU__SERVER__LISTEN=0.0.0.0:8080`).
//! - `shops.toml` — one `[[shop]]` per storefront with its connector settings. A setting
//!   written `"${NAME}"` is read from environment variable `NAME` (keep secrets out of files).
//!
//! The struct doc comments below are the reference for each key; `config/huiliu.toml` in the
//! repository repeats them as comments.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use config::{Config, Environment, File, FileFormat};
use huiliu_domain::ConfigError;

use crate::outbox::OutboxConfig;
use crate::plugins::Shop;
use crate::services::auth::ApiConfig;
use crate::services::dashboard::DashboardConfig;
use serde::Deserialize;

/// `[server]`: the HTTP listener for pushes, the agent API, health and metrics.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on. Default `127.0.0.1:8080`.
    pub listen: String,
    /// Largest accepted push body in bytes; larger pushes are refused with 413. Default 1 MiB.
    pub max_push_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig { listen: "127.0.0.1:8080".into(), max_push_bytes: 1 << 20 }
    }
}

/// `[plugins]`: where connector libraries are loaded from.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    /// Directory scanned for connector libraries (`*.so` on Linux). Relative paths are relative
    /// to the config directory. Empty (the default): the directory holding the `huiliu`
    /// binary, which is where `cargo build --release` puts the bundled plugins.
    pub dir: String,
}

/// Log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Readable lines for a terminal.
    #[default]
    Human,
    /// One JSON object per line, for log shippers.
    Json,
}

/// `[log]`: tracing output.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `human` or `json`. Default `human`.
    pub format: LogFormat,
    /// A tracing filter (`info`, `huiliu=debug,info`). `RUST_LOG` wins when set. Default `info`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { format: LogFormat::Human, level: "info".into() }
    }
}

/// `[store]`: where sessions, messages and the outbox live.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite://PATH` (the embedded default; a relative PATH is relative to the config
    /// directory, and its folder is created) or `postgres://USER@HOST:PORT/DB` for several
    /// nodes. Default `sqlite://../data/huiliu.db`. Override the URL (with its password) from
    /// the environment: `HUILIU__STORE__URL`.
    pub url: String,
    /// Let concurrent pushes share one commit (one fsync). Default true.
    pub group_commit: bool,
    /// PostgreSQL: intake writers side by side, each on its own connection (a buyer's events
    /// always through the same one). Default 1, 1–32. SQLite has one writer.
    pub pg_writers: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { url: "sqlite://../data/huiliu.db".into(), group_commit: true, pg_writers: 1 }
    }
}

/// `[sessions]`: session lifecycle.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionsConfig {
    /// A session with no message for this many minutes is closed; the buyer's next message
    /// opens a new one. Default 30.
    pub idle_close_minutes: u32,
}

impl Default for SessionsConfig {
    fn default() -> Self {
        SessionsConfig { idle_close_minutes: 30 }
    }
}

/// `[privacy]`: keeping originals of masked messages for audited reveal.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyConfig {
    /// 64 hex digits (32 bytes). When set, the original text of a message whose personal data
    /// was masked is kept encrypted, and a lead or admin can reveal it (audited). Empty (the
    /// default): originals are not kept. Set it from the environment:
    /// `HUILIU__PRIVACY__SEAL_KEY`. Losing the key makes the kept originals unreadable.
    pub seal_key: String,
}

/// One `[[shop]]` in `shops.toml`: a storefront on one platform.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShopEntry {
    /// The gateway's id for the shop: lowercase letters, digits and `-`; unique; appears in the
    /// push URL `/hooks/{platform}/{id}`.
    pub id: String,
    /// The platform, i.e. the id of the connector plugin that serves it (`taobao`, `douyin`, `jd`).
    pub platform: String,
    /// A display name for the workbench. Defaults to the id.
    #[serde(default)]
    pub name: Option<String>,
    /// Whether the shop is served. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Connector settings, passed to the plugin as strings (see `huiliu plugins list` and each
    /// plugin's README for its keys). `"${NAME}"` reads environment variable `NAME`.
    #[serde(default)]
    pub settings: BTreeMap<String, config::Value>,
}

fn yes() -> bool {
    true
}

/// The whole gateway configuration.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The directory the configuration was read from.
    pub dir: PathBuf,
    pub server: ServerConfig,
    pub plugins: PluginsConfig,
    pub log: LogConfig,
    pub store: StoreConfig,
    pub sessions: SessionsConfig,
    pub outbox: crate::outbox::OutboxConfig,
    pub api: crate::services::auth::ApiConfig,
    pub dashboard: crate::services::dashboard::DashboardConfig,
    pub privacy: PrivacyConfig,
    /// `[retention]`: how long personal data is kept.
    pub retention: huiliu_store::Retention,
    /// `[cluster]`: several nodes on PostgreSQL and NATS (none: one node, as by default).
    pub cluster: Option<crate::cluster::ClusterConfig>,
    /// `users.toml`: workbench logins (none when the file is absent).
    pub users: Vec<crate::services::auth::UserConfig>,
    /// `quick_replies.toml`: the workbench's reply templates (built-in ones when absent).
    pub quick_replies: Vec<crate::services::quick::QuickReply>,
    /// `filters.toml`: privacy masking and outbound compliance.
    pub filters: huiliu_privacy::FiltersConfig,
    /// `routing.toml`: skill groups, agents, rules. `None` when the file is absent: sessions
    /// then wait unrouted.
    pub routing: Option<huiliu_routing::RoutingConfig>,
    /// `faq.toml` (with the CSV exports it names): the knowledge base; `None` when absent.
    pub knowledge: Option<huiliu_knowledge::FaqConfig>,
    pub shops: Vec<Shop>,
}

impl GatewayConfig {
    /// The parsed listen address (validated at load).
    pub fn listen_addr(&self) -> SocketAddr {
        self.server.listen.parse().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8080)))
    }

    /// The plugins directory, resolved.
    pub fn plugins_dir(&self) -> PathBuf {
        if self.plugins.dir.is_empty() {
            std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
                .unwrap_or_else(|| PathBuf::from("."))
        } else {
            let p = PathBuf::from(&self.plugins.dir);
            if p.is_absolute() { p } else { self.dir.join(p) }
        }
    }

    /// The store URL with a relative SQLite path resolved against the config directory.
    pub fn store_url(&self) -> String {
        let url = self.store.url.as_str();
        let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) else {
            return url.to_owned();
        };
        if path.starts_with('/') || path == ":memory:" {
            return format!("sqlite://{path}");
        }
        format!("sqlite://{}", self.dir.join(path).display())
    }

    /// The configuration with every default, for a directory that holds no files.
    pub fn defaults(dir: &Path) -> Self {
        GatewayConfig {
            dir: dir.to_path_buf(),
            server: ServerConfig::default(),
            plugins: PluginsConfig::default(),
            log: LogConfig::default(),
            store: StoreConfig::default(),
            sessions: SessionsConfig::default(),
            outbox: OutboxConfig::default(),
            api: ApiConfig::default(),
            dashboard: DashboardConfig::default(),
            privacy: PrivacyConfig::default(),
            retention: huiliu_store::Retention::default(),
            cluster: None,
            users: Vec::new(),
            quick_replies: crate::services::quick::defaults(),
            filters: huiliu_privacy::FiltersConfig::default(),
            routing: None,
            knowledge: None,
            shops: Vec::new(),
        }
    }
}

/// The main file's name.
pub const MAIN_FILE: &str = "huiliu.toml";
/// The shops file's name.
pub const SHOPS_FILE: &str = "shops.toml";
/// The filters file's name.
pub const FILTERS_FILE: &str = "filters.toml";

/// Loads and validates the configuration in `dir`, reporting every problem found.
pub fn load(dir: &Path) -> Result<GatewayConfig, Vec<ConfigError>> {
    load_with_env(dir, &|name| std::env::var(name).ok())
}

/// [`load`] with an injectable environment lookup (for tests).
pub fn load_with_env(dir: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<GatewayConfig, Vec<ConfigError>> {
    let (cfg, errors) = load_partial(dir, env);
    if errors.is_empty() { Ok(cfg) } else { Err(errors) }
}

/// Loads what can be loaded: the configuration with defaults where a section is broken, and
/// every error found. `huiliu check` uses the partial result to go on checking shops.
pub fn load_partial(dir: &Path, env: &dyn Fn(&str) -> Option<String>) -> (GatewayConfig, Vec<ConfigError>) {
    let mut errors = Vec::new();
    let main_file = dir.join(MAIN_FILE).display().to_string();
    if !dir.is_dir() {
        let error = ConfigError {
            file: dir.display().to_string(),
            key: String::new(),
            message: "config directory does not exist".into(),
        };
        return (GatewayConfig::defaults(dir), vec![error]);
    }
    let mut cfg = GatewayConfig::defaults(dir);

    let main = Config::builder()
        .add_source(File::new(&main_file, FileFormat::Toml).required(false))
        .add_source(Environment::with_prefix("HUILIU").prefix_separator("__").separator("__"))
        .build();
    match main {
        Err(e) => errors.push(ConfigError { file: main_file.clone(), key: String::new(), message: e.to_string() }),
        Ok(main) => {
            check_top_level_keys(
                &main,
                &main_file,
                &[
                    "server",
                    "plugins",
                    "log",
                    "store",
                    "sessions",
                    "outbox",
                    "api",
                    "dashboard",
                    "privacy",
                    "retention",
                    "cluster",
                ],
                &mut errors,
            );
            if let Some(v) = section(&main, "server", &main_file, &mut errors) {
                cfg.server = v;
            }
            if let Some(v) = section(&main, "plugins", &main_file, &mut errors) {
                cfg.plugins = v;
            }
            if let Some(v) = section(&main, "log", &main_file, &mut errors) {
                cfg.log = v;
            }
            if let Some(v) = section(&main, "store", &main_file, &mut errors) {
                cfg.store = v;
            }
            if let Some(v) = section(&main, "sessions", &main_file, &mut errors) {
                cfg.sessions = v;
            }
            if let Some(v) = section(&main, "outbox", &main_file, &mut errors) {
                cfg.outbox = v;
            }
            if let Some(v) = section::<ApiConfig>(&main, "api", &main_file, &mut errors) {
                for (i, origin) in v.image_origins.iter().enumerate() {
                    if let Err(message) = crate::api::headers::check_image_origin(origin) {
                        errors.push(ConfigError {
                            file: main_file.clone(),
                            key: format!("api.image_origins[{i}]"),
                            message,
                        });
                    }
                }
                cfg.api = v;
            }
            if let Some(v) = section(&main, "dashboard", &main_file, &mut errors) {
                cfg.dashboard = v;
            }
            if let Some(v) = section(&main, "privacy", &main_file, &mut errors) {
                cfg.privacy = v;
            }
            if let Some(v) = section(&main, "retention", &main_file, &mut errors) {
                cfg.retention = v;
            }
            cfg.cluster = section(&main, "cluster", &main_file, &mut errors);
        }
    }
    if cfg.server.listen.parse::<SocketAddr>().is_err() {
        errors.push(ConfigError {
            file: main_file.clone(),
            key: "server.listen".into(),
            message: format!("`{}` is not an address like 127.0.0.1:8080", cfg.server.listen),
        });
    }
    if cfg.server.max_push_bytes < 1024 {
        errors.push(ConfigError {
            file: main_file.clone(),
            key: "server.max_push_bytes".into(),
            message: "must be at least 1024".into(),
        });
    }
    let url = &cfg.store.url;
    if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        errors.push(ConfigError {
            file: main_file.clone(),
            key: "store.url".into(),
            message: format!("`{url}` is neither sqlite://PATH nor postgres://…"),
        });
    }
    if !(1..=32).contains(&cfg.store.pg_writers) {
        errors.push(ConfigError {
            file: main_file.clone(),
            key: "store.pg_writers".into(),
            message: format!("{} is not between 1 and 32", cfg.store.pg_writers),
        });
    }
    if !cfg.privacy.seal_key.is_empty()
        && let Err(message) = huiliu_privacy::seal::Sealer::from_hex(&cfg.privacy.seal_key)
    {
        errors.push(ConfigError { file: main_file.clone(), key: "privacy.seal_key".into(), message });
    }
    if let Some(cluster) = &cfg.cluster {
        for (key, message) in cluster.validate(&cfg.store.url) {
            errors.push(ConfigError { file: main_file.clone(), key, message });
        }
    }
    for (key, message) in cfg.retention.validate() {
        errors.push(ConfigError { file: main_file.clone(), key, message });
    }
    if cfg.outbox.send_rate_per_sec == 0 {
        errors.push(ConfigError {
            file: main_file.clone(),
            key: "outbox.send_rate_per_sec".into(),
            message: "must be at least 1".into(),
        });
    }
    if cfg.outbox.backoff_base_ms == 0 || cfg.outbox.backoff_max_ms < cfg.outbox.backoff_base_ms {
        errors.push(ConfigError {
            file: main_file.clone(),
            key: "outbox.backoff_max_ms".into(),
            message: "backoff_base_ms must be > 0 and backoff_max_ms >= backoff_base_ms".into(),
        });
    }
    if !cfg.plugins_dir().is_dir() {
        errors.push(ConfigError {
            file: main_file.clone(),
            key: "plugins.dir".into(),
            message: format!("`{}` is not a directory", cfg.plugins_dir().display()),
        });
    }

    cfg.shops = load_shops(dir, env, &mut errors);
    cfg.filters = load_filters(dir, &mut errors);
    cfg.users = load_users(dir, &mut errors);
    cfg.quick_replies = load_quick_replies(dir, &mut errors);
    cfg.routing = load_routing(dir, &cfg.shops, &mut errors);
    cfg.knowledge = load_knowledge(dir, &cfg.shops, &mut errors);
    (cfg, errors)
}

/// Loads `faq.toml` if present, with every error, its shop ids checked against the shops.
pub fn load_knowledge(
    dir: &Path,
    shops: &[Shop],
    errors: &mut Vec<ConfigError>,
) -> Option<huiliu_knowledge::FaqConfig> {
    match huiliu_knowledge::load(dir) {
        Ok(Some(faq)) => {
            if !shops.is_empty() {
                let file = dir.join(huiliu_knowledge::FAQ_FILE).display().to_string();
                for id in faq.shop_ids() {
                    if !shops.iter().any(|s| s.id == id) {
                        errors.push(ConfigError {
                            file: file.clone(),
                            key: "shop".into(),
                            message: format!("shop `{id}` is not in shops.toml"),
                        });
                    }
                }
            }
            Some(faq)
        }
        Ok(None) => None,
        Err(e) => {
            errors.extend(e);
            None
        }
    }
}

/// Loads `routing.toml` if present, with every error, cross-checked with the shops.
pub fn load_routing(
    dir: &Path,
    shops: &[Shop],
    errors: &mut Vec<ConfigError>,
) -> Option<huiliu_routing::RoutingConfig> {
    let path = dir.join(huiliu_routing::ROUTING_FILE);
    let file = path.display().to_string();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            errors.push(ConfigError { file, key: String::new(), message: format!("cannot read: {e}") });
            return None;
        }
    };
    match huiliu_routing::parse(&text, &file) {
        Ok(routing) => {
            if !shops.is_empty() {
                let ids: Vec<&str> = shops.iter().map(|s| s.id.as_str()).collect();
                errors.extend(routing.check_shops(&ids, &file));
            }
            Some(routing)
        }
        Err(e) => {
            errors.extend(e);
            None
        }
    }
}

/// Loads `filters.toml` (defaults when absent) and collects every problem in it.
pub fn load_filters(dir: &Path, errors: &mut Vec<ConfigError>) -> huiliu_privacy::FiltersConfig {
    let file = dir.join(FILTERS_FILE).display().to_string();
    let built = Config::builder().add_source(File::new(&file, FileFormat::Toml).required(false)).build();
    let parsed = built.and_then(|c| c.try_deserialize::<huiliu_privacy::FiltersConfig>());
    match parsed {
        Ok(filters) => {
            for (key, message) in filters.validate() {
                errors.push(ConfigError { file: file.clone(), key, message });
            }
            filters
        }
        Err(e) => {
            errors.push(ConfigError { file, key: String::new(), message: clean_message(&e.to_string()) });
            huiliu_privacy::FiltersConfig::default()
        }
    }
}

/// Loads `users.toml` if present.
pub fn load_users(dir: &Path, errors: &mut Vec<ConfigError>) -> Vec<crate::services::auth::UserConfig> {
    let path = dir.join(crate::services::auth::USERS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => crate::services::auth::parse_users(&text, &path.display().to_string()).unwrap_or_else(|e| {
            errors.extend(e);
            Vec::new()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            errors.push(ConfigError {
                file: path.display().to_string(),
                key: String::new(),
                message: format!("cannot read: {e}"),
            });
            Vec::new()
        }
    }
}

/// Loads `quick_replies.toml` if present, else the built-in templates.
pub fn load_quick_replies(dir: &Path, errors: &mut Vec<ConfigError>) -> Vec<crate::services::quick::QuickReply> {
    let path = dir.join(crate::services::quick::QUICK_REPLIES_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => crate::services::quick::parse(&text, &path.display().to_string()).unwrap_or_else(|e| {
            errors.extend(e);
            crate::services::quick::defaults()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => crate::services::quick::defaults(),
        Err(e) => {
            errors.push(ConfigError {
                file: path.display().to_string(),
                key: String::new(),
                message: format!("cannot read: {e}"),
            });
            crate::services::quick::defaults()
        }
    }
}

/// Deserializes one optional section, recording its error.
fn section<T: serde::de::DeserializeOwned>(
    cfg: &Config,
    name: &str,
    file: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    match cfg.get::<T>(name) {
        Ok(v) => Some(v),
        Err(config::ConfigError::NotFound(_)) => None,
        Err(e) => {
            errors.push(ConfigError { file: file.into(), key: name.into(), message: clean_message(&e.to_string()) });
            None
        }
    }
}

/// The `config` crate appends "in <file>" and "for key …" to its messages; we show those as
/// our own columns.
fn clean_message(m: &str) -> String {
    let m = m.split(" in ").next().unwrap_or(m);
    m.split(" for key").next().unwrap_or(m).to_owned()
}

fn check_top_level_keys(cfg: &Config, file: &str, known: &[&str], errors: &mut Vec<ConfigError>) {
    if let Ok(table) = cfg.clone().try_deserialize::<config::Map<String, config::Value>>() {
        for key in table.keys().filter(|k| !k.starts_with("huiliu")) {
            if !known.contains(&key.as_str()) {
                errors.push(ConfigError {
                    file: file.into(),
                    key: key.clone(),
                    message: format!("unknown section; expected one of {}", known.join(", ")),
                });
            }
        }
    }
}

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.as_bytes().first().is_some_and(|b| b.is_ascii_alphanumeric())
}

/// Loads `shops.toml` (no shops when absent), with every error; `${NAME}` values are read
/// through `env`.
pub fn load_shops(dir: &Path, env: &dyn Fn(&str) -> Option<String>, errors: &mut Vec<ConfigError>) -> Vec<Shop> {
    let file = dir.join(SHOPS_FILE).display().to_string();
    let err = |key: String, message: String| ConfigError { file: file.clone(), key, message };
    let cfg = match Config::builder().add_source(File::new(&file, FileFormat::Toml).required(false)).build() {
        Ok(c) => c,
        Err(e) => {
            errors.push(err(String::new(), e.to_string()));
            return Vec::new();
        }
    };
    check_top_level_keys(&cfg, &file, &["shop"], errors);
    let entries: Vec<config::Value> = match cfg.get_array("shop") {
        Ok(v) => v,
        Err(config::ConfigError::NotFound(_)) => return Vec::new(),
        Err(e) => {
            errors.push(err(
                "shop".into(),
                format!("must be an array of tables ([[shop]]): {}", clean_message(&e.to_string())),
            ));
            return Vec::new();
        }
    };
    let mut shops: Vec<Shop> = Vec::new();
    for (i, value) in entries.into_iter().enumerate() {
        let entry: ShopEntry = match value.try_deserialize() {
            Ok(e) => e,
            Err(e) => {
                errors.push(err(format!("shop[{i}]"), clean_message(&e.to_string())));
                continue;
            }
        };
        let at = |k: &str| format!("shop[{i}].{k}");
        if !is_slug(&entry.id) {
            errors.push(err(at("id"), format!("`{}` must be lowercase letters, digits and `-`", entry.id)));
        }
        if shops.iter().any(|s| s.id == entry.id) {
            errors.push(err(at("id"), format!("duplicate shop id `{}`", entry.id)));
        }
        if !is_slug(&entry.platform) {
            errors.push(err(at("platform"), format!("`{}` is not a platform id", entry.platform)));
        }
        let mut settings = BTreeMap::new();
        for (k, v) in entry.settings {
            let text = match v.clone().into_string() {
                Ok(s) => s,
                Err(_) => {
                    errors.push(err(at(&format!("settings.{k}")), "must be a string, number or boolean".into()));
                    continue;
                }
            };
            match resolve_env(&text, env) {
                Ok(resolved) => {
                    settings.insert(k, resolved);
                }
                Err(name) => {
                    errors.push(err(at(&format!("settings.{k}")), format!("environment variable `{name}` is not set")))
                }
            }
        }
        shops.push(Shop {
            name: entry.name.unwrap_or_else(|| entry.id.clone()),
            id: entry.id,
            platform: entry.platform,
            enabled: entry.enabled,
            settings,
        });
    }
    shops
}

/// Resolves a whole-value `${NAME}` reference; anything else is returned as is.
fn resolve_env(value: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    match value.strip_prefix("${").and_then(|v| v.strip_suffix('}')) {
        Some(name) => env(name).ok_or_else(|| name.to_owned()),
        None => Ok(value.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn empty_dir_gives_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = load_with_env(dir.path(), &no_env).unwrap();
        assert_eq!(cfg.server.listen, "127.0.0.1:8080");
        assert!(cfg.shops.is_empty());
    }

    #[test]
    fn every_error_is_reported_with_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            MAIN_FILE,
            "[server]\nlisten = \"nonsense\"\nmax_push_bytes = 10\n[log]\nformat = \"xml\"\n[bogus]\nx = 1\n",
        );
        write(
            dir.path(),
            SHOPS_FILE,
            r#"
[[shop]]
id = "Bad Id"
platform = "taobao"
[[shop]]
id = "ok-1"
platform = "douyin"
colour = "red"
[[shop]]
id = "ok-2"
platform = "jd"
[shop.settings]
app_secret = "${MISSING_SECRET}"
"#,
        );
        let errors = load_with_env(dir.path(), &no_env).unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let has = |file: &str, key: &str| errors.iter().any(|e| e.file.ends_with(file) && e.key == key);
        assert!(has(MAIN_FILE, "server.listen"), "{text:#?}");
        assert!(has(MAIN_FILE, "server.max_push_bytes"), "{text:#?}");
        assert!(has(MAIN_FILE, "log"), "{text:#?}");
        assert!(has(MAIN_FILE, "bogus"), "{text:#?}");
        assert!(has(SHOPS_FILE, "shop[0].id"), "{text:#?}");
        assert!(has(SHOPS_FILE, "shop[1]"), "{text:#?}");
        assert!(has(SHOPS_FILE, "shop[2].settings.app_secret"), "{text:#?}");
        assert!(text.iter().any(|t| t.contains("MISSING_SECRET")), "{text:#?}");
        assert_eq!(errors.len(), 7, "{text:#?}");
    }

    #[test]
    fn secrets_come_from_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            SHOPS_FILE,
            "[[shop]]\nid = \"tb-1\"\nplatform = \"taobao\"\n[shop.settings]\napp_key = 12345678\napp_secret = \"${TB_SECRET}\"\n",
        );
        let env = |n: &str| (n == "TB_SECRET").then(|| "helloworld".to_owned());
        let cfg = load_with_env(dir.path(), &env).unwrap();
        assert_eq!(cfg.shops[0].settings["app_secret"], "helloworld");
        assert_eq!(cfg.shops[0].settings["app_key"], "12345678");
        assert!(cfg.shops[0].enabled);
    }

    #[test]
    fn missing_directory_is_one_clear_error() {
        let errors = load_with_env(Path::new("/nonexistent/huiliu"), &no_env).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].to_string().contains("does not exist"));
    }
}
