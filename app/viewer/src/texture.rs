//! The remote screen and pointer as egui textures.
//!
//! The screen texture is patched with the changed rectangles only
//! ([`TextureHandle::set_partial`]); it is reallocated and uploaded whole only when the
//! remote size changes. Full uploads at 40/s cost 1.2–1.5 cores under llvmpipe
//! (DISPLAY-NOTES), partial ones what changed.

use eframe::egui::{self, ColorImage, TextureHandle, TextureOptions};
use zos_display::{CursorShape, FrameUpdate};

/// Scaled windows filter linearly; drawn one to one on whole pixels, linear filtering samples
/// each texel at its centre and the picture stays exact.
const OPTIONS: TextureOptions = TextureOptions::LINEAR;

/// How many uploads of each kind a view made (logged when it closes; tests read it).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UploadCounts {
    /// Whole-texture uploads (first frame and each remote resize).
    pub full: u64,
    /// Rectangle uploads.
    pub partial: u64,
    /// Pixels uploaded by rectangle uploads.
    pub partial_pixels: u64,
}

/// The remote screen's texture.
#[derive(Default)]
pub struct ScreenTexture {
    handle: Option<TextureHandle>,
    size: (u16, u16),
    counts: UploadCounts,
}

fn image(width: u16, height: u16, rgba: &[u8]) -> ColorImage {
    // Every pixel is opaque, so premultiplied and straight alpha are the same.
    ColorImage::from_rgba_premultiplied([usize::from(width), usize::from(height)], rgba)
}

impl ScreenTexture {
    /// Applies an update: a whole new texture if the size changed, patches otherwise.
    pub fn apply(&mut self, ctx: &egui::Context, update: FrameUpdate) {
        let size = (update.width, update.height);
        if size.0 == 0 || size.1 == 0 {
            return;
        }
        let whole = update.resized || self.handle.is_none() || size != self.size;
        if whole {
            // A resize update carries the whole screen as its single rectangle.
            let full = update
                .rects
                .iter()
                .find(|r| (r.rect.width, r.rect.height) == size && r.rect.x == 0 && r.rect.y == 0);
            let img = match full {
                Some(r) => image(size.0, size.1, &r.rgba),
                None => ColorImage::filled(
                    [usize::from(size.0), usize::from(size.1)],
                    egui::Color32::BLACK,
                ),
            };
            match &mut self.handle {
                Some(h) => h.set(img, OPTIONS),
                None => self.handle = Some(ctx.load_texture("remote-screen", img, OPTIONS)),
            }
            self.size = size;
            self.counts.full += 1;
            if full.is_some() {
                return;
            }
        }
        let Some(handle) = &mut self.handle else {
            return;
        };
        for r in update.rects {
            let rect = r.rect;
            if rect.width == 0 || rect.height == 0 {
                continue;
            }
            handle.set_partial(
                [usize::from(rect.x), usize::from(rect.y)],
                image(rect.width, rect.height, &r.rgba),
                OPTIONS,
            );
            self.counts.partial += 1;
            self.counts.partial_pixels += u64::from(rect.width) * u64::from(rect.height);
        }
    }

    /// The texture and its size in remote pixels, once the first frame is in.
    pub fn get(&self) -> Option<(&TextureHandle, (u16, u16))> {
        self.handle.as_ref().map(|h| (h, self.size))
    }

    /// What was uploaded so far.
    pub fn counts(&self) -> UploadCounts {
        self.counts
    }
}

/// The remote pointer's texture, replaced only when the shape changes.
#[derive(Default)]
pub struct CursorTexture {
    version: u64,
    shape: Option<(TextureHandle, CursorShape)>,
}

impl CursorTexture {
    /// Takes `shape` if it is newer than the one shown.
    pub fn update(&mut self, ctx: &egui::Context, shape: Option<CursorShape>) {
        let Some(shape) = shape else { return };
        if shape.version == self.version {
            return;
        }
        self.version = shape.version;
        tracing::debug!(
            version = shape.version,
            "pointer shape {}x{} hotspot {},{}",
            shape.width,
            shape.height,
            shape.hotspot_x,
            shape.hotspot_y
        );
        if shape.is_hidden() {
            self.shape = None;
            return;
        }
        let img = ColorImage::from_rgba_unmultiplied(
            [usize::from(shape.width), usize::from(shape.height)],
            &shape.rgba,
        );
        let handle = ctx.load_texture("remote-cursor", img, OPTIONS);
        self.shape = Some((handle, shape));
    }

    /// The version of the shape last taken (0 before the first).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The texture and shape to draw, or `None` when the app hides its pointer (or has not
    /// set one yet).
    pub fn get(&self) -> Option<&(TextureHandle, CursorShape)> {
        self.shape.as_ref()
    }
}
