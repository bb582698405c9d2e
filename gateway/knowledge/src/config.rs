//! `faq.toml`: the knowledge base's typed configuration, parsed and checked with every error
//! reported at once. The commented example in `config/faq.toml` documents each key.

use std::collections::BTreeSet;

use serde::Deserialize;

use huiliu_domain::ConfigError;

use crate::attach::{Attach, Attachment, MAX_ATTACHMENTS, Subject};

/// The knowledge base's file, in the config directory.
pub const FAQ_FILE: &str = "faq.toml";

/// The placeholders an answer may use.
pub const PLACEHOLDERS: &[&str] = &["buyer", "order", "product", "shop"];

/// The order / refund states an entry may be restricted to.
pub const ORDER_STATES: &[&str] =
    &["none", "unpaid", "paid", "shipped", "delivered", "refunding", "refunded", "closed"];

/// The confidence above which the bot answers, when neither the file nor the shop sets one.
pub const DEFAULT_THRESHOLD: f64 = 0.35;

/// How long a buyer stays silent after the bot's answer before the conversation counts as
/// resolved without a human, when the file does not say.
pub const DEFAULT_RESOLVED_AFTER_MINUTES: f64 = 10.0;

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaqConfig {
    #[serde(default)]
    pub knowledge: KnowledgeSettings,
    /// Per-shop settings (`[[shop]]`).
    #[serde(default)]
    pub shop: Vec<ShopSettings>,
    /// Synonym groups (`[[synonyms]]`): every word of a group matches every other.
    #[serde(default)]
    pub synonyms: Vec<SynonymGroup>,
    /// The entries (`[[entry]]`).
    #[serde(default)]
    pub entry: Vec<Entry>,
    /// Follow-ups on order events (`[[followup]]`, 自动跟单).
    #[serde(default)]
    pub followup: Vec<Followup>,
    /// Product names (`[[product]]`), for `{product}` when the platform's product card carries
    /// only an id.
    #[serde(default)]
    pub product: Vec<Product>,
}

/// `[[product]]`: what a product is called in answers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Product {
    /// The platform's product id (as entries' `when.products` name it).
    pub id: String,
    /// The name `{product}` becomes when the buyer's product card carries no title.
    pub name: String,
}

/// The order events a follow-up may answer.
pub const FOLLOWUP_EVENTS: &[&str] = &["unpaid", "shipped", "delivered", "refund_approved"];

/// `[[followup]]`: a message the bot sends on an order event.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Followup {
    /// unpaid (order created and still unpaid after `after_minutes`), shipped, delivered,
    /// refund_approved.
    pub event: String,
    /// The message, with placeholders {buyer} {order} {shop}.
    pub text: String,
    /// Shop ids it applies to; empty = every shop.
    #[serde(default)]
    pub shops: Vec<String>,
    /// For `unpaid`: minutes after the order was created (default 30).
    #[serde(default)]
    pub after_minutes: Option<u32>,
}

/// `[knowledge]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeSettings {
    /// Confidence (0–1) at or above which the bot answers; below, it hands over.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    /// How much the semantic similarity (word vectors distilled from a sentence-embedding model)
    /// weighs against the words' cosine when the best candidates are re-ranked; 0 = words only.
    #[serde(default = "default_semantic_weight")]
    pub semantic_weight: f64,
    /// Words dropped before matching (greetings, particles); added to the built-in list.
    #[serde(default)]
    pub stopwords: Vec<String>,
    /// Words the segmenter must keep whole (product names, shop jargon).
    #[serde(default)]
    pub words: Vec<String>,
    /// 千牛 knowledge exports (CSV: 问题, 相似问法, 答案) beside this file, loaded as entries
    /// with ids `{file stem}-{row}`.
    #[serde(default)]
    pub csv: Vec<String>,
    /// Words with which a buyer asks for a person (转人工): the bot hands over at once.
    #[serde(default = "default_handover_words")]
    pub handover_words: Vec<String>,
    /// What the bot tells a buyer it had answered before when it hands them to an agent.
    #[serde(default = "default_handover_notice")]
    pub handover_notice: String,
    /// The bot's welcome (进店欢迎语) when a buyer's first message is one it cannot answer
    /// ("在吗"); "" = none: such a message goes to an agent at once.
    #[serde(default)]
    pub welcome: String,
    /// Card questions (卡片问题) listed under the welcome, numbered; a buyer who answers with a
    /// number asks that question.
    #[serde(default)]
    pub cards: Vec<String>,
    /// Beijing-time window in which no follow-up is sent ("" = send at any hour).
    #[serde(default = "default_quiet_hours")]
    pub followup_quiet_hours: String,
    /// At most one follow-up per buyer in this many minutes.
    #[serde(default = "default_followup_interval")]
    pub followup_min_interval_minutes: u32,
    /// A conversation the bot answered counts as resolved without a human when the buyer
    /// writes nothing further within this many minutes of its last answer (may be fractional).
    #[serde(default = "default_resolved_after")]
    pub resolved_after_minutes: f64,
}

fn default_semantic_weight() -> f64 {
    1.0
}

fn default_resolved_after() -> f64 {
    DEFAULT_RESOLVED_AFTER_MINUTES
}

fn default_quiet_hours() -> String {
    "22:00-08:00".into()
}

fn default_followup_interval() -> u32 {
    60
}

fn default_handover_words() -> Vec<String> {
    vec!["人工".into(), "真人".into()]
}

fn default_handover_notice() -> String {
    "好的，这个问题我为您转接人工客服，请稍候～".into()
}

/// When a shop's bot answers buyers first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BotMode {
    /// Never (the default): the knowledge base only suggests answers to agents.
    #[default]
    Off,
    /// Every message of a conversation no agent has taken yet.
    Always,
    /// Only inside `bot_hours` (e.g. the night: "23:00-09:00").
    Hours,
    /// Only while the desk is closed: the routing group that would take the shop's
    /// conversation is outside its `routing.toml` hours (and no on-duty group is open).
    OffHours,
    /// Only while the expected wait for an agent exceeds `bot_wait_minutes` (a closed desk's
    /// wait runs to its opening, so this covers off hours too).
    LongWait,
}

impl BotMode {
    /// Whether the mode depends on the desk (routing's hours and queues).
    pub fn needs_desk(self) -> bool {
        matches!(self, BotMode::OffHours | BotMode::LongWait)
    }
}

/// What the desk looks like to a new conversation of a shop, for [`BotMode::OffHours`] and
/// [`BotMode::LongWait`]; the daemon reads it from routing (`huiliu_routing::outlook`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Desk {
    /// Whether the group that would take the conversation is open now.
    pub open: bool,
    /// The expected wait for an agent, in seconds; `None` when nobody could take it (no
    /// member online).
    pub wait_s: Option<u64>,
}

impl Default for KnowledgeSettings {
    fn default() -> Self {
        Self {
            threshold: DEFAULT_THRESHOLD,
            semantic_weight: default_semantic_weight(),
            stopwords: Vec::new(),
            words: Vec::new(),
            csv: Vec::new(),
            handover_words: default_handover_words(),
            handover_notice: default_handover_notice(),
            welcome: String::new(),
            cards: Vec::new(),
            followup_quiet_hours: default_quiet_hours(),
            followup_min_interval_minutes: default_followup_interval(),
            resolved_after_minutes: DEFAULT_RESOLVED_AFTER_MINUTES,
        }
    }
}

fn default_threshold() -> f64 {
    DEFAULT_THRESHOLD
}

/// `[[shop]]`: what one shop changes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShopSettings {
    /// The shop id, as in shops.toml.
    pub id: String,
    /// This shop's confidence threshold.
    pub threshold: Option<f64>,
    /// When the bot answers first: off (default), always, hours.
    #[serde(default)]
    pub bot: BotMode,
    /// For `bot = "hours"`: Beijing time "HH:MM-HH:MM" (may wrap midnight).
    pub bot_hours: Option<String>,
    /// For `bot = "long_wait"`: the bot answers first when the expected wait for an agent is
    /// longer than this many minutes.
    pub bot_wait_minutes: Option<u32>,
}

/// `[[synonyms]]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynonymGroup {
    pub words: Vec<String>,
}

/// `[[entry]]`: one question and its answer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Unique id (lowercase letters, digits, `-`): the name in figures and in the API.
    pub id: String,
    /// The standard question (标准问题).
    pub question: String,
    /// Other ways buyers ask it (相似问法).
    #[serde(default)]
    pub variants: Vec<String>,
    /// The answer, with placeholders {buyer} {order} {product} {shop}.
    pub answer: String,
    /// A category id (routing.toml's `[[category]]`): `complaint` makes the bot hand over at once.
    #[serde(default)]
    pub category: Option<String>,
    /// When this entry applies; absent = always.
    #[serde(default)]
    pub when: Conditions,
    /// Rich elements sent after the answer's text (`[[entry.attach]]`): a picture, a product
    /// card, the order card.
    #[serde(default)]
    pub attach: Vec<Attach>,
}

/// `[entry.when]`: every listed condition must hold; an empty list means any.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    #[serde(default)]
    pub platforms: Vec<String>,
    #[serde(default)]
    pub shops: Vec<String>,
    /// Product ids: the entry applies only when the conversation is about one of them.
    #[serde(default)]
    pub products: Vec<String>,
    /// The buyer's latest order state (see [`ORDER_STATES`]).
    #[serde(default)]
    pub order_states: Vec<String>,
    /// Beijing-time window "HH:MM-HH:MM" (may wrap midnight).
    #[serde(default)]
    pub hours: Option<String>,
}

/// A parsed time window, minutes since midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hours {
    pub from: u16,
    pub to: u16,
}

impl Hours {
    /// Parses "HH:MM-HH:MM".
    pub fn parse(text: &str) -> Option<Hours> {
        let (a, b) = text.trim().split_once('-')?;
        let minute = |s: &str| -> Option<u16> {
            let (h, m) = s.trim().split_once(':')?;
            let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
            (h < 24 && m < 60).then_some(h * 60 + m).or((h == 24 && m == 0).then_some(1440))
        };
        Some(Hours { from: minute(a)?, to: minute(b)? })
    }

    /// Whether `minute` (since midnight) is inside; a window may wrap midnight.
    pub fn contains(&self, minute: u16) -> bool {
        if self.from <= self.to {
            minute >= self.from && minute < self.to
        } else {
            minute >= self.from || minute < self.to
        }
    }
}

/// Parses and checks `faq.toml`, reporting every problem.
pub fn parse(text: &str, file: &str) -> Result<FaqConfig, Vec<ConfigError>> {
    let err = |key: String, message: String| ConfigError { file: file.into(), key, message };
    let cfg: FaqConfig = toml::from_str(text).map_err(|e| vec![err(String::new(), e.to_string())])?;
    let errors = cfg.validate(file);
    if errors.is_empty() { Ok(cfg) } else { Err(errors) }
}

impl FaqConfig {
    /// Every problem in an already deserialized file.
    pub fn validate(&self, file: &str) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        let mut err = |key: String, message: String| errors.push(ConfigError { file: file.into(), key, message });
        let threshold_ok = |t: f64| (0.0..=1.0).contains(&t);
        if !threshold_ok(self.knowledge.threshold) {
            err("knowledge.threshold".into(), format!("{} is not between 0 and 1", self.knowledge.threshold));
        }
        if !(0.0..=5.0).contains(&self.knowledge.semantic_weight) {
            err(
                "knowledge.semantic_weight".into(),
                format!("{} is not between 0 and 5", self.knowledge.semantic_weight),
            );
        }
        let resolved = self.knowledge.resolved_after_minutes;
        if !(resolved > 0.0 && resolved <= 1440.0) {
            err("knowledge.resolved_after_minutes".into(), format!("{resolved} is not above 0 and at most 1440"));
        }
        let mut shops = BTreeSet::new();
        for (i, shop) in self.shop.iter().enumerate() {
            if !shops.insert(shop.id.as_str()) {
                err(format!("shop[{i}].id"), format!("shop `{}` is listed twice", shop.id));
            }
            if let Some(t) = shop.threshold.filter(|t| !threshold_ok(*t)) {
                err(format!("shop[{i}].threshold"), format!("{t} is not between 0 and 1"));
            }
            match (&shop.bot, &shop.bot_hours) {
                (BotMode::Hours, None) => err(format!("shop[{i}].bot_hours"), "bot = \"hours\" needs bot_hours".into()),
                (_, Some(h)) if Hours::parse(h).is_none() => {
                    err(format!("shop[{i}].bot_hours"), format!("`{h}` is not HH:MM-HH:MM"))
                }
                _ => {}
            }
            match (shop.bot, shop.bot_wait_minutes) {
                (BotMode::LongWait, None) => {
                    err(format!("shop[{i}].bot_wait_minutes"), "bot = \"long_wait\" needs bot_wait_minutes".into())
                }
                (mode, Some(_)) if mode != BotMode::LongWait => {
                    err(format!("shop[{i}].bot_wait_minutes"), "only bot = \"long_wait\" waits".into())
                }
                _ => {}
            }
        }
        for (i, group) in self.synonyms.iter().enumerate() {
            if group.words.len() < 2 || group.words.iter().any(|w| w.trim().is_empty()) {
                err(format!("synonyms[{i}].words"), "a group needs two or more non-empty words".into());
            }
        }
        let quiet = &self.knowledge.followup_quiet_hours;
        if !quiet.is_empty() && Hours::parse(quiet).is_none() {
            err("knowledge.followup_quiet_hours".into(), format!("`{quiet}` is not HH:MM-HH:MM (or \"\")"));
        }
        for (i, f) in self.followup.iter().enumerate() {
            if !FOLLOWUP_EVENTS.contains(&f.event.as_str()) {
                err(
                    format!("followup[{i}].event"),
                    format!("unknown event `{}` (known: {})", f.event, FOLLOWUP_EVENTS.join(", ")),
                );
            }
            if f.text.trim().is_empty() {
                err(format!("followup[{i}].text"), "the text is empty".into());
            }
            for name in placeholders(&f.text) {
                if !PLACEHOLDERS.contains(&name) {
                    err(format!("followup[{i}].text"), format!("unknown placeholder {{{name}}}"));
                }
            }
            if f.after_minutes.is_some() && f.event != "unpaid" {
                err(format!("followup[{i}].after_minutes"), "only an unpaid follow-up waits".into());
            }
        }
        let mut products = BTreeSet::new();
        for (i, product) in self.product.iter().enumerate() {
            if is_blank(&product.id) {
                err(format!("product[{i}].id"), "the product id is empty".into());
            } else if !products.insert(product.id.as_str()) {
                err(format!("product[{i}].id"), format!("product `{}` is listed twice", product.id));
            }
            if is_blank(&product.name) {
                err(format!("product[{i}].name"), "the name is empty".into());
            }
        }
        let mut ids = BTreeSet::new();
        for (i, entry) in self.entry.iter().enumerate() {
            let key = |k: &str| format!("entry[{i}].{k}");
            let id_ok = !entry.id.is_empty()
                && entry.id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !id_ok {
                err(key("id"), format!("`{}`: use lowercase letters, digits and -", entry.id));
            } else if !ids.insert(entry.id.as_str()) {
                err(key("id"), format!("`{}` is used by another entry", entry.id));
            }
            if is_blank(&entry.question) {
                err(key("question"), "the standard question is empty".into());
            }
            if entry.variants.iter().any(|v| is_blank(v)) {
                err(key("variants"), "a variant is empty".into());
            }
            if is_blank(&entry.answer) {
                err(key("answer"), "the answer is empty".into());
            }
            for name in placeholders(&entry.answer) {
                if !PLACEHOLDERS.contains(&name) {
                    err(key("answer"), format!("unknown placeholder {{{name}}} (known: {})", PLACEHOLDERS.join(", ")));
                }
            }
            if entry.category.as_deref().is_some_and(|c| c.trim().is_empty()) {
                err(key("category"), "empty category".into());
            }
            for state in &entry.when.order_states {
                if !ORDER_STATES.contains(&state.as_str()) {
                    err(
                        key("when.order_states"),
                        format!("unknown state `{state}` (known: {})", ORDER_STATES.join(", ")),
                    );
                }
            }
            if let Some(hours) = &entry.when.hours
                && Hours::parse(hours).is_none()
            {
                err(key("when.hours"), format!("`{hours}` is not HH:MM-HH:MM"));
            }
            if entry.when.products.iter().any(|p| is_blank(p)) {
                err(key("when.products"), "a product id is empty".into());
            }
            if entry.attach.len() > MAX_ATTACHMENTS {
                err(key("attach"), format!("entry `{}`: at most {MAX_ATTACHMENTS} [[entry.attach]] tables", entry.id));
            }
            for (j, attach) in entry.attach.iter().enumerate() {
                for problem in attach.problems(PLACEHOLDERS) {
                    err(key(&format!("attach[{j}]")), format!("entry `{}`: {problem}", entry.id));
                }
            }
        }
        errors
    }

    /// An entry's attachments in a conversation, in order, each with its placeholders filled;
    /// one naming a value the conversation lacks (`{product}` with no product card, `{order}`
    /// with no order) is left out.
    pub fn attachments(&self, entry: &Entry, subject: &Subject<'_>) -> Vec<Attachment> {
        entry.attach.iter().filter_map(|a| a.resolve(subject, |id| self.product_name(id))).collect()
    }

    /// The name of a product for `{product}`, from `[[product]]`.
    pub fn product_name(&self, id: &str) -> Option<&str> {
        self.product.iter().find(|p| p.id == id).map(|p| p.name.as_str())
    }

    /// The threshold for a shop: its own, else the file's.
    pub fn threshold_for(&self, shop: &str) -> f64 {
        self.shop.iter().find(|s| s.id == shop).and_then(|s| s.threshold).unwrap_or(self.knowledge.threshold)
    }

    /// A shop's bot mode (`off` for a shop not listed).
    pub fn bot_mode(&self, shop: &str) -> BotMode {
        self.shop.iter().find(|s| s.id == shop).map_or(BotMode::Off, |s| s.bot)
    }

    /// Whether a shop's bot answers first at `minute` (Beijing time, minutes since midnight),
    /// with the desk as it is now (`None`: unknown — no routing, so never closed and no wait
    /// known: the desk-dependent modes stay silent). An unbounded wait (nobody online) is
    /// longer than any `bot_wait_minutes`.
    pub fn bot_active(&self, shop: &str, minute: u16, desk: Option<&Desk>) -> bool {
        let Some(s) = self.shop.iter().find(|s| s.id == shop) else { return false };
        match s.bot {
            BotMode::Off => false,
            BotMode::Always => true,
            BotMode::Hours => s.bot_hours.as_deref().and_then(Hours::parse).is_some_and(|h| h.contains(minute)),
            BotMode::OffHours => desk.is_some_and(|d| !d.open),
            BotMode::LongWait => desk.is_some_and(|d| {
                let limit_s = u64::from(s.bot_wait_minutes.unwrap_or(0)) * 60;
                d.wait_s.is_none_or(|w| w > limit_s)
            }),
        }
    }

    /// Whether a buyer's message asks for a person.
    pub fn wants_human(&self, text: &str) -> bool {
        self.knowledge.handover_words.iter().any(|w| !w.is_empty() && text.contains(w.as_str()))
    }

    /// The welcome with its numbered card questions, or `None` when no welcome is configured.
    pub fn welcome_text(&self) -> Option<String> {
        let k = &self.knowledge;
        if k.welcome.trim().is_empty() {
            return None;
        }
        let mut text = k.welcome.clone();
        for (i, card) in k.cards.iter().enumerate() {
            text.push_str(&format!("\n{}. {card}", i + 1));
        }
        Some(text)
    }

    /// The card question a bare number picks ("2" → the second card).
    pub fn card(&self, text: &str) -> Option<&str> {
        let n: usize = text.trim().parse().ok()?;
        self.knowledge.cards.get(n.checked_sub(1)?).map(String::as_str)
    }

    /// Whether a follow-up may go out at `minute` (outside the quiet hours).
    pub fn followup_allowed_at(&self, minute: u16) -> bool {
        Hours::parse(&self.knowledge.followup_quiet_hours).is_none_or(|quiet| !quiet.contains(minute))
    }

    /// Shop ids named anywhere (`[[shop]]` and entry conditions), for cross-checks with shops.toml.
    pub fn shop_ids(&self) -> BTreeSet<&str> {
        let named = self
            .entry
            .iter()
            .flat_map(|e| e.when.shops.iter().map(String::as_str))
            .chain(self.followup.iter().flat_map(|f| f.shops.iter().map(String::as_str)));
        self.shop.iter().map(|s| s.id.as_str()).chain(named).collect()
    }
}

pub use huiliu_domain::text::placeholders;

/// Blank as the API contract defines it (space, tab, line breaks, the ideographic space), so an
/// entry the API accepts is one this check accepts.
use huiliu_domain::text::is_blank;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let text = r#"
[knowledge]
threshold = 1.5
semantic_weight = -1
resolved_after_minutes = 0
[[synonyms]]
words = ["包邮"]
[[entry]]
id = "Ship"
question = ""
answer = "亲{nick}"
[entry.when]
order_states = ["lost"]
hours = "9-18"
[[entry]]
id = "a"
question = "q"
answer = "x"
[[entry]]
id = "a"
question = "q"
answer = "x"
"#;
        let errors = parse(text, "faq.toml").unwrap_err();
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "knowledge.threshold",
                "knowledge.semantic_weight",
                "knowledge.resolved_after_minutes",
                "synonyms[0].words",
                "entry[0].id",
                "entry[0].question",
                "entry[0].answer",
                "entry[0].when.order_states",
                "entry[0].when.hours",
                "entry[2].id"
            ]
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let errors =
            parse("[[entry]]\nid = \"a\"\nquestion = \"q\"\nanswer = \"x\"\nanwser = \"y\"\n", "f").unwrap_err();
        assert!(errors[0].message.contains("anwser"), "{errors:?}");
    }

    #[test]
    fn hours_wrap_midnight() {
        let night = Hours::parse("22:00-08:00").unwrap();
        assert!(night.contains(23 * 60) && night.contains(60) && !night.contains(12 * 60));
        let day = Hours::parse("09:00-18:00").unwrap();
        assert!(day.contains(9 * 60) && !day.contains(18 * 60));
        assert_eq!(Hours::parse("25:00-01:00"), None);
    }

    #[test]
    fn product_names_are_checked_and_found() {
        let cfg = parse("[[product]]\nid = \"p1\"\nname = \"小汇电热水器\"\n", "f").unwrap();
        assert_eq!((cfg.product_name("p1"), cfg.product_name("p2")), (Some("小汇电热水器"), None));
        let errors = parse(
            "[[product]]\nid = \"p1\"\nname = \" \"\n[[product]]\nid = \"p1\"\nname = \"x\"\n\
             [[entry]]\nid = \"a\"\nquestion = \"q\"\nanswer = \"x\"\n[entry.when]\nproducts = [\"\"]\n",
            "f",
        )
        .unwrap_err();
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["product[0].name", "product[1].id", "entry[0].when.products"]);
    }

    /// `[[entry.attach]]` tables belong to the entry above them, before or after its
    /// `[entry.when]`; each problem is reported with the entry's id and the table's key.
    #[test]
    fn attachments_are_parsed_per_entry_and_checked_naming_the_entry() {
        let cfg = parse(
            r#"
[[product]]
id = "e60"
name = "小汇电热水器E60"
[[entry]]
id = "size-chart"
question = "有尺码表吗"
answer = "亲，尺码表请看图～"
[[entry.attach]]
image = "https://img.example.com/size-chart.png"
[[entry]]
id = "power"
question = "功率多大"
answer = "{product}是3000W"
[entry.when]
products = ["e60"]
[[entry.attach]]
product = "{product}"
[[entry.attach]]
order = "{order}"
[[entry]]
id = "plain"
question = "q"
answer = "a"
"#,
            "faq.toml",
        )
        .unwrap();
        let attach: Vec<usize> = cfg.entry.iter().map(|e| e.attach.len()).collect();
        assert_eq!(attach, [1, 2, 0]);
        assert_eq!(cfg.entry[1].when.products, ["e60"], "[entry.when] before the attachments still counts");
        // In a conversation about e60 without an order: the card, named, and no order card.
        let subject = Subject { product: Some(("e60", None)), order: None };
        assert_eq!(
            cfg.attachments(&cfg.entry[1], &subject),
            [Attachment::Product { id: "e60".into(), title: Some("小汇电热水器E60".into()) }]
        );
        assert_eq!(
            cfg.attachments(&cfg.entry[0], &Subject::default()),
            [Attachment::Image { url: "https://img.example.com/size-chart.png".into() }]
        );

        let errors = parse(
            r#"
[[entry]]
id = "size-chart"
question = "q"
answer = "a"
[[entry.attach]]
imge = "https://img.example.com/a.png"
[[entry.attach]]
image = "https://img.example.com/a.png"
product = "{product}"
[[entry.attach]]
image = "file:///tmp/a.png"
[[entry.attach]]
product = "{sku}"
[[entry]]
id = "tracking"
question = "r"
answer = "b"
[[entry.attach]]
order = "{order}"
title = "订单"
"#,
            "faq.toml",
        )
        .unwrap_err();
        let got: Vec<(&str, &str)> = errors.iter().map(|e| (e.key.as_str(), e.message.as_str())).collect();
        assert_eq!(
            got,
            [
                ("entry[0].attach[0]", "entry `size-chart`: unknown key `imge` (known: image, product, title, order)"),
                ("entry[0].attach[0]", "entry `size-chart`: name one of image, product or order"),
                (
                    "entry[0].attach[1]",
                    "entry `size-chart`: one kind per table: this one has image and product (write one [[entry.attach]] each)"
                ),
                (
                    "entry[0].attach[2]",
                    "entry `size-chart`: image `file:///tmp/a.png` is not an http(s) URL (https://host/path, no spaces or braces)"
                ),
                (
                    "entry[0].attach[3]",
                    "entry `size-chart`: unknown placeholder {sku} in product (a product id, or {product})"
                ),
                ("entry[1].attach[0]", "entry `tracking`: title belongs to a product card"),
            ]
        );
        let many = format!(
            "[[entry]]\nid = \"a\"\nquestion = \"q\"\nanswer = \"x\"\n{}",
            "[[entry.attach]]\norder = \"{order}\"\n".repeat(6)
        );
        assert_eq!(parse(&many, "f").unwrap_err()[0].key, "entry[0].attach");
    }

    #[test]
    fn shop_threshold_overrides_the_file() {
        let cfg = parse("[knowledge]\nthreshold = 0.5\n[[shop]]\nid = \"tb\"\nthreshold = 0.8\n", "f").unwrap();
        assert_eq!(cfg.threshold_for("tb"), 0.8);
        assert_eq!(cfg.threshold_for("jd"), 0.5);
    }
}

#[cfg(test)]
mod bot_tests {
    use super::*;

    #[test]
    fn bot_modes_per_shop() {
        let cfg = parse(
            "[[shop]]\nid = \"day\"\nbot = \"always\"\n[[shop]]\nid = \"night\"\nbot = \"hours\"\nbot_hours = \"23:00-09:00\"\n",
            "f",
        )
        .unwrap();
        assert!(cfg.bot_active("day", 12 * 60, None));
        assert!(cfg.bot_active("night", 60, None) && !cfg.bot_active("night", 12 * 60, None));
        assert!(!cfg.bot_active("unlisted", 60, None));
        assert!(cfg.wants_human("转人工") && cfg.wants_human("我要找真人") && !cfg.wants_human("包邮吗"));
        let errors = parse("[[shop]]\nid = \"x\"\nbot = \"hours\"\n", "f").unwrap_err();
        assert_eq!(errors[0].key, "shop[0].bot_hours");
        let cfg = parse("[knowledge]\nwelcome = \"您好～\"\ncards = [\"包邮吗\", \"多久发货\"]\n", "f").unwrap();
        assert_eq!(cfg.welcome_text().as_deref(), Some("您好～\n1. 包邮吗\n2. 多久发货"));
        assert_eq!((cfg.card(" 2 "), cfg.card("3"), cfg.card("0")), (Some("多久发货"), None, None));
    }

    #[test]
    fn off_hours_and_long_wait_follow_the_desk() {
        let cfg = parse(
            "[[shop]]\nid = \"closed\"\nbot = \"off_hours\"\n[[shop]]\nid = \"busy\"\nbot = \"long_wait\"\nbot_wait_minutes = 3\n",
            "f",
        )
        .unwrap();
        let desk = |open, wait_s| Desk { open, wait_s };
        assert_eq!((cfg.bot_mode("busy"), cfg.bot_mode("x")), (BotMode::LongWait, BotMode::Off));
        assert!(cfg.bot_mode("closed").needs_desk() && !BotMode::Always.needs_desk());
        // off_hours: only a closed desk; without routing (no desk known) never.
        assert!(cfg.bot_active("closed", 720, Some(&desk(false, Some(0)))));
        assert!(!cfg.bot_active("closed", 720, Some(&desk(true, None))));
        assert!(!cfg.bot_active("closed", 720, None));
        // long_wait: more than 3 minutes, or nobody online at all.
        assert!(!cfg.bot_active("busy", 720, Some(&desk(true, Some(180)))));
        assert!(cfg.bot_active("busy", 720, Some(&desk(true, Some(181)))));
        assert!(cfg.bot_active("busy", 720, Some(&desk(true, None))));
        assert!(cfg.bot_active("busy", 720, Some(&desk(false, Some(3600)))));
        assert!(!cfg.bot_active("busy", 720, None));
        let errors = parse(
            "[[shop]]\nid = \"a\"\nbot = \"long_wait\"\n[[shop]]\nid = \"b\"\nbot = \"always\"\nbot_wait_minutes = 2\n",
            "f",
        )
        .unwrap_err();
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["shop[0].bot_wait_minutes", "shop[1].bot_wait_minutes"]);
    }

    #[test]
    fn followups_are_checked_and_quiet_hours_hold() {
        let cfg = parse("[[followup]]\nevent = \"shipped\"\ntext = \"{buyer}，{order}已发货\"\n", "f").unwrap();
        assert!(cfg.followup_allowed_at(12 * 60) && !cfg.followup_allowed_at(23 * 60));
        let errors = parse(
            "[knowledge]\nfollowup_quiet_hours = \"late\"\n[[followup]]\nevent = \"lost\"\ntext = \"{x}\"\nafter_minutes = 5\n",
            "f",
        )
        .unwrap_err();
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            ["knowledge.followup_quiet_hours", "followup[0].event", "followup[0].text", "followup[0].after_minutes"]
        );
    }
}
