//! Where the app's top-level windows go on its virtual screen: side by side in rows, in the
//! order they were mapped, never overlapping, on a screen just large enough to hold them (and
//! never smaller than the size it started with, so menus and dialogs have room).

/// Pixels between neighbouring windows (so that a scaled viewer, filtering linearly, blends
/// in the background at a window's edge, never a neighbour).
pub(crate) const GAP: u16 = 4;
/// The largest screen side the layout asks for; larger windows are cut to it.
pub(crate) const MAX_SIDE: u16 = 8192;

/// The layout of a set of windows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Each window's top left corner, in the order given.
    pub(crate) positions: Vec<(u16, u16)>,
    /// The screen size that holds them all.
    pub(crate) screen: (u16, u16),
}

/// Lays out windows of `sizes` (in mapping order) on a screen at least `min_screen` large:
/// rows from the top, each filled left to right up to the width of `min_screen` (or of the
/// widest window), a new row when the next window would not fit.
pub(crate) fn place(sizes: &[(u16, u16)], min_screen: (u16, u16)) -> Layout {
    let clamp = |(w, h): (u16, u16)| (w.clamp(1, MAX_SIDE), h.clamp(1, MAX_SIDE));
    let row_limit = sizes
        .iter()
        .map(|&s| u32::from(clamp(s).0))
        .max()
        .unwrap_or(0)
        .max(u32::from(min_screen.0));
    let mut positions = Vec::with_capacity(sizes.len());
    let (mut x, mut y, mut row_height) = (0u32, 0u32, 0u32);
    let (mut right, mut bottom) = (0u32, 0u32);
    for &size in sizes {
        let (w, h) = clamp(size);
        let (w, h) = (u32::from(w), u32::from(h));
        if x > 0 && x + w > row_limit {
            x = 0;
            y += row_height + u32::from(GAP);
            row_height = 0;
        }
        // Rows never start beyond the largest side: windows past it pile up in the last row.
        let y_here = y.min(u32::from(MAX_SIDE) - h);
        let x_here = x.min(u32::from(MAX_SIDE) - w);
        positions.push((x_here as u16, y_here as u16));
        right = right.max(x_here + w);
        bottom = bottom.max(y_here + h);
        x += w + u32::from(GAP);
        row_height = row_height.max(h);
    }
    let screen = (
        right.max(u32::from(min_screen.0)).min(u32::from(MAX_SIDE)) as u16,
        bottom.max(u32::from(min_screen.1)).min(u32::from(MAX_SIDE)) as u16,
    );
    Layout { positions, screen }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlaps(a: ((u16, u16), (u16, u16)), b: ((u16, u16), (u16, u16))) -> bool {
        let ((ax, ay), (aw, ah)) = a;
        let ((bx, by), (bw, bh)) = b;
        ax < bx + bw && bx < ax + aw && ay < by + bh && by < ay + ah
    }

    #[test]
    fn small_windows_sit_side_by_side_on_the_starting_screen() {
        let l = place(&[(200, 200), (300, 100), (50, 50)], (1280, 800));
        assert_eq!(l.positions, vec![(0, 0), (204, 0), (508, 0)]);
        assert_eq!(l.screen, (1280, 800));
    }

    #[test]
    fn rows_wrap_and_the_screen_grows_to_hold_everything() {
        let sizes = [(700, 500), (700, 500), (900, 600)];
        let l = place(&sizes, (1280, 800));
        assert_eq!(l.positions, vec![(0, 0), (0, 504), (0, 1008)]);
        assert_eq!(l.screen, (1280, 1608));
        for i in 0..sizes.len() {
            for j in i + 1..sizes.len() {
                assert!(!overlaps(
                    (l.positions[i], sizes[i]),
                    (l.positions[j], sizes[j])
                ));
            }
        }
    }

    #[test]
    fn a_window_wider_than_the_screen_widens_it() {
        let l = place(&[(2000, 300), (100, 100)], (1280, 800));
        assert_eq!(l.positions, vec![(0, 0), (0, 304)]);
        assert_eq!(l.screen, (2000, 800));
    }

    #[test]
    fn nothing_goes_past_the_largest_side() {
        let many = vec![(5000, 5000); 4];
        let l = place(&many, (1280, 800));
        for (&(x, y), &(w, h)) in l.positions.iter().zip(&many) {
            assert!(x + w <= MAX_SIDE && y + h <= MAX_SIDE, "{x},{y}");
        }
        assert!(l.screen.0 <= MAX_SIDE && l.screen.1 <= MAX_SIDE);
        assert_eq!(place(&[(60000, 3)], (10, 10)).screen, (MAX_SIDE, 10));
    }
}
