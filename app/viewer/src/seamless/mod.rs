//! Seamless windows: each window of the app as a window of its own.
//!
//! The eframe root viewport is hidden (1×1, unmapped after its first frame); for each window
//! of the app's list ([`zos_display::WindowList`]) it keeps a deferred viewport — a native
//! window that repaints on its own — that draws that window's rectangle of the remote screen
//! ([`view`]). Top-level windows and dialogs open at their own size (scaled down to the work
//! area if larger), titled with the app's title and carrying its icon; menus and tooltips are
//! undecorated override-redirect windows placed where the app put them relative to their
//! parent, at their parent's scale ([`placement`]). Closing a window hides that view only;
//! once every top-level window is closed, the viewer ends. New pixels wake only the windows
//! they touch.

mod placement;
mod root;
mod view;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use eframe::egui::{self, ViewportBuilder, ViewportCommand, ViewportId};
use tracing::info;
use zos_display::{DirtyRect, WindowList, WindowRect};

use crate::core::Core;
use crate::desktop::{BACKGROUND, WAKE_DELAY};
use crate::net::{Hooks, Net, Wake};

pub(crate) use view::View;

/// The state every window's callback shares (they all run on the UI thread, one at a time).
pub(crate) struct Shared {
    pub(crate) core: Core,
    /// "xterm on laptop (task 3)": the app, for titles and logs.
    pub(crate) app_title: String,
    pub(crate) resize_remote: bool,
    /// The list the windows are drawn from (the root's latest).
    pub(crate) list: Arc<WindowList>,
    pub(crate) views: HashMap<u32, View>,
    /// Windows the user closed here (the app keeps them).
    pub(crate) hidden: HashSet<u32>,
    /// The largest inner size a window may open at, in physical pixels.
    pub(crate) max_inner: Option<(u32, u32)>,
}

impl Shared {
    /// The user closed window `id` here: it stays hidden (the app keeps it).
    pub(crate) fn hide(&mut self, id: u32) {
        if self.hidden.insert(id) {
            info!(
                "viewer window {id:#x} of {} closed by the user (the app goes on)",
                self.app_title
            );
        }
    }
}

/// What the network thread needs to wake the right windows.
#[derive(Default)]
pub(crate) struct Targets {
    pub(crate) windows: Vec<(ViewportId, WindowRect)>,
    pub(crate) hovered: Option<ViewportId>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The viewport of app window `id`.
pub(crate) fn viewport_id(id: u32) -> ViewportId {
    ViewportId::from_hash_of(("zos-window", id))
}

/// The root of a seamless view.
pub struct SeamlessApp {
    shared: Arc<Mutex<Shared>>,
    targets: Arc<Mutex<Targets>>,
    /// The builder each shown window was opened with, kept so egui sees no change unless
    /// something changed (it would otherwise undo the user's resizing).
    builders: HashMap<u32, ViewportBuilder>,
    root: root::HiddenRoot,
    root_hidden: bool,
    had_windows: bool,
    closing: bool,
}

impl SeamlessApp {
    /// Takes over the connection; windows open as the app's list comes.
    pub fn new(
        net: Net,
        app_title: String,
        resize_remote: bool,
        clipboard: Box<dyn Fn(Arc<str>) + Send + Sync>,
        cc: &eframe::CreationContext<'_>,
    ) -> SeamlessApp {
        let ctx = &cc.egui_ctx;
        // Ctrl+plus/minus belong to the app, not to egui's zoom.
        ctx.options_mut(|o| o.zoom_with_keyboard = false);
        let targets = Arc::new(Mutex::new(Targets::default()));
        let source = net.source().clone();
        let (waker, wake_targets) = (ctx.clone(), Arc::clone(&targets));
        net.set_hooks(Hooks {
            wake: Box::new(move |why| wake(&waker, &wake_targets, &source, why)),
            clipboard,
        });
        let shared = Shared {
            core: Core::new(net),
            app_title,
            resize_remote,
            list: Arc::default(),
            views: HashMap::new(),
            hidden: HashSet::new(),
            max_inner: crate::workarea::max_inner_size(),
        };
        SeamlessApp {
            shared: Arc::new(Mutex::new(shared)),
            targets,
            builders: HashMap::new(),
            root: root::HiddenRoot::new(cc),
            root_hidden: false,
            had_windows: false,
            closing: false,
        }
    }
}

/// Wakes the windows that `why` concerns.
fn wake(
    ctx: &egui::Context,
    targets: &Mutex<Targets>,
    source: &zos_display::FrameSource,
    why: Wake,
) {
    match why {
        Wake::Pixels => repaint_touched(ctx, targets, &source.peek_dirty(), None),
        Wake::Cursor => {
            if let Some(v) = lock(targets).hovered {
                ctx.request_repaint_after_for(WAKE_DELAY, v);
            }
        }
        Wake::Windows | Wake::Ended => ctx.request_repaint_of(ViewportId::ROOT),
    }
}

/// Wakes every window (but `except`) showing part of the `dirty` rectangles.
pub(crate) fn repaint_touched(
    ctx: &egui::Context,
    targets: &Mutex<Targets>,
    dirty: &[DirtyRect],
    except: Option<ViewportId>,
) {
    if dirty.is_empty() {
        return;
    }
    let targets = lock(targets);
    for (viewport, rect) in &targets.windows {
        let touched = dirty
            .iter()
            .any(|d| rect.overlap(&WindowRect::new(d.x as i16, d.y as i16, d.width, d.height)) > 0);
        if touched && Some(*viewport) != except {
            ctx.request_repaint_after_for(WAKE_DELAY, *viewport);
        }
    }
}

impl eframe::App for SeamlessApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        if !self.root_hidden {
            // eframe shows the root after its first frame; it has nothing to show.
            self.root_hidden = true;
            ctx.send_viewport_cmd(ViewportCommand::Visible(false));
        }
        self.root.keep_hidden(&ctx);
        let shown = {
            let mut guard = lock(&self.shared);
            let s = &mut *guard;
            if let Some(reason) = s.core.net.ended() {
                if !self.closing {
                    self.closing = true;
                    info!("the view of {} closes: {reason}", s.app_title);
                    ctx.send_viewport_cmd_to(ViewportId::ROOT, ViewportCommand::Close);
                }
                return;
            }
            s.list = s.core.net.source().windows().unwrap_or_default();
            let list = Arc::clone(&s.list);
            // A close asked of a window shows here too (eframe repaints the parent of a
            // window asked to close), whether or not that window drew since.
            for window in &list.windows {
                let asked = ctx.input(|i| {
                    i.raw
                        .viewports
                        .get(&viewport_id(window.id))
                        .is_some_and(|v| v.close_requested())
                });
                if asked {
                    s.hide(window.id);
                }
            }
            s.views.retain(|id, _| list.get(*id).is_some());
            self.builders.retain(|id, _| list.get(*id).is_some());
            let ppp = ctx.pixels_per_point();
            let mut shown = Vec::new();
            for window in &list.windows {
                if s.hidden.contains(&window.id) {
                    continue;
                }
                let builder = match self.builders.remove(&window.id) {
                    Some(old) => placement::update(old, window, s, ppp),
                    None => placement::open(window, s, ppp),
                };
                let Some(builder) = builder else { continue };
                self.builders.insert(window.id, builder.clone());
                shown.push((window.id, window.rect, builder));
            }
            let top_levels = list.top_levels().count();
            let open = list
                .top_levels()
                .filter(|w| !s.hidden.contains(&w.id))
                .count();
            self.had_windows |= open > 0;
            if self.had_windows && top_levels > 0 && open == 0 && !self.closing {
                self.closing = true;
                info!(
                    "every window of {} was closed here; the viewer ends (the app goes on)",
                    s.app_title
                );
                ctx.send_viewport_cmd_to(ViewportId::ROOT, ViewportCommand::Close);
            }
            shown
        };
        let mut targets = Vec::with_capacity(shown.len());
        let old = lock(&self.targets).windows.clone();
        for (id, rect, builder) in shown {
            let viewport = viewport_id(id);
            if old.iter().any(|(v, r)| *v == viewport && *r != rect) {
                // Moved or resized in the app: draw it again from its new place.
                ctx.request_repaint_of(viewport);
            }
            let (shared, wake_targets) = (Arc::clone(&self.shared), Arc::clone(&self.targets));
            ctx.show_viewport_deferred(viewport, builder, move |ui, _| {
                view::paint(&shared, &wake_targets, id, ui);
            });
            targets.push((viewport, rect));
        }
        lock(&self.targets).windows = targets;
    }

    fn clear_color(&self, _visuals: &egui::Visuals) -> [f32; 4] {
        BACKGROUND.to_normalized_gamma_f32()
    }
}

impl Drop for SeamlessApp {
    fn drop(&mut self) {
        let mut s = lock(&self.shared);
        s.core.release_all();
        s.core.log_stats();
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
    fn pixels_one_window_took_in_wake_the_other_windows_they_touch() {
        let ctx = egui::Context::default();
        let (clock, term, far) = (
            ViewportId::from_hash_of("clock"),
            ViewportId::from_hash_of("term"),
            ViewportId::from_hash_of("far"),
        );
        let targets = Mutex::new(Targets {
            windows: vec![
                (clock, WindowRect::new(0, 0, 200, 200)),
                (term, WindowRect::new(204, 0, 364, 199)),
                (far, WindowRect::new(900, 600, 100, 100)),
            ],
            ..Default::default()
        });
        // The clock's window drew and took in the terminal's cursor change (and its own).
        repaint_touched(
            &ctx,
            &targets,
            &[rect(210, 4, 6, 13), rect(10, 10, 5, 5)],
            Some(clock),
        );
        assert!(ctx.has_requested_repaint_for(&term));
        assert!(
            !ctx.has_requested_repaint_for(&clock),
            "the caller draws now"
        );
        assert!(!ctx.has_requested_repaint_for(&far));
        // Nothing taken in: nothing woken.
        let ctx = egui::Context::default();
        repaint_touched(&ctx, &targets, &[], None);
        assert!(!ctx.has_requested_repaint_for(&term));
    }
}
