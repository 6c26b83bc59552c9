//! The arena cut into square cells, and the cells within a view radius of a point. A cell is
//! the unit the match will encode once per tick; a client's view is a set of cells.

use skirmish_shared::quant::QVec;
use skirmish_shared::rules::ARENA_MAX_Q;

/// A cell's index, row-major.
pub type CellId = u16;

/// A square grid over the arena (`0..=ARENA_MAX_Q` on both axes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    /// A cell's side, position steps.
    cell: i32,
    /// Cells per side.
    side: i32,
}

impl Grid {
    /// A grid of cells `cell` position steps wide (at least 1; at most 256 x 256 cells).
    #[must_use]
    pub fn new(cell: i32) -> Self {
        let cell = cell.max((ARENA_MAX_Q + 256) / 256).max(1);
        let side = ARENA_MAX_Q / cell + 1;
        Self { cell, side }
    }

    /// Cells in the grid.
    #[must_use]
    pub fn len(&self) -> usize {
        (self.side * self.side) as usize
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cell a position is in (positions outside the arena are clamped to its edge).
    #[must_use]
    pub fn cell_of(&self, p: QVec) -> CellId {
        let col = (p.x.clamp(0, ARENA_MAX_Q) / self.cell).min(self.side - 1);
        let row = (p.y.clamp(0, ARENA_MAX_Q) / self.cell).min(self.side - 1);
        (row * self.side + col) as CellId
    }

    /// Every cell with a point within `radius` position steps of `center`, as a bit set
    /// (`visible[cell]`). A cell counts when its square comes within the radius, so all of a
    /// cell's entities are sent or none: a client may get a little more than its radius.
    pub fn in_view(&self, center: QVec, radius: i32, visible: &mut Vec<bool>) {
        visible.clear();
        visible.resize(self.len(), false);
        let r = i64::from(radius.max(0));
        let (lo_col, hi_col) = self.span(center.x, radius);
        let (lo_row, hi_row) = self.span(center.y, radius);
        for row in lo_row..=hi_row {
            for col in lo_col..=hi_col {
                // The cell's nearest point to the centre.
                let nx = center.x.clamp(col * self.cell, (col + 1) * self.cell - 1);
                let ny = center.y.clamp(row * self.cell, (row + 1) * self.cell - 1);
                if center.dist_sq(QVec::new(nx, ny)) <= r * r {
                    visible[(row * self.side + col) as usize] = true;
                }
            }
        }
    }

    /// The columns (or rows) a radius around `c` touches, clamped to the grid.
    fn span(&self, c: i32, radius: i32) -> (i32, i32) {
        let lo = (c.saturating_sub(radius).max(0) / self.cell).min(self.side - 1);
        let hi = (c.saturating_add(radius).clamp(0, ARENA_MAX_Q) / self.cell).min(self.side - 1);
        (lo, hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_view_as_wide_as_the_arena_sees_every_cell() {
        let grid = Grid::new(2000);
        let mut visible = Vec::new();
        grid.in_view(QVec::new(0, 0), 2 * ARENA_MAX_Q, &mut visible);
        assert_eq!(visible.len(), grid.len());
        assert!(visible.iter().all(|v| *v));
    }

    #[test]
    fn the_corners_of_the_arena_are_in_the_corner_cells() {
        let grid = Grid::new(2000);
        assert_eq!(grid.cell_of(QVec::new(0, 0)), 0);
        let last = grid.cell_of(QVec::new(ARENA_MAX_Q, ARENA_MAX_Q));
        assert_eq!(usize::from(last), grid.len() - 1);
        assert_eq!(
            grid.cell_of(QVec::new(-5, 99_999)),
            grid.cell_of(QVec::new(0, ARENA_MAX_Q))
        );
    }

    proptest! {
        /// Every entity within the radius is in a visible cell; a cell far beyond the radius
        /// is not visible.
        #[test]
        fn what_is_within_the_radius_is_in_view(
            cx in 0..=ARENA_MAX_Q, cy in 0..=ARENA_MAX_Q,
            ex in 0..=ARENA_MAX_Q, ey in 0..=ARENA_MAX_Q,
            radius in 0..8000i32, cell in 500..4000i32,
        ) {
            let grid = Grid::new(cell);
            let mut visible = Vec::new();
            let (c, e) = (QVec::new(cx, cy), QVec::new(ex, ey));
            grid.in_view(c, radius, &mut visible);
            let r = i64::from(radius);
            if c.dist_sq(e) <= r * r {
                prop_assert!(visible[usize::from(grid.cell_of(e))]);
            }
            // A cell whose every point is farther than radius + its diagonal is never in view.
            let diag = i64::from(grid.cell) * 2;
            if c.dist_sq(e) > (r + diag) * (r + diag) {
                prop_assert!(!visible[usize::from(grid.cell_of(e))]);
            }
        }
    }
}
