//! The viewer's RGBA framebuffer: applies decoded VNC rectangles and tracks what changed.

/// The pixel format asked of the server: 32-bit little-endian with red at bit 16, i.e. bytes
/// blue, green, red, padding. It is Xvnc's own format at depth 24, so the server copies pixels
/// to each client without translating them (a per-client cost that grows with each viewer);
/// the framebuffer swaps blue and red once, while storing them anyway.
pub(crate) fn wire_format() -> vnc::PixelFormat {
    vnc::PixelFormat::bgra()
}

/// A rectangle of the framebuffer, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// The RGBA framebuffer a viewer maintains.
#[derive(Debug, Default)]
pub(crate) struct Framebuffer {
    width: u16,
    height: u16,
    rgba: Vec<u8>,
    version: u64,
    dirty: Vec<DirtyRect>,
    /// The size changed since the last `take_update`.
    resized: bool,
}

/// How many pending dirty rectangles are kept before they merge into one bounding box.
const MAX_DIRTY: usize = 64;

impl Framebuffer {
    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    pub(crate) fn size(&self) -> (u16, u16) {
        (self.width, self.height)
    }

    /// The pixel at (`x`, `y`), if it is on the screen.
    pub(crate) fn pixel(&self, x: u16, y: u16) -> Option<[u8; 4]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = (usize::from(y) * usize::from(self.width) + usize::from(x)) * 4;
        self.rgba.get(i..i + 4)?.try_into().ok()
    }

    /// Resizes to `width`×`height` (black, opaque) if the size differs; true if it did.
    pub(crate) fn resize(&mut self, width: u16, height: u16) -> bool {
        if (width, height) == (self.width, self.height) {
            return false;
        }
        self.width = width;
        self.height = height;
        self.rgba = [0, 0, 0, 255].repeat(usize::from(width) * usize::from(height));
        self.resized = true;
        self.mark(DirtyRect {
            x: 0,
            y: 0,
            width,
            height,
        });
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
    /// r.height` of them) at `r`, as RGBA.
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
            let dst_row = &mut self.rgba[dst..dst + row_len];
            for (d, s) in dst_row.chunks_exact_mut(4).zip(src_row.chunks_exact(4)) {
                d.copy_from_slice(&[s[2], s[1], s[0], 255]);
            }
        }
        self.mark(c);
    }

    /// Copies the pixels of `src` to `dst` (the two may overlap).
    pub(crate) fn copy(&mut self, dst: DirtyRect, src: DirtyRect) {
        let (Some(d), Some(s)) = (self.clip(dst), self.clip(src)) else {
            return;
        };
        let w = usize::from(d.width.min(s.width)) * 4;
        let h = usize::from(d.height.min(s.height));
        let stride = usize::from(self.width) * 4;
        let rows: Vec<usize> = if d.y > s.y {
            (0..h).rev().collect()
        } else {
            (0..h).collect()
        };
        for row in rows {
            let from = (usize::from(s.y) + row) * stride + usize::from(s.x) * 4;
            let to = (usize::from(d.y) + row) * stride + usize::from(d.x) * 4;
            self.rgba.copy_within(from..from + w, to);
        }
        self.mark(d);
    }

    fn mark(&mut self, r: DirtyRect) {
        self.version += 1;
        if self.dirty.len() >= MAX_DIRTY {
            let all = self.dirty.drain(..).fold(r, union);
            self.dirty.push(all);
        } else {
            self.dirty.push(r);
        }
    }

    /// Returns and forgets the rectangles changed since the last call.
    pub(crate) fn take_dirty(&mut self) -> Vec<DirtyRect> {
        std::mem::take(&mut self.dirty)
    }

    /// Returns the current pixels of everything changed since the last call (None if nothing
    /// did) and forgets the changes.
    pub(crate) fn take_update(&mut self) -> Option<FrameUpdate> {
        if self.dirty.is_empty() && !self.resized {
            return None;
        }
        let dirty = std::mem::take(&mut self.dirty);
        let resized = std::mem::take(&mut self.resized);
        let full = DirtyRect {
            x: 0,
            y: 0,
            width: self.width,
            height: self.height,
        };
        let rects = if resized || dirty.contains(&full) {
            vec![RectPixels {
                rect: full,
                rgba: self.rgba.clone(),
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
        let stride = usize::from(self.width) * 4;
        let mut rgba = Vec::with_capacity(row_len * usize::from(r.height));
        for row in 0..usize::from(r.height) {
            let start = (usize::from(r.y) + row) * stride + usize::from(r.x) * 4;
            rgba.extend_from_slice(&self.rgba[start..start + row_len]);
        }
        RectPixels { rect: r, rgba }
    }

    pub(crate) fn snapshot(&self) -> Frame {
        Frame {
            width: self.width,
            height: self.height,
            rgba: self.rgba.clone(),
            version: self.version,
        }
    }
}

/// The bounding box of two rectangles.
fn union(a: DirtyRect, b: DirtyRect) -> DirtyRect {
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

    fn rect(x: u16, y: u16, width: u16, height: u16) -> DirtyRect {
        DirtyRect {
            x,
            y,
            width,
            height,
        }
    }

    #[test]
    fn put_sets_alpha_and_clips() {
        let mut fb = Framebuffer::default();
        fb.resize(4, 2);
        fb.take_dirty();
        fb.put(rect(3, 1, 2, 1), &[3, 2, 1, 0, 9, 9, 9, 0]);
        assert_eq!(&fb.rgba[(4 + 3) * 4..], &[1, 2, 3, 255]);
        assert_eq!(fb.pixel(3, 1), Some([1, 2, 3, 255]));
        assert_eq!(fb.pixel(4, 1), None);
        assert_eq!(fb.take_dirty(), vec![rect(3, 1, 1, 1)]);
    }

    #[test]
    fn copy_handles_overlap_downwards() {
        let mut fb = Framebuffer::default();
        fb.resize(1, 3);
        fb.put(rect(0, 0, 1, 1), &[0, 0, 10, 0]);
        fb.put(rect(0, 1, 1, 1), &[0, 0, 20, 0]);
        fb.copy(rect(0, 1, 1, 2), rect(0, 0, 1, 2));
        let reds: Vec<u8> = fb.rgba.chunks(4).map(|p| p[0]).collect();
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

        fb.put(rect(1, 1, 2, 1), &[0, 0, 1, 0, 0, 0, 2, 0]);
        // A later change of the same pixels: only the latest survive.
        fb.put(rect(2, 1, 1, 1), &[0, 0, 3, 0]);
        let u = fb.take_update().unwrap();
        assert!(!u.resized);
        assert_eq!((u.width, u.height), (3, 2));
        assert_eq!(u.rects[0].rect, rect(1, 1, 2, 1));
        assert_eq!(u.rects[0].rgba, vec![1, 0, 0, 255, 3, 0, 0, 255]);
        assert_eq!(u.version, fb.version());
    }

    #[test]
    fn many_dirty_rects_merge() {
        let mut fb = Framebuffer::default();
        fb.resize(100, 100);
        for i in 0..100 {
            fb.put(rect(i, i, 1, 1), &[0; 4]);
        }
        let dirty = fb.take_dirty();
        assert!(dirty.len() <= MAX_DIRTY);
        assert!(dirty.contains(&rect(0, 0, 100, 100)) || dirty.iter().any(|r| r.width > 1));
    }
}
