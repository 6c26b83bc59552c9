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
//! - [`StepCheck`]: the desync checker. Each server transition of the own player between two
//!   consecutive ticks is re-simulated with the input the server says it applied; a
//!   difference is a desync (the rules disagree), which must never happen. Used by the bots
//!   and the game client.

use std::collections::VecDeque;

use crate::protocol::InputFrame;
use crate::quant::{POS_SCALE, VEL_SCALE};
use crate::rules::Params;
use crate::sim::apply_input;
use crate::tick::{Seq, Tick};
use crate::world::{PlayerId, PlayerState, WorldState};

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

    /// Applies a new local input at once (call once per tick, when it is sent).
    pub fn apply_local(&mut self, input: InputFrame) {
        let Some(mut s) = self.predicted.clone() else {
            return;
        };
        apply_input(&mut s, &input, &self.params);
        if self.pending.len() == MAX_PENDING {
            self.pending.pop_front();
        }
        self.pending.push_back((input, s.clone()));
        self.predicted = Some(s);
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
        let mut s = auth.clone();
        for (f, after) in &mut self.pending {
            apply_input(&mut s, f, &self.params);
            *after = s.clone();
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
        let mut predicted = before.clone();
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
