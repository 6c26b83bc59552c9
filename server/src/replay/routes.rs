//! `GET /api/replays` (the recordings, newest first, with their matches' results),
//! `GET /api/matches/{id}/replay` (the file, streamed; a match still running streams what is
//! written so far, which reads up to its last whole block), and for the page's replay viewer
//! `GET /api/matches/{id}/replay/info` (its span and ending) and
//! `GET /api/matches/{id}/replay/frames?from=T&count=N`: the match re-simulated from the
//! keyframe nearest `T`, as the snapshot messages a spectator gets (a full snapshot, then
//! deltas, each with its checksum), so the page decodes and draws them with the code it
//! watches live matches with and needs no second implementation of the simulation. Replay
//! reads are rate-limited per client IP (`http::REPLAY_RATE_PER_S`).

use axum::Json;
use axum::body::Body;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use skirmish_shared::protocol::{self, ServerMessage, SnapshotMsg};
use skirmish_shared::replay::Replay;
use skirmish_shared::tick::Tick;
use skirmish_shared::world::WorldState;

use super::store::ReplayInfo;
use crate::http::{AppState, refuse};
use crate::results::{MatchResult, rfc3339};

/// Replays listed at most.
const LIST_LIMIT: usize = 500;
/// Most ticks one frames request returns (ten seconds at 30 Hz).
pub const MAX_FRAMES: u32 = 300;

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

pub async fn download(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<u32>,
) -> Response {
    let info = match find(&state, &peer, id) {
        Ok(info) => info,
        Err(refusal) => return *refusal,
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

/// The replay of match `id` for a read by `peer` (its rate limit taken), or the refusal.
fn find(state: &AppState, peer: &SocketAddr, id: u32) -> Result<ReplayInfo, Box<Response>> {
    state.replay_rate_limit(peer)?;
    let Some(store) = &state.ctx.replays else {
        return Err(Box::new(refuse(
            StatusCode::NOT_FOUND,
            "replays are off on this server",
        )));
    };
    store.find(id).ok_or_else(|| {
        Box::new(refuse(
            StatusCode::NOT_FOUND,
            format!("no replay of match {id}"),
        ))
    })
}

/// The replay file of match `id`, read and indexed (see [`find`]), or the refusal.
async fn load(state: &AppState, peer: &SocketAddr, id: u32) -> Result<Replay, Response> {
    let info = find(state, peer, id).map_err(|r| *r)?;
    let bytes = tokio::fs::read(&info.path).await.map_err(|e| {
        tracing::warn!(match_id = id, "replay unreadable: {e}");
        refuse(StatusCode::NOT_FOUND, format!("no replay of match {id}"))
    })?;
    tokio::task::spawn_blocking(move || Replay::parse(bytes))
        .await
        .map_err(|_| refuse(StatusCode::INTERNAL_SERVER_ERROR, "replay reader failed"))?
        .map_err(|e| {
            refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("replay of match {id}: {e}"),
            )
        })
}

/// `GET /api/matches/{id}/replay/info`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReplaySpan {
    pub match_id: u32,
    pub tick_hz: u32,
    /// The first and last ticks the replay reaches (`null` while nothing is written).
    pub first_tick: Option<u32>,
    pub last_tick: Option<u32>,
    pub keyframe_every: u32,
    /// The recording has its end (the match is over).
    pub ended: bool,
}

pub async fn info(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<u32>,
) -> Response {
    let replay = match load(&state, &peer, id).await {
        Ok(r) => r,
        Err(refusal) => return refusal,
    };
    let span = tokio::task::spawn_blocking(move || {
        let (first, last) = replay
            .span()
            .map_or((None, None), |(a, b)| (Some(a.0), Some(b.0)));
        ReplaySpan {
            match_id: id,
            tick_hz: replay.header.tick_hz,
            first_tick: first,
            last_tick: last,
            keyframe_every: replay.header.keyframe_every,
            ended: replay.end().ok().flatten().is_some(),
        }
    })
    .await;
    match span {
        Ok(span) => Json(span).into_response(),
        Err(_) => refuse(StatusCode::INTERNAL_SERVER_ERROR, "replay reader failed"),
    }
}

/// `?from=T&count=N` of a frames request.
#[derive(Debug, Deserialize)]
pub struct FramesQuery {
    pub from: u32,
    #[serde(default = "default_count")]
    pub count: u32,
}

fn default_count() -> u32 {
    150
}

/// The frames body: each snapshot message as a little-endian `u32` length and its bincode
/// (`ServerMessage::Snapshot`, the first in full, then deltas, every one with its checksum
/// and the game events logged with its tick).
pub fn frames_body(
    replay: &Replay,
    from: Tick,
    count: u32,
) -> Result<Vec<u8>, skirmish_shared::replay::ReplayError> {
    let params = replay.params();
    let mut cursor = replay.cursor(from)?;
    let mut body = Vec::new();
    let mut base: Option<WorldState> = None;
    for _ in 0..count.clamp(1, MAX_FRAMES) {
        let w = cursor.world();
        let msg = SnapshotMsg::encode(
            base.as_ref(),
            w,
            Some(w.checksum()),
            &params,
            cursor.events().to_vec(),
        );
        let bytes = protocol::encode(&ServerMessage::Snapshot(msg));
        body.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        body.extend_from_slice(&bytes);
        base = Some(w.clone());
        if !cursor.step()? {
            break;
        }
    }
    Ok(body)
}

pub async fn frames(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<u32>,
    Query(q): Query<FramesQuery>,
) -> Response {
    let replay = match load(&state, &peer, id).await {
        Ok(r) => r,
        Err(refusal) => return refusal,
    };
    let body =
        tokio::task::spawn_blocking(move || frames_body(&replay, Tick(q.from), q.count)).await;
    match body {
        Ok(Ok(body)) => (
            [
                (header::CONTENT_TYPE, "application/octet-stream"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            body,
        )
            .into_response(),
        Ok(Err(e)) => refuse(StatusCode::NOT_FOUND, format!("replay of match {id}: {e}")),
        Err(_) => refuse(StatusCode::INTERNAL_SERVER_ERROR, "replay reader failed"),
    }
}
