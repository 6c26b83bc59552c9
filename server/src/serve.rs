//! Accepting and serving HTTP connections, with the limits a public server needs: a cap on
//! concurrent HTTP connections (a short `503` beyond it, written without reading the
//! request), a header-read timeout that also bounds the idle time between keep-alive
//! requests (hyper restarts it whenever it waits for a request head), and one descriptor per
//! connection.
//!
//! With `--tls-cert`, each connection is a TLS handshake first (within the same timeout),
//! then HTTPS; an upgraded connection keeps its session (see `socket`).
//!
//! This replaces `axum::serve`, which offers neither the timeout nor the cap. hyper serves
//! each connection (HTTP/1.1, with upgrades for `/ws`); the router sees the peer's address as
//! `ConnectInfo<SocketAddr>`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tracing::{debug, trace, warn};

use crate::stats::Stats;

/// HTTP connection limits (see the module docs).
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// A request's headers must arrive within this; also the most a keep-alive connection
    /// may sit idle between requests.
    pub header_read_timeout: Duration,
    /// Concurrent HTTP connections (a WebSocket stops counting once upgraded).
    pub max_connections: usize,
    /// Kernel send buffer per accepted socket; `None` lets the kernel autotune.
    pub send_buffer: Option<u32>,
    /// With TLS: the certificate store new connections are served from.
    pub tls: Option<Arc<crate::tls::CertStore>>,
}

/// What a connection over the cap gets: a complete response, then the close.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 39\r\nretry-after: 1\r\nconnection: close\r\n\r\nserver busy: too many HTTP connections\n";

/// How long accepting pauses after an accept error (out of descriptors, say), so the loop
/// does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// Serves `app` on `listener` until `shutdown`; then lets the connections being served
/// finish their current request.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    stats: Arc<Stats>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let tls = limits
        .tls
        .as_ref()
        .map(|store| tokio_rustls::TlsAcceptor::from(store.server_config()));
    let connections = tokio_util::task::TaskTracker::new();
    loop {
        let (tcp, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    debug!("accept: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            // One non-blocking write; whatever the client sent is never read. (Over TLS the
            // client gets no answer: a plaintext one would be garbage to it.)
            if tls.is_none() {
                let _ = tcp.try_write(BUSY);
            }
            stats.http_refused_busy.inc();
            continue;
        };
        tune(&tcp, limits.send_buffer);
        let app = app.clone();
        let shutdown = shutdown.clone();
        let limits = limits.clone();
        let tls = tls.clone();
        let stats = stats.clone();
        connections.spawn(async move {
            match tls {
                None => serve_connection(TokioIo::new(tcp), peer, app, &limits, shutdown).await,
                Some(acceptor) => {
                    // The handshake must finish within the header timeout too.
                    let hs = tokio::time::timeout(limits.header_read_timeout, acceptor.accept(tcp));
                    match hs.await {
                        Ok(Ok(stream)) => {
                            stats.tls_handshakes.inc();
                            serve_connection(TokioIo::new(stream), peer, app, &limits, shutdown)
                                .await;
                        }
                        Ok(Err(e)) => {
                            stats.tls_handshake_failures.inc();
                            debug!(%peer, "TLS handshake failed: {e}");
                        }
                        Err(_) => {
                            stats.tls_handshake_failures.inc();
                            debug!(%peer, "TLS handshake timed out");
                        }
                    }
                }
            }
            drop(permit);
        });
    }
    connections.close();
    if tokio::time::timeout(Duration::from_secs(5), connections.wait())
        .await
        .is_err()
    {
        warn!("HTTP connections still open after 5 s; stopping anyway");
    }
    Ok(())
}

/// `TCP_NODELAY` (snapshots go out as soon as they are written) and the send buffer.
fn tune(tcp: &TcpStream, send_buffer: Option<u32>) {
    if let Err(e) = tcp.set_nodelay(true) {
        warn!("TCP_NODELAY: {e}");
    }
    if let Some(size) = send_buffer
        && let Err(e) = socket2::SockRef::from(tcp).set_send_buffer_size(size as usize)
    {
        warn!("SO_SNDBUF: {e}");
    }
}

async fn serve_connection<I>(
    io: TokioIo<I>,
    peer: SocketAddr,
    app: Router,
    limits: &HttpLimits,
    shutdown: CancellationToken,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(tower::service_fn(
        move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let app = app.clone();
            async move {
                let res = app
                    .oneshot(req.map(axum::body::Body::new))
                    .await
                    .unwrap_or_else(|e: Infallible| match e {});
                Ok::<_, Infallible>(res)
            }
        },
    ));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                trace!(%peer, "HTTP connection: {e}");
            }
        }
        () = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        }
    }
}
