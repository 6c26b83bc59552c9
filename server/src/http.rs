//! The HTTP side (axum): health, match listing and creation, matchmaking with signed join
//! tokens, spectator tokens, results, and the WebSocket upgrade at `/ws`, which checks
//! version, token and seat *before* upgrading so every refusal is an HTTP status with a body
//! that says why.
//!
//! What a stranger may do is bounded here: creating matches needs the operator key (unless
//! `--open`); matchmaking, match creation and spectator tokens are rate-limited per client
//! IP (429 with `Retry-After`); request bodies have a size limit (413).

use skirmish_shared::world::Name;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::extract::ConnectInfo;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use fastwebsockets::upgrade::IncomingUpgrade;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::debug;

use skirmish_shared::api::{MatchmakeRequest, MatchmakeResponse, UdpTicket};
use skirmish_shared::datagram::{Claims as DatagramClaims, ConnectToken};
use skirmish_shared::protocol::{PROTOCOL_VERSION, percent_encode};
use skirmish_shared::rules::clean_name;
use skirmish_shared::world::PlayerId;

use crate::config::Config;
use crate::connection::{self, ConnectionContext, JoinKind};
use crate::context::ServerContext;
use crate::r#match::seats::ClaimError;
use crate::r#match::{MatchHandle, MatchInfo};
use crate::registry::{Registry, SeatError};
use crate::token::{Claims, TokenError, TokenSigner, unix_now_s};

/// Shared state of the HTTP handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub ctx: ServerContext,
    pub registry: Arc<Registry>,
    pub connections: Arc<Semaphore>,
    pub tokens: TokenSigner,
    /// `ws://host:port` or `wss://...`: where `ws_url`s point (`--public-url`).
    pub ws_base: Arc<str>,
    /// `host:port` of the datagram endpoint, if there is one.
    pub udp_addr: Option<Arc<str>>,
    /// Per-client-IP token buckets for the API's costly requests.
    api_limiter: Option<Arc<crate::budget::PerIp>>,
    /// Per-client-IP token buckets for replay reads (a seek re-simulates on the server).
    replay_limiter: Option<Arc<crate::budget::PerIp>>,
    next_match_id: Arc<AtomicU32>,
    /// Serializes "every match is full: start one", so simultaneous joiners fill one new
    /// match instead of each starting their own.
    create_lock: Arc<std::sync::Mutex<()>>,
    seed: u64,
}

impl AppState {
    #[must_use]
    pub fn new(
        config: Config,
        ctx: ServerContext,
        registry: Arc<Registry>,
        tokens: TokenSigner,
        seed: u64,
        ws_base: String,
    ) -> Self {
        let first_id = ctx.results.max_match_id() + 1;
        let api_limiter = crate::budget::PerIp::new(
            config.api_rate_per_s,
            config.api_burst,
            config.rate_limit_loopback,
        )
        .map(Arc::new);
        let replay_limiter =
            crate::budget::PerIp::new(REPLAY_RATE_PER_S, REPLAY_BURST, config.rate_limit_loopback)
                .map(Arc::new);
        Self {
            connections: Arc::new(Semaphore::new(config.max_connections)),
            replay_limiter,
            ws_base: ws_base.into(),
            udp_addr: None,
            api_limiter,
            config: Arc::new(config),
            ctx,
            registry,
            tokens,
            next_match_id: Arc::new(AtomicU32::new(first_id)),
            create_lock: Arc::default(),
            seed,
        }
    }

    /// Takes one token from `peer`'s bucket: `Err` is the 429 to send.
    fn rate_limit(&self, peer: &SocketAddr) -> Result<(), Box<Response>> {
        let (rate, burst) = (self.config.api_rate_per_s, self.config.api_burst);
        self.take_token(self.api_limiter.as_deref(), peer, "requests", (rate, burst))
    }

    /// Takes one token from `peer`'s replay bucket: `Err` is the 429 to send.
    pub(crate) fn replay_rate_limit(&self, peer: &SocketAddr) -> Result<(), Box<Response>> {
        let limits = (REPLAY_RATE_PER_S, REPLAY_BURST);
        self.take_token(
            self.replay_limiter.as_deref(),
            peer,
            "replay requests",
            limits,
        )
    }

    /// One token from `peer`'s bucket in `limiter` (`rate` a second, `burst`): `Err` is the
    /// 429 (naming `what`) to send.
    fn take_token(
        &self,
        limiter: Option<&crate::budget::PerIp>,
        peer: &SocketAddr,
        what: &str,
        (rate, burst): (u32, u32),
    ) -> Result<(), Box<Response>> {
        let Some(limiter) = limiter else {
            return Ok(());
        };
        let ip = peer.ip().to_canonical();
        limiter.check(ip).map_err(|wait| {
            self.ctx.stats.http_rate_limited.inc();
            Box::new(refuse_with(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many {what} from {ip}: at most {rate} per second (burst {burst})"),
                header::RETRY_AFTER,
                HeaderValue::from(wait.as_secs_f64().ceil().max(1.0) as u64),
            ))
        })
    }

    /// Checks the operator key (`Authorization: Bearer <key>`); `what` names the action.
    fn require_admin(&self, headers: &HeaderMap, what: &str) -> Result<(), Box<Response>> {
        let Some(key) = self.config.admin_key.as_deref().filter(|k| !k.is_empty()) else {
            return Err(Box::new(refuse(
                StatusCode::FORBIDDEN,
                format!("{what} needs the operator key, and this server has none (--admin-key)"),
            )));
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match given {
            Some(g) if constant_time_eq(g.as_bytes(), key.as_bytes()) => Ok(()),
            _ => Err(Box::new(refuse_with(
                StatusCode::UNAUTHORIZED,
                format!("{what} needs the operator key: Authorization: Bearer <--admin-key>"),
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer"),
            ))),
        }
    }

    /// A datagram connect token for `seat` (fresh keys), when the UDP endpoint runs.
    fn udp_ticket(&self, match_id: u32, seat: u32, name: &str, exp: u64) -> Option<UdpTicket> {
        let addr = self.udp_addr.as_ref()?;
        let mut keys = [0u8; 88];
        getrandom::fill(&mut keys).ok()?;
        let [c2s, s2c, nonce] = [&keys[..32], &keys[32..64], &keys[64..]];
        let sealed = ConnectToken::seal(
            &self.tokens.datagram_key(),
            &DatagramClaims {
                match_id,
                seat,
                name: name.to_string(),
                instance: self.tokens.instance,
                expires_at: exp,
                client_to_server: c2s.try_into().ok()?,
                server_to_client: s2c.try_into().ok()?,
            },
            nonce.try_into().ok()?,
        );
        Some(UdpTicket {
            addr: addr.to_string(),
            connect_token: sealed.to_text(),
        })
    }

    /// The `/ws` URL a token is used at, from `--public-url` (never the request's `Host`).
    fn ws_url(&self, token: &str) -> String {
        format!(
            "{}/ws?v={PROTOCOL_VERSION}&token={}",
            self.ws_base,
            percent_encode(token)
        )
    }

    /// True while draining or shutting down.
    #[must_use]
    pub fn not_accepting(&self) -> bool {
        self.ctx.draining.is_cancelled() || self.ctx.shutdown.is_cancelled()
    }

    /// Starts a new match and returns its handle.
    pub fn create_match(&self) -> Arc<MatchHandle> {
        let id = self.next_match_id.fetch_add(1, Ordering::Relaxed);
        let seed = self.seed ^ u64::from(id).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let m = crate::r#match::spawn(id, seed, &self.config, self.ctx.clone());
        self.registry.insert(m.clone());
        m
    }

    /// A seat for `name`: in `match_id`, or in the fullest open match (or a new one).
    fn reserve(
        &self,
        match_id: Option<u32>,
        name: &Name,
        until: Instant,
    ) -> Result<(Arc<MatchHandle>, u32), SeatError> {
        let registry = &self.registry;
        if let Some(id) = match_id {
            return registry.reserve_in(id, *name, until);
        }
        if let Some(found) = registry.reserve_any(name, until) {
            return Ok(found);
        }
        let _creating = self
            .create_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Someone may have started a match while we waited for the lock.
        if let Some(found) = registry.reserve_any(name, until) {
            return Ok(found);
        }
        // Every match is full or over (or there is none): start one. Another joiner may race
        // us to its seats; with a match size of at least 1 this ends.
        loop {
            let m = self.create_match();
            if let Ok(found) = registry.reserve_in(m.id, *name, until) {
                return Ok(found);
            }
        }
    }
}

/// Replay reads per client IP per second, and their burst: a seek costs the server a couple of
/// milliseconds (re-simulating up to five seconds), the page's viewer asks about five times a
/// second while the timeline is dragged.
const REPLAY_RATE_PER_S: u32 = 10;
const REPLAY_BURST: u32 = 30;

/// The router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/matches", get(list_matches).post(create_match))
        .route("/api/matches/{id}/results", get(results))
        .route(
            "/api/matches/{id}/replay",
            get(crate::replay::routes::download),
        )
        .route(
            "/api/matches/{id}/replay/info",
            get(crate::replay::routes::info),
        )
        .route(
            "/api/matches/{id}/replay/frames",
            get(crate::replay::routes::frames),
        )
        .route("/api/replays", get(crate::replay::routes::list))
        .route("/api/matches/{id}/spectate", post(spectate))
        .route("/api/matchmake", post(matchmake))
        .route("/api/udp-ticket", post(udp_ticket))
        .route("/api/stats", get(stats))
        .route("/ws", get(join))
        .merge(crate::web::routes())
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .with_state(state)
}

/// Compares secrets without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) fn refuse(status: StatusCode, reason: impl Into<String>) -> Response {
    Refusal(status, reason.into()).into_response()
}

/// A refused request: status and a plain-text reason.
#[derive(Debug)]
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        debug!(status = %self.0, reason = %self.1, "refused");
        (self.0, self.1).into_response()
    }
}

/// A refusal with one extra header (`Retry-After`, `WWW-Authenticate`).
fn refuse_with(
    status: StatusCode,
    reason: String,
    name: header::HeaderName,
    value: HeaderValue,
) -> Response {
    let mut res = Refusal(status, reason).into_response();
    res.headers_mut().insert(name, value);
    res
}

async fn list_matches(State(state): State<AppState>) -> Json<Vec<MatchInfo>> {
    Json(state.registry.list())
}

/// `POST /api/matches` answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct Created {
    pub id: u32,
}

async fn create_match(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if !state.config.open
        && let Err(r) = state.require_admin(&headers, "creating a match")
    {
        return *r;
    }
    if let Err(r) = state.rate_limit(&peer) {
        return *r;
    }
    if state.not_accepting() {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "server is draining: not accepting players",
        );
    }
    let m = state.create_match();
    (StatusCode::CREATED, Json(Created { id: m.id })).into_response()
}

/// `GET /readyz`: 200 while accepting players, 503 while draining or shutting down.
async fn readyz(State(state): State<AppState>) -> Response {
    if state.ctx.draining.is_cancelled() || state.ctx.shutdown.is_cancelled() {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining: not accepting players",
        );
    }
    "ready".into_response()
}

/// `GET /metrics`: Prometheus text format.
async fn metrics(State(state): State<AppState>) -> Response {
    let body = state
        .ctx
        .metrics
        .render(&state.ctx.stats, &state.registry.gauges());
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        body,
    )
        .into_response()
}

/// `GET /api/stats`: the server's counters and its process CPU time and RSS.
async fn stats(State(state): State<AppState>) -> Response {
    Json(serde_json::json!({
        "counters": &*state.ctx.stats,
        "process": skirmish_shared::process::usage(),
    }))
    .into_response()
}

async fn results(State(state): State<AppState>, Path(id): Path<u32>) -> Response {
    if let Some(r) = state.ctx.results.get(id) {
        return Json(r.as_ref().clone()).into_response();
    }
    if state.registry.get(id).is_some() {
        return refuse(StatusCode::CONFLICT, format!("match {id} is still running"));
    }
    refuse(StatusCode::NOT_FOUND, format!("no results for match {id}"))
}

/// `POST /api/matches/{id}/spectate` answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct SpectatorPass {
    pub match_id: u32,
    pub token: String,
    pub ws_url: String,
    /// Unix seconds.
    pub expires_at: u64,
}

/// A spectator token for match `id`: public unless `--private-spectating`.
async fn spectate(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<u32>,
) -> Response {
    if state.config.private_spectating
        && let Err(r) = state.require_admin(&headers, "spectating")
    {
        return *r;
    }
    if let Err(r) = state.rate_limit(&peer) {
        return *r;
    }
    let Some(m) = state.registry.get(id) else {
        return refuse(
            StatusCode::NOT_FOUND,
            format!("no match with id {id} (it may be over)"),
        );
    };
    let exp = unix_now_s() + state.config.token_ttl.as_secs().max(1);
    let token = state.tokens.sign(&Claims {
        match_id: m.id,
        seat: 0,
        name: String::new(),
        exp,
        instance: state.tokens.instance,
        spectator: true,
    });
    let ws_url = state.ws_url(&token);
    Json(SpectatorPass {
        match_id: m.id,
        token,
        ws_url,
        expires_at: exp,
    })
    .into_response()
}

/// A fresh datagram ticket for the seat of a join token (`Authorization: Bearer <token>`):
/// how a player comes back over UDP after its session timed out (a connect token works from
/// one address only, and a reconnecting client may have a new one). The seat must still be
/// the token's: reserved, or waiting for its reconnect.
async fn udp_ticket(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = state.rate_limit(&peer) {
        return *r;
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = token else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "a datagram ticket needs the seat's join token: Authorization: Bearer <token>",
        );
    };
    let claims = match state.tokens.verify(token, unix_now_s()) {
        Ok(c) if !c.spectator => c,
        Ok(_) => return refuse(StatusCode::FORBIDDEN, "spectators do not play over UDP"),
        Err(e) => return refuse(StatusCode::UNAUTHORIZED, format!("join token refused: {e}")),
    };
    let Some(handle) = state.registry.get(claims.match_id) else {
        return refuse(
            StatusCode::GONE,
            format!("match {} is over", claims.match_id),
        );
    };
    if handle.seats().get(claims.seat).is_none() {
        return refuse(
            StatusCode::FORBIDDEN,
            "seat is no longer reserved: its reservation or reconnect window expired",
        );
    }
    match state.udp_ticket(claims.match_id, claims.seat, &claims.name, claims.exp) {
        Some(t) => Json(t).into_response(),
        None => refuse(
            StatusCode::NOT_FOUND,
            "this server has no datagram endpoint (--no-udp)",
        ),
    }
}

async fn matchmake(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Result<Json<MatchmakeRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Err(r) = state.rate_limit(&peer) {
        return *r;
    }
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body over {} bytes", state.config.max_body_bytes),
            );
        }
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!(
                    "expected JSON {{\"name\": string, \"match\"?: number}}: {}",
                    e.body_text()
                ),
            );
        }
    };
    if state.not_accepting() {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "server is draining: not accepting players",
        );
    }
    let name = clean_name(&req.name);
    let until = Instant::now() + state.config.seat_reservation;
    let (handle, seat) = match state.reserve(req.match_id, &name, until) {
        Ok(found) => found,
        Err(e) => return seat_refusal(e),
    };
    let exp = unix_now_s() + state.config.token_ttl.as_secs().max(1);
    let claims = Claims {
        match_id: handle.id,
        seat,
        name: name.to_string(),
        exp,
        instance: state.tokens.instance,
        spectator: false,
    };
    let token = state.tokens.sign(&claims);
    let ws_url = state.ws_url(&token);
    let udp = state.udp_ticket(handle.id, seat, &name, exp);
    Json(MatchmakeResponse {
        match_id: handle.id,
        seat,
        name: name.to_string(),
        token,
        ws_url,
        reservation_s: state.config.seat_reservation.as_secs_f64(),
        expires_at: exp,
        udp,
    })
    .into_response()
}

fn seat_refusal(e: SeatError) -> Response {
    match e {
        SeatError::NoSuchMatch(_) => refuse(StatusCode::NOT_FOUND, e.to_string()),
        SeatError::Full(_) => refuse(StatusCode::CONFLICT, e.to_string()),
        SeatError::Over(_) => refuse(StatusCode::GONE, e.to_string()),
    }
}

fn parse_u32(q: &HashMap<String, String>, key: &str) -> Result<Option<u32>, Refusal> {
    match q.get(key).map(|v| v.parse::<u32>()) {
        None => Ok(None),
        Some(Ok(v)) => Ok(Some(v)),
        Some(Err(_)) => Err(Refusal(
            StatusCode::BAD_REQUEST,
            format!("query parameter {key} must be a number"),
        )),
    }
}

/// `GET /ws?v=<version>&token=<token>`, or `?v=..&match=<id>&spectate=1`, or (with `--open`)
/// `?v=..&name=<name>[&match=<id>]`. A spectator adds `&follow=<player id>` to see what
/// that player sees (with a view radius) instead of the whole match.
async fn join(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    upgrade: Result<IncomingUpgrade, StatusCode>,
) -> Response {
    let version = match parse_u32(&q, "v") {
        Err(r) => return r.into_response(),
        Ok(None) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!(
                    "missing query parameter v (protocol version); this server speaks {PROTOCOL_VERSION}"
                ),
            );
        }
        Ok(Some(v)) => v,
    };
    if version != PROTOCOL_VERSION {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!(
                "protocol version mismatch: this server speaks {PROTOCOL_VERSION}, the client sent {version}"
            ),
        );
    }
    let match_id = match parse_u32(&q, "match") {
        Ok(m) => m,
        Err(r) => return r.into_response(),
    };
    let follow = match parse_u32(&q, "follow") {
        Ok(f) => f.map(PlayerId),
        Err(r) => return r.into_response(),
    };
    let Ok(upgrade) = upgrade else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "expected a WebSocket upgrade request (Upgrade: websocket, Sec-WebSocket-Version: 13)",
        );
    };
    if state.not_accepting() {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "server is draining: not accepting players",
        );
    }
    let Ok(permit) = state.connections.clone().try_acquire_owned() else {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("server full: {} connections", state.config.max_connections),
        );
    };
    let kind = if q.get("spectate").is_some_and(|v| v == "1" || v == "true")
        && !q.contains_key("token")
    {
        if !state.config.open {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "spectating needs a spectator token: POST /api/matches/<id>/spectate",
            );
        }
        let Some(id) = match_id else {
            return refuse(
                StatusCode::BAD_REQUEST,
                "spectating needs a match: /ws?v=..&match=<id>&spectate=1",
            );
        };
        let Some(m) = state.registry.get(id) else {
            return refuse(
                StatusCode::NOT_FOUND,
                format!("no match with id {id} (it may be over)"),
            );
        };
        let Some(slot) = m.try_spectate() else {
            return refuse(
                StatusCode::CONFLICT,
                format!("match {id} has its {} spectators", m.max_spectators),
            );
        };
        JoinKind::Spectator { slot, follow }
    } else if let Some(token) = q.get("token") {
        match claim_token(&state, token, match_id, follow) {
            Ok(kind) => kind,
            Err(r) => return r.into_response(),
        }
    } else if state.config.open {
        let name = clean_name(q.get("name").map_or("", String::as_str));
        let (handle, seat) = match state.reserve(
            match_id,
            &name,
            Instant::now() + state.config.seat_reservation,
        ) {
            Ok(found) => found,
            Err(e) => return seat_refusal(e),
        };
        if let Err(e) = handle.seats().claim(seat, Instant::now()) {
            return refuse(StatusCode::FORBIDDEN, e.to_string());
        }
        JoinKind::Player {
            handle,
            seat,
            name,
            resume: None,
            reconnectable: false,
        }
    } else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "missing token: get one from POST /api/matchmake (or start the server with --open to join without one)",
        );
    };

    let (response, fut) = match upgrade.upgrade() {
        Ok(r) => r,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("upgrade failed: {e}")),
    };
    let ctx = ConnectionContext {
        server: state.ctx.clone(),
        input_queue: state.config.input_queue,
        write_timeout: state.config.write_timeout(),
        reconnect_grace: state.config.reconnect_grace,
    };
    state.ctx.tasks.spawn(async move {
        connection::run(fut, kind, ctx).await;
        drop(permit);
    });
    response.into_response()
}

/// Checks a token and claims its seat.
fn claim_token(
    state: &AppState,
    token: &str,
    match_id: Option<u32>,
    follow: Option<PlayerId>,
) -> Result<JoinKind, Refusal> {
    let claims = state.tokens.verify(token, unix_now_s()).map_err(|e| {
        Refusal(
            StatusCode::UNAUTHORIZED,
            match e {
                TokenError::Malformed => "malformed token".to_string(),
                TokenError::BadSignature => {
                    "forged token: the signature does not match".to_string()
                }
                TokenError::Expired => "expired token: matchmake again".to_string(),
                TokenError::OtherInstance => {
                    "token from before a server restart: matchmake again".to_string()
                }
            },
        )
    })?;
    if let Some(m) = match_id
        && m != claims.match_id
    {
        return Err(Refusal(
            StatusCode::FORBIDDEN,
            format!("token is for match {}, not match {m}", claims.match_id),
        ));
    }
    let Some(handle) = state.registry.get(claims.match_id) else {
        return Err(Refusal(
            StatusCode::GONE,
            format!("match {} is over", claims.match_id),
        ));
    };
    if claims.spectator {
        let Some(slot) = handle.try_spectate() else {
            return Err(Refusal(
                StatusCode::CONFLICT,
                format!(
                    "match {} has its {} spectators",
                    handle.id, handle.max_spectators
                ),
            ));
        };
        return Ok(JoinKind::Spectator { slot, follow });
    }
    let resume = handle
        .seats()
        .claim(claims.seat, Instant::now())
        .map_err(|e| match e {
            ClaimError::InUse => Refusal(
                StatusCode::FORBIDDEN,
                "token already in use by a connected player".into(),
            ),
            ClaimError::Gone => Refusal(
                StatusCode::FORBIDDEN,
                "seat is no longer reserved: its reservation or reconnect window expired".into(),
            ),
        })?;
    Ok(JoinKind::Player {
        handle,
        seat: claims.seat,
        name: claims.name.into(),
        resume,
        reconnectable: true,
    })
}
