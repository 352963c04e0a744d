//! The remote pointer's shape, as the server sends it with the Cursor pseudo-encoding.

use std::sync::Arc;

/// The shape of the remote pointer: an RGBA image and its hotspot.
///
/// With the Cursor pseudo-encoding the server no longer paints the pointer into the
/// framebuffer; a viewer draws this image at the pointer position minus the hotspot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorShape {
    /// Width in pixels; 0 means the app hides the pointer.
    pub width: u16,
    /// Height in pixels; 0 means the app hides the pointer.
    pub height: u16,
    /// Column of the pixel that sits under the pointer position.
    pub hotspot_x: u16,
    /// Row of the pixel that sits under the pointer position.
    pub hotspot_y: u16,
    /// `width * height` pixels, 4 bytes each: red, green, blue, alpha (0 or 255, not
    /// premultiplied).
    pub rgba: Arc<[u8]>,
    /// Increases with every shape the server sends (1 for the first), so a window can redraw
    /// only on change.
    pub version: u64,
}

impl CursorShape {
    /// Builds a shape from vnc-rs' `SetCursor` event: `rect.x`/`rect.y` is the hotspot and
    /// `data` the pixels in the wire format (blue, green, red) with the mask already in the
    /// fourth byte.
    pub(crate) fn from_event(rect: vnc::Rect, mut data: Vec<u8>, version: u64) -> CursorShape {
        let pixels = usize::from(rect.width) * usize::from(rect.height);
        let (width, height, rgba) = if data.len() == pixels * 4 && pixels > 0 {
            for p in data.chunks_exact_mut(4) {
                p.swap(0, 2);
            }
            (rect.width, rect.height, data)
        } else {
            (0, 0, Vec::new())
        };
        CursorShape {
            width,
            height,
            hotspot_x: rect.x.min(width.saturating_sub(1)),
            hotspot_y: rect.y.min(height.saturating_sub(1)),
            rgba: rgba.into(),
            version,
        }
    }

    /// Whether the pointer is invisible (an empty shape).
    pub fn is_hidden(&self) -> bool {
        self.width == 0 || self.height == 0 || self.rgba.chunks_exact(4).all(|p| p[3] == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rect(x: u16, y: u16, width: u16, height: u16) -> vnc::Rect {
        vnc::Rect {
            x,
            y,
            width,
            height,
        }
    }

    #[test]
    fn keeps_hotspot_and_pixels() {
        let data = vec![3, 2, 1, 255, 6, 5, 4, 0];
        let c = CursorShape::from_event(rect(1, 0, 2, 1), data, 7);
        assert_eq!((c.width, c.height, c.hotspot_x, c.hotspot_y), (2, 1, 1, 0));
        assert_eq!(&*c.rgba, &[1, 2, 3, 255, 4, 5, 6, 0]);
        assert_eq!(c.version, 7);
        assert!(!c.is_hidden());
    }

    #[test]
    fn empty_or_malformed_shape_is_hidden() {
        assert!(CursorShape::from_event(rect(0, 0, 0, 0), vec![], 1).is_hidden());
        let short = CursorShape::from_event(rect(0, 0, 4, 4), vec![0; 4], 2);
        assert!(short.is_hidden());
        assert_eq!((short.width, short.hotspot_x), (0, 0));
    }
}
