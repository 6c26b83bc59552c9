//! The benchmark workload, the one our Colyseus peer runs too: each player's direction is a
//! bounded random walk, `theta += U(-0.3, 0.3)` per input, move `(cos, sin)`, aim `theta`,
//! and within 50 units of a wall `theta = atan2(500 - y, 500 - x) + U(-0.5, 0.5)`; no firing.
//! [`WanderSteer`] is that steering (the bots' `wander` behaviour uses it; [`WanderSteer::hunt`]
//! is the `aggressive` bots' and the game client's `--autopilot`), and [`Wander`] a
//! match of such players driven straight into `Game::step` without a network, for the codec
//! and simulation benchmarks and tests.

use crate::protocol::InputFrame;
use crate::quant::{MoveVec, QAngle};
use crate::rng::Rng;
use crate::rules::{ARENA_SIZE, Params};
use crate::sim::Game;
use crate::tick::Seq;
use crate::world::{Name, WorldState};

/// Distance under which a hunting player fires, world units.
pub const FIRE_RANGE: f32 = 400.0;

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

    /// A hunter's input: towards `target` from `me` (world units), firing when it is within
    /// [`FIRE_RANGE`]; wandering while either is unknown.
    #[must_use]
    pub fn hunt(
        &mut self,
        seq: Seq,
        me: Option<(f32, f32)>,
        target: Option<(f32, f32)>,
    ) -> InputFrame {
        let mut fire = 0;
        let theta = if let (Some((x, y)), Some((tx, ty))) = (me, target) {
            if (tx - x).hypot(ty - y) < FIRE_RANGE {
                fire = crate::rules::BUTTON_FIRE;
            }
            self.theta = (ty - y).atan2(tx - x);
            self.theta
        } else {
            self.turn(None)
        };
        Self::frame(theta, seq, fire)
    }

    /// An input along `theta`.
    #[must_use]
    pub fn frame(theta: f32, seq: Seq, buttons: u8) -> InputFrame {
        InputFrame {
            seq,
            mv: MoveVec::from_f32(theta.cos(), theta.sin()),
            aim: QAngle::from_radians(theta),
            buttons,
            view_tick: crate::tick::Tick(0),
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
            game.add_player(Name::new(&format!("bot{i}")));
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
        let _ = step_recorded(self);
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

/// One wander tick; returns the inputs it consumed (what a match records).
pub fn step_recorded(w: &mut Wander) -> Vec<(crate::world::PlayerId, InputFrame)> {
    let frames = w.inputs();
    let ids: Vec<_> = w.game.world.players.iter().map(|p| p.id).collect();
    let mut used = Vec::with_capacity(ids.len());
    w.game.step(|id| {
        let f = ids
            .iter()
            .position(|p| *p == id)
            .and_then(|i| frames.get(i).copied());
        if let Some(f) = f {
            used.push((id, f));
        }
        f
    });
    used
}

/// A replay file of a `ticks`-tick wander match of `players` at 30 Hz, running from the
/// start (keyframes every five seconds, a checksum every second, as the server records),
/// created at `created_unix_ms`: what the replay benchmarks and the clients' replay tests
/// play.
#[must_use]
pub fn wander_replay(players: usize, ticks: u32, match_id: u32, created_unix_ms: u64) -> Vec<u8> {
    use crate::replay::{
        FORMAT_VERSION, Header, RULES_VERSION, Recording, encode_block, encode_header,
    };
    let params = Params::new(30);
    let mut w = Wander::new(players, 5, params);
    w.game.world.phase = crate::world::Phase::Running;
    let mut file = encode_header(&Header {
        format: FORMAT_VERSION,
        protocol: crate::protocol::PROTOCOL_VERSION,
        rules: RULES_VERSION,
        match_id,
        seed: 5,
        tick_hz: 30,
        max_rewind_ticks: params.max_rewind_ticks,
        created_unix_ms,
        keyframe_every: 150,
        match_size: players as u32,
        view_radius: None,
    });
    let mut rec = Recording::start(&w.game, 150);
    for _ in 0..ticks {
        let used = step_recorded(&mut w);
        let sum = w
            .game
            .world
            .tick
            .0
            .is_multiple_of(30)
            .then(|| w.game.world.checksum());
        if let Some(b) = rec.tick(used, &w.game, sum) {
            file.extend(encode_block(&b).unwrap_or_default());
        }
    }
    file.extend(encode_block(&rec.finish(None, false, true)).unwrap_or_default());
    file
}
