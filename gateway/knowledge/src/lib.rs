//! The knowledge base of 智能客服: what a shop wrote down as questions and answers, and the
//! matching that finds the answer to a buyer's message with a confidence.
//!
//! `config` (faq.toml's types and checks), `attach` (an answer's rich elements: picture,
//! product card, order card), `import` (千牛 CSV exports), `text` (segmentation,
//! synonyms, stopwords), `vectors` (word vectors for the semantic re-ranking), `index` (the
//! compiled base: lookup, conditions, placeholders).
//!
//! **Architecture Invariant:** pure and synchronous, like the routing engine: no I/O except
//! [`load`] reading the config directory, no async runtime, no store. The daemon decides when the
//! bot speaks; this crate only says what it would say and how sure it is.
#![forbid(unsafe_code)]

pub mod attach;
pub mod config;
pub mod import;
pub mod index;
pub mod pinyin;
pub mod text;
pub mod vectors;

use std::path::Path;

use huiliu_domain::ConfigError;

pub use attach::{Attach, Attachment, Subject};
pub use config::{BotMode, Desk, Entry, FAQ_FILE, FaqConfig, parse};
pub use index::{Context, Decision, HandOver, KnowledgeBase, Lookup, Match, Vars, render};

/// Reads `faq.toml` from a config directory with the CSV exports it names, checked whole.
/// `Ok(None)` when there is no faq.toml (no knowledge base: the bot stays silent).
pub fn load(dir: &Path) -> Result<Option<FaqConfig>, Vec<ConfigError>> {
    let path = dir.join(FAQ_FILE);
    let file = path.display().to_string();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(vec![ConfigError { file, key: String::new(), message: format!("cannot read: {e}") }]),
    };
    let mut cfg = parse(&text, &file)?;
    let mut errors = Vec::new();
    for (i, name) in cfg.knowledge.csv.clone().iter().enumerate() {
        match load_csv(dir, i, name) {
            Ok(entries) => cfg.entry.extend(entries),
            Err(e) => errors.extend(e),
        }
    }
    errors.extend(cfg.validate(&file));
    if errors.is_empty() { Ok(Some(cfg)) } else { Err(errors) }
}

/// The entries of the CSV export `name` (`[knowledge] csv[index]`), beside faq.toml in `dir`,
/// with the ids `{file stem}-{row}`. Entries from CSV files are not edited through the API
/// (their file is the operator's export); they are listed as such.
pub fn load_csv(dir: &Path, index: usize, name: &str) -> Result<Vec<Entry>, Vec<ConfigError>> {
    let csv_path = dir.join(name);
    let csv_file = csv_path.display().to_string();
    let prefix: String = Path::new(name)
        .file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    match std::fs::read_to_string(&csv_path) {
        Ok(text) => import::parse_csv(&text, &csv_file, &prefix),
        Err(e) => Err(vec![ConfigError {
            file: dir.join(FAQ_FILE).display().to_string(),
            key: format!("knowledge.csv[{index}]"),
            message: format!("cannot read `{csv_file}`: {e}"),
        }]),
    }
}

/// Minutes since midnight in Beijing time (UTC+8, no daylight saving) for a Unix time in ms.
pub fn beijing_minute(unix_millis: i64) -> u16 {
    let minutes = (unix_millis.div_euclid(60_000) + 8 * 60).rem_euclid(24 * 60);
    minutes as u16
}
