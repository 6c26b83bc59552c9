//! The HTTP side (axum): health, match listing and creation, and the WebSocket upgrade at
//! `/ws`, which checks the protocol version and reserves a seat *before* upgrading so a
//! refusal is an HTTP status with a body that says why.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use fastwebsockets::upgrade::IncomingUpgrade;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;
use tracing::debug;

use skirmish_shared::protocol::PROTOCOL_VERSION;
use skirmish_shared::rules::clean_name;

use crate::config::Config;
use crate::connection::{self, ConnectionContext};
use crate::match_loop::{MatchContext, spawn_match};
use crate::registry::{MatchHandle, MatchInfo, Seat, SeatError};

/// Shared state of the HTTP handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub matches: MatchContext,
    pub connections: Arc<Semaphore>,
    pub tasks: TaskTracker,
    next_match_id: Arc<AtomicU32>,
    seed: u64,
}

impl AppState {
    #[must_use]
    pub fn new(config: Config, matches: MatchContext, seed: u64) -> Self {
        Self {
            connections: Arc::new(Semaphore::new(config.max_connections)),
            config: Arc::new(config),
            matches,
            tasks: TaskTracker::new(),
            next_match_id: Arc::new(AtomicU32::new(1)),
            seed,
        }
    }

    /// Starts a new match and returns its handle.
    pub fn create_match(&self) -> Arc<MatchHandle> {
        let id = self.next_match_id.fetch_add(1, Ordering::Relaxed);
        let seed = self.seed ^ u64::from(id).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        spawn_match(id, seed, &self.config, self.matches.clone())
    }
}

/// The router: `/healthz`, `/api/matches`, `/ws`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/matches", get(list_matches).post(create_match))
        .route("/ws", get(join))
        .with_state(state)
}

async fn list_matches(State(state): State<AppState>) -> Json<Vec<MatchInfo>> {
    Json(state.matches.registry.list())
}

#[derive(Debug, Serialize, serde::Deserialize)]
pub struct Created {
    pub id: u32,
}

async fn create_match(State(state): State<AppState>) -> Response {
    if state.matches.shutdown.is_cancelled() {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "server is shutting down".into(),
        );
    }
    let m = state.create_match();
    (StatusCode::CREATED, Json(Created { id: m.id })).into_response()
}

fn refuse(status: StatusCode, reason: String) -> Response {
    debug!(%status, %reason, "join refused");
    (status, reason).into_response()
}

/// `GET /ws?v=<PROTOCOL_VERSION>&name=<name>[&match=<id>]`.
async fn join(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    upgrade: Result<IncomingUpgrade, StatusCode>,
) -> Response {
    let version = match q.get("v").map(|v| v.parse::<u32>()) {
        None => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!(
                    "missing query parameter v (protocol version); this server speaks {PROTOCOL_VERSION}"
                ),
            );
        }
        Some(Err(_)) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "query parameter v must be a number".into(),
            );
        }
        Some(Ok(v)) => v,
    };
    if version != PROTOCOL_VERSION {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!(
                "protocol version mismatch: this server speaks {PROTOCOL_VERSION}, the client sent {version}"
            ),
        );
    }
    let match_id = match q.get("match").map(|m| m.parse::<u32>()) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "query parameter match must be a number".into(),
            );
        }
    };
    let Ok(upgrade) = upgrade else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "expected a WebSocket upgrade request (Upgrade: websocket, Sec-WebSocket-Version: 13)"
                .into(),
        );
    };
    if state.matches.shutdown.is_cancelled() {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "server is shutting down".into(),
        );
    }
    let Ok(permit) = state.connections.clone().try_acquire_owned() else {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("server full: {} connections", state.config.max_connections),
        );
    };
    let seat = match reserve(&state, match_id) {
        Ok(seat) => seat,
        Err(SeatError::NoSuchMatch(id)) => {
            return refuse(StatusCode::NOT_FOUND, format!("no match with id {id}"));
        }
        Err(SeatError::Full(id)) => {
            return refuse(StatusCode::CONFLICT, format!("match {id} is full"));
        }
    };
    let (response, fut) = match upgrade.upgrade() {
        Ok(r) => r,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("upgrade failed: {e}")),
    };
    let name = clean_name(q.get("name").map_or("", String::as_str));
    let ctx = ConnectionContext {
        matches: state.matches.clone(),
        input_queue: state.config.input_queue,
        write_timeout: state.config.write_timeout(),
    };
    state.tasks.spawn(async move {
        connection::run(fut, seat, name, ctx).await;
        drop(permit);
    });
    response.into_response()
}

fn reserve(state: &AppState, match_id: Option<u32>) -> Result<Seat, SeatError> {
    let registry = &state.matches.registry;
    if let Some(id) = match_id {
        return registry.reserve_in(id);
    }
    if let Some(seat) = registry.reserve_any() {
        return Ok(seat);
    }
    // Every match is full (or none exists): start one. Another joiner may race us to its
    // seats; with a match size of at least 1 this loop ends.
    loop {
        let m = state.create_match();
        if let Ok(seat) = registry.reserve_in(m.id) {
            return Ok(seat);
        }
    }
}
