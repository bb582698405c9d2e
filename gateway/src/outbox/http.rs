//! Performing the HTTP requests connectors build. The gateway owns every socket.

use std::time::Duration;

use huiliu_sdk::{HttpRequest, HttpResponse};

/// The shared HTTP client (rustls with the ring provider for the platforms' HTTPS APIs).
pub fn client() -> reqwest::Client {
    // Installing twice (tests) is harmless: the first provider stays.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("huiliu/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// Builds the reqwest request for a connector's request.
pub fn build(
    client: &reqwest::Client,
    request: HttpRequest,
    timeout: Duration,
) -> Result<reqwest::RequestBuilder, String> {
    let method = reqwest::Method::from_bytes(request.method.as_bytes()).map_err(|e| format!("bad method: {e}"))?;
    let mut builder = client.request(method, &request.url).timeout(timeout).body(request.body);
    for (k, v) in request.headers {
        builder = builder.header(k, v);
    }
    Ok(builder)
}

/// Performs `request` and reads the whole answer. `Err` is a transport failure (connect,
/// timeout) with its text.
pub async fn perform(
    client: &reqwest::Client,
    request: HttpRequest,
    timeout: Duration,
) -> Result<HttpResponse, String> {
    let response = build(client, request, timeout)?.send().await.map_err(describe)?;
    let status = response.status().as_u16();
    let headers = headers_of(response.headers());
    let body = response.bytes().await.map_err(describe)?.to_vec();
    Ok(HttpResponse { status, headers, body })
}

/// The headers of a response as connector-shaped pairs.
pub fn headers_of(headers: &reqwest::header::HeaderMap) -> Vec<(String, String)> {
    headers.iter().map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect()
}

/// A one-line description of a transport error (no URL: it may carry tokens in its query).
pub fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        format!("cannot connect: {e}")
    } else {
        e.to_string()
    }
}

/// Why media could not be fetched, and whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchError {
    pub retryable: bool,
    pub reason: String,
}

/// Fetches the media an agent's reply links to (for a platform that takes uploads only): a
/// plain GET of an `http(s)` URL, at most `max_bytes`, a 2xx answer. A 4xx answer, a link that
/// is not http(s) or a file too large will not change on a retry; a transport failure or a 5xx
/// may.
pub async fn fetch_media(
    client: &reqwest::Client,
    url: &str,
    max_bytes: usize,
    timeout: Duration,
) -> Result<Vec<u8>, FetchError> {
    let fail = |retryable: bool, reason: String| FetchError { retryable, reason };
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(fail(false, "only http and https links are fetched".into()));
    }
    let mut response = client.get(url).timeout(timeout).send().await.map_err(|e| fail(true, describe(e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(fail(status.is_server_error(), format!("HTTP {}", status.as_u16())));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| fail(true, describe(e)))? {
        if body.len() + chunk.len() > max_bytes {
            return Err(fail(false, format!("larger than {max_bytes} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
