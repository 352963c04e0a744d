//! Keeping the eframe root viewport out of sight: the seamless view draws nothing in it, but
//! eframe maps it after its first frame, and a window manager may map it again after we
//! unmapped it. Each root pass (a few a second at first, then one a second) withdraws it if
//! it shows, the ICCCM way: unmap, plus a synthetic UnmapNotify to the root window.

use std::time::{Duration, Instant};

use raw_window_handle::{HasWindowHandle, RawWindowHandle};
use tracing::debug;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt as _, EventMask, MapState, UnmapNotifyEvent};
use x11rb::rust_connection::RustConnection;

/// How long after start the root is looked at again and again.
const WATCH: Duration = Duration::from_secs(3);
/// How often, meanwhile.
const EVERY: Duration = Duration::from_millis(250);
/// How often afterwards: a root pass notices windows asked to close even where eframe's
/// repaint of the closing window was lost (seen under load: one close in three), at the cost
/// of painting a 1×1 hidden window once a second.
const ALWAYS_EVERY: Duration = Duration::from_secs(1);

/// The hidden root window.
pub(crate) struct HiddenRoot {
    x: Option<(RustConnection, u32, u32)>,
    started: Instant,
}

impl HiddenRoot {
    /// For the root window of `cc`.
    pub(crate) fn new(cc: &eframe::CreationContext<'_>) -> HiddenRoot {
        let window = match cc.window_handle().map(|h| h.as_raw()) {
            Ok(RawWindowHandle::Xlib(h)) => Some(h.window as u32),
            Ok(RawWindowHandle::Xcb(h)) => Some(h.window.get()),
            _ => None,
        };
        let x = window.and_then(|w| {
            let (conn, screen) = x11rb::connect(None).ok()?;
            let root = conn.setup().roots.get(screen)?.root;
            Some((conn, w, root))
        });
        HiddenRoot {
            x,
            started: Instant::now(),
        }
    }

    /// Withdraws the root window if it is mapped; asks to be called again soon while a window
    /// manager may still map it.
    pub(crate) fn keep_hidden(&self, ctx: &eframe::egui::Context) {
        if let Some((conn, window, root)) = &self.x {
            let mapped = conn
                .get_window_attributes(*window)
                .ok()
                .and_then(|c| c.reply().ok())
                .is_some_and(|a| a.map_state != MapState::UNMAPPED);
            if mapped {
                debug!("withdrawing the root viewport");
                let _ = conn.unmap_window(*window);
                let event = UnmapNotifyEvent {
                    response_type: x11rb::protocol::xproto::UNMAP_NOTIFY_EVENT,
                    sequence: 0,
                    event: *root,
                    window: *window,
                    from_configure: false,
                };
                let _ = conn.send_event(
                    false,
                    *root,
                    EventMask::SUBSTRUCTURE_REDIRECT | EventMask::SUBSTRUCTURE_NOTIFY,
                    event,
                );
                let _ = conn.flush();
            }
        }
        ctx.request_repaint_after(if self.started.elapsed() < WATCH {
            EVERY
        } else {
            ALWAYS_EVERY
        });
    }
}
