//! The viewer's framebuffer: applies decoded VNC rectangles and tracks, for each consumer, what
//! changed.

use std::collections::BTreeMap;

use crate::region::Region;

/// The pixel format asked of the server: 32-bit little-endian with red at bit 16, i.e. bytes
/// blue, green, red, padding. It is Xvnc's own format at depth 24, so the server copies pixels
/// to each client without translating them (a per-client cost that grows with each viewer);
/// the framebuffer swaps blue and red once, while storing them anyway.
pub(crate) fn wire_format() -> vnc::PixelFormat {
    vnc::PixelFormat::bgra()
}

/// A rectangle of the framebuffer, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DirtyRect {
    /// Left edge.
    pub x: u16,
    /// Top edge.
    pub y: u16,
    /// Width.
    pub width: u16,
    /// Height.
    pub height: u16,
}

impl DirtyRect {
    /// The rectangle of `width` × `height` pixels whose top left corner is (`x`, `y`).
    pub const fn new(x: u16, y: u16, width: u16, height: u16) -> DirtyRect {
        DirtyRect {
            x,
            y,
            width,
            height,
        }
    }
}

impl From<vnc::Rect> for DirtyRect {
    fn from(r: vnc::Rect) -> Self {
        DirtyRect {
            x: r.x,
            y: r.y,
            width: r.width,
            height: r.height,
        }
    }
}

/// A snapshot of the remote screen.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
    /// `width * height` pixels, 4 bytes each: red, green, blue, alpha (always 255).
    pub rgba: Vec<u8>,
    /// Incremented each time the framebuffer changes.
    pub version: u64,
}

/// The pixels of one changed rectangle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RectPixels {
    /// Where on the screen.
    pub rect: DirtyRect,
    /// `rect.width * rect.height` pixels, row by row, 4 bytes each: red, green, blue, alpha
    /// (always 255).
    pub rgba: Vec<u8>,
}

/// What changed on the remote screen since the previous
/// [`FrameSource::take_update`](crate::FrameSource::take_update): only the latest pixels of the merged changed rectangles,
/// however long the caller took, so a slow reader never makes anything queue up.
#[derive(Debug, Clone)]
pub struct FrameUpdate {
    /// Screen width in pixels.
    pub width: u16,
    /// Screen height in pixels.
    pub height: u16,
    /// The screen size changed since the previous update: `rects` then holds the whole screen,
    /// and a texture must be reallocated rather than patched.
    pub resized: bool,
    /// The changed rectangles with their current pixels (they may overlap).
    pub rects: Vec<RectPixels>,
    /// The framebuffer version these pixels belong to.
    pub version: u64,
}

/// How a [`Framebuffer`] stores its pixels, 4 bytes each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum PixelOrder {
    /// Red, green, blue, alpha (255): what viewers hand to windows.
    #[default]
    Rgba,
    /// As they come on the wire (see [`wire_format`]): blue, green, red, padding. A fan-out
    /// keeps them so, to serve viewers of the same format with plain copies.
    Wire,
}

/// Identifies one extra consumer of a [`Framebuffer`] (see [`Framebuffer::add_region`]).
pub(crate) type RegionId = u64;

/// The framebuffer a viewer maintains.
///
/// Besides the pixels it keeps, for each consumer, what changed since that consumer last took
/// its changes: the frame source's [`Region`] and any number of extra ones (a fan-out's
/// viewers), all updated under the same lock as the pixels so they never disagree.
#[derive(Debug, Default)]
pub(crate) struct Framebuffer {
    width: u16,
    height: u16,
    order: PixelOrder,
    pixels: Vec<u8>,
    version: u64,
    /// The frame source's pending changes.
    source: Region,
    /// Other consumers' pending changes.
    regions: BTreeMap<RegionId, Region>,
    next_region: RegionId,
}

impl Framebuffer {
    /// An empty (0×0) framebuffer storing pixels in `order`.
    pub(crate) fn new(order: PixelOrder) -> Framebuffer {
        Framebuffer {
            order,
            ..Framebuffer::default()
        }
    }

    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    pub(crate) fn size(&self) -> (u16, u16) {
        (self.width, self.height)
    }

    /// The pixel at (`x`, `y`) in the framebuffer's order, if it is on the screen.
    pub(crate) fn pixel(&self, x: u16, y: u16) -> Option<[u8; 4]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = (usize::from(y) * usize::from(self.width) + usize::from(x)) * 4;
        self.pixels.get(i..i + 4)?.try_into().ok()
    }

    /// The stored bytes of `width` pixels of row `y` from column `x`, which must lie on the
    /// screen.
    pub(crate) fn row(&self, x: u16, y: u16, width: u16) -> &[u8] {
        let start = (usize::from(y) * usize::from(self.width) + usize::from(x)) * 4;
        &self.pixels[start..start + usize::from(width) * 4]
    }

    /// Resizes to `width`×`height` (black, opaque) if the size differs; true if it did.
    pub(crate) fn resize(&mut self, width: u16, height: u16) -> bool {
        if (width, height) == (self.width, self.height) {
            return false;
        }
        self.width = width;
        self.height = height;
        let black = match self.order {
            PixelOrder::Rgba => [0, 0, 0, 255],
            PixelOrder::Wire => [0, 0, 0, 0],
        };
        self.pixels = black.repeat(usize::from(width) * usize::from(height));
        self.version += 1;
        self.source.resized(width, height);
        for region in self.regions.values_mut() {
            region.resized(width, height);
        }
        true
    }

    /// Clips `r` to the screen; None if nothing of it is visible.
    fn clip(&self, r: DirtyRect) -> Option<DirtyRect> {
        if r.x >= self.width || r.y >= self.height || r.width == 0 || r.height == 0 {
            return None;
        }
        Some(DirtyRect {
            x: r.x,
            y: r.y,
            width: r.width.min(self.width - r.x),
            height: r.height.min(self.height - r.y),
        })
    }

    /// Writes `data` (BGRx pixels — the wire format, see [`wire_format`] — `r.width *
    /// r.height` of them) at `r`, in the framebuffer's order.
    pub(crate) fn put(&mut self, r: DirtyRect, data: &[u8]) {
        let Some(c) = self.clip(r) else { return };
        let src_stride = usize::from(r.width) * 4;
        let row_len = usize::from(c.width) * 4;
        for row in 0..usize::from(c.height) {
            let src = row * src_stride;
            let Some(src_row) = data.get(src..src + row_len) else {
                break;
            };
            let dst = ((usize::from(c.y) + row) * usize::from(self.width) + usize::from(c.x)) * 4;
            let dst_row = &mut self.pixels[dst..dst + row_len];
            match self.order {
                PixelOrder::Wire => dst_row.copy_from_slice(src_row),
                PixelOrder::Rgba => {
                    for (d, s) in dst_row.chunks_exact_mut(4).zip(src_row.chunks_exact(4)) {
                        d.copy_from_slice(&[s[2], s[1], s[0], 255]);
                    }
                }
            }
        }
        self.mark(c);
    }

    /// Copies the pixels of `src` to `dst` (the two may overlap).
    pub(crate) fn copy(&mut self, dst: DirtyRect, src: DirtyRect) {
        let (Some(d), Some(s)) = (self.clip(dst), self.clip(src)) else {
            return;
        };
        let d = DirtyRect {
            width: d.width.min(s.width),
            height: d.height.min(s.height),
            ..d
        };
        let w = usize::from(d.width) * 4;
        let h = usize::from(d.height);
        let stride = usize::from(self.width) * 4;
        let rows: Vec<usize> = if d.y > s.y {
            (0..h).rev().collect()
        } else {
            (0..h).collect()
        };
        for row in rows {
            let from = (usize::from(s.y) + row) * stride + usize::from(s.x) * 4;
            let to = (usize::from(d.y) + row) * stride + usize::from(d.x) * 4;
            self.pixels.copy_within(from..from + w, to);
        }
        self.version += 1;
        self.source.mark(d);
        for region in self.regions.values_mut() {
            region.copied(d, s.x, s.y);
        }
    }

    fn mark(&mut self, r: DirtyRect) {
        self.version += 1;
        self.source.mark(r);
        for region in self.regions.values_mut() {
            region.mark(r);
        }
    }

    /// Adds a consumer that tracks copies, with the whole screen pending; returns its id and
    /// the screen size it starts from.
    pub(crate) fn add_region(&mut self) -> (RegionId, (u16, u16)) {
        let id = self.next_region;
        self.next_region += 1;
        let mut region = Region::with_copies();
        if self.width > 0 && self.height > 0 {
            region.mark(DirtyRect {
                x: 0,
                y: 0,
                width: self.width,
                height: self.height,
            });
        }
        self.regions.insert(id, region);
        (id, self.size())
    }

    /// Forgets consumer `id`.
    pub(crate) fn remove_region(&mut self, id: RegionId) {
        self.regions.remove(&id);
    }

    /// Consumer `id`'s pending changes (`None` for an unknown id).
    pub(crate) fn region(&mut self, id: RegionId) -> Option<&mut Region> {
        self.regions.get_mut(&id)
    }

    /// Marks `r` (clipped) as changed for consumer `id` only: it asked for those pixels again.
    pub(crate) fn mark_region(&mut self, id: RegionId, r: DirtyRect) {
        let clipped = self.clip(r);
        if let (Some(region), Some(r)) = (self.regions.get_mut(&id), clipped) {
            region.mark(r);
        }
    }

    /// The rectangles changed since the last take, kept.
    pub(crate) fn peek_dirty(&self) -> Vec<DirtyRect> {
        self.source.peek_dirty()
    }

    /// Returns and forgets the rectangles changed since the last call.
    pub(crate) fn take_dirty(&mut self) -> Vec<DirtyRect> {
        self.source.take_dirty()
    }

    /// Returns the current pixels of everything changed since the last call (None if nothing
    /// did) and forgets the changes.
    pub(crate) fn take_update(&mut self) -> Option<FrameUpdate> {
        if self.source.is_empty() {
            return None;
        }
        let resized = self.source.take_resized();
        let dirty = self.source.take_dirty();
        let full = DirtyRect {
            x: 0,
            y: 0,
            width: self.width,
            height: self.height,
        };
        let rects = if resized || dirty.contains(&full) {
            vec![RectPixels {
                rect: full,
                rgba: self.pixels.clone(),
            }]
        } else {
            dirty.into_iter().map(|r| self.pixels_of(r)).collect()
        };
        Some(FrameUpdate {
            width: self.width,
            height: self.height,
            resized,
            rects,
            version: self.version,
        })
    }

    /// A copy of the pixels of `r`, which lies within the screen.
    fn pixels_of(&self, r: DirtyRect) -> RectPixels {
        let row_len = usize::from(r.width) * 4;
        let mut rgba = Vec::with_capacity(row_len * usize::from(r.height));
        for row in 0..r.height {
            rgba.extend_from_slice(self.row(r.x, r.y + row, r.width));
        }
        RectPixels { rect: r, rgba }
    }

    pub(crate) fn snapshot(&self) -> Frame {
        Frame {
            width: self.width,
            height: self.height,
            rgba: self.pixels.clone(),
            version: self.version,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_sets_alpha_and_clips() {
        let mut fb = Framebuffer::default();
        fb.resize(4, 2);
        fb.take_dirty();
        fb.put(DirtyRect::new(3, 1, 2, 1), &[3, 2, 1, 0, 9, 9, 9, 0]);
        assert_eq!(&fb.pixels[(4 + 3) * 4..], &[1, 2, 3, 255]);
        assert_eq!(fb.pixel(3, 1), Some([1, 2, 3, 255]));
        assert_eq!(fb.pixel(4, 1), None);
        assert_eq!(fb.take_dirty(), vec![DirtyRect::new(3, 1, 1, 1)]);
    }

    #[test]
    fn copy_handles_overlap_downwards() {
        let mut fb = Framebuffer::default();
        fb.resize(1, 3);
        fb.put(DirtyRect::new(0, 0, 1, 1), &[0, 0, 10, 0]);
        fb.put(DirtyRect::new(0, 1, 1, 1), &[0, 0, 20, 0]);
        fb.copy(DirtyRect::new(0, 1, 1, 2), DirtyRect::new(0, 0, 1, 2));
        let reds: Vec<u8> = fb.pixels.chunks(4).map(|p| p[0]).collect();
        assert_eq!(reds, vec![10, 10, 20]);
    }

    #[test]
    fn update_carries_current_pixels_of_changed_rects_only() {
        let mut fb = Framebuffer::default();
        fb.resize(3, 2);
        let first = fb.take_update().unwrap();
        assert!(first.resized);
        assert_eq!(first.rects.len(), 1);
        assert_eq!(first.rects[0].rgba.len(), 3 * 2 * 4);
        assert!(fb.take_update().is_none());

        fb.put(DirtyRect::new(1, 1, 2, 1), &[0, 0, 1, 0, 0, 0, 2, 0]);
        // A later change of the same pixels: only the latest survive.
        fb.put(DirtyRect::new(2, 1, 1, 1), &[0, 0, 3, 0]);
        let u = fb.take_update().unwrap();
        assert!(!u.resized);
        assert_eq!((u.width, u.height), (3, 2));
        assert_eq!(u.rects[0].rect, DirtyRect::new(1, 1, 2, 1));
        assert_eq!(u.rects[0].rgba, vec![1, 0, 0, 255, 3, 0, 0, 255]);
        assert_eq!(u.version, fb.version());
    }

    #[test]
    fn many_dirty_rects_merge() {
        let mut fb = Framebuffer::default();
        fb.resize(100, 100);
        for i in 0..100 {
            fb.put(DirtyRect::new(i, i, 1, 1), &[0; 4]);
        }
        let dirty = fb.take_dirty();
        assert!(dirty.len() <= crate::region::MAX_DIRTY);
        assert!(
            dirty.contains(&DirtyRect::new(0, 0, 100, 100)) || dirty.iter().any(|r| r.width > 1)
        );
    }
}
