//! A connection's writer task: the welcome, control replies, catching up after a stall,
//! the match's end and the close; in the steady state it lends its socket to the match loop
//! (see `outlet`) and sleeps.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{mpsc, watch};
use tracing::debug;

use skirmish_shared::protocol::{self, ServerMessage, SnapshotMsg, close_code};
use skirmish_shared::world::{PlayerId, WorldState};

use super::{CLOSE_GRACE, ConnectionContext, Control};
use crate::fanout::{ClientView, Cursor, TickOutput};
use crate::link::Link;
use crate::r#match::MatchHandle;
use crate::outlet::Lent;
use crate::socket::{self, Socket, WriteError};
use crate::stats::Stats;
use crate::wire;

pub(super) struct Writer {
    pub(super) link: Arc<Link>,
    pub(super) outputs: watch::Receiver<Arc<TickOutput>>,
    pub(super) handle: Arc<MatchHandle>,
    pub(super) control: mpsc::Receiver<Control>,
    /// `None` for a spectator.
    pub(super) player: Option<PlayerId>,
    /// Whose view it sees (its own player's, or the player a spectator follows); `None`: a
    /// spectator seeing the whole match.
    pub(super) follow: Option<PlayerId>,
    pub(super) match_id: u32,
    pub(super) tick_hz: u32,
    pub(super) ctx: ConnectionContext,
    pub(super) close_sent: Arc<AtomicBool>,
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
pub(super) enum WriterEnd {
    /// It sent a close frame, or its control channel closed.
    Done,
    /// The socket stopped accepting bytes (or errored).
    Stalled,
}

impl Writer {
    /// Catches up with the match, lends the socket to the match loop while nothing else
    /// needs writing (see `outlet`), and handles what wakes it.
    pub(super) async fn run(mut self, sink: Socket) -> WriterEnd {
        let stats = self.ctx.server.stats.clone();
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
                    let world = match self.follow {
                        // A player sees its own view (`fanout::ClientView`).
                        Some(follow) => {
                            let view = ClientView::new(follow, self.player);
                            let (cursor, world) = Cursor::welcome(&out, view);
                            io.cursor = cursor;
                            world
                        }
                        None => {
                            io.cursor = Cursor::at(&out);
                            out.world.clone()
                        }
                    };
                    self.send_welcome(&io.sink, &out, &world).await
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
                        () = self.ctx.server.shutdown.cancelled() => Action::Close(close_code::GOING_AWAY, "server shutting down"),
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
                    () = self.ctx.server.shutdown.cancelled() => Action::Close(close_code::GOING_AWAY, "server shutting down"),
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
            self.ctx.server.stats.slow_clients_dropped.inc();
            debug!(
                "socket not writable for {:?}, dropping the client",
                self.ctx.write_timeout
            );
        }
        WriterEnd::Stalled
    }

    /// The welcome, with `world` (the client's view at `out`) in full.
    async fn send_welcome(
        &self,
        sink: &Socket,
        out: &TickOutput,
        world: &WorldState,
    ) -> Result<(), WriteError> {
        let msg = ServerMessage::Welcome {
            player_id: self.player,
            match_id: self.match_id,
            tick_hz: self.tick_hz,
            snapshot: SnapshotMsg::encode(
                None,
                world,
                Some(world.checksum()),
                &out.params,
                Vec::new(),
            ),
        };
        self.send(sink, &wire::binary(&protocol::encode(&msg)))
            .await
    }

    /// Writes a whole frame (built by `wire`) and counts it.
    async fn send(&self, sink: &Socket, frame: &[u8]) -> Result<(), WriteError> {
        self.ctx.server.stats.count_sent(frame.len());
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
            let _ = write_close(sink, code, reason, &self.ctx.server.stats).await;
        }
    }
}

/// Writes a close frame (and counts it), waiting at most `CLOSE_GRACE`.
pub(super) async fn write_close(
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
