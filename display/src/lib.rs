//! ZOS virtual displays: "virtually shared" apps.
//!
//! Each shared X11 app runs in its own [`VirtualDisplay`] — a private TigerVNC `Xvnc` that
//! serves RFB only on a unix socket — started with [`launch_app`]. A [`ViewerConnection`] reads
//! that display over any byte stream (the unix socket locally, a ZOS session channel across
//! machines) and keeps an RGBA framebuffer, while sending keys and pointer events back.
//! [`AppWindows`] stands in for a window manager: the app's windows fill the display and
//! have the keyboard.

mod app;
mod error;
mod framebuffer;
mod sys;
mod viewer;
mod windows;
mod xauth;
mod xvnc;

pub use app::launch_app;
pub use error::{DisplayError, Result};
pub use framebuffer::{DirtyRect, Frame};
pub use viewer::{Codec, ViewerConnection, ViewerOptions};
pub use windows::AppWindows;
pub use xvnc::VirtualDisplay;
