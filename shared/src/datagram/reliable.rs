//! The small reliable, ordered channel that rides on the datagram transport's packets, for
//! what must arrive once and in order (game events, chat, `MatchEnded`): each message has a
//! consecutive id; every packet carries the unacknowledged messages that fit (oldest first)
//! and the receiver's cumulative acknowledgement; a message is resent until acknowledged;
//! the receiver delivers in id order and drops duplicates. Sans-IO: the caller puts
//! [`Outgoing`] into its packets and feeds back what arrives.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

/// Messages of this channel in one packet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outgoing {
    /// Every message with an id below this was received (the peer's cumulative ack).
    pub ack: u64,
    /// `(id, bytes)`, consecutive ids, oldest first.
    pub messages: Vec<(u64, Vec<u8>)>,
}

/// Why the channel gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReliableError {
    #[error("more than {0} messages unacknowledged: the peer is gone or flooded")]
    Backlog(usize),
}

/// One end of the channel: sends its own messages, receives the peer's.
#[derive(Debug, Clone)]
pub struct Reliable {
    /// Sent and not yet acknowledged, oldest first: (id, bytes).
    unacked: VecDeque<(u64, Vec<u8>)>,
    next_id: u64,
    /// The peer's messages: the next id to deliver, and those that came early.
    expect: u64,
    early: BTreeMap<u64, Vec<u8>>,
    max_backlog: usize,
}

impl Reliable {
    /// A channel that fails beyond `max_backlog` unacknowledged messages (bounded memory).
    #[must_use]
    pub fn new(max_backlog: usize) -> Self {
        Self {
            unacked: VecDeque::new(),
            next_id: 0,
            expect: 0,
            early: BTreeMap::new(),
            max_backlog,
        }
    }

    /// Queues a message; it goes out with the next packets until acknowledged.
    pub fn send(&mut self, bytes: Vec<u8>) -> Result<(), ReliableError> {
        if self.unacked.len() >= self.max_backlog {
            return Err(ReliableError::Backlog(self.max_backlog));
        }
        self.unacked.push_back((self.next_id, bytes));
        self.next_id += 1;
        Ok(())
    }

    /// What to put in the next packet: the ack, and unacknowledged messages up to `budget`
    /// bytes (at least the oldest one, so the channel always moves).
    #[must_use]
    pub fn outgoing(&self, budget: usize) -> Outgoing {
        let mut used = 0;
        let mut messages = Vec::new();
        for (id, bytes) in &self.unacked {
            if !messages.is_empty() && used + bytes.len() > budget {
                break;
            }
            used += bytes.len();
            messages.push((*id, bytes.clone()));
        }
        Outgoing {
            ack: self.expect,
            messages,
        }
    }

    /// Takes what arrived in a packet: frees what the peer acknowledged, and returns the
    /// peer's messages that are now deliverable, in order, each once.
    pub fn receive(&mut self, incoming: Outgoing) -> Vec<Vec<u8>> {
        while self
            .unacked
            .front()
            .is_some_and(|(id, _)| *id < incoming.ack)
        {
            self.unacked.pop_front();
        }
        for (id, bytes) in incoming.messages {
            // Only ids inside the window we could ever deliver (bounded memory).
            if id >= self.expect && id < self.expect + self.max_backlog as u64 {
                self.early.entry(id).or_insert(bytes);
            }
        }
        let mut out = Vec::new();
        while let Some(bytes) = self.early.remove(&self.expect) {
            out.push(bytes);
            self.expect += 1;
        }
        out
    }

    /// Messages sent and not yet acknowledged.
    #[must_use]
    pub fn unacknowledged(&self) -> usize {
        self.unacked.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// A lossy link: each packet is lost with `loss` (per mille), duplicated with `dup`, and
    /// delayed by 0..=`jitter` steps (so packets reorder).
    fn run_link(loss: u64, dup: u64, jitter: u64, seed: u64) {
        let mut rng = Rng::new(seed);
        let (mut a, mut b) = (Reliable::new(1024), Reliable::new(1024));
        let sent: Vec<Vec<u8>> = (0..300u32).map(|i| i.to_le_bytes().to_vec()).collect();
        let mut got = Vec::new();
        // In flight: (arrival step, to_b, packet).
        let mut flight: Vec<(u64, bool, Outgoing)> = Vec::new();
        let mut next = sent.iter();
        for step in 0..5_000u64 {
            // a sends up to two new messages per step; both ends send a packet each step.
            for _ in 0..2 {
                if let Some(m) = next.next() {
                    a.send(m.clone()).expect("room");
                }
            }
            for (to_b, out) in [(true, a.outgoing(64)), (false, b.outgoing(64))] {
                if rng.next_u64() % 1000 < loss {
                    continue;
                }
                let copies = if rng.next_u64() % 1000 < dup { 2 } else { 1 };
                for _ in 0..copies {
                    let delay = rng.next_u64() % (jitter + 1);
                    flight.push((step + 1 + delay, to_b, out.clone()));
                }
            }
            let (due, later): (Vec<_>, Vec<_>) =
                flight.into_iter().partition(|(at, _, _)| *at <= step);
            flight = later;
            for (_, to_b, p) in due {
                if to_b {
                    got.extend(b.receive(p));
                } else {
                    let _ = a.receive(p);
                }
            }
            if got.len() == sent.len() && a.unacknowledged() == 0 {
                break;
            }
        }
        assert_eq!(
            got, sent,
            "every message once, in order (loss {loss}, dup {dup})"
        );
        assert_eq!(a.unacknowledged(), 0, "all acknowledged");
    }

    #[test]
    fn a_clean_link_delivers_in_order() {
        run_link(0, 0, 0, 1);
    }

    #[test]
    fn loss_duplication_and_reordering_deliver_every_message_once_in_order() {
        for seed in 1..=5 {
            run_link(200, 100, 4, seed); // 20 % loss, 10 % duplicated, up to 4 steps late
        }
    }

    #[test]
    fn the_backlog_is_bounded() {
        let mut r = Reliable::new(3);
        for _ in 0..3 {
            r.send(vec![1]).expect("room");
        }
        assert_eq!(r.send(vec![1]), Err(ReliableError::Backlog(3)));
        let out = r.outgoing(0);
        assert_eq!(out.messages.len(), 1, "the oldest goes even over budget");
    }
}
