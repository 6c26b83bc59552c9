//! Where the match's players and projectiles are this tick, by square cell: built once per
//! tick and shared by every client's view, so a view looks only at the cells around its
//! player instead of at every entity of the match (at 128 players and a 250-unit radius, the
//! scan of every entity for every client was the largest single cost of the views).

use skirmish_shared::quant::QVec;
use skirmish_shared::rules::ARENA_MAX_Q;
use skirmish_shared::world::WorldState;

/// Entities by cell: indices into the world's `players` and `projectiles`.
#[derive(Debug, Clone)]
pub struct Grid {
    /// A cell's side, position steps.
    cell: i32,
    /// Cells per side.
    side: i32,
    players: Buckets,
    projectiles: Buckets,
}

/// Indices sorted by cell (ascending within a cell) with their positions, and where each
/// cell's run starts.
#[derive(Debug, Clone, Default)]
struct Buckets {
    order: Vec<u16>,
    /// `order`'s positions, alongside (a view's distance test reads them in a row).
    pos: Vec<QVec>,
    start: Vec<u32>,
}

impl Buckets {
    fn new(positions: &[QVec], at: impl Fn(QVec) -> usize, n_cells: usize) -> Self {
        let cells: Vec<usize> = positions.iter().map(|&p| at(p)).collect();
        let mut start = vec![0u32; n_cells + 1];
        for &c in &cells {
            start[c + 1] += 1;
        }
        for i in 0..n_cells {
            start[i + 1] += start[i];
        }
        let mut next = start.clone();
        let mut order = vec![0u16; cells.len()];
        let mut pos = vec![QVec::default(); cells.len()];
        for (i, &c) in cells.iter().enumerate() {
            order[next[c] as usize] = i as u16;
            pos[next[c] as usize] = positions[i];
            next[c] += 1;
        }
        Self { order, pos, start }
    }

    /// What the consecutive cells `cells` hold, with their positions.
    fn cells(&self, cells: std::ops::RangeInclusive<usize>) -> (&[u16], &[QVec]) {
        let run = self.start[*cells.start()] as usize..self.start[*cells.end() + 1] as usize;
        (&self.order[run.clone()], &self.pos[run])
    }

    /// Marks, in `keep` and `inside` (bit per index), what the cells `cells` hold within
    /// `keep_sq` and within `inside_sq` of `c` (squared distances).
    fn mark(
        &self,
        cells: std::ops::RangeInclusive<usize>,
        c: QVec,
        (keep_sq, inside_sq): (i64, i64),
        keep: &mut [u64],
        inside: &mut [u64],
    ) {
        let (order, pos) = self.cells(cells);
        for (&i, &p) in order.iter().zip(pos) {
            let d = c.dist_sq(p);
            let (word, bit) = (usize::from(i) / 64, 1u64 << (i % 64));
            if d <= keep_sq {
                keep[word] |= bit;
            }
            if d <= inside_sq {
                inside[word] |= bit;
            }
        }
    }
}

/// An entity near a view's centre, from [`Grid::near`]: its index in the world's list, and
/// whether it is within the view's radius (else it is in the band beyond it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Near {
    pub index: u16,
    pub inside: bool,
}

impl Grid {
    /// The entities of `world` (projectiles at `projectile_pos`) in cells `cell` steps wide.
    #[must_use]
    pub fn new(world: &WorldState, projectile_pos: &[QVec], cell: i32) -> Self {
        let cell = cell.max(ARENA_MAX_Q / 64).max(1);
        let side = ARENA_MAX_Q / cell + 1;
        let n = (side * side) as usize;
        let at = |p: QVec| {
            let col = (p.x.clamp(0, ARENA_MAX_Q) / cell).min(side - 1);
            let row = (p.y.clamp(0, ARENA_MAX_Q) / cell).min(side - 1);
            (row * side + col) as usize
        };
        let player_pos: Vec<QVec> = world.players.iter().map(|p| p.pos).collect();
        Self {
            cell,
            side,
            players: Buckets::new(&player_pos, at, n),
            projectiles: Buckets::new(projectile_pos, at, n),
        }
    }

    /// The players and projectiles within `reach` of `center` (`reach >= radius`), each list
    /// in ascending index order (which is id order), each marked whether it is within
    /// `radius`. Only the cells meeting the disk are searched. `marks` is scratch space.
    pub fn near(
        &self,
        center: QVec,
        (radius, reach): (i32, i32),
        players: &mut Vec<Near>,
        projectiles: &mut Vec<Near>,
        marks: &mut Vec<u64>,
    ) {
        let span = |c: i32| {
            let lo = (c.saturating_sub(reach).clamp(0, ARENA_MAX_Q) / self.cell).min(self.side - 1);
            let hi = (c.saturating_add(reach).clamp(0, ARENA_MAX_Q) / self.cell).min(self.side - 1);
            lo..=hi
        };
        let squares = (
            i64::from(reach) * i64::from(reach),
            i64::from(radius) * i64::from(radius),
        );
        // The cells meeting the disk, as a column range per row: the square's corner cells
        // are a third of it and hold nothing in view. A row's distance from the centre (0
        // when the centre is in it; the edge rows also hold what is beyond the arena's edge,
        // so they reach to infinity) leaves `m` across, so the columns within `m` of it.
        let reach = i64::from(reach);
        let (cx, cy, cell) = (
            i64::from(center.x),
            i64::from(center.y),
            i64::from(self.cell),
        );
        let last = i64::from(self.side - 1);
        let col = |x: i64| (x.clamp(0, i64::from(ARENA_MAX_Q)) / cell).min(last) as i32;
        // Mark what those cells hold within reach, and within the radius (players' keep and
        // inside words, then the projectiles'), then read the marks in order: cheaper than
        // sorting.
        let (np, nq) = (
            self.players.order.len().div_ceil(64),
            self.projectiles.order.len().div_ceil(64),
        );
        marks.clear();
        marks.resize(2 * (np + nq), 0);
        let (player_marks, projectile_marks) = marks.split_at_mut(2 * np);
        let (player_keep, player_inside) = player_marks.split_at_mut(np);
        let (projectile_keep, projectile_inside) = projectile_marks.split_at_mut(nq);
        for row in span(center.y) {
            let k = i64::from(row);
            let lo = if k == 0 { i64::MIN / 4 } else { k * cell };
            let hi = if k == last {
                i64::MAX / 4
            } else {
                (k + 1) * cell
            };
            let dy = (lo - cy).max(cy - hi).max(0);
            let Some(m) = (reach * reach).checked_sub(dy * dy).filter(|m| *m >= 0) else {
                continue;
            };
            let m = (m as f64).sqrt() as i64 + 1;
            // A row's cells are consecutive in the buckets: one run each.
            let cells =
                (row * self.side + col(cx - m)) as usize..=(row * self.side + col(cx + m)) as usize;
            self.players
                .mark(cells.clone(), center, squares, player_keep, player_inside);
            self.projectiles
                .mark(cells, center, squares, projectile_keep, projectile_inside);
        }
        for (keep, inside, out) in [
            (&*player_keep, &*player_inside, players),
            (&*projectile_keep, &*projectile_inside, projectiles),
        ] {
            out.clear();
            for (w, (&bits, &inside)) in keep.iter().zip(inside).enumerate() {
                let mut bits = bits;
                while bits != 0 {
                    let b = bits.trailing_zeros();
                    out.push(Near {
                        index: (w * 64) as u16 + b as u16,
                        inside: inside & (1 << b) != 0,
                    });
                    bits &= bits - 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use skirmish_shared::rules::Params;
    use skirmish_shared::workload::Wander;

    #[test]
    fn cells_outside_the_disk_are_not_searched() {
        let params = Params::new(30);
        let mut world = Wander::new(3, 1, params).worlds(1).pop().expect("a world");
        let c = QVec::new(5050, 5050);
        world.players[0].pos = QVec::new(6000, 6000); // in the square's corner: 1,343 away
        world.players[1].pos = QVec::new(5750, 5050); // 700 away
        world.players[2].pos = QVec::new(5050, 6040); // 990 away, across a cell edge
        let grid = Grid::new(&world, &[], 100);
        let (mut pl, mut pr) = (Vec::new(), Vec::new());
        grid.near(c, (800, 1000), &mut pl, &mut pr, &mut Vec::new());
        let near = |index, inside| Near { index, inside };
        assert_eq!(pl, [near(1, true), near(2, false)]);
    }

    proptest! {
        /// What is within `reach` of the centre is returned, once, in order, marked whether it
        /// is within the radius; nothing beyond `reach` is.
        #[test]
        fn near_finds_everything_within_reach_and_nothing_beyond(
            seed in 0u64..500, cx in 0..=ARENA_MAX_Q, cy in 0..=ARENA_MAX_Q,
            radius in 0..ARENA_MAX_Q, band in 0..2000i32, cell in 100..8000i32,
        ) {
            let params = Params::new(30);
            let world = Wander::new(60, seed, params).worlds(20).pop().expect("a world");
            let pos: Vec<QVec> = world.projectiles.iter().map(|p| p.pos_at(world.tick, &params)).collect();
            let grid = Grid::new(&world, &pos, cell);
            let c = QVec::new(cx, cy);
            let reach = radius + band;
            let (mut pl, mut pr) = (Vec::new(), Vec::new());
            grid.near(c, (radius, reach), &mut pl, &mut pr, &mut Vec::new());
            let truth = |all: &[QVec]| -> Vec<Near> {
                all.iter()
                    .enumerate()
                    .filter(|(_, p)| c.dist_sq(**p) <= i64::from(reach).pow(2))
                    .map(|(i, p)| Near {
                        index: i as u16,
                        inside: c.dist_sq(*p) <= i64::from(radius).pow(2),
                    })
                    .collect()
            };
            let players: Vec<QVec> = world.players.iter().map(|p| p.pos).collect();
            prop_assert_eq!(pl, truth(&players));
            prop_assert_eq!(pr, truth(&pos));
        }
    }
}
