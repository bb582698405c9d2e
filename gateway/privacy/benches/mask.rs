//! Masking and compliance speed. Prints figures; asserts nothing about time.
//!
//!     CARGO_TARGET_DIR=… cargo bench -p huiliu-gateway --bench mask
//!
//! Texts: the generated corpus (`shared/corpus/gen_corpus.py --n 20000 --seed 7`, about a
//! third of the messages carry personal data and many carry order numbers, prices, dates) when
//! `python3` and the generator are available, otherwise a built-in set of realistic messages.

use std::hint::black_box;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use huiliu_privacy::{Compliance, ComplianceConfig, MaskConfig, Masker};

/// A 60-character buyer message without personal data (169 bytes of UTF-8).
const CLEAN_60: &str = "亲，这款连衣裙还有现货吗？今天下单的话明天能发货吗？我想要M码的，颜色是藏青色，麻烦帮我看一下，谢谢啦，辛苦客服小姐姐了";

/// Used when the corpus generator is not available.
const BUILT_IN: &[&str] = &[
    "这款SKU-4521-M有货吗？",
    "亲，这款多少钱呀",
    "有没有优惠券？满300送小样吗",
    "我的订单3920481736450192837什么时候发货",
    "订单号1029384756102938475，帮我查下物流",
    "快递SF293847561029一直没更新",
    "收到的SKU-8812-XL有破损，怎么退货，我手机号是138 1234 5678",
    "退款¥299申请了三天了还没处理",
    "你们客服态度太差了，我要投诉！",
    "2024-11-11下单的那个红色连衣裙发了吗，电话１５９１２３４５６７８",
    "三口人用多大容量的热水器合适",
    "热水器不出热水，师傅什么时候上门，地址改成浙江省杭州市西湖区文三路90号阳光花园3栋2单元1201室",
    "能开发票吗？订单4837261538475610293，发票发到邮箱zhangwei1234@qq.com",
    "尺码不合适想换大一号，订单2938475610293847561，身份证110105199003071239",
    "¥1299这个价格还能便宜点吗",
    "再不处理我就给差评，退款打到这张卡吧 6222021234567890128",
];

/// Agent replies, most of them clean.
const REPLIES: &[&str] = &[
    "亲，您好，很高兴为您服务，请问有什么可以帮您？",
    "这款是纯棉面料的，洗后不易变形，您可以放心购买哦",
    "您的订单已经发货了，快递单号SF1234567890123，预计明后天送达",
    "非常抱歉给您带来不便，我马上帮您申请退款，1-3个工作日到账",
    "最近物流比较慢，第一时间帮您催一下快递",
    "这款是全网最低价，效果最好，买到就是赚到！",
    "有问题可以加我微信 abc_123456，发您更多图片",
    "亲，售后问题可以拨打我们的热线400-820-8820",
    "您好，七天无理由退换的，您在订单页面申请售后就可以了，运费险会自动理赔",
    "尺码建议选大一号，这款偏小，身高165体重50kg穿M码刚好",
];

fn corpus_texts(n: usize) -> Option<Vec<String>> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/gen_corpus.py");
    let out = Command::new("python3").arg(&script).args(["--n", &n.to_string(), "--seed", "7"]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let texts: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("text").and_then(|t| t.as_str()).map(str::to_owned))
        .collect();
    (!texts.is_empty()).then_some(texts)
}

/// Runs `f` in growing batches until at least `min` has passed; returns (calls, elapsed).
fn measure(min: Duration, mut f: impl FnMut()) -> (u64, Duration) {
    // Warm up.
    for _ in 0..100 {
        f();
    }
    let mut calls = 0u64;
    let mut batch = 100u64;
    let start = Instant::now();
    loop {
        for _ in 0..batch {
            f();
        }
        calls += batch;
        let elapsed = start.elapsed();
        if elapsed >= min {
            return (calls, elapsed);
        }
        batch = batch.saturating_mul(2).min(1 << 20);
    }
}

fn per_op(calls: u64, elapsed: Duration) -> String {
    let ns = elapsed.as_nanos() as f64 / calls as f64;
    if ns >= 1000.0 { format!("{:.2} µs", ns / 1000.0) } else { format!("{ns:.0} ns") }
}

fn throughput(label: &str, masker: &Masker, texts: &[String]) {
    let bytes: usize = texts.iter().map(String::len).sum();
    let chars: usize = texts.iter().map(|t| t.chars().count()).sum();
    let mut i = 0;
    let (calls, elapsed) = measure(Duration::from_secs(3), || {
        let t = &texts[i % texts.len()];
        black_box(masker.mask(black_box(t)));
        i += 1;
    });
    let avg_bytes = bytes as f64 / texts.len() as f64;
    let secs = elapsed.as_secs_f64();
    println!(
        "{label:<44} {:>8.1} MB/s  {:>10} per message  ({} messages, avg {:.0} bytes / {:.0} chars)",
        calls as f64 * avg_bytes / secs / 1e6,
        per_op(calls, elapsed),
        texts.len(),
        avg_bytes,
        chars as f64 / texts.len() as f64,
    );
}

fn main() {
    let masker = Masker::new(&MaskConfig::default()).expect("default mask config");
    let compliance = Compliance::new(&ComplianceConfig::default()).expect("default compliance config");

    let (source, texts) = match corpus_texts(20_000) {
        Some(t) => ("corpus gen_corpus.py --n 20000 --seed 7", t),
        None => {
            ("built-in messages (corpus generator not available)", BUILT_IN.iter().map(|s| s.to_string()).collect())
        }
    };
    println!("texts: {source}");
    let (with, without): (Vec<String>, Vec<String>) = texts.iter().cloned().partition(|t| masker.has_pii(t));

    println!("\n-- masking throughput (one core) --");
    throughput("all messages", &masker, &texts);
    throughput("messages with personal data", &masker, &with);
    throughput("messages without personal data", &masker, &without);
    let long: Vec<String> = texts.chunks(40).map(|c| c.join("\n")).collect();
    throughput("40 messages joined (transcript-sized texts)", &masker, &long);

    println!("\n-- one 60-character message without personal data --");
    assert_eq!(CLEAN_60.chars().count(), 60);
    let (calls, elapsed) = measure(Duration::from_secs(2), || {
        black_box(masker.mask(black_box(CLEAN_60)));
    });
    println!("mask     {:>10} per message", per_op(calls, elapsed));
    let (calls, elapsed) = measure(Duration::from_secs(2), || {
        black_box(masker.has_pii(black_box(CLEAN_60)));
    });
    println!("has_pii  {:>10} per message", per_op(calls, elapsed));

    println!("\n-- compliance check of agent replies --");
    let mut i = 0;
    let (calls, elapsed) = measure(Duration::from_secs(2), || {
        black_box(compliance.check(black_box(REPLIES[i % REPLIES.len()])));
        i += 1;
    });
    let avg = REPLIES.iter().map(|r| r.chars().count()).sum::<usize>() / REPLIES.len();
    println!(
        "check    {:>10} per reply ({} replies, avg {avg} chars, 3 of them with hits)",
        per_op(calls, elapsed),
        REPLIES.len()
    );
    let clean = REPLIES[0];
    let (calls, elapsed) = measure(Duration::from_secs(2), || {
        black_box(compliance.check(black_box(clean)));
    });
    println!("check    {:>10} per clean reply of {} chars", per_op(calls, elapsed), clean.chars().count());
}
