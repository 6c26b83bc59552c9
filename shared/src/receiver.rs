//! The client side of the snapshot stream, without I/O: keeps the recent decoded worlds as
//! baselines, decodes each snapshot against the one it names, verifies checksums, counts
//! desyncs and says when to ask the server for a full snapshot.

use std::collections::VecDeque;

use crate::codec::{self, CodecError};
use crate::protocol::SnapshotMsg;
use crate::rules::Params;
use crate::tick::Tick;
use crate::world::WorldState;

/// How many decoded worlds are kept as possible baselines: half a second at 30 Hz. Over UDP
/// the server codes against the newest world a client acknowledged, which is up to a round
/// trip old when the snapshot arrives; it never uses a baseline older than this many ticks.
pub const BASELINE_HISTORY: usize = 16;

/// What became of one snapshot message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Decoded; the newest world is now [`SnapshotReceiver::latest`]. `verified` says whether
    /// a checksum came along (and matched).
    Applied { tick: Tick, verified: bool },
    /// Older than what we have (cannot happen over one TCP stream; kept for lossy layers).
    Stale,
    /// Its baseline is gone, or the decoded world failed its checksum, or it did not decode:
    /// send `ClientMessage::RequestFull` when `request_full` is set (once per episode).
    NeedFull { request_full: bool, reason: String },
}

/// Tracks the snapshot stream of one connection.
#[derive(Debug)]
pub struct SnapshotReceiver {
    params: Params,
    history: VecDeque<WorldState>,
    awaiting_full: bool,
    /// Decoded worlds whose checksum did not match (must stay 0).
    pub desyncs: u64,
    /// Checksums that matched.
    pub checksums_ok: u64,
    /// Snapshots that failed to decode.
    pub decode_errors: u64,
}

impl SnapshotReceiver {
    #[must_use]
    pub fn new(params: Params) -> Self {
        Self {
            params,
            history: VecDeque::with_capacity(BASELINE_HISTORY),
            awaiting_full: false,
            desyncs: 0,
            checksums_ok: 0,
            decode_errors: 0,
        }
    }

    /// The newest decoded world.
    #[must_use]
    pub fn latest(&self) -> Option<&WorldState> {
        self.history.back()
    }

    /// The decoded world at `tick`, if still kept.
    #[must_use]
    pub fn at(&self, tick: Tick) -> Option<&WorldState> {
        self.history.iter().rev().find(|w| w.tick == tick)
    }

    /// Decodes and records one snapshot.
    pub fn receive(&mut self, msg: &SnapshotMsg) -> Received {
        if let Some(latest) = self.latest()
            && !msg.tick.is_after(latest.tick)
        {
            return Received::Stale;
        }
        let base = match msg.baseline() {
            None => None,
            Some(t) => match self.at(t) {
                Some(w) => Some(w),
                None => return self.need_full(format!("baseline tick {} is not kept", t.0)),
            },
        };
        let decoded = match codec::decode(base, msg.tick, &msg.data, &self.params) {
            Ok(d) => d,
            Err(e) => {
                self.decode_errors += 1;
                return self.need_full(decode_reason(&e));
            }
        };
        let verified = match decoded.verify() {
            Some(false) => {
                self.desyncs += 1;
                self.history.clear();
                return self.need_full(format!("checksum mismatch at tick {}", msg.tick.0));
            }
            Some(true) => {
                self.checksums_ok += 1;
                true
            }
            None => false,
        };
        if msg.baseline().is_none() {
            self.awaiting_full = false;
        }
        if self.history.len() == BASELINE_HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(decoded.world);
        Received::Applied {
            tick: msg.tick,
            verified,
        }
    }

    fn need_full(&mut self, reason: String) -> Received {
        let request_full = !self.awaiting_full;
        self.awaiting_full = true;
        Received::NeedFull {
            request_full,
            reason,
        }
    }
}

fn decode_reason(e: &CodecError) -> String {
    format!("snapshot does not decode: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::encode;
    use crate::sim::Game;

    fn msg(base: Option<&WorldState>, w: &WorldState, sum: Option<u32>, p: &Params) -> SnapshotMsg {
        SnapshotMsg {
            tick: w.tick,
            baseline_age: base.map_or(0, |b| w.tick.diff(b.tick) as u32),
            data: encode(base, w, sum, p),
            events: Vec::new(),
        }
    }

    #[test]
    fn follows_a_stream_and_flags_a_corrupted_world() {
        let p = Params::default();
        let mut g = Game::new(1, p);
        g.add_player("a".into());
        let w0 = g.world.clone();
        g.step(|_| None);
        let w1 = g.world.clone();
        g.step(|_| None);
        let w2 = g.world.clone();

        let mut rx = SnapshotReceiver::new(p);
        assert_eq!(
            rx.receive(&msg(None, &w0, Some(w0.checksum()), &p)),
            Received::Applied {
                tick: w0.tick,
                verified: true
            }
        );
        assert_eq!(
            rx.receive(&msg(Some(&w0), &w1, None, &p)),
            Received::Applied {
                tick: w1.tick,
                verified: false
            }
        );
        assert_eq!(rx.latest(), Some(&w1));

        // A delta against a world the server has but we were given wrong: checksum fails.
        let mut wrong = w1.clone();
        wrong.players[0].pos.x += 16;
        let bad = msg(Some(&wrong), &w2, Some(w2.checksum()), &p);
        let r = rx.receive(&bad);
        assert!(
            matches!(
                r,
                Received::NeedFull {
                    request_full: true,
                    ..
                }
            ),
            "{r:?}"
        );
        assert_eq!(rx.desyncs, 1);
        // Until the full snapshot arrives, we do not ask again.
        g.step(|_| None);
        let w3 = g.world.clone();
        assert!(matches!(
            rx.receive(&msg(Some(&w2), &w3, None, &p)),
            Received::NeedFull {
                request_full: false,
                ..
            }
        ));
        assert!(matches!(
            rx.receive(&msg(None, &w3, Some(w3.checksum()), &p)),
            Received::Applied { verified: true, .. }
        ));
        assert_eq!(rx.latest(), Some(&w3));
    }
}
