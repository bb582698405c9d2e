//! Sentences typed in pinyin (`zen me tui huo`, `shenme shihou fahuo`, `积分zai na cha`) read as
//! the knowledge base's own words. Every word the base knows is indexed by its toneless pinyin —
//! each reading of each character, so 还 is both `hai` and `huan` — and a run of Latin letters
//! that is *entirely* such words, spaced or run together, is replaced by them before
//! segmentation. A run that is not (an English word, `jd`, `yhq`) is left as it was.
//!
//! The `pinyin` crate gives a character's readings; reading a buyer's letters against one
//! knowledge base's words is ours (no crate does it for a given vocabulary).

use std::collections::HashMap;

use pinyin::ToPinyinMulti;

/// At most this many readings are indexed per word (a word of polyphonic characters has the
/// product of their counts).
const MAX_READINGS: usize = 16;
/// Shorter runs of letters are abbreviations (`jd`, `kf`, `yhq`, `ok`), not sentences.
const MIN_RUN: usize = 4;

/// The words of one knowledge base by their pinyin.
#[derive(Debug, Default)]
pub struct PinyinReader {
    /// Toneless pinyin, syllables run together → the word with the highest rank.
    words: HashMap<String, (u32, String)>,
    /// The longest key, in bytes.
    longest: usize,
}

impl PinyinReader {
    /// Indexes `words` with their rank: where two words read the same (是 事 时 `shi`), the
    /// higher rank is taken.
    pub fn new<'a>(words: impl IntoIterator<Item = (&'a str, u32)>) -> PinyinReader {
        let mut reader = PinyinReader::default();
        for (word, rank) in words {
            for reading in readings(word) {
                reader.longest = reader.longest.max(reading.len());
                match reader.words.get(&reading) {
                    Some((r, _)) if *r >= rank => {}
                    _ => {
                        reader.words.insert(reading, (rank, word.to_owned()));
                    }
                }
            }
        }
        reader
    }

    /// The text with every run of pinyin that reads entirely as known words replaced by those
    /// words (separated by spaces, so the segmenter keeps them apart); `None` when nothing was
    /// replaced.
    pub fn read(&self, text: &str) -> Option<String> {
        if self.words.is_empty() || !text.bytes().any(|b| b.is_ascii_alphabetic()) {
            return None;
        }
        let mut out = String::with_capacity(text.len() * 2);
        let mut changed = false;
        let mut rest = text;
        while let Some(start) = rest.find(|c: char| c.is_ascii_alphabetic()) {
            out.push_str(&rest[..start]);
            let run = &rest[start..];
            let len = run.find(|c: char| !(c.is_ascii_alphabetic() || c == ' ' || c == '\'')).unwrap_or(run.len());
            let run = &run[..len];
            match self.words_of(run) {
                Some(words) => {
                    out.push(' ');
                    out.push_str(&words.join(" "));
                    out.push(' ');
                    changed = true;
                }
                None => out.push_str(run),
            }
            rest = &rest[start + len..];
        }
        out.push_str(rest);
        changed.then_some(out)
    }

    /// The fewest known words whose pinyin spells the run's letters exactly, if any.
    fn words_of(&self, run: &str) -> Option<Vec<&str>> {
        let letters: Vec<u8> = run.bytes().filter(u8::is_ascii_alphabetic).map(|b| b.to_ascii_lowercase()).collect();
        if letters.len() < MIN_RUN {
            return None;
        }
        let n = letters.len();
        // best[i]: the fewest words spelling letters[..i], and where the last one starts.
        let mut best: Vec<Option<(usize, usize)>> = vec![None; n + 1];
        best[0] = Some((0, 0));
        for end in 1..=n {
            for start in end.saturating_sub(self.longest)..end {
                let Some((count, _)) = best[start] else { continue };
                // Letters are ASCII, so any slice is a str.
                let key = std::str::from_utf8(&letters[start..end]).unwrap_or_default();
                if self.words.contains_key(key) && best[end].is_none_or(|(c, _)| count + 1 < c) {
                    best[end] = Some((count + 1, start));
                }
            }
        }
        let (count, _) = best[n]?;
        // One word is not a sentence (`hao`, `shipin` may be anything).
        if count < 2 {
            return None;
        }
        let mut words = Vec::with_capacity(count);
        let mut end = n;
        while end > 0 {
            let (_, start) = best[end]?;
            let key = std::str::from_utf8(&letters[start..end]).unwrap_or_default();
            words.push(self.words.get(key)?.1.as_str());
            end = start;
        }
        words.reverse();
        Some(words)
    }
}

/// The toneless readings of a word of Chinese characters (none if any character has none).
fn readings(word: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    for c in word.chars() {
        let Some(multi) = c.to_pinyin_multi() else { return Vec::new() };
        let mut next = Vec::new();
        for p in multi {
            for prefix in &out {
                if next.len() < MAX_READINGS {
                    next.push(format!("{prefix}{}", p.plain()));
                }
            }
        }
        out = next;
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader() -> PinyinReader {
        let words =
            ["退货", "地址", "什么", "时候", "发货", "发", "我", "一下", "怎么", "积分", "在", "哪", "查", "还"];
        PinyinReader::new(words.iter().map(|w| (*w, 1)))
    }

    #[test]
    fn spaced_and_run_together_pinyin_read_as_words() {
        let r = reader();
        assert_eq!(r.read("tui huo di zhi fa wo yi xia").as_deref(), Some(" 退货 地址 发 我 一下 "));
        assert_eq!(r.read("shenme shihou fahuo").as_deref(), Some(" 什么 时候 发货 "));
        assert_eq!(r.read("积分zai na cha").as_deref(), Some("积分 在 哪 查 "));
        // Polyphonic: 还 reads huan as well as hai.
        assert_eq!(r.read("huan huo").as_deref(), None, "货 alone is not a known word");
    }

    #[test]
    fn abbreviations_english_and_partial_runs_are_left_alone() {
        let r = reader();
        assert_eq!(r.read("jd能发吗"), None);
        assert_eq!(r.read("yhq在哪领"), None);
        assert_eq!(r.read("iphone case"), None);
        assert_eq!(r.read("退货"), None);
        // `fahuo` is one word: not read as a sentence.
        assert_eq!(r.read("fahuo"), None);
    }
}
