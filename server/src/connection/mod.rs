//! One player's (or spectator's) WebSocket: its seat's lifecycle (`seat`), its reader — the
//! sans-IO rules (`reader`, with the frame parser in `frame`) and the side that feeds it from
//! the socket and acts on what it says (`inbound`) — and its writer (welcome, control
//! replies, catching up, closing: `writer`), with the close handshake honoured both ways. In the steady state the match loop drives both: it polls the
//! reader once per tick (see `inlet`) and writes each tick's snapshot into the socket itself
//! while the writer task sleeps (see `outlet`).
//!
//! What a client may send, and what it may cost per tick, is decided by the sans-IO `reader`;
//! misbehaviour ends in a close frame with an RFC 6455 code and a reason, never a panic: text
//! frame 1003, undecodable bytes or broken framing 1002, invalid UTF-8 1007, frame over the
//! size limit 1009, sustained message flood 1008. A socket that accepts no bytes for
//! `--write-timeout-ms` is dropped; until then, a slow reader just skips snapshots (the writer
//! catches up with the latest tick only), so nothing queues up for it.

use skirmish_shared::world::Name;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{Instrument, debug};

use skirmish_shared::world::PlayerId;

use crate::context::ServerContext;
use crate::inlet::Inlet;
use crate::link::{End, Link};
use crate::r#match::jitter::InputRing;
use crate::r#match::{MatchHandle, SpectatorSlot};
use crate::outlet::Outlet;
use crate::socket::{self, Socket};

use inbound::Reader;
use reader::{ConnReader, Limits};
use writer::{Writer, WriterEnd};

pub mod frame;
mod inbound;
pub mod reader;
mod seat;
mod writer;

pub use seat::run;

/// How long we wait for the peer's close frame after sending ours.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Control messages from the reader to the writer.
const CONTROL_QUEUE: usize = 8;

/// What a connection needs from the server.
#[derive(Debug, Clone)]
pub struct ConnectionContext {
    pub server: ServerContext,
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
        name: Name,
        resume: Option<PlayerId>,
        reconnectable: bool,
    },
    /// A spectator: sends no inputs; sees everything, or what the player `follow` sees.
    Spectator {
        slot: SpectatorSlot,
        follow: Option<PlayerId>,
    },
}

/// Requests from the reader to the writer.
#[derive(Debug)]
pub(crate) enum Control {
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

/// Runs the reader and writer of one connection until it ends.
pub(crate) async fn serve(
    (socket, prefix): (Socket, Vec<u8>),
    player: Option<(PlayerId, Arc<InputRing>)>,
    handle: &Arc<MatchHandle>,
    follow: Option<PlayerId>,
    ctx: &ConnectionContext,
) -> End {
    let stats = ctx.server.stats.clone();
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
    // Spectators of a match with a spectator delay watch its delayed publication.
    let delayed = handle.delayed.as_ref().filter(|_| player_id.is_none());
    let link = Arc::new(Link {
        inlet: Inlet::new(Box::pin(reader.run().in_current_span())),
        outlet: Outlet::default(),
        delayed: delayed.is_some(),
    });
    let _attached = handle.attach(link.clone());
    let writer = Writer {
        link: link.clone(),
        outputs: delayed.unwrap_or(&handle.outputs).clone(),
        handle: handle.clone(),
        control: ctrl_rx,
        player: player_id,
        follow,
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
    socket.shutdown();
    stats.connections.dec();
    debug!(?end, "disconnected");
    end
}
