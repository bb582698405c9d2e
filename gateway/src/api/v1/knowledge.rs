//! The knowledge base as leads and admins edit it (知识库维护): list, add, change and remove
//! the entries of `faq.toml`. Each change rewrites only that entry's block of the file and
//! reloads it at once, as a change of the file would (`services::faq_file`); it is audited.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};

use crate::api::ApiState;
use crate::api::caller::Lead;
use crate::api::error::{ApiError, ApiResult, ErrorBody, Json, Path};
use crate::services::faq_file::{FAQ_SOURCE, FaqEditError, Listed};
use huiliu_knowledge::Attach;
use huiliu_knowledge::attach::{MAX_ATTACHMENTS, ORDER_PLACEHOLDER, is_http_url, is_product, is_title};
use huiliu_knowledge::config::{Conditions, Entry, Hours};

/// The answer's `pattern`: not blank, and every `{…}` one of the known placeholders (an
/// unclosed `{` is plain text). Written out again in [`EntryBody::answer`]'s attribute (a
/// macro wants a literal); a test keeps the two, and the knowledge base's own check, in step.
#[cfg(test)]
pub const ANSWER_PATTERN: &str = "^(?:(?:[^{]|\\{(?:buyer|order|product|shop)\\})*(?:[^{ \\t\\n\\r\u{3000}]|\\{(?:buyer|order|product|shop)\\})(?:[^{]|\\{(?:buyer|order|product|shop)\\})*(?:\\{[^}]*)?|(?:[^{]|\\{(?:buyer|order|product|shop)\\})*\\{[^}]*)$";

/// The id's `pattern` (written out again in [`EntryBody::id`]'s attribute; a test keeps it in
/// step with the knowledge base's own check).
#[cfg(test)]
pub const ID_PATTERN: &str = "^[a-z0-9-]{1,64}$";

/// A buyer's order state, as an entry's condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    None,
    Unpaid,
    Paid,
    Shipped,
    Delivered,
    Refunding,
    Refunded,
    Closed,
}

impl OrderState {
    const ALL: [OrderState; 8] = [
        OrderState::None,
        OrderState::Unpaid,
        OrderState::Paid,
        OrderState::Shipped,
        OrderState::Delivered,
        OrderState::Refunding,
        OrderState::Refunded,
        OrderState::Closed,
    ];

    fn word(self) -> &'static str {
        huiliu_knowledge::config::ORDER_STATES[self as usize]
    }

    fn from_word(word: &str) -> Option<OrderState> {
        OrderState::ALL.into_iter().find(|s| s.word() == word)
    }
}

/// A Beijing-time window, minutes since midnight; `from` after `to` wraps midnight
/// (`{"from": 1380, "to": 540}` is 23:00–09:00).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Window {
    #[serde(deserialize_with = "minute")]
    #[schema(minimum = 0, maximum = 1440)]
    pub from: u16,
    #[serde(deserialize_with = "minute")]
    #[schema(minimum = 0, maximum = 1440)]
    pub to: u16,
}

/// A minute of the day; a JSON number with a zero fraction (`540.0`) counts, as JSON Schema's
/// `integer` admits it. The range (0–1440) is checked with the rest of the body.
fn minute<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    n.as_u64()
        .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && (0.0..=65535.0).contains(f)).map(|f| f as u64))
        .and_then(|v| u16::try_from(v).ok())
        .ok_or_else(|| serde::de::Error::custom(format!("{n} is not a minute of the day (0 to 1440)")))
}

fn list_schema(max_items: usize, max_length: usize, what: &str) -> RefOr<Schema> {
    ArrayBuilder::new()
        .items(ObjectBuilder::new().schema_type(Type::String).max_length(Some(max_length)))
        .max_items(Some(max_items))
        .description(Some(format!(
            "At most {max_items} {what} of at most {max_length} characters; blank ones are dropped"
        )))
        .into()
}

fn variants_schema() -> RefOr<Schema> {
    list_schema(100, 200, "variants")
}

fn names_schema() -> RefOr<Schema> {
    list_schema(50, 64, "ids")
}

/// When an entry applies (条件设置); every listed condition must hold, an empty list means any.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryWhen {
    /// Platforms (taobao, douyin, jd, wechat-shop).
    #[serde(default)]
    #[schema(schema_with = names_schema)]
    pub platforms: Vec<String>,
    /// Shop ids of shops.toml (an unknown one: 404).
    #[serde(default)]
    #[schema(schema_with = names_schema)]
    pub shops: Vec<String>,
    /// Product ids: only conversations about one of them.
    #[serde(default)]
    #[schema(schema_with = names_schema)]
    pub products: Vec<String>,
    /// The buyer's latest order state.
    #[serde(default)]
    #[schema(max_items = 8)]
    pub order_states: Vec<OrderState>,
    /// Only in this window. May be left out, not sent as null.
    #[serde(default, deserialize_with = "crate::api::error::present", skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub hours: Option<Window>,
}

/// A picture sent after the answer's text.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachImage {
    /// An absolute http(s) URL (`https://host/path`; no spaces or braces), at most 2000
    /// characters.
    #[schema(
        max_length = 2000,
        pattern = "^https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:[/?#][A-Za-z0-9._~:/?#\\[\\]@!$&'()*+,;=%-]*)?$"
    )]
    pub image: String,
}

/// A product card sent after the answer's text.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachProduct {
    /// A product id (no braces), or `{product}`: the conversation's product (its newest product
    /// card; without one the card is left out). At most 64 characters.
    #[schema(max_length = 64, pattern = "^(?:\\{product\\}|[^{}]*[^{} \\t\\n\\r\u{3000}][^{}]*)$")]
    pub product: String,
    /// The card's title (plain text, no braces, at most 200 characters); left out: the
    /// product's name in faq.toml `[[product]]`, or the title of the conversation's card. May be
    /// left out, not sent as null.
    #[serde(default, deserialize_with = "crate::api::error::present")]
    #[schema(nullable = false, max_length = 200, pattern = "^[^{}]*[^{} \\t\\n\\r\u{3000}][^{}]*$")]
    pub title: Option<String>,
}

/// The order card of the conversation's latest order, sent after the answer's text (left out
/// when the buyer has no order).
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachOrder {
    /// `{order}`: the conversation's latest order.
    #[schema(pattern = "^\\{order\\}$")]
    pub order: String,
}

/// One rich element of an answer (faq.toml `[[entry.attach]]`): exactly one of a picture, a
/// product card or the order card.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum AttachBody {
    Image(AttachImage),
    Product(AttachProduct),
    Order(AttachOrder),
}

/// An entry as a lead writes it: the standard question, its variants, the answer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"id": "invoice-how", "question": "可以开发票吗", "variants": ["能开票吗", "发票怎么开"],
    "answer": "{buyer}您好，可以开具电子发票，下单时填写抬头即可～", "when": {"order_states": ["paid"]}}))]
pub struct EntryBody {
    /// The entry's id, the name it has in the figures and in faq.toml: lowercase letters,
    /// digits and `-`, at most 64. When adding: left out, the entry gets `entry-N`; taken, 409
    /// `entry_exists`. When changing: left out or the entry's own; another id is refused (409
    /// `id_mismatch`: an id does not change). May be left out, not sent as null.
    #[serde(default, deserialize_with = "crate::api::error::present")]
    #[schema(nullable = false, pattern = "^[a-z0-9-]{1,64}$")]
    pub id: Option<String>,
    /// The standard question (标准问题), at most 200 characters.
    #[schema(min_length = 1, max_length = 200, pattern = "[^ \\t\\n\\r\u{3000}]")]
    pub question: String,
    /// Other ways buyers ask it (相似问法).
    #[serde(default)]
    #[schema(schema_with = variants_schema)]
    pub variants: Vec<String>,
    /// The answer, at most 2000 characters, with the placeholders {buyer} {order} {product}
    /// {shop} and no other `{…}`.
    #[schema(
        min_length = 1,
        max_length = 2000,
        pattern = "^(?:(?:[^{]|\\{(?:buyer|order|product|shop)\\})*(?:[^{ \\t\\n\\r\u{3000}]|\\{(?:buyer|order|product|shop)\\})(?:[^{]|\\{(?:buyer|order|product|shop)\\})*(?:\\{[^}]*)?|(?:[^{]|\\{(?:buyer|order|product|shop)\\})*\\{[^}]*)$"
    )]
    pub answer: String,
    /// A routing category id (`complaint`: the bot never answers it itself); blank = none.
    /// May be left out, not sent as null.
    #[serde(default, deserialize_with = "crate::api::error::present")]
    #[schema(nullable = false, max_length = 64)]
    pub category: Option<String>,
    #[serde(default)]
    pub when: EntryWhen,
    /// Rich elements sent after the answer's text, in order (at most 5).
    #[serde(default)]
    #[schema(max_items = 5)]
    pub attach: Vec<AttachBody>,
}

/// An entry's attachment as faq.toml has it: one of `image`, `product` (with an optional
/// `title`) or `order`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct EntryAttachment {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub product: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub order: Option<String>,
}

/// An entry's conditions as faq.toml has them (a file written by hand is not held to the
/// bounds of [`EntryWhen`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct EntryConditions {
    pub platforms: Vec<String>,
    pub shops: Vec<String>,
    pub products: Vec<String>,
    pub order_states: Vec<OrderState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub hours: Option<Window>,
}

/// An entry of the knowledge base.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct KnowledgeEntry {
    /// Its id (the name in the figures).
    pub id: String,
    /// Where it is written: `faq.toml`, or the CSV export (`[knowledge] csv`) it was loaded from.
    pub source: String,
    /// Whether it can be changed or removed here: faq.toml's entries can; a CSV export's are
    /// read-only (409 `entry_read_only`: edit the export, or import it into faq.toml).
    pub editable: bool,
    pub question: String,
    pub variants: Vec<String>,
    pub answer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub category: Option<String>,
    pub when: EntryConditions,
    /// Its rich elements (`[[entry.attach]]`), sent after the answer's text.
    pub attach: Vec<EntryAttachment>,
}

/// The entries in force: faq.toml's in file order, then those loaded from CSV exports
/// (read-only).
#[derive(Debug, Serialize, ToSchema)]
pub struct KnowledgeEntries {
    pub entries: Vec<KnowledgeEntry>,
}

/// Done.
#[derive(Debug, Serialize, ToSchema)]
pub struct Removed {
    pub removed: String,
}

fn hhmm(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

impl From<Listed> for KnowledgeEntry {
    fn from(l: Listed) -> Self {
        KnowledgeEntry { source: l.source, editable: l.editable, ..KnowledgeEntry::from(l.entry) }
    }
}

impl From<Entry> for KnowledgeEntry {
    fn from(e: Entry) -> Self {
        let when = EntryConditions {
            platforms: e.when.platforms,
            shops: e.when.shops,
            products: e.when.products,
            order_states: e.when.order_states.iter().filter_map(|s| OrderState::from_word(s)).collect(),
            hours: e.when.hours.as_deref().and_then(Hours::parse).map(|h| Window { from: h.from, to: h.to }),
        };
        KnowledgeEntry {
            id: e.id,
            source: FAQ_SOURCE.into(),
            editable: true,
            question: e.question,
            variants: e.variants,
            answer: e.answer,
            category: e.category,
            when,
            attach: e
                .attach
                .into_iter()
                .map(|a| EntryAttachment { image: a.image, product: a.product, title: a.title, order: a.order })
                .collect(),
        }
    }
}

/// The attachment a body's element describes, or why it is refused (what its schema says).
fn attach_of(body: AttachBody) -> Result<Attach, &'static str> {
    match body {
        AttachBody::Image(AttachImage { image }) if is_http_url(&image) && image.chars().count() <= 2000 => {
            Ok(Attach::image(image))
        }
        AttachBody::Image(_) => Err("an image is an http(s) URL of at most 2000 characters, no spaces or braces"),
        AttachBody::Product(AttachProduct { product, title })
            if is_product(&product)
                && product.chars().count() <= 64
                && title.as_deref().is_none_or(|t| is_title(t) && t.chars().count() <= 200) =>
        {
            Ok(Attach::product(product, title))
        }
        AttachBody::Product(_) => Err(
            "a product card names a product id (at most 64 characters, no braces) or {product}, and an optional plain title of at most 200",
        ),
        AttachBody::Order(AttachOrder { order }) if order == ORDER_PLACEHOLDER => Ok(Attach::order()),
        AttachBody::Order(_) => Err("an order card takes {order}"),
    }
}

fn too_long(list: &[String], items: usize, chars: usize) -> bool {
    list.len() > items || list.iter().any(|s| s.chars().count() > chars)
}

fn kept(list: Vec<String>) -> Vec<String> {
    list.into_iter().filter(|s| !super::is_blank(s)).collect()
}

/// Whether `id` is an entry id (faq.toml's rule: lowercase letters, digits, `-`; here at most 64).
fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The entry a body describes (its id "" when it names none: the service picks one), or why
/// the body is refused.
fn entry_of(body: EntryBody) -> Result<Entry, ApiError> {
    let bad = |message: &str| ApiError::bad_request("invalid_body", message);
    if body.id.as_deref().is_some_and(|id| !valid_id(id)) {
        return Err(bad("the id is 1 to 64 lowercase letters, digits or -"));
    }
    if super::is_blank(&body.question) || body.question.chars().count() > 200 {
        return Err(bad("the question must be 1 to 200 characters, not blank"));
    }
    if super::is_blank(&body.answer) || body.answer.chars().count() > 2000 {
        return Err(bad("the answer must be 1 to 2000 characters, not blank"));
    }
    if too_long(&body.variants, 100, 200) {
        return Err(bad("at most 100 variants of at most 200 characters"));
    }
    let w = body.when;
    if [&w.platforms, &w.shops, &w.products].iter().any(|l| too_long(l, 50, 64)) || w.order_states.len() > 8 {
        return Err(bad("at most 50 platforms, shops or products of at most 64 characters, 8 order states"));
    }
    if w.hours.is_some_and(|h| h.from > 1440 || h.to > 1440) {
        return Err(bad("hours are minutes since midnight, 0 to 1440"));
    }
    if body.category.as_ref().is_some_and(|c| c.chars().count() > 64) {
        return Err(bad("the category is at most 64 characters"));
    }
    if body.attach.len() > MAX_ATTACHMENTS {
        return Err(bad("at most 5 attachments"));
    }
    let attach = body.attach.into_iter().map(attach_of).collect::<Result<Vec<_>, _>>().map_err(bad)?;
    let mut states: Vec<String> = Vec::new();
    for s in &w.order_states {
        if !states.iter().any(|x| x == s.word()) {
            states.push(s.word().to_owned());
        }
    }
    Ok(Entry {
        id: body.id.unwrap_or_default(),
        question: body.question,
        variants: kept(body.variants),
        answer: body.answer,
        category: body.category.filter(|c| !super::is_blank(c)),
        when: Conditions {
            platforms: kept(w.platforms),
            shops: kept(w.shops),
            products: kept(w.products),
            order_states: states,
            hours: w.hours.map(|h| format!("{}-{}", hhmm(h.from), hhmm(h.to))),
        },
        attach,
    })
}

fn edit_error(e: FaqEditError) -> ApiError {
    let message = e.to_string();
    match e {
        FaqEditError::UnknownEntry(_) => ApiError(StatusCode::NOT_FOUND, "unknown_entry", message),
        // The entry exists; where it is written forbids the edit.
        FaqEditError::ReadOnly { .. } => ApiError(StatusCode::CONFLICT, "entry_read_only", message),
        FaqEditError::EntryExists(_) => ApiError(StatusCode::CONFLICT, "entry_exists", message),
        // 409, not 404: the entry (or the path's id) exists; what it names conflicts with
        // shops.toml. A 404 after a create reads as "the created entry is gone".
        FaqEditError::UnknownShop(_) => ApiError(StatusCode::CONFLICT, "unknown_shop", message),
        FaqEditError::Invalid(_) => ApiError(StatusCode::UNPROCESSABLE_ENTITY, "invalid_entry", message),
        FaqEditError::NotEditable(_) => ApiError(StatusCode::CONFLICT, "faq_not_editable", message),
        FaqEditError::File(_) => ApiError(StatusCode::INTERNAL_SERVER_ERROR, "faq_file", message),
        FaqEditError::Store(e) => crate::services::ServiceError::from(e).into(),
    }
}

/// The entries of the knowledge base (知识库): faq.toml's as the file has them, then those of
/// its CSV exports, each with its source and whether it can be edited here.
#[utoipa::path(get, path = "/knowledge/entries", tag = "admin", responses(
    (status = 200, description = "The entries", body = KnowledgeEntries),
    (status = 409, description = "faq.toml has errors or entries written otherwise than as [[entry]] tables", body = ErrorBody),
))]
pub async fn list(State(state): State<Arc<ApiState>>, Lead(_): Lead) -> ApiResult<KnowledgeEntries> {
    let entries = state.faq.entries().map_err(edit_error)?;
    Ok(Json(KnowledgeEntries { entries: entries.into_iter().map(KnowledgeEntry::from).collect() }))
}

/// Adds an entry under its id (or a new `entry-N` when it names none), at the end of faq.toml,
/// in force at once (audited).
#[utoipa::path(post, path = "/knowledge/entries", tag = "admin", request_body = EntryBody, responses(
    (status = 201, description = "Added and in force", body = KnowledgeEntry),
    (status = 409, description = "Its id is taken (`entry_exists`), a shop it names is not in shops.toml (`unknown_shop`), or faq.toml cannot be edited here (it has errors, or entries written otherwise)", body = ErrorBody),
    (status = 422, description = "The knowledge base would not load with it; nothing changed", body = ErrorBody),
))]
pub async fn add(
    State(state): State<Arc<ApiState>>,
    Lead(me): Lead,
    Json(body): Json<EntryBody>,
) -> Result<(StatusCode, Json<KnowledgeEntry>), ApiError> {
    let entry = state.faq.add(&me, entry_of(body)?).await.map_err(edit_error)?;
    Ok((StatusCode::CREATED, Json(entry.into())))
}

/// Replaces an entry of faq.toml (its block only; the id stays), in force at once (audited).
#[utoipa::path(put, path = "/knowledge/entries/{id}", tag = "admin", request_body = EntryBody,
    params(("id" = String, Path, description = "Entry id")),
    responses(
        (status = 200, description = "Changed and in force", body = KnowledgeEntry),
        (status = 404, description = "No such entry", body = ErrorBody),
        (status = 409, description = "The entry comes from a CSV export and is read-only here (`entry_read_only`), the body names another id (`id_mismatch`), a shop it names is not in shops.toml (`unknown_shop`), or faq.toml cannot be edited here (it has errors, or entries written otherwise)", body = ErrorBody),
        (status = 422, description = "The knowledge base would not load with it; nothing changed", body = ErrorBody),
    ))]
pub async fn change(
    State(state): State<Arc<ApiState>>,
    Lead(me): Lead,
    Path(id): Path<String>,
    Json(body): Json<EntryBody>,
) -> ApiResult<KnowledgeEntry> {
    let entry = entry_of(body)?;
    if !entry.id.is_empty() && entry.id != id {
        let message =
            format!("an entry's id does not change: `{id}` cannot become `{}` (add a new entry instead)", entry.id);
        return Err(ApiError(StatusCode::CONFLICT, "id_mismatch", message));
    }
    let entry = state.faq.change(&me, &id, entry).await.map_err(edit_error)?;
    Ok(Json(entry.into()))
}

/// Removes an entry from faq.toml, with the comment lines directly above it, at once (audited).
#[utoipa::path(delete, path = "/knowledge/entries/{id}", tag = "admin",
    params(("id" = String, Path, description = "Entry id")),
    responses(
        (status = 200, description = "Removed", body = Removed),
        (status = 404, description = "No such entry", body = ErrorBody),
        (status = 409, description = "The entry comes from a CSV export and is read-only here (`entry_read_only`), or faq.toml cannot be edited here (it has errors, or entries written otherwise)", body = ErrorBody),
        (status = 422, description = "The knowledge base would not load without it; nothing changed", body = ErrorBody),
    ))]
pub async fn remove(State(state): State<Arc<ApiState>>, Lead(me): Lead, Path(id): Path<String>) -> ApiResult<Removed> {
    state.faq.remove(&me, &id).await.map_err(edit_error)?;
    Ok(Json(Removed { removed: id }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answer's pattern says what the knowledge base's own check says.
    #[test]
    fn the_answer_pattern_agrees_with_faq_validation() {
        let re = regex::Regex::new(ANSWER_PATTERN).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&super::super::document(&super::super::routes().1)).unwrap();
        assert_eq!(doc["components"]["schemas"]["EntryBody"]["properties"]["answer"]["pattern"], ANSWER_PATTERN);
        for known in huiliu_knowledge::config::PLACEHOLDERS {
            assert!(ANSWER_PATTERN.contains(&format!("|{known}")) || ANSWER_PATTERN.contains(&format!("(?:{known}")));
        }
        let samples = [
            "好的",
            "{buyer}您好",
            "{buyer}",
            "{nick}您好",
            "亲{",
            "亲{buyer",
            "{a{buyer}",
            "满99}包邮",
            "{}",
            " ",
            "\u{3000}\n",
            " {",
            "{shop}{order}{product}",
            "{buyer}{x}",
            "x{y}z",
            "\t{buyer} ",
            "}{",
            "{{buyer}}",
            "\u{a0}",
        ];
        for answer in samples {
            let faq = format!(
                "[[entry]]\nid = \"a\"\nquestion = \"q\"\nanswer = {}\n",
                huiliu_domain::text::toml_string(answer)
            );
            let valid = huiliu_knowledge::parse(&faq, "faq.toml").is_ok();
            assert_eq!(re.is_match(answer), valid, "{answer:?}");
        }
    }

    /// An entry's attachments come back from the API as they were sent, and the patterns of the
    /// document say what the checks say (the API's and the knowledge base's).
    #[test]
    fn attachments_round_trip_and_their_patterns_agree_with_the_checks() {
        let sent = serde_json::json!([
            {"image": "https://img.example.com/size-chart.png"},
            {"product": "{product}"},
            {"product": "3556245366718399530", "title": "小汇电热水器E60"},
            {"order": "{order}"}
        ]);
        let body: EntryBody =
            serde_json::from_value(serde_json::json!({"question": "q", "answer": "a", "attach": sent})).unwrap();
        let entry = entry_of(body).unwrap();
        assert_eq!(entry.attach.len(), 4);
        let back = serde_json::to_value(KnowledgeEntry::from(entry)).unwrap();
        assert_eq!(back["attach"], sent, "{back}");

        for refused in [
            serde_json::json!([{"image": "ftp://x/a.png"}]),
            serde_json::json!([{"image": "https://x/a.png", "product": "p"}]),
            serde_json::json!([{"order": "123"}]),
            serde_json::json!([{"product": "{sku}"}]),
            serde_json::json!([{"product": "p", "title": null}]),
            serde_json::json!([{"title": "t"}]),
            serde_json::json!([{}]),
            serde_json::json!([{"order": "{order}"}, {"order": "{order}"}, {"order": "{order}"}, {"order": "{order}"}, {"order": "{order}"}, {"order": "{order}"}]),
        ] {
            let body = serde_json::json!({"question": "q", "answer": "a", "attach": refused});
            let refused_here = match serde_json::from_value::<EntryBody>(body) {
                Err(_) => true,
                Ok(body) => entry_of(body).is_err(),
            };
            assert!(refused_here, "{refused}");
        }

        let doc: serde_json::Value = serde_json::from_str(&super::super::document(&super::super::routes().1)).unwrap();
        let schemas = &doc["components"]["schemas"];
        let pattern =
            |schema: &str, field: &str| schemas[schema]["properties"][field]["pattern"].as_str().unwrap().to_owned();
        assert_eq!(pattern("AttachImage", "image"), huiliu_knowledge::attach::IMAGE_PATTERN);
        assert_eq!(pattern("AttachProduct", "product"), huiliu_knowledge::attach::PRODUCT_PATTERN);
        assert_eq!(pattern("AttachProduct", "title"), huiliu_knowledge::attach::TITLE_PATTERN);
        assert_eq!(pattern("AttachOrder", "order"), huiliu_knowledge::attach::ORDER_PATTERN);
        let order = regex::Regex::new(huiliu_knowledge::attach::ORDER_PATTERN).unwrap();
        for text in ["{order}", "{order} ", "order", "{product}"] {
            assert_eq!(order.is_match(text), text == huiliu_knowledge::attach::ORDER_PLACEHOLDER, "{text:?}");
        }
        for schema in ["AttachImage", "AttachProduct", "AttachOrder"] {
            assert_eq!(schemas[schema]["additionalProperties"], false, "{schema}: {}", schemas[schema]);
        }
        let image = regex::Regex::new(huiliu_knowledge::attach::IMAGE_PATTERN).unwrap();
        for url in [
            "https://img.example.com/a.png",
            "http://10.0.0.1:8080/a.jpg?x=1&y=%E5%9B%BE#top",
            "https://x",
            "https://x?",
            "https://-/",
            "https://x:123456/",
            "https://x:/",
            "https://a b/",
            "https://x/a b",
            "https://x/{product}",
            "https://x/\"",
            "https://x/图",
            "ftp://x/",
            "https://",
            "https://x/\n",
            "https://x\n",
        ] {
            assert_eq!(image.is_match(url), huiliu_knowledge::attach::is_http_url(url), "{url:?}");
        }
        let product = regex::Regex::new(huiliu_knowledge::attach::PRODUCT_PATTERN).unwrap();
        let title = regex::Regex::new(huiliu_knowledge::attach::TITLE_PATTERN).unwrap();
        for text in ["{product}", "E60-2024", " x ", " ", "", "\u{3000}", "{order}", "a{b", "a}", "{product}x", "小汇"]
        {
            assert_eq!(product.is_match(text), huiliu_knowledge::attach::is_product(text), "{text:?}");
            assert_eq!(title.is_match(text), huiliu_knowledge::attach::is_title(text), "{text:?}");
        }
    }

    #[test]
    fn bodies_become_entries_and_entries_come_back_the_same() {
        let body: EntryBody = serde_json::from_value(serde_json::json!({
            "question": "能开发票吗", "variants": ["开票", " "], "answer": "{buyer}可以", "category": " ",
            "when": {"order_states": ["paid", "paid", "shipped"], "hours": {"from": 1380, "to": 540}, "shops": [""]}
        }))
        .unwrap();
        let entry = entry_of(body).unwrap();
        assert_eq!(entry.id, "", "no id: the service picks one");
        assert_eq!(entry.variants, ["开票"]);
        assert_eq!((entry.category.as_deref(), entry.when.shops.len()), (None, 0));
        assert_eq!(entry.when.order_states, ["paid", "shipped"]);
        assert_eq!(entry.when.hours.as_deref(), Some("23:00-09:00"));
        let back = KnowledgeEntry::from(entry);
        assert_eq!(back.when.hours, Some(Window { from: 1380, to: 540 }));
        assert_eq!(back.when.order_states, [OrderState::Paid, OrderState::Shipped]);
        let whole: EntryBody = serde_json::from_value(serde_json::json!({"question": "q", "answer": "a",
            "when": {"hours": {"from": 540.0, "to": 1320}}}))
        .unwrap();
        assert_eq!(entry_of(whole).unwrap().when.hours.as_deref(), Some("09:00-22:00"), "540.0 is an integer");
        for minute in [serde_json::json!(540.5), serde_json::json!(-1), serde_json::json!("540")] {
            let body =
                serde_json::json!({"question": "q", "answer": "a", "when": {"hours": {"from": minute, "to": 0}}});
            assert!(serde_json::from_value::<EntryBody>(body).is_err(), "{minute}");
        }
        let late: EntryBody = serde_json::from_value(serde_json::json!({"question": "q", "answer": "a",
            "when": {"hours": {"from": 1441, "to": 0}}}))
        .unwrap();
        assert_eq!(entry_of(late).unwrap_err().0, StatusCode::BAD_REQUEST);
        let blank: EntryBody = serde_json::from_value(serde_json::json!({"question": " ", "answer": "x"})).unwrap();
        assert_eq!(entry_of(blank).unwrap_err().0, StatusCode::BAD_REQUEST);
        assert!(
            serde_json::from_value::<EntryBody>(serde_json::json!({"question": "q", "answer": "a", "category": null}))
                .is_err()
        );
        assert_eq!(OrderState::ALL.map(OrderState::word), huiliu_knowledge::config::ORDER_STATES);
        let named: EntryBody =
            serde_json::from_value(serde_json::json!({"id": "vat-invoice", "question": "q", "answer": "a"})).unwrap();
        assert_eq!(entry_of(named).unwrap().id, "vat-invoice");
        for id in ["Vat", "", "发票", &"a".repeat(65)] {
            let body: EntryBody =
                serde_json::from_value(serde_json::json!({"id": id, "question": "q", "answer": "a"})).unwrap();
            assert_eq!(entry_of(body).unwrap_err().0, StatusCode::BAD_REQUEST, "{id:?}");
        }
        assert!(
            serde_json::from_value::<EntryBody>(serde_json::json!({"id": null, "question": "q", "answer": "a"}))
                .is_err()
        );
        // What the id pattern says is what the service's check says.
        let re = regex::Regex::new(ID_PATTERN).unwrap();
        for id in ["a", "entry-1", "-x-", "A", "a b", "á"] {
            assert_eq!(re.is_match(id), valid_id(id), "{id:?}");
            let faq =
                format!("[[entry]]\nid = {}\nquestion = \"q\"\nanswer = \"a\"\n", huiliu_domain::text::toml_string(id));
            assert_eq!(huiliu_knowledge::parse(&faq, "faq.toml").is_ok(), valid_id(id), "{id:?}");
        }
    }
}
