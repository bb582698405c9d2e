//! Realistic buyer traffic for the demo: the templates of `shared/corpus/gen_corpus.py`
//! (presales, order, aftersales and complaint messages, order numbers, tracking numbers, prices,
//! and now and then a phone number, ID, bank card, e-mail or address typed the ways buyers type
//! them), built in so the demo needs nothing outside the binary. Deterministic for a seed.

/// One generated message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorpusMessage {
    /// presales / order / aftersales / complaint
    pub kind: &'static str,
    pub text: String,
    /// Index of the buyer in the pool (stable per buyer).
    pub buyer: usize,
    pub nick: String,
    pub vip_level: u32,
    pub fans_level: u32,
}

const SURNAMES: [&str; 20] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "林", "罗",
    "高",
];
const GIVEN: [&str; 12] = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "洋", "艳", "秀英", "建华"];
const MOBILE_PREFIXES: [&str; 12] =
    ["138", "139", "150", "151", "158", "166", "177", "180", "186", "188", "191", "199"];
const REGIONS: [(&str, &str, &str, &str); 4] = [
    ("330106", "浙江省", "杭州市", "西湖区"),
    ("440305", "广东省", "深圳市", "南山区"),
    ("310104", "", "上海市", "徐汇区"),
    ("510107", "四川省", "成都市", "武侯区"),
];
const ROADS: [&str; 4] = ["文三路", "科技园南路", "中山北路", "天府大道"];
const CN_DIGITS: [&str; 10] = ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九"];

const PRESALES: [&str; 7] = [
    "这款{sku}有货吗？",
    "亲，这款多少钱呀",
    "有没有优惠券？满300送小样吗",
    "这款适合油皮吗",
    "三口人用多大容量的热水器合适",
    "今天下单明天能到吗？",
    "{price}这个价格还能便宜点吗",
];
const ORDER: [&str; 5] = [
    "我的订单{order}什么时候发货",
    "订单号{order}，帮我查下物流",
    "快递{tracking}一直没更新",
    "能开发票吗？订单{order}",
    "{date}下单的那个红色连衣裙发了吗",
];
const AFTERSALES: [&str; 5] = [
    "收到的{sku}有破损，怎么退货",
    "尺码不合适想换大一号，订单{order}",
    "七天无理由可以退吗",
    "退款{price}申请了三天了还没处理",
    "热水器不出热水，师傅什么时候上门",
];
const COMPLAINT: [&str; 5] = [
    "你们客服态度太差了，我要投诉！",
    "再不处理我就给差评",
    "假货！我要举报你们",
    "说好当天上门结果没人来，太过分了",
    "三次了都没解决，叫你们主管来",
];

/// A deterministic generator.
#[derive(Debug, Clone)]
pub struct Corpus {
    state: u64,
}

impl Corpus {
    pub fn new(seed: u64) -> Corpus {
        Corpus { state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1 }
    }

    /// xorshift64*: good enough for traffic, no dependency.
    fn next(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn digits(&mut self, n: usize) -> String {
        (0..n).map(|_| char::from(b'0' + self.below(10) as u8)).collect()
    }

    /// The next buyer message.
    pub fn message(&mut self) -> CorpusMessage {
        let (kind, templates): (&'static str, &[&str]) = match self.below(20) {
            0..=7 => ("presales", &PRESALES),
            8..=12 => ("order", &ORDER),
            13..=17 => ("aftersales", &AFTERSALES),
            _ => ("complaint", &COMPLAINT),
        };
        let template = *self.pick(templates);
        let mut text = self.fill(template);
        if self.below(10) < 3 {
            let pii = self.personal_data();
            text = format!("{text} {pii}");
        }
        let buyer = self.below(40);
        let nick = format!("{}{}", SURNAMES[buyer % SURNAMES.len()], GIVEN[buyer % GIVEN.len()]);
        CorpusMessage {
            kind,
            text,
            buyer,
            nick,
            vip_level: if buyer.is_multiple_of(7) { 3 } else { 0 },
            fans_level: if buyer.is_multiple_of(5) { 1 } else { 0 },
        }
    }

    fn fill(&mut self, template: &str) -> String {
        let mut out = template.to_owned();
        if out.contains("{order}") {
            let order = format!("{}{}", 1 + self.below(5), self.digits(18));
            out = out.replace("{order}", &order);
        }
        if out.contains("{tracking}") {
            let tracking =
                format!("{}{}", self.pick(&["SF", "YT", "JD"]), 100_000_000_000 + self.below(899_999_999_999));
            out = out.replace("{tracking}", &tracking);
        }
        if out.contains("{price}") {
            out = out.replace("{price}", &format!("¥{}", 9 + self.below(2990)));
        }
        if out.contains("{date}") {
            out = out.replace("{date}", &format!("2024-{:02}-{:02}", 1 + self.below(12), 1 + self.below(28)));
        }
        if out.contains("{sku}") {
            let size = *self.pick(&["S", "M", "L", "XL"]);
            out = out.replace("{sku}", &format!("SKU-{}-{size}", 1000 + self.below(9000)));
        }
        out
    }

    fn personal_data(&mut self) -> String {
        match self.below(5) {
            0 => {
                let mobile = format!("{}{}", self.pick(&MOBILE_PREFIXES), self.digits(8));
                let typed = match self.below(4) {
                    0 => format!("{} {} {}", &mobile[..3], &mobile[3..7], &mobile[7..]),
                    1 => mobile.chars().map(|c| CN_DIGITS[c as usize - '0' as usize]).collect(),
                    2 => format!("+86 {mobile}"),
                    _ => mobile,
                };
                format!("我手机号是{typed}")
            }
            1 => {
                let (region, ..) = *self.pick(&REGIONS);
                let body = format!(
                    "{region}{}{:02}{:02}{}",
                    1960 + self.below(45),
                    1 + self.below(12),
                    1 + self.below(28),
                    self.digits(3)
                );
                format!("身份证号{}，需要实名", body.clone() + id_check(&body))
            }
            2 => format!("退款打到这张卡吧 {}", luhn_complete(&format!("62{}", self.digits(13)))),
            3 => format!("发票发到邮箱{}{}@qq.com", self.pick(&["zhangwei", "lina", "xiaoming"]), self.below(9999)),
            _ => {
                let (_, province, city, district) = *self.pick(&REGIONS);
                format!(
                    "地址改成{province}{city}{district}{}{}号阳光花园{}栋{}室",
                    self.pick(&ROADS),
                    1 + self.below(999),
                    1 + self.below(30),
                    101 + self.below(2700)
                )
            }
        }
    }
}

/// The ISO 7064 MOD 11-2 check character of a 17-digit ID body.
fn id_check(body: &str) -> &'static str {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: [&str; 11] = ["1", "0", "X", "9", "8", "7", "6", "5", "4", "3", "2"];
    let sum: u32 = body.chars().zip(WEIGHTS).map(|(c, w)| c.to_digit(10).unwrap_or(0) * w).sum();
    CHECK[(sum % 11) as usize]
}

/// Appends the Luhn check digit.
fn luhn_complete(body: &str) -> String {
    let total: u32 = body
        .chars()
        .rev()
        .enumerate()
        .map(|(i, c)| {
            let d = c.to_digit(10).unwrap_or(0);
            if i % 2 == 0 {
                let d2 = d * 2;
                if d2 > 9 { d2 - 9 } else { d2 }
            } else {
                d
            }
        })
        .sum();
    format!("{body}{}", (10 - total % 10) % 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_varied() {
        let a: Vec<_> = (0..50).scan(Corpus::new(7), |c, _| Some(c.message())).collect();
        let b: Vec<_> = (0..50).scan(Corpus::new(7), |c, _| Some(c.message())).collect();
        assert_eq!(a, b);
        for kind in ["presales", "order", "aftersales", "complaint"] {
            assert!(a.iter().any(|m| m.kind == kind), "{kind}");
        }
        assert!(a.iter().all(|m| !m.text.contains('{')));
    }

    #[test]
    fn check_digits() {
        assert_eq!(id_check("11010519491231002"), "X");
        assert_eq!(luhn_complete("7992739871"), "79927398713");
    }
}
