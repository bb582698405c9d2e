//! Privacy masking (隐私脱敏): find personal data in chat text and replace exactly the
//! characters the buyer typed with the customary mask.
//!
//! ```
//! use huiliu_privacy::mask::{MaskConfig, Masker, PiiKind};
//!
//! let masker = Masker::new(&MaskConfig::default()).expect("the defaults compile");
//! let m = masker.mask("电话１３８ 幺二三四 5678，订单号1234567890123456785");
//! assert_eq!(m.text, "电话138****5678，订单号1234567890123456785");
//! assert_eq!(m.findings[0].kind, PiiKind::Mobile);
//! assert_eq!(m.findings[0].original, "１３８ 幺二三四 5678");
//! ```
//!
//! # What is found
//!
//! | kind | example | mask |
//! |---|---|---|
//! | [`PiiKind::Mobile`] | `13812345678`, `+86 138-1234-5678`, `幺三八…`, `139,2044,8812`, `138后面是1234再后面5678` | `138****5678`, `138后面是****再后面5678` |
//! | [`PiiKind::Mobile`] | `+852 9123 4567`, `+886 912 345 678` | `+852 ****4567` |
//! | [`PiiKind::Landline`] | `0571-88889999`, `(010)62345678转123` | `0571-********`, `010-********-***` |
//! | [`PiiKind::ServiceNumber`] | `400-820-8820` when `400` is not on `hotline_prefixes` (it is by default: kept) | `400***8820` |
//! | [`PiiKind::IdCard`] | 18-digit (check digit, `X`) and 15-digit legacy | `110***********1234` |
//! | [`PiiKind::BankCard`] | 16–19 digits passing Luhn | `************1234` (length kept) |
//! | [`PiiKind::Email`] | `zhangwei@qq.com`, `zhangwei 艾特 qq 点 com`, `zw[at]163[dot]com` | `z***@qq.com` |
//! | [`PiiKind::Address`] | `浙江省杭州市西湖区文三路90号…`, `李庄村3组21号`, `7号楼2单元1101室` | `浙江省杭州市西湖区****` |
//! | [`PiiKind::WeChat`] | `微信：zhang_88`, `vx abc12345` | `微信：z***` |
//! | [`PiiKind::Qq`] | `QQ 12345678`, `扣扣一二三四五六` | `QQ 1***` |
//! | [`PiiKind::Custom`] | any regex from the config | `keep_prefix` chars, `*`…, `keep_suffix` chars |
//!
//! Masks of numbers are written from the normalized digits (a mobile typed `幺三八…` or
//! `１３８…` shows as `138****5678`); an address keeps its administrative units as typed.
//! The number rules (segments, check digits, boundaries, the order-number context rule)
//! are documented in `digits.rs`, the address rules in `address.rs`.
//!
//! # How
//!
//! 1. A cheap scan (no allocation) decides which detectors can possibly match: the number
//!    detectors need a run of at least 10 digits in any script (a look-alike letter may
//!    continue a run), numbers in parts need 11 digits in two runs or more, e-mail needs `@`
//!    (spoken e-mail: `艾特` or `at` and a few letters), contact ids need a marker pair (`vx`,
//!    `qq`, `微信`, `扣扣` …), addresses need a digit and a road, building or village word.
//!    Most chat messages stop here.
//! 2. The text is normalized (see `normalize.rs`): NFKC, Chinese numerals (`两 拐 洞 勾`
//!    included), look-alike letters inside numbers, invisible characters, separators between
//!    digits (spaces, dashes, dots, commas, slashes, `、` `。`, emoji). Every normalized
//!    character remembers its original bytes.
//! 3. Detectors run in priority order — links (never masked, only skipped), e-mail, spoken
//!    e-mail, numbers (hotlines on `hotline_prefixes` are recognized and kept), numbers in
//!    parts, WeChat / QQ ids, addresses, custom patterns — each skipping what an earlier one
//!    claimed. [`Masker::explain`] also reports what was kept or rejected, and why.
//! 4. The output is the original text with each finding's original byte range replaced by
//!    its mask; every other byte is unchanged.
//!
//! Texts longer than 1 MiB are processed in 1 MiB pieces cut at a line break or space where
//! possible (a number cut in two at such a boundary may be missed; chat messages are far
//! shorter).
//!
//! # Wiring
//!
//! Build one [`Masker`] from the `[mask]` section of `filters.toml` when the config loads
//! (it is `Send + Sync`; share it behind an `Arc` and swap it on reload), call
//! [`Masker::mask`] on every inbound text before it is stored, and store [`Masked::text`].
//! [`Finding::original`] is the personal data itself: keep it only encrypted, for roles
//! allowed to reveal it; its `Debug` output is redacted so it cannot leak into logs.

mod address;
mod contact;
mod digits;
mod explain;
pub mod scoring;
#[cfg(test)]
mod tests;

use std::fmt;
use std::ops::Range;

use regex::{Regex, RegexBuilder};
use serde::Deserialize;

use super::normalize::{
    Class, Normalized, Options, ascii_class, chunks, is_address_word, normalize_char, plain_ideograph,
};

pub use explain::{Explanation, Span};

/// The kind of personal data a [`Finding`] is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PiiKind {
    /// A mainland mobile number (手机号).
    Mobile,
    /// A fixed-line number with area code (座机).
    Landline,
    /// A 400/800 service number.
    ServiceNumber,
    /// A resident ID number, 18 or 15 digits (身份证号).
    IdCard,
    /// A bank card number (银行卡号).
    BankCard,
    /// An e-mail address.
    Email,
    /// A street address (收货地址).
    Address,
    /// A WeChat id after a WeChat marker (`微信`, `vx` …).
    WeChat,
    /// A QQ number after a QQ marker (`QQ`, `扣扣`, `企鹅` …).
    Qq,
    /// A match of the custom pattern with this name.
    Custom(String),
}

impl PiiKind {
    /// The kind's name as used in config, metrics and the corpus (`mobile`, `id_card`, …).
    pub fn as_str(&self) -> &str {
        match self {
            PiiKind::Mobile => "mobile",
            PiiKind::Landline => "landline",
            PiiKind::ServiceNumber => "service_number",
            PiiKind::IdCard => "id_card",
            PiiKind::BankCard => "bank_card",
            PiiKind::Email => "email",
            PiiKind::Address => "address",
            PiiKind::WeChat => "wechat",
            PiiKind::Qq => "qq",
            PiiKind::Custom(name) => name,
        }
    }
}

impl fmt::Display for PiiKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The names of the built-in kinds (a custom pattern may not take one).
const BUILTIN_KINDS: &[&str] =
    &["mobile", "landline", "service_number", "id_card", "bank_card", "email", "address", "wechat", "qq"];

/// One piece of personal data found in a text.
#[derive(Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: PiiKind,
    /// The exact original substring (`text[range]`), obfuscation included. Personal data:
    /// never log it (the `Debug` impl prints only its length).
    pub original: String,
    /// What replaces it in [`Masked::text`].
    pub masked: String,
    /// Byte range in the original text.
    pub range: Range<usize>,
}

impl fmt::Debug for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Finding")
            .field("kind", &self.kind)
            .field("original", &format_args!("<{} bytes redacted>", self.original.len()))
            .field("masked", &self.masked)
            .field("range", &self.range)
            .finish()
    }
}

/// A masked text and what was masked in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Masked {
    /// The original text with every finding replaced by its mask.
    pub text: String,
    /// Findings in text order; their ranges do not overlap.
    pub findings: Vec<Finding>,
}

/// `[mask.detectors]`: which built-in detectors run. All are on by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Detectors {
    /// Mainland mobile numbers (11 digits, current segment table; `+86`/`0086` prefixes).
    pub mobile: bool,
    /// Fixed-line numbers with area code (`0571-88889999`, extension included).
    pub landline: bool,
    /// 400/800 service numbers.
    pub service_number: bool,
    /// 18-digit resident IDs (MOD 11-2 check digit) and 15-digit legacy IDs.
    pub id_card: bool,
    /// 16–19 digit bank cards passing the Luhn check.
    pub bank_card: bool,
    /// E-mail addresses.
    pub email: bool,
    /// Street addresses (road + number, or building numbers after a city and district).
    pub address: bool,
    /// WeChat ids after 微信 / vx / v信 / 薇信 / 威信 / wx ….
    pub wechat: bool,
    /// QQ numbers after QQ / 扣扣 / 企鹅 / Q号.
    pub qq: bool,
}

impl Default for Detectors {
    fn default() -> Self {
        Detectors {
            mobile: true,
            landline: true,
            service_number: true,
            id_card: true,
            bank_card: true,
            email: true,
            address: true,
            wechat: true,
            qq: true,
        }
    }
}

/// One `[[mask.custom]]` pattern.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomPattern {
    /// The label findings carry (`PiiKind::Custom(name)`); unique, not a built-in kind name.
    pub name: String,
    /// A regular expression (Rust `regex` syntax) matched against the *normalized* text:
    /// full-width forms folded, Chinese numerals as ASCII digits, separators between digits
    /// removed, invisible characters dropped. It must not match the empty string.
    pub regex: String,
    /// Characters kept in clear at the start of a match. Default 0.
    #[serde(default)]
    pub keep_prefix: usize,
    /// Characters kept in clear at the end of a match. Default 0. When `keep_prefix +
    /// keep_suffix` reaches the match length the whole match is starred.
    #[serde(default)]
    pub keep_suffix: usize,
}

/// `[mask]` in `filters.toml`: privacy masking of chat text.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaskConfig {
    /// Which built-in detectors run.
    pub detectors: Detectors,
    /// Words that mark the number right after them (within 12 characters, no digit or
    /// sentence end in between, no nearer personal-data label such as `卡号` or `身份证`)
    /// as an order, tracking or product number: such a number is not masked even when it
    /// passes the ID or Luhn check, nor an 11-digit order or tracking number that looks like a
    /// mobile (when it starts the run). Fixed-line numbers are never protected.
    /// Compared case-insensitively after normalization.
    pub protect_words: Vec<String>,
    /// Digit prefixes of public service numbers — a brand's or a shop's hotline is not a
    /// person's data. A 400/800 number or a fixed-line number whose digits start with one of
    /// these is left in clear (`400-820-8820`). Digits only, at least 3.
    pub hotline_prefixes: Vec<String>,
    /// Extra patterns to mask.
    pub custom: Vec<CustomPattern>,
}

/// The default `hotline_prefixes`: every 400 and 800 number.
pub const DEFAULT_HOTLINE_PREFIXES: &[&str] = &["400", "800"];

/// The default `protect_words`.
pub const DEFAULT_PROTECT_WORDS: &[&str] = &[
    "订单",
    "单号",
    "快递",
    "运单",
    "物流",
    "包裹",
    "交易号",
    "流水号",
    "货号",
    "条码",
    "发票号",
    "工单",
    "退款单",
    "售后单",
    "批次",
    "型号",
    "sku",
    "税号",
    "识别号",
    "信用代码",
    "券码",
    "优惠码",
    "兑换码",
];

impl Default for MaskConfig {
    fn default() -> Self {
        MaskConfig {
            detectors: Detectors::default(),
            protect_words: DEFAULT_PROTECT_WORDS.iter().map(|s| s.to_string()).collect(),
            hotline_prefixes: DEFAULT_HOTLINE_PREFIXES.iter().map(|s| s.to_string()).collect(),
            custom: Vec::new(),
        }
    }
}

impl MaskConfig {
    /// Every problem in this section, as (`mask.…` key, message).
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errors = Vec::new();
        for (i, w) in self.protect_words.iter().enumerate() {
            if w.trim().is_empty() {
                errors.push((format!("mask.protect_words[{i}]"), "must not be empty".to_owned()));
            }
        }
        for (i, p) in self.hotline_prefixes.iter().enumerate() {
            let p = p.trim();
            if p.len() < 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                errors.push((
                    format!("mask.hotline_prefixes[{i}]"),
                    "must be at least 3 digits (e.g. \"400\")".to_owned(),
                ));
            }
        }
        for (i, p) in self.custom.iter().enumerate() {
            let key = |k: &str| format!("mask.custom[{i}].{k}");
            if p.name.trim().is_empty() {
                errors.push((key("name"), "must not be empty".to_owned()));
            } else if BUILTIN_KINDS.contains(&p.name.as_str()) {
                errors.push((key("name"), format!("`{}` is a built-in kind; choose another name", p.name)));
            } else if self.custom[..i].iter().any(|q| q.name == p.name) {
                errors.push((key("name"), format!("duplicate custom pattern name `{}`", p.name)));
            }
            match compile_custom(&p.regex) {
                Err(e) => errors.push((key("regex"), e)),
                Ok(re) if re.is_match("") => {
                    errors.push((key("regex"), "matches the empty string; it would mask nothing useful".to_owned()))
                }
                Ok(_) => {}
            }
        }
        errors
    }
}

fn compile_custom(pattern: &str) -> Result<Regex, String> {
    if pattern.is_empty() {
        return Err("must not be empty".to_owned());
    }
    RegexBuilder::new(pattern).size_limit(1 << 20).dfa_size_limit(1 << 20).build().map_err(|e| match e {
        regex::Error::Syntax(s) => format!("invalid regular expression: {}", s.lines().last().unwrap_or_default()),
        other => format!("invalid regular expression: {other}"),
    })
}

/// A detection before it is mapped back to original bytes.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub kind: PiiKind,
    /// Unit index range in the normalized text.
    pub units: Range<usize>,
    pub masked: String,
    /// Recognized but left in clear (a company hotline): it still claims its characters so
    /// that no other detector masks part of it.
    pub keep: bool,
    /// The rule that decided it (for `--explain`).
    pub why: &'static str,
}

impl Candidate {
    pub fn new(kind: PiiKind, units: Range<usize>, masked: String, why: &'static str) -> Candidate {
        Candidate { kind, units, masked, keep: false, why }
    }

    pub fn kept(kind: PiiKind, units: Range<usize>, why: &'static str) -> Candidate {
        Candidate { kind, units, masked: String::new(), keep: true, why }
    }
}

#[derive(Debug, Clone)]
struct Custom {
    kind: PiiKind,
    regex: Regex,
    keep_prefix: usize,
    keep_suffix: usize,
}

/// The compiled masker: build once per configuration, share freely (`Send + Sync`; cloning
/// is cheap).
#[derive(Debug, Clone)]
pub struct Masker {
    detectors: Detectors,
    numbers: digits::Switches,
    protect_words: Vec<String>,
    hotlines: Vec<String>,
    custom: Vec<Custom>,
    email: Regex,
    /// E-mail written with spoken separators (`艾特`, `[at]`, `点`, `[dot]`) or spaced out.
    spoken_email: Regex,
    link: Regex,
    contact: contact::ContactIds,
}

/// Normalization used for masking: Chinese numerals are digits, case is kept.
const MASK_OPTS: Options = Options { cjk_digits: true, lowercase: false };

const EMAIL: &str = r"[A-Za-z0-9][A-Za-z0-9._%+\-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}";
const LINK: &str =
    r"(?i)(?:(?:https?://|www\.)[!-~]+|[a-z0-9\-]+(?:\.[a-z0-9\-]+)*\.(?:com|cn|net|org|hk|tw)(?:\.cn)?/[!-~]*)";

/// Top-level domains a spoken e-mail may end with; each letter may be followed by a space
/// (`c o m`).
const SPOKEN_TLDS: &[&str] = &["com", "cn", "net", "org", "edu", "gov", "hk", "tw", "io", "me", "top", "vip", "cc"];

/// The spoken e-mail pattern: a local part (compact, up to four words with single spaces
/// between them, or one character at a time with single spaces), an at-word, one or more domain labels each followed by a dot-word, a known TLD.
fn spoken_email_pattern() -> String {
    let tlds: Vec<String> =
        SPOKEN_TLDS.iter().map(|t| t.chars().map(|c| c.to_string()).collect::<Vec<_>>().join(" ?")).collect();
    format!(
        r"(?i)([a-z0-9](?:(?: [a-z0-9._\-]){{2,63}}|[a-z0-9._\-]{{0,63}}(?: [a-z0-9][a-z0-9._\-]{{0,31}}){{0,3}}))\s*(?:@|艾特|爱特|\[at\]|\(at\)|【at】|<at>| at )\s*((?:[a-z0-9](?: ?[a-z0-9\-]){{0,62}}\s*(?:\.|点|\[dot\]|\(dot\)|【dot】|<dot>| dot )\s*)+)({})",
        tlds.join("|")
    )
}

impl Masker {
    /// Compiles `config`; on error returns every problem (as [`MaskConfig::validate`]).
    pub fn new(config: &MaskConfig) -> Result<Masker, Vec<(String, String)>> {
        let errors = config.validate();
        if !errors.is_empty() {
            return Err(errors);
        }
        let d = config.detectors;
        let custom = config
            .custom
            .iter()
            .filter_map(|p| {
                let regex = compile_custom(&p.regex).ok()?;
                Some(Custom {
                    kind: PiiKind::Custom(p.name.clone()),
                    regex,
                    keep_prefix: p.keep_prefix,
                    keep_suffix: p.keep_suffix,
                })
            })
            .collect();
        let protect_words = config
            .protect_words
            .iter()
            .map(|w| Normalized::new(w.trim(), Options { cjk_digits: false, lowercase: true }).text)
            .collect();
        let builtin =
            |re: &str| Regex::new(re).map_err(|e| vec![("mask".to_owned(), format!("internal pattern: {e}"))]);
        Ok(Masker {
            detectors: d,
            numbers: digits::Switches {
                mobile: d.mobile,
                landline: d.landline,
                service: d.service_number,
                id_card: d.id_card,
                bank_card: d.bank_card,
            },
            protect_words,
            hotlines: config.hotline_prefixes.iter().map(|p| p.trim().to_owned()).collect(),
            custom,
            email: builtin(EMAIL)?,
            spoken_email: builtin(&spoken_email_pattern())?,
            link: builtin(LINK)?,
            contact: contact::ContactIds::new(),
        })
    }

    /// Masks `text`: the result's text equals `text` except inside the findings' ranges.
    pub fn mask(&self, text: &str) -> Masked {
        let findings = self.find(text);
        if findings.is_empty() {
            return Masked { text: text.to_owned(), findings };
        }
        let mut out = String::with_capacity(text.len());
        let mut pos = 0;
        for f in &findings {
            out.push_str(text.get(pos..f.range.start).unwrap_or_default());
            out.push_str(&f.masked);
            pos = f.range.end;
        }
        out.push_str(text.get(pos..).unwrap_or_default());
        Masked { text: out, findings }
    }

    /// Whether `text` holds any personal data this masker would mask.
    pub fn has_pii(&self, text: &str) -> bool {
        !self.find(text).is_empty()
    }

    /// The findings in `text`, in order, without building the masked text.
    pub fn find(&self, text: &str) -> Vec<Finding> {
        let mut findings = Vec::new();
        for (base, piece) in chunks(text) {
            self.find_in(piece, base, &mut findings);
        }
        findings.sort_by_key(|f| (f.range.start, f.range.end));
        // Two units may share one original character (an NFKC expansion such as `⑩`); keep
        // the ranges disjoint.
        let mut last_end = 0;
        findings.retain(|f| {
            let keep = f.range.start >= last_end && f.range.start < f.range.end;
            if keep {
                last_end = f.range.end;
            }
            keep
        });
        findings
    }

    fn find_in(&self, text: &str, base: usize, out: &mut Vec<Finding>) {
        self.find_in_explained(text, base, out, None);
    }

    /// [`Masker::find_in`], and with `notes` every span considered — masked, kept or
    /// rejected — with the rule and context that decided it.
    fn find_in_explained(&self, text: &str, base: usize, out: &mut Vec<Finding>, notes: Option<&mut Vec<Span>>) {
        let scan = Scan::of(text);
        let numbers = self.numbers.any() && scan.max_run >= digits::MIN_DIGITS;
        // A mobile in parts: at least 11 digits in all.
        let parts = self.detectors.mobile && scan.digits >= 11 && scan.runs2 >= 2;
        let email = self.detectors.email && scan.at;
        let spoken_word = scan.letters >= 3 && (scan.spoken_at || scan.at_word);
        let mut spoken_email = self.detectors.email && scan.letters >= 3 && (scan.at || spoken_word);
        let address = self.detectors.address && scan.address_word && scan.any_digit;
        // `wechat` holds `at`: with enough letters, look for it too.
        let contact = (self.detectors.wechat || self.detectors.qq)
            && (scan.contact_hint || (scan.at_word && scan.letters >= 6))
            && scan.any_digit_or_letter;
        if !(numbers || parts || email || spoken_email || address || contact || !self.custom.is_empty())
            && notes.is_none()
        {
            return;
        }
        let n = Normalized::new(text, MASK_OPTS);
        let mut links = Vec::new();
        if scan.link_hint && (n.text.contains('/') || n.text.contains("www.")) {
            links.extend(self.link.find_iter(&n.text).filter_map(|m| n.unit_range(m.range())));
        }
        let mut cands: Vec<Candidate> = Vec::new();
        if email {
            for m in self.email.find_iter(&n.text) {
                if let Some(units) = n.unit_range(m.range())
                    && !links.iter().any(|l| l.start < units.end && units.start < l.end)
                {
                    cands.push(Candidate::new(PiiKind::Email, units, mask_email(m.as_str()), "e-mail address"));
                }
            }
        }
        // An `@` that the plain pattern explained needs no second look (the common case).
        spoken_email &= spoken_word || cands.is_empty();
        if spoken_email {
            // Find with the fast engines first; resolve the groups only for a match.
            for m0 in self.spoken_email.find_iter(&n.text) {
                let Some(c) = self.spoken_email.captures(&n.text[m0.start()..]) else { continue };
                let (Some(m), Some(local), Some(domain), Some(tld)) = (c.get(0), c.get(1), c.get(2), c.get(3)) else {
                    continue;
                };
                let m = m0.start() + m.start()..m0.start() + m.end();
                if n.text[m.end..].starts_with(|ch: char| ch.is_ascii_alphanumeric()) {
                    continue;
                }
                if let Some(units) = n.unit_range(m)
                    && !links
                        .iter()
                        .chain(cands.iter().map(|c| &c.units))
                        .any(|l| l.start < units.end && units.start < l.end)
                {
                    let masked = mask_spoken_email(local.as_str(), domain.as_str(), tld.as_str());
                    cands.push(Candidate::new(
                        PiiKind::Email,
                        units,
                        masked,
                        "e-mail with spoken or spaced separators",
                    ));
                }
            }
        }
        if numbers {
            let cx = digits::Ctx { sw: &self.numbers, protect: &self.protect_words, hotlines: &self.hotlines };
            digits::detect(&n, &cx, &links, &mut cands);
        }
        let mut rejected_parts = Vec::new();
        if parts {
            let rejected = notes.is_some().then_some(&mut rejected_parts);
            digits::assemble(&n, text, &links, &mut cands, rejected);
        }
        if contact {
            self.contact.detect(&n, self.detectors.wechat, self.detectors.qq, &self.protect_words, &links, &mut cands);
        }
        if address {
            address::detect(&n, text, &links, &mut cands);
        }
        for c in &self.custom {
            for m in c.regex.find_iter(&n.text) {
                if m.is_empty() {
                    continue;
                }
                if let Some(units) = n.unit_range(m.range())
                    && !cands.iter().any(|o| o.units.start < units.end && units.start < o.units.end)
                {
                    let masked = mask_chars(m.as_str(), c.keep_prefix, c.keep_suffix);
                    cands.push(Candidate::new(c.kind.clone(), units, masked, "custom pattern"));
                }
            }
        }
        if let Some(notes) = notes {
            let cx = digits::Ctx { sw: &self.numbers, protect: &self.protect_words, hotlines: &self.hotlines };
            explain::notes(&n, text, base, &cx, &cands, &links, &rejected_parts, notes);
        }
        for c in cands {
            if c.keep {
                continue;
            }
            if let Some(r) = n.orig_of_units(c.units)
                && let Some(original) = text.get(r.clone())
            {
                out.push(Finding {
                    kind: c.kind,
                    original: original.to_owned(),
                    masked: c.masked,
                    range: base + r.start..base + r.end,
                });
            }
        }
    }
}

/// `zhangwei@qq.com` → `z***@qq.com` (a one-character local part is starred entirely).
fn mask_email(email: &str) -> String {
    let (local, domain) = email.split_once('@').unwrap_or((email, ""));
    let mut s = String::with_capacity(email.len());
    if local.chars().count() > 1 {
        s.extend(local.chars().next());
    }
    s.push_str("***@");
    s.push_str(domain);
    s
}

/// `zhangwei 艾特 qq 点 com` → `z***@qq.com`: the canonical form, like the masks of numbers.
fn mask_spoken_email(local: &str, domain: &str, tld: &str) -> String {
    let mut s = String::new();
    let local: String = local.chars().filter(|c| !c.is_whitespace()).collect();
    if local.chars().count() > 1 {
        s.extend(local.chars().next());
    }
    s.push_str("***@");
    // Domain labels: keep letters, digits and dashes; each dot-word becomes a dot.
    let mut label = String::new();
    let mut rest = domain;
    while let Some(c) = rest.chars().next() {
        if c.is_ascii_alphanumeric() || c == '-' {
            label.push(c.to_ascii_lowercase());
            rest = &rest[1..];
            continue;
        }
        let word = ["点", "[dot]", "(dot)", "【dot】", "<dot>", " dot ", "."]
            .iter()
            .find(|w| rest.get(..w.len()).is_some_and(|h| h.eq_ignore_ascii_case(w)));
        if let Some(w) = word
            && !label.is_empty()
        {
            s.push_str(&label);
            s.push('.');
            label.clear();
            rest = &rest[w.len()..];
        } else {
            rest = &rest[c.len_utf8()..];
        }
    }
    s.extend(tld.chars().filter(|c| !c.is_whitespace()).map(|c| c.to_ascii_lowercase()));
    s
}

/// Keeps `prefix` and `suffix` characters of `s` and stars the rest (at least one star;
/// all stars when nothing would be hidden otherwise).
fn mask_chars(s: &str, prefix: usize, suffix: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if prefix + suffix >= chars.len() {
        return "*".repeat(chars.len().max(1));
    }
    let mut out: String = chars[..prefix].iter().collect();
    out.push_str(&"*".repeat(chars.len() - prefix - suffix));
    out.extend(&chars[chars.len() - suffix..]);
    out
}

/// What a quick pass over the text found: enough to skip detectors that cannot match.
#[derive(Debug, Default)]
struct Scan {
    /// The most digits in one run (separators between digits allowed, as in detection).
    max_run: usize,
    any_digit: bool,
    /// Digits in all (any script).
    digits: usize,
    /// Digit runs of at least 2 digits.
    runs2: usize,
    /// ASCII letters in all.
    letters: usize,
    at: bool,
    /// `艾特` / `爱特` may be an at-sign.
    spoken_at: bool,
    /// `at` (any case) in the text: may be a spoken at-sign.
    at_word: bool,
    /// The previous character was an `a`/`A` (for `at_word`).
    after_a: bool,
    /// The previous character if it was ASCII (lowercased), for the marker pairs.
    prev_letter: char,
    /// Inside the domain of an e-mail address (after `@`).
    in_domain: bool,
    /// The digit run being read: its length, separators since its last digit, whether open.
    run: usize,
    seps: usize,
    in_run: bool,
    /// A contact-id marker may be present (`vx`, `wx`, `qq`, `…ix…` of weixin, `微信`, `扣扣`,
    /// `企鹅`, `q号` …; `wechat` is caught by `at_word`).
    contact_hint: bool,
    any_digit_or_letter: bool,
    address_word: bool,
    /// A `/` or a `w`: the text may hold a link.
    link_hint: bool,
}

impl Scan {
    fn of(text: &str) -> Scan {
        let mut s = Scan::default();
        let mut prev = '\0';
        for c in text.chars() {
            // Fast path for the bulk of a Chinese text: an ideograph that is not a numeral
            // ends a digit run and may only be an address or marker character.
            if let Some(address_word) = plain_ideograph(c) {
                s.in_run = false;
                // Marker pairs: 微信 薇信 威信 徽信 v信, 扣扣, 企鹅, q号.
                match (prev, c) {
                    ('微' | '薇' | '威' | '徽' | 'v' | 'V', '信') | ('扣', '扣') | ('企', '鹅') | ('q' | 'Q', '号') => {
                        s.contact_hint = true
                    }
                    (_, '艾' | '爱') => s.spoken_at = true,
                    _ => s.address_word |= address_word,
                }
                prev = c;
                s.prev_letter = '\0';
                continue;
            }
            let before = prev;
            prev = c;
            // ASCII (digits, letters, separators) directly; the rest through normalization.
            if c.is_ascii() {
                s.feed(c, ascii_class(c), before);
            } else {
                normalize_char(c, MASK_OPTS, &mut |ch, class| s.feed(ch, class, before));
            }
        }
        s
    }

    /// One normalized character; `before` is the original character before it.
    #[inline]
    fn feed(&mut self, ch: char, class: Class, before: char) {
        let s = self;
        match class {
            Class::Digit(..) => {
                s.run = if s.in_run { s.run + 1 } else { 1 };
                s.in_run = true;
                s.seps = 0;
                s.any_digit = true;
                s.any_digit_or_letter = true;
                s.prev_letter = '\0';
                s.digits += 1;
                if s.run == 2 {
                    s.runs2 += 1;
                }
                s.max_run = s.max_run.max(s.run);
            }
            Class::Sep => {
                s.prev_letter = '\0';
                if ch == '/' {
                    s.link_hint = true;
                }
                s.seps += 1;
                if s.seps > 3 {
                    s.in_run = false;
                }
            }
            // A look-alike letter may continue a number (`138O…`); counting it keeps the
            // gate from skipping one the normalizer will read as a digit.
            Class::Other if s.in_run && matches!(ch, 'O' | 'o' | 'l' | 'I') => {
                s.run += 1;
                s.seps = 0;
                s.max_run = s.max_run.max(s.run);
            }
            Class::Other => {
                s.in_run = false;
                if ch.is_ascii_alphabetic() {
                    s.letters += 1;
                    s.any_digit_or_letter = true;
                    s.at_word |= s.after_a && matches!(ch, 't' | 'T');
                }
                s.after_a = matches!(ch, 'a' | 'A');
                let pair = (s.prev_letter, ch.to_ascii_lowercase());
                s.prev_letter = pair.1;
                // The `qq` of `@qq.com` is no marker.
                s.in_domain = ch == '@' || (s.in_domain && (ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-')));
                match ch {
                    '@' => s.at = true,
                    '/' => s.link_hint = true,
                    'w' | 'W' => s.link_hint = true,
                    // 加v, 加个v.
                    'v' | 'V' if matches!(before, '加' | '个') => s.contact_hint = true,
                    // Marker pairs: vx wx qq, and the ix of weixin (wechat: `at_word`).
                    'x' | 'X' | 'q' | 'Q'
                        if !s.in_domain && matches!(pair, ('v' | 'w', 'x') | ('q', 'q') | ('i', 'x')) =>
                    {
                        s.contact_hint = true
                    }
                    '艾' | '爱' => s.spoken_at = true,
                    c if is_address_word(c) => s.address_word = true,
                    _ => {}
                }
            }
        }
    }
}
