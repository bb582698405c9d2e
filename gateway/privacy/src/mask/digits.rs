//! Number detectors: mobile, landline, 400/800, 18- and 15-digit ID numbers, bank cards.
//!
//! A *run* is a maximal sequence of digits in the normalized text where neighbouring digits
//! are adjacent or joined by at most three separators (space, dash, dot, middle dot,
//! parenthesis). A run splits into *groups* at every separator and at every change between
//! Arabic and Chinese digits. The whole run is classified first; only when it is nothing
//! does the detector look for the longest sequence of whole groups that is something
//! (`数量2 13812345678` → the mobile inside). Classification is by structure and checksum:
//!
//! | kind | rule |
//! |---|---|
//! | mobile | 11 digits, segment 13x, 14[5-9], 15[0-35-9], 16[2567], 17[0-8], 18x, 19x; optional `86`/`0086` (and a `+` before) |
//! | mobile (HK, TW) | `+852`/`00852` + 8 digits from 4–9; `+886`/`00886` + (`0`) `9` + 8 digits |
//! | landline | `010`/`02x` + 8 digits, or `0[3-9]xx` + 7–8 digits; local number starts 2–9; extension after a separator, `转`, `分机`, `ext` or `#` (1–6 digits) |
//! | service | `400`/`800` + 7 digits |
//! | ID (18) | province code, birth date 1900-01-01..2099-12-31, ISO 7064 MOD 11-2 check digit (`X` allowed) |
//! | ID (15) | province code, birth date 19YYMMDD |
//! | bank card | 16–19 digits, not starting with 0, Luhn — or without Luhn right after a bank name or card label (`工商银行`, `卡号`) |
//!
//! Boundaries: a run touching an ASCII letter (`SF1234567890123`, `YT…`, `JD…`) or glued to
//! one by `-`/`_` (`SKU-1234`) is a code, not personal data — unless the letters are a contact
//! word (`tel`, `wx`, `qq` …). The `X` of an ID number is the one letter allowed after a run.
//!
//! Context: an ID or card candidate whose nearest label in the 12 characters before it
//! (stopping at digits and sentence ends) is an order/tracking word (`订单`, `单号`, `快递`,
//! `运单` … from the config) rather than a personal-data label (`卡号`, `身份证`, `手机` …)
//! is left alone: it is an order number that happens to pass Luhn or the ID check.
//! The same holds for an 11-digit number that looks like a mobile and for a landline-shaped
//! number, when it starts its run (JD and China Post numbers: `订单号13812345678`; coupon
//! codes: `券码043931115885`).
//!
//! Hotlines: a 400/800 number or a landline whose digits start with a prefix of
//! `mask.hotline_prefixes` is recognized and kept in clear (it still claims its digits).
//!
//! Groups may also be split by `,` `/` `、` `。` and emoji (see `normalize.rs`), and a mobile
//! may be given in parts with words between: see [`assemble`].

use std::cell::Cell;
use std::ops::Range;

use super::{Candidate, PiiKind};
use crate::normalize::{Class, Normalized, Unit};

/// What the number detectors need besides the text.
pub(crate) struct Ctx<'a> {
    pub sw: &'a Switches,
    /// Order/tracking words (normalized, lowercase).
    pub protect: &'a [String],
    /// Digit prefixes of public hotlines that stay in clear (`400`, `800`).
    pub hotlines: &'a [String],
}

/// Which number detectors run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Switches {
    pub mobile: bool,
    pub landline: bool,
    pub service: bool,
    pub id_card: bool,
    pub bank_card: bool,
}

impl Switches {
    pub fn any(&self) -> bool {
        self.mobile || self.landline || self.service || self.id_card || self.bank_card
    }
}

/// The shortest run any detector accepts (a 400 number or a landline: 10 digits).
pub(crate) const MIN_DIGITS: usize = 10;

/// Personal-data labels: when one of these is nearer to a number than an order word, the
/// order word does not protect it.
pub(crate) const LABELS: &[&str] = &[
    "卡号",
    "银行卡",
    "储蓄卡",
    "信用卡",
    "借记卡",
    "卡",
    "身份证",
    "证件",
    "手机",
    "电话",
    "联系",
    "号码",
    "账号",
    "帐号",
    "户名",
    "tel",
    "phone",
];

/// ASCII words that may touch a number without making it a code (`tel13812345678`).
const CONTACT_WORDS: &[&str] =
    &["tel", "phone", "mobile", "mob", "cell", "call", "sms", "wx", "vx", "v", "wechat", "weixin", "qq", "no"];

#[derive(Debug)]
struct Group {
    /// Index range in `Run::digits`.
    digits: Range<usize>,
    /// Unit range (first digit to last digit).
    units: Range<usize>,
    /// The separator before this group, if it was one (not a change of script).
    sep: Option<char>,
}

#[derive(Debug)]
struct Run {
    digits: Vec<u8>,
    groups: Vec<Group>,
    /// The run touches letters before it that are not a contact word.
    code_before: bool,
    /// An `X`/`x` right after the run (unit index), itself followed by no letter or digit.
    x_after: Option<usize>,
    /// A letter (other than that `X`) right after the run.
    code_after: bool,
    /// A `+` right before the run (unit index), and a `(` right before that.
    plus: Option<usize>,
    paren: Option<usize>,
    /// Lazily computed: an order word protects ID/card candidates.
    protected: Cell<Option<bool>>,
}

/// Finds numbers in `n`, skipping runs that overlap `taken` (unit ranges already claimed,
/// e.g. e-mail addresses and links), and appends them to `out`.
pub(crate) fn detect(n: &Normalized, cx: &Ctx<'_>, taken: &[Range<usize>], out: &mut Vec<Candidate>) {
    let units = &n.units;
    let mut i = 0;
    while i < units.len() {
        if !units[i].is_digit() {
            i += 1;
            continue;
        }
        let (end, count) = run_extent(units, i);
        if count < MIN_DIGITS {
            i = end;
            continue;
        }
        let (run, end) = build_run(units, i);
        i = end;
        let span = run.groups[0].units.start..end;
        if overlaps_any(&span, taken) || overlaps_any(&span, out.iter().map(|c| &c.units)) {
            continue;
        }
        let groups = run.groups.len();
        search(n, cx, &run, 0, groups, out);
    }
}

fn overlaps_any<'a>(r: &Range<usize>, others: impl IntoIterator<Item = &'a Range<usize>>) -> bool {
    others.into_iter().any(|o| o.start < r.end && r.start < o.end)
}

/// The unit index after the run starting at digit unit `start`, and its digit count
/// (the joining rule of [`build_run`], without allocating).
pub(crate) fn run_extent(units: &[Unit], start: usize) -> (usize, usize) {
    let mut j = start;
    let mut count = 0;
    let mut end = start;
    loop {
        if units.get(j).is_some_and(Unit::is_digit) {
            count += 1;
            j += 1;
            end = j;
            continue;
        }
        let mut k = j;
        while k < units.len() && k - j < 3 && units[k].class == Class::Sep {
            k += 1;
        }
        if k > j && units.get(k).is_some_and(Unit::is_digit) {
            j = k;
            continue;
        }
        return (end, count);
    }
}

/// Builds the run starting at digit unit `start`; returns it and the unit index after it.
fn build_run(units: &[Unit], start: usize) -> (Run, usize) {
    let mut digits = Vec::with_capacity(20);
    let mut groups: Vec<Group> = Vec::new();
    let mut j = start;
    let mut pending_sep: Option<char> = None;
    let mut last_digit = start;
    loop {
        if let Some(u) = units.get(j)
            && let Class::Digit(d, script) = u.class
        {
            let new_group = match groups.last() {
                None => true,
                Some(g) => {
                    let prev_script = match units[g.units.end - 1].class {
                        Class::Digit(_, s) => s,
                        _ => script,
                    };
                    pending_sep.is_some() || prev_script != script
                }
            };
            if new_group {
                groups.push(Group { digits: digits.len()..digits.len(), units: j..j, sep: pending_sep.take() });
            }
            digits.push(d);
            if let Some(g) = groups.last_mut() {
                g.digits.end = digits.len();
                g.units.end = j + 1;
            }
            last_digit = j;
            j += 1;
            continue;
        }
        // Up to three separators followed by a digit continue the run.
        let mut k = j;
        while k < units.len() && k - j < 3 && units[k].class == Class::Sep {
            k += 1;
        }
        if k > j && units.get(k).is_some_and(Unit::is_digit) {
            pending_sep = Some(units[j].ch);
            j = k;
            continue;
        }
        break;
    }
    let end = last_digit + 1;

    let before = start.checked_sub(1).map(|b| &units[b]);
    let mut code_before = false;
    let mut plus = None;
    let mut paren = None;
    if let Some(b) = before {
        if b.ch.is_ascii_alphabetic() {
            let mut w = String::new();
            let mut k = start;
            while k > 0 && units[k - 1].ch.is_ascii_alphabetic() && w.len() < 16 {
                k -= 1;
                w.insert(0, units[k].ch.to_ascii_lowercase());
            }
            code_before = !CONTACT_WORDS.contains(&w.as_str());
        } else if matches!(b.ch, '-' | '_') {
            code_before = start >= 2 && units[start - 2].ch.is_ascii_alphanumeric();
        } else if b.ch == '+' {
            plus = Some(start - 1);
            if start >= 2 && units[start - 2].ch == '(' {
                paren = Some(start - 2);
            }
        }
    }
    let mut x_after = None;
    let mut code_after = false;
    if let Some(a) = units.get(end)
        && a.ch.is_ascii_alphabetic()
    {
        let next_is_word = units.get(end + 1).is_some_and(|u| u.ch.is_ascii_alphanumeric());
        if matches!(a.ch, 'x' | 'X') && !next_is_word {
            x_after = Some(end);
        } else {
            code_after = true;
        }
    }
    let run = Run { digits, groups, code_before, x_after, code_after, plus, paren, protected: Cell::new(None) };
    (run, end)
}

/// Finds the longest sequence of whole groups in `lo..hi` that is a number, then searches
/// on both sides of it.
fn search(n: &Normalized, cx: &Ctx<'_>, run: &Run, lo: usize, hi: usize, out: &mut Vec<Candidate>) {
    if lo >= hi {
        return;
    }
    // Runs made of many groups are only classified whole (bounded work).
    let min_len = if run.groups.len() > 24 { hi - lo } else { 1 };
    for len in (min_len..=hi - lo).rev() {
        for g0 in lo..=hi - len {
            let g1 = g0 + len;
            let count = run.groups[g1 - 1].digits.end - run.groups[g0].digits.start;
            if count < MIN_DIGITS {
                continue;
            }
            if let Some(c) = classify(n, cx, run, g0, g1) {
                out.push(c);
                search(n, cx, run, lo, g0, out);
                search(n, cx, run, g1, hi, out);
                return;
            }
        }
    }
}

fn classify(n: &Normalized, cx: &Ctx<'_>, run: &Run, g0: usize, g1: usize) -> Option<Candidate> {
    let (sw, protect) = (cx.sw, cx.protect);
    let at_start = g0 == 0;
    let at_end = g1 == run.groups.len();
    if at_start && run.code_before {
        return None;
    }
    let x = if at_end { run.x_after } else { None };
    if at_end && run.code_after {
        return None;
    }
    let d: &[u8] = &run.digits[run.groups[g0].digits.start..run.groups[g1 - 1].digits.end];
    let mut units = run.groups[g0].units.start..run.groups[g1 - 1].units.end;
    let groups = &run.groups[g0..g1];
    // ID numbers and cards typed in groups are typed in tidy groups (`6222 0212 3456 7890`);
    // a date glued to a number (`2024-11-11 …`) is not.
    let tidy = groups.iter().enumerate().all(|(i, g)| g.digits.len() >= if i + 1 == groups.len() { 2 } else { 3 });
    // Commas, slashes, 、 。 and emoji also end clauses and list items (`原价4,349，现在6,151`,
    // `400-048-1341，2024.2.28`): a number split by them is typed in short tidy groups with
    // the same separator throughout (`139,2044,8812`, `186🌷3307🌷1234`).
    if groups.iter().skip(1).any(|g| g.sep.is_some_and(is_weak_sep)) {
        let sep = groups[1].sep;
        let same = groups.iter().skip(1).all(|g| g.sep == sep);
        if !same || !tidy || groups.iter().any(|g| g.digits.len() > 8) {
            return None;
        }
    }

    if let Some(xu) = x {
        // Only an 18-digit ID may end in X; anything else with a letter glued on is a code.
        if sw.id_card && d.len() == 17 && tidy && id18(d, true) && !is_protected(n, protect, run) {
            units.end = xu + 1;
            return Some(Candidate::new(PiiKind::IdCard, units, mask_keep(d, 3, 4, "X"), "18-digit ID, check digit X"));
        }
        return None;
    }

    if sw.mobile
        && let Some(body) = mobile_body(d)
    {
        // An 11-digit order or tracking number (JD, China Post) looks like a mobile: an order
        // word right before the run (nearer than any contact label) keeps it.
        if at_start && is_protected(n, protect, run) {
            return None;
        }
        // A country code: include the `+` (and a `(` before it).
        if body.len() < d.len()
            && at_start
            && let Some(p) = run.paren.or(run.plus)
        {
            units.start = p;
        }
        return Some(Candidate::new(PiiKind::Mobile, units, mask_keep(body, 3, 4, ""), "mainland mobile segment"));
    }
    // Hong Kong and Taiwan mobiles, only with their country code after `+` or `00`.
    if sw.mobile
        && at_start
        && let Some((cc, body)) = foreign_mobile(d, run.plus.is_some())
    {
        if let Some(p) = run.paren.or(run.plus) {
            units.start = p;
        }
        let masked = format!("+{cc} {}", mask_keep(body, 0, 4, ""));
        return Some(Candidate::new(PiiKind::Mobile, units, masked, "Hong Kong / Taiwan mobile with country code"));
    }
    // A coupon or order number that starts with 0 (`券码043931115885`) is not a landline.
    if sw.landline && !(at_start && d[0] == 0 && is_protected(n, protect, run)) {
        let ends: Vec<usize> = groups.iter().map(|g| g.digits.end - run.groups[g0].digits.start).collect();
        if let Some((area, local, ext)) = landline(d, &ends) {
            if at_start && run.paren.is_none() && groups.get(1).is_some_and(|g| g.sep == Some(')')) {
                let s = units.start;
                if s > 0 && n.units[s - 1].ch == '(' {
                    units.start = s - 1;
                }
            }
            let mut masked = digits_str(&d[..area]);
            masked.push('-');
            masked.push_str(&"*".repeat(local));
            let mut ext = ext;
            if ext == 0
                && at_end
                && let Some((end, len)) = extension_after(n, units.end)
            {
                units.end = end;
                ext = len;
            }
            if ext > 0 {
                masked.push('-');
                masked.push_str(&"*".repeat(ext));
            }
            if is_hotline(d, cx.hotlines) {
                return Some(Candidate::kept(PiiKind::Landline, units, "hotline prefix on mask.hotline_prefixes"));
            }
            return Some(Candidate::new(PiiKind::Landline, units, masked, "area code + local number"));
        }
    }
    if d.len() == 10 && (d.starts_with(&[4, 0, 0]) || d.starts_with(&[8, 0, 0])) {
        if is_hotline(d, cx.hotlines) {
            return Some(Candidate::kept(
                PiiKind::ServiceNumber,
                units,
                "company hotline: prefix on mask.hotline_prefixes",
            ));
        }
        if sw.service {
            return Some(Candidate::new(PiiKind::ServiceNumber, units, mask_keep(d, 3, 4, ""), "400/800 number"));
        }
    }
    if sw.id_card && tidy && ((d.len() == 18 && id18(d, false)) || (d.len() == 15 && id15(d))) {
        if is_protected(n, protect, run) {
            return None;
        }
        let why = if d.len() == 18 {
            "18-digit ID: region, birth date, check digit"
        } else {
            "15-digit ID: region, birth date"
        };
        return Some(Candidate::new(PiiKind::IdCard, units, mask_keep(d, 3, 4, ""), why));
    }
    if sw.bank_card && tidy && (16..=19).contains(&d.len()) && d[0] != 0 {
        // A card that fails Luhn is still a card when a bank's name or a card label is right
        // before it (buyers mistype one digit; the number is still theirs).
        // Cheapest test first: most order numbers fail Luhn and have no bank name before them.
        let luhn_ok = luhn(d);
        let labelled = !luhn_ok && at_start && bank_label_before(n, run.groups[0].units.start);
        if !(luhn_ok || labelled) || is_protected(n, protect, run) {
            return None;
        }
        let why = if labelled { "16-19 digits after a bank name or card label" } else { "16-19 digits, Luhn" };
        return Some(Candidate::new(PiiKind::BankCard, units, mask_keep(d, 0, 4, ""), why));
    }
    None
}

/// Words that say the numbers near them are a phone number given in parts.
pub(crate) const PART_CONTACT: &[&str] = &[
    "电话", "手机", "号码", "打我", "联系", "收件", "尾号", "开头", "后面", "中间", "前三", "后四", "后八", "致电",
    "来电", "tel", "phone", "call",
];

/// Words that say the numbers near them are an order, a price, a size or a model.
pub(crate) const PART_OTHER: &[&str] = &[
    "订单", "单号", "快递", "运单", "物流", "价格", "价钱", "元", "块", "¥", "￥", "尺码", "码数", "型号", "货号",
    "数量", "件", "库存", "cm", "kg", "斤", "优惠", "券", "批次", "邮编", "身高", "体重", "腰围",
];

/// A mobile number typed in parts with short words between them (`138后面是1234再后面5678`,
/// `前三位138，中间1234，后四位5678`, `138开头，中间是1234，尾号5678`): 2–4 digit runs of at
/// least 2 digits each, at most 10 characters apart on one line, 11 digits together that
/// form a mainland mobile, and a context score above zero — contact and part words
/// (`电话`, `手机`, `尾号`, `中间` …) in the 12 characters before it and between the parts
/// count +1 each, order, price, size and model words (`订单`, `元`, `尺码`, `型号` …) −1.
/// The mask stars the 4th–7th digits in place and keeps the words between the parts.
///
/// Written here rather than as a regex: the parts are digit runs of the normalized text
/// (any script, separators inside), and the decision needs the score of their context.
pub(crate) fn assemble(
    n: &Normalized,
    original: &str,
    taken: &[Range<usize>],
    out: &mut Vec<Candidate>,
    mut rejected: Option<&mut Vec<(Range<usize>, i32)>>,
) {
    let units = &n.units;
    // A lone numeral before 位 is a position word (前三位, 后四位), not a part.
    let position_word = |i: usize| units.get(i + 1).is_some_and(|u| u.ch == '位');
    let mut runs: Vec<(usize, usize, usize)> = Vec::new();
    let mut i = 0;
    while i < units.len() {
        if !units[i].is_digit() {
            i += 1;
            continue;
        }
        let (end, count) = run_extent(units, i);
        if !(count == 1 && position_word(i)) {
            runs.push((i, end, count));
        }
        i = end.max(i + 1);
    }
    let mut a = 0;
    while a < runs.len() {
        let mut total = 0;
        let mut found = None;
        for b in a..runs.len().min(a + 4) {
            let (s, _, c) = runs[b];
            if c < 2 {
                break;
            }
            if b > a {
                let prev_end = runs[b - 1].1;
                let gap = &units[prev_end..s];
                let ok = !gap.is_empty()
                    && gap.len() <= 10
                    && gap
                        .iter()
                        .enumerate()
                        .all(|(k, u)| !matches!(u.ch, '\n' | '\r') && (!u.is_digit() || position_word(prev_end + k)));
                if !ok {
                    break;
                }
            }
            total += c;
            if total > 11 {
                break;
            }
            if total == 11 && b > a {
                found = Some(b);
                break;
            }
        }
        let Some(b) = found else {
            a += 1;
            continue;
        };
        let span = runs[a].0..runs[b].1;
        let parts = &runs[a..=b];
        let digits: Vec<u8> = parts
            .iter()
            .flat_map(|&(s, e, _)| units[s..e].iter())
            .filter_map(|u| match u.class {
                Class::Digit(d, _) => Some(d),
                _ => None,
            })
            .collect();
        // A part touching a letter is a code or a size (`256G`, `A2849`), not a phone part.
        let glued = parts.iter().any(|&(ps, pe, _)| {
            ps > 0 && units[ps - 1].ch.is_ascii_alphabetic()
                || units.get(pe).is_some_and(|u| u.ch.is_ascii_alphabetic())
        });
        let free = !overlaps_any(&span, taken) && !overlaps_any(&span, out.iter().map(|c| &c.units));
        let score = if is_mobile(&digits) && !glued && free { part_score(n, span.start, parts) } else { i32::MIN };
        if score != i32::MIN
            && score <= 0
            && let Some(r) = rejected.as_deref_mut()
        {
            r.push((span.clone(), score));
        }
        if score > 0 {
            out.push(Candidate::new(
                PiiKind::Mobile,
                span.clone(),
                mask_parts(n, original, span, parts),
                "mobile given in parts, contact words around it",
            ));
            a = b + 1;
        } else {
            a += 1;
        }
    }
}

/// The (lowercased) words right before unit `start`: at most 12 characters, stopping at a
/// digit or the end of a sentence.
pub(crate) fn words_before(n: &Normalized, start: usize) -> String {
    let mut words = String::new();
    let mut i = start;
    let mut chars = 0;
    while i > 0 && chars < 12 {
        i -= 1;
        let u = &n.units[i];
        if u.is_digit() || matches!(u.ch, '。' | '!' | '?' | '\n') {
            break;
        }
        words.insert(0, u.ch.to_ascii_lowercase());
        chars += 1;
    }
    words
}

/// The context score of a number given in parts (see [`assemble`]).
pub(crate) fn part_score(n: &Normalized, start: usize, parts: &[(usize, usize, usize)]) -> i32 {
    let mut words = words_before(n, start);
    for w in parts.windows(2) {
        words.push('|');
        words.extend(n.units[w[0].1..w[1].0].iter().map(|u| u.ch.to_ascii_lowercase()));
    }
    let count = |list: &[&str]| list.iter().filter(|w| words.contains(*w)).count() as i32;
    count(PART_CONTACT) - count(PART_OTHER)
}

/// The mask of a number given in parts: digits 4–7 starred, everything else as typed.
fn mask_parts(n: &Normalized, original: &str, span: Range<usize>, parts: &[(usize, usize, usize)]) -> String {
    let mut s = String::new();
    let mut k = 0;
    let mut copied = n.units[span.start].start as usize;
    for i in span {
        let u = &n.units[i];
        let (a, b) = (u.start as usize, u.end as usize);
        let in_part = parts.iter().any(|&(ps, pe, _)| (ps..pe).contains(&i));
        if let (true, Class::Digit(d, _)) = (in_part, u.class) {
            s.push(if (3..7).contains(&k) { '*' } else { char::from(b'0' + d) });
            k += 1;
            copied = copied.max(b);
        } else if b > copied {
            s.push_str(original.get(a.max(copied)..b).unwrap_or_default());
            copied = b;
        }
    }
    s
}

/// Why the digit run starting at unit `start` was not masked (for `--explain`).
pub(crate) fn diagnose(n: &Normalized, cx: &Ctx<'_>, start: usize) -> String {
    let (run, _) = build_run(&n.units, start);
    let len = run.digits.len();
    let d = &run.digits[..];
    if run.code_before {
        return format!("{len} digits glued to letters before them: a code (tracking number, SKU, model)");
    }
    if run.code_after {
        return format!("{len} digits glued to letters after them: a code (model, coupon)");
    }
    if len < MIN_DIGITS {
        return format!("{len} digits: too short for a phone, ID or card number");
    }
    if is_hotline(d, cx.hotlines) {
        return "starts with a hotline prefix (mask.hotline_prefixes)".to_owned();
    }
    if context_protects(n, start, cx.protect) {
        return format!("{len} digits after an order/tracking word (mask.protect_words)");
    }
    match len {
        11 if d[0] == 1 => "11 digits but not a mainland mobile segment".to_owned(),
        15 | 18 => format!("{len} digits but not a valid ID (region, birth date or check digit)"),
        16 | 17 | 19 => format!("{len} digits: fails Luhn and no bank name or card label before it"),
        _ => format!(
            "{len} digits: no rule fits (mobile 11, landline 10-12 from 0, ID 15/18, card 16-19) and no group of them does"
        ),
    }
}

/// Separators that also end clauses and list items (see `classify`).
fn is_weak_sep(c: char) -> bool {
    matches!(c, ',' | '/' | '、' | '。' | '\u{2600}'..='\u{27BF}' | '\u{1F300}'..='\u{1FAFF}' | '\u{2B50}' | '\u{2B55}')
}

/// Whether `d` starts with one of the hotline prefixes.
fn is_hotline(d: &[u8], hotlines: &[String]) -> bool {
    hotlines.iter().any(|p| p.len() <= d.len() && p.bytes().zip(d).all(|(c, &v)| c == b'0' + v))
}

/// Bank names and card labels that vouch for a card number typed right after them.
pub(crate) const BANK_WORDS: &[&str] = &[
    "银行",
    "工行",
    "建行",
    "农行",
    "中行",
    "交行",
    "招行",
    "邮储",
    "储蓄卡",
    "信用卡",
    "借记卡",
    "卡号",
    "银行卡",
    "银联",
];

/// Whether a bank name or card label ends within the 12 characters before unit `start`
/// (stopping at a digit or a sentence end).
pub(crate) fn bank_label_before(n: &Normalized, start: usize) -> bool {
    const CAP: usize = 12 * 4;
    let mut window = [0u8; CAP];
    let mut len = 0;
    let mut i = start;
    let mut chars = 0;
    let mut hint = false;
    while i > 0 && chars < 12 {
        i -= 1;
        let u = &n.units[i];
        if u.is_digit() || matches!(u.ch, '。' | '!' | '?' | '\n') {
            break;
        }
        // Every bank word has one of these; most windows have none.
        hint |= matches!(u.ch, '行' | '卡' | '联' | '储');
        let w = u.ch.len_utf8();
        u.ch.encode_utf8(&mut window[CAP - len - w..CAP - len]);
        len += w;
        chars += 1;
    }
    let window = &window[CAP - len..];
    hint && BANK_WORDS.iter().any(|w| window.windows(w.len()).any(|x| x == w.as_bytes()))
}

/// A Hong Kong (`852` + 8 digits from 4–9) or Taiwan (`886` + `9` + 8 digits, a trunk `0`
/// allowed) mobile after `+` or `00`: (country code, national number).
fn foreign_mobile(d: &[u8], plus: bool) -> Option<(&'static str, &[u8])> {
    let d = if plus { d } else { d.strip_prefix(&[0, 0][..])? };
    if let Some(b) = d.strip_prefix(&[8, 5, 2][..]) {
        return (b.len() == 8 && (4..=9).contains(&b[0])).then_some(("852", b));
    }
    if let Some(b) = d.strip_prefix(&[8, 8, 6][..]) {
        let b = b.strip_prefix(&[0][..]).unwrap_or(b);
        return (b.len() == 9 && b[0] == 9).then_some(("886", b));
    }
    None
}

fn is_protected(n: &Normalized, protect: &[String], run: &Run) -> bool {
    if let Some(p) = run.protected.get() {
        return p;
    }
    let p = context_protects(n, run.groups[0].units.start, protect);
    run.protected.set(Some(p));
    p
}

/// Whether the nearest label before unit `start` is an order/tracking word.
pub(crate) fn context_protects(n: &Normalized, start: usize, protect: &[String]) -> bool {
    // The window: up to 12 characters back, stopping at a digit or a sentence end.
    const CAP: usize = 12 * 4;
    let mut window = [0u8; CAP];
    let mut len = 0;
    let mut i = start;
    let mut chars = 0;
    while i > 0 && chars < 12 {
        i -= 1;
        let u = &n.units[i];
        if u.is_digit() || matches!(u.ch, '。' | '!' | '?' | ';' | '\n' | '\r') {
            break;
        }
        let c = u.ch.to_ascii_lowercase();
        let w = c.len_utf8();
        // Written back to front: the window is filled from its end.
        c.encode_utf8(&mut window[CAP - len - w..CAP - len]);
        len += w;
        chars += 1;
    }
    let window = &window[CAP - len..];
    // The last bytes of every word: most end positions can be skipped without comparing.
    let mut last = [false; 256];
    for w in LABELS.iter().map(|w| w.as_bytes()).chain(protect.iter().map(|w| w.as_bytes())) {
        if let Some(&b) = w.last() {
            last[b as usize] = true;
        }
    }
    // Walk end positions from the nearest; the first word ending there decides (a label wins
    // a tie).
    for end in (1..=window.len()).rev() {
        // Words end on character boundaries only, with one of their last bytes.
        if window.get(end).is_some_and(|&b| (0x80..0xC0).contains(&b)) || !last[window[end - 1] as usize] {
            continue;
        }
        let head = &window[..end];
        // The last byte first: most words end differently, and it saves a memcmp call.
        let ends = |w: &[u8]| w.last() == head.last() && head.ends_with(w);
        if LABELS.iter().any(|w| ends(w.as_bytes())) {
            return false;
        }
        if protect.iter().any(|w| !w.is_empty() && ends(w.as_bytes())) {
            return true;
        }
    }
    false
}

/// An extension written after a landline: `转123`, `分机 123`, `ext.123`, `#123`.
fn extension_after(n: &Normalized, end: usize) -> Option<(usize, usize)> {
    let units = &n.units;
    let mut i = end;
    let at = |i: usize| units.get(i).map(|u| u.ch.to_ascii_lowercase());
    while at(i) == Some(' ') && i < end + 2 {
        i += 1;
    }
    let word_len = if at(i) == Some('转') || at(i) == Some('#') {
        1
    } else if at(i) == Some('分') && at(i + 1) == Some('机') {
        2
    } else if at(i) == Some('e') && at(i + 1) == Some('x') && at(i + 2) == Some('t') {
        if at(i + 3) == Some('.') { 4 } else { 3 }
    } else {
        return None;
    };
    i += word_len;
    while matches!(at(i), Some(' ' | ':')) && i < end + word_len + 4 {
        i += 1;
    }
    let first = i;
    while units.get(i).is_some_and(Unit::is_digit) {
        i += 1;
    }
    let len = i - first;
    ((1..=6).contains(&len)).then_some((i, len))
}

/// The 11-digit mobile number in `d`, after an optional `86`/`0086` country code.
fn mobile_body(d: &[u8]) -> Option<&[u8]> {
    let body = match d.len() {
        11 => d,
        13 if d.starts_with(&[8, 6]) => &d[2..],
        15 if d.starts_with(&[0, 0, 8, 6]) => &d[4..],
        _ => return None,
    };
    is_mobile(body).then_some(body)
}

/// Mainland mobile segments (MIIT allocation as of 2024): 13x; 14[5-9] (145–149 data and
/// IoT-capable voice plans; 140–144 are 13-digit IoT numbers); 15[0-35-9] (no 154);
/// 16[2567]; 17[0-8] (170/171 virtual operators, 174 satellite; 179 unallocated);
/// 18x; 19x (194 is unallocated but accepted: a false positive only masks a number).
pub(crate) fn is_mobile(d: &[u8]) -> bool {
    d.len() == 11
        && d[0] == 1
        && match (d[1], d[2]) {
            (3 | 8 | 9, _) => true,
            (4, 5..=9) => true,
            (5, x) => x != 4,
            (6, 2 | 5 | 6 | 7) => true,
            (7, 0..=8) => true,
            _ => false,
        }
}

/// Splits a landline into (area code length, local length, extension length). `group_ends`
/// are the digit offsets where groups end (an extension must be its own group).
fn landline(d: &[u8], group_ends: &[usize]) -> Option<(usize, usize, usize)> {
    if d.len() < 10 || d[0] != 0 {
        return None;
    }
    let area = match (d[1], d[2]) {
        (1, 0) | (2, _) => 3,
        (3..=9, _) => 4,
        _ => return None,
    };
    let locals: &[usize] = if area == 3 { &[8] } else { &[8, 7] };
    for &local in locals {
        let end = area + local;
        if end > d.len() || d[area] < 2 {
            continue;
        }
        let ext = d.len() - end;
        if ext == 0 {
            return Some((area, local, 0));
        }
        if (1..=6).contains(&ext) && group_ends.contains(&end) {
            return Some((area, local, ext));
        }
    }
    None
}

/// Province-level codes of the administrative division code (GB/T 2260), plus 71 Taiwan,
/// 81 Hong Kong, 82 Macao and 83 (residence permits for Taiwan residents).
const PROVINCES: &[u8] = &[
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54, 61, 62, 63,
    64, 65, 71, 81, 82, 83,
];

fn province_ok(d: &[u8]) -> bool {
    PROVINCES.contains(&(d[0] * 10 + d[1]))
}

fn number(d: &[u8]) -> u32 {
    d.iter().fold(0u32, |acc, &x| acc * 10 + x as u32)
}

pub(crate) fn valid_date(y: u32, m: u32, day: u32) -> bool {
    let leap = (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

/// An 18-digit resident ID: `d` holds 18 digits, or 17 when `x` (the check character is X).
pub(crate) fn id18(d: &[u8], x: bool) -> bool {
    if d.len() != if x { 17 } else { 18 } || !province_ok(d) {
        return false;
    }
    let y = number(&d[6..10]);
    if !(1900..=2099).contains(&y) || !valid_date(y, number(&d[10..12]), number(&d[12..14])) {
        return false;
    }
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = d[..17].iter().zip(WEIGHTS).map(|(&v, w)| v as u32 * w).sum();
    // ISO 7064 MOD 11-2: index 2 stands for X (10).
    const CHECK: [u8; 11] = [1, 0, 10, 9, 8, 7, 6, 5, 4, 3, 2];
    let check = CHECK[(sum % 11) as usize];
    if x { check == 10 } else { check == d[17] }
}

/// A 15-digit legacy ID (issued before 1999): province code, `YYMMDD` in the 1900s.
pub(crate) fn id15(d: &[u8]) -> bool {
    d.len() == 15 && province_ok(d) && valid_date(1900 + number(&d[6..8]), number(&d[8..10]), number(&d[10..12]))
}

pub(crate) fn luhn(d: &[u8]) -> bool {
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &v)| {
            let v = v as u32;
            if i % 2 == 1 {
                let w = v * 2;
                if w > 9 { w - 9 } else { w }
            } else {
                v
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn digits_str(d: &[u8]) -> String {
    d.iter().map(|&v| char::from(b'0' + v)).collect()
}

/// `keep_prefix` digits, stars, `keep_suffix` digits, then `tail` (the X of an ID).
fn mask_keep(d: &[u8], keep_prefix: usize, keep_suffix: usize, tail: &str) -> String {
    let total = d.len() + tail.len();
    let tail_kept = keep_suffix.min(tail.len());
    let digits_suffix = keep_suffix - tail_kept;
    let stars = total.saturating_sub(keep_prefix + keep_suffix);
    let mut s = digits_str(&d[..keep_prefix.min(d.len())]);
    s.push_str(&"*".repeat(stars));
    s.push_str(&digits_str(&d[d.len().saturating_sub(digits_suffix)..]));
    s.push_str(tail);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds(s: &str) -> Vec<u8> {
        s.bytes().map(|b| b - b'0').collect()
    }

    #[test]
    fn mobile_segments() {
        for ok in [
            "13012345678",
            "14512345678",
            "14912345678",
            "15012345678",
            "15312345678",
            "15912345678",
            "16212345678",
            "16512345678",
            "16712345678",
            "17012345678",
            "17812345678",
            "18012345678",
            "19012345678",
            "19912345678",
        ] {
            assert!(is_mobile(&ds(ok)), "{ok}");
        }
        for bad in [
            "14412345678",
            "15412345678",
            "16012345678",
            "16412345678",
            "16812345678",
            "17912345678",
            "12012345678",
            "11012345678",
            "1381234567",
            "138123456789",
        ] {
            assert!(!is_mobile(&ds(bad)), "{bad}");
        }
    }

    #[test]
    fn id_numbers() {
        // GB 11643-1999 example and a few computed ones.
        assert!(id18(&ds("11010519491231002"), true), "11010519491231002X");
        assert!(id18(&ds("440524198001010013"), false));
        assert!(!id18(&ds("440524198001010014"), false), "wrong check digit");
        assert!(!id18(&ds("440524188001010014"), false), "born before 1900 (check digit right)");
        assert!(!id18(&ds("110105194902300021"), false), "30 February");
        assert!(!id18(&ds("910105194912310021"), false), "no province 91");
        assert!(id15(&ds("110105491231002")));
        assert!(!id15(&ds("110105491331002")), "month 13");
    }

    #[test]
    fn luhn_and_landline_split() {
        assert!(luhn(&ds("4111111111111111")));
        assert!(!luhn(&ds("4111111111111112")));
        assert_eq!(landline(&ds("01062345678"), &[11]), Some((3, 8, 0)));
        assert_eq!(landline(&ds("057188889999"), &[12]), Some((4, 8, 0)));
        assert_eq!(landline(&ds("05718888999"), &[11]), Some((4, 7, 0)));
        assert_eq!(landline(&ds("057188889999123"), &[4, 12, 15]), Some((4, 8, 3)));
        assert_eq!(landline(&ds("057188889999123"), &[15]), None, "an extension must be its own group");
        assert_eq!(landline(&ds("01012345678"), &[11]), None, "local numbers do not start with 1");
    }

    #[test]
    fn masks_keep_the_customary_parts() {
        assert_eq!(mask_keep(&ds("13812345678"), 3, 4, ""), "138****5678");
        assert_eq!(mask_keep(&ds("11010519491231002"), 3, 4, "X"), "110***********002X");
        assert_eq!(mask_keep(&ds("4111111111111111"), 0, 4, ""), "************1111");
        assert_eq!(mask_keep(&ds("4008208820"), 3, 4, ""), "400***8820");
    }
}
