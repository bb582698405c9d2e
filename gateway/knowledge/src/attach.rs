//! Rich answers: the `[[entry.attach]]` tables of an entry — a picture by URL, a product card, an
//! order card — sent after the answer's text, as elements of the same reply. This module holds
//! the table as written, its checks, and what it becomes in one conversation ([`Attachment`]);
//! the daemon turns that into the SDK's content elements.
//!
//! A product card names a product id, or `{product}`: the conversation's product (its newest
//! product card). An order card names `{order}`: the conversation's latest order. When the
//! conversation has no such value the attachment is left out — never a card without an id.

use std::collections::BTreeMap;

use serde::Deserialize;

use huiliu_domain::text::{is_blank, placeholders};

/// At most this many attachments per entry: each goes out as a message of its own.
pub const MAX_ATTACHMENTS: usize = 5;

/// The keys an `[[entry.attach]]` table may have.
pub const KEYS: &[&str] = &["image", "product", "title", "order"];

/// The placeholder a product card may name instead of an id: the conversation's product.
pub const PRODUCT_PLACEHOLDER: &str = "{product}";

/// The one value an order card takes: the conversation's latest order.
pub const ORDER_PLACEHOLDER: &str = "{order}";

/// `[[entry.attach]]` as written: exactly one of `image`, `product` (with an optional `title`)
/// or `order`. Keys it does not know are kept so that the check can name them with the entry.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Attach {
    /// A picture: an absolute http(s) URL.
    #[serde(default)]
    pub image: Option<String>,
    /// A product card: a product id, or `{product}` (the conversation's product).
    #[serde(default)]
    pub product: Option<String>,
    /// The product card's title; without it, the product's `[[product]]` name (or, for
    /// `{product}`, the title of the conversation's card).
    #[serde(default)]
    pub title: Option<String>,
    /// An order card: `{order}`, the conversation's latest order.
    #[serde(default)]
    pub order: Option<String>,
    /// Keys not in [`KEYS`] (refused by [`Attach::problems`]).
    #[serde(flatten)]
    pub unknown: BTreeMap<String, serde::de::IgnoredAny>,
}

/// An attachment as sent in one conversation, its placeholders filled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attachment {
    Image { url: String },
    Product { id: String, title: Option<String> },
    Order { id: String },
}

/// What an entry's attachments can name in a conversation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Subject<'a> {
    /// The conversation's product (its newest product card): the id, and the card's title when
    /// it has one (else the card is titled with the id's `[[product]]` name).
    pub product: Option<(&'a str, Option<&'a str>)>,
    /// The conversation's latest order.
    pub order: Option<&'a str>,
}

impl Attach {
    /// An image attachment.
    pub fn image(url: impl Into<String>) -> Attach {
        Attach { image: Some(url.into()), ..Attach::default() }
    }

    /// A product card (`{product}` for the conversation's product).
    pub fn product(id: impl Into<String>, title: Option<String>) -> Attach {
        Attach { product: Some(id.into()), title, ..Attach::default() }
    }

    /// The order card of the conversation's latest order.
    pub fn order() -> Attach {
        Attach { order: Some(ORDER_PLACEHOLDER.into()), ..Attach::default() }
    }

    /// What is wrong with the table, in words (the caller adds the entry and the key);
    /// `known` are the placeholders of answers, for naming an unknown one as such.
    pub fn problems(&self, known: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        for key in self.unknown.keys() {
            out.push(format!("unknown key `{key}` (known: {})", KEYS.join(", ")));
        }
        let kinds: Vec<&str> = [("image", &self.image), ("product", &self.product), ("order", &self.order)]
            .into_iter()
            .filter(|(_, v)| v.is_some())
            .map(|(k, _)| k)
            .collect();
        match kinds.len() {
            0 => out.push("name one of image, product or order".into()),
            1 => {}
            _ => out.push(format!(
                "one kind per table: this one has {} (write one [[entry.attach]] each)",
                kinds.join(" and ")
            )),
        }
        if let Some(url) = &self.image
            && !is_http_url(url)
        {
            out.push(match unknown_placeholder(url, known) {
                Some(name) => format!("unknown placeholder {{{name}}} in image (a picture is a fixed URL)"),
                None => format!("image `{url}` is not an http(s) URL (https://host/path, no spaces or braces)"),
            });
        }
        if let Some(product) = &self.product
            && !is_product(product)
        {
            out.push(match unknown_placeholder(product, known) {
                Some(name) => format!("unknown placeholder {{{name}}} in product (a product id, or {{product}})"),
                None if is_blank(product) => "the product id is empty".into(),
                None => format!("product `{product}`: a product id (no braces), or exactly {{product}}"),
            });
        }
        if let Some(title) = &self.title {
            if self.product.is_none() {
                out.push("title belongs to a product card".into());
            } else if !is_title(title) {
                out.push(match unknown_placeholder(title, known) {
                    Some(name) => format!("unknown placeholder {{{name}}} in title (a title is plain text)"),
                    None if is_blank(title) => "the title is empty".into(),
                    None => format!("title `{title}`: plain text, no braces"),
                });
            }
        }
        if let Some(order) = &self.order
            && order != ORDER_PLACEHOLDER
        {
            out.push(match unknown_placeholder(order, known) {
                Some(name) => format!("unknown placeholder {{{name}}} in order (an order card takes {{order}})"),
                None => format!("order `{order}`: an order card takes {{order}}, the conversation's latest order"),
            });
        }
        out
    }

    /// The attachment in a conversation, or `None` when it names a value the conversation does
    /// not have (`{product}` without a product card, `{order}` without an order). `name_of`
    /// gives a product id's `[[product]]` name, the title of a card that has none.
    pub fn resolve<'a>(&self, subject: &Subject<'a>, name_of: impl Fn(&str) -> Option<&'a str>) -> Option<Attachment> {
        if let Some(url) = &self.image {
            return Some(Attachment::Image { url: url.clone() });
        }
        if let Some(product) = &self.product {
            let (id, name) = if product == PRODUCT_PLACEHOLDER {
                let (id, title) = subject.product?;
                (id, title.or_else(|| name_of(id)))
            } else {
                (product.as_str(), name_of(product))
            };
            let title = self.title.as_deref().or(name).map(str::to_owned);
            return Some(Attachment::Product { id: id.to_owned(), title });
        }
        if self.order.is_some() {
            return subject.order.filter(|o| !is_blank(o)).map(|id| Attachment::Order { id: id.to_owned() });
        }
        None
    }
}

/// The first `{name}` of `text` that is not one of the `known` placeholders.
fn unknown_placeholder<'t>(text: &'t str, known: &[&str]) -> Option<&'t str> {
    placeholders(text).into_iter().find(|p| !known.contains(p))
}

/// The characters a URL's path, query and fragment may have (RFC 3986's unreserved, reserved
/// and `%`): printable ASCII less space, `"` `<` `>` `\` `^` `` ` `` `{` `|` `}`.
const URL_TAIL: &str = "._~:/?#[]@!$&'()*+,;=%-";

/// `IMAGE_PATTERN` (the API's JSON Schema pattern for an image) as code: `http://` or
/// `https://`, a host of ASCII letters, digits, `.` and `-`, an optional port of 1–5 digits,
/// then optionally a path, query or fragment in [`URL_TAIL`]'s characters.
pub fn is_http_url(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")) else { return false };
    let (authority, tail) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    !host.is_empty()
        && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        && port.is_none_or(|p| (1..=5).contains(&p.len()) && p.chars().all(|c| c.is_ascii_digit()))
        && tail.chars().all(|c| c.is_ascii_alphanumeric() || URL_TAIL.contains(c))
}

/// The JSON Schema pattern of an image URL, what [`is_http_url`] accepts.
pub const IMAGE_PATTERN: &str =
    "^https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:[/?#][A-Za-z0-9._~:/?#\\[\\]@!$&'()*+,;=%-]*)?$";

/// The JSON Schema pattern of a product card's `product`: `{product}`, or an id that is not
/// blank and has no braces ([`is_product`]).
pub const PRODUCT_PATTERN: &str = "^(?:\\{product\\}|[^{}]*[^{} \\t\\n\\r\u{3000}][^{}]*)$";

/// The JSON Schema pattern of a product card's `title`: not blank, no braces ([`is_title`]).
pub const TITLE_PATTERN: &str = "^[^{}]*[^{} \\t\\n\\r\u{3000}][^{}]*$";

/// The JSON Schema pattern of an order card's `order`: exactly `{order}`.
pub const ORDER_PATTERN: &str = "^\\{order\\}$";

/// Whether `product` names a product: `{product}`, or an id that is not blank and has no braces.
pub fn is_product(product: &str) -> bool {
    product == PRODUCT_PLACEHOLDER || is_title(product)
}

/// Whether `title` is a card title: plain text, not blank, no braces.
pub fn is_title(title: &str) -> bool {
    !is_blank(title) && !title.contains(['{', '}'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_absolute_http_with_a_host() {
        for ok in [
            "https://img.example.com/size-chart.png",
            "http://10.0.0.1:8080/a.jpg?x=1&y=%E5%9B%BE#top",
            "https://cdn.example.com",
            "https://x?y",
        ] {
            assert!(is_http_url(ok), "{ok}");
        }
        for bad in [
            "ftp://example.com/a.png",
            "//example.com/a.png",
            "https:///a.png",
            "https://example.com/a b.png",
            "https://example.com/{product}.png",
            "https://example.com:80a/",
            "https://user@example.com/",
            "data:image/png;base64,AAAA",
            "HTTPS://EXAMPLE.COM/",
            "https://例子.com/",
        ] {
            assert!(!is_http_url(bad), "{bad}");
        }
    }

    fn one(a: &Attach) -> Vec<String> {
        a.problems(&["buyer", "order", "product", "shop"])
    }

    #[test]
    fn each_table_is_one_known_kind_with_known_values() {
        assert!(one(&Attach::image("https://img.example.com/a.png")).is_empty());
        assert!(one(&Attach::product("{product}", None)).is_empty());
        assert!(one(&Attach::product("E60-2024", Some("小汇电热水器".into()))).is_empty());
        assert!(one(&Attach::order()).is_empty());
        assert_eq!(one(&Attach::default()), ["name one of image, product or order"]);
        let both = Attach { image: Some("https://x/a.png".into()), ..Attach::order() };
        assert!(one(&both)[0].contains("has image and order"), "{:?}", one(&both));
        let cases = [
            (Attach::image("ftp://x/a.png"), "is not an http(s) URL"),
            (Attach::image("https://x/{sku}.png"), "unknown placeholder {sku}"),
            (Attach::product("{sku}", None), "unknown placeholder {sku}"),
            (Attach::product("{order}", None), "exactly {product}"),
            (Attach::product(" ", None), "the product id is empty"),
            (Attach::product("p1", Some("{product}".into())), "plain text, no braces"),
            (Attach { title: Some("t".into()), ..Attach::order() }, "title belongs to a product card"),
            (Attach { order: Some("{buyer}".into()), ..Attach::default() }, "takes {order}"),
            (Attach { order: Some("{tid}".into()), ..Attach::default() }, "unknown placeholder {tid}"),
        ];
        for (attach, says) in cases {
            let problems = one(&attach);
            assert!(problems.len() == 1 && problems[0].contains(says), "{attach:?}: {problems:?}");
        }
    }

    #[test]
    fn placeholders_take_the_conversations_values_or_the_attachment_is_left_out() {
        let names = |id: &str| (id == "e60").then_some("小汇电热水器E60");
        let card = Attach::product("{product}", None);
        let none = Subject::default();
        assert_eq!(card.resolve(&none, names), None, "no product card in the conversation: no card");
        assert_eq!(Attach::order().resolve(&none, names), None, "no order: no order card");
        let subject = Subject { product: Some(("e60", None)), order: Some("4512339871") };
        assert_eq!(
            card.resolve(&subject, names),
            Some(Attachment::Product { id: "e60".into(), title: Some("小汇电热水器E60".into()) })
        );
        let titled = Subject { product: Some(("e60", Some("卡片标题"))), ..subject };
        assert_eq!(
            card.resolve(&titled, names),
            Some(Attachment::Product { id: "e60".into(), title: Some("卡片标题".into()) }),
            "the card's own title first"
        );
        assert_eq!(Attach::order().resolve(&subject, names), Some(Attachment::Order { id: "4512339871".into() }));
        let fixed = Attach::product("e60", None);
        assert_eq!(
            fixed.resolve(&none, names),
            Some(Attachment::Product { id: "e60".into(), title: Some("小汇电热水器E60".into()) }),
            "a fixed product needs nothing from the conversation"
        );
        let own = Attach::product("g16", Some("燃气热水器".into()));
        assert_eq!(
            own.resolve(&none, names),
            Some(Attachment::Product { id: "g16".into(), title: Some("燃气热水器".into()) })
        );
        let image = Attach::image("https://img.example.com/a.png");
        assert_eq!(
            image.resolve(&none, names),
            Some(Attachment::Image { url: "https://img.example.com/a.png".into() })
        );
    }
}
