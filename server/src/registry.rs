//! The match registry: which matches exist, and where new players go. A match whose task has
//! ended marks its handle closed; the registry forgets it the next time it is looked at, so a
//! match never needs the registry.

use skirmish_shared::world::Name;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::time::Instant;

use skirmish_shared::world::Phase;

use crate::r#match::{MatchHandle, MatchInfo};
use crate::metrics::MatchGauges;

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
    /// The map, without the matches that have closed since the last look.
    fn lock(&self) -> MutexGuard<'_, BTreeMap<u32, Arc<MatchHandle>>> {
        let mut map = self.matches.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, m| !m.closed.load(Ordering::Acquire));
        map
    }

    pub fn insert(&self, handle: Arc<MatchHandle>) {
        self.lock().insert(handle.id, handle);
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

    /// What `/metrics` shows of the matches.
    #[must_use]
    pub fn gauges(&self) -> MatchGauges {
        let matches = self.all();
        let mut by_phase = [0; 4];
        for m in &matches {
            by_phase[usize::from(m.phase().to_bits()).min(3)] += 1;
        }
        MatchGauges {
            by_phase,
            players: matches.iter().map(|m| m.seats().len()).sum(),
            spectators: matches
                .iter()
                .map(|m| m.spectators.load(Ordering::Relaxed))
                .sum(),
        }
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
        name: Name,
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
    pub fn reserve_any(&self, name: &Name, until: Instant) -> Option<(Arc<MatchHandle>, u32)> {
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
            let seat = m.seats().reserve(*name, until)?;
            Some((m, seat))
        })
    }
}
