//! How masking accuracy is measured on a labeled corpus — one definition shared by
//! `benches/mask_accuracy.rs`, `tests/mask_corpus.rs` and anyone scoring a shop's own data.
//!
//! A corpus line is the JSON written by `shared/corpus/gen_corpus.py`: `text`, `pii` (items
//! with `type`, the exact `text` as typed and the canonical `value`) and `keep` (substrings
//! that must survive unchanged).
//!
//! **Output span of an item.** The item is located in the original text (its last
//! occurrence; the generator appends personal data after the message). Its *output span* is
//! what replaced those bytes in the masked text: the masks of every finding overlapping the
//! item, plus any bytes of the item no finding covers, in order. (This uses
//! [`Finding::range`]; the score also checks that the masked text is exactly the original
//! with each finding's range replaced by its mask — `inconsistent` counts violations.)
//!
//! **Caught.** An item is caught when its output span keeps in clear nothing beyond the
//! customary mask — "none of its hidden digits or characters survive":
//!
//! | type | caught when the output span … |
//! |---|---|
//! | `mobile` | holds at most 7 digits in any script (`138****5678`) |
//! | `id_card` | holds at most 7 digits (`110***********1234`) |
//! | `bank_card` | holds at most 4 digits |
//! | `landline` | holds at most 4 digits (the area code) |
//! | `service_number` | holds at most 7 digits |
//! | `email` | has at most one letter or digit before its `@` (`z***@qq.com`) |
//! | `address` | is a clear prefix of the item that ends with an administrative unit (`省 市 区 县 州 盟 旗`) and holds no Arabic digit and no road/building word (`路 街 道 巷 弄 号 栋 幢 室`), followed by at least one character, all `*` |
//! | other | differs from the item |
//!
//! Digits "in any script" are ASCII, anything NFKC maps to an ASCII digit (full-width,
//! circled …) and the Chinese numerals `〇零一二三四五六七八九幺两壹贰叁肆伍陆柒捌玖`.
//! A caught item whose finding has another kind counts as caught and as `misclassified`.
//!
//! **Recall** = caught items / items, overall and per type. **Keep items altered** = keep
//! items overlapped by any finding / keep items (each located at its first occurrence).
//! **Unexpected findings** = findings that overlap no personal-data item (over-masking
//! outside the keep list shows here).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::Range;

use serde::Deserialize;
use unicode_normalization::UnicodeNormalization;

use super::{Finding, Masker};

/// One line of the corpus.
#[derive(Debug, Clone, Deserialize)]
pub struct CorpusLine {
    pub text: String,
    #[serde(default)]
    pub pii: Vec<CorpusPii>,
    #[serde(default)]
    pub keep: Vec<String>,
}

/// One personal-data item of a corpus line.
#[derive(Debug, Clone, Deserialize)]
pub struct CorpusPii {
    /// `mobile`, `id_card`, `bank_card`, `email`, `address` (the [`super::PiiKind`] names).
    #[serde(rename = "type")]
    pub kind: String,
    /// Exactly as it appears in the text.
    pub text: String,
    /// The canonical form.
    #[serde(default)]
    pub value: String,
}

/// Counts for one personal-data type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindScore {
    pub items: usize,
    pub caught: usize,
    pub misclassified: usize,
}

/// Accumulated accuracy over many lines.
#[derive(Debug, Clone, Default)]
pub struct Score {
    pub messages: usize,
    pub items: usize,
    pub caught: usize,
    pub per_kind: BTreeMap<String, KindScore>,
    pub keep_items: usize,
    pub keep_altered: usize,
    pub findings: usize,
    pub unexpected_findings: usize,
    /// Masked texts that are not the original with each finding's range replaced by its
    /// mask, or findings whose `original` is not `text[range]`. Must be 0.
    pub inconsistent: usize,
    /// Lines that did not parse, or whose items are not in their text.
    pub bad_lines: usize,
    /// The first few missed items and altered keep items, for the report.
    pub miss_examples: Vec<String>,
    pub altered_examples: Vec<String>,
    pub unexpected_examples: Vec<String>,
}

const EXAMPLES: usize = 12;

impl Score {
    /// Parses one JSON line and scores it.
    pub fn add_json(&mut self, masker: &Masker, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        match serde_json::from_str::<CorpusLine>(line) {
            Ok(l) => self.add(masker, &l),
            Err(_) => self.bad_lines += 1,
        }
    }

    /// Masks `line.text` and scores the result.
    pub fn add(&mut self, masker: &Masker, line: &CorpusLine) {
        let text = line.text.as_str();
        let masked = masker.mask(text);
        self.messages += 1;
        self.findings += masked.findings.len();
        if !consistent(text, &masked.text, &masked.findings) {
            self.inconsistent += 1;
        }
        let mut item_ranges = Vec::new();
        for item in &line.pii {
            let Some(start) = text.rfind(item.text.as_str()) else {
                self.bad_lines += 1;
                continue;
            };
            let range = start..start + item.text.len();
            item_ranges.push(range.clone());
            let span = output_span(text, &masked.findings, range.clone());
            let ok = caught(&item.kind, &item.text, &span);
            let k = self.per_kind.entry(item.kind.clone()).or_default();
            k.items += 1;
            self.items += 1;
            if ok {
                k.caught += 1;
                self.caught += 1;
                let overlapping = masked.findings.iter().filter(|f| overlaps(&f.range, &range));
                if overlapping.clone().any(|f| f.kind.as_str() != item.kind) {
                    k.misclassified += 1;
                }
            } else if self.miss_examples.len() < EXAMPLES {
                self.miss_examples.push(format!("[{}] {:?} in {:?} -> {:?}", item.kind, item.text, text, masked.text));
            }
        }
        for keep in &line.keep {
            let Some(start) = text.find(keep.as_str()) else {
                self.bad_lines += 1;
                continue;
            };
            let range = start..start + keep.len();
            self.keep_items += 1;
            if masked.findings.iter().any(|f| overlaps(&f.range, &range)) {
                self.keep_altered += 1;
                if self.altered_examples.len() < EXAMPLES {
                    self.altered_examples.push(format!("{keep:?} in {text:?} -> {:?}", masked.text));
                }
            }
        }
        for f in &masked.findings {
            if !item_ranges.iter().any(|r| overlaps(&f.range, r)) {
                self.unexpected_findings += 1;
                if self.unexpected_examples.len() < EXAMPLES {
                    self.unexpected_examples.push(format!("[{}] {:?} in {text:?}", f.kind, f.original));
                }
            }
        }
    }

    /// Caught items / items (1.0 when there are none).
    pub fn recall(&self) -> f64 {
        ratio(self.caught, self.items, 1.0)
    }

    /// Altered keep items / keep items (0.0 when there are none).
    pub fn keep_altered_rate(&self) -> f64 {
        ratio(self.keep_altered, self.keep_items, 0.0)
    }

    /// A human-readable report of every figure and the first examples of each error.
    pub fn report(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "messages                {}", self.messages);
        let _ = writeln!(
            s,
            "personal-data recall    {:.4}%  ({} of {} items caught)",
            self.recall() * 100.0,
            self.caught,
            self.items
        );
        for (kind, k) in &self.per_kind {
            let _ = writeln!(
                s,
                "  {kind:<14}        {:.4}%  ({} of {}; {} with another kind)",
                ratio(k.caught, k.items, 1.0) * 100.0,
                k.caught,
                k.items,
                k.misclassified
            );
        }
        let _ = writeln!(
            s,
            "keep items altered      {:.4}%  ({} of {})",
            self.keep_altered_rate() * 100.0,
            self.keep_altered,
            self.keep_items
        );
        let _ = writeln!(
            s,
            "findings                {} ({} overlap no personal-data item)",
            self.findings, self.unexpected_findings
        );
        let _ = writeln!(s, "inconsistent outputs    {}", self.inconsistent);
        let _ = writeln!(s, "bad lines               {}", self.bad_lines);
        for (title, list) in [
            ("missed", &self.miss_examples),
            ("keep altered", &self.altered_examples),
            ("unexpected", &self.unexpected_examples),
        ] {
            for e in list {
                let _ = writeln!(s, "  {title}: {e}");
            }
        }
        s
    }
}

fn ratio(a: usize, b: usize, empty: f64) -> f64 {
    if b == 0 { empty } else { a as f64 / b as f64 }
}

fn overlaps(a: &Range<usize>, b: &Range<usize>) -> bool {
    a.start < b.end && b.start < a.end
}

/// Whether `masked` is `text` with every finding's range replaced by its mask, and every
/// finding's `original` is `text[range]`.
pub fn consistent(text: &str, masked: &str, findings: &[Finding]) -> bool {
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for f in findings {
        if f.range.start < pos || text.get(f.range.clone()) != Some(f.original.as_str()) {
            return false;
        }
        out.push_str(&text[pos..f.range.start]);
        out.push_str(&f.masked);
        pos = f.range.end;
    }
    out.push_str(text.get(pos..).unwrap_or_default());
    out == masked
}

/// What replaced the original bytes `range` in the masked text (see the module doc).
pub fn output_span(text: &str, findings: &[Finding], range: Range<usize>) -> String {
    let mut out = String::new();
    let mut pos = range.start;
    for f in findings.iter().filter(|f| overlaps(&f.range, &range)) {
        if f.range.start > pos {
            out.push_str(text.get(pos..f.range.start).unwrap_or_default());
        }
        out.push_str(&f.masked);
        pos = pos.max(f.range.end);
    }
    if pos < range.end {
        out.push_str(text.get(pos..range.end).unwrap_or_default());
    }
    out
}

/// Whether `c` is a digit in any script (see the module doc).
pub fn is_any_digit(c: char) -> bool {
    c.is_ascii_digit()
        || "〇零一二三四五六七八九幺两兩拐洞勾壹贰貳叁參肆伍陆陸柒捌玖".contains(c)
        || (!c.is_ascii() && std::iter::once(c).nfkc().any(|n| n.is_ascii_digit()))
}

/// Whether an item of type `kind`, typed `item`, is caught given its output span.
pub fn caught(kind: &str, item: &str, span: &str) -> bool {
    let digits = span.chars().filter(|&c| is_any_digit(c)).count();
    match kind {
        "mobile" | "id_card" | "service_number" => digits <= 7,
        "bank_card" | "landline" => digits <= 4,
        "email" => {
            let local = span.split('@').next().unwrap_or(span);
            span.contains('@') && local.chars().filter(char::is_ascii_alphanumeric).count() <= 1
        }
        "address" => address_caught(item, span),
        _ => span != item,
    }
}

fn address_caught(item: &str, span: &str) -> bool {
    let mut prefix = 0;
    for (i, c) in span.char_indices() {
        // Place names may hold Chinese numerals (四川, 三亚); house numbers are what matter.
        if c.is_ascii_digit() || ('０'..='９').contains(&c) || "路街道巷弄号栋幢室".contains(c) {
            break;
        }
        let end = i + c.len_utf8();
        if "省市区县州盟旗".contains(c) && item.as_bytes().get(..end) == Some(&span.as_bytes()[..end]) {
            prefix = end;
        }
    }
    let rest = &span[prefix..];
    !rest.is_empty() && rest.chars().all(|c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caught_follows_the_customary_masks() {
        assert!(caught("mobile", "13812345678", "138****5678"));
        assert!(!caught("mobile", "13812345678", "13812345678"));
        assert!(!caught("mobile", "+86 13812345678", "+86 138****5678"), "the country code counts as clear digits");
        assert!(!caught("mobile", "一三八一二三四五六七八", "一三八一二三四五六七八"));
        assert!(caught("bank_card", "6222021234567890128", "***************0128"));
        assert!(!caught("bank_card", "6222021234567890128", "6222***********0128"));
        assert!(caught("email", "zhangwei12@qq.com", "z***@qq.com"));
        assert!(!caught("email", "zhangwei12@qq.com", "zh***@qq.com"));
        assert!(caught("address", "浙江省杭州市西湖区文三路90号", "浙江省杭州市西湖区****"));
        assert!(caught("address", "浙江省杭州市西湖区文三路90号", "****"));
        assert!(!caught("address", "浙江省杭州市西湖区文三路90号", "浙江省杭州市西湖区文三路****"));
        assert!(!caught("address", "浙江省杭州市西湖区文三路90号翠苑小区", "浙江省杭州市西湖区文三路90号翠苑小区"));
        assert!(!caught("address", "杭州市西湖区", "杭州市西湖区"), "nothing masked");
        assert!(
            caught("address", "四川省成都市武侯区人民大道785号", "四川省成都市武侯区****"),
            "numerals in place names"
        );
    }

    #[test]
    fn output_span_joins_masks_and_uncovered_bytes() {
        let f = |r: Range<usize>, m: &str| Finding {
            kind: super::super::PiiKind::Mobile,
            original: String::new(),
            masked: m.into(),
            range: r,
        };
        let text = "ab1234cd";
        assert_eq!(output_span(text, &[f(2..6, "**")], 0..8), "ab**cd");
        assert_eq!(output_span(text, &[f(2..6, "**")], 3..5), "**");
        assert_eq!(output_span(text, &[], 2..6), "1234");
    }
}
