//! How a bot steers. `Wander` is the benchmark workload shared with the Colyseus peer, the
//! steering in `skirmish_shared::workload` (one definition for the bots and the benchmarks).

use serde::Serialize;
use skirmish_shared::protocol::InputFrame;
use skirmish_shared::quant::QVec;
use skirmish_shared::tick::Seq;
use skirmish_shared::workload::WanderSteer;

/// A bot's behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Behavior {
    /// The benchmark workload: random walk, away from walls, no firing.
    Wander,
    /// Chase the nearest player and fire when in range.
    Aggressive,
    /// Connect and read, send nothing.
    Idle,
    /// Abuse: stream empty WebSocket ping frames as fast as the socket takes them.
    FloodPings,
    /// Abuse: stream input messages, each with eight new inputs, as fast as possible.
    FloodInputs,
    /// Abuse: one unfinished binary frame, then endless empty continuation frames.
    FragmentBomb,
    /// Abuse: play, but never read a byte (a tiny receive buffer).
    SlowReader,
    /// Abuse: matchmake, connect, drop the connection, again, as fast as allowed.
    ReconnectStorm,
}

impl Behavior {
    /// One of the abuse behaviours (run by `attack`, not as a player).
    #[must_use]
    pub fn is_attack(self) -> bool {
        !matches!(self, Self::Wander | Self::Aggressive | Self::Idle)
    }
}

/// A bot's steering state.
#[derive(Debug, Clone)]
pub struct Steering {
    behavior: Behavior,
    steer: WanderSteer,
}

impl Steering {
    #[must_use]
    pub fn new(behavior: Behavior, seed: u64) -> Self {
        Self {
            behavior,
            steer: WanderSteer::new(seed),
        }
    }

    /// The next input. `me` is the bot's own position (world units) if known; `target` the
    /// nearest other player's. `None` for a bot that sends no inputs.
    pub fn next(
        &mut self,
        seq: Seq,
        me: Option<(f32, f32)>,
        target: Option<(f32, f32)>,
    ) -> Option<InputFrame> {
        match self.behavior {
            Behavior::Idle
            | Behavior::FloodPings
            | Behavior::FloodInputs
            | Behavior::FragmentBomb
            | Behavior::ReconnectStorm => None,
            Behavior::Wander | Behavior::SlowReader => {
                Some(WanderSteer::frame(self.steer.turn(me), seq, 0))
            }
            Behavior::Aggressive => Some(self.steer.hunt(seq, me, target)),
        }
    }
}

/// World units of a quantized position.
#[must_use]
pub fn units(p: QVec) -> (f32, f32) {
    p.pos_to_units()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wander_turns_away_from_walls_and_never_fires() {
        let mut s = Steering::new(Behavior::Wander, 1);
        for i in 0..100 {
            let f = s.next(Seq(i), Some((10.0, 500.0)), None).expect("input");
            assert_eq!(f.buttons, 0);
            assert!(f.mv.x > 0, "near the left wall it heads right: {:?}", f.mv);
        }
        let mut s = Steering::new(Behavior::Wander, 2);
        let mut prev = s
            .next(Seq(0), Some((500.0, 500.0)), None)
            .expect("input")
            .aim;
        for i in 1..100 {
            let a = s
                .next(Seq(i), Some((500.0, 500.0)), None)
                .expect("input")
                .aim;
            assert!(
                a.diff(prev).abs() <= 50,
                "steps of at most 0.3 rad (~49 aim steps)"
            );
            prev = a;
        }
    }

    #[test]
    fn idle_sends_nothing_and_aggressive_fires_in_range() {
        assert!(
            Steering::new(Behavior::Idle, 1)
                .next(Seq(1), None, None)
                .is_none()
        );
        let mut s = Steering::new(Behavior::Aggressive, 1);
        let f = s
            .next(Seq(1), Some((100.0, 100.0)), Some((200.0, 100.0)))
            .expect("input");
        assert_eq!(f.buttons, skirmish_shared::rules::BUTTON_FIRE);
        assert_eq!(f.aim.steps(), 0, "aims at the target");
        let f = s
            .next(Seq(2), Some((100.0, 100.0)), Some((900.0, 900.0)))
            .expect("input");
        assert_eq!(f.buttons, 0);
    }
}
