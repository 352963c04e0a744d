//! [`Region`]: what one consumer of a framebuffer has not been given yet — changed rectangles,
//! copies it can replay, and whether the size changed — always bounded, however long the
//! consumer takes.

use crate::framebuffer::DirtyRect;

/// How many pending dirty rectangles are kept before they merge into one bounding box.
pub(crate) const MAX_DIRTY: usize = 64;

/// How many pending copies are kept; past that, a copy's destination is marked dirty instead.
pub(crate) const MAX_COPIES: usize = 16;

/// A copy of pixels within the screen, to be replayed before the dirty rectangles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Copy {
    /// Where the pixels go.
    pub(crate) dst: DirtyRect,
    /// Left edge of where they come from (same size as `dst`).
    pub(crate) src_x: u16,
    /// Top edge of where they come from.
    pub(crate) src_y: u16,
}

impl Copy {
    fn src(&self) -> DirtyRect {
        DirtyRect {
            x: self.src_x,
            y: self.src_y,
            ..self.dst
        }
    }
}

/// What changed since a consumer's last take.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Changes {
    /// The screen size changed (the dirty rectangles then cover the whole screen).
    pub(crate) resized: bool,
    /// Copies to replay first, in order, on the consumer's previous picture.
    pub(crate) copies: Vec<Copy>,
    /// Rectangles whose current pixels the consumer needs (they may overlap).
    pub(crate) dirty: Vec<DirtyRect>,
}

/// The changes one consumer has not taken yet. By default every copy becomes a dirty
/// destination; see [`Region::with_copies`].
///
/// The invariant, for a consumer that tracks copies: its picture, once `copies` are replayed
/// on it in order, equals the screen everywhere outside `dirty`. A copy is kept as a copy only
/// while its source lies outside `dirty` (so the consumer's source pixels are right);
/// otherwise its destination becomes dirty.
#[derive(Debug, Default)]
pub(crate) struct Region {
    changes: Changes,
    track_copies: bool,
}

impl Region {
    /// A region that keeps copies (up to [`MAX_COPIES`]) for the consumer to replay.
    pub(crate) fn with_copies() -> Region {
        Region {
            track_copies: true,
            ..Region::default()
        }
    }

    /// Whether nothing is pending.
    pub(crate) fn is_empty(&self) -> bool {
        let c = &self.changes;
        !c.resized && c.copies.is_empty() && c.dirty.is_empty()
    }

    /// Whether the size changed since the last take.
    pub(crate) fn is_resized(&self) -> bool {
        self.changes.resized
    }

    /// The pixels of `r` changed.
    pub(crate) fn mark(&mut self, r: DirtyRect) {
        let dirty = &mut self.changes.dirty;
        if dirty.iter().any(|d| contains(*d, r)) {
            return;
        }
        if dirty.len() >= MAX_DIRTY {
            let all = dirty.drain(..).fold(r, union);
            dirty.push(all);
        } else {
            dirty.push(r);
        }
    }

    /// The pixels at `(src_x, src_y)` were copied to `dst`.
    pub(crate) fn copied(&mut self, dst: DirtyRect, src_x: u16, src_y: u16) {
        let copy = Copy { dst, src_x, src_y };
        let c = &self.changes;
        let replayable = self.track_copies
            && !c.resized
            && c.copies.len() < MAX_COPIES
            && !c.dirty.iter().any(|d| intersects(*d, copy.src()));
        if replayable {
            self.changes.copies.push(copy);
        } else {
            self.mark(dst);
        }
    }

    /// The screen is now `width` × `height`: everything is dirty.
    pub(crate) fn resized(&mut self, width: u16, height: u16) {
        self.changes = Changes {
            resized: true,
            copies: Vec::new(),
            dirty: vec![DirtyRect {
                x: 0,
                y: 0,
                width,
                height,
            }],
        };
    }

    /// Forgets that the size changed, keeping the dirty pixels (the consumer was told the new
    /// size and will take the pixels later).
    pub(crate) fn take_resized(&mut self) -> bool {
        std::mem::take(&mut self.changes.resized)
    }

    /// Returns and forgets everything pending.
    pub(crate) fn take(&mut self) -> Changes {
        std::mem::take(&mut self.changes)
    }

    /// The dirty rectangles (copies count as their destination), kept.
    pub(crate) fn peek_dirty(&self) -> Vec<DirtyRect> {
        let c = &self.changes;
        c.dirty
            .iter()
            .copied()
            .chain(c.copies.iter().map(|c| c.dst))
            .collect()
    }

    /// Returns and forgets the dirty rectangles only (copies count as their destination).
    pub(crate) fn take_dirty(&mut self) -> Vec<DirtyRect> {
        let mut changes = self.take();
        changes.dirty.extend(changes.copies.iter().map(|c| c.dst));
        changes.dirty
    }
}

/// Whether `outer` contains all of `inner`.
fn contains(outer: DirtyRect, inner: DirtyRect) -> bool {
    let end = |p: u16, len: u16| u32::from(p) + u32::from(len);
    outer.x <= inner.x
        && outer.y <= inner.y
        && end(outer.x, outer.width) >= end(inner.x, inner.width)
        && end(outer.y, outer.height) >= end(inner.y, inner.height)
}

/// Whether two rectangles share a pixel.
fn intersects(a: DirtyRect, b: DirtyRect) -> bool {
    let end = |p: u16, len: u16| u32::from(p) + u32::from(len);
    u32::from(a.x) < end(b.x, b.width)
        && u32::from(b.x) < end(a.x, a.width)
        && u32::from(a.y) < end(b.y, b.height)
        && u32::from(b.y) < end(a.y, a.height)
}

/// The bounding box of two rectangles.
pub(crate) fn union(a: DirtyRect, b: DirtyRect) -> DirtyRect {
    let x0 = a.x.min(b.x);
    let y0 = a.y.min(b.y);
    let x1 = (u32::from(a.x) + u32::from(a.width)).max(u32::from(b.x) + u32::from(b.width));
    let y1 = (u32::from(a.y) + u32::from(a.height)).max(u32::from(b.y) + u32::from(b.height));
    DirtyRect {
        x: x0,
        y: y0,
        width: (x1 - u32::from(x0)) as u16,
        height: (y1 - u32::from(y0)) as u16,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_kept_only_while_their_source_is_clean() {
        let mut r = Region::with_copies();
        r.copied(DirtyRect::new(0, 0, 10, 10), 0, 5);
        r.mark(DirtyRect::new(0, 20, 5, 5));
        // Source overlaps a dirty rectangle: the destination becomes dirty.
        r.copied(DirtyRect::new(30, 30, 5, 5), 0, 20);
        let c = r.take();
        assert_eq!(
            c.copies,
            vec![Copy {
                dst: DirtyRect::new(0, 0, 10, 10),
                src_x: 0,
                src_y: 5
            }]
        );
        assert_eq!(
            c.dirty,
            vec![DirtyRect::new(0, 20, 5, 5), DirtyRect::new(30, 30, 5, 5)]
        );
        assert!(r.is_empty());
    }

    #[test]
    fn a_region_without_copies_marks_destinations() {
        let mut r = Region::default();
        r.copied(DirtyRect::new(1, 1, 2, 2), 5, 5);
        assert_eq!(r.take_dirty(), vec![DirtyRect::new(1, 1, 2, 2)]);
    }

    #[test]
    fn too_many_copies_become_dirt() {
        let mut r = Region::with_copies();
        for i in 0..(MAX_COPIES as u16 + 3) {
            r.copied(DirtyRect::new(i * 10, 0, 5, 5), i * 10, 100);
        }
        let c = r.take();
        assert_eq!(c.copies.len(), MAX_COPIES);
        assert_eq!(c.dirty.len(), 3);
    }

    #[test]
    fn contained_rects_are_not_repeated_and_many_merge() {
        let mut r = Region::default();
        r.resized(100, 100);
        r.mark(DirtyRect::new(3, 3, 4, 4));
        assert!(r.take_resized());
        assert!(!r.is_resized());
        assert_eq!(r.take_dirty(), vec![DirtyRect::new(0, 0, 100, 100)]);
        for i in 0..100 {
            r.mark(DirtyRect::new(i, i, 1, 1));
        }
        let dirty = r.take_dirty();
        assert!(dirty.len() <= MAX_DIRTY);
        assert!(dirty.iter().any(|d| d.width > 1), "{dirty:?}");
    }

    #[test]
    fn intersection_and_containment() {
        assert!(intersects(
            DirtyRect::new(0, 0, 2, 2),
            DirtyRect::new(1, 1, 2, 2)
        ));
        assert!(!intersects(
            DirtyRect::new(0, 0, 2, 2),
            DirtyRect::new(2, 0, 2, 2)
        ));
        assert!(contains(
            DirtyRect::new(0, 0, 4, 4),
            DirtyRect::new(1, 1, 3, 3)
        ));
        assert!(!contains(
            DirtyRect::new(0, 0, 4, 4),
            DirtyRect::new(1, 1, 4, 3)
        ));
    }
}
