//! Masking accuracy on the generated corpus. Prints figures; asserts nothing.
//!
//!     MASK_N=100000 CARGO_TARGET_DIR=… cargo bench -p huiliu-gateway --bench mask_accuracy
//!
//! Runs `python3 shared/corpus/gen_corpus.py --n $MASK_N --seed 7` (found through
//! `CARGO_MANIFEST_DIR/../../../shared`; `MASK_N` defaults to 100000), masks every text with the
//! default config and prints the figures defined in `huiliu_privacy::mask::scoring`:
//! recall of personal data (an item is caught only if its output span keeps nothing in clear
//! beyond the customary mask), recall per kind, and the share of keep items (order and
//! tracking numbers, prices, dates, SKUs) altered. Targets: recall ≥ 99.5 %, ≤ 0.1 % altered.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use huiliu_privacy::mask::scoring::Score;
use huiliu_privacy::{MaskConfig, Masker};

fn main() {
    let n: usize = std::env::var("MASK_N").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/gen_corpus.py");
    let generated = Command::new("python3").arg(&script).args(["--n", &n.to_string(), "--seed", "7"]).output();
    let corpus = match generated {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        Ok(o) => {
            println!("SKIPPED: {} failed: {}", script.display(), String::from_utf8_lossy(&o.stderr));
            return;
        }
        Err(e) => {
            println!("SKIPPED: cannot run python3 {}: {e}", script.display());
            return;
        }
    };
    let masker = Masker::new(&MaskConfig::default()).expect("default mask config");
    let mut score = Score::default();
    let start = Instant::now();
    for line in corpus.lines() {
        score.add_json(&masker, line);
    }
    let elapsed = start.elapsed();
    println!("corpus: gen_corpus.py --n {n} --seed 7 ({} bytes of JSON lines)", corpus.len());
    print!("{}", score.report());
    let pass = |ok: bool| if ok { "PASS" } else { "FAIL" };
    println!(
        "targets: recall >= 99.5% {}; keep items altered <= 0.1% {}",
        pass(score.recall() >= 0.995),
        pass(score.keep_altered_rate() <= 0.001)
    );
    println!("scored in {:.2} s (parse + mask + score)", elapsed.as_secs_f64());
}
