//! Contact ids: WeChat ids and QQ numbers after their marker words.
//!
//! A buyer's WeChat id or QQ number is personal data like a phone number, but on its own it
//! is just a short word or number, so it is only found right after a marker:
//!
//! | kind | markers | id |
//! |---|---|---|
//! | `wechat` | `微信` `微信号` `vx` `v信` `薇信` `威信` `徽信` `wx` `weixin` `wechat` `加v` `加个v` | a letter then 5–19 letters, digits, `_` or `-`; or 5–12 digits |
//! | `qq` | `qq` `qq号` `扣扣` `企鹅` `企鹅号` `q号` | 5–12 digits, not starting with 0 (Chinese numerals count) |
//!
//! Between marker and id: at most six of spaces, `:`, `=`, `是`, `为`, `号`, `码`, `叫`, `搜`,
//! `加`, `id`, `账号`, `同号`. An ASCII marker must not be glued to letters before it, nor to a letter
//! after it (`wxid_…` is an id, not the marker `wx`), and is written in one case (`QQ`, `qq`;
//! `Qq9-5963` is a model); a marker right after an order or product word (`型号`, `券码`, see
//! `protect_words`) is part of a code. The id must end at a character that
//! cannot continue it. Mask: the id's first character, then `***` (`z***`, `1***`); the
//! marker stays.
//!
//! Numbers that are phone numbers are claimed by the number detectors first (`vx13812345678`
//! is a mobile).

use std::ops::Range;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use super::{Candidate, PiiKind};
use crate::normalize::Normalized;

const WECHAT: &[&str] = &[
    "微信号",
    "微信",
    "vx",
    "v信",
    "薇信",
    "威信",
    "徽信",
    "wx",
    "weixin",
    "wechat",
    "加v",
    "加个v",
    "加vx",
    "加个vx",
    "加wx",
    "加个wx",
    "加v信",
    "加个v信",
];
const QQ: &[&str] = &["qq号", "qq", "扣扣", "企鹅号", "企鹅", "q号"];

/// Words that may sit between a marker and the id.
const CONNECTORS: &[&str] =
    &[" ", ":", "=", "是", "为", "号", "码", "叫", "搜", "加", "id", "账号", "帐号", "同号", "\t"];

#[derive(Debug, Clone)]
pub(crate) struct ContactIds {
    markers: AhoCorasick,
}

impl ContactIds {
    pub fn new() -> ContactIds {
        let markers = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .build(WECHAT.iter().chain(QQ))
            .unwrap_or_else(|_| AhoCorasick::new([""; 0]).expect("an empty automaton builds"));
        ContactIds { markers }
    }

    /// Appends the ids found in `n` that overlap neither `taken` nor `out`.
    pub fn detect(
        &self,
        n: &Normalized,
        want_wechat: bool,
        want_qq: bool,
        protect: &[String],
        taken: &[Range<usize>],
        out: &mut Vec<Candidate>,
    ) {
        let t = n.text.as_bytes();
        let mut found = Vec::new();
        for m in self.markers.find_iter(&n.text) {
            let qq = m.pattern().as_usize() >= WECHAT.len();
            if (qq && !want_qq) || (!qq && !want_wechat) {
                continue;
            }
            let ascii_marker = t[m.start()].is_ascii_alphabetic();
            if ascii_marker && m.start() > 0 && t[m.start() - 1].is_ascii_alphabetic() {
                continue;
            }
            // `QQ`, `qq`, `VX`, `vx`: one case; `Qq9-5963` is a model number.
            let ascii: Vec<u8> = t[m.start()..m.end()].iter().copied().filter(u8::is_ascii_alphabetic).collect();
            if ascii.len() >= 2
                && !(ascii.iter().all(u8::is_ascii_lowercase) || ascii.iter().all(u8::is_ascii_uppercase))
            {
                continue;
            }
            // After a product or order word (`型号`, `券码`, `订单`) it is a code.
            if let Some(u) = n.unit_range(m.start()..m.end())
                && super::digits::context_protects(n, u.start, protect)
            {
                continue;
            }
            let mut p = m.end();
            // A marker ending in a letter glued to more letters is a word (`加VIP会员`, `wxid_…`).
            if t[p - 1].is_ascii_alphabetic() && t.get(p).is_some_and(u8::is_ascii_alphabetic) {
                continue;
            }
            let mut skipped = 0;
            while skipped < 6 {
                let rest = &n.text[p..];
                let Some(c) = CONNECTORS.iter().find(|c| {
                    rest.get(..c.len()).is_some_and(|h| h.eq_ignore_ascii_case(c))
                        // `id` is a connector only as a word (`vx id: …`), not the start of an id.
                        && (**c != "id" || !rest.as_bytes().get(2).is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_'))
                }) else {
                    break;
                };
                p += c.len();
                skipped += 1;
            }
            let Some(len) = id_len(&t[p..], qq) else { continue };
            let Some(units) = n.unit_range(p..p + len) else { continue };
            let overlapping = |r: &Range<usize>| r.start < units.end && units.start < r.end;
            if taken.iter().any(overlapping) || out.iter().any(|c: &Candidate| overlapping(&c.units)) {
                continue;
            }
            let first = char::from(t[p]);
            let (kind, why) = if qq {
                (PiiKind::Qq, "QQ number after a QQ marker")
            } else {
                (PiiKind::WeChat, "WeChat id after a WeChat marker")
            };
            found.push(Candidate::new(kind, units, format!("{first}***"), why));
        }
        out.extend(found);
    }
}

/// The length of the id at the start of `t`, if there is one.
fn id_len(t: &[u8], qq: bool) -> Option<usize> {
    let continues = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-');
    let first = *t.first()?;
    let len = if first.is_ascii_digit() {
        let len = t.iter().take_while(|b| b.is_ascii_digit()).count();
        if !(5..=12).contains(&len) || first == b'0' {
            return None;
        }
        len
    } else if first.is_ascii_alphabetic() && !qq {
        let len = t.iter().take_while(|b| continues(b)).count();
        if !(6..=20).contains(&len) {
            return None;
        }
        len
    } else {
        return None;
    };
    (!t.get(len).is_some_and(continues)).then_some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_shapes() {
        assert_eq!(id_len(b"abc_123 ", false), Some(7));
        assert_eq!(id_len(b"abc12", false), None, "too short");
        assert_eq!(id_len(b"12345678", true), Some(8));
        assert_eq!(id_len(b"0123456", true), None);
        assert_eq!(id_len(b"abc_123", true), None, "QQ numbers are digits");
    }
}
