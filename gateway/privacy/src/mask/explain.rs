//! `huiliu mask --explain`: every span the masker considered in a text, what it decided and
//! why — so an operator can see why something was or was not masked.
//!
//! Masked and kept spans come from the detectors themselves (each carries the rule that
//! matched); rejected spans are the digit runs of 5 or more digits that no detector took,
//! diagnosed afterwards, and the numbers in parts whose context score was not positive.
//! Nothing here runs when masking normally.

use std::fmt;
use std::ops::Range;

use super::digits::{self, Ctx};
use super::{Candidate, Masked, Masker};
use crate::normalize::Normalized;

/// One span considered in a text.
#[derive(Clone, PartialEq, Eq)]
pub struct Span {
    /// Byte range in the original text.
    pub range: Range<usize>,
    /// The original characters. Personal data when `masked` is set: the `Debug` output omits it.
    pub text: String,
    /// The kind (`mobile`, `wechat` …), or `number` for a rejected digit run.
    pub kind: String,
    /// What replaced it, or `None` when it was left in clear.
    pub masked: Option<String>,
    /// The rule that matched, or why none did.
    pub rule: String,
    /// The words before it that bear on the decision (contact, order, bank words).
    pub context: String,
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Span")
            .field("range", &self.range)
            .field("text", &format_args!("<{} bytes redacted>", self.text.len()))
            .field("kind", &self.kind)
            .field("masked", &self.masked)
            .field("rule", &self.rule)
            .field("context", &self.context)
            .finish()
    }
}

/// A masked text with every span considered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub masked: Masked,
    /// In text order.
    pub spans: Vec<Span>,
}

impl Masker {
    /// Masks `text` (exactly as [`Masker::mask`]) and explains every decision.
    pub fn explain(&self, text: &str) -> Explanation {
        let mut spans = Vec::new();
        let mut findings = Vec::new();
        for (base, piece) in crate::normalize::chunks(text) {
            self.find_in_explained(piece, base, &mut findings, Some(&mut spans));
        }
        spans.sort_by_key(|s| (s.range.start, s.range.end));
        Explanation { masked: self.mask(text), spans }
    }
}

/// Appends the notes of one normalized piece.
#[allow(clippy::too_many_arguments)]
pub(super) fn notes(
    n: &Normalized,
    text: &str,
    base: usize,
    cx: &Ctx<'_>,
    cands: &[Candidate],
    links: &[Range<usize>],
    rejected_parts: &[(Range<usize>, i32)],
    out: &mut Vec<Span>,
) {
    let span = |units: Range<usize>| {
        let r = n.orig_of_units(units)?;
        Some((base + r.start..base + r.end, text.get(r)?.to_owned()))
    };
    for c in cands {
        let Some((range, original)) = span(c.units.clone()) else { continue };
        out.push(Span {
            range,
            text: original,
            kind: c.kind.as_str().to_owned(),
            masked: (!c.keep).then(|| c.masked.clone()),
            rule: c.why.to_owned(),
            context: if c.why.contains("in parts") {
                context_around(n, c.units.clone(), cx.protect)
            } else {
                context_before(n, c.units.start, cx.protect)
            },
        });
    }
    for (units, score) in rejected_parts {
        let Some((range, original)) = span(units.clone()) else { continue };
        out.push(Span {
            range,
            text: original,
            kind: "number".to_owned(),
            masked: None,
            rule: format!("parts would form a mobile, but their context score is {score} (needs > 0)"),
            context: context_around(n, units.clone(), cx.protect),
        });
    }
    // Digit runs no detector took.
    let units = &n.units;
    let claimed = |r: &Range<usize>| {
        cands
            .iter()
            .map(|c| &c.units)
            .chain(rejected_parts.iter().map(|(u, _)| u))
            .any(|o| o.start < r.end && r.start < o.end)
    };
    let mut i = 0;
    while i < units.len() {
        if !units[i].is_digit() {
            i += 1;
            continue;
        }
        let (end, count) = digits::run_extent(units, i);
        let r = i..end;
        if count >= 5 && !claimed(&r) {
            let in_link = links.iter().any(|l| l.start < r.end && r.start < l.end);
            let rule = if in_link { "inside a link: never masked".to_owned() } else { digits::diagnose(n, cx, i) };
            if let Some((range, original)) = span(r.clone()) {
                out.push(Span {
                    range,
                    text: original,
                    kind: "number".to_owned(),
                    masked: None,
                    rule,
                    context: context_before(n, i, cx.protect),
                });
            }
        }
        i = end.max(i + 1);
    }
}

/// The known words in the 12 characters before unit `start` (stopping at a digit or a
/// sentence end), labelled by what they say.
fn context_before(n: &Normalized, start: usize, protect: &[String]) -> String {
    context(n, start, None, protect)
}

/// [`context_before`], plus the words inside `units` between its digits (a number in parts).
fn context_around(n: &Normalized, units: Range<usize>, protect: &[String]) -> String {
    context(n, units.start, Some(units), protect)
}

fn context(n: &Normalized, start: usize, inner: Option<Range<usize>>, protect: &[String]) -> String {
    let mut window = digits::words_before(n, start);
    if let Some(inner) = inner {
        window.push('|');
        window.extend(n.units[inner].iter().filter(|u| !u.is_digit()).map(|u| u.ch.to_ascii_lowercase()));
    }
    let mut found: Vec<String> = Vec::new();
    let mut add = |list: &mut dyn Iterator<Item = &str>, what: &str| {
        let mut words: Vec<&str> = list.filter(|w| !w.is_empty() && window.contains(*w)).collect();
        words.sort_unstable();
        words.dedup();
        // Report the longest words only (`银行卡` rather than also `卡`).
        let words: Vec<&str> =
            words.iter().copied().filter(|w| !words.iter().any(|o| o.len() > w.len() && o.contains(*w))).collect();
        if !words.is_empty() {
            found.push(format!("{} ({what})", words.join(" ")));
        }
    };
    add(&mut digits::LABELS.iter().copied().chain(digits::PART_CONTACT.iter().copied()), "contact label");
    add(&mut protect.iter().map(String::as_str).chain(digits::PART_OTHER.iter().copied()), "order/price/size word");
    add(&mut digits::BANK_WORDS.iter().copied(), "bank word");
    let place = if window.contains('|') { "before and between the parts" } else { "before it" };
    if found.is_empty() {
        format!("no known word in {window:?} {place}")
    } else {
        format!("{place}: {}", found.join("; "))
    }
}
