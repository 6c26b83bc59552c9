//! One match's recording, in its task: the roster changes, the inputs each step consumed, the
//! phases, checksums and game events go into a `replay::Recording`; every few seconds a block (keyframe
//! and ticks) is handed to the writer with `try_send`. When the writer's queue is full the
//! recording stops there and is marked incomplete: the tick never waits for the disk.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc::error::TrySendError, oneshot};
use tracing::warn;

use skirmish_shared::protocol::{GameEvent, InputFrame, PROTOCOL_VERSION, RankEntry};
use skirmish_shared::replay::{
    Block, End, FORMAT_VERSION, Header, RULES_VERSION, Recording, Roster,
};
use skirmish_shared::sim::Game;
use skirmish_shared::world::{Phase, PlayerId};

use super::store::{Key, Msg, ReplayStore};
use crate::stats::Stats;

/// Seconds of play between keyframes (a seek re-simulates at most this much).
pub const KEYFRAME_SECONDS: u32 = 5;
/// How long a finished match waits for its file to be synced.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a match tells its recorder about itself.
#[derive(Debug, Clone, Copy)]
pub struct MatchInfo {
    pub match_id: u32,
    pub seed: u64,
    pub created_unix_ms: u64,
    pub match_size: u32,
    pub view_radius: Option<u32>,
}

/// A match's recording (see the module docs).
#[derive(Debug)]
pub struct Recorder {
    store: Arc<ReplayStore>,
    key: Key,
    rec: Recording,
    /// A block could not be queued: nothing more is sent until the end says so.
    broken: bool,
    /// The match reached its running phase (a match that never did leaves no file).
    ran: bool,
    stats: Arc<Stats>,
}

impl Recorder {
    /// Starts recording `game` (the match as created); `None` when the writer's queue is
    /// full (the match plays unrecorded).
    pub fn start(
        store: Arc<ReplayStore>,
        info: MatchInfo,
        game: &Game,
        stats: Arc<Stats>,
    ) -> Option<Self> {
        let keyframe_every = KEYFRAME_SECONDS * game.params.tick_hz;
        let header = Header {
            format: FORMAT_VERSION,
            protocol: PROTOCOL_VERSION,
            rules: RULES_VERSION,
            match_id: info.match_id,
            seed: info.seed,
            tick_hz: game.params.tick_hz,
            max_rewind_ticks: game.params.max_rewind_ticks,
            created_unix_ms: info.created_unix_ms,
            keyframe_every,
            match_size: info.match_size,
            view_radius: info.view_radius,
        };
        if store.tx.try_send(Msg::Open(header)).is_err() {
            warn!(
                match_id = info.match_id,
                "replay writer busy: match not recorded"
            );
            stats.replays_incomplete.inc();
            return None;
        }
        Some(Self {
            store,
            key: Key {
                created_unix_ms: info.created_unix_ms,
                match_id: info.match_id,
            },
            rec: Recording::start(game, keyframe_every),
            broken: false,
            ran: false,
            stats,
        })
    }

    pub fn joined(&mut self, player: PlayerId, name: &str) {
        self.rec.roster(Roster::Join {
            player,
            name: name.to_string(),
        });
    }

    pub fn idled(&mut self, player: PlayerId) {
        self.rec.roster(Roster::Idle { player });
    }

    pub fn left(&mut self, player: PlayerId) {
        self.rec.roster(Roster::Leave { player });
    }

    /// The tick just played (see `Recording::tick`), with the game events logged with it.
    pub fn tick(
        &mut self,
        inputs: Vec<(PlayerId, InputFrame)>,
        game: &Game,
        checksum: Option<u32>,
        events: &[GameEvent],
    ) {
        let started = std::time::Instant::now();
        self.ran |= game.world.phase == Phase::Running;
        self.rec.events(events);
        let block = self.rec.tick(inputs, game, checksum);
        self.stats
            .replay_record_ns
            .add(started.elapsed().as_nanos() as u64);
        let Some(block) = block else {
            return;
        };
        if self.broken {
            return;
        }
        match self.store.tx.try_send(Msg::Block(self.key, block)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                warn!(
                    match_id = self.key.match_id,
                    "replay writer behind: recording stops here, marked incomplete"
                );
                self.broken = true;
                self.stats.replays_incomplete.inc();
            }
            Err(TrySendError::Closed(_)) => self.broken = true,
        }
    }

    /// The match is over: the last block with the ranking (if it finished), written and
    /// synced before this returns (at most `CLOSE_TIMEOUT`).
    pub async fn finish(self, game: &Game, ranking: Option<Vec<RankEntry>>, ended_early: bool) {
        let last = if self.broken {
            // The file stops at the gap; a keyframe of the end says how it ended.
            Block {
                keyframe: game.save(),
                ticks: Vec::new(),
                end: Some(End {
                    roster: Vec::new(),
                    ranking,
                    ended_early,
                    complete: false,
                }),
            }
        } else {
            self.rec.finish(ranking, ended_early, true)
        };
        let (done, synced) = oneshot::channel();
        let msg = Msg::Close {
            key: self.key,
            last,
            keep: self.ran,
            done,
        };
        let sent = tokio::time::timeout(CLOSE_TIMEOUT, async {
            self.store.tx.send(msg).await.ok()?;
            synced.await.ok()
        })
        .await;
        if !matches!(sent, Ok(Some(()))) {
            warn!(match_id = self.key.match_id, "replay not closed in time");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skirmish_shared::rules::Params;
    use skirmish_shared::workload::{Wander, step_recorded};

    #[tokio::test]
    async fn a_writer_that_falls_behind_never_stalls_the_match_and_the_file_says_so() {
        // Room for the header and one block; nobody writes.
        let (store, mut rx) = ReplayStore::detached(std::env::temp_dir(), 2);
        let stats = Arc::new(Stats::default());
        let mut w = Wander::new(4, 1, Params::new(30));
        w.game.world.phase = Phase::Running;
        let info = MatchInfo {
            match_id: 9,
            seed: 1,
            created_unix_ms: 1,
            match_size: 4,
            view_radius: None,
        };
        let mut rec =
            Recorder::start(Arc::new(store), info, &w.game, stats.clone()).expect("starts");
        for _ in 0..(3 * 150 + 10) {
            let used = step_recorded(&mut w);
            rec.tick(used, &w.game, None, &[]); // returns at once, queue full or not
        }
        assert!(rec.broken, "the second block did not fit");
        assert_eq!(stats.replays_incomplete.get(), 1);

        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(msg) = rx.recv().await {
                match msg {
                    Msg::Open(h) => got.push(format!("open {}", h.match_id)),
                    Msg::Block(_, b) => got.push(format!("block {}", b.keyframe.tick.0)),
                    Msg::Close {
                        last, keep, done, ..
                    } => {
                        let end = last.end.expect("an end");
                        got.push(format!(
                            "close at {} with {} ticks, complete {}, keep {keep}",
                            last.keyframe.tick.0,
                            last.ticks.len(),
                            end.complete
                        ));
                        let _ = done.send(());
                        break;
                    }
                }
            }
            got
        });
        rec.finish(&w.game, None, false).await;
        assert_eq!(
            reader.await.expect("reader"),
            [
                "open 9",
                "block 0",
                "close at 460 with 0 ticks, complete false, keep true"
            ]
        );
    }
}
