//! The client side of the datagram transport (feature `client`): the handshake over a real
//! UDP socket with the ticket from matchmaking, then play. [`UdpPlay`] is the sans-IO
//! session (what each packet means, what to send); [`UdpReceiver`] and [`UdpSender`] drive
//! it over a socket, optionally through a simulated link per packet (`link_sim`), and speak
//! the same [`ServerMessage`]/[`ClientMessage`] as the WebSocket client, so the game and the
//! bots do not care which transport carries them (`client::connect_transport`).
//!
//! What the client sends each time it has something (an input, a chat line, a resync
//! request, or a keepalive when quiet): its acknowledgement of the newest snapshot it
//! passed on, its unacknowledged inputs (redundancy: a lost packet costs no input) and its
//! reliable channel. What it gets: snapshots coded against its acknowledgement, and the
//! reliable channel's welcome, events, chat refusals and final ranking.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::api::UdpTicket;
use crate::client::{ClientError, Incoming};
use crate::datagram::play::{
    ClientNotice, Down, InputRedundancy, MAX_UP_BYTES, Notice, Reassembly, Up,
};
use crate::datagram::reliable::Reliable;
use crate::datagram::{ClientHandshake, ConnectToken, DatagramError, Kind, Opener, Sealer};
use crate::link_sim::{DelayLine, LinkConfig};
use crate::protocol::{ClientMessage, GameEvent, ServerMessage, SnapshotMsg, encode};
use crate::tick::Tick;
use crate::world::PlayerId;

/// How often the request (and the response) is resent while no answer comes.
const RESEND_EVERY: Duration = Duration::from_millis(250);
/// A quiet client sends a keepalive this often (acks flow, the session stays up).
const KEEPALIVE: Duration = Duration::from_millis(100);
/// With nothing from the server for this long, the session is considered lost.
pub const SILENCE_TIMEOUT: Duration = Duration::from_secs(5);
/// Reliable messages the client may have unacknowledged.
const MAX_RELIABLE_BACKLOG: usize = 64;
/// Packets waiting in the simulated uplink.
const UPLINK_QUEUE: usize = 256;

/// Why the datagram path could not be used.
#[derive(Debug, thiserror::Error)]
pub enum UdpError {
    #[error("udp socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("bad connect token: {0}")]
    Token(DatagramError),
    #[error("no answer from {0} within {1:?} (UDP blocked?)")]
    NoAnswer(String, Duration),
}

/// A socket that completed the handshake, and the session's two directions.
#[derive(Debug)]
pub struct UdpSession {
    pub socket: UdpSocket,
    pub to_server: Sealer,
    pub from_server: Opener,
    /// The handshake's last packet, resent until the server answers (it may be lost).
    pub response: Vec<u8>,
}

/// Runs the handshake with `ticket`, resending while nothing comes back, for at most `wait`.
pub async fn connect(ticket: &UdpTicket, wait: Duration) -> Result<UdpSession, UdpError> {
    let token = ConnectToken::from_text(&ticket.connect_token).map_err(UdpError::Token)?;
    let socket = UdpSocket::bind(if ticket.addr.starts_with('[') {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    })
    .await?;
    socket.connect(&ticket.addr).await?;
    let mut hs = ClientHandshake::new(token);
    let request = hs.request();
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 1500];
    // Request until a challenge we can open comes back.
    let response = loop {
        socket.send(&request).await?;
        let until = (Instant::now() + RESEND_EVERY).min(deadline);
        if let Ok(Ok(n)) = tokio::time::timeout_at(until, socket.recv(&mut buf)).await
            && let Ok(r) = hs.on_challenge(&buf[..n])
        {
            break r;
        }
        if Instant::now() >= deadline {
            return Err(UdpError::NoAnswer(ticket.addr.clone(), wait));
        }
    };
    socket.send(&response).await?;
    let (to_server, from_server) = hs.into_session();
    Ok(UdpSession {
        socket,
        to_server,
        from_server,
        response,
    })
}

/// Connects and waits for the server's first packet (the welcome and a full snapshot),
/// resending the handshake's response meanwhile; `NoAnswer` after `wait`.
pub async fn join(
    ticket: &UdpTicket,
    wait: Duration,
    link: LinkConfig,
) -> Result<(UdpReceiver, UdpSender), UdpError> {
    let deadline = Instant::now() + wait;
    let session = connect(ticket, wait).await?;
    let (mut rx, mut tx) = split(session, link);
    loop {
        let until = (Instant::now() + RESEND_EVERY).min(deadline);
        match tokio::time::timeout_at(until, rx.next_packet()).await {
            Ok(Ok(())) if !rx.ready.is_empty() => return Ok((rx, tx)),
            Ok(Ok(())) => continue,
            Ok(Err(_)) | Err(_) => {}
        }
        if Instant::now() >= deadline {
            return Err(UdpError::NoAnswer(ticket.addr.clone(), wait));
        }
        tx.keepalive();
    }
}

/// The session's state, without I/O (see the module docs).
#[derive(Debug)]
pub struct UdpPlay {
    to_server: Sealer,
    from_server: Opener,
    reliable: Reliable,
    redundancy: InputRedundancy,
    /// The newest snapshot passed on (the next baseline), `None` while a full one is wanted.
    ack: Option<Tick>,
    newest: Option<Tick>,
    welcome: Option<(PlayerId, u32, u32)>,
    welcomed: bool,
    /// Events waiting for the next snapshot passed on.
    events: Vec<GameEvent>,
    /// The handshake's response, sent with every packet until the server is heard.
    response: Option<Vec<u8>>,
    /// Bytes of the last packet opened (for the caller's accounting).
    pub last_packet_bytes: usize,
    /// This side ended the session: the receiver reports a close.
    closed: bool,
    /// Server packets too big for one datagram, coming in as fragments.
    reassembly: Reassembly,
    /// Datagram bytes of the fragments since the last whole packet.
    fragment_bytes: usize,
}

impl UdpPlay {
    #[must_use]
    pub fn new(to_server: Sealer, from_server: Opener, response: Vec<u8>) -> Self {
        Self {
            to_server,
            from_server,
            reliable: Reliable::new(MAX_RELIABLE_BACKLOG),
            redundancy: InputRedundancy::default(),
            ack: None,
            newest: None,
            welcome: None,
            welcomed: false,
            events: Vec::new(),
            response: Some(response),
            last_packet_bytes: 0,
            closed: false,
            reassembly: Reassembly::default(),
            fragment_bytes: 0,
        }
    }

    /// A packet from the server: what it means for the game, in order.
    pub fn on_packet(
        &mut self,
        packet: &[u8],
        out: &mut VecDeque<Incoming>,
    ) -> Result<(), DatagramError> {
        let (kind, _, body) = self.from_server.open(packet)?;
        self.response = None;
        match kind {
            Kind::Payload => {
                self.last_packet_bytes = packet.len();
                self.on_down(&body, out)
            }
            Kind::Fragment => {
                self.fragment_bytes += packet.len();
                match self.reassembly.add(&body) {
                    Ok(Some(whole)) => {
                        self.last_packet_bytes = std::mem::take(&mut self.fragment_bytes);
                        self.on_down(&whole, out)
                    }
                    Ok(None) => Ok(()),
                    Err(_) => Err(DatagramError::Malformed),
                }
            }
            Kind::Disconnect => {
                out.push_back(Incoming::Close {
                    code: 1000,
                    reason: String::from_utf8_lossy(&body).into_owned(),
                });
                Ok(())
            }
            _ => Err(DatagramError::Malformed),
        }
    }

    /// A whole server packet (from one datagram, or reassembled from fragments).
    fn on_down(&mut self, body: &[u8], out: &mut VecDeque<Incoming>) -> Result<(), DatagramError> {
        let down = Down::decode(body).map_err(|_| DatagramError::Malformed)?;
        self.redundancy.acknowledged(down.inputs_acked);
        let mut ended = Vec::new();
        for bytes in self.reliable.receive(down.reliable) {
            match Notice::decode(&bytes) {
                Ok(Notice::Welcome {
                    player_id,
                    match_id,
                    tick_hz,
                }) => {
                    self.welcome = Some((player_id, match_id, tick_hz));
                }
                Ok(Notice::Events(mut e)) => self.events.append(&mut e),
                Ok(Notice::MatchEnded { ranking }) => {
                    ended.push(ServerMessage::MatchEnded { ranking })
                }
                Ok(Notice::ChatRejected { reason }) => {
                    out.push_back(Incoming::Message(ServerMessage::ChatRejected { reason }, 0));
                }
                Err(_) => {}
            }
        }
        let fresh = self.newest.is_none_or(|n| down.tick.is_after(n));
        let full = down.baseline_age == 0;
        if fresh && (self.welcomed || full) {
            self.newest = Some(down.tick);
            self.ack = Some(down.tick);
            let snapshot = SnapshotMsg {
                tick: down.tick,
                baseline_age: u32::from(down.baseline_age),
                data: down.snapshot,
                events: std::mem::take(&mut self.events),
            };
            let n = self.last_packet_bytes;
            match (self.welcomed, self.welcome) {
                (false, Some((player_id, match_id, tick_hz))) => {
                    self.welcomed = true;
                    out.push_back(Incoming::Message(
                        ServerMessage::Welcome {
                            player_id: Some(player_id),
                            match_id,
                            tick_hz,
                            snapshot,
                        },
                        n,
                    ));
                }
                (true, _) => out.push_back(Incoming::Message(ServerMessage::Snapshot(snapshot), n)),
                (false, None) => {}
            }
        }
        out.extend(ended.into_iter().map(|m| Incoming::Message(m, 0)));
        Ok(())
    }

    /// The packets to send for `msg`.
    pub fn on_send(&mut self, msg: &ClientMessage) -> Vec<Vec<u8>> {
        match msg {
            ClientMessage::Input { frames } => {
                for f in frames {
                    self.redundancy.push(*f);
                }
            }
            ClientMessage::RequestFull => self.ack = None,
            ClientMessage::Chat { text } => {
                let _ = self
                    .reliable
                    .send(encode(&ClientNotice::Chat { text: text.clone() }));
            }
            // Round trips are measured on inputs over UDP; a ping just keeps the session up.
            ClientMessage::Ping { .. } => {}
        }
        self.packets()
    }

    /// The packets to send when there is nothing new (acks, resends).
    pub fn packets(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::with_capacity(2);
        if let Some(r) = &self.response {
            out.push(r.clone());
        }
        let inputs = self.redundancy.to_send();
        let room = MAX_UP_BYTES.saturating_sub(16 + inputs.len() * 16);
        let up = Up {
            ack: self.ack,
            inputs,
            reliable: self.reliable.outgoing(room),
        };
        out.push(self.to_server.seal(Kind::Payload, &encode(&up)));
        out
    }

    /// The packet that ends the session.
    pub fn disconnect(&mut self) -> Vec<u8> {
        self.closed = true;
        self.to_server.seal(Kind::Disconnect, b"bye")
    }
}

fn lock(p: &Mutex<UdpPlay>) -> MutexGuard<'_, UdpPlay> {
    p.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Where packets go out: straight to the socket, or into the simulated uplink's task.
#[derive(Debug, Clone)]
struct Outbound {
    socket: Arc<UdpSocket>,
    link: Option<mpsc::Sender<Vec<u8>>>,
    sent_at: Arc<Mutex<Instant>>,
    /// Bytes of every datagram handed to the network (or to the simulated link).
    bytes: Arc<std::sync::atomic::AtomicU64>,
}

impl Outbound {
    fn send(&self, packets: Vec<Vec<u8>>) {
        *self.sent_at.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
        let n: usize = packets.iter().map(Vec::len).sum();
        self.bytes
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        for p in packets {
            match &self.link {
                // A full simulated uplink drops, like a full queue on a real one.
                Some(tx) => {
                    let _ = tx.try_send(p);
                }
                None => {
                    let _ = self.socket.try_send(&p);
                }
            }
        }
    }

    fn quiet_for(&self) -> Duration {
        self.sent_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .elapsed()
    }
}

/// Splits a session into halves; with an active `link`, both directions go through it.
#[must_use]
pub fn split(session: UdpSession, link: LinkConfig) -> (UdpReceiver, UdpSender) {
    let socket = Arc::new(session.socket);
    let play = Arc::new(Mutex::new(UdpPlay::new(
        session.to_server,
        session.from_server,
        session.response,
    )));
    let seed = u64::from(std::process::id()) ^ (Arc::as_ptr(&socket) as u64);
    let uplink = link.is_active().then(|| {
        let (tx, rx) = mpsc::channel(UPLINK_QUEUE);
        tokio::spawn(run_uplink(
            socket.clone(),
            rx,
            DelayLine::new(link, seed ^ 0x5EED),
        ));
        tx
    });
    let out = Outbound {
        socket: socket.clone(),
        link: uplink,
        sent_at: Arc::new(Mutex::new(Instant::now())),
        bytes: Arc::default(),
    };
    (
        UdpReceiver {
            socket,
            play: play.clone(),
            out: out.clone(),
            downlink: link.is_active().then(|| DelayLine::new(link, seed)),
            ready: VecDeque::new(),
            heard_at: Instant::now(),
        },
        UdpSender { play, out },
    )
}

/// The simulated uplink: sends each packet when the link says it arrives.
async fn run_uplink(
    socket: Arc<UdpSocket>,
    mut rx: mpsc::Receiver<Vec<u8>>,
    mut line: DelayLine<Vec<u8>>,
) {
    loop {
        let due = line.next_due().map(Instant::from_std);
        tokio::select! {
            p = rx.recv() => match p {
                Some(p) => line.push(p, std::time::Instant::now()),
                None if line.next_due().is_none() => return,
                None => {
                    if let Some(d) = due { tokio::time::sleep_until(d).await; }
                }
            },
            () = async { match due { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => {}
        }
        while let Some(p) = line.pop_due(std::time::Instant::now()) {
            let _ = socket.try_send(&p);
        }
    }
}

/// The reading half of a datagram session.
#[derive(Debug)]
pub struct UdpReceiver {
    socket: Arc<UdpSocket>,
    play: Arc<Mutex<UdpPlay>>,
    out: Outbound,
    downlink: Option<DelayLine<Vec<u8>>>,
    ready: VecDeque<Incoming>,
    heard_at: Instant,
}

impl UdpReceiver {
    /// The next message or close (as over WebSocket).
    pub async fn recv(&mut self) -> Result<Incoming, ClientError> {
        loop {
            if let Some(m) = self.ready.pop_front() {
                return Ok(m);
            }
            if lock(&self.play).closed {
                // Our own disconnect, as a WebSocket reports the answer to our close frame.
                return Ok(Incoming::Close {
                    code: 1000,
                    reason: String::new(),
                });
            }
            if let Ok(r) = tokio::time::timeout(KEEPALIVE, self.next_packet()).await {
                r?;
            }
            if self.out.quiet_for() >= KEEPALIVE {
                self.out.send(lock(&self.play).packets());
            }
            if self.heard_at.elapsed() >= SILENCE_TIMEOUT {
                return Err(ClientError::Closed {
                    code: 1006,
                    reason: format!("nothing from the server over UDP for {SILENCE_TIMEOUT:?}"),
                });
            }
        }
    }

    /// Waits for one packet (through the simulated downlink, if any) and takes it.
    async fn next_packet(&mut self) -> Result<(), ClientError> {
        let mut buf = [0u8; 1500];
        let packet = loop {
            if let Some(line) = &mut self.downlink
                && let Some(p) = line.pop_due(std::time::Instant::now())
            {
                break p;
            }
            let due = self
                .downlink
                .as_ref()
                .and_then(DelayLine::next_due)
                .map(Instant::from_std);
            tokio::select! {
                r = self.socket.recv(&mut buf) => {
                    let n = r.map_err(ClientError::Connect)?;
                    match &mut self.downlink {
                        Some(line) => line.push(buf[..n].to_vec(), std::time::Instant::now()),
                        None => break buf[..n].to_vec(),
                    }
                }
                () = async { match due { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => {}
            }
        };
        // Anything that does not open (stray, forged, replayed) is ignored.
        if lock(&self.play).on_packet(&packet, &mut self.ready).is_ok() {
            self.heard_at = Instant::now();
        }
        Ok(())
    }
}

/// The writing half of a datagram session.
#[derive(Debug)]
pub struct UdpSender {
    play: Arc<Mutex<UdpPlay>>,
    out: Outbound,
}

impl UdpSender {
    /// Sends `msg` (with the acknowledgement, unacknowledged inputs and reliable messages).
    pub fn send(&mut self, msg: &ClientMessage) {
        let packets = lock(&self.play).on_send(msg);
        self.out.send(packets);
    }

    /// Sends the acknowledgement and anything unacknowledged, with nothing new.
    pub fn keepalive(&mut self) {
        let packets = lock(&self.play).packets();
        self.out.send(packets);
    }

    /// Bytes of every datagram sent so far, keepalives and handshake resends included.
    #[must_use]
    pub fn bytes_sent(&self) -> u64 {
        self.out.bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Ends the session (the packet goes three times: it may be lost, and nothing answers).
    pub fn close(&mut self) {
        let mut play = lock(&self.play);
        let packets = (0..3).map(|_| play.disconnect()).collect();
        drop(play);
        self.out.send(packets);
    }
}
