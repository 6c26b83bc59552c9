//! The match registry: which matches exist, how full they are, and seat reservations.
//!
//! A seat is reserved (an atomic count) before the WebSocket upgrade, so a full match is
//! refused with an HTTP status instead of after the handshake. The reservation is released
//! when the connection ends.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use tokio::sync::mpsc;

use crate::match_loop::MatchCommand;

/// A live match, as the rest of the server sees it.
#[derive(Debug)]
pub struct MatchHandle {
    pub id: u32,
    pub capacity: usize,
    pub tick_hz: u32,
    /// Seats taken (reserved or playing).
    pub seats: AtomicUsize,
    /// The match's current tick, updated by its loop.
    pub tick: AtomicU32,
    pub commands: mpsc::Sender<MatchCommand>,
}

/// One row of `GET /api/matches`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct MatchInfo {
    pub id: u32,
    pub players: usize,
    pub capacity: usize,
    pub tick: u32,
    pub tick_hz: u32,
}

impl MatchHandle {
    #[must_use]
    pub fn info(&self) -> MatchInfo {
        MatchInfo {
            id: self.id,
            players: self.seats.load(Ordering::Relaxed),
            capacity: self.capacity,
            tick: self.tick.load(Ordering::Relaxed),
            tick_hz: self.tick_hz,
        }
    }

    /// Takes a seat if one is free.
    fn try_reserve(self: &Arc<Self>) -> Option<Seat> {
        self.seats
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.capacity).then_some(n + 1)
            })
            .ok()
            .map(|_| Seat {
                handle: self.clone(),
            })
    }
}

/// A reserved seat in a match; dropping it frees the seat.
#[derive(Debug)]
pub struct Seat {
    pub handle: Arc<MatchHandle>,
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.handle.seats.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why a seat could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeatError {
    #[error("no match with id {0}")]
    NoSuchMatch(u32),
    #[error("match {0} is full")]
    Full(u32),
}

/// All matches of this process.
#[derive(Debug, Default)]
pub struct Registry {
    matches: Mutex<BTreeMap<u32, Arc<MatchHandle>>>,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u32, Arc<MatchHandle>>> {
        // A panic while holding this lock cannot leave the map inconsistent (single inserts
        // and removes), so a poisoned lock is still usable.
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
    pub fn list(&self) -> Vec<MatchInfo> {
        self.lock().values().map(|m| m.info()).collect()
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A seat in match `id`.
    pub fn reserve_in(&self, id: u32) -> Result<Seat, SeatError> {
        let m = self.get(id).ok_or(SeatError::NoSuchMatch(id))?;
        m.try_reserve().ok_or(SeatError::Full(id))
    }

    /// A seat in the fullest match that has room (so matches fill up before new ones start),
    /// or `None` when every match is full.
    #[must_use]
    pub fn reserve_any(&self) -> Option<Seat> {
        let mut open: Vec<Arc<MatchHandle>> = self
            .lock()
            .values()
            .filter(|m| m.seats.load(Ordering::Relaxed) < m.capacity && !m.commands.is_closed())
            .cloned()
            .collect();
        open.sort_by_key(|m| (std::cmp::Reverse(m.seats.load(Ordering::Relaxed)), m.id));
        open.iter().find_map(MatchHandle::try_reserve)
    }
}
