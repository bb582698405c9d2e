//! Text normalization that remembers where every normalized character came from.
//!
//! Buyers hide numbers from filters (`１３８`, `幺三八`, `138 1234 5678`, `1️⃣3️⃣8️⃣`, zero-width
//! characters); the detectors look at the normalized text, and the mask replaces the exact
//! *original* bytes. This module produces both views and the map between them:
//!
//! - NFKC per character (full-width forms, circled digits, ideographic space …);
//! - invisible characters (zero-width spaces and joiners, BOM, soft hyphen, bidi controls,
//!   variation selectors, keycap and other combining marks) are dropped and attached to the
//!   previous character, so a mask over `1️⃣` covers the whole keycap;
//! - optionally, Chinese numerals (`〇零一二三四五六七八九幺`, `壹贰叁肆伍陆柒捌玖` and the
//!   traditional `貳參陸`) become ASCII digits;
//! - optionally, ASCII letters are lowercased (for the compliance word lists);
//! - separators (spaces, dashes, dots, middle dots, parentheses) between two digits — at most
//!   three in a row — are left out of the normalized text: `138-1234-5678` reads `13812345678`.
//!   The digit detectors still see them as group boundaries (see [`Unit::class`]).
//!
//! Everything here is pure and total: any `&str` normalizes without panicking.

use std::ops::Range;

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc_quick};

/// Which script a digit was written in. A change of script inside a run of digits is a
/// group boundary (a buyer who types `13812345678一定要…` did not mean a 12-digit number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Script {
    /// ASCII, full-width, keycap, circled … — anything NFKC turns into an ASCII digit.
    Arabic,
    /// A Chinese numeral.
    Han,
}

/// The role of one normalized character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// A digit with its value.
    Digit(u8, Script),
    /// A separator that may sit between the digits of one number.
    Sep,
    /// Anything else.
    Other,
}

/// One normalized character and the original bytes it stands for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Unit {
    /// The normalized character (an ASCII digit for every [`Class::Digit`]).
    pub ch: char,
    pub class: Class,
    /// Original byte range (invisible characters that follow are included).
    pub start: u32,
    pub end: u32,
    /// Byte offset in [`Normalized::text`], or `u32::MAX` for a separator left out of it.
    pub text_byte: u32,
}

impl Unit {
    pub fn is_digit(&self) -> bool {
        matches!(self.class, Class::Digit(..))
    }
}

/// Normalization switches.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    pub cjk_digits: bool,
    pub lowercase: bool,
}

/// The normalized view of one text.
#[derive(Debug, Default)]
pub(crate) struct Normalized {
    /// The normalized text the regular expressions run on.
    pub text: String,
    /// Every normalized character, including separators left out of `text`.
    pub units: Vec<Unit>,
    /// Indices into `units` of the characters present in `text`, in order.
    pub in_text: Vec<u32>,
}

/// The largest text normalized in one piece; longer texts are processed in chunks by the
/// callers so that every offset fits in a `u32`.
pub(crate) const MAX_CHUNK: usize = 1 << 20;

impl Normalized {
    /// Normalizes `text` (at most [`MAX_CHUNK`] bytes are expected; longer input is truncated
    /// at a character boundary rather than overflowing an offset).
    pub fn new(text: &str, opts: Options) -> Normalized {
        let text = &text[..floor_char_boundary(text, MAX_CHUNK)];
        let mut units: Vec<Unit> = Vec::with_capacity(text.len() / 2 + 8);
        for (offset, c) in text.char_indices() {
            let start = offset as u32;
            let end = (offset + c.len_utf8()) as u32;
            let produced = normalize_char(c, opts, &mut |ch, class| {
                units.push(Unit { ch, class, start, end, text_byte: 0 });
            });
            if !produced && let Some(last) = units.last_mut() {
                last.end = end;
            }
        }
        if opts.cjk_digits {
            lookalike_digits(&mut units);
        }
        // Leave out separators that join digits (at most three in a row).
        let mut out = String::with_capacity(text.len());
        let mut in_text = Vec::with_capacity(units.len());
        let mut i = 0;
        while i < units.len() {
            if units[i].class == Class::Sep && i > 0 && units[i - 1].is_digit() {
                let mut j = i;
                while j < units.len() && j - i < 3 && units[j].class == Class::Sep {
                    j += 1;
                }
                if j < units.len() && units[j].is_digit() {
                    for u in &mut units[i..j] {
                        u.text_byte = u32::MAX;
                    }
                    i = j;
                    continue;
                }
            }
            units[i].text_byte = out.len() as u32;
            out.push(units[i].ch);
            in_text.push(i as u32);
            i += 1;
        }
        Normalized { text: out, units, in_text }
    }

    /// The original byte range of the normalized byte range `range` (which must start and end
    /// on characters of `text`); `None` for an empty or misaligned range.
    pub fn orig_range(&self, range: Range<usize>) -> Option<Range<usize>> {
        let first = self.text_char_at(range.start)?;
        let last = self.in_text.partition_point(|&u| (self.units[u as usize].text_byte as usize) < range.end);
        if last <= first {
            return None;
        }
        let a = self.units[self.in_text[first] as usize].start as usize;
        let b = self.units[self.in_text[last - 1] as usize].end as usize;
        Some(a..b)
    }

    /// The unit index range of the normalized byte range `range`.
    pub fn unit_range(&self, range: Range<usize>) -> Option<Range<usize>> {
        let first = self.text_char_at(range.start)?;
        let last = self.in_text.partition_point(|&u| (self.units[u as usize].text_byte as usize) < range.end);
        if last <= first {
            return None;
        }
        Some(self.in_text[first] as usize..self.in_text[last - 1] as usize + 1)
    }

    /// The position in `in_text` of the character starting at normalized byte `byte`.
    fn text_char_at(&self, byte: usize) -> Option<usize> {
        let i = self.in_text.partition_point(|&u| (self.units[u as usize].text_byte as usize) < byte);
        let u = self.in_text.get(i)?;
        (self.units[*u as usize].text_byte as usize == byte).then_some(i)
    }

    /// The original byte range covered by units `units` (non-empty, in bounds).
    pub fn orig_of_units(&self, units: Range<usize>) -> Option<Range<usize>> {
        let first = self.units.get(units.start)?;
        let last = self.units.get(units.end.checked_sub(1)?)?;
        (units.start < units.end).then_some(first.start as usize..last.end as usize)
    }
}

/// Letters typed for digits inside a number (`138O1234567`, `1l0105…`): `O`/`o` read as 0,
/// `l`/`I` as 1 — only when digits sit right on both sides of at most two such letters, or
/// when one such letter, not glued to other letters, starts or ends a run of at least 9
/// digits (`l3812345678`); words and codes (`Hello`, `iOS`, `SKU-O1`) stay letters.
fn lookalike_digits(units: &mut [Unit]) {
    let value = |c: char| match c {
        'O' | 'o' => Some(0),
        'l' | 'I' => Some(1),
        _ => None,
    };
    // At the edge of a long number: one letter before or after at least 9 digits, not glued
    // to other letters (`手机l3812345678`, `1381234567O`).
    let digits_from = |units: &[Unit], i: usize, step: isize| {
        let mut k = i as isize;
        let mut n = 0;
        while k >= 0 && (k as usize) < units.len() && units[k as usize].is_digit() {
            n += 1;
            k += step;
        }
        n
    };
    let alnum = |u: Option<&Unit>| u.is_some_and(|u| u.ch.is_ascii_alphanumeric());
    for i in 0..units.len() {
        let Some(d) = value(units[i].ch) else { continue };
        let before = i.checked_sub(1).map(|b| &units[b]);
        let lead = !alnum(before) && digits_from(units, i + 1, 1) >= 9;
        let trail = i > 0 && !alnum(units.get(i + 1)) && digits_from(units, i - 1, -1) >= 9;
        if lead || trail {
            units[i].ch = char::from(b'0' + d);
            units[i].class = Class::Digit(d, Script::Arabic);
        }
    }
    let mut i = 1;
    while i + 1 < units.len() {
        if units[i - 1].is_digit() && value(units[i].ch).is_some() {
            let mut j = i;
            while j < units.len() && j - i < 2 && value(units[j].ch).is_some() {
                j += 1;
            }
            if units.get(j).is_some_and(Unit::is_digit) {
                for u in &mut units[i..j] {
                    let d = value(u.ch).unwrap_or(0);
                    u.ch = char::from(b'0' + d);
                    u.class = Class::Digit(d, Script::Arabic);
                }
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
}

/// Splits `text` into pieces of at most [`MAX_CHUNK`] bytes, cut after a line break or a
/// space near the limit where there is one: `(offset, piece)`.
pub(crate) fn chunks(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut start = 0;
    std::iter::from_fn(move || {
        let rest = text.get(start..).filter(|r| !r.is_empty())?;
        let mut end = floor_char_boundary(rest, MAX_CHUNK);
        if end < rest.len()
            && let Some(p) = rest[..end].rfind(['\n', ' '])
            && end - p < 4096
        {
            end = p + 1;
        }
        if end == 0 {
            return None;
        }
        let piece = (start, &rest[..end]);
        start += end;
        Some(piece)
    })
}

/// The largest char boundary `<= at`.
pub(crate) fn floor_char_boundary(s: &str, at: usize) -> usize {
    if at >= s.len() {
        return s.len();
    }
    let mut i = at;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Normalizes one character, calling `emit` for every character it becomes. Returns false
/// when the character is invisible and produces nothing.
#[inline]
pub(crate) fn normalize_char(c: char, opts: Options, emit: &mut impl FnMut(char, Class)) -> bool {
    let u = c as u32;
    if u < 0x80 {
        let c = if opts.lowercase { c.to_ascii_lowercase() } else { c };
        emit(c, ascii_class(c));
        return true;
    }
    // CJK unified ideographs (most of a Chinese text) are NFKC-stable; 〇 (U+3007) is the one
    // numeral outside the block.
    if (0x4E00..=0x9FFF).contains(&u) || u == 0x3007 {
        if opts.cjk_digits
            && let Some(d) = cjk_digit(c)
        {
            emit(char::from(b'0' + d), Class::Digit(d, Script::Han));
            return true;
        }
        emit(c, Class::Other);
        return true;
    }
    if is_invisible(c) {
        return false;
    }
    match u {
        0x3400..=0x4DBF => emit(c, Class::Other),
        // Full-width ASCII: NFKC maps U+FF01..U+FF5E to U+0021..U+007E.
        0xFF01..=0xFF5E => {
            let a = char::from_u32(u - 0xFEE0).unwrap_or(c);
            let a = if opts.lowercase { a.to_ascii_lowercase() } else { a };
            emit(a, ascii_class(a));
        }
        0x3000 => emit(' ', Class::Sep),
        // 、 and 。 split digit groups as often as commas do (`139、2044、8812`).
        0x3001 | 0x3002 => emit(c, Class::Sep),
        // Other CJK punctuation 〃 《》「」【】 …: NFKC-stable.
        0x3003..=0x3035 => emit(c, Class::Other),
        _ => {
            if is_nfkc_quick(std::iter::once(c)) == IsNormalized::No {
                let mut any = false;
                for n in std::iter::once(c).nfkc() {
                    if is_invisible(n) {
                        continue;
                    }
                    any = true;
                    let n = if opts.lowercase { n.to_ascii_lowercase() } else { n };
                    let class = if n.is_ascii() { ascii_class(n) } else { other_class(n) };
                    emit(n, class);
                }
                return any;
            }
            emit(c, other_class(c));
        }
    }
    true
}

#[inline]
pub(crate) fn ascii_class(c: char) -> Class {
    match c {
        '0'..='9' => Class::Digit(c as u8 - b'0', Script::Arabic),
        ' ' | '\t' | '-' | '.' | '_' | '(' | ')' | ',' | '/' => Class::Sep,
        _ => Class::Other,
    }
}

/// Non-ASCII separators (after NFKC): dashes, minus, middle dots, no-break spaces, and
/// pictographs (buyers put emoji between digit groups: `📱186🌷3307🌷1234`).
#[inline]
fn other_class(c: char) -> Class {
    match c {
        '\u{00B7}' | '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{30FB}' | '\u{2027}' | '\u{2022}' | '\u{00A0}' => {
            Class::Sep
        }
        '\u{2600}'..='\u{27BF}' | '\u{1F300}'..='\u{1FAFF}' | '\u{2B50}' | '\u{2B55}' => Class::Sep,
        _ => Class::Other,
    }
}

/// Characters that render as nothing (or only modify the previous character).
#[inline]
pub(crate) fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{0300}'..='\u{036F}' | '\u{20D0}'..='\u{20FF}' | '\u{E0000}'..='\u{E0FFF}')
}

/// Chinese numerals written digit by digit, with their values (`幺` is the spoken 1 of phone
/// numbers; `〇` is U+3007, outside the ideograph block).
const NUMERALS: [(char, u8); 29] = [
    ('〇', 0),
    ('零', 0),
    ('一', 1),
    ('壹', 1),
    ('幺', 1),
    ('二', 2),
    ('贰', 2),
    ('貳', 2),
    ('三', 3),
    ('叁', 3),
    ('參', 3),
    ('四', 4),
    ('肆', 4),
    ('五', 5),
    ('伍', 5),
    ('六', 6),
    ('陆', 6),
    ('陸', 6),
    ('七', 7),
    ('柒', 7),
    ('八', 8),
    ('捌', 8),
    ('九', 9),
    ('玖', 9),
    // Spoken forms: 两 (2), 拐 (7), 洞 (0), 勾 (9), as radio operators and buyers read numbers.
    ('两', 2),
    ('兩', 2),
    ('拐', 7),
    ('洞', 0),
    ('勾', 9),
];

/// Ideographs that road and building addresses are anchored on (see `mask::address`).
const ADDRESS_WORDS: [char; 13] = ['路', '街', '道', '巷', '弄', '同', '栋', '幢', '室', '元', '楼', '座', '村'];

const CJK_FIRST: u32 = 0x4E00;
const CJK_LEN: usize = 0x9FFF - 0x4E00 + 1;
/// Per ideograph of U+4E00..U+9FFF: `1 + value` for a numeral, `ADDRESS` bit for an address
/// word — one table lookup instead of a search on the hot path.
static CJK_TABLE: [u8; CJK_LEN] = cjk_table();
const ADDRESS: u8 = 0x80;

const fn cjk_table() -> [u8; CJK_LEN] {
    let mut t = [0u8; CJK_LEN];
    let mut i = 0;
    while i < NUMERALS.len() {
        let c = NUMERALS[i].0 as u32;
        if c >= CJK_FIRST && c < CJK_FIRST + CJK_LEN as u32 {
            t[(c - CJK_FIRST) as usize] = NUMERALS[i].1 + 1;
        }
        i += 1;
    }
    let mut i = 0;
    while i < ADDRESS_WORDS.len() {
        t[(ADDRESS_WORDS[i] as u32 - CJK_FIRST) as usize] |= ADDRESS;
        i += 1;
    }
    t
}

#[inline]
fn cjk_entry(c: char) -> u8 {
    (c as u32).checked_sub(CJK_FIRST).and_then(|i| CJK_TABLE.get(i as usize)).copied().unwrap_or(0)
}

/// The value of a Chinese numeral written digit by digit.
#[inline]
pub(crate) fn cjk_digit(c: char) -> Option<u8> {
    if c == '〇' {
        return Some(0);
    }
    match cjk_entry(c) & !ADDRESS {
        0 => None,
        v => Some(v - 1),
    }
}

/// For an ideograph of U+4E00..U+9FFF that is not a numeral: `Some(is_address_word)`;
/// `None` for anything else (one table lookup, for the mask's pre-scan).
#[inline]
pub(crate) fn plain_ideograph(c: char) -> Option<bool> {
    let i = (c as u32).checked_sub(CJK_FIRST)? as usize;
    let e = *CJK_TABLE.get(i)?;
    (e & !ADDRESS == 0).then_some(e & ADDRESS != 0)
}

/// Whether `c` is one of the ideographs an address is anchored on.
#[inline]
pub(crate) fn is_address_word(c: char) -> bool {
    cjk_entry(c) & ADDRESS != 0
}

/// Whether `c` is a CJK ideograph (the characters addresses and words are made of).
#[inline]
pub(crate) fn is_han(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FFFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASK: Options = Options { cjk_digits: true, lowercase: false };

    #[test]
    fn full_width_chinese_numerals_and_separators_become_plain_digits() {
        let n = Normalized::new("电话：１３８ 幺二三四-五六七八", MASK);
        assert_eq!(n.text, "电话:13812345678");
    }

    #[test]
    fn separators_stay_when_not_between_digits() {
        let n = Normalized::new("a - b 1 - x 2.", MASK);
        assert_eq!(n.text, "a - b 1 - x 2.");
        let n = Normalized::new("1 -  2", MASK);
        assert_eq!(n.text, "1 -  2", "four separators in a row do not join");
    }

    #[test]
    fn invisible_characters_attach_to_the_previous_character() {
        let s = "1\u{FE0F}\u{20E3}3\u{200B}8";
        let n = Normalized::new(s, MASK);
        assert_eq!(n.text, "138");
        assert_eq!(n.orig_range(0..3), Some(0..s.len()));
        assert_eq!(n.orig_range(0..1), Some(0..7), "the keycap belongs to its digit");
    }

    #[test]
    fn ranges_map_back_to_original_bytes() {
        let s = "号码：１３８-1";
        let n = Normalized::new(s, MASK);
        assert_eq!(n.text, "号码:1381");
        let start = n.text.find('1').unwrap();
        let r = n.orig_range(start..n.text.len()).unwrap();
        assert_eq!(&s[r], "１３８-1");
        assert_eq!(n.orig_range(1..2), None, "misaligned start");
        assert_eq!(n.orig_range(3..3), None, "empty range");
    }

    #[test]
    fn nfkc_expansions_map_every_produced_char_to_the_source() {
        let s = "⑩x";
        let n = Normalized::new(s, MASK);
        assert_eq!(n.text, "10x");
        assert_eq!(n.orig_range(0..1), Some(0..3));
        assert_eq!(n.orig_range(1..2), Some(0..3));
    }

    #[test]
    fn lookalike_letters_become_digits_only_inside_numbers() {
        let n = Normalized::new("138O12345l8 Hello iOS 1Oo1 OK1", MASK);
        assert_eq!(n.text, "13801234518 Hello iOS 1001 OK1");
        let n = Normalized::new("1OOO1", MASK);
        assert_eq!(n.text, "1OOO1", "three letters in a row are a word");
        let n = Normalized::new("手机l3812345678和1381234567O和lO3812345678 I5", MASK);
        assert_eq!(n.text, "手机13812345678和13812345670和lO3812345678 I5", "edges of long numbers only");
        let n = Normalized::new("1O1", Options { cjk_digits: false, lowercase: true });
        assert_eq!(n.text, "1o1", "word lists keep letters");
    }

    #[test]
    fn spoken_digits_and_weak_separators() {
        let n = Normalized::new("幺三八拐洞勾两, 139,2044、8812。📱186🌷3307", MASK);
        assert_eq!(n.text, "1387092139204488121863307");
    }

    #[test]
    fn lowercase_and_no_cjk_digits_for_word_lists() {
        let n = Normalized::new("ＶＸ第一", Options { cjk_digits: false, lowercase: true });
        assert_eq!(n.text, "vx第一");
    }
}
