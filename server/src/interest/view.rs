//! One client's view of the match: which players and projectiles it is sent this tick, and
//! which of the players it gets exactly when they do not all fit its byte budget.
//!
//! The result is a world (the client's world, coded against the client's previous one by the
//! ordinary codec), so the clients need nothing new to decode it and its checksum is the
//! checksum of exactly what the client holds. A player within the view radius is in it; one
//! already in it stays until it is an eighth farther out (so a player at the edge does not
//! flicker in and out, each time costing a full entry). The own player is always in it and
//! always exact. Of the others, a player whose state is what the client predicts from its
//! baseline (`codec::predict_player`) costs one bit and is exact for free; the rest compete
//! by accumulated priority (`priority`) for what the budget leaves, and a player not chosen
//! is sent as its prediction (one bit: the client carries it on along its velocity) until its
//! turn comes. A player entering view that does not fit waits, absent, for its turn.
//! Projectiles in view are never held back: they cost bits only when fired, and one that
//! appears late is a shot that hit before it was seen. Orbs are few and global: every client
//! gets them all. A view looks only at the cells of the tick's shared `grid` around its centre,
//! and its snapshot copies a player's entry from the tick's shared delta whenever the client
//! holds the match's state of that player at the delta's baseline (most players, most ticks;
//! `codec::SharedDelta::player_bits` checks it).

use skirmish_shared::codec::{SharedDelta, player_bits, predict_player};
use skirmish_shared::quant::{AIM_STEPS, QAngle, QVec};
use skirmish_shared::rules::{ARENA_MAX_Q, Params};
use skirmish_shared::tick::Tick;
use skirmish_shared::world::{PlayerId, WorldState};

use super::grid::{Grid, Near};
use super::priority::{Candidate, Priority};

/// What clients see: the match's interest settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// View radius, position steps; `None`: the whole arena.
    pub radius: Option<i32>,
    /// Snapshot bytes per client per tick the players may fill (game events come on top).
    pub budget: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            radius: None,
            budget: DEFAULT_BUDGET,
        }
    }
}

/// Default snapshot budget, bytes per client per tick: far above a 256-player match's delta
/// (about 800 bytes); it only paces full snapshots of big matches.
pub const DEFAULT_BUDGET: usize = 2048;

/// Bits priced for a snapshot's fixed parts (checksum flag and value, phase, the counts).
const HEADER_BITS: usize = 48;
/// Bits priced for a moved orb, and for a new projectile (their entries, roughly).
const ORB_BITS: usize = 30;
const PROJECTILE_BITS: usize = 72;

impl Settings {
    /// Whether every client sees the whole match (the radius does not cut anything).
    #[must_use]
    pub fn whole_arena(&self) -> bool {
        self.radius.is_none()
    }

    /// How far a player already in view may go before it leaves it: an eighth beyond the
    /// radius (so one at the edge does not flicker in and out, each time costing a full
    /// entry). `None`: the whole arena.
    fn keep(&self) -> Option<i32> {
        self.radius.map(|r| r + r / 8)
    }
}

/// This tick's view for one client.
#[derive(Debug, Clone)]
pub struct Selection {
    /// The client's world this tick.
    pub world: WorldState,
    /// By index in `world.players`: its index in the match's world when its entry can be
    /// copied from the tick's shared delta (`codec::encode_view`).
    pub hints: Vec<Option<u16>>,
    /// It is the match's world, whole and exact.
    pub complete: bool,
    /// Visible players sent as their prediction (held back by the budget), and visible
    /// players not created yet for want of room.
    pub held: usize,
    /// Players that went out exact this tick after waiting (held or absent) for longer than
    /// one tick, and the longest such wait in ticks.
    pub caught_up: usize,
    pub longest_wait: u32,
}

/// One client's view state: its priorities and when each visible player last went out exact.
#[derive(Debug, Default)]
pub struct View {
    priority: Priority<PlayerId>,
    /// Each visible player's last exact tick (or the tick it came into view), by id.
    exact_at: Vec<(PlayerId, Tick)>,
    /// Scratch: the entities near the centre this tick (indices into the world's lists).
    near_players: Vec<Near>,
    near_projectiles: Vec<Near>,
    marks: Vec<u64>,
    /// Scratch reused tick to tick (a view runs for every client every tick: its
    /// allocations were a tenth of a big match's server CPU).
    candidates: Vec<Candidate<PlayerId>>,
    pending: Vec<Pending>,
    exact_at_next: Vec<(PlayerId, Tick)>,
}

/// A candidate's place in the view being written, for when it is not chosen.
#[derive(Debug, Clone, Copy)]
struct Pending {
    /// Index in the view's players.
    at: usize,
    /// Index in the baseline, when the client holds it.
    had: Option<usize>,
    /// When it last went out exact (or came into view).
    since: Tick,
    /// What its entry costs.
    bits: usize,
}

/// What a view is chosen from: one tick of the match, with what every client's view of it
/// shares (computed once per tick).
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub world: &'a WorldState,
    /// The world's entities by cell, when clients have a view radius.
    pub grid: Option<&'a Grid>,
    /// The whole match's snapshot against the tick before, with its entries.
    pub shared: Option<&'a SharedDelta>,
    pub params: &'a Params,
}

impl View {
    /// The client's world at the frame's tick, given the world it holds (`base`, `None` for
    /// a full snapshot), centred on `center` (`None`: sees everything). `me` is the own
    /// player: always in view, always exact.
    pub fn select(
        &mut self,
        base: Option<&WorldState>,
        frame: &Frame<'_>,
        center: Option<QVec>,
        me: Option<PlayerId>,
        settings: &Settings,
    ) -> Selection {
        let (world, params) = (frame.world, frame.params);
        // The entities to look at: those in the cells around the centre, or all of them.
        let (mut near_players, mut near_projectiles) = (
            std::mem::take(&mut self.near_players),
            std::mem::take(&mut self.near_projectiles),
        );
        match (frame.grid, settings.radius, center) {
            (Some(grid), Some(r), Some(c)) => {
                grid.near(
                    c,
                    (r, settings.keep().unwrap_or(r)),
                    &mut near_players,
                    &mut near_projectiles,
                    &mut self.marks,
                );
            }
            _ => {
                let all = |n: usize| {
                    (0..n as u16).map(|index| Near {
                        index,
                        inside: true,
                    })
                };
                near_players.clear();
                near_players.extend(all(world.players.len()));
                near_projectiles.clear();
                near_projectiles.extend(all(world.projectiles.len()));
            }
        }
        let age = base.map_or(0, |b| world.tick.diff(b.tick));
        let tick = world.tick;
        let base_tick = base.map(|b| b.tick);
        // Worlds are sorted by id, and so are the view's own lists: walk them alongside (one
        // pass each, in memory order) rather than searching them.
        let base_list = base.map_or(&[][..], |b| &b.players[..]);
        let mut base_players = Walk::new(base_list);
        let mut base_projectiles = Walk::new(base.map_or(&[][..], |b| &b.projectiles[..]));

        // Projectiles in view: all of them, priced first.
        let mut budget = settings.budget.saturating_mul(8);
        let mut spend = |bits: usize| budget = budget.saturating_sub(bits);
        spend(HEADER_BITS);
        let mut projectiles = Vec::with_capacity(near_projectiles.len());
        for n in &near_projectiles {
            let p = &world.projectiles[usize::from(n.index)];
            let had = base_projectiles.find(p.id, |b| b.id).is_some();
            if n.inside || had {
                spend(if had { 1 } else { PROJECTILE_BITS });
                projectiles.push(*p);
            }
        }
        // The orbs: every client gets the match's, so against the shared delta's baseline
        // they are coded as there (the codec checks it when it copies them).
        let shared_delta = frame
            .shared
            .filter(|d| d.base.is_some() && d.base == base_tick);
        let base_orbs = base.map(|b| &b.orbs[..]);
        let orb_bits = shared_delta
            .and_then(SharedDelta::orbs_bits)
            .unwrap_or_else(|| {
                let moved = match base_orbs {
                    Some(b) if b.len() == world.orbs.len() => {
                        b.iter().zip(&world.orbs).filter(|(a, c)| a != c).count()
                    }
                    _ => world.orbs.len(),
                };
                moved * ORB_BITS
            });
        spend(orb_bits);

        // Players in view: exact for free (the own one, or one the client predicts exactly),
        // or a candidate for what the budget leaves. They are written out exact as they come
        // (most ticks everything fits); when the candidates do not all fit, those not chosen
        // are put back to the client's prediction afterwards (`pending`). A player the client
        // holds at the match's state of the baseline's tick has its entry in the shared delta
        // against that tick, when the frame has one: priced, and later copied, from there.
        let previous = tick.minus(1);
        let mut last_exact = Walk::new(&self.exact_at);
        let (mut candidates, mut pending) = (
            std::mem::take(&mut self.candidates),
            std::mem::take(&mut self.pending),
        );
        candidates.clear();
        pending.clear();
        let mut players = Vec::with_capacity(near_players.len());
        let mut hints = Vec::with_capacity(near_players.len());
        let mut exact_at = std::mem::take(&mut self.exact_at_next);
        exact_at.clear();
        let (mut kept, mut candidate_bits, mut waits) = (0, 0, Waits::default());
        for n in &near_players {
            let i = n.index;
            let p = &world.players[usize::from(i)];
            let mine = Some(p.id) == me;
            let had_at = base_players.find(p.id, |b| b.id);
            if !(mine || n.inside || had_at.is_some()) {
                continue;
            }
            let had = had_at.map(|j| &base_list[j]);
            kept += usize::from(had.is_some());
            let since = last_exact
                .find(p.id, |e| e.0)
                .map_or(previous, |j| self.exact_at[j].1);
            let shared = shared_delta
                .zip(had)
                .and_then(|(d, held)| d.player_bits(usize::from(i), held).map(|bits| (i, bits)));
            let bits = match shared {
                Some((_, bits)) => bits,
                None => player_bits(had, p, age, params),
            };
            if mine || (had.is_some() && bits == 1) {
                spend(bits);
                waits.note(tick, since);
            } else {
                pending.push(Pending {
                    at: players.len(),
                    had: had_at,
                    since,
                    bits,
                });
                candidate_bits += bits;
            }
            exact_at.push((p.id, tick));
            players.push(*p);
            hints.push(shared.map(|(i, _)| i));
        }
        // The removals: two bits each.
        spend(2 * base_list.len().saturating_sub(kept));

        let mut held = 0;
        if candidate_bits <= budget {
            for c in &pending {
                waits.note(tick, c.since);
            }
        } else {
            candidates.extend(pending.iter().map(|w| {
                let p = &players[w.at];
                Candidate {
                    key: p.id,
                    weight: weight(center, p.pos, p.aim, settings),
                    bytes: w.bits,
                }
            }));
            let mut chosen = self.priority.select(&candidates, budget);
            chosen.sort_unstable();
            // Not chosen: sent as the client's prediction, or (entering view) not yet.
            let mut absent = Vec::new();
            for (c, w) in candidates.iter().zip(&pending) {
                if chosen.binary_search(&c.key).is_ok() {
                    waits.note(tick, w.since);
                    continue;
                }
                held += 1;
                exact_at[w.at].1 = w.since;
                hints[w.at] = None;
                match w.had {
                    Some(j) => players[w.at] = predict_player(&base_list[j], age, params),
                    None => absent.push(w.at),
                }
            }
            if !absent.is_empty() {
                let keep = |list_at: &mut usize| {
                    let kept = absent.binary_search(list_at).is_err();
                    *list_at += 1;
                    kept
                };
                let (mut p, mut h) = (0, 0);
                players.retain(|_| keep(&mut p));
                hints.retain(|_| keep(&mut h));
            }
        }
        self.exact_at_next = std::mem::replace(&mut self.exact_at, exact_at);
        self.candidates = candidates;
        self.pending = pending;
        self.near_players = near_players;
        self.near_projectiles = near_projectiles;
        let complete = held == 0
            && players.len() == world.players.len()
            && projectiles.len() == world.projectiles.len();
        Selection {
            world: WorldState {
                tick,
                phase: world.phase,
                phase_end: world.phase_end,
                players,
                orbs: world.orbs.clone(),
                projectiles,
            },
            hints,
            complete,
            held,
            caught_up: waits.caught_up,
            longest_wait: waits.longest,
        }
    }
}

/// A walk along a list sorted by key, for keys asked in ascending order.
struct Walk<'a, T> {
    list: &'a [T],
    at: usize,
}

impl<'a, T> Walk<'a, T> {
    fn new(list: &'a [T]) -> Self {
        Self { list, at: 0 }
    }

    /// Where `key` is in the list, if it is there (`key_of` gives an element's key). Each
    /// key asked must be greater than the one before.
    #[inline]
    fn find<K: Ord>(&mut self, key: K, key_of: impl Fn(&T) -> K) -> Option<usize> {
        while self.list.get(self.at).is_some_and(|e| key_of(e) < key) {
            self.at += 1;
        }
        let found = self.list.get(self.at).is_some_and(|e| key_of(e) == key);
        found.then(|| {
            self.at += 1;
            self.at - 1
        })
    }
}

/// Players that went out exact after waiting longer than one tick: how many, and the longest
/// wait in ticks.
#[derive(Debug, Default)]
struct Waits {
    caught_up: usize,
    longest: u32,
}

impl Waits {
    /// A player goes out exact at `tick`, last exact (or in view since) `since`.
    fn note(&mut self, tick: Tick, since: Tick) {
        let waited = tick.diff(since).max(1) as u32;
        if waited > 1 {
            self.caught_up += 1;
            self.longest = self.longest.max(waited);
        }
    }
}

/// What every view of one tick shares, computed once per tick: the entities by cell (with a
/// view radius).
#[derive(Debug, Clone)]
pub struct TickParts {
    pub grid: Option<Grid>,
}

impl TickParts {
    #[must_use]
    pub fn new(world: &WorldState, radius: Option<i32>, params: &Params) -> Self {
        let grid =
            radius.map(|r| Grid::new(world, &projectile_positions(world, params), cell_size(r)));
        Self { grid }
    }

    /// The frame of `world` (the world these parts are of), with the tick's shared delta.
    #[must_use]
    pub fn frame<'a>(
        &'a self,
        world: &'a WorldState,
        shared: Option<&'a SharedDelta>,
        params: &'a Params,
    ) -> Frame<'a> {
        Frame {
            world,
            grid: self.grid.as_ref(),
            shared,
            params,
        }
    }
}

/// The grid's cell for a view radius (position steps): half the radius.
#[must_use]
pub fn cell_size(radius: i32) -> i32 {
    radius / 2
}

/// Where each of `world`'s projectiles is at its tick, in order.
#[must_use]
pub fn projectile_positions(world: &WorldState, params: &Params) -> Vec<QVec> {
    world
        .projectiles
        .iter()
        .map(|p| p.pos_at(world.tick, params))
        .collect()
}

/// How much a player matters to a client: from 1 at the edge of the view to 4 on top of it,
/// doubled when it aims at the client (within about 11 degrees).
fn weight(center: Option<QVec>, pos: QVec, aim: QAngle, settings: &Settings) -> f64 {
    let Some(c) = center else {
        return 1.0;
    };
    let reach = f64::from(settings.radius.unwrap_or(ARENA_MAX_Q * 3 / 2).max(1));
    let d = (c.dist_sq(pos) as f64).sqrt();
    let near = 1.0 + 3.0 * (1.0 - d / reach).clamp(0.0, 1.0);
    let toward = f64::from(c.y - pos.y).atan2(f64::from(c.x - pos.x));
    let aimed =
        d > 0.0 && QAngle::from_radians(toward as f32).diff(aim).abs() <= i32::from(AIM_STEPS / 32);
    if aimed { near * 2.0 } else { near }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skirmish_shared::codec;
    use skirmish_shared::workload::Wander;

    fn worlds(players: usize, ticks: usize) -> (Vec<WorldState>, Params) {
        let params = Params::new(30);
        (Wander::new(players, 7, params).worlds(ticks), params)
    }

    /// Plays `worlds` through one client's view, decoding every snapshot like a client.
    fn play(
        worlds: &[WorldState],
        params: &Params,
        settings: &Settings,
        me: PlayerId,
        mut each: impl FnMut(&WorldState, &Selection, &WorldState),
    ) {
        let mut view = View::default();
        let mut held: Option<WorldState> = None;
        let mut prev: Option<&WorldState> = None;
        for w in worlds {
            let shared = prev.map(|p| codec::SharedDelta::encode(Some(p), w, None, params));
            prev = Some(w);
            let center = w.player(me).map(|p| p.pos);
            let parts = TickParts::new(w, settings.radius, params);
            let frame = parts.frame(w, shared.as_ref(), params);
            let sel = view.select(held.as_ref(), &frame, center, Some(me), settings);
            let sum = Some(sel.world.checksum());
            let bytes = codec::encode(held.as_ref(), &sel.world, sum, params);
            if let Some(shared) = &shared {
                let copied =
                    codec::encode_view(held.as_ref(), &sel.world, sum, params, shared, &sel.hints);
                assert_eq!(
                    copied, bytes,
                    "copied from the shared delta: the same bytes"
                );
            }
            let got = codec::decode(held.as_ref(), w.tick, &bytes, params).expect("decodes");
            assert_eq!(
                got.verify(),
                Some(true),
                "the checksum covers the client's world"
            );
            each(w, &sel, &got.world);
            held = Some(got.world);
        }
    }

    #[test]
    fn with_the_whole_arena_and_room_the_view_is_the_world() {
        let (ws, params) = worlds(16, 60);
        play(
            &ws,
            &params,
            &Settings::default(),
            PlayerId(3),
            |w, sel, got| {
                assert!(sel.complete);
                assert_eq!(got, w);
            },
        );
    }

    #[test]
    fn a_radius_keeps_far_players_out_and_nothing_stays_after_it_leaves() {
        let (ws, params) = worlds(128, 200);
        let settings = Settings {
            radius: Some(250 * 16),
            budget: DEFAULT_BUDGET,
        };
        let me = PlayerId(5);
        let mut seen_fewer = false;
        play(&ws, &params, &settings, me, |w, sel, got| {
            let c = w.player(me).expect("me").pos;
            let keep = i64::from(250 * 16 + 250 * 16 / 8);
            for p in &got.players {
                let truth = w.player(p.id).expect("a player of the match");
                assert!(
                    c.dist_sq(truth.pos) <= keep * keep,
                    "player {} is out of view",
                    p.id.0
                );
            }
            for p in &w.players {
                if c.dist_sq(p.pos) <= i64::from(250 * 16).pow(2) {
                    assert!(
                        got.player(p.id).is_some(),
                        "player {} in view is missing",
                        p.id.0
                    );
                }
            }
            assert_eq!(got.player(me), w.player(me), "the own player is exact");
            seen_fewer |= got.players.len() < w.players.len();
            assert!(!sel.complete || got == w);
        });
        assert!(seen_fewer);
    }

    #[test]
    fn under_a_tight_budget_every_visible_player_is_exact_within_a_few_ticks() {
        let (ws, params) = worlds(256, 150);
        let settings = Settings {
            radius: None,
            budget: 300,
        };
        let mut longest = 0;
        let mut held_total = 0;
        play(&ws[1..], &params, &settings, PlayerId(1), |w, sel, got| {
            longest = longest.max(sel.longest_wait);
            held_total += sel.held;
            assert_eq!(got.player(PlayerId(1)), w.player(PlayerId(1)));
        });
        assert!(
            held_total > 0,
            "300 bytes cannot carry 256 players' changes"
        );
        assert!(longest >= 2, "some waited");
        assert!(
            longest <= 30,
            "nothing starves: longest wait {longest} ticks"
        );
    }
}
