//! One player's (or spectator's) WebSocket: a reader (inputs and chat in, protocol
//! enforcement) and a writer (welcome, control replies, catching up, closing), with the close
//! handshake honoured both ways. In the steady state the match loop drives both: it polls the
//! reader once per tick (see `inlet`) and writes each tick's snapshot into the socket itself
//! while the writer task sleeps (see `outlet`).
//!
//! Misbehaviour ends in a close frame with an RFC 6455 code and a reason, never a panic:
//! text frame 1003, undecodable bytes 1002, frame over the size limit 1009, sustained input
//! flood 1008, invalid close frame 1002. A socket that accepts no bytes for
//! `--write-timeout-ms` is dropped; until then, a slow reader just skips snapshots (the writer
//! catches up with the latest tick only), so nothing queues up for it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::{Instrument, debug, info_span};

use skirmish_shared::protocol::{
    self, CHAT_BURST, CHAT_WINDOW_S, ClientMessage, EnvelopeError, InputFrame, MAX_CHAT_CHARS,
    MAX_CLIENT_MESSAGE_BYTES, ServerMessage, close_code,
};
use skirmish_shared::tick::Seq;
use skirmish_shared::world::PlayerId;

use crate::client_frame::{self, FrameError, OpCode};
use crate::fanout::{Cursor, TickOutput, snapshot_msg};
use crate::inlet::Inlet;
use crate::match_loop::{MatchCommand, MatchContext};
use crate::outlet::{Lent, Outlet};
use crate::registry::{Link, MatchHandle, SpectatorSlot};
use crate::socket::{self, Socket, WriteError};
use crate::stats::Stats;
use crate::wire;

/// How long we wait for the peer's close frame after sending ours.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Control messages from the reader to the writer.
const CONTROL_QUEUE: usize = 8;

/// What a connection needs from the server.
#[derive(Debug, Clone)]
pub struct ConnectionContext {
    pub matches: MatchContext,
    pub input_queue: usize,
    pub write_timeout: Duration,
    pub reconnect_grace: Duration,
}

/// Who is connecting.
#[derive(Debug)]
pub enum JoinKind {
    /// A player in `seat` (already claimed); `resume` brings back its earlier player.
    /// `reconnectable` seats (token joins) are kept through a dropped connection.
    Player {
        handle: Arc<MatchHandle>,
        seat: u32,
        name: Arc<str>,
        resume: Option<PlayerId>,
        reconnectable: bool,
    },
    /// A spectator: receives everything, sends no inputs.
    Spectator(SpectatorSlot),
}

/// Requests from the reader to the writer.
#[derive(Debug)]
enum Control {
    Pong {
        client_time_us: u64,
    },
    RequestFull,
    PingFrame(Vec<u8>),
    /// The client sent a close frame: answer it with this code.
    CloseReply(u16),
    /// Close because of the client's behaviour.
    Close {
        code: u16,
        reason: String,
    },
    /// Tell the client its chat line was not sent.
    ChatRejected(String),
}

/// Runs one connection from the upgraded socket to the end.
/// `dup` is the connection's socket, duplicated at accept (see `socket`).
pub async fn run(
    upgraded: fastwebsockets::upgrade::UpgradeFut,
    dup: socket2::Socket,
    join: JoinKind,
    ctx: ConnectionContext,
) {
    let stats = ctx.matches.stats.clone();
    let ws = match upgraded.await {
        Ok(ws) => match socket::detach(ws.into_inner(), dup) {
            Ok(detached) => Some(detached),
            Err(e) => {
                debug!("taking over the upgraded socket failed: {e}");
                None
            }
        },
        Err(e) => {
            debug!("upgrade failed: {e}");
            None
        }
    };
    match join {
        JoinKind::Player {
            handle,
            seat,
            name,
            resume,
            reconnectable,
        } => {
            let Some(ws) = ws else {
                end_seat(&handle, seat, None, reconnectable, &ctx).await;
                return;
            };
            let (inputs_tx, inputs_rx) = mpsc::channel(ctx.input_queue.max(1));
            let (reply_tx, reply_rx) = oneshot::channel();
            let cmd = MatchCommand::Join {
                name,
                resume,
                inputs: inputs_rx,
                reply: reply_tx,
            };
            let player = match handle.commands.send(cmd).await {
                Ok(()) => reply_rx.await.ok(),
                Err(_) => None,
            };
            let Some(player) = player else {
                let _ = write_close(&ws.0, close_code::GOING_AWAY, "match closed", &stats).await;
                end_seat(&handle, seat, None, false, &ctx).await;
                return;
            };
            handle.seats().set_player(seat, player);
            let span = info_span!("player", match_id = handle.id, player_id = player.0);
            let end = serve(ws, Some((player, inputs_tx)), &handle, &ctx)
                .instrument(span)
                .await;
            end_seat(
                &handle,
                seat,
                Some(player),
                reconnectable && end == End::Abrupt,
                &ctx,
            )
            .await;
        }
        JoinKind::Spectator(slot) => {
            let Some(ws) = ws else { return };
            let span = info_span!("spectator", match_id = slot.handle.id);
            serve(ws, None, &slot.handle, &ctx).instrument(span).await;
        }
    }
}

/// After a player's connection: keep the seat for a reconnect (abrupt drop, token seat,
/// grace > 0, match not over) or free it now.
async fn end_seat(
    handle: &MatchHandle,
    seat: u32,
    player: Option<PlayerId>,
    keep: bool,
    ctx: &ConnectionContext,
) {
    let keep = keep
        && !ctx.reconnect_grace.is_zero()
        && handle.phase() != skirmish_shared::world::Phase::Ended;
    if keep {
        handle
            .seats()
            .disconnect(seat, Instant::now() + ctx.reconnect_grace);
        if let Some(player) = player {
            let _ = handle
                .commands
                .send(MatchCommand::Disconnected { player })
                .await;
        }
    } else {
        let released = handle.seats().release(seat);
        if let Some(player) = player.or(released) {
            let _ = handle.commands.send(MatchCommand::Leave { player }).await;
        }
    }
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// A close handshake (either side started it).
    Closed,
    /// The peer vanished, or stopped accepting writes.
    Abrupt,
}

/// Runs the reader and writer of one connection until it ends.
async fn serve(
    (socket, prefix): (Socket, Vec<u8>),
    player: Option<(PlayerId, mpsc::Sender<InputFrame>)>,
    handle: &Arc<MatchHandle>,
    ctx: &ConnectionContext,
) -> End {
    let stats = ctx.matches.stats.clone();
    stats.connections.inc();
    debug!("connected");
    let close_sent = Arc::new(AtomicBool::new(false));
    let (ctrl_tx, ctrl_rx) = mpsc::channel(CONTROL_QUEUE);
    let player_id = player.as_ref().map(|p| p.0);
    let reader = Reader {
        socket: socket.clone(),
        buf: prefix,
        drained: false,
        player,
        chat: handle.chat.clone(),
        control: ctrl_tx,
        stats: stats.clone(),
        close_sent: close_sent.clone(),
        tick_hz: handle.tick_hz,
    };
    let link = Arc::new(Link {
        inlet: Inlet::new(Box::pin(reader.run().in_current_span())),
        outlet: Outlet::default(),
    });
    let _attached = handle.attach(link.clone());
    let writer = Writer {
        link: link.clone(),
        outputs: handle.outputs.clone(),
        handle: handle.clone(),
        control: ctrl_rx,
        player: player_id,
        match_id: handle.id,
        tick_hz: handle.tick_hz,
        ctx: ctx.clone(),
        close_sent,
    };
    let mut writer = tokio::spawn(writer.run(socket).in_current_span());
    let end = tokio::select! {
        () = link.inlet.finished() => {
            // The reader ended under the match's polling; if it owes a close, the writer is
            // sending it: let it finish.
            let end = match link.inlet.take_back() {
                Some(Err(end)) => end,
                _ => End::Abrupt,
            };
            let _ = tokio::time::timeout(CLOSE_GRACE, &mut writer).await;
            end
        }
        w = &mut writer => {
            // The writer closed (shutdown, match over) or gave up on the socket: the match
            // may no longer poll the reader, so drive it here while waiting for the peer's
            // close.
            let r = match link.inlet.take_back() {
                Some(Ok(reader)) => tokio::time::timeout(CLOSE_GRACE, socket::drive(reader))
                    .await
                    .unwrap_or(End::Abrupt),
                Some(Err(end)) => end,
                None => End::Abrupt,
            };
            if matches!(w, Ok(WriterEnd::Stalled)) { End::Abrupt } else { r }
        }
    };
    writer.abort();
    stats.connections.dec();
    debug!(?end, "disconnected");
    end
}

struct Reader {
    socket: Socket,
    /// Bytes received and not yet parsed into frames.
    buf: Vec<u8>,
    /// The last read emptied the socket: do not ask it again in the same poll (that would
    /// be a syscall that returns `EAGAIN`, once per connection per tick).
    drained: bool,
    /// `None` for a spectator.
    player: Option<(PlayerId, mpsc::Sender<InputFrame>)>,
    chat: mpsc::Sender<(PlayerId, String)>,
    control: mpsc::Sender<Control>,
    stats: Arc<Stats>,
    close_sent: Arc<AtomicBool>,
    tick_hz: u32,
}

/// Why no frame could be read.
enum ReadError {
    Frame(FrameError),
    /// End of stream, or a socket error.
    Gone,
}

/// Why the reader stopped, as a close to send (if any).
enum ReadEnd {
    /// The peer closed, or answered our close: nothing more to send.
    Done,
    /// The peer vanished without a close frame.
    Vanished,
    Close(u16, String),
}

impl Reader {
    async fn run(mut self) -> End {
        let end = self.read_loop().await;
        match end {
            ReadEnd::Done => return End::Closed,
            ReadEnd::Vanished => return End::Abrupt,
            ReadEnd::Close(..) => {}
        }
        if let ReadEnd::Close(code, reason) = end {
            debug!(code, %reason, "closing");
            let _ = self.control.send(Control::Close { code, reason }).await;
            // Wait (briefly) for the peer's close frame, discarding anything else.
            let _ = tokio::time::timeout(CLOSE_GRACE, async {
                while let Ok(f) = self.next_frame().await {
                    if f.opcode == OpCode::Close {
                        break;
                    }
                }
            })
            .await;
        }
        End::Closed
    }

    /// The next whole frame; reads (polls) the socket while there is none in the buffer.
    async fn next_frame(&mut self) -> Result<client_frame::Frame, ReadError> {
        loop {
            // fastwebsockets' convention, kept: frames of the limit's length are refused too.
            let parsed = client_frame::parse(&self.buf, MAX_CLIENT_MESSAGE_BYTES + 1)
                .map_err(ReadError::Frame)?;
            if let Some((frame, used)) = parsed {
                self.buf.drain(..used);
                return Ok(frame);
            }
            if std::mem::take(&mut self.drained) {
                socket::yield_once().await;
            }
            let read = std::future::poll_fn(|_| socket::poll_read(&self.socket, &mut self.buf));
            match read.await {
                Ok(0) | Err(_) => return Err(ReadError::Gone),
                Ok(n) => self.drained = n < socket::READ_CHUNK,
            }
        }
    }

    async fn read_loop(&mut self) -> ReadEnd {
        let mut last_enqueued: Option<Seq> = None;
        let mut flood = FloodWindow::new(self.tick_hz);
        let mut chat_limit = ChatLimit::default();
        let mut partial: Option<Vec<u8>> = None;
        loop {
            let client_frame::Frame {
                opcode,
                fin,
                payload,
            } = match self.next_frame().await {
                Ok(f) => f,
                Err(ReadError::Frame(FrameError::TooLarge(_))) => {
                    return ReadEnd::Close(
                        close_code::TOO_BIG,
                        format!("frame larger than {MAX_CLIENT_MESSAGE_BYTES} bytes"),
                    );
                }
                Err(ReadError::Gone) => {
                    debug!("connection dropped without a close frame");
                    return ReadEnd::Vanished;
                }
                Err(ReadError::Frame(e)) => {
                    return ReadEnd::Close(close_code::PROTOCOL_ERROR, format!("bad frame: {e}"));
                }
            };
            self.stats.messages_in.inc();
            self.stats.bytes_in.add(payload.len() as u64);
            let message = match opcode {
                OpCode::Text => {
                    return ReadEnd::Close(
                        close_code::UNSUPPORTED_DATA,
                        "text frames are not supported: send binary protocol messages".into(),
                    );
                }
                OpCode::Binary if fin => payload,
                OpCode::Binary => {
                    partial = Some(payload);
                    continue;
                }
                OpCode::Continuation => {
                    let Some(buf) = partial.as_mut() else {
                        return ReadEnd::Close(
                            close_code::PROTOCOL_ERROR,
                            "continuation frame without a message".into(),
                        );
                    };
                    buf.extend_from_slice(&payload);
                    if buf.len() > MAX_CLIENT_MESSAGE_BYTES {
                        return ReadEnd::Close(
                            close_code::TOO_BIG,
                            format!("message larger than {MAX_CLIENT_MESSAGE_BYTES} bytes"),
                        );
                    }
                    if !fin {
                        continue;
                    }
                    partial.take().unwrap_or_default()
                }
                OpCode::Close => return self.on_close(&payload).await,
                OpCode::Ping => {
                    let _ = self.control.try_send(Control::PingFrame(payload));
                    continue;
                }
                OpCode::Pong => continue,
            };
            let msg = match protocol::decode_client(&message) {
                Ok(m) => m,
                Err(EnvelopeError::Utf8) => {
                    return ReadEnd::Close(
                        close_code::INVALID_PAYLOAD,
                        "bad message: text is not valid UTF-8".into(),
                    );
                }
                Err(e) => {
                    return ReadEnd::Close(close_code::PROTOCOL_ERROR, format!("bad message: {e}"));
                }
            };
            match msg {
                ClientMessage::Input { frames } => {
                    let Some((_, inputs)) = &self.player else {
                        return ReadEnd::Close(
                            close_code::POLICY,
                            "spectators cannot send inputs".into(),
                        );
                    };
                    for f in frames {
                        if last_enqueued.is_some_and(|l| !f.seq.is_after(l)) {
                            continue; // a redundant copy we already have
                        }
                        self.stats.inputs_received.inc();
                        last_enqueued = Some(f.seq);
                        if inputs.try_send(f).is_err() {
                            self.stats.inputs_dropped.inc();
                            if flood.drop_one(Instant::now()) {
                                return ReadEnd::Close(
                                    close_code::POLICY,
                                    "input flood: more inputs than ticks, sustained".into(),
                                );
                            }
                        }
                    }
                }
                ClientMessage::Ping { client_time_us } => {
                    let _ = self.control.try_send(Control::Pong { client_time_us });
                }
                ClientMessage::RequestFull => {
                    let _ = self.control.try_send(Control::RequestFull);
                }
                ClientMessage::Chat { text } => {
                    let refusal = match &self.player {
                        None => Some("spectators cannot chat".to_string()),
                        Some(_) if text.chars().count() > MAX_CHAT_CHARS => Some(format!(
                            "chat message longer than {MAX_CHAT_CHARS} characters"
                        )),
                        Some(_) if text.trim().is_empty() => Some("empty chat message".to_string()),
                        Some(_) if !chat_limit.allow(Instant::now()) => Some(format!(
                            "chat rate limit: at most {CHAT_BURST} messages per {CHAT_WINDOW_S} s"
                        )),
                        Some((id, _)) => match self.chat.try_send((*id, text)) {
                            Ok(()) => None,
                            Err(_) => Some("chat is busy, try again".to_string()),
                        },
                    };
                    if let Some(reason) = refusal {
                        // Waits for the writer: a client that floods chat without reading
                        // its socket stalls only itself.
                        let _ = self.control.send(Control::ChatRejected(reason)).await;
                    }
                }
            }
        }
    }

    /// The peer sent a close frame: answer it (unless it answers ours) and stop.
    async fn on_close(&mut self, payload: &[u8]) -> ReadEnd {
        if self.close_sent.load(Ordering::Acquire) {
            return ReadEnd::Done;
        }
        let code = match validate_close(payload) {
            Ok(code) => code,
            Err(reason) => return ReadEnd::Close(close_code::PROTOCOL_ERROR, reason.into()),
        };
        debug!(code, "peer closed");
        // Echo the code (RFC 6455 5.5.1); 1005 "no status" is never sent, answer 1000.
        let reply = if code == 1005 {
            close_code::NORMAL
        } else {
            code
        };
        let _ = self.control.send(Control::CloseReply(reply)).await;
        ReadEnd::Done
    }
}

/// Checks a received close payload: empty, or a sendable code plus a UTF-8 reason.
fn validate_close(payload: &[u8]) -> Result<u16, &'static str> {
    match payload.len() {
        0 => return Ok(1005),
        1 => return Err("close frame with a 1-byte payload"),
        _ => {}
    }
    let code = u16::from_be_bytes([payload[0], payload[1]]);
    let allowed = matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999);
    if !allowed {
        return Err("invalid close code");
    }
    if std::str::from_utf8(&payload[2..]).is_err() {
        return Err("close reason is not valid UTF-8");
    }
    Ok(code)
}

/// Counts dropped inputs per one-second window; a flood is more drops in a window than
/// ticks in a second (the client sends at over twice the tick rate for a whole second).
struct FloodWindow {
    limit: u32,
    window_start: Instant,
    drops: u32,
}

impl FloodWindow {
    fn new(tick_hz: u32) -> Self {
        Self {
            limit: tick_hz,
            window_start: Instant::now(),
            drops: 0,
        }
    }

    /// Records a drop; true when the flood is sustained.
    fn drop_one(&mut self, now: Instant) -> bool {
        if now.duration_since(self.window_start) >= Duration::from_secs(1) {
            self.window_start = now;
            self.drops = 0;
        }
        self.drops += 1;
        self.drops > self.limit
    }
}

/// At most `CHAT_BURST` chat lines in any `CHAT_WINDOW_S` seconds.
#[derive(Default)]
struct ChatLimit {
    sent: VecDeque<Instant>,
}

impl ChatLimit {
    fn allow(&mut self, now: Instant) -> bool {
        while self
            .sent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(CHAT_WINDOW_S))
        {
            self.sent.pop_front();
        }
        if self.sent.len() >= CHAT_BURST as usize {
            return false;
        }
        self.sent.push_back(now);
        true
    }
}

struct Writer {
    link: Arc<Link>,
    outputs: watch::Receiver<Arc<TickOutput>>,
    handle: Arc<MatchHandle>,
    control: mpsc::Receiver<Control>,
    /// `None` for a spectator.
    player: Option<PlayerId>,
    match_id: u32,
    tick_hz: u32,
    ctx: ConnectionContext,
    close_sent: Arc<AtomicBool>,
}

enum Action {
    Publish,
    /// The reader ended (its control channel closed).
    ReaderGone,
    Control(Control),
    Close(u16, &'static str),
}

/// How the writer stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriterEnd {
    /// It sent a close frame, or its control channel closed.
    Done,
    /// The socket stopped accepting bytes (or errored).
    Stalled,
}

impl Writer {
    /// Catches up with the match, lends the socket to the match loop while nothing else
    /// needs writing (see `outlet`), and handles what wakes it.
    async fn run(mut self, sink: Socket) -> WriterEnd {
        let stats = self.ctx.matches.stats.clone();
        let mut io = Lent {
            sink,
            cursor: Cursor::default(),
        };
        let mut welcomed = false;
        loop {
            // Catch up with the latest publication: we hold the socket.
            let out = self.outputs.borrow_and_update().clone();
            let result = if let Some(ranking) = &out.ended {
                let msg = protocol::encode(&ServerMessage::MatchEnded {
                    ranking: ranking.clone(),
                });
                if self.send(&io.sink, &wire::binary(&msg)).await.is_ok() {
                    self.close(&io.sink, close_code::NORMAL, "match ended")
                        .await;
                }
                return WriterEnd::Done;
            } else if !welcomed {
                if self.player.is_some_and(|p| out.world.player(p).is_none()) {
                    Ok(()) // our join is not in the world yet
                } else {
                    welcomed = true;
                    io.cursor = Cursor::at(&out);
                    self.send_welcome(&io.sink, &out).await
                }
            } else if let Some(frame) = io.cursor.advance(&out, &self.handle.events, &stats) {
                self.send(&io.sink, &frame).await
            } else {
                Ok(())
            };
            if let Err(e) = result {
                return self.stalled(&e);
            }
            let action = if welcomed {
                if self.outputs.has_changed().is_err() {
                    Action::Close(close_code::GOING_AWAY, "match closed")
                } else {
                    // Lend the socket to the match loop until something needs us.
                    if let Err(back) = self.link.outlet.lend(io, &self.outputs) {
                        io = back; // a newer tick came out meanwhile
                        continue;
                    }
                    let action = tokio::select! {
                        biased;
                        c = self.control.recv() => c.map_or(Action::ReaderGone, Action::Control),
                        () = self.ctx.matches.shutdown.cancelled() => Action::Close(close_code::GOING_AWAY, "server shutting down"),
                        () = self.link.outlet.woken() => Action::Publish,
                    };
                    let Some(back) = self.link.outlet.take_back() else {
                        return WriterEnd::Stalled; // cannot happen: only we take it back
                    };
                    io = back.lent;
                    if back.failed {
                        return WriterEnd::Stalled;
                    }
                    if let Some(rest) = back.unsent {
                        // The match already counted this frame.
                        if let Err(e) = self.timed(&io.sink, &rest).await {
                            return self.stalled(&e);
                        }
                    }
                    action
                }
            } else {
                tokio::select! {
                    biased;
                    c = self.control.recv() => c.map_or(Action::ReaderGone, Action::Control),
                    () = self.ctx.matches.shutdown.cancelled() => Action::Close(close_code::GOING_AWAY, "server shutting down"),
                    r = self.outputs.changed() => match r {
                        Ok(()) => Action::Publish,
                        Err(_) => Action::Close(close_code::GOING_AWAY, "match closed"),
                    },
                }
            };
            let sink = &io.sink;
            let result = match action {
                Action::Publish => Ok(()),
                Action::Control(Control::Pong { client_time_us }) => {
                    let tick = self.outputs.borrow().tick();
                    let msg = protocol::encode(&ServerMessage::Pong {
                        client_time_us,
                        server_tick: tick,
                    });
                    self.send(sink, &wire::binary(&msg)).await
                }
                Action::Control(Control::ChatRejected(reason)) => {
                    let msg = protocol::encode(&ServerMessage::ChatRejected { reason });
                    self.send(sink, &wire::binary(&msg)).await
                }
                Action::Control(Control::RequestFull) => {
                    io.cursor.last = None;
                    Ok(())
                }
                Action::Control(Control::PingFrame(p)) => self.timed(sink, &wire::pong(&p)).await,
                Action::Control(Control::CloseReply(code)) => {
                    self.close_sent.store(true, Ordering::Release);
                    stats.count_close(code);
                    let _ = self.timed(sink, &wire::close(code, "")).await;
                    return WriterEnd::Done;
                }
                Action::Control(Control::Close { code, reason }) => {
                    self.close(sink, code, &reason).await;
                    return WriterEnd::Done;
                }
                Action::ReaderGone => return WriterEnd::Done,
                Action::Close(code, reason) => {
                    self.close(sink, code, reason).await;
                    return WriterEnd::Done;
                }
            };
            if let Err(e) = result {
                return self.stalled(&e);
            }
        }
    }

    fn stalled(&self, e: &WriteError) -> WriterEnd {
        if let WriteError::TimedOut(_) = e {
            // A frame may be half written: no clean close is possible; drop the socket.
            self.ctx.matches.stats.slow_clients_dropped.inc();
            debug!(
                "socket not writable for {:?}, dropping the client",
                self.ctx.write_timeout
            );
        }
        WriterEnd::Stalled
    }

    async fn send_welcome(&self, sink: &Socket, out: &TickOutput) -> Result<(), WriteError> {
        let msg = ServerMessage::Welcome {
            player_id: self.player,
            match_id: self.match_id,
            tick_hz: self.tick_hz,
            snapshot: snapshot_msg(
                None,
                &out.world,
                Some(out.world.checksum()),
                &out.params,
                Vec::new(),
            ),
        };
        self.send(sink, &wire::binary(&protocol::encode(&msg)))
            .await
    }

    /// Writes a whole frame (built by `wire`) and counts it.
    async fn send(&self, sink: &Socket, frame: &[u8]) -> Result<(), WriteError> {
        self.ctx.matches.stats.count_sent(frame.len());
        self.timed(sink, frame).await
    }

    async fn timed(&self, sink: &Socket, bytes: &[u8]) -> Result<(), WriteError> {
        socket::write_all(sink, bytes, self.ctx.write_timeout).await
    }

    /// Sends an `Error` message with the reason, then the close frame.
    async fn close(&self, sink: &Socket, code: u16, reason: &str) {
        let err = protocol::encode(&ServerMessage::Error {
            code,
            message: reason.to_string(),
        });
        if self.send(sink, &wire::binary(&err)).await.is_ok() {
            self.close_sent.store(true, Ordering::Release);
            let _ = write_close(sink, code, reason, &self.ctx.matches.stats).await;
        }
    }
}

/// Writes a close frame (and counts it), waiting at most `CLOSE_GRACE`.
async fn write_close(
    sink: &Socket,
    code: u16,
    reason: &str,
    stats: &Stats,
) -> Result<(), WriteError> {
    let frame = wire::close(code, reason);
    stats.count_close(code);
    stats.count_sent(frame.len());
    socket::write_all(sink, &frame, CLOSE_GRACE).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_payloads_are_validated() {
        assert_eq!(validate_close(&[]), Ok(1005));
        assert!(validate_close(&[3]).is_err());
        assert_eq!(validate_close(&[0x03, 0xE8]), Ok(1000));
        assert!(
            validate_close(&[0x03, 0xED]).is_err(),
            "1005 may not be sent"
        );
        assert!(
            validate_close(&[0x03, 0xEE]).is_err(),
            "1006 may not be sent"
        );
        assert_eq!(validate_close(&[0x0F, 0xA0, b'h', b'i']), Ok(4000));
        assert!(
            validate_close(&[0x03, 0xE8, 0xFF]).is_err(),
            "reason must be UTF-8"
        );
    }

    #[test]
    fn flood_window_tolerates_bursts_but_not_a_sustained_flood() {
        let t0 = Instant::now();
        let mut w = FloodWindow {
            limit: 30,
            window_start: t0,
            drops: 0,
        };
        for _ in 0..30 {
            assert!(!w.drop_one(t0));
        }
        assert!(w.drop_one(t0 + Duration::from_millis(500)));
        assert!(
            !w.drop_one(t0 + Duration::from_millis(1500)),
            "a new window starts over"
        );
    }

    #[test]
    fn chat_limit_allows_five_per_five_seconds() {
        let t0 = Instant::now();
        let mut c = ChatLimit::default();
        for _ in 0..5 {
            assert!(c.allow(t0));
        }
        assert!(!c.allow(t0 + Duration::from_secs(4)));
        assert!(c.allow(t0 + Duration::from_secs(5)), "the window slides");
    }
}
