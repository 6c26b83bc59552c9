//! The benchmark workload in integer form, for codec and simulation benchmarks and tests: a
//! match of wandering players (direction a bounded random walk of about ±0.3 rad per tick,
//! move and aim along it), driven straight into `Game::step` without a network.

use crate::protocol::InputFrame;
use crate::quant::{MoveVec, QAngle, cos_q14, sin_q14};
use crate::rng::Rng;
use crate::rules::Params;
use crate::sim::Game;
use crate::tick::Seq;
use crate::world::WorldState;

/// About 0.3 rad in aim steps (1024 per turn).
const WANDER_STEP: i32 = 49;

/// A match of `players` wanderers.
#[derive(Debug, Clone)]
pub struct Wander {
    pub game: Game,
    rng: Rng,
    headings: Vec<i32>,
    seq: u32,
}

impl Wander {
    #[must_use]
    pub fn new(players: usize, seed: u64, params: Params) -> Self {
        let mut game = Game::new(seed, params);
        for i in 0..players {
            game.add_player(format!("bot{i}").into());
        }
        let mut rng = Rng::new(seed ^ 0x5EED);
        let headings = (0..players).map(|_| rng.range_i32(0, 1023)).collect();
        Self {
            game,
            rng,
            headings,
            seq: 0,
        }
    }

    /// This tick's inputs, one per player (in player order).
    pub fn inputs(&mut self) -> Vec<InputFrame> {
        self.seq += 1;
        let seq = Seq(self.seq);
        let rng = &mut self.rng;
        self.headings
            .iter_mut()
            .map(|h| {
                *h = (*h + rng.range_i32(-WANDER_STEP, WANDER_STEP)).rem_euclid(1024);
                let a = QAngle::new(*h as u16);
                InputFrame {
                    seq,
                    mv: MoveVec {
                        x: (cos_q14(a) * 127 / 16384) as i8,
                        y: (sin_q14(a) * 127 / 16384) as i8,
                    },
                    aim: a,
                    buttons: 0,
                }
            })
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
