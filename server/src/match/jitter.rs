//! A player's input queue: the jitter buffer between its connection's reader and the match.
//!
//! The reader pushes each new input; the match consumes one per tick (an empty queue repeats
//! the last input). The queue is bounded and keeps the *newest* inputs: after an upload stall
//! a client sends its backlog at once, and the oldest of it is dropped and counted rather than
//! the client closed. Both sides run on the match's thread (the match polls the reader), so
//! the lock is never contended.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use skirmish_shared::protocol::InputFrame;

/// How long a player's queue must stay deeper than needed before its surplus is dropped. A
/// quarter second: a client whose inputs land right at the tick boundary gets a standing
/// second input from timer jitter alone, and each such queue adds a whole tick to its latency
/// until trimmed (with a one-second window, the median input-to-ack latency at 1,024 clients
/// was about 2 ms higher, measured interleaved with the ladder).
pub const TRIM_WINDOW: Duration = Duration::from_millis(250);

/// The bounded queue itself, shared by the reader (push) and the match (pop).
#[derive(Debug)]
pub struct InputRing {
    queue: Mutex<VecDeque<InputFrame>>,
    capacity: usize,
}

impl InputRing {
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            queue: Mutex::new(VecDeque::with_capacity(capacity)),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<InputFrame>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `input`; when full, drops the oldest and returns true.
    pub fn push(&self, input: InputFrame) -> bool {
        let mut q = self.lock();
        let dropped = q.len() >= self.capacity && q.pop_front().is_some();
        q.push_back(input);
        dropped
    }

    /// The oldest queued input.
    pub fn pop(&self) -> Option<InputFrame> {
        self.lock().pop_front()
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The match's view of a player's queue. One input is consumed per tick. When the queue never
/// ran dry for `TRIM_WINDOW` (its smallest depth at tick time stayed at two or more, so inputs
/// were left after every tick's input), the surplus is dropped, so a buffer that grew during a
/// burst of jitter or a stall's backlog shrinks back and the player's input latency returns to
/// at most one tick.
#[derive(Debug)]
pub struct InputQueue {
    pub ring: std::sync::Arc<InputRing>,
    min_depth: usize,
    ticks: u32,
}

impl InputQueue {
    #[must_use]
    pub fn new(ring: std::sync::Arc<InputRing>) -> Self {
        Self {
            ring,
            min_depth: usize::MAX,
            ticks: 0,
        }
    }

    /// Called once per tick before consuming; returns how many inputs were dropped.
    pub fn trim(&mut self, window_ticks: u32) -> usize {
        self.min_depth = self.min_depth.min(self.ring.len());
        self.ticks += 1;
        if self.ticks < window_ticks {
            return 0;
        }
        let surplus = self.min_depth.saturating_sub(1);
        self.ticks = 0;
        self.min_depth = usize::MAX;
        (0..surplus).filter(|_| self.ring.pop().is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn frame(n: u32) -> InputFrame {
        InputFrame::idle(n)
    }

    #[test]
    fn a_full_ring_keeps_the_newest_inputs() {
        let ring = InputRing::new(3);
        let dropped = (1..=5).filter(|n| ring.push(frame(*n))).count();
        assert_eq!(dropped, 2);
        let left: Vec<u32> = std::iter::from_fn(|| ring.pop()).map(|f| f.seq.0).collect();
        assert_eq!(left, [3, 4, 5]);
    }

    #[test]
    fn a_jitter_buffer_that_stays_deep_is_trimmed_and_a_shallow_one_is_not() {
        let ring = Arc::new(InputRing::new(8));
        let mut q = InputQueue::new(ring.clone());
        // Two inputs queued at every tick for a second: one is dropped at the end.
        ring.push(frame(1));
        let mut next = 2;
        let mut dropped = 0;
        for _ in 0..30 {
            ring.push(frame(next));
            next += 1;
            dropped += q.trim(30);
            ring.pop().expect("an input");
        }
        assert_eq!(dropped, 1);
        // One input per tick, consumed at once: never trimmed.
        for _ in 0..90 {
            ring.push(frame(next));
            next += 1;
            assert_eq!(q.trim(30), 0);
            ring.pop().expect("an input");
        }
    }

    #[test]
    fn a_stall_backlog_is_trimmed_back_to_one_tick_at_once() {
        let ring = Arc::new(InputRing::new(8));
        let mut q = InputQueue::new(ring.clone());
        for n in 1..=45 {
            ring.push(frame(n)); // the backlog after a stall: the newest 8 are kept
        }
        let mut dropped = 0;
        for next in 46..54 {
            ring.push(frame(next));
            dropped += q.trim(8);
            ring.pop().expect("an input");
        }
        assert_eq!(dropped, 7, "the standing surplus goes in one trim");
        assert!(ring.len() <= 1);
    }
}
