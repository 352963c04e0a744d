//! How each app window opens here: its builder (title, icon, size, kind) and, for menus and
//! tooltips, where it goes relative to the window it belongs to.

use std::sync::Arc;

use eframe::egui::{IconData, Pos2, Vec2, ViewportBuilder, X11WindowType};
use zos_display::{AppWindow, WindowKind};

use super::Shared;
use crate::workarea::fit_within;

/// The smallest a window may be made.
const MIN_INNER: Vec2 = Vec2::new(32.0, 24.0);

/// "TITLE — APP", or the app alone for an untitled window.
pub(crate) fn title(window: &AppWindow, app: &str) -> String {
    if window.title.trim().is_empty() {
        app.to_owned()
    } else {
        format!("{} — {app}", window.title)
    }
}

fn icon(window: &AppWindow) -> Option<Arc<IconData>> {
    let icon = window.icon.as_ref()?;
    Some(Arc::new(IconData {
        rgba: icon.rgba.clone(),
        width: u32::from(icon.width),
        height: u32::from(icon.height),
    }))
}

/// The builder of a window about to open; `None` if it cannot be placed yet (a menu whose
/// parent has not been drawn).
pub(crate) fn open(window: &AppWindow, s: &Shared, ppp: f32) -> Option<ViewportBuilder> {
    let size = (u32::from(window.rect.width), u32::from(window.rect.height));
    if window.kind.is_popup() {
        return popup(window, s, ppp);
    }
    let inner = match s.max_inner {
        Some(max) => fit_within(size, max),
        None => size,
    };
    let inner = Vec2::new(inner.0 as f32, inner.1 as f32) / ppp;
    // Where the app has it, side by side with its other windows, kept on this screen: they do
    // not pile up in a corner where no window manager places them (one that does may honour
    // it as a hint, or place them itself).
    let screen = s.max_inner.map_or(Vec2::splat(f32::INFINITY), |(w, h)| {
        Vec2::new(w as f32, h as f32) / ppp
    });
    let at = Pos2::new(f32::from(window.rect.x), f32::from(window.rect.y)) / ppp;
    let at = at.min((screen - inner).max(Vec2::ZERO).to_pos2());
    let mut b = ViewportBuilder::default()
        .with_title(title(window, &s.app_title))
        .with_app_id("zos-viewer")
        .with_inner_size(inner)
        .with_position(at)
        .with_min_inner_size(MIN_INNER);
    if let Some(icon) = icon(window) {
        b = b.with_icon(icon);
    }
    if window.kind == WindowKind::Dialog {
        b = b.with_window_type(X11WindowType::Dialog);
        // Over the middle of its parent, where that is known.
        if let Some(parent) = window.parent.and_then(|p| s.views.get(&p))
            && let Some(p) = parent.inner
        {
            b = b.with_position(p.center() - inner / 2.0);
        }
    }
    Some(b)
}

/// The builder of a window already open, with what changed since (title, icon; a popup's
/// place and size).
pub(crate) fn update(
    old: ViewportBuilder,
    window: &AppWindow,
    s: &Shared,
    ppp: f32,
) -> Option<ViewportBuilder> {
    if window.kind.is_popup() {
        return popup(window, s, ppp).or(Some(old));
    }
    let mut b = old.with_title(title(window, &s.app_title));
    if let Some(icon) = icon(window) {
        b = b.with_icon(icon);
    }
    Some(b)
}

/// A menu or tooltip: undecorated, override-redirect, at its parent's scale and where the app
/// put it relative to its parent.
fn popup(window: &AppWindow, s: &Shared, ppp: f32) -> Option<ViewportBuilder> {
    let (origin, points_per_pixel) = match window.parent.and_then(|p| Some((p, s.views.get(&p)?))) {
        Some((parent_id, view)) => {
            let parent = s.list.get(parent_id)?;
            let inner = view.inner?;
            let at = inner.min + view.image.min.to_vec2()
                - Pos2::new(f32::from(parent.rect.x), f32::from(parent.rect.y)).to_vec2()
                    * view.points_per_pixel;
            (at, view.points_per_pixel)
        }
        // No parent drawn here: where the app put it, from this screen's corner.
        None => (Pos2::ZERO, 1.0 / ppp),
    };
    let position =
        origin + Vec2::new(f32::from(window.rect.x), f32::from(window.rect.y)) * points_per_pixel;
    let size =
        Vec2::new(f32::from(window.rect.width), f32::from(window.rect.height)) * points_per_pixel;
    let kind = if window.kind == WindowKind::Tooltip {
        X11WindowType::Tooltip
    } else {
        X11WindowType::PopupMenu
    };
    let what = if window.kind == WindowKind::Tooltip {
        "tooltip"
    } else {
        "menu"
    };
    Some(
        ViewportBuilder::default()
            .with_title(format!("{what} — {}", s.app_title))
            .with_app_id("zos-viewer")
            .with_decorations(false)
            .with_override_redirect(true)
            .with_window_type(kind)
            .with_taskbar(false)
            .with_active(false)
            .with_position(position.round())
            .with_inner_size(size.max(Vec2::splat(1.0)))
            .with_resizable(false),
    )
}
