//! [`AppWindows`]: the app's windows fill its virtual display and have the
//! keyboard.
//!
//! A virtual display runs no window manager, so an app's window would sit in
//! a corner at its own size and — with the pointer elsewhere — get no key
//! events. This small X client does the two things a window manager would:
//! each top-level window (not override-redirect, not transient) is moved to
//! the origin and sized to the screen, again whenever the screen is resized
//! (a viewer's resize request), and the newest mapped window gets the input
//! focus. Menus and tooltips (override-redirect) and dialogs (transient)
//! keep their own geometry; dialogs get the focus.

use std::collections::BTreeSet;

use tracing::{debug, info};
use x11rb::connection::Connection;
use x11rb::protocol::Event;
use x11rb::protocol::xproto::{
    AtomEnum, ChangeWindowAttributesAux, ConfigureWindowAux, ConnectionExt, EventMask, InputFocus,
    Window,
};
use x11rb::rust_connection::RustConnection;

use crate::VirtualDisplay;
use crate::error::{DisplayError, Result};
use crate::xconn::{self, x_error};

/// Keeps an app's windows fitted to its display; runs until the display ends.
#[derive(Debug)]
pub struct AppWindows {
    _thread: std::thread::JoinHandle<()>,
}

impl AppWindows {
    /// Connects to `display` as an X client and starts keeping its windows.
    pub fn start(display: &VirtualDisplay) -> Result<AppWindows> {
        let (conn, _) = xconn::connect(&display.display(), Some(display.xauthority()))?;
        let keeper = Keeper::new(conn)?;
        let number = display.number();
        let thread = std::thread::Builder::new()
            .name(format!("xwindows-{number}"))
            .spawn(move || {
                match keeper.run() {
                    Ok(()) => debug!(display = number, "window keeper ended"),
                    // The usual end: Xvnc stopped with its app.
                    Err(e) => debug!(display = number, "window keeper ended: {e}"),
                }
            })
            .map_err(|source| DisplayError::Sys {
                call: "spawn window keeper",
                source,
            })?;
        Ok(AppWindows { _thread: thread })
    }
}

struct Keeper {
    conn: RustConnection,
    root: Window,
    size: (u16, u16),
    /// Fitted top-level windows, in the order they were mapped.
    fitted: BTreeSet<Window>,
    focus_order: Vec<Window>,
}

impl Keeper {
    fn new(conn: RustConnection) -> Result<Keeper> {
        let screen = &conn.setup().roots[0];
        let (root, size) = (
            screen.root,
            (screen.width_in_pixels, screen.height_in_pixels),
        );
        let mask = EventMask::SUBSTRUCTURE_NOTIFY | EventMask::STRUCTURE_NOTIFY;
        conn.change_window_attributes(root, &ChangeWindowAttributesAux::new().event_mask(mask))
            .map_err(|e| x_error("select root events", e))?
            .check()
            .map_err(|e| x_error("select root events", e))?;
        let mut keeper = Keeper {
            conn,
            root,
            size,
            fitted: BTreeSet::new(),
            focus_order: Vec::new(),
        };
        // Windows mapped before we connected.
        let tree = keeper
            .conn
            .query_tree(root)
            .map_err(|e| x_error("query tree", e))?
            .reply()
            .map_err(|e| x_error("query tree", e))?;
        for window in tree.children {
            let viewable = keeper
                .conn
                .get_window_attributes(window)
                .ok()
                .and_then(|c| c.reply().ok())
                .is_some_and(|a| {
                    !a.override_redirect
                        && a.map_state == x11rb::protocol::xproto::MapState::VIEWABLE
                });
            if viewable {
                keeper.adopt(window);
            }
        }
        keeper.conn.flush().map_err(|e| x_error("X flush", e))?;
        Ok(keeper)
    }

    fn run(mut self) -> Result<()> {
        loop {
            let event = self
                .conn
                .wait_for_event()
                .map_err(|e| x_error("X events", e))?;
            match event {
                Event::MapNotify(e) if e.event == self.root && !e.override_redirect => {
                    self.adopt(e.window);
                }
                Event::UnmapNotify(e) if e.event == self.root => self.forget(e.window),
                Event::DestroyNotify(e) if e.event == self.root => self.forget(e.window),
                Event::ConfigureNotify(e) if e.window == self.root => {
                    let size = (e.width, e.height);
                    if size != self.size {
                        info!(
                            width = e.width,
                            height = e.height,
                            "screen resized; fitting windows"
                        );
                        self.size = size;
                        for window in self.fitted.clone() {
                            self.fit(window);
                        }
                    }
                }
                Event::Error(e) => debug!("X error (ignored): {e:?}"),
                _ => {}
            }
            self.conn.flush().map_err(|e| x_error("X flush", e))?;
        }
    }

    /// A new top-level window: fit it unless it is a dialog, and focus it.
    fn adopt(&mut self, window: Window) {
        if !self.is_transient(window) {
            self.fitted.insert(window);
            self.fit(window);
        }
        self.focus_order.retain(|w| *w != window);
        self.focus_order.push(window);
        self.focus(window);
    }

    fn forget(&mut self, window: Window) {
        self.fitted.remove(&window);
        self.focus_order.retain(|w| *w != window);
        if let Some(last) = self.focus_order.last().copied() {
            self.focus(last);
        }
    }

    fn is_transient(&self, window: Window) -> bool {
        self.conn
            .get_property(
                false,
                window,
                AtomEnum::WM_TRANSIENT_FOR,
                AtomEnum::WINDOW,
                0,
                1,
            )
            .ok()
            .and_then(|c| c.reply().ok())
            .is_some_and(|p| p.value_len > 0)
    }

    fn fit(&self, window: Window) {
        let aux = ConfigureWindowAux::new()
            .x(0)
            .y(0)
            .width(u32::from(self.size.0))
            .height(u32::from(self.size.1))
            .border_width(0);
        if let Err(e) = self.conn.configure_window(window, &aux) {
            debug!("fit window {window:#x}: {e}");
        }
    }

    fn focus(&self, window: Window) {
        let _ = self
            .conn
            .set_input_focus(InputFocus::PARENT, window, x11rb::CURRENT_TIME);
    }
}
