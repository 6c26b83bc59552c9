//! One player's WebSocket: a reader (inputs in, protocol enforcement) and a writer
//! (snapshots out from the match's `watch` channel), with the close handshake honoured both
//! ways.
//!
//! Misbehaviour ends in a close frame with an RFC 6455 code and a reason, never a panic:
//! text frame 1003, undecodable bytes 1002, frame over the size limit 1009, sustained input
//! flood 1008, invalid close frame 1002. A socket that accepts no bytes for
//! `--write-timeout-ms` is dropped; until then, a slow reader just skips snapshots (the watch
//! channel holds only the latest), so nothing queues up for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fastwebsockets::{Frame, OpCode, Payload, WebSocketError, WebSocketRead, WebSocketWrite};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::{Instrument, debug, info_span};

use skirmish_shared::protocol::{
    self, ClientMessage, InputFrame, MAX_CLIENT_MESSAGE_BYTES, ServerMessage, close_code,
};
use skirmish_shared::rules::truncate_utf8;
use skirmish_shared::tick::Seq;
use skirmish_shared::world::{PlayerId, WorldState};

use crate::fanout::{TickOutput, snapshot_msg};
use crate::match_loop::{MatchCommand, MatchContext};
use crate::registry::Seat;
use crate::stats::Stats;

type Stream = TokioIo<Upgraded>;

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
}

/// Runs one connection from the upgraded socket to the end.
pub async fn run(
    upgraded: fastwebsockets::upgrade::UpgradeFut,
    seat: Seat,
    name: Arc<str>,
    ctx: ConnectionContext,
) {
    let match_id = seat.handle.id;
    let stats = ctx.matches.stats.clone();
    let mut ws = match upgraded.await {
        Ok(ws) => ws,
        Err(e) => {
            debug!(match_id, "upgrade failed: {e}");
            return;
        }
    };
    ws.set_auto_close(false);
    ws.set_auto_pong(false);
    // fastwebsockets refuses frames whose length is >= the limit.
    ws.set_max_message_size(MAX_CLIENT_MESSAGE_BYTES + 1);
    let (read, mut write) = ws.split(tokio::io::split);

    let (inputs_tx, inputs_rx) = mpsc::channel(ctx.input_queue.max(1));
    let (reply_tx, reply_rx) = oneshot::channel();
    let join = MatchCommand::Join {
        name,
        inputs: inputs_rx,
        reply: reply_tx,
    };
    let joined = match seat.handle.commands.send(join).await {
        Ok(()) => reply_rx.await.ok(),
        Err(_) => None,
    };
    let Some(joined) = joined else {
        let _ = write_close(&mut write, close_code::GOING_AWAY, "match closed", &stats).await;
        return;
    };
    let player = joined.player;
    let span = info_span!("player", match_id, player_id = player.0);
    stats.connections.inc();
    async {
        debug!("connected");
        let close_sent = Arc::new(AtomicBool::new(false));
        let (ctrl_tx, ctrl_rx) = mpsc::channel(CONTROL_QUEUE);
        let writer = Writer {
            write,
            outputs: joined.outputs,
            control: ctrl_rx,
            player,
            match_id,
            tick_hz: seat.handle.tick_hz,
            ctx: ctx.clone(),
            close_sent: close_sent.clone(),
        };
        let mut writer = tokio::spawn(writer.run().in_current_span());
        let reader = Reader {
            read,
            inputs: inputs_tx,
            control: ctrl_tx,
            stats: stats.clone(),
            close_sent,
            tick_hz: seat.handle.tick_hz,
        };
        let reader = reader.run();
        tokio::pin!(reader);
        tokio::select! {
            () = &mut reader => {
                // The reader asked the writer for any close it owes; let it finish that.
                let _ = tokio::time::timeout(CLOSE_GRACE, &mut writer).await;
            }
            _ = &mut writer => {
                // The writer closed (shutdown, match over, slow socket): wait for the peer's close.
                let _ = tokio::time::timeout(CLOSE_GRACE, &mut reader).await;
            }
        }
        writer.abort();
        debug!("disconnected");
    }
    .instrument(span)
    .await;
    stats.connections.dec();
    let _ = seat
        .handle
        .commands
        .send(MatchCommand::Leave { player })
        .await;
    drop(seat);
}

struct Reader {
    read: WebSocketRead<ReadHalf<Stream>>,
    inputs: mpsc::Sender<InputFrame>,
    control: mpsc::Sender<Control>,
    stats: Arc<Stats>,
    close_sent: Arc<AtomicBool>,
    tick_hz: u32,
}

/// Why the reader stopped, as a close to send (if any).
enum ReadEnd {
    /// Peer went away or answered our close: nothing more to send.
    Done,
    Close(u16, String),
}

impl Reader {
    async fn run(mut self) {
        let end = self.read_loop().await;
        if let ReadEnd::Close(code, reason) = end {
            match code {
                close_code::PROTOCOL_ERROR => self.stats.closes_protocol.inc(),
                close_code::UNSUPPORTED_DATA => self.stats.closes_unsupported.inc(),
                close_code::POLICY => self.stats.closes_policy.inc(),
                close_code::TOO_BIG => self.stats.closes_too_big.inc(),
                _ => {}
            }
            debug!(code, %reason, "closing");
            let _ = self.control.send(Control::Close { code, reason }).await;
            // Wait (briefly) for the peer's close frame, discarding anything else.
            let _ = tokio::time::timeout(CLOSE_GRACE, async {
                while let Ok(f) = self.next_frame().await {
                    if f.0 == OpCode::Close {
                        break;
                    }
                }
            })
            .await;
        }
    }

    async fn next_frame(&mut self) -> Result<(OpCode, bool, Vec<u8>), WebSocketError> {
        // Auto-close and auto-pong are off, so there are no obligated sends.
        let f = self
            .read
            .read_frame::<std::future::Ready<Result<(), WebSocketError>>, WebSocketError>(
                &mut |_| std::future::ready(Ok(())),
            )
            .await?;
        Ok((f.opcode, f.fin, f.payload.to_vec()))
    }

    async fn read_loop(&mut self) -> ReadEnd {
        let mut last_enqueued: Option<Seq> = None;
        let mut flood = FloodWindow::new(self.tick_hz);
        let mut partial: Option<Vec<u8>> = None;
        loop {
            let (opcode, fin, payload) = match self.next_frame().await {
                Ok(f) => f,
                Err(WebSocketError::FrameTooLarge) => {
                    return ReadEnd::Close(
                        close_code::TOO_BIG,
                        format!("frame larger than {MAX_CLIENT_MESSAGE_BYTES} bytes"),
                    );
                }
                Err(
                    WebSocketError::UnexpectedEOF
                    | WebSocketError::IoError(_)
                    | WebSocketError::ConnectionClosed,
                ) => {
                    debug!("connection dropped without a close frame");
                    return ReadEnd::Done;
                }
                Err(e) => {
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
                Err(e) => {
                    return ReadEnd::Close(close_code::PROTOCOL_ERROR, format!("bad message: {e}"));
                }
            };
            match msg {
                ClientMessage::Input { frames } => {
                    for f in frames {
                        if last_enqueued.is_some_and(|l| !f.seq.is_after(l)) {
                            continue; // a redundant copy we already have
                        }
                        self.stats.inputs_received.inc();
                        last_enqueued = Some(f.seq);
                        if self.inputs.try_send(f).is_err() {
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

struct Writer {
    write: WebSocketWrite<WriteHalf<Stream>>,
    outputs: watch::Receiver<Arc<TickOutput>>,
    control: mpsc::Receiver<Control>,
    player: PlayerId,
    match_id: u32,
    tick_hz: u32,
    ctx: ConnectionContext,
    close_sent: Arc<AtomicBool>,
}

enum Action {
    Publish,
    Control(Control),
    Close(u16, &'static str),
}

/// Why writing stopped.
#[derive(Debug)]
enum WriteError {
    TimedOut,
    Socket,
}

impl Writer {
    async fn run(mut self) {
        let stats = self.ctx.matches.stats.clone();
        let mut last: Option<Arc<WorldState>> = None;
        let mut welcomed = false;
        // A world published before our join is ready; handle it like any other.
        self.outputs.mark_changed();
        loop {
            let action = tokio::select! {
                biased;
                c = self.control.recv() => match c {
                    Some(c) => Action::Control(c),
                    None => return,
                },
                () = self.ctx.matches.shutdown.cancelled() => Action::Close(close_code::GOING_AWAY, "server shutting down"),
                r = self.outputs.changed() => match r {
                    Ok(()) => Action::Publish,
                    Err(_) => Action::Close(close_code::GOING_AWAY, "match closed"),
                },
            };
            let result = match action {
                Action::Publish => {
                    let out = self.outputs.borrow_and_update().clone();
                    if !welcomed {
                        if out.world.player(self.player).is_none() {
                            continue;
                        }
                        welcomed = true;
                        last = Some(out.world.clone());
                        self.send_welcome(&out).await
                    } else {
                        if let Some(l) = &last {
                            let gap = out.tick().diff(l.tick);
                            if gap <= 0 {
                                continue;
                            }
                            stats.snapshots_skipped.add(gap as u64 - 1);
                        }
                        let (frame, own) = out.frame_for(last.as_deref());
                        if own {
                            stats.snapshots_encoded_per_client.inc();
                        }
                        last = Some(out.world.clone());
                        self.send(&frame).await
                    }
                }
                Action::Control(Control::Pong { client_time_us }) => {
                    let tick = self.outputs.borrow().tick();
                    let msg = protocol::encode(&ServerMessage::Pong {
                        client_time_us,
                        server_tick: tick,
                    });
                    self.send(&msg).await
                }
                Action::Control(Control::RequestFull) => {
                    last = None;
                    Ok(())
                }
                Action::Control(Control::PingFrame(p)) => {
                    self.timed(Frame::pong(Payload::Owned(p))).await
                }
                Action::Control(Control::CloseReply(code)) => {
                    self.close_sent.store(true, Ordering::Release);
                    let _ = self.timed(Frame::close(code, b"")).await;
                    return;
                }
                Action::Control(Control::Close { code, reason }) => {
                    self.close(code, &reason).await;
                    return;
                }
                Action::Close(code, reason) => {
                    self.close(code, reason).await;
                    return;
                }
            };
            match result {
                Ok(()) => {}
                Err(WriteError::TimedOut) => {
                    // A frame may be half written: no clean close is possible; drop the socket.
                    stats.closes_policy.inc();
                    debug!(
                        "socket not writable for {:?}, dropping the client",
                        self.ctx.write_timeout
                    );
                    return;
                }
                Err(WriteError::Socket) => return,
            }
        }
    }

    async fn send_welcome(&mut self, out: &TickOutput) -> Result<(), WriteError> {
        let msg = ServerMessage::Welcome {
            player_id: self.player,
            match_id: self.match_id,
            tick_hz: self.tick_hz,
            snapshot: snapshot_msg(None, &out.world, Some(out.world.checksum()), &out.params),
        };
        self.send(&protocol::encode(&msg)).await
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        let stats = &self.ctx.matches.stats;
        stats.messages_out.inc();
        stats.bytes_out.add(wire_len(bytes.len()) as u64);
        self.timed(Frame::binary(Payload::Borrowed(bytes))).await
    }

    async fn timed(&mut self, frame: Frame<'_>) -> Result<(), WriteError> {
        match tokio::time::timeout(self.ctx.write_timeout, self.write.write_frame(frame)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(WriteError::Socket),
            Err(_) => Err(WriteError::TimedOut),
        }
    }

    /// Sends an `Error` message with the reason, then the close frame.
    async fn close(&mut self, code: u16, reason: &str) {
        let err = protocol::encode(&ServerMessage::Error {
            code,
            message: reason.to_string(),
        });
        if self.send(&err).await.is_ok() {
            let stats = self.ctx.matches.stats.clone();
            self.close_sent.store(true, Ordering::Release);
            let _ = write_close(&mut self.write, code, reason, &stats).await;
        }
    }
}

/// Payload plus WebSocket header length of a server (unmasked) frame.
#[must_use]
pub fn wire_len(payload: usize) -> usize {
    payload
        + match payload {
            0..=125 => 2,
            126..=65535 => 4,
            _ => 10,
        }
}

async fn write_close(
    write: &mut WebSocketWrite<WriteHalf<Stream>>,
    code: u16,
    reason: &str,
    stats: &Stats,
) -> Result<(), WebSocketError> {
    // A close payload is at most 125 bytes: 2 for the code, 123 for the reason.
    let reason = truncate_utf8(reason, 123);
    stats.messages_out.inc();
    stats.bytes_out.add(wire_len(2 + reason.len()) as u64);
    tokio::time::timeout(
        CLOSE_GRACE,
        write.write_frame(Frame::close(code, reason.as_bytes())),
    )
    .await
    .unwrap_or(Err(WebSocketError::ConnectionClosed))
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
    fn wire_len_counts_the_header() {
        assert_eq!(wire_len(60), 62);
        assert_eq!(wire_len(500), 504);
    }
}
