//! The server's own web page at `/`: a live list of matches, a spectator view decoded in the
//! browser from the same binary snapshots players get, the recorded matches with a replay
//! viewer, and the server's figures. The files
//! are embedded in the binary (no build step, no CDN).

use axum::Router;
use axum::http::header::{
    CONTENT_SECURITY_POLICY as CONTENT_SECURITY_POLICY_HEADER, CONTENT_TYPE, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS,
};
use axum::response::IntoResponse;
use axum::routing::get;

const INDEX_HTML: &str = include_str!("../web/index.html");
const APP_JS: &str = include_str!("../web/app.js");
const PROTOCOL_JS: &str = include_str!("../web/protocol.js");
const ARENA_JS: &str = include_str!("../web/arena.js");
const REPLAY_JS: &str = include_str!("../web/replay.js");
const STYLE_CSS: &str = include_str!("../web/style.css");

/// The page loads only its own files and talks only to its own origin (`'self'` covers the
/// same host's `ws:`/`wss:` in CSP level 3); nothing inline, no frames, no plugins.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
form-action 'none'; frame-ancestors 'none'";

fn file(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, content_type),
            (CONTENT_SECURITY_POLICY_HEADER, CONTENT_SECURITY_POLICY),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
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
            "/arena.js",
            get(|| async { file("text/javascript; charset=utf-8", ARENA_JS) }),
        )
        .route(
            "/replay.js",
            get(|| async { file("text/javascript; charset=utf-8", REPLAY_JS) }),
        )
        .route(
            "/style.css",
            get(|| async { file("text/css; charset=utf-8", STYLE_CSS) }),
        )
}
