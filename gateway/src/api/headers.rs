//! Browser security headers on every answer of the daemon (workbench, API, errors): a
//! Content-Security-Policy that allows scripts, styles, images and connections from the
//! daemon's own origin only (no inline script, no `eval`, no foreign origin, no framing),
//! `X-Content-Type-Options: nosniff` and a strict `Referrer-Policy`.
//!
//! The workbench is written for this policy: no inline `<script>`, no `on…=` attributes, no
//! `style=` attributes; its files, the chart library and the reason catalog are served from
//! the binary. `tests/tests/workbench.rs` runs the browser test under it and checks the headers.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::http::header::{CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS};
use axum::middleware::Next;
use axum::response::Response;

/// The policy. `connect-src 'self'` covers the event stream's WebSocket on the same host;
/// `img-src` allows `data:` and `blob:` for thumbnails drawn in the page.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; media-src 'self' data:; manifest-src 'self'; \
base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'";

/// Whether `origin` may be added to `img-src`: `https://host[:port]`, the host possibly
/// starting with `*.`, nothing else (no path, no quote, no space, no `;`).
pub fn check_image_origin(origin: &str) -> Result<(), String> {
    let host = origin.strip_prefix("https://").ok_or("must start with https://")?;
    let host = host.strip_prefix("*.").unwrap_or(host);
    let (name, port) = host.split_once(':').unwrap_or((host, ""));
    let name_ok = !name.is_empty()
        && name.contains('.')
        && name.split('.').all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    let port_ok = port.is_empty() || (port.len() <= 5 && port.chars().all(|c| c.is_ascii_digit()));
    if name_ok && port_ok {
        Ok(())
    } else {
        Err(format!("`{origin}` is not an https origin like https://*.alicdn.com"))
    }
}

/// The policy with `image_origins` (checked by the config loader) added to `img-src`.
pub fn policy(image_origins: &[String]) -> HeaderValue {
    let ok: Vec<&str> = image_origins.iter().map(String::as_str).filter(|o| check_image_origin(o).is_ok()).collect();
    if ok.is_empty() {
        return HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE);
    }
    let value = CONTENT_SECURITY_POLICY_VALUE
        .replace("img-src 'self' data: blob:;", &format!("img-src 'self' data: blob: {};", ok.join(" ")));
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE))
}

/// Adds the headers to a response (keeping any a handler set itself); `csp` is [`policy`]'s.
pub async fn security_headers(State(csp): State<Arc<HeaderValue>>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.entry(CONTENT_SECURITY_POLICY).or_insert((*csp).clone());
    h.entry(X_CONTENT_TYPE_OPTIONS).or_insert(HeaderValue::from_static("nosniff"));
    h.entry(REFERRER_POLICY).or_insert(HeaderValue::from_static("no-referrer"));
    // For browsers that predate `frame-ancestors`.
    h.entry(X_FRAME_OPTIONS).or_insert(HeaderValue::from_static("DENY"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_origins_are_https_origins_only() {
        for good in ["https://img.alicdn.com", "https://*.douyinpic.com", "https://cdn.example.cn:8443"] {
            assert!(check_image_origin(good).is_ok(), "{good}");
        }
        for bad in [
            "http://img.alicdn.com",
            "https://*",
            "*",
            "https:",
            "https://img.alicdn.com/path",
            "https://a.com; script-src *",
            "https://a.com 'unsafe-inline'",
            "https://localhost",
        ] {
            assert!(check_image_origin(bad).is_err(), "{bad}");
        }
        assert_eq!(policy(&[]).to_str().unwrap(), CONTENT_SECURITY_POLICY_VALUE);
        let p = policy(&["https://*.alicdn.com".into(), "https://a.com; script-src *".into()]);
        let p = p.to_str().unwrap();
        assert!(p.contains("img-src 'self' data: blob: https://*.alicdn.com;"), "{p}");
        assert!(p.contains("script-src 'self';") && !p.contains("script-src *"), "{p}");
    }
}
