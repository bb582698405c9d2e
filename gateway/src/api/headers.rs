//! Browser security headers on every answer of the daemon (workbench, API, errors): a
//! Content-Security-Policy that allows scripts, styles, images and connections from the
//! daemon's own origin only (no inline script, no `eval`, no foreign origin, no framing),
//! `X-Content-Type-Options: nosniff` and a strict `Referrer-Policy`.
//!
//! The workbench is written for this policy: no inline `<script>`, no `on…=` attributes, no
//! `style=` attributes; its files, the chart library and the reason catalog are served from
//! the binary. `tests/tests/workbench.rs` runs the browser test under it and checks the headers.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::http::header::{CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS};
use axum::middleware::Next;
use axum::response::Response;

/// The policy. `connect-src 'self'` covers the event stream's WebSocket on the same host;
/// `img-src` allows `data:` and `blob:` for thumbnails drawn in the page.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; media-src 'self' data:; manifest-src 'self'; \
base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'";

/// Adds the headers to a response (keeping any a handler set itself).
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.entry(CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE));
    h.entry(X_CONTENT_TYPE_OPTIONS).or_insert(HeaderValue::from_static("nosniff"));
    h.entry(REFERRER_POLICY).or_insert(HeaderValue::from_static("no-referrer"));
    // For browsers that predate `frame-ancestors`.
    h.entry(X_FRAME_OPTIONS).or_insert(HeaderValue::from_static("DENY"));
    response
}
