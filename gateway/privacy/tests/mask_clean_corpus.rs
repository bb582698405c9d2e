//! A generated clean-chat corpus — buyer messages full of numbers that are NOT personal data
//! (order and tracking numbers, prices, sizes, dates, model numbers, coupon codes, tax ids,
//! postal codes, links with item ids, company hotlines) — must come back unchanged: at most
//! 0.1 % of messages altered.
//!
//! The generator is here, in Rust, so the test needs nothing outside the repository and is
//! the same on every machine: a fixed-seed xorshift drives templates written from the shapes
//! of real chats. `CLEAN_N` sets the number of messages (default 20 000); the figure is
//! printed with `cargo test -p huiliu-privacy --test mask_clean_corpus -- --nocapture`.

use huiliu_privacy::{MaskConfig, Masker};

/// xorshift64*: small, fixed, good enough to vary templates.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    fn pick<'a>(&mut self, list: &[&'a str]) -> &'a str {
        list[self.below(list.len() as u64) as usize]
    }

    fn digits(&mut self, n: usize) -> String {
        (0..n).map(|_| char::from(b'0' + self.below(10) as u8)).collect()
    }

    fn alnum(&mut self, n: usize) -> String {
        const A: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";
        (0..n).map(|_| char::from(A[self.below(A.len() as u64) as usize])).collect()
    }
}

/// One non-personal number, written the way buyers and shops write it.
fn slot(r: &mut Rng) -> String {
    match r.below(14) {
        // Orders: Taobao / Tmall 18-19 digits, JD 12, Pinduoduo date-prefixed, Douyin 19.
        0 => {
            let word =
                r.pick(&["订单号", "订单号：", "订单编号:", "单号 ", "订单", "这个订单 ", "我的订单是", "售后单号"]);
            let number = match r.below(4) {
                0 => {
                    let len = 17 + r.below(2) as usize;
                    format!("{}{}", r.range(1, 5), r.digits(len))
                }
                1 => format!("{}{}", r.range(2, 3), r.digits(11)),
                2 => format!("{:02}{:02}{:02}-{}", r.range(23, 25), r.range(1, 12), r.range(1, 28), r.digits(15)),
                _ => format!("{}{}", r.range(4, 6), r.digits(18)),
            };
            format!("{word}{number}")
        }
        // Tracking numbers: SF, YT, JD (letters), ZTO, Yunda, STO, EMS (digits only).
        1 => {
            let word = r.pick(&["快递单号", "快递", "运单号：", "物流单号 ", "单号", "快递单号是"]);
            let number = match r.below(7) {
                0 => {
                    let len = 12 + r.below(4) as usize;
                    format!("SF{}", r.digits(len))
                }
                1 => format!("YT{}", r.digits(13)),
                2 => format!("JDV{}", r.digits(12)),
                3 => format!("7{}", r.digits(13)),
                4 => format!("43{}", r.digits(11)),
                5 => {
                    let len = 11 + 2 * r.below(2) as usize;
                    format!("77{}", r.digits(len))
                }
                _ => format!("11{}", r.digits(11)),
            };
            format!("{word}{number}")
        }
        // Prices.
        2 => match r.below(5) {
            0 => format!("¥{}", r.range(9, 9999)),
            1 => format!("{}元", r.range(9, 9999)),
            2 => format!("到手价{}.{:02}", r.range(9, 3999), r.range(0, 99)),
            3 => format!("原价{},{:03}，现在{},{:03}", r.range(1, 9), r.range(0, 999), r.range(1, 9), r.range(0, 999)),
            _ => format!("满{}减{}", r.range(1, 9) * 100, r.range(1, 9) * 10),
        },
        // Sizes.
        3 => match r.below(5) {
            0 => format!("{}/{}A", r.range(150, 190), r.range(72, 110)),
            1 => format!("{}码", r.range(35, 46)),
            2 => format!("身高{}cm体重{}kg", r.range(150, 190), r.range(40, 95)),
            3 => format!("身高{}，体重{}斤", r.range(150, 190), r.range(80, 200)),
            _ => format!("腰围{}，臀围{}", r.range(60, 100), r.range(80, 110)),
        },
        // Dates and times.
        4 => match r.below(5) {
            0 => format!("2024-{:02}-{:02}", r.range(1, 12), r.range(1, 28)),
            1 => {
                format!("2024/{:02}/{:02} {:02}:{:02}", r.range(1, 12), r.range(1, 28), r.range(0, 23), r.range(0, 59))
            }
            2 => format!("{}月{}日", r.range(1, 12), r.range(1, 28)),
            3 => format!("2024{:02}{:02}", r.range(1, 12), r.range(1, 28)),
            _ => format!("2024.{}.{} {}点", r.range(1, 12), r.range(1, 28), r.range(8, 22)),
        },
        // Model numbers.
        5 => r
            .pick(&[
                "KFR-35GW/NhGa1BAj",
                "iPhone 15 Pro Max 256G",
                "XQB100-M2008",
                "A2849",
                "RTX 4090",
                "BCD-520WKPZM(E)",
                "Mate 60 Pro",
                "JSQ30-16LN3",
                "EG100MATE35S",
                "小米14 Ultra 16+512",
            ])
            .to_owned(),
        6 => format!("型号{}-{}", r.alnum(3), r.digits(4)),
        // Coupon and redemption codes.
        7 => match r.below(3) {
            0 => format!("优惠码 {}-{}-{}", r.alnum(4), r.alnum(4), r.alnum(4)),
            1 => format!("券码{}", r.digits(12)),
            _ => format!("兑换码：{}", r.alnum(16)),
        },
        // Tax ids: unified social credit code (18 alphanumerics) and the old 15-digit one.
        8 => match r.below(3) {
            0 => format!("税号{}{}MA{}", r.pick(&["91", "92", "93"]), r.digits(6), r.alnum(8)),
            1 => format!("纳税人识别号{}{}", r.pick(&["330106", "440305", "110105"]), r.digits(9)),
            _ => format!("税号：{}{}", r.pick(&["330106", "440305", "110105"]), r.digits(9)),
        },
        // Postal codes.
        9 => format!("邮编{}", r.digits(6)),
        // Links with item ids.
        10 => match r.below(4) {
            0 => format!("https://item.taobao.com/item.htm?id={}", r.digits(12)),
            1 => {
                let len = 11 + r.below(3) as usize;
                format!("item.jd.com/{}.html", r.digits(len))
            }
            2 => format!("detail.tmall.com/item.htm?id={}", r.digits(12)),
            _ => format!("https://v.douyin.com/{}/", r.alnum(7)),
        },
        // Company hotlines.
        11 => match r.below(3) {
            0 => format!("客服热线400-{}-{}", r.digits(3), r.digits(4)),
            1 => format!("售后电话 800 {} {}", r.digits(3), r.digits(4)),
            _ => format!("官方热线4008{}", r.digits(6)),
        },
        // Quantities and counts.
        12 => format!("买{}件送{}件", r.range(1, 5), r.range(1, 3)),
        _ => format!("SKU-{}-{}", r.range(1000, 9999), r.pick(&["S", "M", "L", "XL"])),
    }
}

const FRAMES: &[&str] = &[
    "亲，{}，什么时候发货呀",
    "{}这个还能便宜点吗",
    "你好，{}，帮我查一下物流",
    "{}，收到货有破损，怎么退",
    "我看的是{}，有现货吗？",
    "{}，{}，麻烦核对一下",
    "请问{}和{}有什么区别",
    "{} 到现在还没更新，{}",
    "发票抬头写公司，{}，谢谢",
    "{}的那个还有吗，{}",
    "客服你好，{}",
    "{}",
];

fn message(r: &mut Rng) -> String {
    let frame = r.pick(FRAMES);
    let mut out = String::new();
    let mut rest = frame;
    while let Some(i) = rest.find("{}") {
        out.push_str(&rest[..i]);
        out.push_str(&slot(r));
        rest = &rest[i + 2..];
    }
    out.push_str(rest);
    out
}

#[test]
fn clean_corpus_stays_unchanged() {
    let n: usize = std::env::var("CLEAN_N").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let masker = Masker::new(&MaskConfig::default()).expect("the defaults compile");
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    let mut altered = 0;
    let mut examples = Vec::new();
    for _ in 0..n {
        let text = message(&mut r);
        let out = masker.mask(&text);
        if out.text != text {
            altered += 1;
            if examples.len() < 20 {
                let kinds: Vec<&str> = out.findings.iter().map(|f| f.kind.as_str()).collect();
                examples.push(format!("{text:?} -> {:?} {kinds:?}", out.text));
            }
        }
    }
    let rate = altered as f64 / n as f64;
    eprintln!("clean corpus: {n} messages, {altered} altered ({:.3}%)", rate * 100.0);
    for e in &examples {
        eprintln!("  altered: {e}");
    }
    assert!(rate <= 0.001, "{altered} of {n} clean messages altered:\n{}", examples.join("\n"));
}
