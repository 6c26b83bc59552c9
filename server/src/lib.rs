//! The Skirmish server as a library: everything `main` wires up, and what the integration
//! tests start on `127.0.0.1:0`.
//!
//! - [`config`] — flags, environment, config file, defaults.
//! - [`serve`] — accepting HTTP connections, with their limits; [`http`] — the routes,
//!   including the pre-upgrade checks of `/ws`; [`web`] — the embedded page; [`token`] —
//!   signed join and spectator tokens.
//! - [`context`] — what matches and connections share; [`registry`] — the live matches and
//!   where new players go.
//! - `match` — one match's home: handle, task, phase rules, input queues,
//!   seats, its datagram players.
//! - [`connection`] — one WebSocket: seat lifecycle, sans-IO reader, writer, close handshake.
//! - The match loop's I/O: [`link`] (a connection as the loop sees it), [`inlet`] (its read
//!   side), [`outlet`] (its write side), [`socket`] (non-blocking sockets out of the
//!   reactor), [`wire`] (server frames), [`fanout`] (encode once per tick), [`events`] (the
//!   per-match event ring).
//! - [`stats`] — the counters; [`metrics`] — `/metrics`; [`results`] — finished matches on
//!   disk; [`replay`] — every match recorded, the files, `replay verify|show`.
//! - [`udp`] — the datagram endpoint (the socket, handshakes, sessions, batched I/O); the
//!   match's side is `match::datagrams`; [`acked`] — snapshots against acknowledged
//!   baselines; [`budget`] — what one client may cost, either transport; [`tls`] —
//!   certificates.
//! - [`interest`] — big matches (issue 15): each client's view, the grid and the priority
//!   under a byte budget.
//! - `demo` (feature `demo`, on by default) — in-process demo bots; `orchestrator` (feature
//!   `agones`) — the Agones SDK lifecycle.

pub mod acked;
pub mod budget;
pub mod config;
pub mod connection;
pub mod context;
#[cfg(feature = "demo")]
pub mod demo;
pub mod events;
pub mod fanout;
pub mod http;
pub mod inlet;
pub mod interest;
pub mod link;
pub mod r#match;
pub mod metrics;
#[cfg(feature = "agones")]
pub mod orchestrator;
pub mod outlet;
pub mod registry;
pub mod replay;
pub mod results;
pub mod serve;
pub mod socket;
pub mod stats;
pub mod tls;
pub mod token;
pub mod udp;
pub mod web;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

pub use config::Config;

use crate::context::ServerContext;
use crate::http::AppState;
use crate::registry::Registry;
use crate::results::{ResultsError, ResultsStore};
use crate::stats::Stats;
use crate::token::TokenSigner;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, #[source] std::io::Error),
    #[error(transparent)]
    Results(#[from] ResultsError),
    #[error(transparent)]
    Replays(#[from] replay::store::StoreError),
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("--demo runs its bots over plain HTTP: start the demo without --tls-cert")]
    DemoWithTls,
    #[error("cannot generate a token secret: {0}")]
    Secret(#[source] getrandom::Error),
    #[error("--agones: this build has no Agones support: build with --features agones")]
    NoAgones,
    #[cfg(feature = "agones")]
    #[error("--agones: {0}")]
    Agones(#[from] Box<orchestrator::AgonesError>),
    #[error("--demo: this build has no demo bots: build with the default `demo` feature")]
    NoDemo,
    #[error("--public-url {0:?}: expected http://host[:port] or https://host[:port]")]
    PublicUrl(String),
}

/// `ws://…` or `wss://…` for `--public-url`, or for the listen address when it is unset.
fn ws_base(
    public_url: Option<&str>,
    local_addr: SocketAddr,
    tls: bool,
) -> Result<PublicAddress, StartError> {
    let scheme = if tls { "wss" } else { "ws" };
    let Some(url) = public_url else {
        let host = if local_addr.ip().is_unspecified() {
            warn!(
                "listening on {local_addr}: matchmaking's ws_url names 127.0.0.1; set --public-url to the address players reach"
            );
            "127.0.0.1".to_string()
        } else {
            match local_addr.ip() {
                std::net::IpAddr::V4(ip) => ip.to_string(),
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            }
        };
        return Ok(PublicAddress {
            ws_base: format!("{scheme}://{host}:{}", local_addr.port()),
            host,
        });
    };
    let trimmed = url.trim_end_matches('/');
    let (scheme, rest) = match (
        trimmed.strip_prefix("http://"),
        trimmed.strip_prefix("https://"),
    ) {
        (Some(rest), _) => ("ws", rest),
        (_, Some(rest)) => ("wss", rest),
        _ => return Err(StartError::PublicUrl(url.to_string())),
    };
    if rest.is_empty() || rest.starts_with('/') || rest.contains(['?', '#', ' ']) {
        return Err(StartError::PublicUrl(url.to_string()));
    }
    // The host alone: the authority before any path, without its port ("[v6]" kept whole).
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = match authority.rsplit_once(':') {
        Some((h, port))
            if !h.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && !authority.ends_with(']') =>
        {
            h
        }
        _ => authority,
    };
    Ok(PublicAddress {
        ws_base: format!("{scheme}://{rest}"),
        host: host.to_string(),
    })
}

/// What [`bind_ports`] bound: the HTTP/WebSocket listener and its address, and the datagram
/// socket and its address.
struct Ports {
    listener: TcpListener,
    local_addr: SocketAddr,
    udp: Option<(std::net::UdpSocket, SocketAddr)>,
}

/// Attempts at a port free for both TCP and UDP when the system picks it (`--addr` port 0).
const EPHEMERAL_BIND_ATTEMPTS: usize = 16;

/// Binds the HTTP/WebSocket listener on `config.addr` and, unless `--no-udp`, the datagram
/// socket on the same port (or `--udp-port`). When the system picks the port (port 0), the port it gives the listener may
/// be taken for UDP (the two are separate spaces; client sockets take ephemeral UDP ports
/// too), so the pair is tried again on another port, a few times.
async fn bind_ports(config: &Config) -> Result<Ports, StartError> {
    let retry = config.addr.port() == 0 && config.udp_port.is_none() && !config.no_udp;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let listener = TcpListener::bind(config.addr)
            .await
            .map_err(|e| StartError::Bind(config.addr, e))?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| StartError::Bind(config.addr, e))?;
        if config.no_udp {
            return Ok(Ports {
                listener,
                local_addr,
                udp: None,
            });
        }
        let at = SocketAddr::new(
            local_addr.ip(),
            config.udp_port.unwrap_or(local_addr.port()),
        );
        match udp::bind(at).and_then(|s| Ok((s.local_addr()?, s))) {
            Ok((bound, socket)) => {
                return Ok(Ports {
                    listener,
                    local_addr,
                    udp: Some((socket, bound)),
                });
            }
            Err(e)
                if retry
                    && e.kind() == std::io::ErrorKind::AddrInUse
                    && attempt < EPHEMERAL_BIND_ATTEMPTS =>
            {
                debug!(
                    port = at.port(),
                    "udp port taken: trying another ephemeral port"
                );
            }
            Err(e) => return Err(StartError::Bind(at, e)),
        }
    }
}

/// Where players reach this server.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PublicAddress {
    /// `ws://host:port[/prefix]` or `wss://…`: what `ws_url`s start with.
    ws_base: String,
    /// The host alone, for the datagram endpoint's address.
    host: String,
}

/// How long shutdown waits for connections to finish their close handshakes.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A running server.
#[derive(Debug)]
pub struct Server {
    pub local_addr: SocketAddr,
    /// The TLS certificate store, when serving HTTPS/WSS.
    pub tls: Option<Arc<tls::CertStore>>,
    pub stats: Arc<Stats>,
    pub state: AppState,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    #[cfg(feature = "agones")]
    orchestrator: Option<orchestrator::Agones>,
}

impl Server {
    /// Binds `config.addr` and starts serving.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        let results = Arc::new(ResultsStore::open(config.results_file())?);
        let mut tokens = match &config.secret {
            Some(s) if !s.is_empty() => TokenSigner::new(s.as_bytes()),
            _ => {
                info!(
                    "no --secret given: generated a random token secret (tokens will not survive a restart)"
                );
                TokenSigner::random()
            }
        }
        .map_err(StartError::Secret)?;
        tokens.any_instance = config.token_survives_restart;
        let Ports {
            listener,
            local_addr,
            udp,
        } = bind_ports(&config).await?;
        #[cfg(not(feature = "agones"))]
        if config.agones {
            return Err(StartError::NoAgones);
        }
        if cfg!(not(feature = "demo")) && config.demo > 0 {
            return Err(StartError::NoDemo);
        }
        #[cfg(feature = "agones")]
        let (lifecycle_tx, lifecycle_rx) = {
            let (tx, rx) = tokio::sync::mpsc::channel(1024);
            if config.agones {
                (Some(tx), Some(rx))
            } else {
                (None, None)
            }
        };
        #[cfg(not(feature = "agones"))]
        let lifecycle_tx = None;
        let stats = Arc::new(Stats::default());
        let replays = match config.replays() {
            Some(dir) => Some(Arc::new(replay::ReplayStore::open(
                dir,
                config.replay_keep,
                config.replay_max_age,
                stats.clone(),
            )?)),
            None => None,
        };
        let registry = Arc::new(Registry::default());
        let ctx = ServerContext {
            stats: stats.clone(),
            results,
            replays,
            shutdown: CancellationToken::new(),
            tasks: tokio_util::task::TaskTracker::new(),
            draining: CancellationToken::new(),
            metrics: Arc::new(metrics::Metrics::default()),
            lifecycle: lifecycle_tx,
        };
        let seed = config.seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => {
                let store = tls::CertStore::open(cert.clone(), key.clone())?;
                info!(cert = %cert.display(), not_after = store.not_after(), "TLS: serving HTTPS and WSS");
                Some(store)
            }
            _ => None,
        };
        let http_limits = serve::HttpLimits {
            tls: tls.clone(),
            header_read_timeout: config.header_read_timeout,
            max_connections: config.max_http_connections,
            send_buffer: config.send_buffer,
        };
        let demo_bots = config.demo;
        if demo_bots > 0 && tls.is_some() {
            return Err(StartError::DemoWithTls);
        }
        #[cfg(feature = "agones")]
        let agones_setup = (
            config.agones,
            config.agones_sdk_port,
            config.max_connections,
        );
        let public = ws_base(config.public_url.as_deref(), local_addr, tls.is_some())?;
        let udp_addr = udp
            .as_ref()
            .map(|(_, bound)| format!("{}:{}", public.host, bound.port()));
        let datagram_key = tokens.datagram_key();
        let (instance, any_instance) = (tokens.instance, tokens.any_instance);
        let max_sessions = config.max_connections;
        let (udp_timeout, limits, input_queue, limit_loopback) = (
            config.udp_timeout,
            connection::reader::Limits::for_tick_rate(config.tick_hz),
            config.input_queue,
            config.rate_limit_loopback,
        );
        let mut state = AppState::new(config, ctx, registry, tokens, seed, public.ws_base);
        state.udp_addr = udp_addr.map(Into::into);
        if let Some((socket, _)) = udp {
            let endpoint = udp::UdpEndpoint {
                socket: Arc::new(socket),
                timeout: udp_timeout,
                limits,
                input_queue,
                limit_loopback,
                key: datagram_key,
                instance,
                any_instance,
                registry: state.registry.clone(),
                stats: stats.clone(),
                max_sessions,
            };
            state
                .ctx
                .tasks
                .spawn(endpoint.run(state.ctx.shutdown.clone()));
        }
        let app = http::router(state.clone());
        let shutdown = state.ctx.shutdown.clone();
        let task = tokio::spawn(serve::serve(
            listener,
            app,
            http_limits,
            stats.clone(),
            shutdown,
        ));
        if let Some(store) = &tls {
            stats
                .tls_cert_not_after
                .set(store.not_after().max(0) as u64);
            let watcher = store
                .clone()
                .watch(state.ctx.shutdown.clone(), stats.clone());
            state.ctx.tasks.spawn(watcher);
        }
        info!(%local_addr, tls = tls.is_some(), "listening (HTTP API and WebSocket /ws)");
        #[cfg(feature = "demo")]
        if demo_bots > 0 {
            info!(bots = demo_bots, "demo: starting wandering bots in-process");
            demo::spawn(
                demo_bots,
                format!("http://{local_addr}"),
                state.ctx.shutdown.clone(),
                &state.ctx.tasks,
            );
        }
        #[cfg(feature = "agones")]
        let orchestrator = match (agones_setup, lifecycle_rx) {
            ((true, port, capacity), Some(rx)) => Some(
                orchestrator::Agones::start(
                    port,
                    capacity,
                    state.ctx.clone(),
                    state.registry.clone(),
                    rx,
                )
                .await
                .map_err(Box::new)?,
            ),
            _ => None,
        };
        Ok(Self {
            local_addr,
            tls,
            stats,
            state,
            task,
            #[cfg(feature = "agones")]
            orchestrator,
        })
    }

    /// `http://<local_addr>`, or `https://` with TLS.
    #[must_use]
    pub fn base_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr)
    }

    /// Loads the TLS certificate pair again, as SIGHUP does (a pair that does not load is
    /// refused and the old one stays). Without TLS, nothing to do.
    pub fn reload_tls(&self) -> Result<(), tls::TlsError> {
        match &self.tls {
            Some(store) => {
                let r = store.reload();
                self.stats
                    .tls_cert_not_after
                    .set(store.not_after().max(0) as u64);
                r
            }
            None => Ok(()),
        }
    }

    /// Graceful shutdown: stop accepting players (`/readyz` answers 503), let running matches
    /// play on for up to `timeout`, then [`Server::shutdown`].
    pub async fn drain(self, timeout: Duration) -> std::io::Result<()> {
        self.state.ctx.draining.cancel();
        let registry = self.state.registry.clone();
        let deadline = tokio::time::Instant::now() + timeout;
        info!(matches = registry.len(), "draining for up to {timeout:?}");
        while !registry.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.shutdown().await
    }

    /// Stops accepting, ends running matches (results kept), closes every connection with
    /// 1001, and waits for them (bounded).
    pub async fn shutdown(self) -> std::io::Result<()> {
        self.state.ctx.draining.cancel();
        self.state.ctx.shutdown.cancel();
        self.state.ctx.tasks.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.state.ctx.tasks.wait())
            .await
            .is_err()
        {
            warn!("connections still open after {SHUTDOWN_GRACE:?}; exiting anyway");
        }
        let served = match tokio::time::timeout(SHUTDOWN_GRACE, self.task).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => Err(std::io::Error::other(e)),
            Err(_) => Ok(()),
        };
        #[cfg(feature = "agones")]
        if let Some(agones) = self.orchestrator {
            agones.shutdown().await;
        }
        served
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_address_comes_from_the_url_or_the_listen_address() {
        let local: SocketAddr = "127.0.0.1:7777".parse().expect("addr");
        let p = ws_base(None, local, false).expect("ok");
        assert_eq!(
            (p.ws_base.as_str(), p.host.as_str()),
            ("ws://127.0.0.1:7777", "127.0.0.1")
        );
        let v6: SocketAddr = "[::1]:9000".parse().expect("addr");
        let p = ws_base(None, v6, true).expect("ok");
        assert_eq!(
            (p.ws_base.as_str(), p.host.as_str()),
            ("wss://[::1]:9000", "[::1]")
        );
        let p = ws_base(Some("https://play.example.com:8443/game/"), local, false).expect("ok");
        assert_eq!(
            (p.ws_base.as_str(), p.host.as_str()),
            ("wss://play.example.com:8443/game", "play.example.com")
        );
        let p = ws_base(Some("http://[2001:db8::1]"), local, false).expect("ok");
        assert_eq!(p.host, "[2001:db8::1]");
        assert!(ws_base(Some("ftp://x"), local, false).is_err());
    }
}
