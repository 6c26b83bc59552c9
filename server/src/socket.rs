//! A game connection's TCP socket, taken out of the runtime's reactor after the upgrade.
//!
//! A match loop already visits each of its connections once per tick (it reads their inputs
//! and writes their snapshot), so it needs no readiness events: a socket left in the reactor
//! costs an epoll event and its bookkeeping for every input that arrives. So the socket is
//! kept as a plain non-blocking `std` socket, used with non-blocking reads and writes only:
//!
//! - every HTTP connection's socket is duplicated at accept (`PeerSocket`, as connect info),
//!   and the WebSocket handler duplicates that again for the connection;
//! - after the WebSocket upgrade, what hyper had already read is drained and the runtime's
//!   handle dropped, which takes the socket out of epoll and closes that descriptor
//!   (`detach`); the duplicate is the connection's socket from then on;
//! - reads return `Pending` when nothing is there and register no waker: whoever polls them
//!   polls again (the match each tick, or `drive` on a timer).

use std::future::Future;
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, ReadBuf};

/// A connection's socket once detached (shared by its reader, writer and match loop; reads
/// and writes on a `std` socket take `&self`).
pub type Socket = Arc<std::net::TcpStream>;

/// How often a task waiting on a detached socket (a full send buffer, a close handshake
/// after the match) tries again.
pub const RETRY_EVERY: Duration = Duration::from_millis(5);

/// The most of an early client stream taken from hyper's buffer at the upgrade.
const MAX_PREFIX: usize = 64 * 1024;

/// The server's listener: accepted sockets get `TCP_NODELAY` (snapshots go out as soon as
/// they are written) and the configured send buffer.
#[derive(Debug)]
pub struct GameListener {
    pub inner: tokio::net::TcpListener,
    pub send_buffer: Option<u32>,
}

impl Listener for GameListener {
    type Io = tokio::net::TcpStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (tcp, addr) = Listener::accept(&mut self.inner).await;
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!("TCP_NODELAY: {e}");
        }
        if let Some(size) = self.send_buffer
            && let Err(e) = socket2::SockRef::from(&tcp).set_send_buffer_size(size as usize)
        {
            tracing::warn!("SO_SNDBUF: {e}");
        }
        (tcp, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// Connect info: a duplicate of the accepted socket (closed with the HTTP connection).
#[derive(Debug, Clone)]
pub struct PeerSocket(Arc<io::Result<socket2::Socket>>);

impl PeerSocket {
    /// Another descriptor for the connection's socket, for a WebSocket to keep.
    pub fn dup(&self) -> io::Result<socket2::Socket> {
        match &*self.0 {
            Ok(s) => s.try_clone(),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        }
    }
}

impl Connected<IncomingStream<'_, GameListener>> for PeerSocket {
    fn connect_info(stream: IncomingStream<'_, GameListener>) -> Self {
        Self(Arc::new(socket2::SockRef::from(stream.io()).try_clone()))
    }
}

/// Takes an upgraded connection out of the runtime: returns its socket (from `dup`) and the
/// bytes of the client's stream that hyper had already read.
pub fn detach(io: TokioIo<Upgraded>, dup: socket2::Socket) -> io::Result<(Socket, Vec<u8>)> {
    let mut io = io;
    let mut prefix = Vec::new();
    let mut chunk = [0u8; 2048];
    let mut cx = Context::from_waker(Waker::noop());
    while prefix.len() < MAX_PREFIX {
        let mut buf = ReadBuf::new(&mut chunk);
        match Pin::new(&mut io).poll_read(&mut cx, &mut buf) {
            Poll::Ready(Ok(())) if buf.filled().is_empty() => break, // EOF: reads say so again
            Poll::Ready(Ok(())) => prefix.extend_from_slice(buf.filled()),
            Poll::Ready(Err(e)) => return Err(e),
            Poll::Pending => break,
        }
    }
    // Deregisters from epoll and closes the runtime's descriptor; `dup` keeps the socket.
    drop(io);
    let socket = std::net::TcpStream::from(dup);
    socket.set_nonblocking(true)?;
    Ok((Arc::new(socket), prefix))
}

/// The most one read takes: a read that returns less has emptied the socket.
pub const READ_CHUNK: usize = 1024;

/// Reads what has arrived, appending it to `buf`: `Ready(Ok(0))` at end of stream, `Pending`
/// (no waker registered) when nothing has.
pub fn poll_read(socket: &Socket, buf: &mut Vec<u8>) -> Poll<io::Result<usize>> {
    let mut chunk = [0u8; READ_CHUNK];
    loop {
        match (&**socket).read(&mut chunk) {
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Poll::Ready(Ok(n));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
}

/// One non-blocking write: the bytes written, 0 if the send buffer is full.
pub fn try_write(socket: &Socket, bytes: &[u8]) -> io::Result<usize> {
    loop {
        match (&**socket).write(bytes) {
            Ok(0) if !bytes.is_empty() => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Why a whole write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("socket accepted no bytes for {0:?}")]
    TimedOut(Duration),
    #[error("socket error: {0}")]
    Socket(#[from] io::Error),
}

/// Writes all of `bytes`, retrying every `RETRY_EVERY` while the send buffer is full; fails
/// when no byte goes out for `patience`.
pub async fn write_all(
    socket: &Socket,
    bytes: &[u8],
    patience: Duration,
) -> Result<(), WriteError> {
    let mut rest = bytes;
    let mut stalled_since = tokio::time::Instant::now();
    while !rest.is_empty() {
        match try_write(socket, rest)? {
            0 => {
                if stalled_since.elapsed() >= patience {
                    return Err(WriteError::TimedOut(patience));
                }
                tokio::time::sleep(RETRY_EVERY).await;
            }
            n => {
                rest = &rest[n..];
                stalled_since = tokio::time::Instant::now();
            }
        }
    }
    Ok(())
}

/// Returns `Pending` once: the caller gives up this poll (nothing is woken) and goes on at
/// the next.
pub async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(|_| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            Poll::Pending
        }
    })
    .await;
}

/// Runs a future whose reads poll a detached socket (and so are never woken): polls it
/// every `RETRY_EVERY` until it finishes.
pub async fn drive<F: Future + Unpin>(mut fut: F) -> F::Output {
    loop {
        if let Poll::Ready(v) = Pin::new(&mut fut).poll(&mut Context::from_waker(Waker::noop())) {
            return v;
        }
        tokio::time::sleep(RETRY_EVERY).await;
    }
}

/// A detached server socket and its blocking client end, over loopback (for tests).
#[cfg(test)]
pub(crate) fn test_pair() -> (Socket, std::net::TcpStream) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let client = std::net::TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
    let (server, _) = l.accept().expect("accept");
    server.set_nonblocking(true).expect("nonblocking");
    (Arc::new(server), client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_pending_until_bytes_arrive_and_ready_at_end_of_stream() {
        let (server, mut client) = test_pair();
        let mut buf = Vec::new();
        assert!(poll_read(&server, &mut buf).is_pending());
        client.write_all(b"hello").expect("write");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while buf.len() < 5 && std::time::Instant::now() < deadline {
            let _ = poll_read(&server, &mut buf);
        }
        assert_eq!(buf, b"hello");
        drop(client);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            match poll_read(&server, &mut buf) {
                Poll::Ready(Ok(0)) => break,
                _ if std::time::Instant::now() > deadline => panic!("no end of stream"),
                _ => std::thread::yield_now(),
            }
        }
    }

    #[tokio::test]
    async fn a_write_to_a_peer_that_never_reads_times_out() {
        let (server, _client) = test_pair();
        let block = vec![0u8; 1 << 20];
        let mut sent = 0usize;
        while try_write(&server, &block).expect("write") > 0 {
            sent += 1;
            assert!(sent < 1000, "the send buffer never filled");
        }
        // More than the buffers can take while nobody reads: progress stops, then the wait.
        let more = vec![0u8; 8 << 20];
        let r = write_all(&server, &more, Duration::from_millis(100)).await;
        assert!(matches!(r, Err(WriteError::TimedOut(_))), "{r:?}");
    }
}
