//! The benchmark workload, the one our Colyseus peer runs too: each player's direction is a
//! bounded random walk, `theta += U(-0.3, 0.3)` per input, move `(cos, sin)`, aim `theta`,
//! and within 50 units of a wall `theta = atan2(500 - y, 500 - x) + U(-0.5, 0.5)`; no firing.
//! [`WanderSteer`] is that steering (the bots' `wander` behaviour uses it), and [`Wander`] a
//! match of such players driven straight into `Game::step` without a network, for the codec
//! and simulation benchmarks and tests.

use crate::protocol::InputFrame;
use crate::quant::{MoveVec, QAngle};
use crate::rng::Rng;
use crate::rules::{ARENA_SIZE, Params};
use crate::sim::Game;
use crate::tick::Seq;
use crate::world::WorldState;

/// Distance from a wall at which a wanderer turns back to the centre, world units.
pub const WALL_MARGIN: f32 = 50.0;

/// A uniform float in `lo..hi` from the seeded generator.
pub fn uniform(rng: &mut Rng, lo: f32, hi: f32) -> f32 {
    let unit = (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
    lo + (hi - lo) * unit
}

/// One wanderer's steering (see the module docs).
#[derive(Debug, Clone)]
pub struct WanderSteer {
    /// The current direction, radians.
    pub theta: f32,
    pub rng: Rng,
}

impl WanderSteer {
    #[must_use]
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let theta = uniform(&mut rng, 0.0, std::f32::consts::TAU);
        Self { theta, rng }
    }

    /// The next direction, given the player's position in world units (if known).
    pub fn turn(&mut self, me: Option<(f32, f32)>) -> f32 {
        self.theta += uniform(&mut self.rng, -0.3, 0.3);
        if let Some((x, y)) = me {
            let far = ARENA_SIZE as f32 - WALL_MARGIN;
            if x < WALL_MARGIN || y < WALL_MARGIN || x > far || y > far {
                let centre = ARENA_SIZE as f32 / 2.0;
                self.theta = (centre - y).atan2(centre - x) + uniform(&mut self.rng, -0.5, 0.5);
            }
        }
        self.theta
    }

    /// An input along `theta`.
    #[must_use]
    pub fn frame(theta: f32, seq: Seq, buttons: u8) -> InputFrame {
        InputFrame {
            seq,
            mv: MoveVec::from_f32(theta.cos(), theta.sin()),
            aim: QAngle::from_radians(theta),
            buttons,
        }
    }
}

/// A match of `players` wanderers.
#[derive(Debug, Clone)]
pub struct Wander {
    pub game: Game,
    steers: Vec<WanderSteer>,
    seq: u32,
}

impl Wander {
    #[must_use]
    pub fn new(players: usize, seed: u64, params: Params) -> Self {
        let mut game = Game::new(seed, params);
        for i in 0..players {
            game.add_player(format!("bot{i}").into());
        }
        let steers = (0..players)
            .map(|i| {
                WanderSteer::new(seed ^ 0x5EED ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
            })
            .collect();
        Self {
            game,
            steers,
            seq: 0,
        }
    }

    /// This tick's inputs, one per player (in player order).
    pub fn inputs(&mut self) -> Vec<InputFrame> {
        self.seq += 1;
        let seq = Seq(self.seq);
        let players = &self.game.world.players;
        self.steers
            .iter_mut()
            .zip(players)
            .map(|(steer, p)| WanderSteer::frame(steer.turn(Some(p.pos.pos_to_units())), seq, 0))
            .collect()
    }

    /// Steps one tick with fresh inputs.
    pub fn step(&mut self) {
        let frames = self.inputs();
        let ids: Vec<_> = self.game.world.players.iter().map(|p| p.id).collect();
        self.game.step(|id| {
            ids.iter()
                .position(|p| *p == id)
                .and_then(|i| frames.get(i).copied())
        });
    }

    /// `ticks` consecutive worlds.
    pub fn worlds(&mut self, ticks: usize) -> Vec<WorldState> {
        (0..ticks)
            .map(|_| {
                self.step();
                self.game.world.clone()
            })
            .collect()
    }
}
