//! Data-driven and property tests of the masker.

use proptest::prelude::*;

use super::scoring::consistent;
use super::*;

/// The default masker, compiled once for all tests.
fn masker() -> &'static Masker {
    static MASKER: std::sync::OnceLock<Masker> = std::sync::OnceLock::new();
    MASKER.get_or_init(|| Masker::new(&MaskConfig::default()).expect("the default config compiles"))
}

/// Undoes the table's escapes: `\u{200B}`, `\t`, `\\`.
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('\\') {
            out.push('\\');
            rest = r;
        } else if let Some(r) = rest.strip_prefix('t') {
            out.push('\t');
            rest = r;
        } else if let Some(r) = rest.strip_prefix("u{") {
            let end = r.find('}').expect("unterminated \\u{");
            let c = u32::from_str_radix(&r[..end], 16).ok().and_then(char::from_u32).expect("bad \\u{} escape");
            out.push(c);
            rest = &r[end + 1..];
        } else {
            panic!("unknown escape in {s:?}");
        }
    }
    out.push_str(rest);
    out
}

/// `gateway/tests/data/mask/hard_cases.tsv`: KINDS, INPUT, EXPECTED per line. Every row is
/// checked and every failure reported together.
#[test]
fn hard_cases() {
    let table = include_str!("../../tests/data/mask/hard_cases.tsv");
    let m = masker();
    let mut rows = 0;
    let mut failures = Vec::new();
    for (lineno, line) in table.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 3, "line {}: expected 3 tab-separated fields: {line:?}", lineno + 1);
        rows += 1;
        let (kinds, input, expected) = (fields[0], unescape(fields[1]), unescape(fields[2]));
        let out = m.mask(&input);
        let got_kinds: Vec<&str> = out.findings.iter().map(|f| f.kind.as_str()).collect();
        let want_kinds: Vec<&str> = if kinds == "-" { vec![] } else { kinds.split(',').collect() };
        if out.text != expected || got_kinds != want_kinds {
            failures.push(format!(
                "line {}: {input:?}\n   expected {expected:?} {want_kinds:?}\n   got      {:?} {got_kinds:?}",
                lineno + 1,
                out.text
            ));
        }
        assert!(consistent(&input, &out.text, &out.findings), "line {}: inconsistent output", lineno + 1);
        assert_eq!(m.has_pii(&input), !out.findings.is_empty(), "line {}", lineno + 1);
    }
    assert!(rows >= 200, "the table has only {rows} rows");
    assert!(failures.is_empty(), "{} of {rows} hard cases failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn findings_carry_the_exact_original_and_range() {
    let text = "电话：１３８ 幺二三四-5678，邮箱zhangwei@qq.com";
    let out = masker().mask(text);
    assert_eq!(out.findings.len(), 2);
    let f = &out.findings[0];
    assert_eq!(f.kind, PiiKind::Mobile);
    assert_eq!(f.original, "１３８ 幺二三四-5678");
    assert_eq!(&text[f.range.clone()], f.original);
    assert_eq!(f.masked, "138****5678");
    assert_eq!(out.findings[1].original, "zhangwei@qq.com");
    assert_eq!(out.text, "电话：138****5678，邮箱z***@qq.com");
}

#[test]
fn debug_output_never_shows_the_original() {
    let out = masker().mask("我的手机13812345678");
    let debug = format!("{out:?}");
    assert!(!debug.contains("13812345678"), "{debug}");
    assert!(debug.contains("138****5678"));
}

#[test]
fn detectors_can_be_switched_off() {
    let mut cfg = MaskConfig::default();
    cfg.detectors.mobile = false;
    cfg.detectors.address = false;
    let m = Masker::new(&cfg).unwrap();
    let text = "13812345678，浙江省杭州市西湖区文三路90号，zhang@qq.com";
    let out = m.mask(text);
    assert_eq!(out.text, "13812345678，浙江省杭州市西湖区文三路90号，z***@qq.com");
}

#[test]
fn protect_words_come_from_the_config() {
    let card_after_order = "订单1234567890123456785";
    assert!(!masker().has_pii(card_after_order));
    let m = Masker::new(&MaskConfig { protect_words: vec![], ..MaskConfig::default() }).unwrap();
    assert_eq!(m.mask(card_after_order).text, "订单***************6785");
    let m = Masker::new(&MaskConfig { protect_words: vec!["Ref".into()], ..MaskConfig::default() }).unwrap();
    assert_eq!(m.mask("ref: 1234567890123456785").text, "ref: 1234567890123456785", "case-insensitive");
}

#[test]
fn custom_patterns_mask_with_their_label() {
    let cfg = MaskConfig {
        custom: vec![
            CustomPattern { name: "member".into(), regex: r"VIP\d{6}".into(), keep_prefix: 3, keep_suffix: 1 },
            CustomPattern { name: "code".into(), regex: r"验证码\s*\d{4,6}".into(), keep_prefix: 0, keep_suffix: 0 },
        ],
        ..MaskConfig::default()
    };
    let m = Masker::new(&cfg).unwrap();
    let out = m.mask("会员VIP１２３４５６，验证码 8 8 8 8，电话13812345678");
    assert_eq!(out.text, "会员VIP*****6，********，电话138****5678");
    let kinds: Vec<&str> = out.findings.iter().map(|f| f.kind.as_str()).collect();
    assert_eq!(kinds, ["member", "code", "mobile"]);
    assert_eq!(out.findings[1].original, "验证码 8 8 8 8");
}

#[test]
fn invalid_config_reports_every_error() {
    let cfg = MaskConfig {
        protect_words: vec!["订单".into(), " ".into()],
        custom: vec![
            CustomPattern { name: "".into(), regex: "(".into(), keep_prefix: 0, keep_suffix: 0 },
            CustomPattern { name: "email".into(), regex: "x?".into(), keep_prefix: 0, keep_suffix: 0 },
        ],
        ..MaskConfig::default()
    };
    let errors = Masker::new(&cfg).unwrap_err();
    let keys: Vec<&str> = errors.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "mask.protect_words[1]",
            "mask.custom[0].name",
            "mask.custom[0].regex",
            "mask.custom[1].name",
            "mask.custom[1].regex"
        ]
    );
}

#[test]
fn texts_without_personal_data_come_back_unchanged() {
    let m = masker();
    for text in [
        "亲，这款连衣裙有现货吗？今天下单的话明天能发货吗？我想要M码的，颜色是藏青色，谢谢啦~",
        "你们客服态度太差了，我要投诉！三次了都没解决，叫你们主管来",
        "",
        "a",
        "🙂🙂🙂",
    ] {
        let out = m.mask(text);
        assert_eq!(out.text, text);
        assert!(out.findings.is_empty());
    }
}

#[test]
fn long_texts_are_processed_in_pieces() {
    let filler = "你好".repeat(300_000); // 1.8 MB
    let text = format!("{filler} 13812345678 {filler}\n电话15912345678");
    let out = masker().mask(&text);
    let kinds: Vec<&str> = out.findings.iter().map(|f| f.kind.as_str()).collect();
    assert_eq!(kinds, ["mobile", "mobile"]);
    assert!(consistent(&text, &out.text, &out.findings));
}

// ---- properties ----------------------------------------------------------------------

const FILLER: &[char] =
    &['你', '好', '请', '问', '这', '款', '有', '货', '吗', '谢', '亲', '，', '。', '！', '？', ' '];
const SEPARATORS: &[&str] = &[" ", "-", ".", "·", " - ", "\u{200B}", "\u{FEFF}", ""];
const ARABIC: &str = "0123456789";
const FULL: &str = "０１２３４５６７８９";
const HAN: &str = "零一二三四五六七八九";
const HAN_ALT: &str = "〇幺贰叁肆伍陆柒捌玖";

/// Writes digit `d` in one of several scripts.
fn render_digit(d: u8, style: u8) -> String {
    let pick = |s: &str| s.chars().nth(d as usize).unwrap_or('0').to_string();
    match style % 5 {
        0 => pick(ARABIC),
        1 => pick(FULL),
        2 => pick(HAN),
        3 => pick(HAN_ALT),
        _ => format!("{d}\u{FE0F}\u{20E3}"),
    }
}

fn filler() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(FILLER), 0..12).prop_map(|v| v.into_iter().collect())
}

fn mobile() -> impl Strategy<Value = Vec<u8>> {
    let prefixes: &[&str] = &["130", "138", "145", "150", "159", "166", "172", "178", "186", "191", "199"];
    (proptest::sample::select(prefixes), proptest::collection::vec(0u8..10, 8)).prop_map(|(p, rest)| {
        let mut d: Vec<u8> = p.bytes().map(|b| b - b'0').collect();
        d.extend(rest);
        d
    })
}

/// Renders digits with a script per digit and separators between some of them.
fn obfuscated(digits: Vec<u8>) -> impl Strategy<Value = (Vec<u8>, String)> {
    let n = digits.len();
    (proptest::collection::vec(0u8..5, n), proptest::collection::vec(proptest::sample::select(SEPARATORS), n)).prop_map(
        move |(styles, seps)| {
            let mut s = String::new();
            for (i, &d) in digits.iter().enumerate() {
                if i > 0 {
                    s.push_str(seps[i]);
                }
                s.push_str(&render_digit(d, styles[i]));
            }
            (digits.clone(), s)
        },
    )
}

fn digits_str(d: &[u8]) -> String {
    d.iter().map(|&v| char::from(b'0' + v)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any text: no panic, findings in order and disjoint, each `original` is `text[range]`,
    /// the output is the original with the ranges replaced, `has_pii` agrees.
    #[test]
    fn any_text_keeps_the_invariants(text in "(?s).{0,80}") {
        let m = masker();
        let out = m.mask(&text);
        prop_assert!(consistent(&text, &out.text, &out.findings));
        prop_assert_eq!(m.has_pii(&text), !out.findings.is_empty());
    }

    /// Text built from the characters detectors care about.
    #[test]
    fn digit_soup_keeps_the_invariants(
        text in proptest::collection::vec(proptest::sample::select(&[
            "1", "3", "8", "0", "6", "2", "一", "幺", "８", "X", "x", "+", "-", " ", ".", "(", ")", "@", "a", "Q",
            "路", "号", "市", "区", "栋", "室", "订单", "卡号", "\u{200B}", "\u{FE0F}\u{20E3}", "⑩", "。",
        ][..]), 0..60).prop_map(|v| v.concat())
    ) {
        let m = masker();
        let out = m.mask(&text);
        prop_assert!(consistent(&text, &out.text, &out.findings));
        let again = m.mask(&out.text);
        prop_assert!(consistent(&out.text, &again.text, &again.findings));
    }

    /// A mobile number in any mix of scripts, separators and invisible characters, between
    /// ordinary words, is found exactly and masked to `138****5678` form.
    #[test]
    fn obfuscated_mobiles_are_masked_exactly(
        (digits, typed) in mobile().prop_flat_map(obfuscated),
        before in filler(),
        after in filler(),
    ) {
        let text = format!("{before}{typed}{after}");
        let out = masker().mask(&text);
        let d = digits_str(&digits);
        let expected_mask = format!("{}****{}", &d[..3], &d[7..]);
        prop_assert_eq!(out.findings.len(), 1, "{:?} -> {:?}", text, out.text);
        prop_assert_eq!(&out.findings[0].kind, &PiiKind::Mobile);
        prop_assert_eq!(&out.findings[0].original, &typed, "exactly what was typed");
        prop_assert_eq!(&out.findings[0].masked, &expected_mask);
        prop_assert!(out.text.starts_with(&before));
        prop_assert!(out.text.ends_with(&after));
    }

    /// Order numbers after an order word stay byte-identical whatever their checksum.
    #[test]
    fn order_numbers_after_order_words_stay(
        first in 1u8..6,
        rest in proptest::collection::vec(0u8..10, 17..19),
        word in proptest::sample::select(&["订单", "订单号：", "单号 ", "快递单号", "运单号:"][..]),
    ) {
        let mut d = vec![first];
        d.extend(rest);
        let text = format!("我的{word}{}什么时候发货", digits_str(&d));
        let out = masker().mask(&text);
        prop_assert_eq!(&out.text, &text);
    }

    /// Valid 18-digit IDs after an ID label are masked, check digit X included.
    #[test]
    fn id_numbers_are_masked(
        region in proptest::sample::select(&["110105", "310104", "440305", "330106", "510107", "650102"][..]),
        year in 1930u32..2020, month in 1u32..13, day in 1u32..29, seq in 0u32..1000,
    ) {
        let body = format!("{region}{year:04}{month:02}{day:02}{seq:03}");
        let d: Vec<u8> = body.bytes().map(|b| b - b'0').collect();
        const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        let sum: u32 = d.iter().zip(W).map(|(&v, w)| v as u32 * w).sum();
        let check = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'][(sum % 11) as usize];
        let id = format!("{body}{check}");
        let text = format!("身份证{id}，谢谢");
        let out = masker().mask(&text);
        prop_assert_eq!(out.text, format!("身份证{}***********{}，谢谢", &id[..3], &id[14..]));
    }
}
