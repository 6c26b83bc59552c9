//! A match's seats: reserved by the matchmaker, claimed by a connection with its token, kept
//! through a dropped connection for the reconnect grace window, then freed.
//!
//! The table lives behind a mutex in the match handle so the HTTP side can answer "full",
//! "already connected" or "seat expired" *before* upgrading; the match task sweeps it.

use skirmish_shared::world::Name;
use std::collections::BTreeMap;

use tokio::time::Instant;

use skirmish_shared::world::{Phase, PlayerId};

/// Whether a player's seat waits for a reconnect when its connection ends: only after an
/// abrupt end (not a close or disconnect the player asked for), with a grace window, while
/// the match is not over.
#[must_use]
pub fn keep_for_reconnect(abrupt: bool, grace: std::time::Duration, phase: Phase) -> bool {
    abrupt && !grace.is_zero() && phase != Phase::Ended
}

/// One seat's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatState {
    /// Handed out by the matchmaker; free again at `until` if nobody claims it.
    Reserved { until: Instant },
    /// A connection plays it.
    Connected,
    /// Its connection dropped; the player may come back until `until`.
    Disconnected { until: Instant },
}

/// A seat.
#[derive(Debug, Clone)]
pub struct Seat {
    pub name: Name,
    pub state: SeatState,
    /// The player in the world, once it has joined.
    pub player: Option<PlayerId>,
    pub disconnects: u32,
}

/// Why a seat could not be claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    #[error("the seat is no longer reserved (its reservation or reconnect window expired)")]
    Gone,
    #[error("this token is already in use by a connected player")]
    InUse,
}

/// A seat freed by [`SeatTable::sweep`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Freed {
    pub seat: u32,
    pub player: Option<PlayerId>,
}

/// All seats of one match.
#[derive(Debug)]
pub struct SeatTable {
    capacity: usize,
    next_seat: u32,
    seats: BTreeMap<u32, Seat>,
}

impl SeatTable {
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            next_seat: 1,
            seats: BTreeMap::new(),
        }
    }

    /// Seats taken (reserved, connected or in their grace window).
    #[must_use]
    pub fn len(&self) -> usize {
        self.seats.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.seats.is_empty()
    }

    #[must_use]
    pub fn has_room(&self) -> bool {
        self.seats.len() < self.capacity
    }

    #[must_use]
    pub fn get(&self, seat: u32) -> Option<&Seat> {
        self.seats.get(&seat)
    }

    /// Reserves a seat until `until`; `None` when the match is full.
    pub fn reserve(&mut self, name: Name, until: Instant) -> Option<u32> {
        if !self.has_room() {
            return None;
        }
        let seat = self.next_seat;
        self.next_seat += 1;
        self.seats.insert(
            seat,
            Seat {
                name,
                state: SeatState::Reserved { until },
                player: None,
                disconnects: 0,
            },
        );
        Some(seat)
    }

    /// Claims a reserved or disconnected seat for a connection. Returns the player to resume,
    /// if the seat already had one.
    pub fn claim(&mut self, seat: u32, now: Instant) -> Result<Option<PlayerId>, ClaimError> {
        let s = self.seats.get_mut(&seat).ok_or(ClaimError::Gone)?;
        match s.state {
            SeatState::Connected => Err(ClaimError::InUse),
            SeatState::Reserved { until } | SeatState::Disconnected { until } if until <= now => {
                Err(ClaimError::Gone)
            }
            _ => {
                s.state = SeatState::Connected;
                Ok(s.player)
            }
        }
    }

    /// Records the player a seat's connection joined as.
    pub fn set_player(&mut self, seat: u32, player: PlayerId) {
        if let Some(s) = self.seats.get_mut(&seat) {
            s.player = Some(player);
        }
    }

    /// The connection dropped: keep the seat until `until`.
    pub fn disconnect(&mut self, seat: u32, until: Instant) {
        if let Some(s) = self.seats.get_mut(&seat) {
            s.state = SeatState::Disconnected { until };
            s.disconnects += 1;
        }
    }

    /// Frees a seat now; returns its player.
    pub fn release(&mut self, seat: u32) -> Option<PlayerId> {
        self.seats.remove(&seat).and_then(|s| s.player)
    }

    /// Frees every reservation and grace window that ran out by `now`.
    pub fn sweep(&mut self, now: Instant) -> Vec<Freed> {
        let expired: Vec<u32> = self
            .seats
            .iter()
            .filter(|(_, s)| match s.state {
                SeatState::Reserved { until } | SeatState::Disconnected { until } => until <= now,
                SeatState::Connected => false,
            })
            .map(|(k, _)| *k)
            .collect();
        expired
            .into_iter()
            .map(|seat| Freed {
                seat,
                player: self.seats.remove(&seat).and_then(|s| s.player),
            })
            .collect()
    }

    /// Disconnect counts by player, for the results.
    #[must_use]
    pub fn disconnects(&self) -> Vec<(PlayerId, u32)> {
        self.seats
            .values()
            .filter_map(|s| s.player.map(|p| (p, s.disconnects)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn reserve_claim_drop_resume_and_expire() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut t = SeatTable::new(2);
        let a = t.reserve("a".into(), t0 + s).expect("room");
        let b = t.reserve("b".into(), t0 + s).expect("room");
        assert_eq!(t.reserve("c".into(), t0 + s), None, "full");
        assert_eq!(t.claim(a, t0), Ok(None));
        assert_eq!(t.claim(a, t0), Err(ClaimError::InUse));
        t.set_player(a, PlayerId(5));
        t.disconnect(a, t0 + 2 * s);
        assert_eq!(
            t.claim(a, t0 + s),
            Ok(Some(PlayerId(5))),
            "resume within grace"
        );
        // b never connected: its reservation runs out.
        assert_eq!(
            t.sweep(t0 + s),
            vec![Freed {
                seat: b,
                player: None
            }]
        );
        assert_eq!(t.claim(b, t0 + s), Err(ClaimError::Gone));
        t.disconnect(a, t0 + 2 * s);
        assert_eq!(
            t.sweep(t0 + 3 * s),
            vec![Freed {
                seat: a,
                player: Some(PlayerId(5))
            }]
        );
        assert!(t.is_empty());
    }
}
