//! A connection's read side as a pure state machine: bytes in, events or a close out. No
//! socket, no clock (the caller passes `now`), so every rule is a plain unit test.
//!
//! The match loop reads each connection once per tick, and this reader bounds what one
//! connection can cost it there:
//! - a **per-tick budget** of bytes and frames: once spent, [`ConnReader::room`] is 0, the
//!   rest waits in the kernel's buffer for the next tick (TCP pushes back on the client), so
//!   one read pass always ends, however fast a client streams;
//! - a **message rate** (a token bucket, one token per frame of any kind, control frames
//!   included, plus one per new input beyond the first in a message), refilled at twice the
//!   tick rate with a few seconds of burst: the backlog a real client sends after an upload
//!   stall fits; a sustained flood empties the bucket and is closed with 1008.
//!
//! RFC 6455 rules (masking, reserved bits, control frames, fragmentation) are checked here
//! and in `client_frame`; each violation is a [`Close`] with its code and reason.

use std::time::Instant;

use skirmish_shared::protocol::{
    self, ClientMessage, EnvelopeError, InputFrame, MAX_CLIENT_MESSAGE_BYTES, close_code,
};
use skirmish_shared::tick::Seq;

use crate::budget::{ChatLimit, TokenBucket};

use super::frame::{self as client_frame, FrameError, OpCode};

/// What one connection may cost per tick, and its sustained message rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Bytes taken from the socket per tick (at least one largest frame).
    pub bytes_per_tick: usize,
    /// Frames parsed per tick.
    pub frames_per_tick: u32,
    /// Tokens (messages) refilled per second.
    pub rate_per_s: f64,
    /// Bucket size: the burst a client may send at once.
    pub burst: f64,
}

/// The largest client frame: the message limit plus the longest header.
pub const MAX_FRAME_BYTES: usize = MAX_CLIENT_MESSAGE_BYTES + 14;

impl Limits {
    /// Sized from the tick rate: an honest client sends one input message per tick, a ping
    /// a second and an occasional chat line. Twice the tick rate plus 8/s is sustained
    /// headroom; four seconds of inputs is the burst (a 1.5 s upload stall sends ~45).
    #[must_use]
    pub fn for_tick_rate(tick_hz: u32) -> Self {
        let hz = f64::from(tick_hz.max(1));
        Self {
            bytes_per_tick: 4 * 1024,
            frames_per_tick: 32,
            rate_per_s: 2.0 * hz + 8.0,
            burst: 4.0 * hz + 16.0,
        }
    }
}

/// What the client asked for, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new input (redundant copies already seen are dropped here).
    Input(InputFrame),
    /// A protocol `Ping`: answer with a `Pong`.
    Ping { client_time_us: u64 },
    /// The client lost its baseline: send a full snapshot.
    RequestFull,
    /// A chat line that passed the length and rate checks.
    Chat(String),
    /// A chat line refused, with the reason to send back.
    ChatRefused(String),
    /// A WebSocket ping frame: answer with a pong carrying this payload.
    PingFrame(Vec<u8>),
    /// The peer's close frame. `reply` is the code to answer with (unless this answers ours).
    PeerClosed { reply: u16 },
}

/// Why the connection must be closed, as sent to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    pub code: u16,
    pub reason: String,
}

impl Close {
    fn new(code: u16, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }
}

/// One connection's reader (see the module docs).
#[derive(Debug)]
pub struct ConnReader {
    limits: Limits,
    /// Players send inputs and chat; spectators may not.
    is_player: bool,
    /// Bytes fed and not yet parsed (bounded: see `room`).
    buf: Vec<u8>,
    /// The fragments of an unfinished message.
    partial: Option<Vec<u8>>,
    bucket: TokenBucket,
    chat: ChatLimit,
    last_input: Option<Seq>,
    bytes_left: usize,
    frames_left: u32,
    /// A close was returned: from now on only the peer's close frame matters.
    closing: bool,
}

impl ConnReader {
    #[must_use]
    pub fn new(limits: Limits, is_player: bool, now: Instant) -> Self {
        Self {
            limits,
            is_player,
            buf: Vec::new(),
            partial: None,
            bucket: TokenBucket::full(limits.burst, now),
            chat: ChatLimit::default(),
            last_input: None,
            bytes_left: limits.bytes_per_tick,
            frames_left: limits.frames_per_tick,
            closing: false,
        }
    }

    /// Renews the per-tick budget.
    pub fn start_tick(&mut self) {
        self.bytes_left = self.limits.bytes_per_tick;
        self.frames_left = self.limits.frames_per_tick;
    }

    /// How many bytes may be read and fed now: 0 once this tick's budget is spent.
    #[must_use]
    pub fn room(&self) -> usize {
        if self.frames_left == 0 {
            return 0;
        }
        // The buffer never holds more than a tick's bytes plus one unfinished frame.
        let cap = self.limits.bytes_per_tick.max(MAX_FRAME_BYTES);
        self.bytes_left.min(cap.saturating_sub(self.buf.len()))
    }

    /// Whether a close was returned and only the peer's close frame is awaited.
    #[must_use]
    pub fn is_closing(&self) -> bool {
        self.closing
    }

    /// Takes `bytes` (at most [`room`](Self::room); more is a caller bug and is refused
    /// with 1008 rather than buffered) and parses what this tick's budget allows, pushing
    /// events to `out`. After an `Err`, the reader only looks for the peer's close frame.
    pub fn feed(&mut self, bytes: &[u8], now: Instant, out: &mut Vec<Event>) -> Result<(), Close> {
        if bytes.len() > self.room() {
            return self.fail(Close::new(close_code::POLICY, "read budget exceeded"));
        }
        self.bytes_left -= bytes.len();
        self.buf.extend_from_slice(bytes);
        self.parse(now, out)
    }

    /// Parses what was left from earlier ticks (call after `start_tick`).
    pub fn resume(&mut self, now: Instant, out: &mut Vec<Event>) -> Result<(), Close> {
        self.parse(now, out)
    }

    fn fail(&mut self, close: Close) -> Result<(), Close> {
        self.closing = true;
        self.buf.clear();
        self.partial = None;
        Err(close)
    }

    fn parse(&mut self, now: Instant, out: &mut Vec<Event>) -> Result<(), Close> {
        let mut used = 0;
        let result = loop {
            if self.frames_left == 0 {
                break Ok(());
            }
            // fastwebsockets' convention, kept: frames of the limit's length are refused too.
            let frame = match client_frame::parse(&self.buf[used..], MAX_CLIENT_MESSAGE_BYTES + 1) {
                Ok(Some((frame, n))) => {
                    used += n;
                    frame
                }
                Ok(None) => break Ok(()),
                Err(e) if self.closing => {
                    // Garbage after our close: stop reading it.
                    let _ = e;
                    break Ok(());
                }
                Err(FrameError::TooLarge(_)) => {
                    break Err(Close::new(
                        close_code::TOO_BIG,
                        format!("frame larger than {MAX_CLIENT_MESSAGE_BYTES} bytes"),
                    ));
                }
                Err(e) => {
                    break Err(Close::new(
                        close_code::PROTOCOL_ERROR,
                        format!("bad frame: {e}"),
                    ));
                }
            };
            self.frames_left -= 1;
            if self.closing {
                if frame.opcode == OpCode::Close {
                    out.push(Event::PeerClosed {
                        reply: close_code::NORMAL,
                    });
                    self.buf.clear();
                    return Ok(());
                }
                continue;
            }
            if let Err(close) = self.frame(frame, now, out) {
                break Err(close);
            }
        };
        if self.closing {
            self.buf.clear();
        } else {
            self.buf.drain(..used);
        }
        match result {
            Err(close) => self.fail(close),
            Ok(()) => Ok(()),
        }
    }

    fn frame(
        &mut self,
        frame: client_frame::Frame,
        now: Instant,
        out: &mut Vec<Event>,
    ) -> Result<(), Close> {
        if !self
            .bucket
            .take(1.0, now, self.limits.rate_per_s, self.limits.burst)
        {
            return Err(Close::new(
                close_code::POLICY,
                format!(
                    "message flood: more than {:.0} messages per second, sustained",
                    self.limits.rate_per_s
                ),
            ));
        }
        let message = match (frame.opcode, self.partial.as_mut()) {
            (OpCode::Text, _) => {
                return Err(Close::new(
                    close_code::UNSUPPORTED_DATA,
                    "text frames are not supported: send binary protocol messages",
                ));
            }
            (OpCode::Binary, Some(_)) => {
                return Err(Close::new(
                    close_code::PROTOCOL_ERROR,
                    "new message while a fragmented message is unfinished",
                ));
            }
            (OpCode::Binary, None) if frame.fin => frame.payload,
            (OpCode::Binary, None) => {
                self.partial = Some(frame.payload);
                return Ok(());
            }
            (OpCode::Continuation, None) => {
                return Err(Close::new(
                    close_code::PROTOCOL_ERROR,
                    "continuation frame without a message",
                ));
            }
            (OpCode::Continuation, Some(buf)) => {
                buf.extend_from_slice(&frame.payload);
                if buf.len() > MAX_CLIENT_MESSAGE_BYTES {
                    return Err(Close::new(
                        close_code::TOO_BIG,
                        format!("message larger than {MAX_CLIENT_MESSAGE_BYTES} bytes"),
                    ));
                }
                if !frame.fin {
                    return Ok(());
                }
                self.partial.take().unwrap_or_default()
            }
            (OpCode::Close, _) => {
                let reply = validate_close(&frame.payload)
                    .map_err(|reason| Close::new(close_code::PROTOCOL_ERROR, reason))?;
                // Echo the code (RFC 6455 5.5.1); 1005 "no status" is never sent: answer 1000.
                let reply = if reply == 1005 {
                    close_code::NORMAL
                } else {
                    reply
                };
                self.closing = true;
                out.push(Event::PeerClosed { reply });
                return Ok(());
            }
            (OpCode::Ping, _) => {
                out.push(Event::PingFrame(frame.payload));
                return Ok(());
            }
            (OpCode::Pong, _) => return Ok(()),
        };
        self.message(&message, now, out)
    }

    fn message(&mut self, bytes: &[u8], now: Instant, out: &mut Vec<Event>) -> Result<(), Close> {
        let msg = protocol::decode_client(bytes).map_err(|e| match e {
            EnvelopeError::Utf8 => Close::new(
                close_code::INVALID_PAYLOAD,
                "bad message: text is not valid UTF-8",
            ),
            e => Close::new(close_code::PROTOCOL_ERROR, format!("bad message: {e}")),
        })?;
        match msg {
            ClientMessage::Input { frames } => {
                if !self.is_player {
                    return Err(Close::new(
                        close_code::POLICY,
                        "spectators cannot send inputs",
                    ));
                }
                let mut new = 0u32;
                for f in frames {
                    if self.last_input.is_some_and(|l| !f.seq.is_after(l)) {
                        continue; // a redundant copy we already have
                    }
                    self.last_input = Some(f.seq);
                    new += 1;
                    out.push(Event::Input(f));
                }
                // The message paid one token; each further new input pays one more.
                if new > 1
                    && !self.bucket.take(
                        f64::from(new - 1),
                        now,
                        self.limits.rate_per_s,
                        self.limits.burst,
                    )
                {
                    return Err(Close::new(
                        close_code::POLICY,
                        "input flood: more inputs than ticks, sustained",
                    ));
                }
            }
            ClientMessage::Ping { client_time_us } => out.push(Event::Ping { client_time_us }),
            ClientMessage::RequestFull => out.push(Event::RequestFull),
            ClientMessage::Chat { text } => out.push(self.chat(text, now)),
        }
        Ok(())
    }

    fn chat(&mut self, text: String, now: Instant) -> Event {
        if !self.is_player {
            return Event::ChatRefused("spectators cannot chat".into());
        }
        match self.chat.check(&text, now) {
            Ok(text) => Event::Chat(text),
            Err(reason) => Event::ChatRefused(reason),
        }
    }
}

/// Checks a received close payload: empty, or a sendable code plus a UTF-8 reason.
fn validate_close(payload: &[u8]) -> Result<u16, &'static str> {
    let code = match payload {
        [] => return Ok(1005),
        [_] => return Err("close frame with a 1-byte payload"),
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
    };
    if !matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999) {
        return Err("invalid close code");
    }
    if std::str::from_utf8(&payload[2..]).is_err() {
        return Err("close reason is not valid UTF-8");
    }
    Ok(code)
}

#[cfg(test)]
mod tests;
