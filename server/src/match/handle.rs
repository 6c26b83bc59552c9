//! A live match as the rest of the server sees it: its handle (seats, spectators, the latest
//! publication, the connections lent to its loop) and the commands its task takes.

use skirmish_shared::world::Name;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{mpsc, oneshot, watch};

use skirmish_shared::world::{Phase, PlayerId};

use super::jitter::InputRing;
use super::seats::SeatTable;
use crate::events::EventLog;
use crate::fanout::TickOutput;
use crate::link::Link;

/// A live match, as the rest of the server sees it.
#[derive(Debug)]
pub struct MatchHandle {
    pub id: u32,
    pub capacity: usize,
    pub tick_hz: u32,
    pub max_spectators: usize,
    pub seats: Mutex<SeatTable>,
    pub spectators: AtomicUsize,
    /// The match's current tick and phase, updated by its loop.
    pub tick: AtomicU32,
    /// When the loop last ticked, Unix milliseconds (a stalled loop stops health checks).
    pub ticked_at_ms: std::sync::atomic::AtomicU64,
    pub phase: AtomicU8,
    pub commands: mpsc::Sender<MatchCommand>,
    /// Chat lines to broadcast (bounded; a full queue refuses the line).
    pub chat: mpsc::Sender<(PlayerId, String)>,
    /// The latest publication (writers subscribe by cloning).
    pub outputs: watch::Receiver<Arc<TickOutput>>,
    /// With `--spectator-delay`: the publication that far back, which spectators watch.
    pub delayed: Option<watch::Receiver<Arc<TickOutput>>>,
    pub events: Mutex<EventLog>,
    /// Every connection's socket halves, lent to the match loop: it reads each connection's
    /// inputs at the start of a tick and writes the tick's snapshot into it at the end.
    pub links: Mutex<Vec<Arc<Link>>>,
    /// Set when the match's task has ended (the registry then forgets the match).
    pub closed: AtomicBool,
}

/// Keeps a link in its match's list; removes it when dropped.
#[derive(Debug)]
pub struct Attachment {
    handle: Arc<MatchHandle>,
    link: Arc<Link>,
}

impl Drop for Attachment {
    fn drop(&mut self) {
        self.handle.links().retain(|l| !Arc::ptr_eq(l, &self.link));
    }
}

pub use skirmish_shared::api::MatchInfo;

impl MatchHandle {
    pub fn links(&self) -> MutexGuard<'_, Vec<Arc<Link>>> {
        self.links.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands a connection's link to the match loop, for as long as the returned attachment
    /// lives.
    #[must_use]
    pub fn attach(self: &Arc<Self>, link: Arc<Link>) -> Attachment {
        self.links().push(link.clone());
        Attachment {
            handle: self.clone(),
            link,
        }
    }

    /// Wakes every connection's writer (the match is over or gone).
    pub fn wake_writers(&self) {
        for l in self.links().iter() {
            l.outlet.wake();
        }
    }

    pub fn seats(&self) -> MutexGuard<'_, SeatTable> {
        // Each seat operation is a single map update, so a poisoned lock is still consistent.
        self.seats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[must_use]
    pub fn phase(&self) -> Phase {
        Phase::from_bits(self.phase.load(Ordering::Relaxed))
    }

    #[must_use]
    pub fn info(&self) -> MatchInfo {
        MatchInfo {
            id: self.id,
            players: self.seats().len(),
            capacity: self.capacity,
            spectators: self.spectators.load(Ordering::Relaxed),
            phase: self.phase(),
            tick: self.tick.load(Ordering::Relaxed),
            tick_hz: self.tick_hz,
        }
    }

    /// Whether new players may be seated (it has room and is not over).
    #[must_use]
    pub fn open_for_players(&self) -> bool {
        self.phase() != Phase::Ended && !self.commands.is_closed() && self.seats().has_room()
    }

    /// Takes a spectator slot; the guard frees it.
    #[must_use]
    pub fn try_spectate(self: &Arc<Self>) -> Option<SpectatorSlot> {
        self.spectators
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_spectators).then_some(n + 1)
            })
            .ok()
            .map(|_| SpectatorSlot {
                handle: self.clone(),
            })
    }
}

/// A spectator's slot in a match; dropping it frees the slot.
#[derive(Debug)]
pub struct SpectatorSlot {
    pub handle: Arc<MatchHandle>,
}

impl Drop for SpectatorSlot {
    fn drop(&mut self) {
        self.handle.spectators.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Requests to a match task.
#[derive(Debug)]
pub enum MatchCommand {
    /// Add a player (or bring back `resume`, if it is still in the world); it appears in the
    /// next tick's world.
    Join {
        name: Name,
        resume: Option<PlayerId>,
        inputs: Arc<InputRing>,
        reply: oneshot::Sender<PlayerId>,
    },
    /// A datagram session completed its handshake with the seat's token (already claimed):
    /// add its player (or bring back `resume`) and drive its packets each tick.
    JoinDatagram {
        resume: Option<PlayerId>,
        peer: Arc<crate::udp::peer::Peer>,
        sealer: Box<skirmish_shared::datagram::Sealer>,
        socket: Arc<std::net::UdpSocket>,
    },
    /// The player's connection dropped; it stands still while its seat waits for a reconnect.
    Disconnected { player: PlayerId },
    /// Remove a player now.
    Leave { player: PlayerId },
}
