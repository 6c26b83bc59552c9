//! Sans-IO netcode: what the client does with inputs and snapshots, without a window, a
//! socket or a clock (times are passed in).
//!
//! - [`Prediction`]: the own player is simulated locally with the shared rules as soon as an
//!   input is made; inputs are kept until the server acknowledges them and replayed on top of
//!   every authoritative state (reconciliation). The quantized rules are identical on both
//!   ends, so on a clean connection the replay lands exactly where the prediction was and no
//!   correction happens. After a correction the displayed position converges smoothly.
//! - [`Interpolator`]: other entities are drawn a few snapshot intervals in the past, between
//!   the two snapshots around that time; a missing snapshot is bridged, and when snapshots
//!   stop, motion is extrapolated briefly (bounded) and then held.
//! - [`ShotPrediction`]: the own player's shots appear the tick they are fired, flying by the
//!   shared rules, and are matched with the server's projectiles when a snapshot confirms
//!   them (same origin and aim: no duplicate, no pop); a shot the server fired differently,
//!   fired without us or never fired is a correction.
//! - [`StepCheck`]: the desync checker. Each server transition of the own player between two
//!   consecutive ticks is re-simulated with the input the server says it applied; a
//!   difference is a desync (the rules disagree), which must never happen. Used by the bots
//!   and the game client.

use std::collections::VecDeque;

use crate::protocol::InputFrame;
use crate::quant::{POS_SCALE, QAngle, QVec, VEL_SCALE};
use crate::rules::{PLAYER_RADIUS, PROJECTILE_RADIUS, Params};
use crate::sim::apply_input;
use crate::tick::{Seq, Tick};
use crate::world::{PlayerId, PlayerState, Projectile, WorldState};

/// How fast a correction's visual offset decays (per second, exponential).
const CORRECTION_DECAY_PER_S: f32 = 10.0;
/// Most inputs kept unacknowledged (a few seconds); older ones are forgotten.
const MAX_PENDING: usize = 256;

/// Prediction and reconciliation of the own player.
#[derive(Debug)]
pub struct Prediction {
    params: Params,
    me: PlayerId,
    /// Unacknowledged inputs and the state predicted after each.
    pending: VecDeque<(InputFrame, PlayerState)>,
    predicted: Option<PlayerState>,
    /// Display offset after a correction, world units; decays to zero.
    offset: (f32, f32),
    /// Times the server's state disagreed with our prediction.
    pub corrections: u64,
}

impl Prediction {
    #[must_use]
    pub fn new(params: Params, me: PlayerId) -> Self {
        Self {
            params,
            me,
            pending: VecDeque::new(),
            predicted: None,
            offset: (0.0, 0.0),
            corrections: 0,
        }
    }

    /// The predicted present state of the own player.
    #[must_use]
    pub fn predicted(&self) -> Option<&PlayerState> {
        self.predicted.as_ref()
    }

    /// Inputs not acknowledged yet (the ones to resend for redundancy).
    pub fn unacknowledged(&self) -> impl Iterator<Item = &InputFrame> {
        self.pending.iter().map(|(f, _)| f)
    }

    /// Applies a new local input at once (call once per tick, when it is sent). Returns the
    /// shot it fires, if it fires one: where from and where to (for [`ShotPrediction`]).
    pub fn apply_local(&mut self, input: InputFrame) -> Option<(QVec, QAngle)> {
        let mut s = self.predicted?;
        let fired = apply_input(&mut s, &input, &self.params);
        let shot = fired.then_some((s.pos, s.aim));
        if self.pending.len() == MAX_PENDING {
            self.pending.pop_front();
        }
        self.pending.push_back((input, s));
        self.predicted = Some(s);
        shot
    }

    /// Reconciles with an authoritative world: drop what it acknowledges, replay the rest on
    /// top of it. Returns true when this corrected the prediction.
    pub fn on_world(&mut self, world: &WorldState) -> bool {
        let Some(auth) = world.player(self.me) else {
            return false;
        };
        while self
            .pending
            .front()
            .is_some_and(|(f, _)| !f.seq.is_after(auth.last_seq))
        {
            self.pending.pop_front();
        }
        let mut s = *auth;
        for (f, after) in &mut self.pending {
            apply_input(&mut s, f, &self.params);
            *after = s;
        }
        let corrected = match &self.predicted {
            Some(old) => old.pos != s.pos || old.vel != s.vel,
            None => false,
        };
        if corrected {
            self.corrections += 1;
            if let Some(old) = &self.predicted {
                // Show the old position and let it converge to the new one.
                self.offset.0 += (old.pos.x - s.pos.x) as f32 / POS_SCALE as f32;
                self.offset.1 += (old.pos.y - s.pos.y) as f32 / POS_SCALE as f32;
            }
        }
        self.predicted = Some(s);
        corrected
    }

    /// Where to draw the own player (world units): the prediction plus a decaying offset.
    pub fn display(&mut self, dt_s: f32) -> Option<(f32, f32)> {
        let k = (-CORRECTION_DECAY_PER_S * dt_s).exp();
        self.offset = (self.offset.0 * k, self.offset.1 * k);
        let p = self.predicted.as_ref()?;
        let (x, y) = p.pos.pos_to_units();
        Some((x + self.offset.0, y + self.offset.1))
    }
}

/// One of the own player's shots as the client shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnShot {
    /// The input that fired it (its age is counted in inputs, the prediction's clock).
    pub seq: Seq,
    pub origin: QVec,
    pub aim: QAngle,
    /// The server's projectile, once a snapshot showed it.
    pub confirmed: Option<u32>,
    /// It touched a target as drawn: no longer shown (the server decides the tag).
    pub hit: bool,
}

/// The own player's shots, predicted (see the module docs). Feed it every input made
/// ([`Self::on_input`], with what [`Prediction::apply_local`] returned), every tag of ours
/// the server announces ([`Self::on_tagged`], before the world it came with) and every world
/// ([`Self::on_world`]).
#[derive(Debug)]
pub struct ShotPrediction {
    params: Params,
    me: PlayerId,
    shots: VecDeque<OwnShot>,
    /// The newest input made.
    newest: Seq,
    /// Our tags announced and not yet paired with a shot that ended before a snapshot
    /// showed it (one that hit on its first tick).
    tag_credit: u32,
    /// The own player's deaths and acknowledged input in the last world.
    last_seen: Option<(u16, Seq)>,
    /// Shots predicted, and confirmed as predicted.
    pub predicted: u64,
    pub confirmed: u64,
    /// Shots made after a tag we had not seen yet: the server holds a respawned player's
    /// fire for a cooldown, so it never fired them (they are not corrections).
    pub cancelled: u64,
    /// Shots the server did not confirm as predicted: `moved + unpredicted + vanished`.
    pub corrections: u64,
    /// Fired from elsewhere or in another direction (the shot jumps).
    pub moved: u64,
    /// Fired by the server without a prediction (the shot appears late).
    pub unpredicted: u64,
    /// Predicted, its input applied, never seen and no tag to explain it (it vanishes).
    pub vanished: u64,
}

impl ShotPrediction {
    #[must_use]
    pub fn new(params: Params, me: PlayerId) -> Self {
        Self {
            params,
            me,
            shots: VecDeque::new(),
            newest: Seq(0),
            tag_credit: 0,
            last_seen: None,
            predicted: 0,
            confirmed: 0,
            cancelled: 0,
            corrections: 0,
            moved: 0,
            unpredicted: 0,
            vanished: 0,
        }
    }

    /// The shots alive, oldest first.
    pub fn shots(&self) -> impl Iterator<Item = &OwnShot> {
        self.shots.iter()
    }

    /// Whether the server's projectile `id` is one of ours already shown (draw it from
    /// [`Self::positions`], not from the snapshot).
    #[must_use]
    pub fn shows(&self, id: u32) -> bool {
        self.shots.iter().any(|s| s.confirmed == Some(id))
    }

    /// An input was made: `shot` is what [`Prediction::apply_local`] returned for it.
    pub fn on_input(&mut self, seq: Seq, shot: Option<(QVec, QAngle)>) {
        self.newest = seq;
        if let Some((origin, aim)) = shot {
            self.predicted += 1;
            self.shots.push_back(OwnShot {
                seq,
                origin,
                aim,
                confirmed: None,
                hit: false,
            });
        }
        // The server says when a shot is over (`on_world`); one it never answers for (the
        // connection is gone) is forgotten with the prediction's inputs.
        while self
            .shots
            .front()
            .is_some_and(|s| self.newest.diff(s.seq) > MAX_PENDING as i32)
        {
            self.shots.pop_front();
        }
    }

    /// The server announced a tag by us.
    pub fn on_tagged(&mut self) {
        self.tag_credit = self.tag_credit.saturating_add(1);
    }

    /// Reconciles with an authoritative world: confirms the shots it shows, corrects the
    /// ones it shows differently, forgets the ones it no longer has.
    pub fn on_world(&mut self, world: &WorldState) {
        let Some((deaths, acked)) = world.player(self.me).map(|p| (p.deaths, p.last_seq)) else {
            return;
        };
        // Tagged since the last world: the inputs after the last one acknowledged then may
        // have reached the server after the respawn, which fires none of them.
        let tagged_after = match self.last_seen.replace((deaths, acked)) {
            Some((before, ack)) if before != deaths => Some(ack),
            _ => None,
        };
        let mine = || world.projectiles.iter().filter(|p| p.owner == self.me);
        for p in mine() {
            if self.shows(p.id) {
                continue;
            }
            if let Some(s) = self
                .shots
                .iter_mut()
                .find(|s| s.confirmed.is_none() && s.origin == p.origin && s.aim == p.aim)
            {
                s.confirmed = Some(p.id);
                self.confirmed += 1;
                continue;
            }
            self.corrections += 1;
            // Fired by an input the server has applied: the same shot, elsewhere.
            if let Some(s) = self
                .shots
                .iter_mut()
                .find(|s| s.confirmed.is_none() && !s.seq.is_after(acked))
            {
                (s.origin, s.aim, s.confirmed) = (p.origin, p.aim, Some(p.id));
                self.moved += 1;
                continue;
            }
            // A shot we did not predict: shown from now on, on our clock (the world's tick
            // is the acknowledged input's).
            self.unpredicted += 1;
            let age = world.tick.diff(p.spawn_tick).max(0) as u32;
            let at = self
                .shots
                .iter()
                .position(|s| s.seq.is_after(acked.minus(age)))
                .unwrap_or(self.shots.len());
            self.shots.insert(
                at,
                OwnShot {
                    seq: acked.minus(age),
                    origin: p.origin,
                    aim: p.aim,
                    confirmed: Some(p.id),
                    hit: false,
                },
            );
        }
        // Confirmed shots the world no longer has are over (hit or expired). Unconfirmed
        // ones whose input the server applied never showed up: a tag on their first tick
        // explains one, else the server did not fire it.
        let (mut credit, mut vanished, mut cancelled) = (self.tag_credit, 0, 0);
        self.shots.retain(|s| match s.confirmed {
            Some(id) => mine().any(|p| p.id == id),
            None if tagged_after.is_some_and(|ack| s.seq.is_after(ack)) => {
                cancelled += 1;
                false
            }
            None if s.seq.is_after(acked) => true,
            None if credit > 0 => {
                credit -= 1;
                false
            }
            None => {
                vanished += 1;
                false
            }
        });
        self.corrections += vanished;
        self.vanished += vanished;
        self.cancelled += cancelled;
        // Tags of shots seen flying are not credit for later ones.
        self.tag_credit = 0;
    }

    /// Where to draw the shots not predicted to have hit, world units, `frac` of a tick
    /// after the newest input: `(seq, x, y)`.
    #[must_use]
    pub fn positions(&self, frac: f32) -> Vec<(Seq, f32, f32)> {
        let life = self.params.projectile_lifetime_ticks as f32;
        self.shots
            .iter()
            .filter(|s| !s.hit)
            .filter_map(|s| {
                let age = self.newest.diff(s.seq) as f32 + frac;
                (age <= life).then(|| {
                    let (x, y) = shot_at(s.origin, s.aim, age, &self.params);
                    (s.seq, x, y)
                })
            })
            .filter(|(_, x, y)| {
                let size = crate::rules::ARENA_SIZE as f32;
                (0.0..=size).contains(x) && (0.0..=size).contains(y)
            })
            .collect()
    }

    /// Marks the shots that touch one of `targets` (others' players where they are drawn,
    /// world units) at `frac` of a tick after the newest input as hits; returns where they
    /// hit, for the effect.
    pub fn predict_hits(&mut self, targets: &[(f32, f32)], frac: f32) -> Vec<(f32, f32)> {
        let reach = (PLAYER_RADIUS + PROJECTILE_RADIUS) as f32;
        let mut hits = Vec::new();
        for s in self.shots.iter_mut().filter(|s| !s.hit) {
            let age = self.newest.diff(s.seq) as f32 + frac;
            let (x, y) = shot_at(s.origin, s.aim, age, &self.params);
            if targets
                .iter()
                .any(|(tx, ty)| (tx - x).hypot(ty - y) <= reach)
            {
                s.hit = true;
                hits.push((x, y));
            }
        }
        hits
    }
}

/// Where a shot fired from `origin` towards `aim` is `age_ticks` later, world units (the
/// rules' motion, continuous in time for drawing).
#[must_use]
pub fn shot_at(origin: QVec, aim: QAngle, age_ticks: f32, params: &Params) -> (f32, f32) {
    let step = Projectile::step(aim, params);
    let (ox, oy) = origin.pos_to_units();
    let k = age_ticks.max(0.0) / POS_SCALE as f32;
    (ox + step.x as f32 * k, oy + step.y as f32 * k)
}

/// A drawn entity: where and which.
#[derive(Debug, Clone, PartialEq)]
pub struct Drawn {
    pub id: PlayerId,
    pub x: f32,
    pub y: f32,
}

/// Interpolation of remote entities between snapshots.
#[derive(Debug)]
pub struct Interpolator {
    tick_hz: f64,
    delay_s: f64,
    max_extrapolation_s: f64,
    /// Recent worlds by tick.
    worlds: VecDeque<WorldState>,
    /// local time - server time (seconds), smoothed.
    offset_s: Option<f64>,
}

impl Interpolator {
    /// `delay_s`: how far in the past to draw (about 3 snapshot intervals by default).
    #[must_use]
    pub fn new(tick_hz: u32, delay_s: f64) -> Self {
        Self {
            tick_hz: f64::from(tick_hz),
            delay_s,
            max_extrapolation_s: 0.25,
            worlds: VecDeque::new(),
            offset_s: None,
        }
    }

    fn server_time(&self, t: Tick) -> f64 {
        f64::from(t.0) / self.tick_hz
    }

    /// Records a world received at local time `now_s`.
    pub fn push(&mut self, world: WorldState, now_s: f64) {
        let sample = now_s - self.server_time(world.tick);
        // Track the earliest arrival (jitter only ever delays), drifting up slowly so a
        // clock step does not stick.
        self.offset_s = Some(match self.offset_s {
            None => sample,
            Some(o) if sample < o => sample,
            Some(o) => o + (sample - o) * 0.01,
        });
        if self
            .worlds
            .back()
            .is_some_and(|w| !world.tick.is_after(w.tick))
        {
            return;
        }
        self.worlds.push_back(world);
        while self.worlds.len() > 64 {
            self.worlds.pop_front();
        }
    }

    /// The latest world received.
    #[must_use]
    pub fn latest(&self) -> Option<&WorldState> {
        self.worlds.back()
    }

    /// The server time drawn at local time `now_s`, in ticks (fractional).
    #[must_use]
    pub fn view_time(&self, now_s: f64) -> Option<f64> {
        let offset = self.offset_s?;
        Some((now_s - offset - self.delay_s) * self.tick_hz)
    }

    /// The tick the others are drawn at, at local time `now_s`: what an input made now
    /// tells the server it saw (`InputFrame::view_tick`, lag compensation). `Tick(0)`
    /// before the first world.
    #[must_use]
    pub fn view_tick(&self, now_s: f64) -> Tick {
        match (self.view_time(now_s), self.latest()) {
            (Some(t), Some(latest)) => {
                let t = Tick(t.round().max(1.0) as u32);
                if t.is_after(latest.tick) {
                    latest.tick
                } else {
                    t
                }
            }
            _ => Tick(0),
        }
    }

    /// Player positions (world units) to draw at local time `now_s`.
    #[must_use]
    pub fn sample(&self, now_s: f64) -> Vec<Drawn> {
        let (Some(offset), Some(last)) = (self.offset_s, self.worlds.back()) else {
            return Vec::new();
        };
        let t = now_s - offset - self.delay_s;
        // The two worlds around t (or the last one, to extrapolate from).
        let after = self
            .worlds
            .iter()
            .position(|w| self.server_time(w.tick) > t);
        let (a, b) = match after {
            Some(0) => (&self.worlds[0], &self.worlds[0]),
            Some(i) => (&self.worlds[i - 1], &self.worlds[i]),
            None => (last, last),
        };
        let (ta, tb) = (self.server_time(a.tick), self.server_time(b.tick));
        b.players
            .iter()
            .map(|pb| {
                let (xb, yb) = pb.pos.pos_to_units();
                let Some(pa) = a.player(pb.id).filter(|_| tb > ta) else {
                    // Only one world: extrapolate along the velocity, bounded.
                    let ahead = (t - tb).clamp(0.0, self.max_extrapolation_s) as f32;
                    let (vx, vy) = (
                        pb.vel.x as f32 / VEL_SCALE as f32,
                        pb.vel.y as f32 / VEL_SCALE as f32,
                    );
                    return Drawn {
                        id: pb.id,
                        x: xb + vx * ahead,
                        y: yb + vy * ahead,
                    };
                };
                let (xa, ya) = pa.pos.pos_to_units();
                let alpha = ((t - ta) / (tb - ta)).clamp(0.0, 1.0) as f32;
                Drawn {
                    id: pb.id,
                    x: xa + (xb - xa) * alpha,
                    y: ya + (yb - ya) * alpha,
                }
            })
            .collect()
    }
}

/// Re-simulates the own player's server transitions (see the module docs).
#[derive(Debug, Default)]
pub struct StepCheck {
    /// Recent inputs sent, oldest first.
    inputs: VecDeque<InputFrame>,
    /// Transitions re-simulated, and those that differed.
    pub checked: u64,
    pub desyncs: u64,
}

impl StepCheck {
    /// Remembers an input that was sent (the newest `MAX_PENDING`).
    pub fn sent(&mut self, input: InputFrame) {
        if self.inputs.len() == MAX_PENDING {
            self.inputs.pop_front();
        }
        self.inputs.push_back(input);
    }

    /// Checks the step from `before` to `after` (the own player at two consecutive ticks):
    /// `None` when it cannot be judged exactly (a respawn, dropped inputs, an input we no
    /// longer have), else whether the rules agree.
    pub fn check(
        &mut self,
        before: &PlayerState,
        after: &PlayerState,
        params: &Params,
    ) -> Option<bool> {
        if after.deaths != before.deaths {
            return None; // tagged and respawned: not a movement step
        }
        let applied = match after.last_seq.diff(before.last_seq) {
            0 | 1 => after.last_seq, // a new input, or the last one repeated
            _ => return None,        // inputs were dropped in between
        };
        let input = if applied == Seq(0) {
            InputFrame::default()
        } else {
            *self.inputs.iter().rev().find(|f| f.seq == applied)?
        };
        let mut predicted = *before;
        apply_input(&mut predicted, &input, params);
        self.checked += 1;
        let same = predicted.pos == after.pos
            && predicted.vel == after.vel
            && predicted.aim == after.aim
            && predicted.cooldown == after.cooldown;
        if !same {
            self.desyncs += 1;
        }
        Some(same)
    }
}

#[cfg(test)]
mod tests;
