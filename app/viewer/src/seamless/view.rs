//! One app window drawn in a window of its own: its rectangle of the remote screen, scaled to
//! fit (one to one when the sizes match; `Ctrl+0` back to one to one) or, with
//! `--resize-remote`, asking the app's window to take this window's size once it settles;
//! input mapped by the window's place on the app's screen.

use std::sync::Mutex;
use std::time::Instant;

use eframe::egui::{
    self, Color32, CursorIcon, Event, Pos2, Rect, Vec2, ViewportCommand, ViewportId,
};
use tracing::info;
use zos_display::WindowRequest;

use super::{Shared, Targets, lock, viewport_id};
use crate::keys::is_one_to_one_key;
use crate::net::Input;
use crate::pointer::Mapping;
use crate::resize::{Decision, ResizeDebounce};
use crate::scale;

/// What is known of one shown window.
pub(crate) struct View {
    /// Its inner rectangle on the local screen, in points (once drawn).
    pub(crate) inner: Option<Rect>,
    /// Where the app window's pixels are drawn inside it, in points.
    pub(crate) image: Rect,
    /// Points per remote pixel as drawn.
    pub(crate) points_per_pixel: f32,
    resize: ResizeDebounce,
    logged: Option<(u16, u16, u32)>,
    /// Whether it has the keyboard focus here.
    focused: bool,
}

impl Default for View {
    fn default() -> View {
        View {
            inner: None,
            image: Rect::NOTHING,
            points_per_pixel: 1.0,
            resize: ResizeDebounce::default(),
            logged: None,
            focused: false,
        }
    }
}

/// Draws app window `id` in the current viewport and sends its input.
pub(crate) fn paint(shared: &Mutex<Shared>, targets: &Mutex<Targets>, id: u32, ui: &mut egui::Ui) {
    let ctx = ui.ctx().clone();
    let mut guard = lock(shared);
    let s = &mut *guard;
    if ui.input(|i| i.viewport().close_requested()) {
        s.hide(id);
        ctx.request_repaint_of(ViewportId::ROOT);
        return;
    }
    let Some(window) = s.list.get(id).cloned() else {
        return;
    };
    // Pixels this window takes in may be another window's whose wake already looked and
    // found nothing pending: wake those here, or they would show stale pixels.
    let changed = s.core.refresh(&ctx);
    super::repaint_touched(&ctx, targets, &changed, Some(ctx.viewport_id()));
    let Some((texture, screen)) = s.core.screen.get().map(|(t, size)| (t.id(), size)) else {
        return;
    };
    let ppp = ctx.pixels_per_point();
    let view_rect = ui.max_rect();
    let size = (window.rect.width, window.rect.height);
    let area = Rect::from_min_size(
        Pos2::new(f32::from(window.rect.x), f32::from(window.rect.y)),
        Vec2::new(f32::from(size.0), f32::from(size.1)),
    );
    let (image, scale) = if window.kind.is_popup() {
        // A menu fills its window, drawn at its parent's scale.
        (view_rect, view_rect.width() * ppp / area.width().max(1.0))
    } else {
        scale::fit(size, view_rect, ppp)
    };
    ui.painter().image(
        texture,
        image,
        scale::uv(area, screen, scale != 1.0),
        Color32::WHITE,
    );
    let inner = ctx.input(|i| i.viewport().inner_rect);
    let view = s.views.entry(id).or_default();
    view.inner = inner;
    view.image = image;
    view.points_per_pixel = scale / ppp;
    let shown = (size.0, size.1, (scale * 1000.0).round() as u32);
    if view.logged != Some(shown) {
        view.logged = Some(shown);
        info!(
            "viewer window {id:#x} ({:?}, \"{}\") shows {}x{} at scale {:.3}",
            window.kind, window.title, size.0, size.1, scale
        );
    }

    let mut events: Vec<Event> = ui.input(|i| i.events.clone());
    // Losing a focus it never had (a new window's first event) must not release the keys and
    // buttons held in another window (a menu opens while its button is held); menus never
    // hold the focus at all.
    let view = s.views.entry(id).or_default();
    events.retain(|e| match e {
        Event::WindowFocused(_) if window.kind.is_popup() => false,
        Event::WindowFocused(false) => std::mem::take(&mut view.focused),
        Event::WindowFocused(true) => {
            view.focused = true;
            true
        }
        _ => true,
    });
    for event in &events {
        match event {
            Event::WindowFocused(true) => {
                // Typing goes to the app's focused window: make it this one.
                s.core
                    .net
                    .send(Input::Window(WindowRequest::Activate { id }));
            }
            e if is_one_to_one_key(e) && matches!(e, Event::Key { pressed: true, .. }) => {
                ctx.send_viewport_cmd(ViewportCommand::InnerSize(
                    Vec2::new(f32::from(size.0), f32::from(size.1)) / ppp,
                ));
            }
            _ => {}
        }
    }
    let events: Vec<Event> = events
        .into_iter()
        .filter(|e| !is_one_to_one_key(e))
        .collect();
    let map = Mapping {
        rect: image,
        area,
        screen,
    };
    s.core.forward_input(&events, &map);
    let hovered = ui
        .input(|i| i.pointer.latest_pos())
        .filter(|pos| image.contains(*pos));
    if let Some(pos) = hovered {
        ctx.set_cursor_icon(CursorIcon::None);
        s.core.draw_cursor(ui.painter(), pos, ppp, scale / ppp);
        lock(targets).hovered = Some(viewport_id(id));
    }
    if s.resize_remote && !window.kind.is_popup() {
        let px = |v: f32| (v * ppp).round().clamp(0.0, f32::from(u16::MAX)) as u16;
        let wanted = (px(view_rect.width()), px(view_rect.height()));
        let view = s.views.entry(id).or_default();
        match view.resize.poll(wanted, size, Instant::now()) {
            Decision::Idle => {}
            Decision::Wait(after) => ctx.request_repaint_after(after),
            Decision::Request(width, height) => {
                info!("viewer window {id:#x} asks the app's window for {width}x{height}");
                s.core
                    .net
                    .send(Input::Window(WindowRequest::Resize { id, width, height }));
            }
        }
    }
}
