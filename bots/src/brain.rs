//! One bot's mind without I/O: what it makes of each snapshot (decode against its baseline,
//! input-to-ack latency, arrival jitter, gaps, the own-player desync check with the shared
//! rules) and the input it sends each tick. The WebSocket bot (`bot`, a task per bot) and the
//! datagram driver (`driver`, one thread polling many bots) both drive it, so the figures in
//! the report mean the same on both transports.
//!
//! An aggressive bot plays like the game client: it predicts its own player and its shots
//! (`skirmish_shared::netcode`), aims from where it will be at the target where it sees it
//! (the latest world), and tells the server which tick that was (`view_tick`, for lag
//! compensation); it counts its shots, its tags and its shot corrections.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use skirmish_shared::netcode::{Prediction, ShotPrediction, StepCheck};
use skirmish_shared::protocol::{ClientMessage, EventKind, SnapshotMsg};
use skirmish_shared::receiver::{Received, SnapshotReceiver};
use skirmish_shared::rules::Params;
use skirmish_shared::tick::{Seq, Tick};
use skirmish_shared::world::{PlayerId, PlayerState, WorldState};

use crate::behavior::{Behavior, Steering, units};
use crate::stats::SwarmStats;

/// Inputs remembered for latency (about 4 s at 60 Hz).
const INPUT_HISTORY: usize = 256;
/// Samples a bot buffers before taking the histogram lock.
const SAMPLE_BATCH: usize = 64;

/// One bot's state (see the module docs).
#[derive(Debug)]
pub struct Brain {
    me: PlayerId,
    params: Params,
    period: Duration,
    worlds: SnapshotReceiver,
    /// Re-simulates our player's steps (the inputs sent, the desyncs found).
    check: StepCheck,
    /// Inputs not yet acknowledged, with their send time.
    pending: VecDeque<(Seq, Instant)>,
    steering: Steering,
    seq: Seq,
    my_pos: Option<(f32, f32)>,
    target: Option<(f32, f32)>,
    /// The snapshot stream broke: ask for a full snapshot before the next input.
    need_full: bool,
    resyncing: bool,
    last_arrival: Option<Instant>,
    applied: Option<Tick>,
    prev: Option<(Tick, PlayerState)>,
    counted: (u64, u64),
    latency: Vec<u64>,
    jitter: Vec<u64>,
    gaps: Vec<u64>,
    /// Decodes and checks snapshots; otherwise only counts and times their arrival.
    verify: bool,
    /// An aggressive bot's own player and shots, predicted.
    aim: Option<(Prediction, ShotPrediction)>,
    /// The shots cancelled, moved, unpredicted and vanished already counted.
    shots_counted: [u64; 4],
}

impl Brain {
    /// A bot that joined as `me` and got `first` with its welcome.
    #[must_use]
    pub fn new(
        me: PlayerId,
        tick_hz: u32,
        first: &SnapshotMsg,
        behavior: Behavior,
        seed: u64,
        verify: bool,
    ) -> Self {
        let params = Params::new(tick_hz);
        let mut worlds = SnapshotReceiver::new(params);
        worlds.receive(first);
        let aim = (behavior == Behavior::Aggressive).then(|| {
            let mut p = Prediction::new(params, me);
            if let Some(w) = worlds.latest() {
                p.on_world(w);
            }
            (p, ShotPrediction::new(params, me))
        });
        Self {
            me,
            params,
            period: Duration::from_nanos(1_000_000_000 / u64::from(tick_hz.max(1))),
            worlds,
            check: StepCheck::default(),
            pending: VecDeque::new(),
            steering: Steering::new(behavior, seed),
            seq: Seq(0),
            my_pos: None,
            target: None,
            need_full: false,
            resyncing: false,
            last_arrival: None,
            applied: None,
            prev: None,
            counted: (0, 0),
            latency: Vec::with_capacity(SAMPLE_BATCH),
            jitter: Vec::with_capacity(SAMPLE_BATCH),
            gaps: Vec::with_capacity(SAMPLE_BATCH),
            verify,
            aim,
            shots_counted: [0; 4],
        }
    }

    /// One tick's period.
    #[must_use]
    pub fn period(&self) -> Duration {
        self.period
    }

    /// A snapshot arrived at `now`.
    pub fn on_snapshot(&mut self, snap: &SnapshotMsg, now: Instant, stats: &SwarmStats) {
        stats.snapshots.fetch_add(1, Ordering::Relaxed);
        let measuring = stats.measuring();
        if let Some(t) = self.last_arrival
            && measuring
        {
            let d = now.duration_since(t).as_micros() as i64 - self.period.as_micros() as i64;
            self.jitter.push(d.unsigned_abs());
        }
        self.last_arrival = Some(now);
        if !self.verify {
            return;
        }
        let tags = snap
            .events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Tagged { shooter, .. } if shooter == self.me))
            .count();
        if measuring {
            stats.hits.fetch_add(tags as u64, Ordering::Relaxed);
        }
        if let Some((_, shots)) = &mut self.aim {
            for _ in 0..tags {
                shots.on_tagged();
            }
        }
        let full = snap.baseline().is_none();
        match self.worlds.receive(snap) {
            Received::Applied { tick, .. } => {
                if let Some(t) = self.applied
                    && measuring
                {
                    self.gaps.push(tick.diff(t).max(1) as u64);
                }
                self.applied = Some(tick);
                if self.resyncing && full {
                    self.resyncing = false;
                    stats.resyncs.fetch_add(1, Ordering::Relaxed);
                }
            }
            Received::Stale => return,
            Received::NeedFull { request_full, .. } => {
                // A checksum mismatch, a lost baseline or an undecodable snapshot: counted
                // apart, then a full snapshot is requested.
                let (desyncs, errors) = (self.worlds.desyncs, self.worlds.decode_errors);
                stats
                    .checksum_desyncs
                    .fetch_add(desyncs - self.counted.0, Ordering::Relaxed);
                stats
                    .decode_errors
                    .fetch_add(errors - self.counted.1, Ordering::Relaxed);
                self.counted = (desyncs, errors);
                if request_full {
                    self.resyncing = true;
                    self.need_full = true;
                }
                self.prev = None;
                return;
            }
        }
        let Some(world) = self.worlds.latest() else {
            return;
        };
        let Some(mine) = world.player(self.me) else {
            return;
        };
        // Latency: every pending input this snapshot acknowledges.
        while let Some(&(seq, sent)) = self.pending.front() {
            if seq.is_after(mine.last_seq) {
                break;
            }
            self.pending.pop_front();
            if measuring {
                self.latency
                    .push(now.duration_since(sent).as_micros() as u64);
            }
        }
        self.my_pos = Some(units(mine.pos));
        self.target = nearest_other(world, mine);
        if let Some((prediction, shots)) = &mut self.aim {
            prediction.on_world(world);
            shots.on_world(world);
            // Aim from where the next input will find us.
            if let Some(p) = prediction.predicted() {
                self.my_pos = Some(units(p.pos));
            }
            let now = [
                shots.cancelled,
                shots.moved,
                shots.unpredicted,
                shots.vanished,
            ];
            if measuring {
                let to = [
                    &stats.shots_cancelled,
                    &stats.shots_moved,
                    &stats.shots_unpredicted,
                    &stats.shots_vanished,
                ];
                for ((counter, n), before) in to.iter().zip(now).zip(self.shots_counted) {
                    counter.fetch_add(n - before, Ordering::Relaxed);
                }
            }
            self.shots_counted = now;
        }
        if let Some((t, before)) = &self.prev
            && world.tick.diff(*t) == 1
            && let Some(same) = self.check.check(before, mine, &self.params)
        {
            stats.predictions_checked.fetch_add(1, Ordering::Relaxed);
            if !same {
                stats.desyncs.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.prev = Some((world.tick, *mine));
        if self.latency.len() >= SAMPLE_BATCH {
            SwarmStats::record(&stats.latency_us, &mut self.latency);
        }
        if self.jitter.len() >= SAMPLE_BATCH {
            SwarmStats::record(&stats.jitter_us, &mut self.jitter);
        }
        if self.gaps.len() >= SAMPLE_BATCH {
            SwarmStats::record(&stats.gap_ticks, &mut self.gaps);
        }
    }

    /// What to send this tick, in order: a resync request if the stream broke, then the
    /// tick's input (none for an idle bot).
    pub fn tick(&mut self, now: Instant, stats: &SwarmStats) -> Vec<ClientMessage> {
        let mut out = Vec::with_capacity(2);
        if std::mem::take(&mut self.need_full) {
            out.push(ClientMessage::RequestFull);
            stats.resync_requests.fetch_add(1, Ordering::Relaxed);
        }
        self.seq = self.seq.next();
        if let Some(mut frame) = self.steering.next(self.seq, self.my_pos, self.target) {
            if let Some((prediction, shots)) = &mut self.aim {
                // What the bot sees is the latest world (it does not interpolate).
                frame.view_tick = self.worlds.latest().map_or(Tick(0), |w| w.tick);
                let shot = prediction.apply_local(frame);
                if shot.is_some() && stats.measuring() {
                    stats.shots.fetch_add(1, Ordering::Relaxed);
                }
                shots.on_input(frame.seq, shot);
                if let Some(p) = prediction.predicted() {
                    self.my_pos = Some(units(p.pos));
                }
            }
            self.check.sent(frame);
            if self.pending.len() == INPUT_HISTORY {
                self.pending.pop_front();
            }
            self.pending.push_back((self.seq, now));
            out.push(ClientMessage::Input {
                frames: vec![frame],
            });
        }
        out
    }

    /// Hands the buffered samples to the swarm's histograms.
    pub fn flush(&mut self, stats: &SwarmStats) {
        SwarmStats::record(&stats.latency_us, &mut self.latency);
        SwarmStats::record(&stats.jitter_us, &mut self.jitter);
        SwarmStats::record(&stats.gap_ticks, &mut self.gaps);
    }
}

fn nearest_other(world: &WorldState, me: &PlayerState) -> Option<(f32, f32)> {
    world
        .players
        .iter()
        .filter(|p| p.id != me.id)
        .min_by_key(|p| p.pos.dist_sq(me.pos))
        .map(|p| units(p.pos))
}
