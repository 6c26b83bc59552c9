//! The datagram transport's endpoint (issue 14): one UDP socket, on the game port's number
//! by default, shared by every match.
//!
//! The endpoint task reads the socket in batches (`recvmmsg`, [`batch`]) every
//! [`POLL_EVERY`], runs the handshake (`skirmish_shared::datagram`) for addresses it does not know,
//! seats each new session in its match like a WebSocket join (the token's seat, claimed in
//! the seat table), and opens every packet of a seated session: the acknowledgement and the
//! reliable-channel traffic go to the player's inbox, new inputs straight into its input
//! queue ([`peer`]). Writing is the match's: at the end of each tick it codes every datagram
//! player's snapshot against that player's acknowledgement and sends them all with
//! `sendmmsg` (`r#match::datagrams`).
//!
//! Hostile traffic: a packet that does not authenticate costs one failed decryption and is
//! counted, never answered; a seated client's packets are charged against the same message
//! budget as a WebSocket client's (`budget`) after they authenticate (so a spoofer cannot
//! spend another client's budget); handshake replies are never larger than the request; a
//! source address gets at most [`HANDSHAKES_PER_S`] handshake packets a second looked at
//! (burst [`HANDSHAKE_BURST`]; loopback exempt unless `--rate-limit-loopback`), so a flood of
//! connection requests from one place costs a map lookup each, not a token decryption.

pub mod batch;
pub mod peer;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use skirmish_shared::datagram::play::Up;
use skirmish_shared::datagram::{self, DatagramError, Handshake, Kind, Opener, Session, Step};
use skirmish_shared::tick::Seq;

use crate::budget::{PerIp, TokenBucket};
use crate::connection::reader::Limits;
use crate::link::End;
use crate::r#match::MatchCommand;
use crate::registry::Registry;
use crate::stats::Stats;
use batch::RecvBatch;
use peer::{MAX_RELIABLE_PER_TICK, Peer};

/// Handshake packets looked at per source IP and second, and the burst (a client resends its
/// request every 250 ms, and several players may share an address).
pub const HANDSHAKES_PER_S: u32 = 8;
pub const HANDSHAKE_BURST: u32 = 32;
/// How often silent sessions are looked for.
const SWEEP_EVERY: Duration = Duration::from_millis(500);
/// Batches read per wake-up before the endpoint lets other tasks run.
const MAX_BATCHES_PER_WAKE: usize = 64;
/// How often the endpoint drains its socket. The socket is not registered with the runtime's
/// reactor: with edge-triggered epoll every arriving datagram would wake the runtime's
/// thread (measured: 23,000 context switches a second at 1,024 clients, against 150 for the
/// same clients over WebSocket, whose sockets the matches also read without the reactor).
/// Polled, thousands of clients' packets are read a few hundred at a time, for at most this
/// much added to an input's latency (the matches consume inputs once a tick anyway).
pub const POLL_EVERY: Duration = Duration::from_millis(2);
/// The socket's receive buffer asked for: a few ticks of packets for thousands of players.
const RECV_BUFFER: usize = 4 << 20;

/// What the endpoint needs.
#[derive(Debug)]
pub struct UdpEndpoint {
    pub socket: Arc<UdpSocket>,
    pub key: datagram::Key,
    /// This server instance; tokens of another are refused unless `any_instance`.
    pub instance: u64,
    pub any_instance: bool,
    pub registry: Arc<Registry>,
    pub stats: Arc<Stats>,
    /// Most sessions at once (the WebSocket connection cap).
    pub max_sessions: usize,
    /// A session silent this long is dropped.
    pub timeout: Duration,
    /// Per-player message budget (as for a WebSocket client).
    pub limits: Limits,
    /// Input queue length per player.
    pub input_queue: usize,
    /// Rate-limit handshakes from loopback addresses too.
    pub limit_loopback: bool,
}

/// A seated session, as the endpoint keeps it.
#[derive(Debug)]
struct Client {
    opener: Opener,
    peer: Arc<Peer>,
    /// The newest packet's sequence number (its acknowledgement is the one that counts).
    newest: Option<u64>,
    last_input: Option<Seq>,
    /// The highest reliable-channel acknowledgement passed to the match.
    reliable_ack: u64,
    bucket: TokenBucket,
    last_heard: Instant,
}

/// Binds the endpoint's socket (non-blocking, outside the reactor), with buffers sized for a
/// busy server (the kernel caps them at `net.core.rmem_max` / `wmem_max`).
pub fn bind(at: SocketAddr) -> io::Result<UdpSocket> {
    let domain = socket2::Domain::for_address(at);
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if at.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    let _ = socket.set_recv_buffer_size(RECV_BUFFER);
    let _ = socket.set_send_buffer_size(RECV_BUFFER);
    socket.set_nonblocking(true)?;
    socket.bind(&at.into())?;
    Ok(socket.into())
}

impl UdpEndpoint {
    /// Serves until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut handshake: Handshake<SocketAddr> = Handshake::new(self.key);
        let limiter = PerIp::new(HANDSHAKES_PER_S, HANDSHAKE_BURST, self.limit_loopback);
        let mut clients: HashMap<SocketAddr, Client> = HashMap::new();
        let mut batch = RecvBatch::default();
        let mut plain = Vec::with_capacity(batch::MAX_DATAGRAM);
        info!(addr = ?self.socket.local_addr().ok(), "datagram endpoint");
        let mut poll = tokio::time::interval(POLL_EVERY);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut swept = Instant::now();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = poll.tick() => {}
            }
            for _ in 0..MAX_BATCHES_PER_WAKE {
                match batch.recv(&*self.socket) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        debug!("udp recvmmsg: {e}");
                        break;
                    }
                }
                let now = Instant::now();
                for (packet, from) in batch.datagrams() {
                    self.on_datagram(
                        packet,
                        from,
                        now,
                        (&mut handshake, &limiter),
                        &mut clients,
                        &mut plain,
                    );
                }
            }
            let now = Instant::now();
            if now.saturating_duration_since(swept) >= SWEEP_EVERY {
                swept = now;
                self.sweep(&mut clients, now);
            }
        }
        for c in clients.values() {
            c.peer.end(End::Closed);
        }
    }

    fn on_datagram(
        &self,
        packet: &[u8],
        from: SocketAddr,
        now: Instant,
        (handshake, limiter): (&mut Handshake<SocketAddr>, &Option<PerIp>),
        clients: &mut HashMap<SocketAddr, Client>,
        plain: &mut Vec<u8>,
    ) {
        self.stats.udp_packets_in.inc();
        self.stats.udp_bytes_in.add(packet.len() as u64);
        if let Some(c) = clients.get_mut(&from) {
            match c.opener.open_into(packet, plain) {
                Ok((Kind::Payload, seq)) => {
                    c.last_heard = now;
                    if !c
                        .bucket
                        .take(1.0, now, self.limits.rate_per_s, self.limits.burst)
                    {
                        self.stats.udp_dropped_over_budget.inc();
                        return;
                    }
                    self.on_up(c, seq, plain, now);
                }
                Ok((Kind::Disconnect, _)) => {
                    debug!(
                        match_id = c.peer.match_id,
                        seat = c.peer.seat,
                        "udp disconnect"
                    );
                    c.peer.end(End::Closed);
                    clients.remove(&from);
                }
                // The handshake's response, resent before the client heard from us.
                Ok((Kind::Response, _)) => c.last_heard = now,
                Ok(_) => self.drop_packet(&DatagramError::Malformed),
                Err(e) => self.drop_packet(&e),
            }
            return;
        }
        if limiter
            .as_ref()
            .is_some_and(|l| l.check(from.ip()).is_err())
        {
            self.stats.udp_dropped.inc();
            self.stats.udp_handshakes_limited.inc();
            return;
        }
        let cookie = random_cookie();
        match handshake.on_packet(&from, packet, crate::token::unix_now_s(), cookie) {
            Step::Reply(challenge) => {
                let _ = self.socket.send_to(&challenge, from);
            }
            Step::Connected(session) => self.seat(*session, from, now, clients),
            Step::Drop(e) => {
                debug!(%from, "udp packet dropped: {e}");
                self.drop_packet(&e);
            }
        }
    }

    /// A client's packet: its acknowledgement, new inputs and reliable traffic.
    fn on_up(&self, c: &mut Client, seq: u64, body: &[u8], now: Instant) {
        let Ok(up) = Up::decode(body) else {
            self.drop_packet(&DatagramError::Malformed);
            return;
        };
        let is_new = |f: &&skirmish_shared::protocol::InputFrame| {
            c.last_input.is_none_or(|l| f.seq.is_after(l))
        };
        let new = up.inputs.iter().filter(is_new).count();
        // The packet paid one token; each new input beyond the first pays one more.
        if new > 1
            && !c.bucket.take(
                (new - 1) as f64,
                now,
                self.limits.rate_per_s,
                self.limits.burst,
            )
        {
            self.stats.udp_dropped_over_budget.inc();
            return;
        }
        self.stats.inputs_received.add(new as u64);
        let mut last = None;
        for f in up.inputs.iter().filter(is_new) {
            last = Some(f.seq);
            if c.peer.inputs.push(*f) {
                self.stats.inputs_dropped.inc();
            }
        }
        let mut inbox = c.peer.inbox();
        if c.newest.is_none_or(|n| seq > n) {
            c.newest = Some(seq);
            inbox.ack = up.ack;
        }
        // Reliable traffic only when there is news: messages, or a higher acknowledgement.
        let news = !up.reliable.messages.is_empty() || up.reliable.ack > c.reliable_ack;
        if news && inbox.reliable.len() < MAX_RELIABLE_PER_TICK {
            c.reliable_ack = c.reliable_ack.max(up.reliable.ack);
            inbox.reliable.push(up.reliable);
        }
        if let Some(seq) = last {
            c.last_input = Some(seq);
            inbox.last_input = Some(seq);
        }
    }

    /// A completed handshake: claim the token's seat and hand the session to its match.
    fn seat(
        &self,
        session: Session,
        from: SocketAddr,
        now: Instant,
        clients: &mut HashMap<SocketAddr, Client>,
    ) {
        let Session {
            claims,
            from_client,
            to_client,
        } = session;
        let ours = claims.instance == self.instance || self.any_instance;
        let handle = self.registry.get(claims.match_id);
        let Some(handle) = handle.filter(|_| ours && clients.len() < self.max_sessions) else {
            debug!(
                match_id = claims.match_id,
                "udp session refused: unknown match, other instance or full"
            );
            self.stats.udp_dropped.inc();
            return;
        };
        let resume = match handle
            .seats()
            .claim(claims.seat, tokio::time::Instant::now())
        {
            Ok(r) => r,
            Err(e) => {
                debug!(
                    match_id = claims.match_id,
                    seat = claims.seat,
                    "udp seat refused: {e:?}"
                );
                self.stats.udp_dropped.inc();
                return;
            }
        };
        let peer = Arc::new(Peer::new(
            from,
            claims.match_id,
            claims.seat,
            claims.name.as_str().into(),
            self.input_queue,
        ));
        let cmd = MatchCommand::JoinDatagram {
            resume,
            peer: peer.clone(),
            sealer: Box::new(to_client),
            socket: self.socket.clone(),
        };
        if handle.commands.try_send(cmd).is_err() {
            handle.seats().release(claims.seat);
            self.stats.udp_dropped.inc();
            return;
        }
        debug!(match_id = claims.match_id, seat = claims.seat, %from, "udp session");
        self.stats.udp_sessions.inc();
        clients.insert(
            from,
            Client {
                opener: from_client,
                peer,
                newest: None,
                last_input: None,
                reliable_ack: 0,
                bucket: TokenBucket::full(self.limits.burst, now),
                last_heard: now,
            },
        );
    }

    /// Forgets sessions their match let go, and times out silent ones.
    fn sweep(&self, clients: &mut HashMap<SocketAddr, Client>, now: Instant) {
        clients.retain(|_, c| {
            if c.peer.ended().is_some() {
                return false;
            }
            if now.saturating_duration_since(c.last_heard) >= self.timeout {
                debug!(
                    match_id = c.peer.match_id,
                    seat = c.peer.seat,
                    "udp session timed out"
                );
                c.peer.end(End::Abrupt);
                return false;
            }
            true
        });
    }

    fn drop_packet(&self, e: &DatagramError) {
        self.stats.udp_dropped.inc();
        match e {
            DatagramError::Forged => self.stats.udp_dropped_unauthenticated.inc(),
            DatagramError::Replayed => self.stats.udp_dropped_replayed.inc(),
            _ => self.stats.udp_dropped_malformed.inc(),
        }
    }
}

/// Unpredictable bytes for a challenge (an attacker who cannot see the challenge must not
/// be able to guess it); a zero cookie if the system's generator fails (the session keys
/// still protect the handshake).
fn random_cookie() -> [u8; 8] {
    let mut c = [0u8; 8];
    let _ = getrandom::fill(&mut c);
    c
}
