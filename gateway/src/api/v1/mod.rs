//! `/api/v1`: the workbench's API, as JSON, and its contract.
//!
//! Every route is declared once, with its handler, through utoipa-axum: the router and the
//! OpenAPI 3.1 document (`/api/v1/openapi.json`) come out of the same declaration, and every
//! request and response body is described from its Rust type (enums, bounds, required fields).
//! [`Contract`] adds what all operations share: the bearer scheme, the error answers each kind of
//! operation can give (all `{code, message}`, see [`super::error`]) and `x-roles`.
//!
//! Access: `Authorization: Bearer <token>` with a token from `POST /auth/login`, or the
//! operator's `api.admin_token` (admin). The caller is resolved by an extractor
//! ([`super::caller`]) before the handler runs; what a caller may see of a session is checked by
//! the services: an agent their own sessions, a lead also their groups', an admin everything.

mod accounts;
mod admin;
mod auth;
mod blacklist;
mod buyers;
mod customers;
mod directory;
mod knowledge;
mod sessions;
mod stream;

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as Doc, PathItem, RefOr, Response as DocResponse, ResponseBuilder};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;
use super::error::ErrorBody;

pub use huiliu_domain::text::{NOT_BLANK, is_blank};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Huiliu 汇流 agent API",
        version = "1",
        description = "The workbench API. Bearer tokens come from POST /auth/login (or api.admin_token for scripts, \
acting as admin). x-roles lists the roles that may call an operation; an agent reaches only their own sessions, \
a lead also their groups'. Every error is {code, message}."
    ),
    servers((url = "/api/v1")),
    security(("bearer" = [])),
    components(schemas(ErrorBody, blacklist::ReviewAction, accounts::UserAction))
)]
struct ApiDoc;

/// The router of `/api/v1` and its OpenAPI document, from one declaration.
pub fn routes() -> (Router<Arc<ApiState>>, Doc) {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(openapi))
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(stream::events))
        .routes(routes!(admin::status))
        .routes(routes!(admin::dashboard))
        .routes(routes!(admin::agents))
        .routes(routes!(admin::agent_status))
        .routes(routes!(sessions::list))
        .routes(routes!(sessions::detail))
        .routes(routes!(sessions::messages))
        .routes(routes!(sessions::reply))
        .routes(routes!(sessions::quick_replies_for))
        .routes(routes!(sessions::close))
        .routes(routes!(sessions::transfer))
        .routes(routes!(sessions::explain))
        .routes(routes!(admin::quick_replies))
        .routes(routes!(customers::history))
        .routes(routes!(customers::profile))
        .routes(routes!(customers::retry))
        .routes(routes!(blacklist::list, blacklist::propose))
        .routes(routes!(blacklist::reload))
        .routes(routes!(blacklist::decide))
        .routes(routes!(blacklist::reveal))
        .routes(routes!(blacklist::audit))
        .routes(routes!(admin::routing))
        .routes(routes!(admin::config_reload))
        .routes(routes!(buyers::export))
        .routes(routes!(buyers::erase))
        .routes(routes!(sessions::suggestions))
        .routes(routes!(admin::knowledge_figures))
        .routes(routes!(knowledge::list, knowledge::add))
        .routes(routes!(knowledge::change, knowledge::remove))
        .routes(routes!(directory::directory))
        .routes(routes!(accounts::change_password))
        .routes(routes!(accounts::list_users, accounts::add_user))
        .routes(routes!(accounts::user_action))
        .routes(routes!(accounts::reset_password))
        .routes(routes!(admin::dashboard_series))
        .split_for_parts();
    // After the routes: the shared answers go on every operation the routes declared.
    utoipa::Modify::modify(&Contract, &mut doc);
    (router, doc)
}

/// The document as served.
pub fn document(doc: &Doc) -> String {
    let mut value = serde_json::to_value(doc).expect("the OpenAPI document serializes");
    lift_not(&mut value);
    serde_json::to_string_pretty(&value).expect("JSON")
}

/// utoipa 5 cannot write a schema's `not`; the handlers' schemas write it as the extension
/// `x-not`, lifted here to the keyword it stands for.
fn lift_not(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(not) = map.remove("x-not") {
                map.insert("not".into(), not);
            }
            map.values_mut().for_each(lift_not);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(lift_not),
        _ => {}
    }
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document of /api/v1", content_type = "application/json", body = Object)))]
async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], super::openapi_document()).into_response()
}

/// Who may call each operation (`x-roles`): `[]` anyone; the roles otherwise. Kept beside the
/// extractors the handlers take (`Caller`: all three, `Lead`: lead and admin, `Admin`).
fn roles(method: &str, path: &str) -> &'static [&'static str] {
    const ALL: &[&str] = &["agent", "lead", "admin"];
    const LEAD: &[&str] = &["lead", "admin"];
    const ADMIN: &[&str] = &["admin"];
    match (method, path) {
        ("get", "/openapi.json") | ("post", "/auth/login") => &[],
        ("get", "/status" | "/dashboard" | "/blacklist" | "/audit" | "/routing" | "/dashboard/series") => LEAD,
        ("get", "/knowledge/figures" | "/knowledge/entries") | ("post", "/knowledge/entries") => LEAD,
        ("put" | "delete", "/knowledge/entries/{id}") => LEAD,
        ("post", "/blacklist/{id}/{action}" | "/messages/{id}/reveal") => LEAD,
        ("post", "/blacklist/reload" | "/config/reload") => ADMIN,
        ("get", "/users") | ("post", "/users" | "/users/{id}/{action}" | "/users/{id}/password") => ADMIN,
        _ => ALL,
    }
}

/// What every operation shares, added to the generated document.
struct Contract;

impl utoipa::Modify for Contract {
    fn modify(&self, doc: &mut Doc) {
        if let Some(components) = doc.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
        for (path, item) in doc.paths.paths.iter_mut() {
            for (method, op) in operations(item) {
                let secured = !roles(method, path).is_empty();
                let has = |op: &utoipa::openapi::path::Operation, kind: utoipa::openapi::path::ParameterIn| {
                    op.parameters.iter().flatten().any(|p| p.parameter_in == kind)
                };
                let mut errors: Vec<(&str, &str)> = Vec::new();
                if op.request_body.is_some() {
                    errors.extend([
                        ("400", "The body is not JSON, or not of the schema"),
                        ("413", "The body is too large"),
                        ("415", "The body is not application/json"),
                    ]);
                }
                if has(op, utoipa::openapi::path::ParameterIn::Query) {
                    errors.push(("400", "A query parameter is invalid"));
                }
                if has(op, utoipa::openapi::path::ParameterIn::Path) {
                    errors.push(("400", "A path parameter is invalid"));
                    errors.push(("404", "Not found"));
                }
                if secured {
                    errors.push(("401", "No valid bearer token"));
                    errors.push(("403", "The caller's role or scope does not allow it"));
                }
                if path != "/openapi.json" {
                    errors.push(("500", "The store failed"));
                }
                for (status, description) in errors {
                    op.responses.responses.entry(status.to_owned()).or_insert_with(|| error_response(description));
                }
                let roles: Vec<serde_json::Value> = roles(method, path).iter().map(|r| (*r).into()).collect();
                op.extensions
                    .get_or_insert_with(Default::default)
                    .merge(utoipa::openapi::extensions::ExtensionsBuilder::new().add("x-roles", roles).build());
            }
        }
    }
}

fn error_response(description: &str) -> RefOr<DocResponse> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                Content::new(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("ErrorBody")))),
            )
            .build(),
    )
}

fn operations(item: &mut PathItem) -> Vec<(&'static str, &mut utoipa::openapi::path::Operation)> {
    [
        ("get", item.get.as_mut()),
        ("post", item.post.as_mut()),
        ("put", item.put.as_mut()),
        ("delete", item.delete.as_mut()),
        ("patch", item.patch.as_mut()),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.map(|op| (m, op)))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_is_what_the_pattern_says() {
        let re = regex::Regex::new(NOT_BLANK).unwrap();
        for s in ["", " ", "\t\n", "\u{3000}", " \r\n\u{3000} ", "x", " 好 ", "\u{1c}", "\u{a0}"] {
            assert_eq!(is_blank(s), !re.is_match(s), "{s:?}");
        }
    }

    /// The `pattern`s written out in the handlers' schema attributes (a macro wants a literal)
    /// are all [`NOT_BLANK`], but for the knowledge-base answer's, entry id's and attachments'
    /// (checked against the knowledge base's own rules in `knowledge.rs`).
    #[test]
    fn every_pattern_is_not_blank() {
        fn walk(v: &serde_json::Value, found: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(m) => {
                    if let Some(p) = m.get("pattern").and_then(|p| p.as_str()) {
                        found.push(p.to_owned());
                    }
                    m.values().for_each(|v| walk(v, found));
                }
                serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, found)),
                _ => {}
            }
        }
        let json: serde_json::Value = serde_json::from_str(&document(&routes().1)).unwrap();
        let mut found = Vec::new();
        walk(&json, &mut found);
        assert!(found.len() >= 6, "{found:?}");
        use huiliu_knowledge::attach::{IMAGE_PATTERN, ORDER_PATTERN, PRODUCT_PATTERN, TITLE_PATTERN};
        let own = [
            knowledge::ANSWER_PATTERN,
            knowledge::ID_PATTERN,
            IMAGE_PATTERN,
            PRODUCT_PATTERN,
            TITLE_PATTERN,
            ORDER_PATTERN,
        ];
        assert!(found.iter().all(|p| p == NOT_BLANK || own.contains(&p.as_str())), "{found:?}");
        for pattern in own {
            assert_eq!(found.iter().filter(|p| *p == pattern).count(), 1, "{pattern}: {found:?}");
        }
    }

    #[test]
    fn every_operation_has_roles_errors_and_typed_bodies() {
        let (_, doc) = routes();
        let json: serde_json::Value = serde_json::from_str(&document(&doc)).unwrap();
        assert_eq!(json["openapi"], "3.1.0");
        let mut n = 0;
        for (path, ops) in json["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                n += 1;
                assert!(!op.to_string().contains("x-not"), "{method} {path}: x-not lifted to not");
                assert!(op["x-roles"].is_array(), "{method} {path} says who may call it");
                assert!(op["responses"]["500"].is_object() || path == "/openapi.json", "{method} {path}");
                if let Some(body) = op.get("requestBody") {
                    let schema = &body["content"]["application/json"]["schema"];
                    assert!(
                        ["$ref", "type", "oneOf"].iter().any(|k| schema.get(k).is_some()),
                        "{method} {path}: {schema}"
                    );
                }
            }
        }
        assert!(n >= 29, "{n} operations");
    }
}
