//! Word vectors for the semantic re-ranking: a table of Chinese words, each with a vector
//! distilled from a sentence-embedding model (multilingual-e5-small, by
//! `data/distill_vectors.py`, which says how) and a weight (common words count less). A text's
//! vector is the weighted sum of its words' vectors, a word missing from the table counting by
//! its characters: no model runs at lookup time, and a sentence costs a few table reads.
//!
//! The table ships inside the crate (`data/word_vectors.bin`, 3.3 MiB). Its layout is ours (a
//! header, then per word its length-prefixed text, weight, scale and int8 values), read by hand:
//! a flat run of records needs no format crate.

use std::collections::HashMap;
use std::sync::OnceLock;

const MAGIC: &[u8; 4] = b"HLWV";
const VERSION: u32 = 1;

/// The table `data/distill_vectors.py` wrote.
const SHIPPED: &[u8] = include_bytes!("../data/word_vectors.bin");

/// A table of word vectors.
pub struct WordVectors {
    dims: usize,
    index: HashMap<String, u32>,
    /// Per word: its weight, its scale.
    meta: Vec<(f32, f32)>,
    /// Per word, `dims` values; value × scale is the vector.
    values: Vec<i8>,
}

impl std::fmt::Debug for WordVectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WordVectors").field("dims", &self.dims).field("words", &self.meta.len()).finish()
    }
}

impl WordVectors {
    /// The table shipped in the crate, read once.
    pub fn shipped() -> &'static WordVectors {
        static TABLE: OnceLock<WordVectors> = OnceLock::new();
        TABLE.get_or_init(|| WordVectors::parse(SHIPPED).expect("the shipped word_vectors.bin reads"))
    }

    /// Reads a table in `data/distill_vectors.py`'s layout.
    pub fn parse(bytes: &[u8]) -> Result<WordVectors, String> {
        let mut at = 0usize;
        let mut take = |n: usize| -> Result<&[u8], String> {
            let end =
                at.checked_add(n).filter(|&e| e <= bytes.len()).ok_or_else(|| format!("truncated at byte {at}"))?;
            let slice = &bytes[at..end];
            at = end;
            Ok(slice)
        };
        let u32_at = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let f32_at = |b: &[u8]| f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        if take(4)? != MAGIC {
            return Err("not a word vector table (no HLWV header)".into());
        }
        let version = u32_at(take(4)?);
        if version != VERSION {
            return Err(format!("version {version}, expected {VERSION}"));
        }
        let dims = u32_at(take(4)?) as usize;
        let count = u32_at(take(4)?) as usize;
        if dims == 0 || dims > 4096 {
            return Err(format!("{dims} dimensions"));
        }
        // A record is at least 9 bytes and the values: a damaged count cannot reserve more than
        // the file could hold.
        let count = count.min(bytes.len() / (dims + 9));
        let mut index = HashMap::with_capacity(count);
        let mut meta = Vec::with_capacity(count);
        let mut values = Vec::with_capacity(count * dims);
        for i in 0..count {
            let len = take(1)?[0] as usize;
            let word = std::str::from_utf8(take(len)?).map_err(|e| format!("word {i}: {e}"))?.to_string();
            let weight = f32_at(take(4)?);
            let scale = f32_at(take(4)?);
            if !(weight.is_finite() && scale.is_finite()) {
                return Err(format!("word {i} ({word}): weight or scale is not a number"));
            }
            values.extend(take(dims)?.iter().map(|&b| b as i8));
            meta.push((weight, scale));
            index.insert(word, i as u32);
        }
        if take(1).is_ok() {
            return Err(format!("{} bytes after the last word", bytes.len() - at + 1));
        }
        Ok(WordVectors { dims, index, meta, values })
    }

    /// The vectors' length.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// How many words the table has.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.meta.len()
    }

    /// Adds `word`'s weighted vector to `sum`; false when the word is not in the table.
    fn add_known(&self, word: &str, sum: &mut [f32]) -> bool {
        let Some(&i) = self.index.get(word) else { return false };
        let (weight, scale) = self.meta[i as usize];
        let start = i as usize * self.dims;
        let f = weight * scale;
        for (s, &v) in sum.iter_mut().zip(&self.values[start..start + self.dims]) {
            *s += f * v as f32;
        }
        true
    }

    /// Adds `word`'s weighted vector to `sum` (`dims()` values), or its characters' when the word
    /// is not in the table.
    pub fn add(&self, word: &str, sum: &mut [f32]) {
        if !self.add_known(word, sum) {
            let mut buf = [0u8; 4];
            for c in word.chars() {
                self.add_known(c.encode_utf8(&mut buf), sum);
            }
        }
    }

    /// The unit vector of a text given as its words (see [`WordVectors::add`]); all zeros when
    /// none of it is in the table.
    pub fn sentence<'a>(&self, words: impl IntoIterator<Item = &'a str>, out: &mut Vec<f32>) {
        out.clear();
        out.resize(self.dims, 0.0);
        for word in words {
            self.add(word, out);
        }
        normalize(out);
    }
}

/// Scales a vector to length 1 (all zeros stay zeros).
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// The dot product of two vectors of the same length (the cosine of two unit vectors).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(words: &[(&str, f32, [i8; 2])]) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        for n in [VERSION, 2, words.len() as u32] {
            b.extend(n.to_le_bytes());
        }
        for (w, weight, v) in words {
            b.push(w.len() as u8);
            b.extend(w.as_bytes());
            b.extend(weight.to_le_bytes());
            b.extend(0.5f32.to_le_bytes());
            b.extend(v.iter().map(|&x| x as u8));
        }
        b
    }

    #[test]
    fn a_sentence_is_the_weighted_sum_of_its_words_and_unknown_words_count_by_characters() {
        let t = WordVectors::parse(&table(&[("包邮", 1.0, [10, 0]), ("运", 1.0, [0, 10]), ("费", 1.0, [0, 10])]))
            .expect("reads");
        assert_eq!((t.dims(), t.len()), (2, 3));
        let mut v = Vec::new();
        t.sentence(["包邮"], &mut v);
        assert_eq!(v, vec![1.0, 0.0]);
        t.sentence(["运费"], &mut v);
        assert_eq!(v, vec![0.0, 1.0], "运费 is not in the table: 运 and 费 are");
        t.sentence(["包邮", "运费"], &mut v);
        assert!((v[0] - 1.0 / 5f32.sqrt()).abs() < 1e-6 && (v[1] - 2.0 / 5f32.sqrt()).abs() < 1e-6, "{v:?}");
        t.sentence(["?"], &mut v);
        assert_eq!(v, vec![0.0, 0.0], "nothing known: no direction");
    }

    #[test]
    fn a_damaged_table_is_refused_with_the_reason() {
        let good = table(&[("包邮", 1.0, [1, 2])]);
        assert!(WordVectors::parse(&good[..good.len() - 1]).unwrap_err().contains("truncated"));
        assert!(WordVectors::parse(b"NOPE").unwrap_err().contains("HLWV"));
        let mut extra = good.clone();
        extra.push(0);
        assert!(WordVectors::parse(&extra).unwrap_err().contains("after the last word"));
        let mut huge = good.clone();
        huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(WordVectors::parse(&huge).unwrap_err().contains("truncated"), "a damaged count reserves nothing huge");
    }

    #[test]
    fn the_shipped_table_reads_and_related_words_are_closer_than_unrelated_ones() {
        let t = WordVectors::shipped();
        assert_eq!(t.dims(), 128);
        assert!(t.len() > 20_000, "{} words", t.len());
        let v = |w: &str| {
            let mut v = Vec::new();
            t.sentence([w], &mut v);
            v
        };
        let (refund, money_back, weather) = (v("退款"), v("退钱"), v("天气"));
        assert!(dot(&refund, &money_back) > dot(&refund, &weather), "退款 nearer 退钱 than 天气");
    }
}
