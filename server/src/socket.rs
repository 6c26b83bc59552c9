//! A game connection's TCP socket, taken out of the runtime's reactor after the upgrade.
//!
//! A match loop already visits each of its connections once per tick (it reads their inputs
//! and writes their snapshot), so it needs no readiness events: a socket left in the reactor
//! costs an epoll event and its bookkeeping for every input that arrives. So the socket is
//! kept as a plain non-blocking `std` socket, used with non-blocking reads and writes only:
//!
//! - after the WebSocket upgrade, hyper hands back the TCP stream and what it had already
//!   read, and the stream leaves the runtime's reactor (`detach`);
//! - reads return `Pending` when nothing is there and register no waker: whoever polls them
//!   polls again (the match each tick, or `drive` on a timer).

use std::future::Future;
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;

/// A connection's socket once detached (shared by its reader, writer and match loop; reads
/// and writes on a `std` socket take `&self`).
pub type Socket = Arc<std::net::TcpStream>;

/// How often a task waiting on a detached socket (a full send buffer, a close handshake
/// after the match) tries again.
pub const RETRY_EVERY: Duration = Duration::from_millis(5);

/// Takes an upgraded connection out of the runtime: returns its socket and the bytes of the
/// client's stream that hyper had already read. The runtime's registration is dropped
/// (`into_std` deregisters it from epoll); the descriptor is the same one, so a connection
/// holds one descriptor from accept to close.
pub fn detach(upgraded: Upgraded) -> io::Result<(Socket, Vec<u8>)> {
    let parts = upgraded
        .downcast::<TokioIo<tokio::net::TcpStream>>()
        .map_err(|_| io::Error::other("the upgraded connection is not a plain TCP stream"))?;
    let socket = parts.io.into_inner().into_std()?;
    socket.set_nonblocking(true)?;
    Ok((Arc::new(socket), parts.read_buf.to_vec()))
}

/// One non-blocking read into `buf`: `Ready(Ok(0))` at end of stream, `Pending` (no waker
/// registered) when nothing has arrived.
pub fn try_read(socket: &Socket, buf: &mut [u8]) -> Poll<io::Result<usize>> {
    loop {
        match (&**socket).read(buf) {
            Ok(n) => return Poll::Ready(Ok(n)),
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
        let mut chunk = [0u8; 16];
        assert!(try_read(&server, &mut chunk).is_pending());
        client.write_all(b"hello").expect("write");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while buf.len() < 5 && std::time::Instant::now() < deadline {
            if let Poll::Ready(Ok(n)) = try_read(&server, &mut chunk) {
                buf.extend_from_slice(&chunk[..n]);
            }
        }
        assert_eq!(buf, b"hello");
        drop(client);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            match try_read(&server, &mut chunk) {
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
