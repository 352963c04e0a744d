//! The eframe application: draws the remote screen one to one with the remote pointer on
//! top, turns the window's input into RFB input, asks for a desktop resize when the window's
//! size settles, and closes the window when the connection ends.

use std::time::Instant;

use eframe::egui::{self, Color32, CursorIcon, Event, Pos2, Rect, pos2, vec2};
use tracing::info;

use crate::keys::Keyboard;
use crate::net::{Input, Net};
use crate::pointer::{Mapping, Mouse, PointerAction};
use crate::resize::{Decision, ResizeDebounce};
use crate::texture::{CursorTexture, ScreenTexture};

/// Behind the remote screen where the window is larger.
const BACKGROUND: Color32 = Color32::from_gray(32);
/// The dot drawn where the app hides its pointer (as TigerVNC's viewer does).
const DOT_RADIUS: f32 = 2.0;

/// The viewer window's state.
pub struct ViewerApp {
    net: Net,
    title: String,
    screen: ScreenTexture,
    cursor: CursorTexture,
    keyboard: Keyboard,
    mouse: Mouse,
    resize: ResizeDebounce,
    shown_size: Option<(u16, u16)>,
    fitted: bool,
    closing: bool,
    /// Frames drawn, and those of them that brought new pixels.
    frames: u64,
    updated_frames: u64,
}

impl ViewerApp {
    /// Takes over the connection; `ctx` is woken whenever the remote screen changes.
    pub fn new(net: Net, title: String, ctx: &egui::Context) -> ViewerApp {
        // Ctrl+plus/minus belong to the app, not to egui's zoom.
        ctx.options_mut(|o| o.zoom_with_keyboard = false);
        net.set_waker(ctx);
        ViewerApp {
            net,
            title,
            screen: ScreenTexture::default(),
            cursor: CursorTexture::default(),
            keyboard: Keyboard::default(),
            mouse: Mouse::default(),
            resize: ResizeDebounce::default(),
            shown_size: None,
            fitted: false,
            closing: false,
            frames: 0,
            updated_frames: 0,
        }
    }

    /// Sends the window's input of this frame, in order; runs of moves become the last one.
    fn forward_input(&mut self, events: &[Event], map: &Mapping) {
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

    /// Draws the remote pointer's shape with its hotspot at `pos` (a dot if it is hidden).
    fn draw_cursor(&self, painter: &egui::Painter, pos: Pos2, pixels_per_point: f32) {
        match self.cursor.get() {
            Some((texture, shape)) => {
                let hotspot = vec2(f32::from(shape.hotspot_x), f32::from(shape.hotspot_y));
                let size = vec2(f32::from(shape.width), f32::from(shape.height));
                // Snap to whole pixels so the shape is drawn one to one.
                let min = ((pos.to_vec2() * pixels_per_point).floor() - hotspot) / pixels_per_point;
                let rect = Rect::from_min_size(min.to_pos2(), size / pixels_per_point);
                painter.image(texture.id(), rect, unit_uv(), Color32::WHITE);
            }
            None => {
                painter.circle(pos, DOT_RADIUS, Color32::BLACK, (1.0, Color32::WHITE));
            }
        }
    }

    fn log_size(&mut self, size: (u16, u16)) {
        if self.shown_size != Some(size) {
            self.shown_size = Some(size);
            info!("viewer window shows {}x{}", size.0, size.1);
        }
    }
}

fn unit_uv() -> Rect {
    Rect::from_min_max(pos2(0.0, 0.0), pos2(1.0, 1.0))
}

impl eframe::App for ViewerApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        if let Some(reason) = self.net.ended() {
            if !self.closing {
                self.closing = true;
                info!("viewer window of {} closes: {reason}", self.title);
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            }
            return;
        }
        let source = self.net.source().clone();
        self.frames += 1;
        if let Some(update) = source.take_update() {
            self.screen.apply(&ctx, update);
            self.updated_frames += 1;
        }
        if source.cursor_version() != self.cursor.version() {
            self.cursor.update(&ctx, source.cursor());
        }
        let Some((texture, size)) = self.screen.get() else {
            return;
        };
        let texture = texture.id();
        self.log_size(size);
        let ppp = ctx.pixels_per_point();
        let area = ui.max_rect();
        let image = Rect::from_min_size(area.min, vec2(f32::from(size.0), f32::from(size.1)) / ppp);
        // The clear colour is the background: one full-window pass fewer under llvmpipe.
        ui.painter()
            .image(texture, image, unit_uv(), Color32::WHITE);

        // On a scaled screen, make the window hold the remote screen one to one, once.
        let view = (
            (area.width() * ppp).round().clamp(0.0, f32::from(u16::MAX)) as u16,
            (area.height() * ppp)
                .round()
                .clamp(0.0, f32::from(u16::MAX)) as u16,
        );
        if !self.fitted {
            self.fitted = true;
            if view != size && (ppp - 1.0).abs() > f32::EPSILON {
                ctx.send_viewport_cmd(egui::ViewportCommand::InnerSize(image.size()));
            }
        }

        let map = Mapping {
            rect: image,
            pixels_per_point: ppp,
            size,
        };
        let events = ui.input(|i| i.events.clone());
        self.forward_input(&events, &map);

        if let Some(pos) = ui.input(|i| i.pointer.latest_pos())
            && image.contains(pos)
        {
            ctx.set_cursor_icon(CursorIcon::None);
            self.draw_cursor(ui.painter(), pos, ppp);
        }

        match self.resize.poll(view, size, Instant::now()) {
            Decision::Idle => {}
            Decision::Wait(after) => ctx.request_repaint_after(after),
            Decision::Request(w, h) => {
                info!("viewer window asks for a {w}x{h} desktop");
                self.net.send(Input::Resize(w, h));
            }
        }
    }

    fn clear_color(&self, _visuals: &egui::Visuals) -> [f32; 4] {
        BACKGROUND.to_normalized_gamma_f32()
    }
}

impl Drop for ViewerApp {
    fn drop(&mut self) {
        // Nothing may stay pressed in the app once this view is gone.
        let mut keys = Vec::new();
        self.keyboard.release_all(&mut keys);
        for (keysym, down) in keys {
            self.net.send(Input::Key(keysym, down));
        }
        let mut pointer = Vec::new();
        self.mouse.release_all(&mut pointer);
        self.send_pointer(&mut pointer);
        let c = self.screen.counts();
        if !self.closing {
            info!("viewer window of {} closed by the user", self.title);
        }
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
