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
