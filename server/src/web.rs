//! The server's own web page at `/`: a live list of matches, a spectator view decoded in the
//! browser from the same binary snapshots players get, and the server's figures. The files
//! are embedded in the binary (no build step, no CDN).

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;

const INDEX_HTML: &str = include_str!("../web/index.html");
const APP_JS: &str = include_str!("../web/app.js");
const PROTOCOL_JS: &str = include_str!("../web/protocol.js");
const STYLE_CSS: &str = include_str!("../web/style.css");

fn file(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    ([(CONTENT_TYPE, content_type)], body)
}

/// Routes for the page's files.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/",
            get(|| async { file("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/app.js",
            get(|| async { file("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/protocol.js",
            get(|| async { file("text/javascript; charset=utf-8", PROTOCOL_JS) }),
        )
        .route(
            "/style.css",
            get(|| async { file("text/css; charset=utf-8", STYLE_CSS) }),
        )
}
