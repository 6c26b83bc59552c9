//! The side of a connection's reading that touches the socket: each poll (the match polls it
//! once per tick, see `inlet`) feeds the sans-IO `reader` what its budget allows and acts on
//! the events: inputs into the player's queue, replies to the writer, chat to the match.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::debug;

use skirmish_shared::world::PlayerId;

use super::reader::{Close, ConnReader, Event};
use super::{CLOSE_GRACE, Control};
use crate::link::End;
use crate::r#match::jitter::InputRing;
use crate::socket::{self, Socket};
use crate::stats::Stats;

/// The most one read of a game socket takes. An honest client sends far less per tick, so
/// this is one `recv`; a flood takes a few, up to the reader's per-tick budget. (Small, as
/// before the budget: the stack buffer is zeroed for every read.)
const READ_CHUNK: usize = 1024;

pub(super) struct Reader {
    pub(super) socket: Socket,
    /// What hyper had read before the upgrade: fed before anything from the socket.
    pub(super) prefix: Vec<u8>,
    pub(super) core: ConnReader,
    /// `None` for a spectator.
    pub(super) player: Option<(PlayerId, Arc<InputRing>)>,
    pub(super) chat: mpsc::Sender<(PlayerId, String)>,
    pub(super) control: mpsc::Sender<Control>,
    pub(super) stats: Arc<Stats>,
    pub(super) close_sent: Arc<AtomicBool>,
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
    pub(super) async fn run(mut self) -> End {
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
            let mut chunk = [0u8; READ_CHUNK];
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
