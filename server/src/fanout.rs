//! Fan-out of one tick's snapshot to every connection without per-client copies or queues.
//!
//! The match publishes an `Arc<TickOutput>` per tick on a `watch` channel. Each connection's
//! writer takes the latest value: when its last written snapshot is the previous tick it sends
//! the shared pre-encoded delta frame as is; when it is further behind (it skipped ticks, or
//! asked for a resync) it encodes against its own last written world, or sends the shared
//! full frame. Over TCP the last *written* snapshot is a valid baseline: no acks needed.
//! Frames are WebSocket frames ready for the socket (header included, see `wire`).
//!
//! A player's connection carries a [`ClientView`] (interest management, issue 15): while the
//! match's world is what it sees (the whole arena, and the shared delta within its budget)
//! it shares the bytes like everyone else; otherwise its world is its own view
//! (`interest::View`), coded against the view it was sent last.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use bytes::Bytes;
use skirmish_shared::codec::{self, SharedDelta};
use skirmish_shared::protocol::{self, GameEvent, RankEntry};
use skirmish_shared::rules::Params;
use skirmish_shared::tick::Tick;
use skirmish_shared::world::{PlayerId, WorldState};

use crate::events::EventLog;
use crate::interest::view::{Frame, TickParts};
use crate::interest::{Selection, Settings, View};
use crate::stats::Stats;
use crate::wire;

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
    /// The snapshot data in `delta_frame`, with where each player's entry sits in it (what
    /// a client's budget is held against, what the views copy from, and the UDP players'
    /// encoding against the tick before).
    shared: Option<Arc<SharedDelta>>,
    /// What clients see (view radius, budget).
    pub interest: Settings,
    /// What every view of this tick shares (computed on first demand).
    view_parts: OnceLock<TickParts>,
    /// `ServerMessage::Snapshot` in full, encoded on first demand and shared.
    full_frame: OnceLock<Bytes>,
    pub params: Params,
    /// This tick's events: ids `events_from..events_to` (in both shared frames).
    pub events: Vec<GameEvent>,
    /// `events`, encoded once for every frame that carries exactly them.
    events_bytes: Vec<u8>,
    pub events_from: u64,
    pub events_to: u64,
    /// Set on the last publication of a match: the final ranking.
    pub ended: Option<Vec<RankEntry>>,
}

/// What a writer should send for one publication.
#[derive(Debug)]
pub struct WriterFrame {
    pub bytes: Bytes,
    /// Encoded for this writer alone (it was behind, or lost its baseline).
    pub own: bool,
    /// The writer's next event id after sending it.
    pub next_event: u64,
}

impl TickOutput {
    /// Publishes `world` with this tick's `events` (ids `events_from..`), encoding the shared
    /// delta against `prev` (the previous tick).
    #[must_use]
    pub fn new(
        world: Arc<WorldState>,
        prev: Option<&WorldState>,
        checksum: Option<u32>,
        params: Params,
        events: Vec<GameEvent>,
        events_from: u64,
    ) -> Self {
        let events_to = events_from + events.len() as u64;
        let shared = prev
            .filter(|p| world.tick.diff(p.tick) == 1)
            .map(|p| Arc::new(SharedDelta::encode(Some(p), &world, checksum, &params)));
        let events_bytes = protocol::encode(&events);
        let delta_frame = shared
            .as_ref()
            .map(|d| frame_of(world.tick, 1, &d.bytes, &events_bytes));
        Self {
            world,
            checksum,
            delta_frame,
            shared,
            interest: Settings::default(),
            view_parts: OnceLock::new(),
            full_frame: OnceLock::new(),
            params,
            events,
            events_bytes,
            events_from,
            events_to,
            ended: None,
        }
    }

    #[must_use]
    pub fn tick(&self) -> Tick {
        self.world.tick
    }

    /// The full snapshot frame with this tick's events (shared by everyone who needs one).
    pub fn full_frame(&self) -> Bytes {
        self.full_frame
            .get_or_init(|| {
                let data =
                    codec::encode(None, &self.world, Some(self.world.checksum()), &self.params);
                frame_of(self.tick(), 0, &data, &self.events_bytes)
            })
            .clone()
    }

    /// The frame for a writer whose last written world is `last` and whose next event id is
    /// `next_event`. Up to date, it gets the shared bytes; behind, its own delta (or a full
    /// snapshot) carrying every event it has not had yet, from `log`.
    pub fn frame_for(
        &self,
        last: Option<&WorldState>,
        next_event: u64,
        log: &Mutex<EventLog>,
    ) -> WriterFrame {
        let gap = last.map(|l| self.world.tick.diff(l.tick));
        let events_current = next_event == self.events_from;
        if events_current {
            match (gap, &self.delta_frame) {
                (Some(1), Some(f)) => {
                    return WriterFrame {
                        bytes: f.clone(),
                        own: false,
                        next_event: self.events_to,
                    };
                }
                (None, _) => {
                    return WriterFrame {
                        bytes: self.full_frame(),
                        own: false,
                        next_event: self.events_to,
                    };
                }
                _ => {}
            }
        }
        let (events, lost) = self.events_since(next_event, log);
        let base = usable_baseline(last, self.tick(), lost);
        let checksum = if base.is_some() {
            self.checksum
        } else {
            Some(self.world.checksum())
        };
        let data = codec::encode(base, &self.world, checksum, &self.params);
        WriterFrame {
            bytes: frame_of(self.tick(), baseline_age(base, self.tick()), &data, &events),
            own: true,
            next_event: self.events_to,
        }
    }
}

impl TickOutput {
    /// The events a writer whose next event id is `next_event` is owed, encoded, and
    /// whether some were lost (it fell too far behind the log). Up to date, the tick's own
    /// encoding (no lock, no copy of the events).
    fn events_since(
        &self,
        next_event: u64,
        log: &Mutex<EventLog>,
    ) -> (std::borrow::Cow<'_, [u8]>, bool) {
        if next_event == self.events_from {
            (std::borrow::Cow::Borrowed(&self.events_bytes), false)
        } else {
            let (events, lost) = log
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .range(next_event, self.events_to);
            (std::borrow::Cow::Owned(protocol::encode(&events)), lost)
        }
    }

    /// A client's view of this tick (`sel`) coded against `base`, copying the entries it
    /// can from `shared` (a delta of the match's world of this tick against `base`'s tick).
    #[must_use]
    pub fn encode_view(
        &self,
        base: Option<&WorldState>,
        sel: &Selection,
        checksum: Option<u32>,
        shared: Option<&SharedDelta>,
    ) -> Vec<u8> {
        match shared {
            Some(shared) => {
                codec::encode_view(base, &sel.world, checksum, &self.params, shared, &sel.hints)
            }
            None => codec::encode(base, &sel.world, checksum, &self.params),
        }
    }

    /// What every view of this tick is chosen from (see `interest::view::Frame`).
    pub fn frame(&self) -> Frame<'_> {
        self.view_parts
            .get_or_init(|| TickParts::new(&self.world, self.interest.radius, &self.params))
            .frame(&self.world, self.shared.as_deref(), &self.params)
    }

    /// Whether a client seeing through `view` can take the shared bytes (or `full`): it
    /// holds the match's world, sees the whole arena, and the delta fits its budget.
    fn shared_fits(&self, view: &ClientView) -> bool {
        view.synced
            && self
                .shared
                .as_ref()
                .is_some_and(|d| self.shareable(d.bytes.len()))
    }

    /// The match's delta against the tick before, if this tick has one.
    #[must_use]
    pub fn shared_delta(&self) -> Option<&Arc<SharedDelta>> {
        self.shared.as_ref()
    }

    /// Whether snapshot data of `bytes` shared by everyone may go to a client that holds
    /// the match's world (the whole arena is in view and it fits the budget).
    #[must_use]
    pub fn shareable(&self, bytes: usize) -> bool {
        self.interest.whole_arena() && bytes <= self.interest.budget
    }

    /// The client's own view at this tick (see `interest::view`), coded against the view it
    /// holds (`last`), with the events it is owed.
    pub fn view_frame(
        &self,
        view: &mut ClientView,
        last: Option<&WorldState>,
        next_event: u64,
        log: &Mutex<EventLog>,
        stats: &Stats,
    ) -> (WriterFrame, Arc<WorldState>) {
        let (events, lost) = self.events_since(next_event, log);
        let base = usable_baseline(last, self.tick(), lost);
        let sel = view.select(base, self, stats);
        let checksum = (base.is_none() || self.checksum.is_some()).then(|| sel.world.checksum());
        let data = self.encode_view(base, &sel, checksum, self.shared.as_deref());
        let bytes = frame_of(
            self.world.tick,
            baseline_age(base, self.tick()),
            &data,
            &events,
        );
        let frame = WriterFrame {
            bytes,
            own: true,
            next_event: self.events_to,
        };
        (frame, Arc::new(sel.world))
    }
}

/// `last` if a client can decode a delta against it at `tick` (recent enough, no events lost).
fn usable_baseline(last: Option<&WorldState>, tick: Tick, lost: bool) -> Option<&WorldState> {
    last.filter(|l| !lost && (1..=MAX_BASELINE_AGE as i32).contains(&tick.diff(l.tick)))
}

/// What one client sees (interest management): whose view it follows, its own player, and
/// whether the world it holds is the match's (then it can share the match's bytes).
#[derive(Debug)]
pub struct ClientView {
    /// The player whose surroundings it sees (its own, or the one a spectator follows).
    pub follow: PlayerId,
    /// Its own player, always exact (`None` for a spectator).
    pub me: Option<PlayerId>,
    view: View,
    synced: bool,
}

impl ClientView {
    #[must_use]
    pub fn new(follow: PlayerId, me: Option<PlayerId>) -> Self {
        Self {
            follow,
            me,
            view: View::default(),
            synced: false,
        }
    }

    /// The client's view at `out`, given the view it holds (`base`); counted in `stats`.
    pub fn select(
        &mut self,
        base: Option<&WorldState>,
        out: &TickOutput,
        stats: &Stats,
    ) -> Selection {
        self.select_in(base, &out.frame(), out, stats)
    }

    /// [`Self::select`] from `frame` (the tick's, perhaps with a shared delta against an
    /// older baseline).
    pub fn select_in(
        &mut self,
        base: Option<&WorldState>,
        frame: &Frame<'_>,
        out: &TickOutput,
        stats: &Stats,
    ) -> Selection {
        let sel = self.choose(base, frame, out, &out.interest);
        stats.view_snapshots.inc();
        stats.view_players_held.add(sel.held as u64);
        stats.view_players_caught_up.add(sel.caught_up as u64);
        stats
            .view_longest_wait_ticks
            .raise(u64::from(sel.longest_wait));
        sel
    }

    /// The welcome's snapshot: everything in view, in full, with no budget (it is the one
    /// message that starts the stream).
    pub fn welcome(&mut self, out: &TickOutput) -> WorldState {
        let settings = Settings {
            budget: usize::MAX / 8,
            ..out.interest
        };
        self.choose(None, &out.frame(), out, &settings).world
    }

    /// The view around the followed player under `settings`.
    fn choose(
        &mut self,
        base: Option<&WorldState>,
        frame: &Frame<'_>,
        out: &TickOutput,
        settings: &Settings,
    ) -> Selection {
        let center = out.world.player(self.follow).map(|p| p.pos);
        let sel = self.view.select(base, frame, center, self.me, settings);
        self.synced = sel.complete;
        sel
    }
}

/// Where one connection is in its match's stream: the world it was last sent (its baseline)
/// and the id of the next event it is owed.
#[derive(Debug, Default)]
pub struct Cursor {
    pub last: Option<Arc<WorldState>>,
    pub next_event: u64,
    /// A player's (or a following spectator's) view; `None`: the whole match, always.
    pub view: Option<Box<ClientView>>,
}

impl Cursor {
    /// Starts at `out` (its world was sent in a welcome).
    #[must_use]
    pub fn at(out: &TickOutput) -> Self {
        Self {
            last: Some(out.world.clone()),
            next_event: out.events_to,
            view: None,
        }
    }

    /// Starts at `out` seeing through `view`: the welcome's world (the view at `out`, which
    /// the caller sends) becomes the baseline.
    pub fn welcome(out: &TickOutput, mut view: ClientView) -> (Self, Arc<WorldState>) {
        let world = Arc::new(view.welcome(out));
        let cursor = Self {
            last: Some(world.clone()),
            next_event: out.events_to,
            view: Some(Box::new(view)),
        };
        (cursor, world)
    }

    /// The frame that brings this connection from where it is to `out`, moving the cursor
    /// there; `None` when it has `out` already. Counts skipped ticks and own encodings.
    pub fn advance(
        &mut self,
        out: &TickOutput,
        log: &Mutex<EventLog>,
        stats: &Stats,
    ) -> Option<Bytes> {
        if let Some(l) = &self.last {
            let gap = out.tick().diff(l.tick);
            if gap <= 0 {
                return None;
            }
            if gap > 1 {
                stats.snapshots_skipped.add(gap as u64 - 1);
            }
        }
        let (frame, world) = match &mut self.view {
            Some(view) if !out.shared_fits(view) => {
                out.view_frame(view, self.last.as_deref(), self.next_event, log, stats)
            }
            _ => (
                out.frame_for(self.last.as_deref(), self.next_event, log),
                out.world.clone(),
            ),
        };
        if frame.own {
            stats.snapshots_encoded_per_client.inc();
        }
        self.last = Some(world);
        self.next_event = frame.next_event;
        Some(frame.bytes)
    }
}

/// The WebSocket frame of a `ServerMessage::Snapshot` of `tick` (`baseline_age` 0: in full)
/// with snapshot `data` and the `events` it carries, already encoded: written in one buffer
/// from its parts (`protocol::snapshot_head`), as every client with its own view gets one
/// every tick.
fn frame_of(tick: Tick, baseline_age: u32, data: &[u8], events: &[u8]) -> Bytes {
    let mut head = [0; protocol::SNAPSHOT_HEAD_MAX];
    let n = protocol::snapshot_head(tick, baseline_age, data.len(), &mut head);
    wire::binary_parts(&[&head[..n], data, events])
}

/// How many ticks before `tick` the baseline is (0: none, a full snapshot).
fn baseline_age(base: Option<&WorldState>, tick: Tick) -> u32 {
    base.map_or(0, |b| tick.diff(b.tick) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use skirmish_shared::protocol::{EventKind, ServerMessage, SnapshotMsg};
    use skirmish_shared::receiver::{Received, SnapshotReceiver};
    use skirmish_shared::sim::Game;
    use skirmish_shared::world::PlayerId;

    fn decode_frame(f: &Bytes) -> SnapshotMsg {
        let payload = wire::payload(f).expect("one whole frame");
        match protocol::decode_server(payload).expect("decodes") {
            ServerMessage::Snapshot(s) => s,
            other => panic!("not a snapshot: {other:?}"),
        }
    }

    #[test]
    fn up_to_date_writers_share_bytes_and_late_ones_get_a_valid_delta_with_all_events() {
        let params = Params::default();
        let mut g = Game::new(9, params);
        g.add_player("a".into());
        let log = Mutex::new(EventLog::default());
        let mut worlds = vec![Arc::new(g.world.clone())];
        for t in 1..=5 {
            g.step(|_| None);
            log.lock().expect("lock").push(
                g.world.tick,
                EventKind::Left {
                    player: PlayerId(t),
                },
            );
            worlds.push(Arc::new(g.world.clone()));
        }
        // Tick 5 carried event id 5.
        let ev5 = log.lock().expect("lock").range(5, 6).0;
        let out = TickOutput::new(worlds[5].clone(), Some(&worlds[4]), None, params, ev5, 5);
        let f = out.frame_for(Some(&worlds[4]), 5, &log);
        assert!(!f.own);
        assert_eq!(Some(&f.bytes), out.delta_frame.as_ref());
        assert_eq!(f.next_event, 6);
        let late = out.frame_for(Some(&worlds[2]), 3, &log);
        assert!(late.own, "a writer 3 ticks behind gets its own delta");
        let late_msg = decode_frame(&late.bytes);
        assert_eq!(late_msg.baseline_age, 3);
        assert_eq!(
            late_msg.events.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![3, 4, 5],
            "every missed event, in order"
        );
        let full = out.frame_for(None, 6, &log);
        assert_eq!(decode_frame(&full.bytes).baseline_age, 0);

        // A client that saw world 2 decodes the late delta to the same world.
        let mut rx = SnapshotReceiver::new(params);
        let first = SnapshotMsg::encode(None, &worlds[2], None, &params, Vec::new());
        assert!(matches!(rx.receive(&first), Received::Applied { .. }));
        assert!(matches!(rx.receive(&late_msg), Received::Applied { .. }));
        assert_eq!(rx.latest(), Some(&*worlds[5]));
    }
}
