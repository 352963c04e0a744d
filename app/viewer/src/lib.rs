//! The ZOS viewer window: one virtually shared app, shown through its VNC stream.
//!
//! [`run`] takes a closure that opens a unix stream carrying raw RFB from its first byte (the
//! local daemon splices it to the app's Xvnc on the master, or to a session channel on a
//! zombie), connects a [`zos_display::ViewerConnection`] over it on a background thread
//! ([`net`]), and opens an eframe window ([`app`]) that
//! - draws the remote screen one remote pixel per physical pixel, as a texture patched with
//!   the changed rectangles only ([`texture`]);
//! - sends the keyboard as X keysyms ([`keys`]) and the mouse, buttons and wheel in remote
//!   pixels ([`pointer`]);
//! - asks the server to resize the desktop when the window's size settles ([`resize`]);
//! - hides the system pointer over the view and draws the app's pointer shape instead;
//! - closes by itself when the connection ends.

use std::io;
use std::os::unix::net::UnixStream;

use anyhow::{Context as _, anyhow};
use eframe::egui;
use tracing::info;
use zos_display::{Codec, ViewerOptions};

pub mod app;
pub mod keys;
pub mod net;
pub mod pointer;
pub mod resize;
pub mod texture;
pub mod wake;

/// The largest window [`run`] opens at first (the remote screen may be larger; the window
/// then shows its top-left part until the server resizes it).
const MAX_INITIAL: (u16, u16) = (3840, 2160);

/// Opens a stream to the app's display that carries RFB from the first byte.
pub type Connect = Box<dyn FnOnce() -> io::Result<UnixStream> + Send>;

/// What [`run`] shows and how it reaches it.
pub struct ViewerWindowOptions {
    /// The window title: the app's name and where it runs, e.g. `"xterm on laptop"`.
    pub title: String,
    /// Called once, before the window opens, to open the RFB stream.
    pub connect: Connect,
    /// The pixel encoding to ask for (Raw, the default, suits loopback and LANs).
    pub codec: Codec,
}

impl ViewerWindowOptions {
    /// Options with the default codec.
    pub fn new(
        title: impl Into<String>,
        connect: impl FnOnce() -> io::Result<UnixStream> + Send + 'static,
    ) -> ViewerWindowOptions {
        ViewerWindowOptions {
            title: title.into(),
            connect: Box::new(connect),
            codec: Codec::default(),
        }
    }
}

impl std::fmt::Debug for ViewerWindowOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewerWindowOptions")
            .field("title", &self.title)
            .field("codec", &self.codec)
            .finish_non_exhaustive()
    }
}

/// Connects, opens the viewer window, and returns when it closes: when the user closes it, or
/// by itself when the connection ends (the app exited, the session ended; the reason is
/// logged at info). Both are `Ok`. Errors: the stream cannot be opened, the RFB handshake
/// fails, or no window can be created (no `DISPLAY`, no GL).
///
/// Call it from the main thread (winit's rule on Linux); it may be called again on the same
/// thread after it returned. It needs `DISPLAY` (and `XAUTHORITY` where the X server wants a
/// cookie) of the screen the window goes to, and at run time libGL with Mesa, libX11,
/// libxkbcommon and friends (see `packaging/system-packages.txt`).
pub fn run(options: ViewerWindowOptions) -> anyhow::Result<()> {
    let ViewerWindowOptions {
        title,
        connect,
        codec,
    } = options;
    let stream = connect().with_context(|| format!("cannot open the view of {title}"))?;
    let net = net::Net::start(stream, ViewerOptions { codec })
        .with_context(|| format!("cannot connect to the display of {title}"))?;
    let (w, h) = net.source().size();
    info!(width = w, height = h, "view of {title} connected");
    let inner = [
        f32::from(w.min(MAX_INITIAL.0)),
        f32::from(h.min(MAX_INITIAL.1)),
    ];
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title(&title)
            .with_app_id("zos-viewer")
            .with_inner_size(inner)
            .with_min_inner_size([64.0, 48.0]),
        // Ctrl+C, Ctrl+X and Ctrl+V belong to the app (a terminal's Ctrl+C above all).
        clipboard_shortcuts: false,
        ..Default::default()
    };
    let app_title = title.clone();
    eframe::run_native(
        &title,
        native,
        Box::new(move |cc| Ok(Box::new(app::ViewerApp::new(net, app_title, &cc.egui_ctx)))),
    )
    .map_err(|e| anyhow!("the viewer window of {title} failed: {e}"))
}
