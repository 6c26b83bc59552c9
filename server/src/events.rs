//! A match's game-event log: a bounded ring of recent events with consecutive ids, so that a
//! writer that skipped snapshots can still send every event it owes, once and in order. A
//! writer further behind than the ring gets an `EventsLost` marker and a full snapshot.

use std::collections::VecDeque;

use skirmish_shared::protocol::{EventKind, GameEvent};
use skirmish_shared::tick::Tick;

/// Events kept for late writers.
pub const EVENT_RING: usize = 4096;

/// The ring of recent events.
#[derive(Debug)]
pub struct EventLog {
    ring: VecDeque<GameEvent>,
    /// Id of the next event (ids start at 1).
    next_id: u64,
    capacity: usize,
}

impl Default for EventLog {
    fn default() -> Self {
        Self::with_capacity(EVENT_RING)
    }
}

impl EventLog {
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            ring: VecDeque::with_capacity(capacity.min(1024)),
            next_id: 1,
            capacity: capacity.max(1),
        }
    }

    /// The id the next event will get.
    #[must_use]
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    /// Appends an event; returns it.
    pub fn push(&mut self, tick: Tick, kind: EventKind) -> &GameEvent {
        if self.ring.len() == self.capacity {
            self.ring.pop_front();
        }
        self.ring.push_back(GameEvent {
            id: self.next_id,
            tick,
            kind,
        });
        self.next_id += 1;
        self.ring.back().expect("just pushed")
    }

    /// Events with ids in `from..to`. When some of them are gone from the ring, the answer
    /// starts with an `EventsLost` marker (id just before the first kept one) and the caller
    /// should send a full snapshot; the bool says so.
    #[must_use]
    pub fn range(&self, from: u64, to: u64) -> (Vec<GameEvent>, bool) {
        let oldest = self.ring.front().map_or(self.next_id, |e| e.id);
        let mut out = Vec::new();
        let mut lost = false;
        let start = if from < oldest {
            lost = true;
            let tick = self.ring.front().map_or(Tick(0), |e| e.tick);
            out.push(GameEvent {
                id: oldest - 1,
                tick,
                kind: EventKind::EventsLost {
                    missed: oldest - from,
                },
            });
            oldest
        } else {
            from
        };
        let skip = (start - oldest) as usize;
        out.extend(
            self.ring
                .iter()
                .skip(skip)
                .take_while(|e| e.id < to)
                .cloned(),
        );
        (out, lost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skirmish_shared::world::PlayerId;

    fn left(p: u32) -> EventKind {
        EventKind::Left {
            player: PlayerId(p),
        }
    }

    #[test]
    fn ranges_are_consecutive_and_loss_is_marked() {
        let mut log = EventLog::with_capacity(4);
        for i in 0..6 {
            log.push(Tick(i), left(i));
        }
        // ids 1..=6 were pushed; 3..=6 are kept.
        let (evs, lost) = log.range(4, 7);
        assert!(!lost);
        assert_eq!(evs.iter().map(|e| e.id).collect::<Vec<_>>(), vec![4, 5, 6]);
        let (evs, lost) = log.range(1, 6);
        assert!(lost);
        assert_eq!(evs[0].kind, EventKind::EventsLost { missed: 2 });
        assert_eq!(
            evs.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![2, 3, 4, 5]
        );
        assert!(log.range(7, 7).0.is_empty());
    }
}
