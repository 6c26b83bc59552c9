//! The match registry: which matches exist, their seats, and where new players go.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use skirmish_shared::world::{Phase, PlayerId};

use crate::connection::End;
use crate::events::EventLog;
use crate::fanout::TickOutput;
use crate::inlet::Inlet;
use crate::match_loop::MatchCommand;
use crate::outlet::Outlet;
use crate::seats::SeatTable;

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
    pub events: Mutex<EventLog>,
    /// Every connection's socket halves, lent to the match loop: it reads each connection's
    /// inputs at the start of a tick and writes the tick's snapshot into it at the end.
    pub links: Mutex<Vec<Arc<Link>>>,
}

/// A connection's read and write side, as its match loop drives them.
#[derive(Debug)]
pub struct Link {
    pub inlet: Inlet<End>,
    pub outlet: Outlet,
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

/// One row of `GET /api/matches`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MatchInfo {
    pub id: u32,
    /// Seats taken: playing, reserved, or holding for a reconnect.
    pub players: usize,
    pub capacity: usize,
    pub spectators: usize,
    pub phase: Phase,
    pub tick: u32,
    pub tick_hz: u32,
}

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

/// Why no seat could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeatError {
    #[error("no match with id {0} (it may be over)")]
    NoSuchMatch(u32),
    #[error("match {0} is full")]
    Full(u32),
    #[error("match {0} is over")]
    Over(u32),
}

/// All matches of this process.
#[derive(Debug, Default)]
pub struct Registry {
    matches: Mutex<BTreeMap<u32, Arc<MatchHandle>>>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<u32, Arc<MatchHandle>>> {
        self.matches.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn insert(&self, handle: Arc<MatchHandle>) {
        self.lock().insert(handle.id, handle);
    }

    pub fn remove(&self, id: u32) {
        self.lock().remove(&id);
    }

    #[must_use]
    pub fn get(&self, id: u32) -> Option<Arc<MatchHandle>> {
        self.lock().get(&id).cloned()
    }

    #[must_use]
    pub fn all(&self) -> Vec<Arc<MatchHandle>> {
        self.lock().values().cloned().collect()
    }

    #[must_use]
    pub fn list(&self) -> Vec<MatchInfo> {
        self.all().iter().map(|m| m.info()).collect()
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reserves a seat for `name` in match `id` until `until`.
    pub fn reserve_in(
        &self,
        id: u32,
        name: Arc<str>,
        until: Instant,
    ) -> Result<(Arc<MatchHandle>, u32), SeatError> {
        let m = self.get(id).ok_or(SeatError::NoSuchMatch(id))?;
        if m.phase() == Phase::Ended || m.commands.is_closed() {
            return Err(SeatError::Over(id));
        }
        let seat = m.seats().reserve(name, until).ok_or(SeatError::Full(id))?;
        Ok((m, seat))
    }

    /// Reserves a seat in the fullest match that has room (so matches fill before new ones
    /// start); `None` when every match is full or over.
    #[must_use]
    pub fn reserve_any(&self, name: &Arc<str>, until: Instant) -> Option<(Arc<MatchHandle>, u32)> {
        let mut open: Vec<(usize, Arc<MatchHandle>)> = self
            .all()
            .into_iter()
            .filter(|m| m.open_for_players())
            .map(|m| {
                let taken = m.seats().len();
                (taken, m)
            })
            .collect();
        open.sort_by_key(|(n, m)| (std::cmp::Reverse(*n), m.id));
        open.into_iter().find_map(|(_, m)| {
            let seat = m.seats().reserve(name.clone(), until)?;
            Some((m, seat))
        })
    }
}
