//! Masking accuracy on the generated corpus (`shared/corpus/gen_corpus.py --n 3000 --seed 7`),
//! scored by `huiliu_privacy::mask::scoring` (the definitions are there). Targets:
//! personal-data recall ≥ 99.5 %, keep items altered ≤ 0.1 %. The full-size figures come from
//! `cargo bench -p huiliu-gateway --bench mask_accuracy`.
//!
//! Skipped, with a message on stderr, when `python3` or the generator is not available.

use std::path::PathBuf;
use std::process::Command;

use huiliu_privacy::mask::scoring::Score;
use huiliu_privacy::{MaskConfig, Masker};

fn generator() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/gen_corpus.py")
}

#[test]
fn corpus_recall_and_keep_targets() {
    let script = generator();
    if !script.is_file() {
        eprintln!("SKIPPED corpus_recall_and_keep_targets: {} not found", script.display());
        return;
    }
    let output = match Command::new("python3").arg(&script).args(["--n", "3000", "--seed", "7"]).output() {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            eprintln!(
                "SKIPPED corpus_recall_and_keep_targets: generator failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            return;
        }
        Err(e) => {
            eprintln!("SKIPPED corpus_recall_and_keep_targets: cannot run python3: {e}");
            return;
        }
    };
    let corpus = String::from_utf8(output.stdout).expect("the corpus is UTF-8");
    let masker = Masker::new(&MaskConfig::default()).expect("the defaults compile");
    let mut score = Score::default();
    for line in corpus.lines() {
        score.add_json(&masker, line);
    }
    let report = score.report();
    eprintln!("{report}");
    assert_eq!(score.messages, 3000, "{report}");
    assert_eq!(score.bad_lines, 0, "{report}");
    assert_eq!(score.inconsistent, 0, "{report}");
    assert!(score.items > 500, "too few personal-data items to measure: {report}");
    assert!(score.recall() >= 0.995, "recall below 99.5%:\n{report}");
    assert!(score.keep_altered_rate() <= 0.001, "more than 0.1% of keep items altered:\n{report}");
}
