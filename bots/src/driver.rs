//! The datagram bots' driver: one thread polls all of its bots once per tick, with no task,
//! timer or wake-up per bot (issue 14). The tick is cut into slots and each bot is served in
//! its own slot, so the bots' packets leave spread over the tick as real players' would.
//! Serving a bot: read everything its socket holds (non-blocking), pass it through the
//! bot's session ([`UdpPlay`]) and brain ([`Brain`]), then send the tick's input.
//!
//! The kernel stamps each datagram on arrival (`SO_TIMESTAMPNS`), and the brain gets that
//! time, not the time its slot came round: latency and jitter mean what they mean for the
//! task-per-bot client, though the bot looks at its socket once a tick.
//!
//! The matchmaking and the handshake run on the tokio runtime (`swarm`); a seated session
//! is then handed to a driver.

use std::collections::VecDeque;
use std::io::IoSliceMut;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg, setsockopt, sockopt};
use nix::sys::time::TimeSpec;

use skirmish_shared::client::Incoming;
use skirmish_shared::client_udp::{SILENCE_TIMEOUT, UdpPlay, UdpSession};
use skirmish_shared::link_sim::{DelayLine, LinkConfig};
use skirmish_shared::protocol::{ClientMessage, ServerMessage};

use crate::behavior::Behavior;
use crate::brain::Brain;
use crate::stats::SwarmStats;

/// Slots per tick.
const SLOTS: u32 = 8;
/// A joining bot resends its handshake response and acknowledgement this often.
const JOIN_RESEND: Duration = Duration::from_millis(100);

/// A seated datagram session, for a driver to play.
#[derive(Debug)]
pub struct NewBot {
    pub session: UdpSession,
    pub behavior: Behavior,
    pub seed: u64,
    pub link: LinkConfig,
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

/// One bot as the driver keeps it.
struct Bot {
    socket: UdpSocket,
    play: UdpPlay,
    brain: Option<Brain>,
    behavior: Behavior,
    seed: u64,
    slot: u32,
    down: Option<DelayLine<(Vec<u8>, Instant)>>,
    up: Option<DelayLine<Vec<u8>>>,
    heard: Instant,
    sent: Instant,
    done: bool,
}

fn run(tick_hz: u32, rx: &mpsc::Receiver<NewBot>, stats: &SwarmStats, stop: &AtomicBool) {
    let period = Duration::from_nanos(1_000_000_000 / u64::from(tick_hz.max(1)));
    let slot_len = period / SLOTS;
    let mut bots: Vec<Bot> = Vec::new();
    let mut added = 0u32;
    let mut buf = vec![0u8; 1500];
    let mut cmsg = nix::cmsg_space!(TimeSpec);
    let mut incoming = VecDeque::new();
    let mut slot = 0u32;
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        while let Ok(nb) = rx.try_recv() {
            if let Some(b) = Bot::new(nb, added % SLOTS) {
                bots.push(b);
                added += 1;
            }
        }
        let now = Instant::now();
        for b in bots.iter_mut().filter(|b| b.slot == slot) {
            b.serve(now, &mut buf, &mut cmsg, &mut incoming, stats);
        }
        // A simulated uplink delivers every slot, not only in its bot's (a slot's resolution
        // instead of a tick's).
        for b in bots.iter_mut().filter(|b| b.up.is_some()) {
            b.flush_uplink(now);
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
        let socket = nb.session.socket.into_std().ok()?;
        socket.set_nonblocking(true).ok()?;
        let _ = setsockopt(&socket, sockopt::ReceiveTimestampns, &true);
        let seed = nb.seed;
        let now = Instant::now();
        Some(Self {
            socket,
            play: UdpPlay::new(
                nb.session.to_server,
                nb.session.from_server,
                nb.session.response,
            ),
            brain: None,
            behavior: nb.behavior,
            seed,
            slot,
            down: nb
                .link
                .is_active()
                .then(|| DelayLine::new(nb.link, seed ^ 0xD0)),
            up: nb
                .link
                .is_active()
                .then(|| DelayLine::new(nb.link, seed ^ 0x0F)),
            heard: now,
            sent: now - JOIN_RESEND,
            done: false,
        })
    }

    /// Reads what arrived, then sends this tick's input (or, while joining, the handshake's
    /// response and an acknowledgement now and then).
    fn serve(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        cmsg: &mut Vec<u8>,
        incoming: &mut VecDeque<Incoming>,
        stats: &SwarmStats,
    ) {
        while let Some((packet, at)) = self.recv(buf, cmsg, now) {
            match &mut self.down {
                Some(line) => line.push((packet, at), at),
                None => self.take(&packet, at, incoming, stats),
            }
        }
        // Through the simulated link, a packet arrives when it is due.
        while let Some((due, (packet, _))) = self.down.as_mut().and_then(|l| l.pop_due_at(now)) {
            self.take(&packet, due, incoming, stats);
        }
        if self.done {
            return;
        }
        if now.saturating_duration_since(self.heard) >= SILENCE_TIMEOUT {
            stats.fail(format!(
                "connection lost: nothing over UDP for {SILENCE_TIMEOUT:?}"
            ));
            self.done = true;
            return;
        }
        match &mut self.brain {
            Some(brain) => {
                for msg in brain.tick(now, stats) {
                    let packets = self.play.on_send(&msg);
                    let bytes: usize = packets.iter().map(Vec::len).sum();
                    self.send(packets, now);
                    if matches!(msg, ClientMessage::Input { .. }) {
                        stats.inputs_sent.fetch_add(1, Ordering::Relaxed);
                        stats
                            .upload_bytes
                            .fetch_add(bytes as u64, Ordering::Relaxed);
                    }
                }
            }
            None if now.saturating_duration_since(self.sent) >= JOIN_RESEND => {
                let packets = self.play.packets();
                self.send(packets, now);
            }
            None => {}
        }
        self.flush_uplink(now);
    }

    /// Sends what the simulated uplink has due.
    fn flush_uplink(&mut self, now: Instant) {
        if let Some(line) = &mut self.up {
            while let Some(p) = line.pop_due(now) {
                let _ = self.socket.send(&p);
            }
        }
    }

    /// One waiting datagram and when the kernel received it.
    fn recv(
        &mut self,
        buf: &mut [u8],
        cmsg: &mut Vec<u8>,
        now: Instant,
    ) -> Option<(Vec<u8>, Instant)> {
        let fd = self.socket.as_raw_fd();
        let mut iov = [IoSliceMut::new(buf)];
        let (n, stamp) = {
            let msg = recvmsg::<()>(
                fd,
                &mut iov,
                Some(cmsg.as_mut_slice()),
                MsgFlags::MSG_DONTWAIT,
            )
            .ok()?;
            let stamp = msg.cmsgs().ok().and_then(|mut c| {
                c.find_map(|m| match m {
                    ControlMessageOwned::ScmTimestampns(ts) => Some(ts),
                    _ => None,
                })
            });
            (msg.bytes, stamp)
        };
        let at = stamp.map_or(now, |ts| arrival(ts, now));
        Some((buf[..n].to_vec(), at))
    }

    fn take(
        &mut self,
        packet: &[u8],
        at: Instant,
        incoming: &mut VecDeque<Incoming>,
        stats: &SwarmStats,
    ) {
        if self.play.on_packet(packet, incoming).is_err() {
            return;
        }
        self.heard = at.max(self.heard);
        while let Some(m) = incoming.pop_front() {
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
                    count_bytes(stats, n);
                    stats.connected.fetch_add(1, Ordering::Relaxed);
                    stats.on_udp.fetch_add(1, Ordering::Relaxed);
                    self.brain = Some(Brain::new(me, tick_hz, &snapshot, self.behavior, self.seed));
                }
                Incoming::Message(ServerMessage::Snapshot(s), n) => {
                    count_bytes(stats, n);
                    if let Some(brain) = &mut self.brain {
                        brain.on_snapshot(&s, at, stats);
                    }
                }
                Incoming::Message(_, _) => {}
                Incoming::Close { code, reason } => {
                    if code != 1000 || !reason.is_empty() {
                        stats.fail(format!("closed {code}: {reason}"));
                    }
                    self.finish(stats);
                }
            }
        }
    }

    fn send(&mut self, packets: Vec<Vec<u8>>, now: Instant) {
        self.sent = now;
        for p in packets {
            match &mut self.up {
                Some(line) => line.push(p, now),
                None => {
                    let _ = self.socket.send(&p);
                }
            }
        }
    }

    fn finish(&mut self, stats: &SwarmStats) {
        if let Some(brain) = &mut self.brain {
            brain.flush(stats);
        }
        self.done = true;
    }

    /// The swarm is stopping: say goodbye (three times: nothing answers a disconnect).
    fn leave(&mut self, stats: &SwarmStats) {
        for _ in 0..3 {
            let p = self.play.disconnect();
            let _ = self.socket.send(&p);
        }
        self.finish(stats);
    }
}

fn count_bytes(stats: &SwarmStats, datagram: usize) {
    stats
        .payload_bytes
        .fetch_add(datagram as u64, Ordering::Relaxed);
    stats
        .wire_bytes
        .fetch_add(datagram as u64, Ordering::Relaxed);
}

/// The monotonic time of a kernel receive stamp (wall clock), given `now`.
fn arrival(ts: TimeSpec, now: Instant) -> Instant {
    let stamp = Duration::new(ts.tv_sec() as u64, ts.tv_nsec() as u32);
    let wall = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    now.checked_sub(wall.saturating_sub(stamp)).unwrap_or(now)
}
