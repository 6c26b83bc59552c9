//! The bots' driver: one thread polls all of its bots once per tick, with no task, timer or
//! wake-up per bot, over either transport (issue 14). The tick is cut into slots and each
//! bot is served in its own slot, so the bots' packets leave spread over the tick as real
//! players' would. Serving a bot: read everything its socket holds (non-blocking), pass it
//! through its session (UDP: [`UdpPlay`]; WebSocket: frames parsed here) and its
//! [`Brain`], then send the tick's input.
//!
//! The kernel stamps what arrives (`SO_TIMESTAMPNS`: per datagram; on TCP, the last segment
//! a read took) and the brain gets that time, not the time the bot's slot came round: latency
//! and jitter mean what they mean for the task-per-bot client, though a bot looks at its
//! socket once a tick.
//!
//! Matchmaking, the WebSocket upgrade and the datagram handshake run on the tokio runtime
//! (`swarm`); the connected socket is then handed to a driver.

use std::collections::VecDeque;
use std::io::{IoSliceMut, Write};
use std::net::{TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg, setsockopt, sockopt};
use nix::sys::time::TimeSpec;

use skirmish_shared::client::{Incoming, parse_close};
use skirmish_shared::client_udp::{SILENCE_TIMEOUT, UdpPlay, UdpSession};
use skirmish_shared::link_sim::{DelayLine, LinkConfig};
use skirmish_shared::protocol::{self, ClientMessage, ServerMessage};
use skirmish_shared::rng::Rng;

use crate::behavior::Behavior;
use crate::brain::Brain;
use crate::stats::SwarmStats;

/// Slots per tick.
const SLOTS: u32 = 8;
/// A joining UDP bot resends its handshake response and acknowledgement this often.
const JOIN_RESEND: Duration = Duration::from_millis(100);
/// Unparsed bytes a WebSocket bot keeps (a few snapshots' worth; more means it is hopelessly
/// behind).
const MAX_INBUF: usize = 1 << 20;

/// A connected session, for a driver to play.
#[derive(Debug)]
pub enum Joined {
    /// A datagram session that completed its handshake, and the simulated link per packet.
    Udp {
        session: Box<UdpSession>,
        link: LinkConfig,
    },
    /// An upgraded WebSocket's TCP socket and the bytes already read past the upgrade.
    Ws {
        stream: TcpStream,
        read_ahead: Vec<u8>,
    },
}

/// A bot for a driver: its connection and how it plays.
#[derive(Debug)]
pub struct NewBot {
    pub joined: Joined,
    pub behavior: Behavior,
    pub seed: u64,
    /// Decode and check its snapshots (see `BotConfig::verify`).
    pub verify: bool,
}

/// A driver thread's handle: send it bots, stop it, join it.
#[derive(Debug)]
pub struct Driver {
    pub bots: mpsc::Sender<NewBot>,
    thread: std::thread::JoinHandle<()>,
}

impl Driver {
    /// Starts a driver thread for a server ticking at `tick_hz`; it stops (telling every
    /// bot's server goodbye) once `stop` is set.
    pub fn start(
        tick_hz: u32,
        stats: Arc<SwarmStats>,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("bot-driver".into())
            .spawn(move || run(tick_hz, &rx, &stats, &stop))?;
        Ok(Self { bots: tx, thread })
    }

    /// Waits for the thread to finish.
    pub fn join(self) {
        drop(self.bots);
        let _ = self.thread.join();
    }
}

/// A UDP bot's session and simulated link.
struct UdpWire {
    socket: UdpSocket,
    play: UdpPlay,
    down: Option<DelayLine<(Vec<u8>, Instant)>>,
    up: Option<DelayLine<Vec<u8>>>,
}

/// A WebSocket bot's socket and buffers.
struct WsWire {
    stream: TcpStream,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    masks: Rng,
}

enum Wire {
    Udp(Box<UdpWire>),
    Ws(WsWire),
}

/// One bot as the driver keeps it.
struct Bot {
    wire: Wire,
    brain: Option<Brain>,
    behavior: Behavior,
    seed: u64,
    verify: bool,
    slot: u32,
    heard: Instant,
    sent: Instant,
    done: bool,
}

/// What `serve` shares between bots: buffers.
struct Scratch {
    buf: Vec<u8>,
    cmsg: Vec<u8>,
    /// What one packet or read gave.
    fresh: VecDeque<Incoming>,
    /// What arrived, with when it arrived, in order.
    timed: VecDeque<(Incoming, Instant)>,
}

impl Scratch {
    fn arrived(&mut self, at: Instant) {
        let fresh = std::mem::take(&mut self.fresh);
        self.timed.extend(fresh.into_iter().map(|m| (m, at)));
    }
}

fn run(tick_hz: u32, rx: &mpsc::Receiver<NewBot>, stats: &SwarmStats, stop: &AtomicBool) {
    let period = Duration::from_nanos(1_000_000_000 / u64::from(tick_hz.max(1)));
    let slot_len = period / SLOTS;
    let mut bots: Vec<Bot> = Vec::new();
    let mut added = 0u32;
    let mut scratch = Scratch {
        buf: vec![0u8; 64 * 1024],
        cmsg: nix::cmsg_space!(TimeSpec),
        fresh: VecDeque::new(),
        timed: VecDeque::new(),
    };
    let mut slot = 0u32;
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        while let Ok(nb) = rx.try_recv() {
            match Bot::new(nb, added % SLOTS) {
                Some(b) => {
                    bots.push(b);
                    added += 1;
                }
                None => {
                    stats.fail("the driver could not take the socket".into());
                    stats.active.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
        let now = Instant::now();
        for b in bots.iter_mut().filter(|b| b.slot == slot) {
            b.serve(now, &mut scratch, stats);
        }
        // A simulated uplink delivers every slot, not only in its bot's (a slot's resolution
        // instead of a tick's).
        for b in &mut bots {
            b.flush(now);
        }
        let before = bots.len();
        bots.retain(|b| !b.done);
        stats
            .active
            .fetch_sub((before - bots.len()) as u64, Ordering::Relaxed);
        slot = (slot + 1) % SLOTS;
        next += slot_len;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else if now - next > period {
            next = now; // fell a tick behind: do not try to catch up in a burst
        }
    }
    for b in &mut bots {
        b.leave(stats);
    }
    stats.active.fetch_sub(bots.len() as u64, Ordering::Relaxed);
}

impl Bot {
    fn new(nb: NewBot, slot: u32) -> Option<Self> {
        let seed = nb.seed;
        let wire = match nb.joined {
            Joined::Udp { session, link } => {
                let session = *session;
                let socket = session.socket.into_std().ok()?;
                socket.set_nonblocking(true).ok()?;
                let _ = setsockopt(&socket, sockopt::ReceiveTimestampns, &true);
                Wire::Udp(Box::new(UdpWire {
                    socket,
                    play: UdpPlay::new(session.to_server, session.from_server, session.response),
                    down: link.is_active().then(|| DelayLine::new(link, seed ^ 0xD0)),
                    up: link.is_active().then(|| DelayLine::new(link, seed ^ 0x0F)),
                }))
            }
            Joined::Ws { stream, read_ahead } => {
                stream.set_nonblocking(true).ok()?;
                let _ = setsockopt(&stream, sockopt::ReceiveTimestampns, &true);
                Wire::Ws(WsWire {
                    stream,
                    inbuf: read_ahead,
                    outbuf: Vec::new(),
                    masks: Rng::new(seed),
                })
            }
        };
        let now = Instant::now();
        Some(Self {
            wire,
            brain: None,
            behavior: nb.behavior,
            seed,
            verify: nb.verify,
            slot,
            heard: now,
            sent: now.checked_sub(JOIN_RESEND).unwrap_or(now),
            done: false,
        })
    }

    /// Reads what arrived, then sends this tick's input (or, while a UDP bot joins, the
    /// handshake's response and an acknowledgement now and then).
    fn serve(&mut self, now: Instant, s: &mut Scratch, stats: &SwarmStats) {
        self.receive(now, s);
        while let Some((m, at)) = s.timed.pop_front() {
            self.handle(m, at, stats);
        }
        if self.done {
            return;
        }
        if now.saturating_duration_since(self.heard) >= SILENCE_TIMEOUT {
            stats.fail(format!("connection lost: nothing for {SILENCE_TIMEOUT:?}"));
            self.done = true;
            return;
        }
        match &mut self.brain {
            Some(brain) => {
                for msg in brain.tick(now, stats) {
                    let bytes = self.send(&msg, now);
                    if matches!(msg, ClientMessage::Input { .. }) {
                        stats.inputs_sent.fetch_add(1, Ordering::Relaxed);
                        stats
                            .upload_bytes
                            .fetch_add(bytes as u64, Ordering::Relaxed);
                    }
                }
            }
            None => {
                if let Wire::Udp(u) = &mut self.wire
                    && now.saturating_duration_since(self.sent) >= JOIN_RESEND
                {
                    let packets = u.play.packets();
                    self.sent = now;
                    u.push(packets, now);
                }
            }
        }
        self.flush(now);
    }

    /// Everything waiting on the socket, as messages with their arrival in `s.timed`.
    fn receive(&mut self, now: Instant, s: &mut Scratch) {
        match &mut self.wire {
            Wire::Udp(u) => {
                while let Some((n, at)) =
                    recv_stamped(u.socket.as_fd(), &mut s.buf, &mut s.cmsg, now)
                {
                    let packet = s.buf[..n].to_vec();
                    match &mut u.down {
                        Some(line) => line.push((packet, at), at),
                        None => u.open(&packet, at, s),
                    }
                }
                // Through the simulated link, a packet arrives when it is due.
                while let Some((due, (packet, _))) = u.down.as_mut().and_then(|l| l.pop_due_at(now))
                {
                    u.open(&packet, due, s);
                }
            }
            Wire::Ws(w) => {
                let mut at = None;
                while w.inbuf.len() < MAX_INBUF
                    && let Some((n, stamp)) =
                        recv_stamped(w.stream.as_fd(), &mut s.buf, &mut s.cmsg, now)
                {
                    if n == 0 {
                        s.fresh.push_back(Incoming::Close {
                            code: 1006,
                            reason: "the server closed the TCP connection".into(),
                        });
                        break;
                    }
                    w.inbuf.extend_from_slice(&s.buf[..n]);
                    at = Some(stamp);
                }
                let used = parse_frames(&w.inbuf, &mut s.fresh);
                w.inbuf.drain(..used);
                // A read's stamp is its last segment's: the frames it completed arrived then.
                s.arrived(at.unwrap_or(now));
            }
        }
    }

    fn handle(&mut self, m: Incoming, at: Instant, stats: &SwarmStats) {
        self.heard = at.max(self.heard);
        let udp = matches!(self.wire, Wire::Udp(_));
        match m {
            Incoming::Message(
                ServerMessage::Welcome {
                    player_id: Some(me),
                    tick_hz,
                    snapshot,
                    ..
                },
                n,
            ) => {
                stats.count_received(n, udp);
                stats.connected.fetch_add(1, Ordering::Relaxed);
                if udp {
                    stats.on_udp.fetch_add(1, Ordering::Relaxed);
                }
                self.brain = Some(Brain::new(
                    me,
                    tick_hz,
                    &snapshot,
                    self.behavior,
                    self.seed,
                    self.verify,
                ));
            }
            Incoming::Message(ServerMessage::Snapshot(snap), n) => {
                stats.count_received(n, udp);
                if let Some(brain) = &mut self.brain {
                    brain.on_snapshot(&snap, at, stats);
                }
            }
            Incoming::Message(_, n) => stats.count_received(n, udp),
            Incoming::Close { code, reason } => {
                if code != 1000 || !reason.is_empty() {
                    stats.fail(format!("closed {code}: {reason}"));
                }
                self.finish(stats);
            }
        }
    }

    /// Sends `msg`; the bytes it took on the wire.
    fn send(&mut self, msg: &ClientMessage, now: Instant) -> usize {
        self.sent = now;
        match &mut self.wire {
            Wire::Udp(u) => {
                let packets = u.play.on_send(msg);
                let bytes = packets.iter().map(Vec::len).sum();
                u.push(packets, now);
                bytes
            }
            Wire::Ws(w) => {
                let mask = (w.masks.next_u64() as u32).to_le_bytes();
                let frame = protocol::masked_frame(0x82, &protocol::encode(msg), mask);
                w.outbuf.extend_from_slice(&frame);
                frame.len()
            }
        }
    }

    /// Writes what waits: the simulated uplink's due packets, or a WebSocket's unsent bytes.
    fn flush(&mut self, now: Instant) {
        match &mut self.wire {
            Wire::Udp(u) => {
                if let Some(line) = &mut u.up {
                    while let Some(p) = line.pop_due(now) {
                        let _ = u.socket.send(&p);
                    }
                }
            }
            Wire::Ws(w) if !w.outbuf.is_empty() => match w.stream.write(&w.outbuf) {
                Ok(n) => {
                    w.outbuf.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => self.done = true,
            },
            Wire::Ws(_) => {}
        }
    }

    fn finish(&mut self, stats: &SwarmStats) {
        if let Some(brain) = &mut self.brain {
            brain.flush(stats);
        }
        self.done = true;
    }

    /// The swarm is stopping: say goodbye (UDP: three disconnects, since nothing answers one;
    /// WebSocket: a close frame).
    fn leave(&mut self, stats: &SwarmStats) {
        match &mut self.wire {
            Wire::Udp(u) => {
                for _ in 0..3 {
                    let p = u.play.disconnect();
                    let _ = u.socket.send(&p);
                }
            }
            Wire::Ws(w) => {
                let mut payload = 1000u16.to_be_bytes().to_vec();
                payload.extend_from_slice(b"bot done");
                let mask = (w.masks.next_u64() as u32).to_le_bytes();
                w.outbuf
                    .extend_from_slice(&protocol::masked_frame(0x88, &payload, mask));
                let _ = w.stream.write(&w.outbuf);
            }
        }
        self.finish(stats);
    }
}

impl UdpWire {
    /// Opens a packet that arrived at `at` (anything that does not open is ignored).
    fn open(&mut self, packet: &[u8], at: Instant, s: &mut Scratch) {
        let _ = self.play.on_packet(packet, &mut s.fresh);
        s.arrived(at);
    }

    fn push(&mut self, packets: Vec<Vec<u8>>, now: Instant) {
        for p in packets {
            match &mut self.up {
                Some(line) => line.push(p, now),
                None => {
                    let _ = self.socket.send(&p);
                }
            }
        }
    }
}

/// Complete server frames at the start of `buf` as messages; returns the bytes they took.
fn parse_frames(buf: &[u8], out: &mut VecDeque<Incoming>) -> usize {
    let mut at = 0;
    while buf.len() - at >= 2 {
        let (b0, b1) = (buf[at], buf[at + 1]);
        let (len, head) = match b1 & 0x7F {
            126 if buf.len() - at >= 4 => (
                usize::from(u16::from_be_bytes([buf[at + 2], buf[at + 3]])),
                4,
            ),
            127 if buf.len() - at >= 10 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&buf[at + 2..at + 10]);
                (
                    usize::try_from(u64::from_be_bytes(b)).unwrap_or(usize::MAX),
                    10,
                )
            }
            126 | 127 => break,
            n => (usize::from(n), 2),
        };
        if buf.len() - at - head < len {
            break;
        }
        let payload = &buf[at + head..at + head + len];
        match b0 & 0x0F {
            0x2 => match protocol::decode_server(payload) {
                Ok(m) => out.push_back(Incoming::Message(m, len)),
                Err(e) => out.push_back(Incoming::Close {
                    code: 1002,
                    reason: format!("undecodable server message: {e}"),
                }),
            },
            0x8 => {
                let (code, reason) = parse_close(payload);
                out.push_back(Incoming::Close { code, reason });
            }
            _ => {} // the server sends no pings; anything else is ignored
        }
        at += head + len;
    }
    at
}

/// One read from a socket, non-blocking, with the kernel's arrival stamp: the bytes read
/// (0: the peer closed) and when they arrived. `None` when nothing waits.
fn recv_stamped(
    fd: std::os::fd::BorrowedFd<'_>,
    buf: &mut [u8],
    cmsg: &mut [u8],
    now: Instant,
) -> Option<(usize, Instant)> {
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(fd.as_raw_fd(), &mut iov, Some(cmsg), MsgFlags::MSG_DONTWAIT).ok()?;
    let stamp = msg.cmsgs().ok().and_then(|mut c| {
        c.find_map(|m| match m {
            ControlMessageOwned::ScmTimestampns(ts) => Some(ts),
            _ => None,
        })
    });
    Some((msg.bytes, stamp.map_or(now, |ts| arrival(ts, now))))
}

/// The monotonic time of a kernel receive stamp (wall clock), given `now`.
fn arrival(ts: TimeSpec, now: Instant) -> Instant {
    let stamp = Duration::new(ts.tv_sec() as u64, ts.tv_nsec() as u32);
    let wall = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    now.checked_sub(wall.saturating_sub(stamp)).unwrap_or(now)
}
