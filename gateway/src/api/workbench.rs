//! The agent workbench: a single page (plain HTML, CSS and JavaScript, no framework) served at
//! `/`, talking to `/api/v1` and its event stream. The files are compiled into the binary.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

const INDEX: &str = include_str!("workbench/index.html");
const APP_JS: &str = include_str!("workbench/app.js");
const APP_CSS: &str = include_str!("workbench/app.css");
/// uPlot 1.6.32 (MIT, `workbench/vendor/uPlot.LICENSE`): the dashboard's charts, served from
/// the binary (no CDN; the Content-Security-Policy allows this origin only).
const UPLOT_JS: &str = include_str!("workbench/vendor/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("workbench/vendor/uPlot.min.css");

/// `/`, `/app.js`, `/app.css`, `/vendor/uPlot.iife.min.js`, `/vendor/uPlot.min.css`.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX).into_response() }))
        .route(
            "/app.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], APP_JS).into_response() }),
        )
        .route(
            "/app.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], APP_CSS).into_response() }),
        )
        .route(
            "/vendor/uPlot.iife.min.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], UPLOT_JS).into_response() }),
        )
        .route(
            "/vendor/uPlot.min.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], UPLOT_CSS).into_response() }),
        )
}
