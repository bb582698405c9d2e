//! Street addresses (`浙江省杭州市西湖区文三路90号阳光花园3栋2单元1201室`).
//!
//! Chinese has no spaces, so the detector starts from two anchors that ordinary chat rarely
//! contains and grows the address outwards:
//!
//! - **road + number**: a road word (`路 街 大道 巷 弄 胡同`, or `道` after an administrative
//!   unit) directly followed by a house number of 1–5 digits (`文三路90号`, `建国路一号`,
//!   `建国路甲1号`);
//! - **number + building unit** (`3栋`, `2单元`, `1201室`, `5号楼`) right after a named
//!   place that follows at least two administrative units (`杭州市西湖区阳光花园3栋`), or one
//!   that starts with a province name (`北京朝阳区…`); without administrative units, a
//!   chain of two such parts (`金色家园7号楼2单元1101室`, `3栋502室`) is enough;
//! - **village + number**: a number right after `村`/`屯` followed by `组`, `队`, `社` or
//!   `号` (`李庄村3组21号`, `田心村七组十五号`).
//!
//! House and group numbers may be written with `十` and `百` (`十五号`, `二十一组`).
//!
//! Backwards from the anchor: the road name, then the chain of administrative units
//! (`…省`, `…自治区`, `…市`, `…自治州`, `…盟`, `…区`, `…县`; `小区`, `社区`, `园区`, `超市`
//! and similar are not units). The first unit's name is cut at a province name or at a
//! function word (`寄到`, `改成`, `地址：` …). Without an administrative unit, a road
//! address needs `号` or `弄` after the number, a name of at most six characters, and
//! `道` alone does not count (`知道3号发货` is a date).
//!
//! Forwards from the anchor: letters, digits and ideographs up to 40 characters, stopping at
//! punctuation, function words and numbers already claimed, then cut back to the last
//! character that ends an address part (`号 室 栋 幢 楼 层 座 单元 户 园 苑 城 村 院 府 …`) or
//! the number right after one (`B座3201`).
//!
//! The mask keeps the administrative units exactly as typed and replaces the rest by `****`:
//! `浙江省杭州市西湖区****`.

use std::ops::Range;

use super::{Candidate, PiiKind};
use crate::normalize::{Normalized, is_han};

/// Characters that end a part of an address; the tail is cut after the last of them.
const TAIL_END: &[char] = &[
    '号', '室', '栋', '幢', '楼', '层', '座', '元', '户', '弄', '园', '苑', '城', '村', '庄', '院', '府', '舍', '居',
    '寓', '墅', '湾', '区', '厦', '场', '心', '际', '庭', '邸', '郡', '阁', '轩', '坊', '里', '组', '排', '巷',
];

/// Function words that delimit an address from the sentence around it.
const STOP: &[char] = &[
    '的', '了', '把', '我', '你', '他', '她', '们', '在', '到', '是', '改', '寄', '送', '往', '住', '跟', '或', '请',
    '址', '吧', '呢', '啊', '哦', '嗯', '要', '给', '从', '就', '也', '还', '这', '哪', '个', '换', '帮', '烦', '谢',
    '好', '收', '货', '麻', '发',
];

const PROVINCE_NAMES: &[&str] = &[
    "北京",
    "天津",
    "上海",
    "重庆",
    "河北",
    "山西",
    "辽宁",
    "吉林",
    "黑龙江",
    "江苏",
    "浙江",
    "安徽",
    "福建",
    "江西",
    "山东",
    "河南",
    "湖北",
    "湖南",
    "广东",
    "海南",
    "四川",
    "贵州",
    "云南",
    "陕西",
    "甘肃",
    "青海",
    "台湾",
    "内蒙古",
    "广西",
    "西藏",
    "宁夏",
    "新疆",
    "香港",
    "澳门",
];

/// The normalized characters of the text, with the units already claimed by other detectors.
struct View<'a> {
    n: &'a Normalized,
    taken: Vec<Range<usize>>,
}

impl View<'_> {
    fn len(&self) -> usize {
        self.n.in_text.len()
    }

    fn unit(&self, p: usize) -> usize {
        self.n.in_text[p] as usize
    }

    fn ch(&self, p: usize) -> char {
        self.n.in_text.get(p).map_or('\0', |&u| self.n.units[u as usize].ch)
    }

    fn is_digit(&self, p: usize) -> bool {
        self.n.in_text.get(p).is_some_and(|&u| self.n.units[u as usize].is_digit())
    }

    /// The length of a road section word at `q` (`中段`, `东段`, `段`), or 0.
    fn section(&self, q: usize) -> usize {
        match (self.ch(q), self.ch(q + 1)) {
            ('东' | '西' | '南' | '北' | '中', '段') => 2,
            ('段', _) => 1,
            _ => 0,
        }
    }

    /// A digit, or `十`/`百` of a number written in words (`十五号`).
    fn is_num(&self, p: usize) -> bool {
        self.is_digit(p) || matches!(self.ch(p), '十' | '百')
    }

    /// Whether a number and a building unit start at `q` (the next part of a chain).
    fn chain_follows(&self, q: usize) -> bool {
        let mut r = q;
        while self.is_num(r) && r - q < 6 {
            r += 1;
        }
        r > q && (self.building_unit(r) > 0 || matches!(self.ch(r), '号' | '层' | '户'))
    }

    fn taken(&self, p: usize) -> bool {
        let u = self.unit(p);
        self.taken.iter().any(|r| r.contains(&u))
    }

    fn is_stop(&self, p: usize) -> bool {
        let c = self.ch(p);
        STOP.contains(&c)
            || (matches!(c, '成' | '为') && p > 0 && matches!(self.ch(p - 1), '改' | '换' | '写' | '变' | '填'))
    }

    /// Whether the character at `p` ends an administrative unit.
    fn is_admin_suffix(&self, p: usize) -> bool {
        if self.taken(p) {
            return false;
        }
        let prev = if p > 0 { self.ch(p - 1) } else { '\0' };
        match self.ch(p) {
            '省' | '县' | '盟' => true,
            '市' => !matches!(prev, '超' | '股' | '夜' | '菜' | '门' | '集' | '早' | '上' | '开' | '闹'),
            '区' => !matches!(
                prev,
                '小' | '社'
                    | '校'
                    | '园'
                    | '景'
                    | '厂'
                    | '营'
                    | '片'
                    | '战'
                    | '禁'
                    | '学'
                    | '专'
                    | '服'
                    | '商'
                    | '矿'
                    | '库'
                    | '病'
                    | '灾'
                    | '税'
                    | '城'
                    | '街'
            ),
            '州' => p >= 2 && self.ch(p - 2) == '自' && prev == '治',
            _ => false,
        }
    }

    fn is_road_suffix(&self, p: usize) -> bool {
        match self.ch(p) {
            '路' | '街' | '巷' | '弄' | '道' => true,
            '同' => p > 0 && self.ch(p - 1) == '胡',
            _ => false,
        }
    }

    /// The start of the province name that begins inside `b..k`, if any.
    fn province_in(&self, b: usize, k: usize) -> Option<usize> {
        (b..k).find(|&p| self.province_at(p))
    }

    fn province_at(&self, p: usize) -> bool {
        PROVINCE_NAMES.iter().any(|name| name.chars().enumerate().all(|(i, c)| self.ch(p + i) == c))
    }

    /// Scans back from `p` over a place or road name. Returns where it starts and whether an
    /// administrative unit ends right before it. Function words are ignored when an
    /// administrative unit is found within `max` characters (`和平路`), and stop the name
    /// otherwise (at most six characters then).
    fn name_start(&self, p: usize, max: usize) -> (usize, bool) {
        let mut s = p;
        while s > 0 && p - s < max {
            let k = s - 1;
            if self.is_admin_suffix(k) {
                return (s, true);
            }
            let c = self.ch(k);
            if self.taken(k) || !(is_han(c) || c.is_ascii_alphanumeric()) {
                break;
            }
            s -= 1;
        }
        let mut s = p;
        while s > 0 && p - s < 6 {
            let k = s - 1;
            let c = self.ch(k);
            if self.taken(k) || self.is_admin_suffix(k) || self.is_stop(k) || !(is_han(c) || c.is_ascii_alphanumeric())
            {
                break;
            }
            s -= 1;
        }
        (s, false)
    }

    /// The chain of administrative units ending right before `s`: (start, units, whether the
    /// chain starts with a province name).
    fn admin_chain(&self, s: usize) -> (usize, usize, bool) {
        let mut start = s;
        let mut segments = 0;
        let mut province = false;
        while start > 0 && self.is_admin_suffix(start - 1) {
            let k = start - 1;
            let mut b = k;
            while b > 0 && k - b < 9 {
                let c = self.ch(b - 1);
                if self.taken(b - 1) || !is_han(c) || self.is_admin_suffix(b - 1) {
                    break;
                }
                b -= 1;
            }
            let delimited = b > 0 && self.is_admin_suffix(b - 1);
            if !delimited {
                // The leftmost unit: cut its name at a function word or a province name.
                b = k;
                while b > 0 && k - b < 9 {
                    let c = self.ch(b - 1);
                    if self.taken(b - 1) || !is_han(c) || self.is_admin_suffix(b - 1) || self.is_stop(b - 1) {
                        break;
                    }
                    b -= 1;
                }
                if let Some(pp) = self.province_in(b, k) {
                    b = pp;
                }
            }
            if b == k {
                break;
            }
            start = b;
            segments += 1;
            province = self.province_at(b);
            if !delimited {
                break;
            }
        }
        (start, segments, province)
    }

    /// The end of the address tail that starts at `q`: after the last address-part character,
    /// or after a number right behind one (`B座3201`).
    fn tail_end(&self, q: usize) -> usize {
        let mut t = q;
        let mut end = q;
        while t < self.len() && t - q < 40 {
            let c = self.ch(t);
            if self.taken(t) || self.is_stop(t) || !(is_han(c) || c.is_ascii_alphanumeric() || matches!(c, '-' | '#')) {
                break;
            }
            if TAIL_END.contains(&c) || (end == t && self.is_digit(t)) {
                end = t + 1;
            }
            t += 1;
        }
        end
    }

    /// The length of a building unit at `q` (`栋`, `幢`, `单元`, `室`, `号楼`, `座`, `楼`).
    fn building_unit(&self, q: usize) -> usize {
        match self.ch(q) {
            '栋' | '幢' | '室' | '座' | '楼' => 1,
            '单' if self.ch(q + 1) == '元' => 2,
            '号' if self.ch(q + 1) == '楼' => 2,
            _ => 0,
        }
    }

    /// An address anchored on the road word at `p` (followed by a digit, or by `甲`/`乙`/`丙`
    /// and a digit).
    fn road(&self, p: usize) -> Option<(usize, usize, usize, &'static str)> {
        // One space may sit around the number (`珠江路 88 号`).
        let space = usize::from(self.ch(p + 1) == ' ');
        let mut q = p + 1 + space + self.section(p + 1 + space);
        if matches!(self.ch(q), '甲' | '乙' | '丙') {
            q += 1;
        }
        let number_start = q;
        while self.is_num(q) {
            q += 1;
        }
        let number = q - number_start;
        if number == 0 || number > 5 {
            return None;
        }
        if self.ch(q) == ' ' && matches!(self.ch(q + 1), '号' | '弄') {
            q += 1;
        }
        let has_hao = matches!(self.ch(q), '号' | '弄');
        q += match self.ch(q) {
            '号' if self.ch(q + 1) == '楼' => 2,
            '号' | '弄' | '栋' | '幢' | '#' => 1,
            _ => 0,
        };
        let (s, admin) = self.name_start(p, 16);
        if s == p {
            return None;
        }
        if !admin && (!has_hao || (self.ch(p) == '道' && self.ch(p - 1) != '大')) {
            return None;
        }
        let start = if admin { self.admin_chain(s).0 } else { s };
        Some((start, s, self.tail_end(q), "road name + house number"))
    }

    /// An address anchored on the building number starting at `p`.
    fn building(&self, p: usize) -> Option<(usize, usize, usize, &'static str)> {
        let mut q = p;
        while self.is_num(q) {
            q += 1;
        }
        let rural = p > 0 && matches!(self.ch(p - 1), '村' | '屯') && matches!(self.ch(q), '组' | '队' | '社' | '号');
        let unit = if rural { 1 } else { self.building_unit(q) };
        if q - p > 6 || unit == 0 {
            return None;
        }
        let chain = self.chain_follows(q + unit);
        let (s, admin) = self.name_start(p, 16);
        if !admin {
            // A village needs its name (`李庄村`, not `我们村`).
            if !(rural && p - s >= 2 || chain) {
                return None;
            }
            let why = if rural {
                "village + group or house number"
            } else {
                "chain of building parts (号楼 / 单元 / 室)"
            };
            return Some((s, s, self.tail_end(q + unit), why));
        }
        let (start, segments, province) = self.admin_chain(s);
        if segments < 2 && !province && !rural && !chain {
            return None;
        }
        let why = if rural { "village + group or house number" } else { "building number after administrative units" };
        Some((start, s, self.tail_end(q + unit), why))
    }
}

/// Finds addresses, avoiding `taken` and the units of the candidates already in `out`, and
/// appends them.
pub(crate) fn detect(n: &Normalized, original: &str, taken: &[Range<usize>], out: &mut Vec<Candidate>) {
    let taken = taken.iter().cloned().chain(out.iter().map(|c| c.units.clone())).collect();
    let v = View { n, taken };
    let mut found = Vec::new();
    let mut p = 0;
    while p < v.len() {
        let space = usize::from(v.ch(p + 1) == ' ');
        let after = p + 1 + space + v.section(p + 1 + space);
        let numbered = v.is_num(after) || (matches!(v.ch(after), '甲' | '乙' | '丙') && v.is_num(after + 1));
        let anchor = if v.is_road_suffix(p) && numbered && !v.taken(p) {
            v.road(p)
        } else if v.is_num(p) && (p == 0 || !v.is_num(p - 1)) && !v.taken(p) {
            v.building(p)
        } else {
            None
        };
        match anchor {
            Some((start, admin_end, end, why)) if end > start => {
                let units = v.unit(start)..v.unit(end - 1) + 1;
                let mut masked = String::new();
                if admin_end > start {
                    let kept = v.unit(start)..v.unit(admin_end - 1) + 1;
                    if let Some(r) = n.orig_of_units(kept) {
                        masked.push_str(original.get(r).unwrap_or_default());
                    }
                }
                masked.push_str("****");
                found.push(Candidate::new(PiiKind::Address, units, masked, why));
                p = end;
            }
            _ => p += 1,
        }
    }
    out.extend(found);
}
