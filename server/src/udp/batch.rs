//! Many datagrams per system call: `recvmmsg` fills a batch of buffers from the endpoint's
//! socket, `sendmmsg` sends a tick's packets for every datagram player of a match at once.
//!
//! Chosen over io_uring: the `io-uring` crate's submissions are `unsafe` (the kernel holds
//! the buffers until completion) and `tokio-uring` is a runtime of its own, while the
//! workspace forbids unsafe code and runs on tokio; nix's `recvmmsg`/`sendmmsg` are safe
//! wrappers and cut the per-packet system call the same way. Linux only, like the rest of
//! the server's I/O path.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;

use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg};

/// Datagrams per system call.
pub const BATCH: usize = 64;
/// The largest datagram read (anything longer is cut, and fails to authenticate).
pub const MAX_DATAGRAM: usize = 1500;

/// Buffers for `recvmmsg`, reused across calls. (The message headers are made per call:
/// nix's `MultiHeaders` holds raw pointers, so it cannot live in a task across an `.await`.)
pub struct RecvBatch {
    bufs: Vec<[u8; MAX_DATAGRAM]>,
    got: Vec<(usize, Option<SocketAddr>)>,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("got", &self.got.len())
            .finish()
    }
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self {
            bufs: vec![[0u8; MAX_DATAGRAM]; BATCH],
            got: Vec::with_capacity(BATCH),
        }
    }
}

impl RecvBatch {
    /// Reads up to `BATCH` datagrams without blocking; `WouldBlock` when none is waiting.
    pub fn recv(&mut self, socket: &impl AsRawFd) -> io::Result<usize> {
        self.got.clear();
        let fd = socket.as_raw_fd();
        let mut iovs: Vec<[IoSliceMut<'_>; 1]> = self
            .bufs
            .iter_mut()
            .map(|b| [IoSliceMut::new(&mut b[..])])
            .collect();
        let mut headers: MultiHeaders<SockaddrStorage> = MultiHeaders::preallocate(BATCH, None);
        let results = recvmmsg(
            fd,
            &mut headers,
            iovs.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        )
        .map_err(io::Error::from)?;
        for r in results {
            self.got.push((r.bytes, r.address.and_then(|a| to_std(&a))));
        }
        Ok(self.got.len())
    }

    /// The datagrams of the last `recv`, with their senders.
    pub fn datagrams(&self) -> impl Iterator<Item = (&[u8], SocketAddr)> {
        self.got
            .iter()
            .zip(&self.bufs)
            .filter_map(|((n, from), buf)| Some((&buf[..*n], (*from)?)))
    }
}

/// Packets queued for one `sendmmsg` pass.
#[derive(Debug, Default)]
pub struct SendBatch {
    packets: Vec<(SocketAddr, Vec<u8>)>,
}

/// What one `flush` did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Flushed {
    pub packets: usize,
    pub bytes: usize,
    /// Not sent: the socket's buffer was full (UDP: they are lost, like on the wire).
    pub dropped: usize,
}

impl SendBatch {
    pub fn push(&mut self, to: SocketAddr, packet: Vec<u8>) {
        self.packets.push((to, packet));
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// Sends everything queued, `BATCH` packets per system call, without blocking.
    pub fn flush(&mut self, socket: &impl AsRawFd) -> Flushed {
        let fd = socket.as_raw_fd();
        let mut done = Flushed::default();
        let mut headers: MultiHeaders<SockaddrStorage> = MultiHeaders::preallocate(BATCH, None);
        let mut rest = &self.packets[..];
        while !rest.is_empty() {
            let chunk = &rest[..rest.len().min(BATCH)];
            let iovs: Vec<[IoSlice<'_>; 1]> =
                chunk.iter().map(|(_, p)| [IoSlice::new(p)]).collect();
            let addrs: Vec<Option<SockaddrStorage>> = chunk
                .iter()
                .map(|(a, _)| Some(SockaddrStorage::from(*a)))
                .collect();
            let sent = match sendmmsg(
                fd,
                &mut headers,
                iovs.iter(),
                &addrs,
                [],
                MsgFlags::MSG_DONTWAIT,
            ) {
                Ok(r) => r.count(),
                // Full socket buffer (or a transient error): this chunk is lost.
                Err(_) => 0,
            };
            let sent = sent.min(chunk.len());
            done.packets += sent;
            done.bytes += chunk[..sent].iter().map(|(_, p)| p.len()).sum::<usize>();
            if sent == 0 {
                done.dropped += chunk.len();
                rest = &rest[chunk.len()..];
            } else {
                rest = &rest[sent..];
            }
        }
        self.packets.clear();
        done
    }
}

fn to_std(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::from(*v4)));
    }
    a.as_sockaddr_in6()
        .map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_goes_out_and_comes_back_in_one_call_each() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let clients: Vec<std::net::UdpSocket> = (0..5)
            .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").expect("bind"))
            .collect();
        for (i, c) in clients.iter().enumerate() {
            c.send_to(&[i as u8; 10], server.local_addr().expect("addr"))
                .expect("send");
        }
        let mut rx = RecvBatch::default();
        let mut seen = Vec::new();
        while seen.len() < 5 {
            match rx.recv(&server) {
                Ok(_) => seen.extend(rx.datagrams().map(|(d, from)| (d.to_vec(), from))),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("recvmmsg: {e}"),
            }
        }
        for (i, c) in clients.iter().enumerate() {
            let from = c.local_addr().expect("addr");
            assert!(seen.contains(&(vec![i as u8; 10], from)), "from {from}");
        }
        let mut tx = SendBatch::default();
        for (d, from) in &seen {
            tx.push(*from, d.iter().map(|b| b + 1).collect());
        }
        let flushed = tx.flush(&server);
        assert_eq!(flushed.packets, 5);
        assert_eq!(flushed.bytes, 50);
        assert!(tx.is_empty());
        for (i, c) in clients.iter().enumerate() {
            let mut buf = [0u8; 64];
            let n = c.recv(&mut buf).expect("reply");
            assert_eq!(&buf[..n], &[i as u8 + 1; 10]);
        }
        assert!(matches!(rx.recv(&server), Err(e) if e.kind() == io::ErrorKind::WouldBlock));
    }
}
