//! `--spectator-delay`: spectators watch the match that far behind. The match keeps its last
//! publications (one per tick) in a ring and publishes the one that has aged enough on a
//! second channel, which spectators' writers follow; what they get is byte for byte what the
//! players got then (snapshots, checksums, events), only later. After the match ends, its
//! task plays the rest of the ring out to the spectators still watching.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::watch;

use crate::fanout::TickOutput;

/// The ring of held publications and the delayed channel.
#[derive(Debug)]
pub struct DelayLine {
    ring: VecDeque<Arc<TickOutput>>,
    ticks: usize,
    tx: watch::Sender<Arc<TickOutput>>,
}

impl DelayLine {
    /// A delay of `ticks`, starting at `first` (what spectators see until the ring fills).
    #[must_use]
    pub fn new(ticks: usize, first: Arc<TickOutput>) -> (Self, watch::Receiver<Arc<TickOutput>>) {
        let (tx, rx) = watch::channel(first);
        let line = Self {
            ring: VecDeque::with_capacity(ticks + 1),
            ticks: ticks.max(1),
            tx,
        };
        (line, rx)
    }

    /// Takes the publication just made; returns the one now `ticks` old (also published on
    /// the delayed channel), if the ring is full.
    pub fn push(&mut self, out: Arc<TickOutput>) -> Option<Arc<TickOutput>> {
        self.ring.push_back(out);
        if self.ring.len() <= self.ticks {
            return None;
        }
        self.drain_one()
    }

    /// The oldest held publication, published (the match is over: one per tick until none).
    pub fn drain_one(&mut self) -> Option<Arc<TickOutput>> {
        let due = self.ring.pop_front()?;
        self.tx.send_replace(due.clone());
        Some(due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skirmish_shared::rules::Params;
    use skirmish_shared::tick::Tick;
    use skirmish_shared::world::WorldState;

    fn out(tick: u32) -> Arc<TickOutput> {
        let world = WorldState {
            tick: Tick(tick),
            ..WorldState::default()
        };
        Arc::new(TickOutput::new(
            Arc::new(world),
            None,
            None,
            Params::new(30),
            Vec::new(),
            1,
        ))
    }

    #[test]
    fn spectators_see_each_tick_exactly_the_delay_later_then_the_rest_after_the_end() {
        let (mut line, rx) = DelayLine::new(3, out(0));
        for t in 1..=3 {
            assert!(line.push(out(t)).is_none(), "nothing is due for 3 ticks");
            assert_eq!(rx.borrow().tick(), Tick(0), "the start until then");
        }
        for t in 4..=10 {
            let due = line.push(out(t)).expect("due");
            assert_eq!(due.tick(), Tick(t - 3));
            assert_eq!(rx.borrow().tick(), Tick(t - 3));
        }
        let rest: Vec<u32> = std::iter::from_fn(|| line.drain_one())
            .map(|o| o.tick().0)
            .collect();
        assert_eq!(rest, [8, 9, 10]);
    }
}
