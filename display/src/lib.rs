//! ZOS virtual displays: "virtually shared" apps.
//!
//! Each shared X11 app runs in its own [`VirtualDisplay`] — a private TigerVNC `Xvnc` that
//! serves RFB only on a unix socket — started with [`launch_app`]. A [`ViewerConnection`] reads
//! that display over any byte stream (the unix socket locally, a ZOS session channel across
//! machines) and keeps an RGBA framebuffer and the pointer shape, while sending keys, pointer
//! and wheel events and desktop resize requests back. Its [`FrameSource`] hands the changed
//! pixels to another thread (a window) without ever letting them queue up. A [`Fanout`] is the
//! one such connection to an app's display that the master holds, serving any number of
//! viewers with a small RFB server of its own, so Xvnc encodes each update once. [`AppWindows`]
//! is the display's window manager: it places the app's windows side by side at their own
//! size on a screen sized to hold them, and lists them ([`WindowList`]) for the fan-out to
//! send to seamless viewers, which show each window as a window of its own. Text clipboards
//! travel both ways in RFB cut-text messages ([`clipboard`]).
//!
//! On a dominated zombie, a [`ZosSession`] (Xephyr on the zombie's screen) is where the master's
//! user works; [`input`] captures the master's keyboard and mouse, plays them into that session
//! with XTest, and carries the clipboard between the two.

mod app;
pub mod clipboard;
mod cursor;
mod driver;
mod error;
mod fanout;
mod framebuffer;
pub mod input;
mod region;
pub mod seamless;
pub mod session;
mod source;
mod stats;
mod sys;
mod tap;
mod viewer;
mod windows;
mod xauth;
mod xconn;
mod xvnc;

pub use app::launch_app;
pub use cursor::CursorShape;
pub use error::{DisplayError, Result};
pub use fanout::{Fanout, ViewEnd};
pub use framebuffer::{DirtyRect, Frame, FrameUpdate, RectPixels};
pub use seamless::{AppWindow, WindowIcon, WindowKind, WindowList, WindowRect, WindowRequest};
pub use session::{SessionOptions, ZosSession};
pub use source::{FrameSource, ResizeStatus};
pub use stats::ViewerStats;
pub use sys::die_with_parent;
pub use viewer::{Codec, ViewerConnection, ViewerOptions, Wheel};
pub use windows::{AppWindows, WindowControl, WindowFeed};
pub use xconn::{connect as connect_display, display_number};
pub use xvnc::VirtualDisplay;
