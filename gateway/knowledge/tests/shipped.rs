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
