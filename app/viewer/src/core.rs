//! What every window of one view shares: the connection, the remote screen as one texture
//! (each window draws its part of it), the pointer shape, one keyboard and one mouse (the app
//! has one of each, whichever window they are used in).

use eframe::egui::{self, Color32, Event, Pos2, Rect, vec2};
use tracing::info;
use zos_display::DirtyRect;

use crate::keys::Keyboard;
use crate::net::{Input, Net};
use crate::pointer::{Mapping, Mouse, PointerAction};
use crate::texture::{CursorTexture, ScreenTexture};

/// The dot drawn where the app hides its pointer (as TigerVNC's viewer does).
const DOT_RADIUS: f32 = 2.0;

/// The shared state of a view.
pub struct Core {
    /// The connection.
    pub net: Net,
    /// The remote screen.
    pub screen: ScreenTexture,
    cursor: CursorTexture,
    keyboard: Keyboard,
    mouse: Mouse,
    /// Frames drawn, and those of them that brought new pixels.
    frames: u64,
    updated_frames: u64,
}

impl Core {
    /// Takes over the connection.
    pub fn new(net: Net) -> Core {
        Core {
            net,
            screen: ScreenTexture::default(),
            cursor: CursorTexture::default(),
            keyboard: Keyboard::default(),
            mouse: Mouse::default(),
            frames: 0,
            updated_frames: 0,
        }
    }

    /// Takes the pixels and pointer shape that changed into the textures (a window about to
    /// draw calls it; whichever draws first uploads for all). Returns the rectangles of the
    /// remote screen it changed: windows other than the caller that show them must be drawn
    /// again, since the wake for those pixels may have looked for them after this took them.
    pub fn refresh(&mut self, ctx: &egui::Context) -> Vec<DirtyRect> {
        let source = self.net.source().clone();
        self.frames += 1;
        let mut changed = Vec::new();
        if let Some(update) = source.take_update() {
            changed = if update.resized {
                vec![DirtyRect {
                    x: 0,
                    y: 0,
                    width: update.width,
                    height: update.height,
                }]
            } else {
                update.rects.iter().map(|r| r.rect).collect()
            };
            self.screen.apply(ctx, update);
            self.updated_frames += 1;
        }
        if source.cursor_version() != self.cursor.version() {
            self.cursor.update(ctx, source.cursor());
        }
        changed
    }

    /// Sends a window's input of this frame, in order, mapped by `map`; runs of moves become
    /// the last one.
    pub fn forward_input(&mut self, events: &[Event], map: &Mapping) {
        let mut keys = Vec::new();
        let mut pointer = Vec::new();
        let mut pending_move: Option<&Event> = None;
        for event in events {
            if matches!(event, Event::PointerMoved(_)) {
                pending_move = Some(event);
                continue;
            }
            if let Some(m) = pending_move.take() {
                self.mouse.on_event(m, map, &mut pointer);
                self.send_pointer(&mut pointer);
            }
            self.keyboard.on_event(event, &mut keys);
            for (keysym, down) in keys.drain(..) {
                self.net.send(Input::Key(keysym, down));
            }
            self.mouse.on_event(event, map, &mut pointer);
            self.send_pointer(&mut pointer);
        }
        if let Some(m) = pending_move {
            self.mouse.on_event(m, map, &mut pointer);
            self.send_pointer(&mut pointer);
        }
    }

    fn send_pointer(&self, actions: &mut Vec<PointerAction>) {
        for action in actions.drain(..) {
            self.net.send(match action {
                PointerAction::Move { x, y, buttons } => Input::Pointer(x, y, buttons),
                PointerAction::Wheel {
                    x,
                    y,
                    buttons,
                    wheel,
                } => Input::Wheel(x, y, buttons, wheel),
            });
        }
    }

    /// Draws the remote pointer's shape with its hotspot at `pos`, at `scale` points per
    /// remote pixel (a dot if the app hides it).
    pub fn draw_cursor(&self, painter: &egui::Painter, pos: Pos2, ppp: f32, scale: f32) {
        match self.cursor.get() {
            Some((texture, shape)) => {
                let hotspot = vec2(f32::from(shape.hotspot_x), f32::from(shape.hotspot_y)) * scale;
                let size = vec2(f32::from(shape.width), f32::from(shape.height)) * scale;
                // Snap to whole pixels so the shape is drawn one to one when unscaled.
                let min = ((pos.to_vec2() * ppp).floor() - hotspot * ppp) / ppp;
                let rect = Rect::from_min_size(min.to_pos2(), size);
                painter.image(texture.id(), rect, unit_uv(), Color32::WHITE);
            }
            None => {
                painter.circle(pos, DOT_RADIUS, Color32::BLACK, (1.0, Color32::WHITE));
            }
        }
    }

    /// Releases whatever this view holds pressed in the app.
    pub fn release_all(&mut self) {
        let mut keys = Vec::new();
        self.keyboard.release_all(&mut keys);
        for (keysym, down) in keys {
            self.net.send(Input::Key(keysym, down));
        }
        let mut pointer = Vec::new();
        self.mouse.release_all(&mut pointer);
        self.send_pointer(&mut pointer);
    }

    /// Logs what this view drew and received (tests read the line).
    pub fn log_stats(&self) {
        let c = self.screen.counts();
        let stats = self.net.source().stats();
        info!(
            "viewer frames: {} drawn, {} with new pixels; uploads: {} full, {} partial ({} pixels); received {} updates, {} rects, {} pixel bytes, {} wire bytes",
            self.frames,
            self.updated_frames,
            c.full,
            c.partial,
            c.partial_pixels,
            stats.updates,
            stats.rects,
            stats.pixel_bytes,
            stats.wire_bytes
        );
    }
}

/// The whole texture.
pub fn unit_uv() -> Rect {
    Rect::from_min_max(Pos2::new(0.0, 0.0), Pos2::new(1.0, 1.0))
}
