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
//!   polls again (the match each tick, or `drive` on a timer);
//! - with TLS, the rustls session sits between: one `recv` of records per read, the tick's
//!   frame encrypted and sent with one (vectored) `send` per write.

use std::future::Future;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;

/// A connection's socket once detached, shared by its reader, writer and match loop: plain
/// TCP, or TCP with a rustls session between (the session's state under a lock the reader
/// and the writer share; they run one after the other on the match's thread in the steady
/// state, so it is not contended).
#[derive(Debug, Clone)]
pub struct Socket(Arc<Inner>);

#[derive(Debug)]
enum Inner {
    Plain(std::net::TcpStream),
    /// Boxed: a plain socket stays a few bytes (the session is over a kilobyte).
    Tls(Box<Mutex<TlsSocket>>),
}

/// A TLS session over a non-blocking TCP stream, driven by hand: one `recv` feeds the
/// session, one `send` (vectored over the queued records) drains it.
#[derive(Debug)]
struct TlsSocket {
    tcp: std::net::TcpStream,
    conn: rustls::ServerConnection,
}

/// The most ciphertext the session queues before a write counts as "socket full".
const TLS_BUFFER: usize = 64 * 1024;

/// How often a task waiting on a detached socket (a full send buffer, a close handshake
/// after the match) tries again.
pub const RETRY_EVERY: Duration = Duration::from_millis(5);

impl Socket {
    /// A plain TCP socket (set non-blocking).
    pub fn plain(tcp: std::net::TcpStream) -> io::Result<Self> {
        tcp.set_nonblocking(true)?;
        Ok(Self(Arc::new(Inner::Plain(tcp))))
    }

    fn tls(tcp: std::net::TcpStream, mut conn: rustls::ServerConnection) -> io::Result<Self> {
        tcp.set_nonblocking(true)?;
        conn.set_buffer_limit(Some(TLS_BUFFER));
        Ok(Self(Arc::new(Inner::Tls(Box::new(Mutex::new(
            TlsSocket { tcp, conn },
        ))))))
    }

    /// Whether TLS sits between the socket and the WebSocket frames.
    #[must_use]
    pub fn is_tls(&self) -> bool {
        matches!(&*self.0, Inner::Tls(_))
    }

    fn lock_tls(m: &Mutex<TlsSocket>) -> MutexGuard<'_, TlsSocket> {
        m.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ends the connection now: a TLS close_notify if there is a session (best effort),
    /// then the TCP shutdown, whoever else still holds the socket.
    pub fn shutdown(&self) {
        match &*self.0 {
            Inner::Plain(tcp) => {
                let _ = tcp.shutdown(Shutdown::Both);
            }
            Inner::Tls(m) => {
                let mut t = Self::lock_tls(m);
                t.conn.send_close_notify();
                let _ = t.flush();
                let _ = t.tcp.shutdown(Shutdown::Both);
            }
        }
    }
}

impl TlsSocket {
    /// Writes queued records until done or the socket is full.
    fn flush(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.tcp) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        // Plaintext the session already holds first (some may have come with the upgrade).
        match self.conn.reader().read(buf) {
            Ok(n) => return Poll::Ready(Ok(n)), // 0: the peer's close_notify
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Poll::Ready(Err(e)),
        }
        loop {
            match self.conn.read_tls(&mut self.tcp) {
                Ok(0) => return Poll::Ready(Ok(0)),
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        if let Err(e) = self.conn.process_new_packets() {
            let _ = self.flush(); // the alert
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)));
        }
        // Key updates and the like may want an answer.
        if let Err(e) = self.flush() {
            return Poll::Ready(Err(e));
        }
        match self.conn.reader().read(buf) {
            Ok(n) => Poll::Ready(Ok(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// Plaintext bytes taken (0 while earlier records still wait for room in the socket).
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.flush()?;
        if self.conn.wants_write() {
            return Ok(0);
        }
        let n = self.conn.writer().write(bytes)?;
        self.flush()?;
        Ok(n)
    }

    /// Whether records wait for room in the socket.
    fn pending(&self) -> bool {
        self.conn.wants_write()
    }
}

/// Takes an upgraded connection out of the runtime: returns its socket and the bytes of the
/// client's stream that hyper had already read. The runtime's registration is dropped
/// (`into_std` deregisters it from epoll); the descriptor is the same one, so a connection
/// holds one descriptor from accept to close. A TLS connection keeps its session.
pub fn detach(upgraded: Upgraded) -> io::Result<(Socket, Vec<u8>)> {
    let upgraded = match upgraded.downcast::<TokioIo<tokio::net::TcpStream>>() {
        Ok(parts) => {
            let socket = Socket::plain(parts.io.into_inner().into_std()?)?;
            return Ok((socket, parts.read_buf.to_vec()));
        }
        Err(other) => other,
    };
    type TlsIo = TokioIo<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>;
    let parts = upgraded
        .downcast::<TlsIo>()
        .map_err(|_| io::Error::other("the upgraded connection is neither TCP nor TLS over TCP"))?;
    let (tcp, conn) = parts.io.into_inner().into_inner();
    Ok((Socket::tls(tcp.into_std()?, conn)?, parts.read_buf.to_vec()))
}

/// One non-blocking read into `buf`: `Ready(Ok(0))` at end of stream, `Pending` (no waker
/// registered) when nothing has arrived. With TLS: one `recv` of records, the plaintext out.
pub fn try_read(socket: &Socket, buf: &mut [u8]) -> Poll<io::Result<usize>> {
    match &*socket.0 {
        Inner::Plain(tcp) => loop {
            match (&*tcp).read(buf) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        },
        Inner::Tls(m) => Socket::lock_tls(m).read(buf),
    }
}

/// One non-blocking write: the bytes written (taken, with TLS), 0 if the socket is full.
pub fn try_write(socket: &Socket, bytes: &[u8]) -> io::Result<usize> {
    match &*socket.0 {
        Inner::Plain(tcp) => loop {
            match (&*tcp).write(bytes) {
                Ok(0) if !bytes.is_empty() => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        },
        Inner::Tls(m) => Socket::lock_tls(m).write(bytes),
    }
}

/// Whether bytes already taken still wait for room in the socket (TLS records).
fn unflushed(socket: &Socket) -> io::Result<bool> {
    match &*socket.0 {
        Inner::Plain(_) => Ok(false),
        Inner::Tls(m) => {
            let mut t = Socket::lock_tls(m);
            t.flush()?;
            Ok(t.pending())
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

/// Writes all of `bytes` (and, with TLS, every record out to the socket), retrying every
/// `RETRY_EVERY` while the send buffer is full; fails when no byte goes out for `patience`.
pub async fn write_all(
    socket: &Socket,
    bytes: &[u8],
    patience: Duration,
) -> Result<(), WriteError> {
    let mut rest = bytes;
    let mut stalled_since = tokio::time::Instant::now();
    loop {
        let progress = if rest.is_empty() {
            if !unflushed(socket)? {
                return Ok(());
            }
            false
        } else {
            let n = try_write(socket, rest)?;
            rest = &rest[n..];
            n > 0
        };
        if progress {
            stalled_since = tokio::time::Instant::now();
            continue;
        }
        if stalled_since.elapsed() >= patience {
            return Err(WriteError::TimedOut(patience));
        }
        tokio::time::sleep(RETRY_EVERY).await;
    }
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
    (Socket::plain(server).expect("nonblocking"), client)
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
