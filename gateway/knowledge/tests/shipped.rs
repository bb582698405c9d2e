//! The shipped knowledge base (config/faq.toml) and its evaluation set stay usable: the file
//! checks, holds at least 60 entries, every label of the evaluation set names one of them, and a
//! few questions land where a shop would expect.

use std::path::Path;

use huiliu_knowledge::{Context, KnowledgeBase};

fn shipped() -> KnowledgeBase {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
    let cfg = huiliu_knowledge::load(&dir).expect("config/faq.toml checks").expect("config/faq.toml exists");
    KnowledgeBase::build(&cfg)
}

#[test]
fn the_shipped_file_checks_and_the_evaluation_set_matches_it() {
    let kb = shipped();
    assert!(kb.entries().len() >= 60, "{} entries", kb.entries().len());
    let ids: Vec<&str> = kb.entries().map(|e| e.id.as_str()).collect();
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/faq_eval.tsv")).unwrap();
    let rows: Vec<&str> = text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).collect();
    assert!(rows.len() >= 300, "{} evaluation rows", rows.len());
    for row in rows {
        let label = row.split('\t').next().unwrap();
        assert!(label == "-" || ids.contains(&label), "unknown label in: {row}");
        assert!(row.split('\t').count() >= 2, "no question in: {row}");
    }
}

#[test]
fn common_questions_land_on_their_entries() {
    let kb = shipped();
    let id = |text: &str| kb.answer(text, &Context::default()).map(|m| kb.entry(m.entry).unwrap().id.clone());
    assert_eq!(id("亲，这款包邮吗？").as_deref(), Some("free-shipping"));
    assert_eq!(id("七天无理由可以退吗").as_deref(), Some("return-7days"));
    assert_eq!(id("转人工").as_deref(), Some("human"));
    assert_eq!(id("今天天气怎么样"), None);
}

/// The semantic re-ranking puts the entry a question means first where the shared words point
/// elsewhere (rows of the evaluation set the words alone got wrong), and `semantic_weight = 0`
/// turns it off.
#[test]
fn meaning_reranks_what_the_words_alone_get_wrong() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
    let mut cfg = huiliu_knowledge::load(&dir).unwrap().unwrap();
    let first = |kb: &KnowledgeBase, text: &str| {
        let found = kb.lookup(text, &Context::default(), 3);
        (kb.entry(found.matches[0].entry).unwrap().id.clone(), found.matches[0].semantic)
    };
    let kb = KnowledgeBase::build(&cfg);
    cfg.knowledge.semantic_weight = 0.0;
    let words_only = KnowledgeBase::build(&cfg);
    for (text, words, meant) in [
        ("拍两件要运费吗？", "bundle", "free-shipping"),
        ("我是油性皮肤能用吗", "allergy", "skin-type"),
        ("燃气热水器怎么选气源", "size-advice", "heater-gas"),
        ("满减能和优惠券一起用吗", "coupon", "coupon-stack"),
    ] {
        let (id, semantic) = first(&kb, text);
        assert_eq!(id, meant, "{text}");
        assert!(semantic > 0.5, "{text}: semantic {semantic}");
        assert_eq!(first(&words_only, text), (words.to_string(), 0.0), "{text} by words only");
    }
}

/// The shipped heaters: one question, an answer per product, the general one for the rest.
#[test]
fn the_shipped_per_product_entries_answer_for_their_product() {
    let kb = shipped();
    let id = |product: Option<&str>| {
        let ctx = Context { product, ..Context::default() };
        kb.answer("这款热水器功率多大呀", &ctx).map(|m| kb.entry(m.entry).unwrap().id.clone())
    };
    assert_eq!(id(Some("3556245366718399530")).as_deref(), Some("heater-power-e60"));
    assert_eq!(id(Some("3556245366718399531")).as_deref(), Some("heater-power-g16"));
    assert_eq!(id(Some("3556245366718399999")).as_deref(), Some("heater-power"));
    assert_eq!(id(None).as_deref(), Some("heater-power"));
    assert_eq!(kb.config().product_name("3556245366718399531"), Some("小汇燃气热水器G16（16升）"));
}

/// The blind evaluation set stays usable: 200 rows of id, question, topic, kind and a label that
/// names an entry of the shipped file (or "-").
#[test]
fn the_blind_evaluation_set_matches_the_shipped_file() {
    let kb = shipped();
    let ids: Vec<&str> = kb.entries().map(|e| e.id.as_str()).collect();
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/faq_eval_blind.tsv")).unwrap();
    let rows: Vec<&str> = text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).collect();
    assert_eq!(rows[0], "id\tquestion\ttopic\tkind\tlabel");
    assert_eq!(rows.len(), 201, "a header and 200 questions");
    for row in &rows[1..] {
        let cols: Vec<&str> = row.split('\t').collect();
        assert_eq!(cols.len(), 5, "{row}");
        assert!(cols[4] == "-" || ids.contains(&cols[4]), "unknown label in: {row}");
    }
}

/// The development sets' messages, for properties that must hold on real buyer text.
fn dev_messages() -> Vec<String> {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut out = Vec::new();
    for (file, column) in [("faq_eval.tsv", 1), ("faq_eval_blind.tsv", 1), ("faq_eval_blind2.tsv", 1)] {
        let text = std::fs::read_to_string(data.join(file)).unwrap();
        for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty() && !l.starts_with("id\t")) {
            out.push(line.split('\t').nth(column).unwrap().to_string());
        }
    }
    assert!(out.len() >= 700, "{} messages", out.len());
    out
}

/// Asking for more entries never changes the first ones: the re-ranking and the confidence look
/// at the same 10 candidates whatever `top` is (`huiliu faq try --top 20` shows what the bot does).
#[test]
fn more_entries_asked_for_change_none_of_the_first() {
    let kb = shipped();
    let key = |m: &huiliu_knowledge::Match| (m.entry, m.confidence, m.semantic);
    for text in dev_messages() {
        let three: Vec<_> = kb.lookup(&text, &Context::default(), 3).matches.iter().map(key).collect();
        let twenty: Vec<_> = kb.lookup(&text, &Context::default(), 20).matches.iter().map(key).collect();
        assert_eq!(three[..], twenty[..three.len()], "{text}");
    }
}

/// A complaint is handed over whether or not meaning re-ranks the candidates: the check looks at
/// the three entries most similar in words, which the re-ranking cannot reorder away.
#[test]
fn complaints_are_handed_over_with_and_without_the_reranking() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
    let mut cfg = huiliu_knowledge::load(&dir).unwrap().unwrap();
    let kb = KnowledgeBase::build(&cfg);
    cfg.knowledge.semantic_weight = 0.0;
    let words_only = KnowledgeBase::build(&cfg);
    let complaint = |kb: &KnowledgeBase, text: &str| {
        let (decision, found) = kb.decide(text, &Context::default(), &["complaint"]);
        assert!(found.matches.len() <= 3, "{text}");
        matches!(decision, huiliu_knowledge::Decision::HandOver(huiliu_knowledge::HandOver::Category(_)))
    };
    let mut handed = 0;
    for text in dev_messages() {
        let by_words = complaint(&words_only, &text);
        assert_eq!(complaint(&kb, &text), by_words, "{text}");
        handed += usize::from(by_words);
    }
    assert!(handed >= 10, "{handed} complaints handed over");
}
