//! The whole-display view (`zos view --desktop`): one window showing the app's entire screen,
//! scaled to fit the window (one to one when the sizes match, `Ctrl+0` back to one to one),
//! or, with `--resize-remote`, asking the server for a desktop of the window's size once it
//! settles. Closes when the connection ends.

use std::time::{Duration, Instant};

use eframe::egui::{self, Color32, CursorIcon, Event};
use tracing::info;

use crate::core::Core;
use crate::keys::is_one_to_one_key;
use crate::net::{Input, Net, Wake};
use crate::pointer::Mapping;
use crate::resize::{Decision, ResizeDebounce};
use crate::scale;

/// Behind the remote screen where the window is larger.
pub const BACKGROUND: Color32 = Color32::from_gray(32);
/// The delay of a wake-up: egui answers a zero-delay request with two frames ("to settle"), a
/// non-zero one with one; a second full-window frame is pure cost under llvmpipe.
pub const WAKE_DELAY: Duration = Duration::from_micros(100);

/// The whole-display window's state.
pub struct DesktopApp {
    core: Core,
    title: String,
    resize_remote: bool,
    resize: ResizeDebounce,
    shown_size: Option<(u16, u16)>,
    fitted: bool,
    closing: bool,
}

impl DesktopApp {
    /// Takes over the connection; `ctx` is woken whenever the remote screen changes.
    pub fn new(
        net: Net,
        title: String,
        resize_remote: bool,
        clipboard: Box<dyn Fn(std::sync::Arc<str>) + Send + Sync>,
        ctx: &egui::Context,
    ) -> DesktopApp {
        // Ctrl+plus/minus belong to the app, not to egui's zoom.
        ctx.options_mut(|o| o.zoom_with_keyboard = false);
        let waker = ctx.clone();
        net.set_hooks(crate::net::Hooks {
            wake: Box::new(move |why| match why {
                Wake::Windows => {}
                _ => waker.request_repaint_after(WAKE_DELAY),
            }),
            clipboard,
        });
        DesktopApp {
            core: Core::new(net),
            title,
            resize_remote,
            resize: ResizeDebounce::default(),
            shown_size: None,
            fitted: false,
            closing: false,
        }
    }

    fn log_size(&mut self, size: (u16, u16), scale: f32) {
        if self.shown_size != Some(size) {
            self.shown_size = Some(size);
            info!("viewer window shows {}x{} (scale {scale})", size.0, size.1);
        }
    }
}

impl eframe::App for DesktopApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        if let Some(reason) = self.core.net.ended() {
            if !self.closing {
                self.closing = true;
                info!("viewer window of {} closes: {reason}", self.title);
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            }
            return;
        }
        self.core.refresh(&ctx);
        let Some((texture, size)) = self.core.screen.get() else {
            return;
        };
        let texture = texture.id();
        let ppp = ctx.pixels_per_point();
        let area = ui.max_rect();
        let (image, scale) = scale::fit(size, area, ppp);
        self.log_size(size, scale);
        // The clear colour is the background: one full-window pass fewer under llvmpipe.
        ui.painter()
            .image(texture, image, crate::core::unit_uv(), Color32::WHITE);
        let view = (
            (area.width() * ppp).round().clamp(0.0, f32::from(u16::MAX)) as u16,
            (area.height() * ppp)
                .round()
                .clamp(0.0, f32::from(u16::MAX)) as u16,
        );
        let one_to_one = egui::vec2(f32::from(size.0), f32::from(size.1)) / ppp;
        // On a scaled screen, make the window hold the remote screen one to one, once.
        if !self.fitted {
            self.fitted = true;
            if view != size && (ppp - 1.0).abs() > f32::EPSILON {
                ctx.send_viewport_cmd(egui::ViewportCommand::InnerSize(one_to_one));
            }
        }
        let events: Vec<Event> = ui.input(|i| i.events.clone());
        if events
            .iter()
            .any(|e| matches!(e, Event::Key { pressed: true, .. }) && is_one_to_one_key(e))
        {
            ctx.send_viewport_cmd(egui::ViewportCommand::InnerSize(one_to_one));
        }
        let events: Vec<Event> = events
            .into_iter()
            .filter(|e| !is_one_to_one_key(e))
            .collect();
        let map = Mapping::screen(image, size);
        self.core.forward_input(&events, &map);
        if let Some(pos) = ui.input(|i| i.pointer.latest_pos())
            && image.contains(pos)
        {
            ctx.set_cursor_icon(CursorIcon::None);
            self.core.draw_cursor(ui.painter(), pos, ppp, scale / ppp);
        }
        if self.resize_remote {
            match self.resize.poll(view, size, Instant::now()) {
                Decision::Idle => {}
                Decision::Wait(after) => ctx.request_repaint_after(after),
                Decision::Request(w, h) => {
                    info!("viewer window asks for a {w}x{h} desktop");
                    self.core.net.send(Input::Resize(w, h));
                }
            }
        }
    }

    fn clear_color(&self, _visuals: &egui::Visuals) -> [f32; 4] {
        BACKGROUND.to_normalized_gamma_f32()
    }
}

impl Drop for DesktopApp {
    fn drop(&mut self) {
        // Nothing may stay pressed in the app once this view is gone.
        self.core.release_all();
        if !self.closing {
            info!("viewer window of {} closed by the user", self.title);
        }
        self.core.log_stats();
    }
}
