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

/// Indices sorted by cell (ascending within a cell), and where each cell's run starts.
#[derive(Debug, Clone, Default)]
struct Buckets {
    order: Vec<u16>,
    start: Vec<u32>,
}

impl Buckets {
    fn new(cells: impl ExactSizeIterator<Item = usize>, n_cells: usize) -> Self {
        let cells: Vec<usize> = cells.collect();
        let mut start = vec![0u32; n_cells + 1];
        for &c in &cells {
            start[c + 1] += 1;
        }
        for i in 0..n_cells {
            start[i + 1] += start[i];
        }
        let mut next = start.clone();
        let mut order = vec![0u16; cells.len()];
        for (i, &c) in cells.iter().enumerate() {
            order[next[c] as usize] = i as u16;
            next[c] += 1;
        }
        Self { order, start }
    }

    /// What the consecutive cells `cells` hold.
    fn cells(&self, cells: std::ops::RangeInclusive<usize>) -> &[u16] {
        &self.order[self.start[*cells.start()] as usize..self.start[*cells.end() + 1] as usize]
    }
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
        Self {
            cell,
            side,
            players: Buckets::new(world.players.iter().map(|p| at(p.pos)), n),
            projectiles: Buckets::new(projectile_pos.iter().map(|&p| at(p)), n),
        }
    }

    /// Indices of the players and projectiles in the cells that meet the disk of radius
    /// `reach` around `center`, each list in ascending order (which is id order): everything
    /// within `reach` of the centre, and what shares a cell with it. `marks` is scratch
    /// space.
    pub fn near(
        &self,
        center: QVec,
        reach: i32,
        players: &mut Vec<u16>,
        projectiles: &mut Vec<u16>,
        marks: &mut Vec<u64>,
    ) {
        let span = |c: i32| {
            let lo = (c.saturating_sub(reach).clamp(0, ARENA_MAX_Q) / self.cell).min(self.side - 1);
            let hi = (c.saturating_add(reach).clamp(0, ARENA_MAX_Q) / self.cell).min(self.side - 1);
            lo..=hi
        };
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
        // Mark what those cells hold (players in the first words of `marks`, projectiles
        // after them), then read the marks in order: cheaper than sorting.
        let split = self.players.order.len().div_ceil(64);
        marks.clear();
        marks.resize(split + self.projectiles.order.len().div_ceil(64), 0);
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
            for &i in self.players.cells(cells.clone()) {
                marks[usize::from(i) / 64] |= 1 << (i % 64);
            }
            for &i in self.projectiles.cells(cells) {
                marks[split + usize::from(i) / 64] |= 1 << (i % 64);
            }
        }
        let (player_marks, projectile_marks) = marks.split_at(split);
        for (marks, out) in [(player_marks, players), (projectile_marks, projectiles)] {
            out.clear();
            for (w, &bits) in marks.iter().enumerate() {
                let mut bits = bits;
                while bits != 0 {
                    out.push((w * 64) as u16 + bits.trailing_zeros() as u16);
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
        grid.near(c, 1000, &mut pl, &mut pr, &mut Vec::new());
        assert_eq!(pl, [1, 2]);
    }

    proptest! {
        /// Whatever is within `reach` of the centre is among the indices returned, once, in
        /// order; far fewer than the square around the disk holds.
        #[test]
        fn near_finds_everything_within_reach(
            seed in 0u64..500, cx in 0..=ARENA_MAX_Q, cy in 0..=ARENA_MAX_Q,
            reach in 0..ARENA_MAX_Q, cell in 100..8000i32,
        ) {
            let params = Params::new(30);
            let world = Wander::new(60, seed, params).worlds(20).pop().expect("a world");
            let pos: Vec<QVec> = world.projectiles.iter().map(|p| p.pos_at(world.tick, &params)).collect();
            let grid = Grid::new(&world, &pos, cell);
            let c = QVec::new(cx, cy);
            let (mut pl, mut pr) = (Vec::new(), Vec::new());
            grid.near(c, reach, &mut pl, &mut pr, &mut Vec::new());
            prop_assert!(pl.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(pr.windows(2).all(|w| w[0] < w[1]));
            let within = |p: QVec| c.dist_sq(p) <= i64::from(reach) * i64::from(reach);
            for (i, p) in world.players.iter().enumerate() {
                if within(p.pos) {
                    prop_assert!(pl.contains(&(i as u16)), "player {} missed", i);
                }
            }
            for (i, p) in pos.iter().enumerate() {
                if within(*p) {
                    prop_assert!(pr.contains(&(i as u16)), "projectile {} missed", i);
                }
            }
        }
    }
}
