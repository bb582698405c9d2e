//! The compiled knowledge base: every standard question and variant is a document of terms
//! in an inverted index. A message is scored against the documents that share a term with it:
//!
//! - **confidence** (0–1, compared with the threshold): the cosine of the idf-weighted term sets
//!   of the message and the document (words, and at half weight the character pairs inside
//!   words, so 实拍图 still meets 实拍). Words of the message the knowledge base has never seen
//!   count against it with the highest idf, so a question about something the shop never wrote
//!   down stays below the threshold instead of riding on one shared word. The best entry's
//!   confidence is then lowered by 0.6 × the runner-up entry's: a message that two entries
//!   answer about equally well is handed over rather than guessed.
//!   A message often asks one thing twice, in two phrasings ("有色差吗 实物跟图一样不", "是正品吗？
//!   有防伪码可以查吗"): the words of the message found in *another* question or variant of the
//!   same entry count as if the scored document had them too (added to both sides of the cosine),
//!   when few entries have them (see [`POOL_MAX_ENTRIES`]).
//! - **BM25** (k1 = 1.2, b = 0.75): reported beside it and used to break ties.
//! - **semantic** (`[knowledge] semantic_weight`, default 1; 0 turns it off): the best
//!   [`RERANK_CANDIDATES`] entries by cosine are re-ranked by cosine + weight × the semantic
//!   similarity of the message and the entry's nearest question or variant, each a sum of word
//!   vectors distilled from a sentence-embedding model ([`crate::vectors`]): 满减能和优惠券一起用吗
//!   goes to the entry on stacking coupons, where the words alone chose the one on coupons. The
//!   best entry's confidence then also moves by [`SEMANTIC_MARGIN`] × how much nearer in meaning it
//!   is than the nearest other candidate (less, when another is nearer in meaning but it won on
//!   words). Measured on the development sets (docs/performance.md,
//!   智能客服 eighth round): top-1 83.9 → 89.9 %, 77.2 → 80.2 %, 73.2 → 76.5 % on the three.
//!
//! An entry's score is its best document's. Entries whose conditions do not hold for the
//! conversation are skipped, and so is a general entry (no `products` condition) that a
//! **per-product entry** replaces: an entry naming the conversation's product whose standard
//! question has the same words (once particles and synonyms are folded) answers that question
//! for that product instead — one question, an answer per product. Chosen by measurement: `cargo bench -p huiliu-knowledge --bench faq`
//! prints precision and coverage for both orderings.

use std::collections::HashMap;

use crate::config::{Entry, FaqConfig, Hours};
use crate::text::Segmenter;
use crate::vectors::{WordVectors, dot, normalize};

const K1: f64 = 1.2;
const B: f64 = 0.75;
/// How much a character pair weighs against a word of the same rarity.
const PAIR_WEIGHT: f64 = 0.5;
/// The share of the runner-up entry's cosine taken off the best one's (measured on the
/// evaluation set: 0 → 37 % coverage at ≥ 95 % precision, 0.6 → 50 %).
const RUNNER_UP_PENALTY: f64 = 0.6;
/// A word of the message found in another question or variant of an entry counts for it only
/// when at most this many entries have the word: 色差 or 防伪 point at their entry, 能 怎么 一直
/// (in many entries' variants) would pile up on whichever entry has the most variants (measured:
/// 3–4 best on the three evaluation sets; unlimited lost blind set 2's widest coverage at ≥ 95 %,
/// 24.5 → 12.0 %).
const POOL_MAX_ENTRIES: u32 = 4;
/// How much an unknown one-character word weighs (mostly particles: 不 呗 没).
const SHORT_UNKNOWN_WEIGHT: f64 = 0.5;
/// How many of the best entries by cosine the semantic similarity re-ranks.
pub const RERANK_CANDIDATES: usize = 10;
/// The share of the best entry's semantic lead over the other candidates added to its
/// confidence (measured in the study at 384 dimensions: 0 → 56.4 % cross-validated coverage at
/// ≥ 95 % on the dev sets, 0.25 → 58.3 %, 0.5 → 58.0 %).
const SEMANTIC_MARGIN: f64 = 0.25;

/// A term's weight in the cosine: its idf, less for character pairs.
fn weight(term: &str, idf: f64) -> f64 {
    if term.starts_with('#') { idf * PAIR_WEIGHT } else { idf }
}

/// What the conversation is known to be about; `None` = unknown (a condition on it fails,
/// except `minute`, where unknown skips the hours condition).
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    pub platform: Option<&'a str>,
    pub shop: Option<&'a str>,
    pub product: Option<&'a str>,
    pub order_state: Option<&'a str>,
    /// Beijing time, minutes since midnight.
    pub minute: Option<u16>,
}

/// One entry's score for a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    /// Index of the entry in [`KnowledgeBase::entries`].
    pub entry: usize,
    /// Compared with the threshold: for the best match the similarity, less 0.6 × the runner-up's,
    /// plus 0.25 × its lead in `semantic` over the nearest other candidate (counted from 0),
    /// within 0–1; the others keep their similarity.
    pub confidence: f64,
    /// The idf-weighted cosine of the message and the best question or variant.
    pub similarity: f64,
    pub bm25: f64,
    /// The semantic similarity (−1–1) of the message and the entry's nearest question or variant
    /// in meaning (which need not be `question`, the nearest in words); 0 when the semantic
    /// re-ranking is off or none of the message's words is in the table.
    pub semantic: f64,
    /// The question or variant that scored best.
    pub question: String,
    /// The terms of the message found in it.
    pub matched: Vec<String>,
}

/// What the bot would do with a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Answer(Match),
    HandOver(HandOver),
}

/// Why the bot hands a message to an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandOver {
    /// No entry is sure enough.
    LowConfidence,
    /// The message is of a category a person must handle (complaint).
    Category(String),
}

/// The result of looking a message up.
#[derive(Debug, Clone, PartialEq)]
pub struct Lookup {
    /// The message's terms, after segmentation, stopwords and synonyms.
    pub terms: Vec<String>,
    /// Best first, at most the number asked for.
    pub matches: Vec<Match>,
}

struct Doc {
    entry: usize,
    text: String,
    terms: Vec<u32>,
    norm: f64,
    /// BM25's term-frequency factor for this document's length, (k1 + 1) / (1 + k1 (1 − b +
    /// b·len/avg)): a term's BM25 here is its idf times this.
    bm25_factor: f64,
}

/// A lookup's working memory, kept per thread so that a lookup allocates nothing in proportion
/// to the knowledge base: per document the cosine's dot product and BM25, per entry its best
/// document; and the lists of the ones touched, which are all that is read and reset.
#[derive(Default)]
struct Scratch {
    /// Per document: the cosine's dot product, BM25, and the dot product of the words that pool.
    docs: Vec<(f64, f64, f64)>,
    touched_docs: Vec<u32>,
    entries: Vec<Option<(u32, f64, f64)>>,
    touched_entries: Vec<u32>,
    /// Per entry: the summed squared weights of the message's terms found in any of its
    /// documents (only words of at most [`POOL_MAX_ENTRIES`] entries), and the last term counted
    /// (its position + 1).
    union: Vec<(f64, u32)>,
    /// The message's vector for the semantic re-ranking.
    message: Vec<f32>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

struct Compiled {
    entry: Entry,
    hours: Option<Hours>,
    /// The per-product entries that answer this (general) entry's question for their products.
    replaced_by: Vec<usize>,
}

/// The semantic re-ranking's side of a knowledge base.
struct Semantic {
    table: &'static WordVectors,
    weight: f64,
    /// Per document, its unit vector (`table.dims()` values each).
    docs: Vec<f32>,
    /// Per entry, its documents (they are consecutive).
    entry_docs: Vec<std::ops::Range<usize>>,
}

/// An entry a lookup found, with its best document and their scores.
struct Candidate {
    entry: usize,
    doc: u32,
    /// The cosine with the message (pooled over the entry's documents).
    similarity: f64,
    bm25: f64,
    /// The semantic similarity with the message; 0 until the re-ranking sets it.
    semantic: f64,
}

impl Semantic {
    /// The similarity of a message's unit vector and the entry's nearest document.
    fn similarity(&self, entry: usize, message: &[f32]) -> f64 {
        let dims = self.table.dims();
        self.entry_docs[entry]
            .clone()
            .map(|d| dot(&self.docs[d * dims..(d + 1) * dims], message))
            .fold(f32::NEG_INFINITY, f32::max) as f64
    }
}

/// A knowledge base ready to answer.
pub struct KnowledgeBase {
    segmenter: Segmenter,
    entries: Vec<Compiled>,
    docs: Vec<Doc>,
    vocab: HashMap<String, u32>,
    idf: Vec<f64>,
    weights: Vec<f64>,
    postings: Vec<Vec<u32>>,
    /// Per term: how many entries have it in a question or variant.
    entry_df: Vec<u32>,
    unknown_idf: f64,
    default_threshold: f64,
    shop_thresholds: HashMap<String, f64>,
    semantic: Option<Semantic>,
    config: FaqConfig,
}

impl KnowledgeBase {
    /// Compiles a checked configuration.
    pub fn build(cfg: &FaqConfig) -> KnowledgeBase {
        let groups: Vec<Vec<String>> = cfg.synonyms.iter().map(|g| g.words.clone()).collect();
        let mut segmenter = Segmenter::new(&groups, &cfg.knowledge.words, &cfg.knowledge.stopwords);
        let mut vocab: HashMap<String, u32> = HashMap::new();
        let mut docs = Vec::new();
        let mut entries = Vec::new();
        for (i, entry) in cfg.entry.iter().enumerate() {
            for text in std::iter::once(&entry.question).chain(&entry.variants) {
                let terms = segmenter
                    .terms(text)
                    .into_iter()
                    .map(|t| {
                        let next = vocab.len() as u32;
                        *vocab.entry(t).or_insert(next)
                    })
                    .collect();
                docs.push(Doc { entry: i, text: text.clone(), terms, norm: 0.0, bm25_factor: 0.0 });
            }
            let hours = entry.when.hours.as_deref().and_then(Hours::parse);
            entries.push(Compiled { entry: entry.clone(), hours, replaced_by: Vec::new() });
        }
        // A per-product entry replaces the general entries asking the same question.
        let question_words = |e: &Entry| {
            let mut words: Vec<String> = segmenter.terms(&e.question);
            words.sort();
            words.dedup();
            words
        };
        let per_product: Vec<(usize, Vec<String>)> = cfg
            .entry
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.when.products.is_empty())
            .map(|(i, e)| (i, question_words(e)))
            .filter(|(_, words)| !words.is_empty())
            .collect();
        if !per_product.is_empty() {
            for (i, entry) in cfg.entry.iter().enumerate() {
                if !entry.when.products.is_empty() {
                    continue;
                }
                let words = question_words(entry);
                entries[i].replaced_by = per_product.iter().filter(|(_, w)| *w == words).map(|(p, _)| *p).collect();
            }
        }
        let mut postings = vec![Vec::new(); vocab.len()];
        for (d, doc) in docs.iter().enumerate() {
            for &t in &doc.terms {
                postings[t as usize].push(d as u32);
            }
        }
        // Each phrasing's vector, read as its terms were (before pinyin reading is set up).
        let semantic = (cfg.knowledge.semantic_weight > 0.0).then(|| {
            let table = WordVectors::shipped();
            let mut vectors = Vec::with_capacity(docs.len() * table.dims());
            let mut entry_docs = vec![0..0; entries.len()];
            for (d, doc) in docs.iter().enumerate() {
                let start = vectors.len();
                vectors.resize(start + table.dims(), 0.0);
                segmenter.terms_and_words(&doc.text, |w| table.add(w, &mut vectors[start..]));
                normalize(&mut vectors[start..]);
                let range = &mut entry_docs[doc.entry];
                if range.end <= range.start {
                    *range = d..d;
                }
                range.end = d + 1;
            }
            Semantic { table, weight: cfg.knowledge.semantic_weight, docs: vectors, entry_docs }
        });
        // Pinyin reads as the base's own words: a longer word before a shorter one that reads
        // the same, then the more common.
        segmenter.read_pinyin(vocab.iter().filter(|(t, _)| !t.starts_with('#')).map(|(t, &id)| {
            let rank = (t.chars().count() as u32) * 10_000 + postings[id as usize].len() as u32;
            (t.as_str(), rank)
        }));
        let entry_df: Vec<u32> = postings
            .iter()
            .map(|p| {
                let mut es: Vec<usize> = p.iter().map(|&d| docs[d as usize].entry).collect();
                es.dedup();
                es.len() as u32
            })
            .collect();
        let n = docs.len() as f64;
        let idf_of = |df: f64| (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
        let idf: Vec<f64> = postings.iter().map(|p| idf_of(p.len() as f64)).collect();
        let mut names = vec![""; vocab.len()];
        for (name, &t) in &vocab {
            names[t as usize] = name.as_str();
        }
        let weights: Vec<f64> = names.iter().zip(&idf).map(|(name, &idf)| weight(name, idf)).collect();
        for doc in &mut docs {
            doc.norm = doc.terms.iter().map(|&t| weights[t as usize].powi(2)).sum::<f64>().sqrt();
        }
        let avg_len = (docs.iter().map(|d| d.terms.len()).sum::<usize>() as f64 / n.max(1.0)).max(1.0);
        for doc in &mut docs {
            let len = doc.terms.len() as f64;
            doc.bm25_factor = (K1 + 1.0) / (1.0 + K1 * (1.0 - B + B * len / avg_len));
        }
        KnowledgeBase {
            segmenter,
            entries,
            docs,
            vocab,
            idf,
            weights,
            postings,
            entry_df,
            unknown_idf: idf_of(0.0),
            default_threshold: cfg.knowledge.threshold,
            shop_thresholds: cfg.shop.iter().filter_map(|s| Some((s.id.clone(), s.threshold?))).collect(),
            semantic,
            config: cfg.clone(),
        }
    }

    /// The configuration it was built from (bot modes, hand-over words and notice).
    pub fn config(&self) -> &FaqConfig {
        &self.config
    }

    /// The entries, in file order.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = &Entry> {
        self.entries.iter().map(|c| &c.entry)
    }

    /// One entry by index.
    pub fn entry(&self, index: usize) -> Option<&Entry> {
        self.entries.get(index).map(|c| &c.entry)
    }

    /// The confidence threshold for a shop.
    pub fn threshold(&self, shop: Option<&str>) -> f64 {
        shop.and_then(|s| self.shop_thresholds.get(s)).copied().unwrap_or(self.default_threshold)
    }

    /// The `top` best entries for a message whose conditions hold in `ctx`.
    pub fn lookup(&self, text: &str, ctx: &Context<'_>, top: usize) -> Lookup {
        // The terms, and the message's vector summed from the same cut (left empty without the
        // semantic re-ranking, zero when none of its words has a vector).
        let terms = SCRATCH.with(|scratch| {
            let message = &mut scratch.borrow_mut().message;
            message.clear();
            match &self.semantic {
                Some(semantic) => {
                    message.resize(semantic.table.dims(), 0.0);
                    let terms = self.segmenter.terms_and_words(text, |w| semantic.table.add(w, message));
                    normalize(message);
                    terms
                }
                None => self.segmenter.terms(text),
            }
        });
        let mut known = Vec::with_capacity(terms.len());
        let mut q_norm = 0.0;
        for term in &terms {
            match self.vocab.get(term) {
                Some(&t) => {
                    q_norm += self.weights[t as usize].powi(2);
                    known.push(t);
                }
                None => {
                    let short = !term.starts_with('#') && term.chars().count() == 1;
                    let w = weight(term, self.unknown_idf) * if short { SHORT_UNKNOWN_WEIGHT } else { 1.0 };
                    q_norm += w * w;
                }
            }
        }
        let q_norm = q_norm.sqrt();
        let mut ranked: Vec<Candidate> = SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            self.score(&known, q_norm, ctx, &mut scratch)
        });
        // Best first (cosine, then BM25, then file order); only the first `top` are kept, and
        // the runner-up's cosine (or the candidates the semantic similarity re-ranks), so a
        // partial sort does.
        let order = |a: &Candidate, b: &Candidate| {
            (b.similarity, b.bm25)
                .partial_cmp(&(a.similarity, a.bm25))
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(a.entry.cmp(&b.entry))
        };
        let keep = top.max(2).max(if self.semantic.is_some() { RERANK_CANDIDATES } else { 0 });
        if ranked.len() > keep {
            ranked.select_nth_unstable_by(keep - 1, order);
            ranked.truncate(keep);
        }
        ranked.sort_by(order);
        for c in &mut ranked {
            c.similarity = c.similarity.min(1.0);
        }
        // Only the first RERANK_CANDIDATES by cosine are re-ranked and weighed against each other,
        // whatever `top` is: asking for more entries never changes the first ones.
        let pool = ranked.len().min(RERANK_CANDIDATES);
        if let Some(semantic) = self.semantic.as_ref().filter(|_| pool > 0) {
            SCRATCH.with(|scratch| {
                let message = &scratch.borrow().message;
                if message.iter().any(|&v| v != 0.0) {
                    for c in &mut ranked {
                        c.semantic = semantic.similarity(c.entry, message);
                    }
                }
            });
            // A stable sort: equal scores keep the lexical order.
            let score = |c: &Candidate| c.similarity + semantic.weight * c.semantic;
            ranked[..pool].sort_by(|a, b| score(b).total_cmp(&score(a)));
        }
        // An answer is only as sure as it is distinct from the other candidates: in words (the
        // runner-up's cosine) and in meaning (the nearest other's semantic similarity, counted
        // from 0, so a lone candidate's lead is its own similarity: measured so, and no worse
        // than counting only real others, docs/performance.md).
        let others = |f: fn(&Candidate) -> f64| ranked[..pool].iter().skip(1).map(f).fold(0.0, f64::max);
        let (second, second_meaning) = (others(|c| c.similarity), others(|c| c.semantic));
        let matches = ranked
            .iter()
            .take(top)
            .enumerate()
            .map(|(rank, c)| {
                let confidence = if rank == 0 {
                    (c.similarity - RUNNER_UP_PENALTY * second + SEMANTIC_MARGIN * (c.semantic - second_meaning))
                        .clamp(0.0, 1.0)
                } else {
                    c.similarity
                };
                let doc = &self.docs[c.doc as usize];
                let matched = terms
                    .iter()
                    .filter(|t| !t.starts_with('#'))
                    .filter(|t| self.vocab.get(*t).is_some_and(|id| doc.terms.contains(id)))
                    .cloned()
                    .collect();
                Match {
                    entry: c.entry,
                    confidence,
                    similarity: c.similarity,
                    bm25: c.bm25,
                    semantic: c.semantic,
                    question: doc.text.clone(),
                    matched,
                }
            })
            .collect();
        Lookup { terms, matches }
    }

    /// Every entry that shares a term with the message and whose conditions hold, with its best
    /// document (no semantic similarity yet), in no order.
    fn score(&self, known: &[u32], q_norm: f64, ctx: &Context<'_>, s: &mut Scratch) -> Vec<Candidate> {
        if s.docs.len() < self.docs.len() {
            s.docs.resize(self.docs.len(), (0.0, 0.0, 0.0));
        }
        if s.entries.len() < self.entries.len() {
            s.entries.resize(self.entries.len(), None);
            s.union.resize(self.entries.len(), (0.0, 0));
        }
        for (ti, &t) in known.iter().enumerate() {
            let idf = self.idf[t as usize];
            let poolable = self.entry_df[t as usize] <= POOL_MAX_ENTRIES;
            let w2 = self.weights[t as usize].powi(2);
            for &d in &self.postings[t as usize] {
                let e = self.docs[d as usize].entry;
                if s.union[e].1 != ti as u32 + 1 {
                    s.union[e] = (s.union[e].0 + if poolable { w2 } else { 0.0 }, ti as u32 + 1);
                }
                let slot = &mut s.docs[d as usize];
                if *slot == (0.0, 0.0, 0.0) {
                    s.touched_docs.push(d);
                }
                slot.0 += w2;
                if poolable {
                    slot.2 += w2;
                }
                slot.1 += idf * self.docs[d as usize].bm25_factor;
            }
        }
        for i in 0..s.touched_docs.len() {
            let d = s.touched_docs[i];
            let (dot, bm25, pooled) = std::mem::take(&mut s.docs[d as usize]);
            let doc = &self.docs[d as usize];
            let e = doc.entry;
            if s.entries[e].is_none() {
                if !self.applies(e, ctx) {
                    // Marked as seen with an impossible score, skipped below.
                    s.entries[e] = Some((u32::MAX, f64::NEG_INFINITY, 0.0));
                    s.touched_entries.push(e as u32);
                    continue;
                }
                s.touched_entries.push(e as u32);
            } else if s.entries[e].is_some_and(|b| b.0 == u32::MAX) {
                continue;
            }
            // The message's words that another question or variant of the same entry has count as
            // if this document had them too ("有色差吗 实物跟图一样不": 色差 from the question,
            // 实物 一样 from a variant).
            let extra = (s.union[e].0 - pooled).max(0.0);
            let cos = if q_norm > 0.0 && doc.norm > 0.0 {
                (dot + extra) / (q_norm * (doc.norm * doc.norm + extra).sqrt())
            } else {
                0.0
            };
            let slot = &mut s.entries[e];
            // The best document of the entry; on a tie, the first in the file.
            match slot {
                Some(b) if (cos, bm25) > (b.1, b.2) || ((cos, bm25) == (b.1, b.2) && d < b.0) => *b = (d, cos, bm25),
                Some(_) => {}
                None => *slot = Some((d, cos, bm25)),
            }
        }
        s.touched_docs.clear();
        let mut found = Vec::with_capacity(s.touched_entries.len());
        for &e in &s.touched_entries {
            s.union[e as usize] = (0.0, 0);
            if let Some((doc, similarity, bm25)) = s.entries[e as usize].take()
                && doc != u32::MAX
            {
                found.push(Candidate { entry: e as usize, doc, similarity, bm25, semantic: 0.0 });
            }
        }
        s.touched_entries.clear();
        found
    }

    /// The best entry at or above the shop's threshold, if any: what the bot would answer.
    pub fn answer(&self, text: &str, ctx: &Context<'_>) -> Option<Match> {
        let threshold = self.threshold(ctx.shop);
        self.lookup(text, ctx, 1).matches.into_iter().next().filter(|m| m.confidence >= threshold)
    }

    /// What the bot does with a message: answer with the best entry, or hand over — at once
    /// when any of the three entries most similar in words of a category in
    /// `hand_over_categories` (complaints) is as similar as the threshold (the semantic
    /// re-ranking cannot push one out of them), else when nothing reaches the threshold. The
    /// lookup comes back with the best three.
    pub fn decide(&self, text: &str, ctx: &Context<'_>, hand_over_categories: &[&str]) -> (Decision, Lookup) {
        let threshold = self.threshold(ctx.shop);
        let mut found = self.lookup(text, ctx, RERANK_CANDIDATES);
        let category = |m: &Match| self.entry(m.entry).and_then(|e| e.category.clone());
        // The ten are the first ten by cosine whatever the re-ranking did; a stable sort of
        // their positions (no allocation at ten) keeps equal cosines in order.
        let mut by_words: [usize; RERANK_CANDIDATES] = std::array::from_fn(|i| i);
        let by_words = &mut by_words[..found.matches.len()];
        by_words.sort_by(|&a, &b| found.matches[b].similarity.total_cmp(&found.matches[a].similarity));
        let decision = if let Some(m) = by_words.iter().take(3).map(|&i| &found.matches[i]).find(|m| {
            m.similarity >= threshold && category(m).is_some_and(|c| hand_over_categories.contains(&c.as_str()))
        }) {
            Decision::HandOver(HandOver::Category(category(m).unwrap_or_default()))
        } else {
            match found.matches.first() {
                Some(m) if m.confidence >= threshold => Decision::Answer(m.clone()),
                _ => Decision::HandOver(HandOver::LowConfidence),
            }
        };
        found.matches.truncate(3);
        (decision, found)
    }

    /// Whether an entry answers in `ctx`: its conditions hold, and no per-product entry for the
    /// conversation's product replaces it.
    fn applies(&self, entry: usize, ctx: &Context<'_>) -> bool {
        self.conditions_hold(entry, ctx)
            && (ctx.product.is_none() || !self.entries[entry].replaced_by.iter().any(|&p| self.conditions_hold(p, ctx)))
    }

    fn conditions_hold(&self, entry: usize, ctx: &Context<'_>) -> bool {
        let c = &self.entries[entry];
        let when = &c.entry.when;
        let listed = |list: &[String], value: Option<&str>| {
            list.is_empty() || value.is_some_and(|v| list.iter().any(|x| x == v))
        };
        listed(&when.platforms, ctx.platform)
            && listed(&when.shops, ctx.shop)
            && listed(&when.products, ctx.product)
            && listed(&when.order_states, ctx.order_state)
            && match (c.hours, ctx.minute) {
                (Some(h), Some(m)) => h.contains(m),
                _ => true,
            }
    }
}

/// The values an answer's placeholders take; an unknown one reads as a polite default.
#[derive(Debug, Clone, Copy, Default)]
pub struct Vars<'a> {
    pub buyer: Option<&'a str>,
    pub order: Option<&'a str>,
    pub product: Option<&'a str>,
    pub shop: Option<&'a str>,
}

/// Fills an answer's placeholders.
pub fn render(template: &str, vars: &Vars<'_>) -> String {
    template
        .replace("{buyer}", vars.buyer.unwrap_or("亲"))
        .replace("{order}", vars.order.unwrap_or("您的订单"))
        .replace("{product}", vars.product.unwrap_or("这款商品"))
        .replace("{shop}", vars.shop.unwrap_or("本店"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    fn kb(text: &str) -> KnowledgeBase {
        KnowledgeBase::build(&parse(text, "faq.toml").unwrap())
    }

    const SMALL: &str = r#"
[knowledge]
threshold = 0.5
[[shop]]
id = "strict"
threshold = 0.99
[[synonyms]]
words = ["包邮", "免运费", "免邮"]
[[entry]]
id = "free-shipping"
question = "包邮吗"
variants = ["运费多少"]
answer = "全国包邮"
[[entry]]
id = "ship-time"
question = "什么时候发货"
variants = ["多久发货", "几天能发货"]
answer = "{buyer}，48小时内发货"
[[entry]]
id = "night"
question = "晚上有人吗"
answer = "夜间由智能客服为您服务"
[entry.when]
hours = "22:00-08:00"
platforms = ["taobao"]
"#;

    #[test]
    fn a_synonym_finds_the_entry_with_the_matched_terms() {
        let kb = kb(SMALL);
        let m = kb.answer("亲，这个免邮不？", &Context::default()).unwrap();
        assert_eq!(kb.entry(m.entry).unwrap().id, "free-shipping");
        assert_eq!(m.matched, ["包邮"]);
    }

    #[test]
    fn unknown_words_lower_the_confidence() {
        let kb = kb(SMALL);
        let plain = kb.lookup("多久发货", &Context::default(), 1).matches[0].confidence;
        let more = kb.lookup("多久发货到新疆的仓库要验资", &Context::default(), 1).matches[0].confidence;
        assert!(plain > 0.9 && more < plain, "{plain} {more}");
    }

    /// A message asking the same thing in two of an entry's phrasings is as sure as one asking
    /// it in one.
    #[test]
    fn two_phrasings_of_one_entry_count_together() {
        let kb = kb(r#"
[[entry]]
id = "color"
question = "有色差吗"
variants = ["实物和图片一样吗"]
answer = "x"
[[entry]]
id = "wrong"
question = "发的和拍的不一样"
answer = "x"
"#);
        let m = &kb.lookup("有色差吗 实物跟图片一样不", &Context::default(), 2).matches;
        assert_eq!(kb.entry(m[0].entry).unwrap().id, "color");
        assert!(m[0].similarity > 0.8, "{m:?}");
    }

    #[test]
    fn nothing_shared_is_no_match_and_shop_threshold_applies() {
        let kb = kb(SMALL);
        assert!(kb.lookup("衣服起球怎么办", &Context::default(), 3).matches.is_empty());
        let strict = Context { shop: Some("strict"), ..Context::default() };
        assert!(kb.answer("免运费吗，发货", &strict).is_none());
        assert!(kb.answer("免运费吗，发货", &Context::default()).is_some());
    }

    #[test]
    fn a_complaint_among_the_best_hands_over_even_when_another_entry_leads() {
        let kb = kb(r#"
[[entry]]
id = "fake"
question = "你们卖假货"
answer = "x"
category = "complaint"
[[entry]]
id = "complain"
question = "我要投诉"
answer = "x"
category = "complaint"
[[entry]]
id = "ship"
question = "什么时候发货"
answer = "x"
"#);
        let (d, _) = kb.decide("你们卖假货，我要投诉", &Context::default(), &["complaint"]);
        assert_eq!(d, Decision::HandOver(HandOver::Category("complaint".into())));
        let (d, _) = kb.decide("什么时候发货", &Context::default(), &["complaint"]);
        assert!(matches!(d, Decision::Answer(m) if kb.entry(m.entry).unwrap().id == "ship"));
        let (d, _) = kb.decide("衣服起球", &Context::default(), &["complaint"]);
        assert_eq!(d, Decision::HandOver(HandOver::LowConfidence));
    }

    #[test]
    fn conditions_filter_entries() {
        let kb = kb(SMALL);
        let at = |platform, minute| Context { platform: Some(platform), minute: Some(minute), ..Context::default() };
        assert!(kb.answer("晚上有人吗", &at("taobao", 23 * 60)).is_some());
        assert!(kb.answer("晚上有人吗", &at("taobao", 12 * 60)).is_none());
        assert!(kb.answer("晚上有人吗", &at("jd", 23 * 60)).is_none());
    }

    /// The per-thread working memory is left clean: the same lookups, interleaved between two
    /// bases of different sizes and conditions that skip entries, give the same answers.
    #[test]
    fn lookups_do_not_leak_into_each_other() {
        let small = kb(SMALL);
        let other = kb("[[entry]]\nid = \"a\"\nquestion = \"发票怎么开\"\nanswer = \"x\"\n");
        let night = Context { platform: Some("taobao"), minute: Some(23 * 60), ..Context::default() };
        let first: Vec<Lookup> =
            ["晚上有人吗", "多久发货", "免运费吗"].iter().map(|q| small.lookup(q, &night, 3)).collect();
        for _ in 0..3 {
            assert_eq!(other.lookup("发票怎么开", &Context::default(), 3).matches.len(), 1);
            let jd = Context { platform: Some("jd"), ..Context::default() };
            assert!(
                small.lookup("晚上有人吗", &jd, 3).matches.iter().all(|m| small.entry(m.entry).unwrap().id != "night")
            );
            let again: Vec<Lookup> =
                ["晚上有人吗", "多久发货", "免运费吗"].iter().map(|q| small.lookup(q, &night, 3)).collect();
            assert_eq!(again, first);
        }
        assert_eq!(small.entry(small.lookup("晚上有人吗", &night, 1).matches[0].entry).unwrap().id, "night");
        let day = Context { platform: Some("taobao"), minute: Some(12 * 60), ..Context::default() };
        assert!(
            small.lookup("晚上有人吗", &day, 3).matches.iter().all(|m| small.entry(m.entry).unwrap().id != "night")
        );
    }

    /// One question, an answer per product: the per-product entry replaces the general one for
    /// its product; other products and conversations with no known product get the general one.
    #[test]
    fn a_per_product_entry_answers_its_question_for_its_product() {
        let kb = kb(r#"
[[entry]]
id = "power"
question = "功率多大"
answer = "{product}有2200W和3000W两档"
[[entry]]
id = "power-gas"
question = "功率多大呀"
answer = "{product}用电约40W"
[entry.when]
products = ["gas-16"]
[[entry]]
id = "power-e60"
question = "功率多大"
answer = "{product}是3000W"
[entry.when]
products = ["e60", "e80"]
"#);
        let best = |product: Option<&str>| {
            let ctx = Context { product, ..Context::default() };
            let m = kb.answer("这款功率多大", &ctx).expect("answered");
            (kb.entry(m.entry).unwrap().id.clone(), (m.confidence * 100.0).round())
        };
        assert_eq!(best(None), ("power".into(), 100.0), "no product: the general answer, nothing competes");
        assert_eq!(best(Some("e80")), ("power-e60".into(), 100.0));
        assert_eq!(best(Some("gas-16")), ("power-gas".into(), 100.0), "the same words: 呀 is a particle");
        assert_eq!(best(Some("other")), ("power".into(), 100.0));
    }

    #[test]
    fn placeholders_fill_or_fall_back() {
        let vars = Vars { buyer: Some("王芳"), ..Vars::default() };
        assert_eq!(render("{buyer}，{order}已发出", &vars), "王芳，您的订单已发出");
    }
}
