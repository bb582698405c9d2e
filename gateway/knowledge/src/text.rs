//! Turning a buyer's message into the terms matching compares: fold full-width characters and
//! case, segment with jieba (search mode: a long word also yields its parts), drop punctuation,
//! bare numbers (order and tracking numbers say nothing about the question) and stopwords, and map
//! every synonym to the first word of its group.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};

use jieba_rs::Jieba;

use crate::pinyin::PinyinReader;

/// Particles, greetings and pronouns that every question shares.
const STOPWORDS: &[&str] = &[
    "的",
    "了",
    "吗",
    "呢",
    "啊",
    "呀",
    "吧",
    "么",
    "嘛",
    "哦",
    "哈",
    "呐",
    "哟",
    "噢",
    "喔",
    "啦",
    "哇",
    "嗯",
    "亲",
    "亲亲",
    "你好",
    "您好",
    "在吗",
    "在不在",
    // A-not-A questions ask with their form: 有没有赠品 is 有赠品吗.
    "有没有",
    "是不是",
    "要不要",
    "请问",
    "问下",
    "问一下",
    "一下",
    "我",
    "我的",
    "你",
    "您",
    "你们",
    "咱",
    "这",
    "这个",
    "那个",
    "那",
    "是",
    "就",
    "都",
    "也",
    "还",
    "和",
    "跟",
    "给",
    "把",
    "被",
    "着",
    "过",
    "吖",
    "谢谢",
    "麻烦",
    "这款",
    "款",
    "件",
    "客服",
    "老板",
    "掌柜",
    "宝贝",
    "想",
    "想问",
    "一个",
    "个",
    "下",
    "有",
    "要",
];

/// The segmenter of one knowledge base: jieba with the shop's words added, its synonyms and
/// stopwords.
pub struct Segmenter {
    jieba: Jieba,
    synonyms: HashMap<String, String>,
    stopwords: HashSet<String>,
    /// The knowledge base's words by their pinyin, once it is built ([`Segmenter::read_pinyin`]).
    pinyin: Option<PinyinReader>,
}

impl Segmenter {
    /// Builds a segmenter; every word of a synonym group and every listed word is kept whole.
    pub fn new(synonym_groups: &[Vec<String>], words: &[String], stopwords: &[String]) -> Segmenter {
        let mut jieba = Jieba::new();
        let mut synonyms = HashMap::new();
        for group in synonym_groups {
            // An empty group is refused by validation; never index into one here.
            let Some(first) = group.first() else { continue };
            let canonical = fold(first);
            for word in group {
                let word = fold(word);
                add(&mut jieba, &word);
                synonyms.insert(word, canonical.clone());
            }
        }
        for word in words {
            add(&mut jieba, &fold(word));
        }
        let stopwords = STOPWORDS.iter().map(|s| s.to_string()).chain(stopwords.iter().map(|s| fold(s))).collect();
        Segmenter { jieba, synonyms, stopwords, pinyin: None }
    }

    /// From now on, reads runs of pinyin as `words` (each with its rank: where two read the
    /// same, the higher wins), plus the stopwords, which sentences need as much as any word.
    pub fn read_pinyin<'a>(&mut self, words: impl IntoIterator<Item = (&'a str, u32)>) {
        let words: Vec<(&str, u32)> = words.into_iter().collect();
        // The synonyms' other words too (`xinjiang` is 新疆, which stands for its group), ranked
        // as a word of their length that no document has; sorted, so that of two that read the
        // same the same one wins every time.
        let mut synonyms: Vec<&String> = self.synonyms.keys().collect();
        synonyms.sort();
        let synonyms = synonyms.into_iter().map(|w| (w.as_str(), w.chars().count() as u32 * 10_000));
        let all = words.into_iter().chain(synonyms).chain(self.stopwords.iter().map(|w| (w.as_str(), 0)));
        self.pinyin = Some(PinyinReader::new(all));
    }

    /// A text as matching reads it: folded, codes dropped, pinyin read as words.
    fn prepare<'a>(&self, folded: &'a str) -> Cow<'a, str> {
        let mut folded = drop_codes(folded);
        if let Some(read) = self.pinyin.as_ref().and_then(|p| p.read(&folded)) {
            folded = Cow::Owned(read);
        }
        folded
    }

    /// The distinct terms of a text, in first-seen order.
    pub fn terms(&self, text: &str) -> Vec<String> {
        self.terms_and_words(text, |_| {})
    }

    /// The distinct terms of a text, as [`Segmenter::terms`], and on the way `words` called with
    /// each word in order as jieba cuts it (no search-mode parts, no synonyms, stopwords kept):
    /// what the semantic re-ranking sums the vectors of ([`crate::vectors`]). One reading and
    /// one cut serve both.
    pub fn terms_and_words(&self, text: &str, mut words: impl FnMut(&str)) -> Vec<String> {
        let folded = fold(text);
        let folded = self.prepare(&folded);
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        let mut push = |word: &str| {
            if !word.chars().any(char::is_alphanumeric) || word.chars().all(|c| c.is_ascii_digit()) {
                return;
            }
            if self.stopwords.contains(word) {
                return;
            }
            let term = self.synonyms.get(word).cloned().unwrap_or_else(|| word.to_string());
            if seen.insert(term.clone()) {
                out.push(term);
            }
        };
        for token in self.jieba.cut(&folded, true) {
            let word = token.word;
            if word.chars().any(char::is_alphanumeric) && !word.chars().all(|c| c.is_ascii_digit()) {
                words(word);
            }
            if self.stopwords.contains(word) {
                // Nor its parts: 有没有 is a question's form, not 没有.
                continue;
            }
            push(word);
            // Search mode by hand: a long word also yields the dictionary words inside it
            // (七天无理由 → 七天, 理由), except a synonym, which stands for its group whole.
            let chars: Vec<(usize, char)> = word.char_indices().collect();
            if chars.len() > 2 && !self.synonyms.contains_key(word) {
                for n in [2, 3] {
                    for w in chars.windows(n) {
                        let start = w[0].0;
                        let end = w[n - 1].0 + w[n - 1].1.len_utf8();
                        let part = &word[start..end];
                        if part != word && self.jieba.has_word(part) {
                            push(part);
                        }
                    }
                }
            }
        }
        // Character pairs of each kept word (多久 → 多久; 实拍图 → 实拍, 拍图), marked with a
        // leading '#': they let 实拍图 meet 实拍 where the segmenter cut the two differently.
        let words = out.clone();
        for w in &words {
            let chars: Vec<char> = w.chars().collect();
            if chars.len() >= 2 && !chars.iter().all(char::is_ascii_alphanumeric) {
                for pair in chars.windows(2) {
                    let term = format!("#{}{}", pair[0], pair[1]);
                    if seen.insert(term.clone()) {
                        out.push(term);
                    }
                }
            }
        }
        out
    }
}

fn add(jieba: &mut Jieba, word: &str) {
    if !word.is_empty() && !jieba.has_word(word) {
        // A frequency high enough that the word beats its parts.
        jieba.add_word(word, Some(50_000), None);
    }
}

/// Words that name the number after them (订单号 4820…): with the number, they are context.
const NUMBER_LABELS: &[&str] =
    &["快递单号", "物流单号", "运单号", "订单编号", "订单号", "单号", "订单", "手机号", "手机", "电话", "税号", "尾号"];

/// Order, tracking and phone numbers, tax ids and e-mail addresses (a run of letters, digits and
/// `@ . _ -` with five or more digits: `SF1402938475612`, `JT5839201746382`, `91330106MA2GK7XP3L`)
/// become a space: like bare numbers they say nothing about the question, and their letters must
/// not read as words (`sf` is 顺丰, `yt` pinyin). So does the word naming the number just before
/// it (`订单号 4820…`, `电话：138…`): a buyer giving the number is not asking where to find it.
/// Borrows the text when there is nothing to drop (most messages: fewer than five digits).
fn drop_codes(text: &str) -> Cow<'_, str> {
    let is_code_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '@' | '.' | '_' | '-');
    if text.bytes().filter(u8::is_ascii_digit).count() < 5 {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.bytes().filter(u8::is_ascii_digit).count() >= 5 {
            let trimmed = out.trim_end_matches([' ', ':', '：', '是']).len();
            if let Some(label) = NUMBER_LABELS.iter().find(|l| out[..trimmed].ends_with(*l)) {
                out.truncate(trimmed - label.len());
            }
            out.push(' ');
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if is_code_char(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    if out == text { Cow::Borrowed(text) } else { Cow::Owned(out) }
}

/// Traditional characters buyers from Hong Kong, Macao and Taiwan type (請問可以開發票嗎), and
/// their simplified forms at the same position in [`SIMPLIFIED`]: the few hundred of shop chat,
/// not a converter (one character to one).
const TRADITIONAL: &str = "請問嗎麼麽這個們貨運費發開還沒郵時間會員優價錢買賣換號碼顏質說話謝為爲樣東與從來對覺讓給應該幾點關閉單訂過後裡裏褲襪裝燈電熱氣燒實體門見現庫滿減贈禮紅帶長張積務態處辦煩壞損舊顆條雙濕乾淨縮變軟輕緊鬆顯檢驗證據圖攝錯誤簽臺灣國際轉區業專統稅頭於達邊誰歡線綫網頁鏈訊聯繫絡簡種類選擇場廠產鋪舖題總極級標準備夠臉膚護蓋餘確認讀寫計設機術師維報壓溫啟動斷續漲試廣愛樂車遞輸調貼剛聽親鐘錶兩數額帳賬戶綁銀匯歸層樓棟規約預參隨傳純絲滌織針釦鈕鍊墊錄擔憂婦嬰兒齡藥醫癢潤細範圍賠償責騙偽僞舉訴罵嚇詢諮議論評讚獎領購櫃絕虧補兌獲藍綠黃寬擺貴隻麵髮鬧團辭無紀鐵陸臨麗廳灑殺壽憑燙癡瘋擠";
const SIMPLIFIED: &str = "请问吗么么这个们货运费发开还没邮时间会员优价钱买卖换号码颜质说话谢为为样东与从来对觉让给应该几点关闭单订过后里里裤袜装灯电热气烧实体门见现库满减赠礼红带长张积务态处办烦坏损旧颗条双湿干净缩变软轻紧松显检验证据图摄错误签台湾国际转区业专统税头于达边谁欢线线网页链讯联系络简种类选择场厂产铺铺题总极级标准备够脸肤护盖余确认读写计设机术师维报压温启动断续涨试广爱乐车递输调贴刚听亲钟表两数额账账户绑银汇归层楼栋规约预参随传纯丝涤织针扣钮链垫录担忧妇婴儿龄药医痒润细范围赔偿责骗伪伪举诉骂吓询咨议论评赞奖领购柜绝亏补兑获蓝绿黄宽摆贵只面发闹团辞无纪铁陆临丽厅洒杀寿凭烫痴疯挤";

fn simplified(c: char) -> char {
    static TABLE: std::sync::OnceLock<HashMap<char, char>> = std::sync::OnceLock::new();
    if (c as u32) < 0x4E00 {
        return c;
    }
    *TABLE.get_or_init(|| TRADITIONAL.chars().zip(SIMPLIFIED.chars()).collect()).get(&c).unwrap_or(&c)
}

/// Full-width ASCII to half-width, ideographic space to space, traditional characters to
/// simplified, lowercase.
pub fn fold(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            c => simplified(c),
        })
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synonyms_stopwords_numbers_and_width_fold() {
        let seg = Segmenter::new(&[vec!["包邮".into(), "免运费".into()]], &[], &[]);
        assert_eq!(seg.terms("亲，这款免运费吗？"), seg.terms("这款包邮吗"));
        assert!(seg.terms("订单１２３４５６７８９什么时候发货").iter().all(|t| !t.contains('1')));
        assert!(!seg.terms("你好在吗").iter().any(|t| t == "在吗" || t == "你好"));
        assert_eq!(seg.terms("有没有赠品"), seg.terms("有赠品吗"));
        assert_eq!(seg.terms("請問可以開發票嗎 運費多少"), seg.terms("请问可以开发票吗 运费多少"));
        assert_eq!(TRADITIONAL.chars().count(), SIMPLIFIED.chars().count());
        let codes = seg.terms("快递单号SF1402938475612，邮箱 liu2048@163.com，税号91330106MA2GK7XP3L");
        assert!(codes.iter().all(|t| !t.is_ascii()), "{codes:?}");
        let mut seg = Segmenter::new(&[vec!["偏远地区".into(), "新疆".into()]], &[], &[]);
        seg.read_pinyin([("包邮", 20_000), ("偏远地区", 40_000)]);
        assert_eq!(seg.terms("xinjiang bao you ma"), seg.terms("新疆包邮吗"), "a synonym's other words read too");
        assert!(seg.terms("订单号：4820193756102846 还没发货").iter().all(|t| !t.contains("单号")));
        assert!(seg.terms("订单号在哪看").iter().any(|t| t.contains("订单")));
    }

    /// The words the re-ranking sums: jieba's cut of the prepared text in order, stopwords and
    /// repeats kept, numbers, codes and punctuation not, pinyin read; the terms unchanged by
    /// asking for them.
    #[test]
    fn words_come_from_the_same_reading_as_terms() {
        let mut seg = Segmenter::new(&[vec!["包邮".into(), "免运费".into()]], &[], &[]);
        seg.read_pinyin([("包邮", 20_000), ("发货", 20_000)]);
        let text = "亲，免运费吗？免运费的话 订单号4820193756102846 什么时候发货";
        let mut words = Vec::new();
        let terms = seg.terms_and_words(text, |w| words.push(w.to_string()));
        assert_eq!(terms, seg.terms(text));
        assert_eq!(words.iter().filter(|w| *w == "免运费").count(), 2, "{words:?}");
        assert!(words.iter().any(|w| w == "吗"), "stopwords are words: {words:?}");
        let mut read = Vec::new();
        seg.terms_and_words("fa huo le ma", |w| read.push(w.to_string()));
        assert!(read.iter().any(|w| w == "发货"), "pinyin read: {read:?}");
        assert!(words.iter().all(|w| w.chars().any(char::is_alphanumeric) && !w.contains('4')), "{words:?}");
        assert!(!words.iter().any(|w| w == "订单号"), "the code's label is dropped with it: {words:?}");
    }

    /// Nothing to drop, nothing copied: a message without a code comes back borrowed.
    #[test]
    fn drop_codes_borrows_when_nothing_is_dropped() {
        assert!(matches!(drop_codes("这款包邮吗"), Cow::Borrowed("这款包邮吗")));
        assert!(matches!(drop_codes("尺码 160 170 180 190 200"), Cow::Borrowed(_)), "short numbers stay");
        let dropped = drop_codes("订单号 4820193756102846 还没发货");
        assert!(matches!(dropped, Cow::Owned(_)));
        assert_eq!(dropped.trim(), "还没发货");
    }
}
