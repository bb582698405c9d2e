//! Who is acting: the three roles of 飞鸽's permission levels, workbench users and their
//! logins.
//!
//! Users are listed in `users.toml` with an Argon2id password hash (`huiliu user hash` makes
//! one). An agent's role, name and groups come from its `[[agent]]` in `routing.toml`; a user who
//! is not an agent there (a lead who serves nobody, an admin) sets them in `users.toml`. A login
//! gives a random bearer token kept only as its SHA-256 in the store, valid `api.token_ttl_minutes`.
//! Failed logins are counted per user id: `api.login_max_failures` in a row lock the id for
//! `api.login_lockout_s`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, RwLock};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use huiliu_domain::{ConfigError, Principal, Role};

/// The file listing workbench users, in the config directory.
pub const USERS_FILE: &str = "users.toml";

/// One `[[user]]` in `users.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The login id; for an agent, its `[[agent]]` id in `routing.toml`.
    pub id: String,
    /// Argon2id hash in PHC form (`$argon2id$v=19$...`), from `huiliu user hash`.
    pub password_hash: String,
    /// Display name. Default: the agent's name, else the id.
    #[serde(default)]
    pub name: Option<String>,
    /// `agent`, `lead` or `admin`. Default: the agent's role in `routing.toml`, else `agent`.
    #[serde(default)]
    pub role: Option<Role>,
    /// The skill groups a lead oversees. Default: the agent's groups in `routing.toml`.
    #[serde(default)]
    pub groups: Vec<String>,
    /// A disabled user cannot log in, and their tokens stop working (admins set it with
    /// `POST /api/v1/users/{id}/disable`). Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    #[serde(default)]
    user: Vec<UserConfig>,
}

/// Parses and checks `users.toml`: unique ids, hashes that are Argon2 PHC strings.
pub fn parse_users(text: &str, file: &str) -> Result<Vec<UserConfig>, Vec<ConfigError>> {
    let parsed: UsersFile =
        toml_from_str(text).map_err(|message| vec![ConfigError { file: file.into(), key: String::new(), message }])?;
    let mut errors = Vec::new();
    let mut seen = BTreeMap::new();
    for (i, u) in parsed.user.iter().enumerate() {
        let key = format!("user[{i}]");
        if u.id.trim().is_empty() {
            errors.push(ConfigError {
                file: file.into(),
                key: format!("{key}.id"),
                message: "must not be empty".into(),
            });
        }
        if let Some(first) = seen.insert(u.id.clone(), i) {
            errors.push(ConfigError {
                file: file.into(),
                key: format!("{key}.id"),
                message: format!("`{}` is already user[{first}]", u.id),
            });
        }
        match PasswordHash::new(&u.password_hash) {
            Ok(h) if h.algorithm.as_str().starts_with("argon2") => {}
            Ok(h) => errors.push(ConfigError {
                file: file.into(),
                key: format!("{key}.password_hash"),
                message: format!("`{}` is not Argon2 (make one with `huiliu user hash`)", h.algorithm),
            }),
            Err(e) => errors.push(ConfigError {
                file: file.into(),
                key: format!("{key}.password_hash"),
                message: format!("not a PHC hash string ({e}); make one with `huiliu user hash`"),
            }),
        }
    }
    if errors.is_empty() { Ok(parsed.user) } else { Err(errors) }
}

fn toml_from_str<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| e.to_string())
}

/// Hashes a password with Argon2id (OWASP's default parameters: 19 MiB, 2 passes) and a random
/// salt, as a PHC string.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).expect("16 bytes is a valid salt");
    Argon2::default().hash_password(password.as_bytes(), &salt).expect("argon2 with default parameters").to_string()
}

/// Whether `password` matches the PHC `hash`.
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A hash of a password nobody has, verified for unknown user ids so that a wrong id takes as
/// long as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password(&hex::encode(rand::random::<[u8; 16]>())))
}

/// A new bearer token: 32 random bytes, hex.
pub fn new_token() -> String {
    format!("hl_{}", hex::encode(rand::random::<[u8; 32]>()))
}

/// What the store keeps of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// Resolves a user against `routing.toml`'s agents.
pub fn principal(user: &UserConfig, routing: Option<&huiliu_routing::RoutingConfig>) -> Principal {
    let agent = routing.and_then(|r| r.agents.iter().find(|a| a.id == user.id));
    let groups = if user.groups.is_empty() {
        agent.map(|a| a.groups.keys().cloned().collect()).unwrap_or_default()
    } else {
        user.groups.clone()
    };
    Principal {
        id: user.id.clone(),
        name: user.name.clone().or_else(|| agent.and_then(|a| a.name.clone())).unwrap_or_else(|| user.id.clone()),
        role: user.role.or(agent.map(|a| a.role)).unwrap_or(Role::Agent),
        groups,
    }
}

/// `[api]`: the agent and operator API under `/api/v1`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Bearer token that grants operator (admin) access to `/api/v1` without a login, for
    /// scripts. Empty (the default): only logged-in users. Set it from the environment:
    /// `HUILIU__API__ADMIN_TOKEN`.
    pub admin_token: String,
    /// How long a login token lives (minutes). Default 720 (a 12-hour shift).
    pub token_ttl_minutes: u32,
    /// Failed logins in a row that lock a user id. Default 5.
    pub login_max_failures: u32,
    /// How long a locked id stays locked (seconds). Default 300.
    pub login_lockout_s: u32,
    /// Failed logins in a row from one client address (whatever ids they name) that lock the
    /// address for `login_lockout_s`. Default 20: higher than the per-id limit because a shop's
    /// agents often share one office address. The address is the TCP peer's.
    pub login_max_failures_per_address: u32,
    /// Origins the workbench may show buyers' pictures from, added to the Content-Security-
    /// Policy's `img-src` (default none: pictures hosted by a platform do not show). Each an
    /// `https://` origin, the host may start with `*.`: e.g. `["https://*.alicdn.com"]`.
    pub image_origins: Vec<String>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            admin_token: String::new(),
            token_ttl_minutes: 720,
            login_max_failures: 5,
            login_lockout_s: 300,
            login_max_failures_per_address: 20,
            image_origins: Vec::new(),
        }
    }
}

/// Failed logins of one id or one address.
#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: i64,
    locked_until: i64,
}

impl Failures {
    const NONE: Failures = Failures { count: 0, last: 0, locked_until: 0 };
}

/// Users and the login limiter.
#[derive(Debug)]
pub struct Auth {
    /// Replaced whole when `users.toml` is reloaded or edited through the API.
    users: RwLock<Vec<UserConfig>>,
    /// Bumped whenever a token may have stopped working (a logout, a user disabled, removed
    /// or reset): open event streams check their token again.
    revocations: tokio::sync::watch::Sender<u64>,
    failures: Mutex<HashMap<String, Failures>>,
    /// Failed logins by client address.
    address_failures: Mutex<HashMap<std::net::IpAddr, Failures>>,
    pub token_ttl_ms: i64,
    max_failures: u32,
    max_address_failures: u32,
    lockout_ms: i64,
}

/// Why a login failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginError {
    /// Wrong id or password (which one is not said).
    BadCredentials,
    /// Too many failures: retry after this many seconds.
    Locked(u64),
}

impl Auth {
    pub fn new(users: Vec<UserConfig>, api: &ApiConfig) -> Auth {
        Auth {
            users: RwLock::new(users),
            revocations: tokio::sync::watch::Sender::new(0),
            failures: Mutex::new(HashMap::new()),
            address_failures: Mutex::new(HashMap::new()),
            token_ttl_ms: i64::from(api.token_ttl_minutes) * 60_000,
            max_failures: api.login_max_failures.max(1),
            max_address_failures: api.login_max_failures_per_address.max(1),
            lockout_ms: i64::from(api.login_lockout_s) * 1000,
        }
    }

    pub fn user(&self, id: &str) -> Option<UserConfig> {
        self.users.read().unwrap_or_else(|p| p.into_inner()).iter().find(|u| u.id == id).cloned()
    }

    pub fn users(&self) -> Vec<UserConfig> {
        self.users.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The users after a reload of `users.toml` (or an edit through the API).
    pub fn set_users(&self, users: Vec<UserConfig>) {
        *self.users.write().unwrap_or_else(|p| p.into_inner()) = users;
        self.tokens_may_have_ended();
    }

    /// Tells open event streams to check their token again.
    pub fn tokens_may_have_ended(&self) {
        self.revocations.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that changes whenever a token may have stopped working.
    pub fn revocations(&self) -> tokio::sync::watch::Receiver<u64> {
        self.revocations.subscribe()
    }

    /// Checks a password (Argon2 work runs on a blocking thread), counting failures per id and
    /// per client address (`None`: not known, e.g. an in-process call): either streak locks.
    pub async fn login(
        &self,
        id: &str,
        password: &str,
        addr: Option<std::net::IpAddr>,
        now: i64,
    ) -> Result<UserConfig, LoginError> {
        let key = id.trim().to_lowercase();
        let locked = |f: Option<&Failures>| {
            f.filter(|f| f.locked_until > now)
                .map(|f| LoginError::Locked(((f.locked_until - now) as u64).div_ceil(1000)))
        };
        if let Some(addr) = addr
            && let Some(e) = locked(self.address_failures.lock().unwrap_or_else(|p| p.into_inner()).get(&addr))
        {
            return Err(e);
        }
        if let Some(e) = locked(self.failures.lock().unwrap_or_else(|p| p.into_inner()).get(&key)) {
            return Err(e);
        }
        // A disabled user fails like a wrong password (after the same hashing work).
        let user = self.user(id).filter(|u| !u.disabled);
        let hash = user.as_ref().map_or_else(|| decoy_hash().to_owned(), |u| u.password_hash.clone());
        let password = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || verify_password(&hash, &password)).await.unwrap_or(false);
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        match user {
            Some(u) if ok => {
                failures.remove(&key);
                Ok(u)
            }
            _ => {
                self.count_failure(failures.entry(key).or_insert(Failures::NONE), self.max_failures, now);
                drop(failures);
                if let Some(addr) = addr {
                    let mut by_addr = self.address_failures.lock().unwrap_or_else(|p| p.into_inner());
                    // Bounded: under a spray from many addresses, forget streaks that ended.
                    if by_addr.len() > 100_000 {
                        by_addr.retain(|_, f| f.locked_until > now || now - f.last <= self.lockout_ms);
                    }
                    self.count_failure(by_addr.entry(addr).or_insert(Failures::NONE), self.max_address_failures, now);
                }
                Err(LoginError::BadCredentials)
            }
        }
    }
}

impl Auth {
    /// One more failure in `f`'s streak; `max` in a row lock it for the lockout. A streak older
    /// than the lockout starts over.
    fn count_failure(&self, f: &mut Failures, max: u32, now: i64) {
        if now - f.last > self.lockout_ms {
            f.count = 0;
        }
        f.count += 1;
        f.last = now;
        if f.count >= max {
            f.count = 0;
            f.locked_until = now + self.lockout_ms;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api() -> ApiConfig {
        ApiConfig { login_max_failures: 3, login_lockout_s: 60, ..Default::default() }
    }

    #[test]
    fn hashes_verify_and_differ() {
        let a = hash_password("秘密 pass");
        let b = hash_password("秘密 pass");
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "salted");
        assert!(verify_password(&a, "秘密 pass"));
        assert!(!verify_password(&a, "秘密 pas"));
        assert!(!verify_password("not a hash", "x"));
    }

    #[test]
    fn users_file_is_checked() {
        let good = hash_password("pw");
        let text = format!(
            "[[user]]\nid = \"a01\"\npassword_hash = \"{good}\"\n[[user]]\nid = \"a01\"\npassword_hash = \"plain\"\n"
        );
        let errors = parse_users(&text, "users.toml").unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert!(text.iter().any(|e| e.contains("user[1].id") && e.contains("already user[0]")), "{text:?}");
        assert!(text.iter().any(|e| e.contains("user[1].password_hash")), "{text:?}");
        let ok = parse_users(&format!("[[user]]\nid = \"boss\"\npassword_hash = \"{good}\"\nrole = \"admin\"\n"), "u")
            .unwrap();
        assert_eq!(ok[0].role, Some(Role::Admin));
        assert!(parse_users("[[user]]\nid = \"x\"\npassword_hash = \"h\"\nrol = \"admin\"\n", "u").is_err());
    }

    #[tokio::test]
    async fn failed_logins_lock_the_id_then_expire() {
        let user = UserConfig {
            id: "a01".into(),
            password_hash: hash_password("right"),
            name: None,
            role: None,
            groups: vec![],
            disabled: false,
        };
        let auth = Auth::new(vec![user], &api());
        assert!(auth.login("a01", "right", None, 0).await.is_ok());
        for t in 1..=2 {
            assert_eq!(auth.login("a01", "wrong", None, t).await.unwrap_err(), LoginError::BadCredentials);
        }
        // The third failure locks the id; even the right password is refused until it ends.
        assert_eq!(auth.login("A01", "wrong", None, 3).await.unwrap_err(), LoginError::BadCredentials);
        assert_eq!(auth.login("a01", "right", None, 1_000).await.unwrap_err(), LoginError::Locked(60));
        assert!(auth.login("a01", "right", None, 61_000).await.is_ok());
        // Unknown ids fail the same way and are limited too.
        for t in 0..3 {
            assert_eq!(auth.login("nobody", "x", None, t).await.unwrap_err(), LoginError::BadCredentials);
        }
        assert!(matches!(auth.login("nobody", "x", None, 10).await.unwrap_err(), LoginError::Locked(_)));
    }

    #[tokio::test]
    async fn failed_logins_lock_the_address_whatever_ids_it_tries() {
        let user = |id: &str| UserConfig {
            id: id.into(),
            password_hash: hash_password("right"),
            name: None,
            role: None,
            groups: vec![],
            disabled: false,
        };
        let api = ApiConfig { login_max_failures: 3, login_max_failures_per_address: 4, ..api() };
        let auth = Auth::new(vec![user("a01"), user("a02")], &api);
        let spray: std::net::IpAddr = "203.0.113.7".parse().unwrap();
        let office: std::net::IpAddr = "198.51.100.2".parse().unwrap();
        // Four ids, one failure each: no id is locked, but the address is.
        for (t, id) in ["a01", "a02", "x1", "x2"].iter().enumerate() {
            let e = auth.login(id, "guess", Some(spray), t as i64).await.unwrap_err();
            assert_eq!(e, LoginError::BadCredentials);
        }
        assert_eq!(auth.login("a01", "right", Some(spray), 1_000).await.unwrap_err(), LoginError::Locked(60));
        // The same id from another address, and from an unknown one, still logs in.
        assert!(auth.login("a01", "right", Some(office), 1_000).await.is_ok());
        assert!(auth.login("a02", "right", None, 1_000).await.is_ok());
        // The lock ends with the lockout.
        assert!(auth.login("a01", "right", Some(spray), 61_000).await.is_ok());
    }

    #[test]
    fn principals_take_role_and_groups_from_routing() {
        let routing = huiliu_routing::parse(
            "[routing]\nfallback_group = \"g1\"\n[[group]]\nid = \"g1\"\n[[group]]\nid = \"g2\"\n\
             [[agent]]\nid = \"lead1\"\nname = \"阿强\"\nrole = \"lead\"\ngroups = { g1 = 3 }\n\
             [[agent]]\nid = \"a2\"\ngroups = { g2 = 3 }\n",
            "routing.toml",
        )
        .unwrap();
        let u = |id: &str, role: Option<Role>, groups: Vec<String>| UserConfig {
            id: id.into(),
            password_hash: String::new(),
            name: None,
            role,
            groups,
            disabled: false,
        };
        let lead = principal(&u("lead1", None, vec![]), Some(&routing));
        assert_eq!((lead.role, lead.name.as_str(), lead.groups.clone()), (Role::Lead, "阿强", vec!["g1".to_string()]));
        let boss = principal(&u("boss", Some(Role::Admin), vec![]), Some(&routing));
        assert_eq!(boss.role, Role::Admin);
        assert!(boss.scope().is_none());
        let other = principal(&u("x", Some(Role::Lead), vec!["g2".into()]), Some(&routing));
        assert!(other.oversees("g2") && !other.oversees("g1"));
    }
}
