//! Compliance check of outbound agent replies: Advertising Law absolute terms (广告法极限词)
//! and off-platform contact (站外联系方式), each warned about or blocked per config.
//!
//! ```
//! use huiliu_privacy::compliance::{Action, Category, Compliance, ComplianceConfig};
//!
//! let c = Compliance::new(&ComplianceConfig::default()).expect("the defaults compile");
//! let v = c.check("这款是全网最低价，有问题加我微信 abc_123456");
//! assert_eq!(v.action, Action::Block);
//! assert_eq!(v.hits[0].category, Category::AbsoluteTerm);
//! assert_eq!(v.hits[0].term, "全网最低");
//! assert_eq!(c.check("最近发货比较慢，第一时间帮您催").action, Action::Allow);
//! ```
//!
//! # Absolute terms
//!
//! 《广告法》第九条 forbids "国家级"、"最高级"、"最佳" and similar absolute terms in advertising,
//! and an agent's reply about a product is advertising. The market regulator's guidance
//! (《广告绝对化用语执法指南》, 2023) exempts uses that do not describe the product itself:
//! time and order (`最近`, `最后一天`, `第一次`, `第一时间`), quantities (`最多`, `最少`),
//! delivery estimates (`最快明天到`), advice (`您最好先拍照`), and factual composition
//! (`100%纯棉`). So the default term list includes the bare `最` and `第一`, and the default
//! `allow` list holds those ordinary words: a hit lying entirely inside an occurrence of an
//! allowed word is not a hit (`最近` neutralizes its `最`; `最低价` is still a hit because it
//! is not inside `最近`). Matching is on normalized text (NFKC, case-folded ASCII,
//! invisible characters removed), longest term first, without overlaps.
//!
//! # Split terms
//!
//! A term or phrase typed with spaces, punctuation, symbols, emoji or zero-width characters
//! between its characters (`最 好`, `加 微 信`, `加.微.信`, `最*佳`) is found too: terms made
//! of letters and ideographs only are also matched on a *squeezed* view of the reply with
//! those characters left out, each hit mapped back to the exact original characters. To keep
//! ordinary sentences from producing new hits, a squeezed hit counts only when
//! - what lies inside it is spaces, symbols and emoji — clause punctuation (`，` `。` `！`
//!   `？` `；` `、`) counts only in a term of three or more characters split at every character
//!   (`加，微，信`), never between two clauses (`先加购，微信支付也可以` is no hit);
//! - a term starting or ending with an ASCII letter is not glued to other letters
//!   (`desk top 1`);
//! - it does not lie inside an allowed word, itself matched on both views (`最 近` stays
//!   allowed).
//!
//! # Off-platform contact
//!
//! Platforms punish shops that move buyers off-platform. Three kinds of hits:
//! - phrases (`加微信`, `加V`, `私聊`, `线下交易` …);
//! - an id marker (`微信`, `VX`, `V信`, `wx`, `薇信`, `加我`, `QQ` …) or a phrase, followed,
//!   after at most four of `:`, `=`, spaces, `号`, `号码`, `账号`, `id`, `是`, `为`, by a WeChat
//!   id (a letter then 5–19 letters, digits, `_` or `-`) or a QQ number (5–12 digits; Chinese
//!   numerals count) — marker and id are one hit (`VX是 shop_service01`);
//! - mobile and fixed-line numbers, found by the masker's detectors (all obfuscations
//!   included). 400/800 numbers are the shop's own hotlines and are not hits.
//!
//! # Result
//!
//! [`Compliance::check`] returns every hit with the exact original words, their byte range
//! and a reason in Chinese for the agent; the verdict's action is the strongest action among
//! the categories hit (`block` > `warn`), `Allow` when there is no hit. Overlapping hits of
//! one category are merged.

use std::ops::Range;

use regex::{Regex, RegexBuilder};
use serde::Deserialize;

use super::mask::{Detectors, MaskConfig, Masker};
use super::normalize::{Normalized, Options, chunks};

/// What a category does when it is hit.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub enum RuleAction {
    /// The category is not checked.
    Off,
    /// The reply is sent; the agent is told what was found.
    Warn,
    /// The reply is not sent; the agent sees the words and why.
    Block,
    /// A value that is none of the above (reported by validation).
    Invalid(String),
}

impl From<String> for RuleAction {
    fn from(s: String) -> Self {
        match s.as_str() {
            "off" => RuleAction::Off,
            "warn" => RuleAction::Warn,
            "block" => RuleAction::Block,
            _ => RuleAction::Invalid(s),
        }
    }
}

/// `[compliance.absolute_terms]`: Advertising Law absolute terms.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AbsoluteTermsConfig {
    /// `warn`, `block` or `off`. Default `warn`.
    pub action: RuleAction,
    /// The terms. Case-insensitive; full-width and half-width forms are the same.
    pub terms: Vec<String>,
    /// Ordinary words that contain a term but are not claims (`最近`, `第一次`): a hit lying
    /// inside one of them is dropped. Each must contain a term.
    pub allow: Vec<String>,
}

/// `[compliance.off_platform]`: moving the buyer off the platform.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OffPlatformConfig {
    /// `warn`, `block` or `off`. Default `block`.
    pub action: RuleAction,
    /// Phrases that are hits wherever they appear (`加微信`, `私聊`).
    pub phrases: Vec<String>,
    /// Words that introduce a WeChat id or QQ number (`微信`, `VX`, `QQ`); the marker and the
    /// id after it are one hit.
    pub id_markers: Vec<String>,
    /// Whether mobile and fixed-line numbers in a reply are hits. Default true.
    pub phone_numbers: bool,
    /// Words that contain a phrase or marker but are fine (`加VIP`); each must contain one.
    pub allow: Vec<String>,
}

/// `[compliance]` in `filters.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ComplianceConfig {
    pub absolute_terms: AbsoluteTermsConfig,
    pub off_platform: OffPlatformConfig,
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The default absolute terms.
pub const DEFAULT_TERMS: &[&str] = &[
    "最",
    "最佳",
    "最好",
    "最优",
    "最低价",
    "最便宜",
    "最高级",
    "最先进",
    "全网最低",
    "史上最",
    "第一",
    "唯一",
    "首个",
    "首选",
    "首家",
    "国家级",
    "世界级",
    "全球级",
    "顶级",
    "顶尖",
    "极品",
    "极致",
    "绝对",
    "100%",
    "万能",
    "全球首创",
    "全国首发",
    "独家秘方",
    "销量冠军",
    "no.1",
    "top1",
    "包治百病",
    "立竿见影",
    "无副作用",
];

/// The default words that neutralize an absolute term.
pub const DEFAULT_TERMS_ALLOW: &[&str] = &[
    "最近",
    "最后",
    "最终",
    "最初",
    "最早",
    "最晚",
    "最迟",
    "最快",
    "最慢",
    "最多",
    "最少",
    "最长",
    "最短",
    "最新",
    "最好先",
    "最好是",
    "您最好",
    "最好还是",
    "最好在",
    "第一次",
    "第一时间",
    "第一天",
    "第一步",
    "第一件",
    "第一个",
    "第一单",
    "第一批",
    "第一眼",
    "第一位",
    "100%纯棉",
    "100%棉",
    "100%羊毛",
    "100%桑蚕丝",
];

/// The default off-platform phrases.
pub const DEFAULT_PHRASES: &[&str] = &[
    "加微信",
    "加我微信",
    "加个微信",
    "加v",
    "加vx",
    "加wx",
    "加薇",
    "加威",
    "加qq",
    "加扣扣",
    "私聊",
    "私信我",
    "私下交易",
    "线下交易",
    "站外交易",
    "微信联系",
    "微信转账",
    "支付宝转账",
    "扫码加",
    "加好友",
];

/// The default id markers.
pub const DEFAULT_ID_MARKERS: &[&str] =
    &["微信", "威信", "薇信", "徽信", "v信", "vx", "wx", "weixin", "wechat", "加我", "qq", "扣扣", "企鹅"];

/// The default words that neutralize an off-platform hit.
pub const DEFAULT_OFF_PLATFORM_ALLOW: &[&str] = &["加vip", "加v会员"];

impl Default for AbsoluteTermsConfig {
    fn default() -> Self {
        AbsoluteTermsConfig {
            action: RuleAction::Warn,
            terms: strings(DEFAULT_TERMS),
            allow: strings(DEFAULT_TERMS_ALLOW),
        }
    }
}

impl Default for OffPlatformConfig {
    fn default() -> Self {
        OffPlatformConfig {
            action: RuleAction::Block,
            phrases: strings(DEFAULT_PHRASES),
            id_markers: strings(DEFAULT_ID_MARKERS),
            phone_numbers: true,
            allow: strings(DEFAULT_OFF_PLATFORM_ALLOW),
        }
    }
}

/// Word lists are compared after this normalization.
const WORDS: Options = Options { cjk_digits: false, lowercase: true };
/// Ids are read after this one (a QQ number may be written in Chinese numerals).
const IDS: Options = Options { cjk_digits: true, lowercase: true };

fn norm(word: &str, opts: Options) -> String {
    Normalized::new(word.trim(), opts).text
}

impl ComplianceConfig {
    /// Every problem in this section, as (`compliance.…` key, message).
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errors = Vec::new();
        let a = &self.absolute_terms;
        let at = |k: &str| format!("compliance.absolute_terms.{k}");
        check_action(&a.action, &at("action"), &mut errors);
        check_words(&a.terms, &at("terms"), &mut errors);
        if a.terms.is_empty() && a.action != RuleAction::Off {
            errors.push((at("terms"), "is empty; set action = \"off\" to disable the check".to_owned()));
        }
        check_words(&a.allow, &at("allow"), &mut errors);
        let terms: Vec<String> = a.terms.iter().map(|t| norm(t, WORDS)).filter(|t| !t.is_empty()).collect();
        // Shipped allow words are not the operator's mistake when they replace the terms.
        let shipped = AbsoluteTermsConfig::default().allow;
        for (i, w) in a.allow.iter().enumerate() {
            if shipped.contains(w) {
                continue;
            }
            let w = norm(w, WORDS);
            if !w.is_empty() && !terms.iter().any(|t| w.contains(t.as_str())) {
                errors.push((
                    format!("{}[{i}]", at("allow")),
                    "contains none of the terms, so it never neutralizes a hit".to_owned(),
                ));
            }
        }

        let o = &self.off_platform;
        let ot = |k: &str| format!("compliance.off_platform.{k}");
        check_action(&o.action, &ot("action"), &mut errors);
        check_words(&o.phrases, &ot("phrases"), &mut errors);
        check_words(&o.id_markers, &ot("id_markers"), &mut errors);
        check_words(&o.allow, &ot("allow"), &mut errors);
        if o.phrases.is_empty() && o.id_markers.is_empty() && !o.phone_numbers && o.action != RuleAction::Off {
            errors.push((
                ot("phrases"),
                "no phrases, no id markers and phone_numbers = false; set action = \"off\" to disable the check"
                    .to_owned(),
            ));
        }
        let words: Vec<String> =
            o.phrases.iter().chain(&o.id_markers).map(|t| norm(t, WORDS)).filter(|t| !t.is_empty()).collect();
        let shipped = OffPlatformConfig::default().allow;
        for (i, w) in o.allow.iter().enumerate() {
            if shipped.contains(w) {
                continue;
            }
            let w = norm(w, WORDS);
            if !w.is_empty() && !words.iter().any(|t| w.contains(t.as_str())) {
                errors.push((
                    format!("{}[{i}]", ot("allow")),
                    "contains no phrase or id marker, so it never neutralizes a hit".to_owned(),
                ));
            }
        }
        errors
    }
}

fn check_action(action: &RuleAction, key: &str, errors: &mut Vec<(String, String)>) {
    if let RuleAction::Invalid(s) = action {
        errors.push((key.to_owned(), format!("unknown action `{s}`; expected \"warn\", \"block\" or \"off\"")));
    }
}

fn check_words(words: &[String], key: &str, errors: &mut Vec<(String, String)>) {
    for (i, w) in words.iter().enumerate() {
        if norm(w, WORDS).is_empty() {
            errors.push((format!("{key}[{i}]"), "must not be empty".to_owned()));
        }
    }
}

/// The rule that a hit broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// 广告法极限词.
    AbsoluteTerm,
    /// 站外联系方式 / 引导私下交易.
    OffPlatformContact,
}

impl Category {
    pub fn as_str(&self) -> &'static str {
        match self {
            Category::AbsoluteTerm => "absolute_term",
            Category::OffPlatformContact => "off_platform_contact",
        }
    }
}

/// What to do with a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Send it.
    Allow,
    /// Send it and tell the agent.
    Warn,
    /// Do not send it; the agent sees why.
    Block,
}

/// One problem in a reply.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Hit {
    pub category: Category,
    /// The exact words of the reply that were found.
    pub term: String,
    /// Their byte range in the reply (`{"start": …, "end": …}`).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub range: Range<usize>,
    /// Why, in Chinese, for the agent.
    pub reason: String,
}

/// The outcome of a check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verdict {
    pub action: Action,
    /// Hits in text order.
    pub hits: Vec<Hit>,
}

#[derive(Debug, Clone)]
struct TermRule {
    action: Action,
    terms: Regex,
    allow: Option<Regex>,
    /// The terms made of letters and ideographs only, for the squeezed view.
    squeezable: Option<Regex>,
    /// Neighbouring character pairs of those terms and of the allowed words, sorted: a reply
    /// where no such pair is split by gap characters skips the squeezed view.
    split_pairs: Vec<(char, char)>,
}

#[derive(Debug, Clone)]
struct OffPlatformRule {
    action: Action,
    phrases: Option<Regex>,
    /// The phrases made of letters and ideographs only, for the squeezed view.
    squeezable: Option<Regex>,
    /// As [`TermRule::split_pairs`].
    split_pairs: Vec<(char, char)>,
    ids: Option<Regex>,
    allow: Option<Regex>,
    phones: Option<Masker>,
}

/// The compiled compliance check: build once per configuration, share freely.
#[derive(Debug, Clone)]
pub struct Compliance {
    absolute: Option<TermRule>,
    off_platform: Option<OffPlatformRule>,
}

/// An alternation of the literal `words`, longest first; `None` for an empty list.
fn literal_set(words: &[String], opts: Options) -> Result<Option<Regex>, String> {
    let mut words: Vec<String> = words.iter().map(|w| norm(w, opts)).filter(|w| !w.is_empty()).collect();
    if words.is_empty() {
        return Ok(None);
    }
    words.sort_by(|a, b| b.chars().count().cmp(&a.chars().count()).then_with(|| a.cmp(b)));
    words.dedup();
    let pattern = words.iter().map(|w| regex::escape(w)).collect::<Vec<_>>().join("|");
    RegexBuilder::new(&pattern).size_limit(1 << 24).build().map(Some).map_err(|e| e.to_string())
}

/// Turns a compile error into the one-error list `new` returns.
fn fail(key: &'static str) -> impl Fn(String) -> Vec<(String, String)> {
    move |e| vec![(key.to_owned(), e)]
}

fn action_of(a: &RuleAction) -> Option<Action> {
    match a {
        RuleAction::Warn => Some(Action::Warn),
        RuleAction::Block => Some(Action::Block),
        RuleAction::Off | RuleAction::Invalid(_) => None,
    }
}

impl Compliance {
    /// Compiles `config`; on error returns every problem (as [`ComplianceConfig::validate`]).
    pub fn new(config: &ComplianceConfig) -> Result<Compliance, Vec<(String, String)>> {
        let errors = config.validate();
        if !errors.is_empty() {
            return Err(errors);
        }
        let a = &config.absolute_terms;
        let absolute = match action_of(&a.action) {
            None => None,
            Some(action) => match literal_set(&a.terms, WORDS).map_err(fail("compliance.absolute_terms.terms"))? {
                None => None,
                Some(terms) => Some(TermRule {
                    action,
                    terms,
                    allow: literal_set(&a.allow, WORDS).map_err(fail("compliance.absolute_terms.allow"))?,
                    squeezable: literal_set(&squeezable(&a.terms), WORDS)
                        .map_err(fail("compliance.absolute_terms.terms"))?,
                    split_pairs: split_pairs(
                        &squeezable(&a.terms).into_iter().chain(a.allow.iter().cloned()).collect::<Vec<_>>(),
                    ),
                }),
            },
        };
        let o = &config.off_platform;
        let off_platform = match action_of(&o.action) {
            None => None,
            Some(action) => {
                // A phrase (`加V`) introduces an id as well as a marker does.
                let introducers: Vec<String> = o.id_markers.iter().chain(&o.phrases).cloned().collect();
                let ids = match literal_set(&introducers, IDS).map_err(fail("compliance.off_platform.id_markers"))? {
                    None => None,
                    Some(markers) => {
                        let pattern = format!(
                            r"(?:{})(?:[\s:=]|号码|号|账号|帐号|id|是|为){{0,4}}(?:[a-z][a-z0-9_\-]{{5,19}}|[1-9][0-9]{{4,11}})",
                            markers.as_str()
                        );
                        Some(
                            Regex::new(&pattern)
                                .map_err(|e| vec![("compliance.off_platform.id_markers".to_owned(), e.to_string())])?,
                        )
                    }
                };
                let phones = if o.phone_numbers {
                    let detectors = Detectors {
                        mobile: true,
                        landline: true,
                        service_number: false,
                        id_card: false,
                        bank_card: false,
                        email: false,
                        address: false,
                        wechat: false,
                        qq: false,
                    };
                    Some(Masker::new(&MaskConfig { detectors, protect_words: Vec::new(), ..MaskConfig::default() })?)
                } else {
                    None
                };
                Some(OffPlatformRule {
                    action,
                    phrases: literal_set(&o.phrases, WORDS).map_err(fail("compliance.off_platform.phrases"))?,
                    squeezable: literal_set(&squeezable(&o.phrases), WORDS)
                        .map_err(fail("compliance.off_platform.phrases"))?,
                    split_pairs: split_pairs(
                        &squeezable(&o.phrases).into_iter().chain(o.allow.iter().cloned()).collect::<Vec<_>>(),
                    ),
                    ids,
                    allow: literal_set(&o.allow, WORDS).map_err(fail("compliance.off_platform.allow"))?,
                    phones,
                })
            }
        };
        Ok(Compliance { absolute, off_platform })
    }

    /// Checks one outbound reply.
    pub fn check(&self, text: &str) -> Verdict {
        let mut hits = Vec::new();
        let mut action = Action::Allow;
        for (base, chunk) in chunks(text) {
            let before = hits.len();
            if let Some(rule) = &self.absolute {
                self.absolute_hits(rule, chunk, base, &mut hits);
            }
            if hits.len() > before {
                action = action.max(self.absolute.as_ref().map_or(Action::Allow, |r| r.action));
            }
            let before = hits.len();
            if let Some(rule) = &self.off_platform {
                off_platform_hits(rule, chunk, base, &mut hits);
                if hits.len() > before {
                    action = action.max(rule.action);
                }
            }
        }
        hits.sort_by_key(|h| (h.range.start, h.range.end));
        Verdict { action, hits }
    }

    fn absolute_hits(&self, rule: &TermRule, text: &str, base: usize, hits: &mut Vec<Hit>) {
        let n = Normalized::new(text, WORDS);
        let sq = may_be_split(&n, &rule.split_pairs).then(|| Squeezed::new(&n));
        let allowed: Vec<Range<usize>> =
            rule.allow.as_ref().map(|a| a.find_iter(&n.text).map(|m| m.range()).collect()).unwrap_or_default();
        let allowed_sq = sq.as_ref().map(|sq| sq.allowed(&n, rule.allow.as_ref())).unwrap_or_default();
        let reason = |t: &str| {
            format!(
                "《广告法》第九条禁止使用“国家级”“最高级”“最佳”等绝对化用语；「{t}」可能构成违规，请改用客观、可证实的描述"
            )
        };
        let mut found = Vec::new();
        for m in rule.terms.find_iter(&n.text) {
            let r = m.range();
            if allowed.iter().any(|a| a.start <= r.start && r.end <= a.end)
                || n.unit_range(r.clone()).is_some_and(|u| inside(&u, &allowed_sq))
            {
                continue;
            }
            found.extend(make_hit(&n, text, base, r, Category::AbsoluteTerm, reason));
        }
        if let (Some(re), Some(sq)) = (&rule.squeezable, &sq) {
            for units in sq.hits(&n, re, &allowed_sq) {
                found.extend(unit_hit(&n, text, base, units, Category::AbsoluteTerm, reason));
            }
        }
        hits.extend(disjoint(found));
    }
}

fn off_platform_hits(rule: &OffPlatformRule, text: &str, base: usize, hits: &mut Vec<Hit>) {
    let mut found: Vec<Hit> = Vec::new();
    let words = Normalized::new(text, WORDS);
    let allowed: Vec<Range<usize>> =
        rule.allow.as_ref().map(|a| a.find_iter(&words.text).map(|m| m.range()).collect()).unwrap_or_default();
    let is_allowed = |r: &Range<usize>| allowed.iter().any(|a| a.start <= r.start && r.end <= a.end);
    let sq = may_be_split(&words, &rule.split_pairs).then(|| Squeezed::new(&words));
    let allowed_sq = sq.as_ref().map(|sq| sq.allowed(&words, rule.allow.as_ref())).unwrap_or_default();
    let reason = |t: &str| format!("「{t}」引导买家到站外联系或私下交易，违反平台规则，可能导致店铺被处罚");
    if let Some(phrases) = &rule.phrases {
        for m in phrases.find_iter(&words.text) {
            if is_allowed(&m.range()) || words.unit_range(m.range()).is_some_and(|u| inside(&u, &allowed_sq)) {
                continue;
            }
            found.extend(make_hit(&words, text, base, m.range(), Category::OffPlatformContact, reason));
        }
    }
    if let (Some(re), Some(sq)) = (&rule.squeezable, &sq) {
        for units in sq.hits(&words, re, &allowed_sq) {
            found.extend(unit_hit(&words, text, base, units, Category::OffPlatformContact, reason));
        }
    }
    if let Some(ids) = &rule.ids {
        let n = Normalized::new(text, IDS);
        for m in ids.find_iter(&n.text) {
            found.extend(make_hit(&n, text, base, m.range(), Category::OffPlatformContact, |t| {
                format!("「{t}」是微信/QQ 等站外联系方式，平台禁止在回复中发送")
            }));
        }
    }
    if let Some(phones) = &rule.phones {
        for f in phones.find(text) {
            found.push(Hit {
                category: Category::OffPlatformContact,
                reason: format!("「{}」是电话号码，平台禁止在回复中留站外联系方式", f.original),
                term: f.original,
                range: base + f.range.start..base + f.range.end,
            });
        }
    }
    // Merge overlapping hits (a phrase and the id after it, a QQ number that is also a phone).
    found.sort_by_key(|h| (h.range.start, h.range.end));
    let mut merged: Vec<Hit> = Vec::new();
    for h in found {
        match merged.last_mut() {
            Some(last) if h.range.start < last.range.end => {
                if h.range.end > last.range.end {
                    last.range.end = h.range.end;
                    let (a, b) = (last.range.start - base, last.range.end - base);
                    last.term = text.get(a..b).unwrap_or_default().to_owned();
                    last.reason = h.reason;
                }
            }
            _ => merged.push(h),
        }
    }
    hits.extend(merged);
}

/// Characters a term may be split by (after normalization: NFKC has made full-width
/// punctuation ASCII). Not `%` or `#`, which are parts of terms (`100%`).
fn is_gap(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '.' | ',' | '。' | '、' | '!' | '?' | ';' | ':' | '\'' | '"' | '*' | '~' | '|' | '/' | '\\' | '-' | '_' | '·'
                | '•' | '…' | '—' | '(' | ')' | '[' | ']' | '{' | '}' | '<' | '>' | '《' | '》' | '「' | '」' | '『'
                | '』' | '【' | '】' | '`' | '^' | '+' | '=' | '&' | '\u{2600}'..='\u{27BF}' | '\u{1F300}'..='\u{1FAFF}'
        )
}

/// Clause punctuation: a term split by it only counts when spelled out (see the module doc).
fn is_clause_mark(c: char) -> bool {
    matches!(c, ',' | '。' | '、' | '!' | '?' | ';' | '…')
}

/// The words of `list` made of letters and ideographs only (no gap characters, no digits).
fn squeezable(list: &[String]) -> Vec<String> {
    list.iter()
        .filter(|w| {
            let w = norm(w, WORDS);
            w.chars().count() >= 2 && w.chars().all(|c| !is_gap(c) && !c.is_ascii_digit() && c != '%' && c != '#')
        })
        .cloned()
        .collect()
}

/// Every pair of neighbouring characters of each word, normalized, sorted and deduplicated.
fn split_pairs(words: &[String]) -> Vec<(char, char)> {
    let mut pairs: Vec<(char, char)> = words
        .iter()
        .flat_map(|w| {
            let w: Vec<char> = norm(w, WORDS).chars().collect();
            w.windows(2).map(|p| (p[0], p[1])).collect::<Vec<_>>()
        })
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    pairs
}

/// Whether gap characters separate two characters that are neighbours in some word: only
/// then may a term be split (the common reply is not, and skips the squeezed view).
fn may_be_split(n: &Normalized, pairs: &[(char, char)]) -> bool {
    let mut last: Option<char> = None;
    let mut gap = false;
    for u in &n.units {
        if is_gap(u.ch) {
            gap = true;
            continue;
        }
        if gap
            && let Some(l) = last
            && pairs.binary_search(&(l, u.ch)).is_ok()
        {
            return true;
        }
        last = Some(u.ch);
        gap = false;
    }
    false
}

/// The normalized text without gap characters, each character remembering its unit.
struct Squeezed {
    text: String,
    /// (byte offset in `text`, unit index) per character.
    chars: Vec<(u32, u32)>,
}

impl Squeezed {
    fn new(n: &Normalized) -> Squeezed {
        let mut text = String::with_capacity(n.text.len());
        let mut chars = Vec::with_capacity(n.units.len());
        for (i, u) in n.units.iter().enumerate() {
            if !is_gap(u.ch) {
                chars.push((text.len() as u32, i as u32));
                text.push(u.ch);
            }
        }
        Squeezed { text, chars }
    }

    /// The unit range of the squeezed byte range `r` (on character boundaries).
    fn units(&self, r: Range<usize>) -> Option<Range<usize>> {
        let first = self.chars.partition_point(|&(b, _)| (b as usize) < r.start);
        let end = self.chars.partition_point(|&(b, _)| (b as usize) < r.end);
        if end <= first {
            return None;
        }
        Some(self.chars[first].1 as usize..self.chars[end - 1].1 as usize + 1)
    }

    /// Unit ranges of the allowed words on this view.
    fn allowed(&self, n: &Normalized, allow: Option<&Regex>) -> Vec<Range<usize>> {
        let _ = n;
        allow.map(|a| a.find_iter(&self.text).filter_map(|m| self.units(m.range())).collect()).unwrap_or_default()
    }

    /// Unit ranges of the matches of `re` that are split by gap characters and pass the
    /// rules of the module doc.
    fn hits(&self, n: &Normalized, re: &Regex, allowed: &[Range<usize>]) -> Vec<Range<usize>> {
        let mut out = Vec::new();
        for m in re.find_iter(&self.text) {
            let Some(units) = self.units(m.range()) else { continue };
            let chars = m.as_str().chars().count();
            if units.len() == chars || inside(&units, allowed) {
                continue; // not split: the plain view has it (or it is allowed)
            }
            let gaps = &n.units[units.clone()];
            let clause = gaps.iter().any(|u| is_clause_mark(u.ch));
            if clause {
                // Spelled out: every pair of neighbouring characters is split.
                let spelled = chars >= 3 && gaps.windows(2).all(|w| is_gap(w[0].ch) || is_gap(w[1].ch));
                if !spelled {
                    continue;
                }
            }
            let first = m.as_str().chars().next().unwrap_or(' ');
            let last = m.as_str().chars().last().unwrap_or(' ');
            let glued_before =
                first.is_ascii_alphanumeric() && units.start > 0 && n.units[units.start - 1].ch.is_ascii_alphanumeric();
            let glued_after =
                last.is_ascii_alphanumeric() && n.units.get(units.end).is_some_and(|u| u.ch.is_ascii_alphanumeric());
            if glued_before || glued_after {
                continue;
            }
            out.push(units);
        }
        out
    }
}

/// Whether `r` lies inside one of `ranges`.
fn inside(r: &Range<usize>, ranges: &[Range<usize>]) -> bool {
    ranges.iter().any(|a| a.start <= r.start && r.end <= a.end)
}

/// Hits in text order without overlaps (the earlier, then the longer, wins).
fn disjoint(mut hits: Vec<Hit>) -> Vec<Hit> {
    hits.sort_by_key(|h| (h.range.start, std::cmp::Reverse(h.range.end)));
    let mut end = 0;
    hits.retain(|h| {
        let keep = h.range.start >= end;
        if keep {
            end = h.range.end;
        }
        keep
    });
    hits
}

fn unit_hit(
    n: &Normalized,
    text: &str,
    base: usize,
    units: Range<usize>,
    category: Category,
    reason: impl Fn(&str) -> String,
) -> Option<Hit> {
    let orig = n.orig_of_units(units)?;
    let term = text.get(orig.clone())?.to_owned();
    Some(Hit { category, reason: reason(&term), term, range: base + orig.start..base + orig.end })
}

fn make_hit(
    n: &Normalized,
    text: &str,
    base: usize,
    r: Range<usize>,
    category: Category,
    reason: impl Fn(&str) -> String,
) -> Option<Hit> {
    let orig = n.orig_range(r)?;
    let term = text.get(orig.clone())?.to_owned();
    Some(Hit { category, reason: reason(&term), term, range: base + orig.start..base + orig.end })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default() -> Compliance {
        Compliance::new(&ComplianceConfig::default()).unwrap()
    }

    /// (reply, expected action, expected hit terms)
    const CASES: &[(&str, Action, &[&str])] = &[
        ("亲，这款是我们家卖得很好的款式哦", Action::Allow, &[]),
        ("这款效果最好，全网最低价！", Action::Warn, &["最好", "全网最低"]),
        ("最近发货比较慢，最后一天活动，第一次购买有礼", Action::Allow, &[]),
        ("第一时间帮您处理，最快明天到", Action::Allow, &[]),
        ("您最好先拍照留证再签收", Action::Allow, &[]),
        ("国家级品质，世界级工艺，顶级原料", Action::Warn, &["国家级", "世界级", "顶级"]),
        ("本品100%有效，绝对安全", Action::Warn, &["100%", "绝对"]),
        ("面料是100%纯棉的", Action::Allow, &[]),
        ("全网ＮＯ．１的销量", Action::Warn, &["ＮＯ．１"]),
        ("史上最强！唯一正品", Action::Warn, &["史上最", "唯一"]),
        ("最近最低价的一次", Action::Warn, &["最低价"]),
        ("有问题加我微信详聊", Action::Block, &["加我微信"]),
        ("方便的话加V：abc_12345 发您图", Action::Block, &["加V：abc_12345"]),
        ("我的VX是 shop_service01", Action::Block, &["VX是 shop_service01"]),
        ("QQ 12345678 找我", Action::Block, &["QQ 12345678"]),
        ("扣扣：一二三四五六七八", Action::Block, &["扣扣：一二三四五六七八"]),
        ("可以私聊我", Action::Block, &["私聊"]),
        ("直接打我电话 138 1234 5678", Action::Block, &["138 1234 5678"]),
        ("座机0571-88889999", Action::Block, &["0571-88889999"]),
        ("售后热线400-820-8820", Action::Allow, &[]),
        ("加VIP会员有折扣", Action::Allow, &[]),
        ("微信支付暂不支持哦", Action::Allow, &[]),
        ("订单号1234567890123456785已发货", Action::Allow, &[]),
        ("加\u{200B}微\u{200B}信", Action::Block, &["加\u{200B}微\u{200B}信"]),
        ("最好的选择，加我微信abc123456", Action::Block, &["最好", "加我微信abc123456"]),
        // Split by spaces, punctuation, symbols, emoji, zero-width characters.
        ("这款效果最 好", Action::Warn, &["最 好"]),
        ("有事加 微 信聊", Action::Block, &["加 微 信"]),
        ("加.微.信 发你图", Action::Block, &["加.微.信"]),
        ("全网最*低*价", Action::Warn, &["全网最*低"]),
        ("国 家 级品质", Action::Warn, &["国 家 级"]),
        ("加🌹微🌹信", Action::Block, &["加🌹微🌹信"]),
        ("加，微，信", Action::Block, &["加，微，信"]),
        ("私\u{200B} 聊", Action::Block, &["私\u{200B} 聊"]),
        ("加 V 发你", Action::Block, &["加 V"]),
        // No new false hits: allowed words split too, clause punctuation between words,
        // letters glued to other letters.
        ("最 近发货比较慢", Action::Allow, &[]),
        ("第 一 次购买有礼", Action::Allow, &[]),
        ("您可以先加购，微信支付也可以", Action::Allow, &[]),
        ("要是不方便就加，微信支付也行", Action::Allow, &[]),
        ("您看下唯，一的问题是尺码", Action::Allow, &[]),
        ("加 VIP 会员有折扣", Action::Allow, &[]),
        ("desk top 1 号仓发货", Action::Allow, &[]),
        ("已经加了购物车，私下单的话没有优惠", Action::Allow, &[]),
    ];

    #[test]
    fn table() {
        let c = default();
        let mut failures = Vec::new();
        for (text, action, terms) in CASES {
            let v = c.check(text);
            let got: Vec<&str> = v.hits.iter().map(|h| h.term.as_str()).collect();
            if v.action != *action || got != *terms {
                failures.push(format!("{text:?}: expected {action:?} {terms:?}, got {:?} {got:?}", v.action));
            }
            for h in &v.hits {
                assert_eq!(&text[h.range.clone()], h.term, "{text:?}");
                assert!(!h.reason.is_empty());
            }
        }
        assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), CASES.len(), failures.join("\n"));
    }

    #[test]
    fn actions_follow_the_config() {
        let mut cfg = ComplianceConfig::default();
        cfg.absolute_terms.action = RuleAction::Block;
        cfg.off_platform.action = RuleAction::Off;
        let c = Compliance::new(&cfg).unwrap();
        assert_eq!(c.check("最佳选择").action, Action::Block);
        let v = c.check("加我微信");
        assert_eq!(v, Verdict { action: Action::Allow, hits: vec![] });
        cfg.off_platform.action = RuleAction::Warn;
        cfg.off_platform.phone_numbers = false;
        let c = Compliance::new(&cfg).unwrap();
        assert_eq!(c.check("加我微信").action, Action::Warn);
        assert_eq!(c.check("电话13812345678").action, Action::Allow);
        let v = c.check("最佳，加我微信");
        assert_eq!(v.action, Action::Block);
        assert_eq!(v.hits.len(), 2);
        assert_eq!(v.hits[0].category, Category::AbsoluteTerm);
        assert_eq!(v.hits[1].category, Category::OffPlatformContact);
    }

    #[test]
    fn validation_reports_every_error() {
        let mut cfg = ComplianceConfig::default();
        cfg.absolute_terms.action = RuleAction::from("deny".to_owned());
        cfg.absolute_terms.terms.push("  ".into());
        cfg.absolute_terms.allow.push("你好".into());
        cfg.off_platform.action = RuleAction::from("maybe".to_owned());
        cfg.off_platform.phrases.push(String::new());
        cfg.off_platform.allow.push("谢谢".into());
        let errors = cfg.validate();
        let keys: Vec<&str> = errors.iter().map(|(k, _)| k.as_str()).collect();
        let n_terms = DEFAULT_TERMS.len();
        let n_allow = DEFAULT_TERMS_ALLOW.len();
        let n_phrases = DEFAULT_PHRASES.len();
        let n_off_allow = DEFAULT_OFF_PLATFORM_ALLOW.len();
        let expected = [
            "compliance.absolute_terms.action".to_owned(),
            format!("compliance.absolute_terms.terms[{n_terms}]"),
            format!("compliance.absolute_terms.allow[{n_allow}]"),
            "compliance.off_platform.action".to_owned(),
            format!("compliance.off_platform.phrases[{n_phrases}]"),
            format!("compliance.off_platform.allow[{n_off_allow}]"),
        ];
        assert_eq!(keys, expected.iter().map(String::as_str).collect::<Vec<_>>(), "{errors:#?}");
        assert!(errors[0].1.contains("deny"));
        assert!(Compliance::new(&cfg).is_err());

        let mut off = ComplianceConfig::default();
        off.absolute_terms.terms.clear();
        off.absolute_terms.allow.clear();
        assert_eq!(off.validate().len(), 1);
        off.absolute_terms.action = RuleAction::Off;
        assert!(off.validate().is_empty());
    }

    #[test]
    fn no_panic_on_odd_input() {
        let c = default();
        for s in ["", "最", "\u{200B}", "加", "qq", "𝟏𝟑𝟖𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖", "⑩⑪⑫最", "\u{FEFF}最\u{0301}好"]
        {
            let v = c.check(s);
            for h in &v.hits {
                assert_eq!(&s[h.range.clone()], h.term);
            }
        }
    }
}
