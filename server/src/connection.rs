//! One player's (or spectator's) WebSocket: a reader (inputs and chat in, protocol
//! enforcement) and a writer (welcome, control replies, catching up, closing), with the close
//! handshake honoured both ways. In the steady state the match loop drives both: it polls the
//! reader once per tick (see `inlet`) and writes each tick's snapshot into the socket itself
//! while the writer task sleeps (see `outlet`).
//!
//! What a client may send, and what it may cost per tick, is decided by the sans-IO `reader`;
//! misbehaviour ends in a close frame with an RFC 6455 code and a reason, never a panic: text
//! frame 1003, undecodable bytes or broken framing 1002, invalid UTF-8 1007, frame over the
//! size limit 1009, sustained message flood 1008. A socket that accepts no bytes for
//! `--write-timeout-ms` is dropped; until then, a slow reader just skips snapshots (the writer
//! catches up with the latest tick only), so nothing queues up for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::{Instrument, debug, info_span};

use skirmish_shared::protocol::{self, ServerMessage, close_code};
use skirmish_shared::world::PlayerId;

use crate::fanout::{Cursor, TickOutput, snapshot_msg};
use crate::inlet::Inlet;
use crate::jitter::InputRing;
use crate::match_loop::{MatchCommand, MatchContext};
use crate::outlet::{Lent, Outlet};
use crate::reader::{Close, ConnReader, Event, Limits};
use crate::registry::{Link, MatchHandle, SpectatorSlot};
use crate::socket::{self, Socket, WriteError};
use crate::stats::Stats;
use crate::wire;

/// How long we wait for the peer's close frame after sending ours.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Control messages from the reader to the writer.
const CONTROL_QUEUE: usize = 8;
/// The most one read of a game socket takes (the reader's per-tick byte budget).
const READ_BUDGET: usize = 4 * 1024;

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
pub async fn run(
    upgraded: fastwebsockets::upgrade::UpgradeFut,
    join: JoinKind,
    ctx: ConnectionContext,
) {
    let stats = ctx.matches.stats.clone();
    let ws = match upgraded.await {
        Ok(ws) => match socket::detach(ws.into_inner().into_inner()) {
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
            let inputs = Arc::new(InputRing::new(ctx.input_queue));
            let (reply_tx, reply_rx) = oneshot::channel();
            let cmd = MatchCommand::Join {
                name,
                resume,
                inputs: inputs.clone(),
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
            let end = serve(ws, Some((player, inputs)), &handle, &ctx)
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
    player: Option<(PlayerId, Arc<InputRing>)>,
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
        prefix,
        core: ConnReader::new(
            Limits::for_tick_rate(handle.tick_hz),
            player.is_some(),
            Instant::now().into_std(),
        ),
        player,
        chat: handle.chat.clone(),
        control: ctrl_tx,
        stats: stats.clone(),
        close_sent: close_sent.clone(),
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
    let mut writer = tokio::spawn(writer.run(socket.clone()).in_current_span());
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
            // The writer closed (shutdown, match over) or gave up on the socket. A stalled
            // socket gets no close handshake (nothing can be written to it). Otherwise the
            // match may no longer poll the reader: drive it here while waiting for the peer's
            // close.
            let taken = link.inlet.take_back();
            match (w, taken) {
                (Ok(WriterEnd::Stalled) | Err(_), _) => End::Abrupt,
                (_, Some(Ok(reader))) => tokio::time::timeout(CLOSE_GRACE, socket::drive(reader))
                    .await
                    .unwrap_or(End::Abrupt),
                (_, Some(Err(end))) => end,
                (_, None) => End::Abrupt,
            }
        }
    };
    writer.abort();
    // Our side is done: close the TCP connection now (RFC 6455 7.1.1: after the close
    // handshake the server closes first), whoever else still holds the socket.
    let _ = socket.shutdown(std::net::Shutdown::Both);
    stats.connections.dec();
    debug!(?end, "disconnected");
    end
}

struct Reader {
    socket: Socket,
    /// What hyper had read before the upgrade: fed before anything from the socket.
    prefix: Vec<u8>,
    core: ConnReader,
    /// `None` for a spectator.
    player: Option<(PlayerId, Arc<InputRing>)>,
    chat: mpsc::Sender<(PlayerId, String)>,
    control: mpsc::Sender<Control>,
    stats: Arc<Stats>,
    close_sent: Arc<AtomicBool>,
}

/// Why the reader stopped, as a close to send (if any).
enum ReadEnd {
    /// The peer closed, or answered our close: nothing more to send.
    Done,
    /// The peer vanished without a close frame.
    Vanished,
    Close(Close),
}

impl Reader {
    async fn run(mut self) -> End {
        let close = match self.read_loop().await {
            ReadEnd::Done => return End::Closed,
            ReadEnd::Vanished => return End::Abrupt,
            ReadEnd::Close(close) => close,
        };
        debug!(code = close.code, reason = %close.reason, "closing");
        let _ = self
            .control
            .send(Control::Close {
                code: close.code,
                reason: close.reason,
            })
            .await;
        // Wait (briefly) for the peer's close frame, discarding anything else.
        let _ = tokio::time::timeout(CLOSE_GRACE, self.read_loop()).await;
        End::Closed
    }

    /// Reads one tick's budget per poll (see `reader`) and acts on what arrived, until the
    /// read side ends.
    async fn read_loop(&mut self) -> ReadEnd {
        let mut events = Vec::new();
        loop {
            let now = Instant::now().into_std();
            self.core.start_tick();
            let read = self.read_tick(now, &mut events);
            for event in events.drain(..) {
                if let Some(end) = self.on_event(event).await {
                    return end;
                }
            }
            if let Some(end) = read {
                return end;
            }
            socket::yield_once().await; // the rest at the next tick
        }
    }

    /// Feeds the reader what this tick's budget allows: what was left, the upgrade's
    /// prefix, then the socket. A read that returns less than asked has emptied the socket:
    /// asking again would be a system call that returns `EAGAIN`, once per connection per
    /// tick.
    fn read_tick(&mut self, now: std::time::Instant, events: &mut Vec<Event>) -> Option<ReadEnd> {
        let closing = self.core.is_closing();
        let fed = self.core.resume(now, events).and_then(|()| {
            let take = self.core.room().min(self.prefix.len());
            if take > 0 {
                let prefix: Vec<u8> = self.prefix.drain(..take).collect();
                self.core.feed(&prefix, now, events)?;
            }
            let mut chunk = [0u8; READ_BUDGET];
            loop {
                let want = self.core.room().min(chunk.len());
                if want == 0 {
                    return Ok(None);
                }
                match socket::try_read(&self.socket, &mut chunk[..want]) {
                    Poll::Pending => return Ok(None),
                    Poll::Ready(Ok(0) | Err(_)) => return Ok(Some(ReadEnd::Vanished)),
                    Poll::Ready(Ok(n)) => {
                        self.stats.bytes_in.add(n as u64);
                        self.core.feed(&chunk[..n], now, events)?;
                        if n < want {
                            return Ok(None);
                        }
                    }
                }
            }
        });
        match fed {
            Ok(None) => None,
            Ok(Some(ReadEnd::Vanished)) if !closing => {
                debug!("connection dropped without a close frame");
                Some(ReadEnd::Vanished)
            }
            Ok(Some(_)) => Some(ReadEnd::Done), // gone while we waited for its close
            Err(close) if closing => {
                let _ = close;
                Some(ReadEnd::Done)
            }
            Err(close) => Some(ReadEnd::Close(close)),
        }
    }

    /// Acts on one event; `Some` when the read side ends. Replies wait for room in the
    /// writer's queue (never dropped): a client that sends faster than it reads its replies
    /// stalls only its own reading, and its message rate is bounded by the reader.
    async fn on_event(&mut self, event: Event) -> Option<ReadEnd> {
        self.stats.messages_in.inc();
        let control = match event {
            Event::Input(input) => {
                if let Some((_, ring)) = &self.player {
                    self.stats.inputs_received.inc();
                    if ring.push(input) {
                        self.stats.inputs_dropped.inc();
                    }
                }
                return None;
            }
            Event::Ping { client_time_us } => Control::Pong { client_time_us },
            Event::RequestFull => Control::RequestFull,
            Event::PingFrame(payload) => Control::PingFrame(payload),
            Event::ChatRefused(reason) => Control::ChatRejected(reason),
            Event::Chat(text) => {
                let from = self.player.as_ref()?.0;
                match self.chat.try_send((from, text)) {
                    Ok(()) => return None,
                    Err(_) => Control::ChatRejected("chat is busy, try again".into()),
                }
            }
            Event::PeerClosed { reply } => {
                if self.close_sent.load(Ordering::Acquire) {
                    return Some(ReadEnd::Done); // the answer to our close
                }
                debug!(code = reply, "peer closed");
                let _ = self.control.send(Control::CloseReply(reply)).await;
                return Some(ReadEnd::Done);
            }
        };
        if self.control.send(control).await.is_err() {
            return Some(ReadEnd::Done); // the writer is gone
        }
        None
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
