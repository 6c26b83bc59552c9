//! The authoritative rules, one fixed step at a time.
//!
//! [`apply_input`] moves one player by one input (the part a client predicts for itself);
//! [`Game::step`] advances the whole match: inputs, projectiles, hits, orbs. Both are pure
//! integer functions of their inputs, so the same seed and inputs give the same world on
//! every machine.
//!
//! Lag compensation: a shot is judged where its shooter saw the targets. Each input says
//! which tick the client was showing the others at (`InputFrame::view_tick`); a projectile
//! fired by it keeps that distance, [`rewind_ticks`] (at most `Params::max_rewind_ticks`),
//! for its whole flight, and at every tick it is tested against the players as they were
//! that many ticks before ([`Seen`], a short history the game keeps). That is exactly what
//! the shooter's screen shows: its own projectile in the present (predicted) and the others
//! drawn that far in the past. A player tagged since then (respawned) cannot be hit at its
//! old place.

use crate::protocol::InputFrame;
use crate::quant::{DAMPING_SHIFT, MOVE_SCALE, POS_SCALE, QVec, VEL_SCALE, div_round};
use crate::rng::Rng;
use crate::rules::{
    ARENA_MAX_Q, BUTTON_FIRE, HIT_SCORE, ORB_COUNT, ORB_RADIUS, ORB_SCORE, PLAYER_ACCEL,
    PLAYER_RADIUS, PROJECTILE_RADIUS, Params,
};
use crate::tick::{Seq, Tick};
use crate::world::{Name, PlayerId, PlayerState, Projectile, WorldState};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

const PLAYER_MIN_Q: i32 = PLAYER_RADIUS * POS_SCALE;
const PLAYER_MAX_Q: i32 = ARENA_MAX_Q - PLAYER_RADIUS * POS_SCALE;

/// One velocity axis after one step: `v' = (v + a * accel * dt) * exp(-4 dt)`, truncated
/// toward zero to the velocity step (so a released player comes to a full stop).
fn accelerate(v: i32, m: i32, params: &Params) -> i32 {
    let denom = i64::from(MOVE_SCALE) * i64::from(params.tick_hz);
    let pre = i64::from(v) * denom + i64::from(m) * i64::from(PLAYER_ACCEL) * i64::from(VEL_SCALE);
    ((pre * params.damping_q30) / (denom << DAMPING_SHIFT)) as i32
}

/// Position displacement for one step at velocity `v`, position steps.
#[must_use]
pub fn displacement(v: i32, params: &Params) -> i32 {
    div_round(
        i64::from(v) * i64::from(POS_SCALE),
        i64::from(VEL_SCALE) * i64::from(params.tick_hz),
    ) as i32
}

/// Clamps one position axis into the arena; a clamped axis loses its velocity.
fn clamp_axis(p: &mut i32, v: &mut i32) {
    if *p < PLAYER_MIN_Q {
        *p = PLAYER_MIN_Q;
        *v = 0;
    } else if *p > PLAYER_MAX_Q {
        *p = PLAYER_MAX_Q;
        *v = 0;
    }
}

/// Applies one input to one player for one step: movement, aim, cooldown. Returns true when
/// the player fired (the caller spawns the projectile). Does not touch `last_seq`: whether an
/// input is new or repeated is the caller's business.
pub fn apply_input(p: &mut PlayerState, input: &InputFrame, params: &Params) -> bool {
    let (mx, my) = input.mv.clamped();
    p.vel.x = accelerate(p.vel.x, mx, params);
    p.vel.y = accelerate(p.vel.y, my, params);
    p.pos.x += displacement(p.vel.x, params);
    p.pos.y += displacement(p.vel.y, params);
    clamp_axis(&mut p.pos.x, &mut p.vel.x);
    clamp_axis(&mut p.pos.y, &mut p.vel.y);
    p.aim = input.aim;
    p.cooldown = p.cooldown.saturating_sub(1);
    if input.buttons & BUTTON_FIRE != 0 && p.cooldown == 0 {
        p.cooldown = params.fire_cooldown_ticks;
        return true;
    }
    false
}

/// How many ticks back a shot fired at tick `now` by an input made while the client showed
/// tick `view` is judged: `now - view`, at most `params.max_rewind_ticks`; 0 for an input
/// that does not say (`Tick(0)`) or claims a future tick.
#[must_use]
pub fn rewind_ticks(now: Tick, view: Tick, params: &Params) -> u8 {
    if view == Tick(0) {
        return 0;
    }
    now.diff(view).clamp(0, i32::from(params.max_rewind_ticks)) as u8
}

/// Whether a projectile centred at `projectile` touches a player centred at `player`.
#[must_use]
pub fn touches(projectile: QVec, player: QVec) -> bool {
    let hit_sq = i64::from((PLAYER_RADIUS + PROJECTILE_RADIUS) * POS_SCALE).pow(2);
    player.dist_sq(projectile) <= hit_sq
}

/// A player as it was at one tick: what a rewound shot is judged against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub id: PlayerId,
    pub pos: QVec,
    /// Its `deaths` then: a player tagged since is not hit at its old place.
    pub deaths: u16,
}

/// Something that happened during a step, for the match's event feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimEvent {
    OrbCollected { player: PlayerId, orb: u16 },
    Tagged { shooter: PlayerId, target: PlayerId },
}

/// A match's full simulation state: the world clients see, plus what only the server needs
/// (the RNG, id counters, each player's last input).
#[derive(Clone, Debug)]
pub struct Game {
    pub world: WorldState,
    pub params: Params,
    rng: Rng,
    next_player_id: u32,
    next_projectile_id: u32,
    /// Last input applied per player, aligned with `world.players`.
    last_inputs: Vec<InputFrame>,
    /// Whether orbs and tags score (only while the match is running).
    pub scoring: bool,
    /// What happened during the last `step`.
    pub events: Vec<SimEvent>,
    /// Each projectile's rewind ([`rewind_ticks`]), aligned with `world.projectiles`.
    rewinds: Vec<u8>,
    /// The players at the last `params.max_rewind_ticks` ticks, newest last.
    history: VecDeque<Vec<Seen>>,
}

/// Everything a [`Game`] is, as data: a replay's keyframe (`replay`). The world travels as
/// the codec's full snapshot with its checksum, so restoring checks it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GameSave {
    pub tick: Tick,
    pub world: Vec<u8>,
    pub rng: u64,
    pub next_player_id: u32,
    pub next_projectile_id: u32,
    pub last_inputs: Vec<InputFrame>,
    pub scoring: bool,
    /// Each projectile's rewind, aligned with the world's projectiles.
    pub rewinds: Vec<u8>,
    /// The players at the last few ticks (lag compensation), newest last.
    pub history: Vec<Vec<Seen>>,
}

/// Why a [`GameSave`] could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("the saved world does not decode: {0}")]
    Codec(#[from] crate::codec::CodecError),
    #[error("the saved world does not match its checksum")]
    Checksum,
    #[error("{inputs} saved inputs for {players} players")]
    Inputs { inputs: usize, players: usize },
    #[error("{rewinds} saved rewinds for {projectiles} projectiles")]
    Rewinds { rewinds: usize, projectiles: usize },
}

impl Game {
    /// The whole state, as data.
    #[must_use]
    pub fn save(&self) -> GameSave {
        let sum = self.world.checksum();
        GameSave {
            tick: self.world.tick,
            world: crate::codec::encode(None, &self.world, Some(sum), &self.params),
            rng: self.rng.state(),
            next_player_id: self.next_player_id,
            next_projectile_id: self.next_projectile_id,
            last_inputs: self.last_inputs.clone(),
            scoring: self.scoring,
            rewinds: self.rewinds.clone(),
            history: self.history.iter().cloned().collect(),
        }
    }

    /// The game `save` was taken from (with `params`, the match's).
    pub fn restore(save: &GameSave, params: Params) -> Result<Self, RestoreError> {
        let decoded = crate::codec::decode(None, save.tick, &save.world, &params)?;
        if decoded.verify() != Some(true) {
            return Err(RestoreError::Checksum);
        }
        if decoded.world.players.len() != save.last_inputs.len() {
            return Err(RestoreError::Inputs {
                inputs: save.last_inputs.len(),
                players: decoded.world.players.len(),
            });
        }
        if decoded.world.projectiles.len() != save.rewinds.len() {
            return Err(RestoreError::Rewinds {
                rewinds: save.rewinds.len(),
                projectiles: decoded.world.projectiles.len(),
            });
        }
        Ok(Self {
            world: decoded.world,
            params,
            rng: Rng::new(save.rng),
            next_player_id: save.next_player_id,
            next_projectile_id: save.next_projectile_id,
            last_inputs: save.last_inputs.clone(),
            scoring: save.scoring,
            events: Vec::new(),
            rewinds: save.rewinds.clone(),
            history: save.history.iter().cloned().collect(),
        })
    }

    /// A fresh match: no players, `ORB_COUNT` orbs at seeded random places.
    #[must_use]
    pub fn new(seed: u64, params: Params) -> Self {
        let mut rng = Rng::new(seed);
        let orbs = (0..ORB_COUNT).map(|_| random_orb_pos(&mut rng)).collect();
        Self {
            world: WorldState {
                orbs,
                ..WorldState::default()
            },
            params,
            rng,
            next_player_id: 1,
            next_projectile_id: 1,
            last_inputs: Vec::new(),
            scoring: true,
            events: Vec::new(),
            rewinds: Vec::new(),
            history: VecDeque::new(),
        }
    }

    /// Adds a player at a random position; returns its new id.
    pub fn add_player(&mut self, name: Name) -> PlayerId {
        let id = PlayerId(self.next_player_id);
        self.next_player_id = self.next_player_id.wrapping_add(1);
        let pos = random_player_pos(&mut self.rng);
        // Ids only grow, so pushing keeps `players` sorted.
        self.world.players.push(PlayerState {
            id,
            name,
            pos,
            vel: QVec::default(),
            aim: Default::default(),
            score: 0,
            last_seq: Seq(0),
            cooldown: 0,
            deaths: 0,
        });
        self.last_inputs.push(InputFrame::default());
        id
    }

    /// Removes a player (its projectiles fly on). Returns false if it was not there.
    pub fn remove_player(&mut self, id: PlayerId) -> bool {
        match self.world.players.binary_search_by_key(&id, |p| p.id) {
            Ok(i) => {
                self.world.players.remove(i);
                self.last_inputs.remove(i);
                true
            }
            Err(_) => false,
        }
    }

    /// Makes a player stand still: no velocity, and a neutral input repeats until a new one
    /// arrives (used while its connection is gone).
    pub fn idle_player(&mut self, id: PlayerId) {
        if let Ok(i) = self.world.players.binary_search_by_key(&id, |p| p.id) {
            self.world.players[i].vel = QVec::default();
            let seq = self.last_inputs[i].seq;
            self.last_inputs[i] = InputFrame {
                seq,
                ..InputFrame::default()
            };
        }
    }

    /// Advances one tick. `next_input(id)` yields the player's next queued input, or `None`
    /// to repeat its last one (the acknowledgement `last_seq` then stays where it was).
    pub fn step(&mut self, mut next_input: impl FnMut(PlayerId) -> Option<InputFrame>) {
        let new_tick = self.world.tick.next();
        let params = self.params;
        self.events.clear();

        for (p, last) in self
            .world
            .players
            .iter_mut()
            .zip(self.last_inputs.iter_mut())
        {
            if let Some(input) = next_input(p.id) {
                *last = input;
                p.last_seq = input.seq;
            }
            if apply_input(p, last, &params) {
                self.world.projectiles.push(Projectile {
                    id: self.next_projectile_id,
                    owner: p.id,
                    origin: p.pos,
                    aim: p.aim,
                    spawn_tick: new_tick,
                });
                self.rewinds
                    .push(rewind_ticks(new_tick, last.view_tick, &params));
                self.next_projectile_id = self.next_projectile_id.wrapping_add(1);
            }
        }

        self.step_projectiles(new_tick);
        self.collect_orbs();
        self.world.tick = new_tick;
        self.remember_players();
    }

    /// Adds this tick's players to the history (lag compensation), dropping the oldest.
    fn remember_players(&mut self) {
        let keep = usize::from(self.params.max_rewind_ticks);
        if keep == 0 {
            return;
        }
        let mut seen = if self.history.len() >= keep {
            self.history.pop_front().unwrap_or_default()
        } else {
            Vec::with_capacity(self.world.players.len())
        };
        seen.clear();
        seen.extend(self.world.players.iter().map(|p| Seen {
            id: p.id,
            pos: p.pos,
            deaths: p.deaths,
        }));
        self.history.push_back(seen);
    }

    /// The index of the player `proj` (rewound `rewind` ticks) touches at tick `now`.
    fn target_of(&self, proj: &Projectile, pos: QVec, rewind: u8) -> Option<usize> {
        let players = &self.world.players;
        let past = match usize::from(rewind) {
            0 => None,
            // `history` ends at the previous tick; a match younger than the rewind uses
            // its oldest.
            r => self.history.len().checked_sub(r).or(Some(0)),
        };
        let Some(seen) = past.and_then(|i| self.history.get(i)) else {
            return players
                .iter()
                .position(|p| p.id != proj.owner && touches(pos, p.pos));
        };
        seen.iter()
            .filter(|s| s.id != proj.owner && touches(pos, s.pos))
            .find_map(|s| {
                let i = players.binary_search_by_key(&s.id, |p| p.id).ok()?;
                (players[i].deaths == s.deaths).then_some(i)
            })
    }

    fn step_projectiles(&mut self, now: Tick) {
        let lifetime = self.params.projectile_lifetime_ticks as i32;
        let params = self.params;
        let mut i = 0;
        while i < self.world.projectiles.len() {
            let proj = self.world.projectiles[i];
            let pos = proj.pos_at(now, &params);
            let outside =
                !(0..=ARENA_MAX_Q).contains(&pos.x) || !(0..=ARENA_MAX_Q).contains(&pos.y);
            let gone = now.diff(proj.spawn_tick) > lifetime || outside;
            let target = if gone {
                None
            } else {
                self.target_of(&proj, pos, self.rewinds[i])
            };
            if gone || target.is_some() {
                self.world.projectiles.remove(i);
                self.rewinds.remove(i);
            } else {
                i += 1;
            }
            let Some(target) = target else {
                continue;
            };
            let (scoring, players) = (self.scoring, &mut self.world.players);
            let t = &mut players[target];
            t.pos = random_player_pos(&mut self.rng);
            t.vel = QVec::default();
            t.deaths = t.deaths.wrapping_add(1);
            // A respawned player holds its fire for a cooldown: its client has not seen the
            // tag yet (a round trip) and would shoot from where it was.
            t.cooldown = self.params.fire_cooldown_ticks;
            self.events.push(SimEvent::Tagged {
                shooter: proj.owner,
                target: t.id,
            });
            if scoring && let Ok(owner) = players.binary_search_by_key(&proj.owner, |p| p.id) {
                players[owner].score = players[owner].score.saturating_add(HIT_SCORE);
            }
        }
    }

    fn collect_orbs(&mut self) {
        let touch_sq = i64::from((PLAYER_RADIUS + ORB_RADIUS) * POS_SCALE).pow(2);
        for p in &mut self.world.players {
            for (i, orb) in self.world.orbs.iter_mut().enumerate() {
                if p.pos.dist_sq(*orb) <= touch_sq {
                    if self.scoring {
                        p.score = p.score.saturating_add(ORB_SCORE);
                    }
                    *orb = random_orb_pos(&mut self.rng);
                    self.events.push(SimEvent::OrbCollected {
                        player: p.id,
                        orb: i as u16,
                    });
                }
            }
        }
    }
}

fn random_player_pos(rng: &mut Rng) -> QVec {
    QVec::new(
        rng.range_i32(PLAYER_MIN_Q, PLAYER_MAX_Q),
        rng.range_i32(PLAYER_MIN_Q, PLAYER_MAX_Q),
    )
}

fn random_orb_pos(rng: &mut Rng) -> QVec {
    let lo = ORB_RADIUS * POS_SCALE;
    let hi = ARENA_MAX_Q - lo;
    QVec::new(rng.range_i32(lo, hi), rng.range_i32(lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::{MoveVec, QAngle};

    #[test]
    fn a_restored_save_plays_on_exactly_like_the_original() {
        let mut w = crate::workload::Wander::new(12, 9, Params::new(30));
        for _ in 0..200 {
            w.step();
        }
        let save = w.game.save();
        let mut copy = w.clone();
        copy.game = Game::restore(&save, w.game.params).expect("restores");
        assert_eq!(copy.game.world, w.game.world);
        for _ in 0..300 {
            w.step();
            copy.step();
        }
        assert_eq!(copy.game.world, w.game.world, "same world 300 ticks later");
        let mut bad = save.clone();
        bad.last_inputs.pop();
        assert!(Game::restore(&bad, w.game.params).is_err());
    }

    fn input(seq: u32, x: i8, y: i8, fire: bool) -> InputFrame {
        InputFrame {
            seq: Seq(seq),
            mv: MoveVec { x, y },
            aim: QAngle::new(0),
            buttons: if fire { BUTTON_FIRE } else { 0 },
            view_tick: Default::default(),
        }
    }

    fn player_at(x: i32, y: i32) -> PlayerState {
        PlayerState {
            id: PlayerId(1),
            name: "p".into(),
            pos: QVec::new(x, y),
            vel: QVec::default(),
            aim: QAngle::default(),
            score: 0,
            last_seq: Seq(0),
            cooldown: 0,
            deaths: 0,
        }
    }

    #[test]
    fn acceleration_reaches_the_analytic_terminal_speed() {
        // v* = a*dt*d / (1 - d), d = exp(-4 dt): at 30 Hz about 186.96 units/s. Truncating
        // to the 0.25 u/s step each tick settles 1 % lower, at 185.
        let params = Params::new(30);
        let mut p = player_at(500 * POS_SCALE, 500 * POS_SCALE);
        for _ in 0..60 {
            apply_input(&mut p, &input(0, 127, 0, false), &params);
            p.pos = QVec::new(500 * POS_SCALE, 500 * POS_SCALE); // stay away from the walls
        }
        let speed = f64::from(p.vel.x) / f64::from(VEL_SCALE);
        assert!((speed - 186.96).abs() < 2.5, "speed {speed}");
        assert_eq!(p.vel.y, 0);
    }

    #[test]
    fn released_player_stops() {
        let params = Params::new(30);
        let mut p = player_at(500 * POS_SCALE, 500 * POS_SCALE);
        p.vel = QVec::new(700, -700);
        for _ in 0..120 {
            apply_input(&mut p, &input(0, 0, 0, false), &params);
        }
        assert_eq!(p.vel, QVec::default());
    }

    #[test]
    fn walls_clamp_position_and_zero_that_velocity_axis() {
        let params = Params::new(30);
        let mut p = player_at(PLAYER_MAX_Q - 2, 500 * POS_SCALE);
        p.vel = QVec::new(700, 300);
        apply_input(&mut p, &input(0, 127, 0, false), &params);
        assert_eq!(p.pos.x, PLAYER_MAX_Q);
        assert_eq!(p.vel.x, 0);
        assert!(p.vel.y > 0, "the other axis keeps moving");
        let mut q = player_at(PLAYER_MIN_Q + 1, PLAYER_MIN_Q + 1);
        q.vel = QVec::new(-700, -700);
        apply_input(&mut q, &input(0, -127, -127, false), &params);
        assert_eq!(q.pos, QVec::new(PLAYER_MIN_Q, PLAYER_MIN_Q));
        assert_eq!(q.vel, QVec::default());
    }

    #[test]
    fn touching_an_orb_scores_one_and_respawns_it() {
        let mut g = Game::new(7, Params::new(30));
        let id = g.add_player("a".into());
        let orb = g.world.orbs[3];
        g.world.players[0].pos = orb;
        let others: Vec<QVec> = g
            .world
            .orbs
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 3)
            .map(|(_, o)| *o)
            .collect();
        g.step(|_| None);
        let p = g.world.player(id).expect("player");
        // Exactly the orbs within reach count (usually just the one we stood on).
        let near = i64::from((PLAYER_RADIUS + ORB_RADIUS) * POS_SCALE).pow(2);
        let extra = others.iter().filter(|o| o.dist_sq(orb) <= near).count() as u32;
        assert_eq!(p.score, 1 + extra);
        assert_ne!(g.world.orbs[3], orb, "the collected orb moved");
        assert!(
            g.events
                .contains(&SimEvent::OrbCollected { player: id, orb: 3 })
        );
        assert_eq!(g.world.orbs.len(), ORB_COUNT);
    }

    /// A shooter at (300, 500) and a target at (400, 500), the orbs out of the way so only a
    /// hit scores.
    fn duel(params: Params) -> (Game, PlayerId, PlayerId) {
        let mut g = Game::new(11, params);
        let shooter = g.add_player("s".into());
        let target = g.add_player("t".into());
        for o in &mut g.world.orbs {
            *o = QVec::new(ORB_RADIUS * POS_SCALE, ORB_RADIUS * POS_SCALE);
        }
        g.world.players[0].pos = QVec::new(300 * POS_SCALE, 500 * POS_SCALE);
        g.world.players[1].pos = QVec::new(400 * POS_SCALE, 500 * POS_SCALE);
        (g, shooter, target)
    }

    #[test]
    fn a_hit_scores_five_and_respawns_the_target() {
        let params = Params::new(30);
        let (mut g, shooter, target) = duel(params);
        let mut fired = false;
        for t in 1..=20u32 {
            g.step(|id| (id == shooter).then(|| input(t, 0, 0, !fired)));
            fired = true;
            if g.world.player(target).expect("target").deaths > 0 {
                break;
            }
        }
        assert_eq!(g.world.player(shooter).expect("shooter").score, HIT_SCORE);
        let t = g.world.player(target).expect("target");
        assert_eq!(t.deaths, 1);
        assert_eq!(
            t.cooldown, params.fire_cooldown_ticks,
            "no fire right after a respawn"
        );
        assert!(g.world.projectiles.is_empty(), "the projectile is used up");
    }

    /// A shooter at (300, 500) facing +x and a target that stood at (400, 500) for ticks
    /// 1-10 and then jumped out of the line of fire (as if it had moved on since the shooter
    /// saw it), orbs out of the way. Returns the game at tick 10 and the two ids. A shot
    /// takes 5 ticks to reach (400, 500).
    fn moved_target(params: Params) -> (Game, PlayerId, PlayerId) {
        let (mut g, shooter, target) = duel(params);
        for _ in 0..10 {
            g.step(|_| None);
        }
        g.world.players[1].pos = QVec::new(400 * POS_SCALE, 800 * POS_SCALE);
        (g, shooter, target)
    }

    /// Fires once with `view_tick` and lets the projectile fly; the target's deaths.
    fn fire_seen_at(g: &mut Game, shooter: PlayerId, target: PlayerId, view: u32) -> u16 {
        let shot = InputFrame {
            view_tick: Tick(view),
            ..input(1, 0, 0, true)
        };
        g.step(|id| (id == shooter).then_some(shot));
        for _ in 0..20 {
            g.step(|_| None);
            // Stop before the cooldown fires the repeated input again.
            if g.world.projectiles.is_empty() {
                break;
            }
        }
        g.world.player(target).expect("target").deaths
    }

    #[test]
    fn a_shot_is_judged_where_the_shooter_saw_the_target() {
        // The shooter saw tick 5 (the target still at 400, 500) when it fired at tick 11:
        // the shot reaches there 5 ticks later, judged against tick 10.
        let (mut g, s, t) = moved_target(Params::new(30));
        assert_eq!(fire_seen_at(&mut g, s, t, 5), 1, "hit in the past");
        assert_eq!(g.world.player(s).expect("s").score, HIT_SCORE);
        // Without lag compensation the same shot misses.
        let (mut g, s, t) = moved_target(Params::new(30).with_max_rewind_ms(0));
        assert_eq!(fire_seen_at(&mut g, s, t, 5), 0, "missed in the present");
        // Seen one tick later, the target has jumped by the time the shot arrives.
        let (mut g, s, t) = moved_target(Params::new(30));
        assert_eq!(fire_seen_at(&mut g, s, t, 6), 0);
        // An input that does not say what it saw is judged in the present.
        let (mut g, s, t) = moved_target(Params::new(30));
        assert_eq!(fire_seen_at(&mut g, s, t, 0), 0);
    }

    #[test]
    fn the_rewind_is_bounded_and_a_respawned_target_is_safe_at_its_old_place() {
        let p = Params::new(30);
        assert_eq!(rewind_ticks(Tick(100), Tick(97), &p), 3);
        assert_eq!(rewind_ticks(Tick(100), Tick(10), &p), 6, "at most 200 ms");
        assert_eq!(
            rewind_ticks(Tick(100), Tick(105), &p),
            0,
            "a claimed future"
        );
        assert_eq!(rewind_ticks(Tick(100), Tick(0), &p), 0);
        // A shot that claims to have seen tick 1 is judged 200 ms (6 ticks) back, as if it
        // had seen tick 5: it hits...
        let (mut g, s, t) = moved_target(p);
        assert_eq!(fire_seen_at(&mut g, s, t, 1), 1);
        // ...with a shorter limit (100 ms, 3 ticks: tick 8) it does not.
        let (mut g, s, t) = moved_target(p.with_max_rewind_ms(100));
        assert_eq!(fire_seen_at(&mut g, s, t, 1), 0);
        // And a target tagged (and respawned) since is not hit at its old place.
        let (mut g, s, t) = moved_target(p);
        g.world.players[1].deaths = 1;
        assert_eq!(fire_seen_at(&mut g, s, t, 5), 1, "not hit again");
    }

    #[test]
    fn no_score_while_scoring_is_off() {
        let mut g = Game::new(7, Params::new(30));
        g.scoring = false;
        g.add_player("a".into());
        g.world.players[0].pos = g.world.orbs[0];
        g.step(|_| None);
        assert_eq!(g.world.players[0].score, 0);
        assert!(
            !g.events.is_empty(),
            "the orb is still collected (and respawned)"
        );
    }

    #[test]
    fn cooldown_limits_fire_rate() {
        let params = Params::new(30);
        let mut g = Game::new(3, params);
        let id = g.add_player("s".into());
        for t in 1..=30u32 {
            g.step(|_| Some(input(t, 0, 0, true)));
        }
        // 30 ticks at 30 Hz with a 0.5 s cooldown (15 ticks): shots at ticks 1 and 16.
        let shots = g.next_projectile_id - 1;
        assert_eq!(shots, 2);
        assert_eq!(g.world.player(id).expect("p").last_seq, Seq(30));
    }

    #[test]
    fn projectiles_expire_after_their_lifetime() {
        let params = Params::new(30);
        let mut g = Game::new(5, params);
        g.add_player("s".into());
        g.world.players[0].pos = QVec::new(500 * POS_SCALE, 500 * POS_SCALE);
        let fire = InputFrame {
            aim: QAngle::new(256),
            ..input(1, 0, 0, true)
        };
        g.step(|_| Some(fire));
        let hold = InputFrame { buttons: 0, ..fire };
        g.step(|_| Some(hold));
        assert_eq!(g.world.projectiles.len(), 1);
        for _ in 1..params.projectile_lifetime_ticks {
            g.step(|_| None);
        }
        assert!(g.world.projectiles.is_empty());
    }

    #[test]
    fn same_seed_and_inputs_give_the_same_world_bit_for_bit() {
        let run = || {
            let mut g = Game::new(1234, Params::new(30));
            let ids: Vec<PlayerId> = (0..8)
                .map(|i| g.add_player(format!("p{i}").into()))
                .collect();
            let mut rng = Rng::new(99);
            for t in 1..=600u32 {
                let mut frames = Vec::new();
                for _ in &ids {
                    frames.push(InputFrame {
                        seq: Seq(t),
                        mv: MoveVec {
                            x: rng.range_i32(-127, 127) as i8,
                            y: rng.range_i32(-127, 127) as i8,
                        },
                        aim: QAngle::new(rng.range_i32(0, 1023) as u16),
                        buttons: u8::from(rng.range_i32(0, 9) == 0),
                        view_tick: Default::default(),
                    });
                }
                g.step(|id| frames.get((id.0 - 1) as usize).copied());
            }
            g.world
        };
        let a = run();
        let b = run();
        assert_eq!(a, b);
        assert_eq!(a.checksum(), b.checksum());
        assert!(
            a.players.iter().map(|p| p.score).sum::<u32>() > 0,
            "the run scored"
        );
    }
}
