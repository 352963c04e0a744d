//! Composing one FramebufferUpdate message (RFC 6143 §7.6.1) for one viewer: pseudo-rectangles
//! (desktop size, pointer shape), CopyRect and Raw rectangles, in that viewer's pixel format.

use crate::cursor::CursorShape;
use crate::fanout::format::Converter;
use crate::fanout::messages::encoding;
use crate::framebuffer::{DirtyRect, Framebuffer};
use crate::region::Copy;

/// Why the desktop size is being told (the x field of an ExtendedDesktopSize rectangle).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SizeReason {
    /// The server changed it (or the viewer learns the layout for the first time).
    Server = 0,
    /// In answer to this viewer's SetDesktopSize.
    ThisClient = 1,
}

/// The screen id every layout the fan-out tells has: one screen covering the desktop.
const SCREEN_ID: u32 = 0;

/// A FramebufferUpdate being written into a reused buffer.
pub(crate) struct Update<'a> {
    buf: &'a mut Vec<u8>,
    rects: u16,
    conv: Converter,
}

impl<'a> Update<'a> {
    /// Starts a message in `buf` (cleared first) for a viewer whose pixels go through `conv`.
    pub(crate) fn begin(buf: &'a mut Vec<u8>, conv: Converter) -> Update<'a> {
        buf.clear();
        buf.extend_from_slice(&[0, 0, 0, 0]);
        Update {
            buf,
            rects: 0,
            conv,
        }
    }

    /// How many rectangles so far.
    pub(crate) fn rects(&self) -> u16 {
        self.rects
    }

    fn header(&mut self, r: DirtyRect, encoding: i32) {
        for v in [r.x, r.y, r.width, r.height] {
            self.buf.extend_from_slice(&v.to_be_bytes());
        }
        self.buf.extend_from_slice(&encoding.to_be_bytes());
        self.rects += 1;
    }

    /// The current pixels of `r` (which lies within the screen) as a Raw rectangle.
    pub(crate) fn raw(&mut self, fb: &Framebuffer, r: DirtyRect) {
        self.header(r, encoding::RAW);
        self.buf
            .reserve(usize::from(r.width) * usize::from(r.height) * 4);
        for row in 0..r.height {
            self.conv.extend(self.buf, fb.row(r.x, r.y + row, r.width));
        }
    }

    /// A CopyRect rectangle.
    pub(crate) fn copy(&mut self, c: Copy) {
        self.header(c.dst, encoding::COPY_RECT);
        self.buf.extend_from_slice(&c.src_x.to_be_bytes());
        self.buf.extend_from_slice(&c.src_y.to_be_bytes());
    }

    /// A DesktopSize pseudo-rectangle.
    pub(crate) fn desktop_size(&mut self, (width, height): (u16, u16)) {
        let r = DirtyRect {
            x: 0,
            y: 0,
            width,
            height,
        };
        self.header(r, encoding::DESKTOP_SIZE);
    }

    /// An ExtendedDesktopSize pseudo-rectangle with one screen covering the desktop; `status`
    /// is 0 for success (and always 0 unless `reason` is [`SizeReason::ThisClient`]).
    pub(crate) fn extended_desktop_size(
        &mut self,
        reason: SizeReason,
        status: u16,
        (width, height): (u16, u16),
    ) {
        let r = DirtyRect {
            x: reason as u16,
            y: status,
            width,
            height,
        };
        self.header(r, encoding::EXTENDED_DESKTOP_SIZE);
        self.buf.extend_from_slice(&[1, 0, 0, 0]);
        self.buf.extend_from_slice(&SCREEN_ID.to_be_bytes());
        for v in [0, 0, width, height] {
            self.buf.extend_from_slice(&v.to_be_bytes());
        }
        self.buf.extend_from_slice(&0u32.to_be_bytes());
    }

    /// A Cursor pseudo-rectangle: the shape's pixels and its bitmask (opaque where alpha is
    /// not 0); an empty shape hides the pointer.
    pub(crate) fn cursor(&mut self, shape: &CursorShape) {
        let (w, h) = (shape.width, shape.height);
        let pixels = usize::from(w) * usize::from(h);
        if pixels == 0 || shape.rgba.len() != pixels * 4 {
            self.header(DirtyRect::default(), encoding::CURSOR);
            return;
        }
        let r = DirtyRect {
            x: shape.hotspot_x,
            y: shape.hotspot_y,
            width: w,
            height: h,
        };
        self.header(r, encoding::CURSOR);
        for p in shape.rgba.chunks_exact(4) {
            self.buf
                .extend_from_slice(&self.conv.pixel([p[0], p[1], p[2]]));
        }
        let stride = usize::from(w).div_ceil(8);
        for row in shape.rgba.chunks_exact(usize::from(w) * 4) {
            let mut mask = vec![0u8; stride];
            for (x, p) in row.chunks_exact(4).enumerate() {
                if p[3] != 0 {
                    mask[x / 8] |= 0x80 >> (x % 8);
                }
            }
            self.buf.extend_from_slice(&mask);
        }
    }

    /// Ends the message: fills in the rectangle count.
    pub(crate) fn finish(self) {
        let n = self.rects.to_be_bytes();
        self.buf[2..4].copy_from_slice(&n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framebuffer::PixelOrder;

    #[test]
    fn raw_and_copy_rectangles() {
        let mut fb = Framebuffer::new(PixelOrder::Wire);
        fb.resize(3, 2);
        fb.put(DirtyRect::new(1, 1, 2, 1), &[1, 2, 3, 0, 4, 5, 6, 0]);
        let mut buf = vec![9; 100];
        let mut u = Update::begin(&mut buf, Converter::Same);
        u.raw(&fb, DirtyRect::new(1, 1, 2, 1));
        u.copy(Copy {
            dst: DirtyRect::new(0, 0, 1, 1),
            src_x: 2,
            src_y: 1,
        });
        assert_eq!(u.rects(), 2);
        u.finish();
        let mut want = vec![0, 0, 0, 2];
        want.extend_from_slice(&[0, 1, 0, 1, 0, 2, 0, 1, 0, 0, 0, 0]);
        want.extend_from_slice(&[1, 2, 3, 0, 4, 5, 6, 0]);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 2, 0, 1]);
        assert_eq!(buf, want);
    }

    #[test]
    fn desktop_size_and_cursor_pseudo_rectangles() {
        let mut buf = Vec::new();
        let mut u = Update::begin(&mut buf, Converter::Same);
        u.extended_desktop_size(SizeReason::ThisClient, 0, (800, 600));
        u.finish();
        assert_eq!(&buf[4..8], &[0, 1, 0, 0]);
        assert_eq!(&buf[12..16], &(-308i32).to_be_bytes());
        assert_eq!(&buf[16..20], &[1, 0, 0, 0]);
        assert_eq!(&buf[28..32], &[3, 32, 2, 88]);
        assert_eq!(buf.len(), 4 + 12 + 4 + 16);

        let shape = CursorShape {
            width: 9,
            height: 1,
            hotspot_x: 1,
            hotspot_y: 0,
            rgba: [[10, 20, 30, 255], [0, 0, 0, 0]]
                .iter()
                .cycle()
                .take(9)
                .flatten()
                .copied()
                .collect(),
            version: 1,
        };
        let mut u = Update::begin(&mut buf, Converter::Same);
        u.cursor(&shape);
        u.finish();
        assert_eq!(&buf[4..12], &[0, 1, 0, 0, 0, 9, 0, 1]);
        assert_eq!(&buf[16..20], &[30, 20, 10, 0]);
        assert_eq!(&buf[16 + 36..], &[0b1010_1010, 0b1000_0000]);
    }
}
