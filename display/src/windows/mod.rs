//! [`AppWindows`]: the window manager of an app's virtual display, for seamless windows.
//!
//! A virtual display runs no window manager. This small X client is one: it takes
//! `SubstructureRedirect` on the root window, so that the app's top-level windows map and
//! resize through it, and
//! - places each at the size the app asks for, side by side with the others and never
//!   overlapping ([`layout`]), on a screen it sizes with RANDR to hold them ([`screen`]);
//! - tracks every mapped window's geometry, stacking, title, icon, and whether it is a dialog
//!   (`WM_TRANSIENT_FOR`), a menu or a tooltip (override-redirect, placed by the app) — the
//!   [`WindowList`] that the fan-out sends to seamless viewers ([`props`], [`keeper`]);
//! - gives the newest window the keyboard focus, and carries out viewers' requests: a window
//!   resized to its viewer window's size, a window activated when its viewer window gets the
//!   focus ([`WindowControl`]).
//!
//! Should another client hold the redirect already, it falls back to fixing windows up after
//! they map.

mod conn;
mod keeper;
mod layout;
mod props;
mod screen;

use std::sync::Arc;

use tokio::sync::watch;
use tracing::debug;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ClientMessageEvent, ConnectionExt as _, EventMask, Window};
use x11rb::rust_connection::RustConnection;

use crate::VirtualDisplay;
use crate::error::{DisplayError, Result};
use crate::seamless::{WindowList, WindowRequest};

pub(crate) use conn::x_error;

/// Keeps an app's windows placed and listed; runs until the display ends.
#[derive(Debug)]
pub struct AppWindows {
    _thread: std::thread::JoinHandle<()>,
    feed: WindowFeed,
}

/// The window list of one display and a way to ask things of its windows: what a
/// [`Fanout`](crate::Fanout) needs to serve seamless viewers.
#[derive(Debug, Clone)]
pub struct WindowFeed {
    /// The latest list; changes whenever a window maps, moves, resizes, retitles or goes.
    pub list: watch::Receiver<Arc<WindowList>>,
    /// Requests to the window keeper.
    pub control: WindowControl,
}

/// Sends viewers' requests to the window keeper (as X client messages to its own window, which
/// wake its event loop). Cheap to clone; usable from any thread.
#[derive(Debug, Clone)]
pub struct WindowControl {
    conn: Arc<RustConnection>,
    window: Window,
    kind: u32,
}

/// Client-message opcodes of [`WindowControl`].
const OP_RESIZE: u32 = 1;
const OP_ACTIVATE: u32 = 2;

impl WindowControl {
    /// Asks the keeper to carry out `request` (applied in order, later; never waits).
    pub fn send(&self, request: WindowRequest) -> Result<()> {
        let data = match request {
            WindowRequest::Resize { id, width, height } => {
                [OP_RESIZE, id, u32::from(width), u32::from(height), 0]
            }
            WindowRequest::Activate { id } => [OP_ACTIVATE, id, 0, 0, 0],
        };
        let event = ClientMessageEvent::new(32, self.window, self.kind, data);
        // An empty event mask sends it to the client that created the window: the keeper.
        self.conn
            .send_event(false, self.window, EventMask::NO_EVENT, event)
            .map_err(|e| x_error("send a window request", e))?;
        self.conn.flush().map_err(|e| x_error("X flush", e))
    }
}

/// A viewer's request as the keeper receives it.
fn decode_request(data: [u32; 5]) -> Option<WindowRequest> {
    let side = |v: u32| u16::try_from(v).ok().filter(|&v| v > 0);
    match data[0] {
        OP_RESIZE => Some(WindowRequest::Resize {
            id: data[1],
            width: side(data[2])?,
            height: side(data[3])?,
        }),
        OP_ACTIVATE => Some(WindowRequest::Activate { id: data[1] }),
        _ => None,
    }
}

impl AppWindows {
    /// Connects to `display` as an X client and starts managing its windows.
    pub fn start(display: &VirtualDisplay) -> Result<AppWindows> {
        AppWindows::on(display.number(), display.xauthority())
    }

    /// [`AppWindows::start`] for X display `number` whose cookie is in the file
    /// `xauthority` (a display another process started). Should that display have its
    /// window manager already (an app's supervisor runs one), this one lists the windows
    /// and carries out viewers' requests, placing them the same way.
    pub fn on(number: u32, xauthority: &std::path::Path) -> Result<AppWindows> {
        let conn = Arc::new(conn::connect_to(number, xauthority)?);
        let (keeper, feed) = keeper::Keeper::new(Arc::clone(&conn))?;
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
        Ok(AppWindows {
            _thread: thread,
            feed,
        })
    }

    /// The window list and the request channel, for a fan-out.
    pub fn feed(&self) -> WindowFeed {
        self.feed.clone()
    }

    /// The current window list.
    pub fn list(&self) -> Arc<WindowList> {
        Arc::clone(&self.feed.list.borrow())
    }
}
