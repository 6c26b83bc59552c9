//! `GET /api/replays` (the recordings, newest first, with their matches' results) and
//! `GET /api/matches/{id}/replay` (the file, streamed; a match still running streams what is
//! written so far, which reads up to its last whole block).

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::io::AsyncReadExt;

use crate::http::{AppState, refuse};
use crate::results::{MatchResult, rfc3339};

/// Replays listed at most.
const LIST_LIMIT: usize = 500;

/// One row of `GET /api/replays`.
#[derive(Debug, Serialize)]
pub struct ReplayRow {
    pub match_id: u32,
    /// RFC 3339, UTC: when the match was created.
    pub created_at: String,
    pub bytes: u64,
    /// The match is still being recorded.
    pub recording: bool,
    pub url: String,
    /// The match's results, when it finished.
    pub results: Option<MatchResult>,
}

pub async fn list(State(state): State<AppState>) -> Response {
    let Some(store) = &state.ctx.replays else {
        return Json(Vec::<ReplayRow>::new()).into_response();
    };
    let rows: Vec<ReplayRow> = store
        .list()
        .into_iter()
        .take(LIST_LIMIT)
        .map(|r| ReplayRow {
            match_id: r.key.match_id,
            created_at: rfc3339(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(r.key.created_unix_ms),
            ),
            bytes: r.bytes,
            recording: r.recording,
            url: format!("/api/matches/{}/replay", r.key.match_id),
            results: (!r.recording)
                .then(|| state.ctx.results.get(r.key.match_id))
                .flatten()
                .map(|m| m.as_ref().clone()),
        })
        .collect();
    Json(rows).into_response()
}

pub async fn download(State(state): State<AppState>, Path(id): Path<u32>) -> Response {
    let Some(store) = &state.ctx.replays else {
        return refuse(StatusCode::NOT_FOUND, "replays are off on this server");
    };
    let Some(info) = store.find(id) else {
        return refuse(StatusCode::NOT_FOUND, format!("no replay of match {id}"));
    };
    let opened = async {
        let file = tokio::fs::File::open(&info.path).await?;
        let len = file.metadata().await?.len();
        Ok::<_, std::io::Error>((file, len))
    }
    .await;
    let (file, len) = match opened {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(match_id = id, "replay unreadable: {e}");
            return refuse(StatusCode::NOT_FOUND, format!("no replay of match {id}"));
        }
    };
    // A file still being written is served up to its length now.
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file.take(len)));
    let name = info
        .path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("replay.skreplay")
        .to_string();
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        body,
    )
        .into_response()
}
