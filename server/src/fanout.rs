//! Fan-out of one tick's snapshot to every connection without per-client copies or queues.
//!
//! The match publishes an `Arc<TickOutput>` per tick on a `watch` channel. Each connection's
//! writer takes the latest value: when its last written snapshot is the previous tick it sends
//! the shared pre-encoded delta frame as is; when it is further behind (it skipped ticks, or
//! asked for a resync) it encodes against its own last written world, or sends the shared
//! full frame. Over TCP the last *written* snapshot is a valid baseline: no acks needed.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use skirmish_shared::codec;
use skirmish_shared::protocol::{self, ServerMessage, SnapshotMsg};
use skirmish_shared::rules::Params;
use skirmish_shared::tick::Tick;
use skirmish_shared::world::WorldState;

/// Baselines older than this many ticks are not used; the client gets a full snapshot.
pub const MAX_BASELINE_AGE: u32 = 64;

/// One tick's publication.
#[derive(Debug)]
pub struct TickOutput {
    pub world: Arc<WorldState>,
    /// Checksum to include this tick (about once per second).
    pub checksum: Option<u32>,
    /// `ServerMessage::Snapshot` against the previous tick, encoded once for everyone.
    pub delta_frame: Option<Bytes>,
    /// `ServerMessage::Snapshot` in full, encoded on first demand and shared.
    full_frame: OnceLock<Bytes>,
    pub params: Params,
}

impl TickOutput {
    /// Publishes `world`, encoding the shared delta against `prev` (the previous tick).
    #[must_use]
    pub fn new(
        world: Arc<WorldState>,
        prev: Option<&WorldState>,
        checksum: Option<u32>,
        params: Params,
    ) -> Self {
        let delta_frame = prev
            .filter(|p| world.tick.diff(p.tick) == 1)
            .map(|p| snapshot_frame(Some(p), &world, checksum, &params));
        Self {
            world,
            checksum,
            delta_frame,
            full_frame: OnceLock::new(),
            params,
        }
    }

    #[must_use]
    pub fn tick(&self) -> Tick {
        self.world.tick
    }

    /// The full snapshot frame (shared by everyone who needs one this tick).
    pub fn full_frame(&self) -> Bytes {
        self.full_frame
            .get_or_init(|| {
                snapshot_frame(None, &self.world, Some(self.world.checksum()), &self.params)
            })
            .clone()
    }

    /// The frame for a writer whose last written world is `last`, and whether it had to be
    /// encoded for this writer alone.
    pub fn frame_for(&self, last: Option<&WorldState>) -> (Bytes, bool) {
        match last {
            Some(l) if self.world.tick.diff(l.tick) == 1 => match &self.delta_frame {
                Some(f) => (f.clone(), false),
                None => (
                    snapshot_frame(Some(l), &self.world, self.checksum, &self.params),
                    true,
                ),
            },
            Some(l) if (1..=MAX_BASELINE_AGE as i32).contains(&self.world.tick.diff(l.tick)) => (
                snapshot_frame(Some(l), &self.world, self.checksum, &self.params),
                true,
            ),
            _ => (self.full_frame(), false),
        }
    }
}

/// Encodes a `ServerMessage::Snapshot` envelope.
#[must_use]
pub fn snapshot_frame(
    base: Option<&WorldState>,
    world: &WorldState,
    checksum: Option<u32>,
    params: &Params,
) -> Bytes {
    Bytes::from(protocol::encode(&ServerMessage::Snapshot(snapshot_msg(
        base, world, checksum, params,
    ))))
}

/// The snapshot message for `world` against `base`.
#[must_use]
pub fn snapshot_msg(
    base: Option<&WorldState>,
    world: &WorldState,
    checksum: Option<u32>,
    params: &Params,
) -> SnapshotMsg {
    SnapshotMsg {
        tick: world.tick,
        baseline_age: base.map_or(0, |b| world.tick.diff(b.tick) as u32),
        data: codec::encode(base, world, checksum, params),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skirmish_shared::receiver::{Received, SnapshotReceiver};
    use skirmish_shared::sim::Game;

    fn decode_frame(f: &Bytes) -> SnapshotMsg {
        match protocol::decode_server(f).expect("decodes") {
            ServerMessage::Snapshot(s) => s,
            other => panic!("not a snapshot: {other:?}"),
        }
    }

    #[test]
    fn up_to_date_writers_share_bytes_and_late_ones_get_a_valid_delta() {
        let params = Params::default();
        let mut g = Game::new(9, params);
        g.add_player("a".into());
        let mut worlds = vec![Arc::new(g.world.clone())];
        for _ in 0..5 {
            g.step(|_| None);
            worlds.push(Arc::new(g.world.clone()));
        }
        let out = TickOutput::new(worlds[5].clone(), Some(&worlds[4]), None, params);
        let (shared, own) = out.frame_for(Some(&worlds[4]));
        assert!(!own);
        assert_eq!(Some(&shared), out.delta_frame.as_ref());
        let (late, own) = out.frame_for(Some(&worlds[2]));
        assert!(own, "a writer 3 ticks behind gets its own delta");
        assert_eq!(decode_frame(&late).baseline_age, 3);
        let (full, own) = out.frame_for(None);
        assert!(!own);
        assert_eq!(decode_frame(&full).baseline_age, 0);

        // A client that saw worlds 0 and 2 decodes the late delta to the same world.
        let mut rx = SnapshotReceiver::new(params);
        let first = snapshot_msg(None, &worlds[2], None, &params);
        assert!(matches!(rx.receive(&first), Received::Applied { .. }));
        assert!(matches!(
            rx.receive(&decode_frame(&late)),
            Received::Applied { .. }
        ));
        assert_eq!(rx.latest(), Some(&*worlds[5]));
    }
}
