//! The ZOS viewer: a virtually shared app's windows, shown through its RFB stream.
//!
//! [`run`] takes a closure that opens a unix stream carrying raw RFB from its first byte (the
//! local daemon serves it from the app's fan-out on the master, or through a session channel
//! on a zombie) and connects a [`zos_display::ViewerConnection`] over it on a background
//! thread ([`net`]). Then, by default, each window of the app opens as a window of its own
//! here ([`seamless`]): at the app window's size, with its title and icon, menus and dialogs
//! where the app puts them; with [`ViewerWindowOptions::desktop`] (or when the server lists no
//! windows) one window shows the app's whole display ([`desktop`]). Either way:
//! - the remote screen is one texture patched with the changed rectangles only
//!   ([`texture`]), each window drawing its part of it, scaled to the window's size with
//!   linear filtering, one to one (crisp) when the sizes match, `Ctrl+0` back to one to one
//!   ([`scale`]); with [`ViewerWindowOptions::resize_remote`] a resized window asks the app
//!   for that size instead ([`resize`]);
//! - the keyboard goes as X keysyms ([`keys`]), the mouse, buttons and wheel in remote pixels
//!   ([`pointer`]), the app's pointer shape is drawn over the view;
//! - the local CLIPBOARD and PRIMARY and the app's clipboard follow each other
//!   ([`clipboard`]);
//! - everything closes by itself when the connection ends.

use std::io;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use eframe::egui;
use tracing::info;
use zos_display::{Codec, ViewerOptions};

pub mod clipboard;
pub mod core;
pub mod desktop;
pub mod keys;
pub mod net;
pub mod pointer;
pub mod resize;
pub mod scale;
pub mod seamless;
pub mod texture;
pub mod wake;
pub mod workarea;

/// How long a view waits for the server's window list before showing the whole display (a
/// ZOS fan-out sends it at once; a plain VNC server never does).
const WINDOW_LIST_WAIT: Duration = Duration::from_secs(2);

/// Opens a stream to the app's display that carries RFB from the first byte.
pub type Connect = Box<dyn FnOnce() -> io::Result<UnixStream> + Send>;

/// What [`run`] shows and how it reaches it.
pub struct ViewerWindowOptions {
    /// The app's name and where it runs, e.g. `"xterm on laptop (task 3)"`: the whole-display
    /// window's title, and each app window's after its own.
    pub title: String,
    /// Called once, before any window opens, to open the RFB stream.
    pub connect: Connect,
    /// The pixel encoding to ask for (Raw, the default, suits loopback and LANs).
    pub codec: Codec,
    /// One window with the app's whole display instead of a window per app window.
    pub desktop: bool,
    /// A window resized by the user asks the app's window (or, with `desktop`, the display)
    /// to take its size, instead of scaling the picture.
    pub resize_remote: bool,
}

impl ViewerWindowOptions {
    /// Seamless windows, scaled when resized, with the default codec.
    pub fn new(
        title: impl Into<String>,
        connect: impl FnOnce() -> io::Result<UnixStream> + Send + 'static,
    ) -> ViewerWindowOptions {
        ViewerWindowOptions {
            title: title.into(),
            connect: Box::new(connect),
            codec: Codec::default(),
            desktop: false,
            resize_remote: false,
        }
    }
}

impl std::fmt::Debug for ViewerWindowOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewerWindowOptions")
            .field("title", &self.title)
            .field("codec", &self.codec)
            .field("desktop", &self.desktop)
            .field("resize_remote", &self.resize_remote)
            .finish_non_exhaustive()
    }
}

/// Connects, opens the viewer's windows, and returns when they are closed: when the user
/// closed them all, or by themselves when the connection ends (the app exited, the session
/// ended; the reason is logged at info). Both are `Ok`. Errors: the stream cannot be opened,
/// the RFB handshake fails, or no window can be created (no `DISPLAY`, no GL).
///
/// Call it from the main thread (winit's rule on Linux); it may be called again on the same
/// thread after it returned. It needs `DISPLAY` (and `XAUTHORITY` where the X server wants a
/// cookie) of the screen the windows go to, and at run time libGL with Mesa, libX11,
/// libxkbcommon and friends (see `packaging/system-packages.txt`).
pub fn run(options: ViewerWindowOptions) -> anyhow::Result<()> {
    let ViewerWindowOptions {
        title,
        connect,
        codec,
        desktop,
        resize_remote,
    } = options;
    let stream = connect().with_context(|| format!("cannot open the view of {title}"))?;
    let net = net::Net::start(stream, ViewerOptions { codec })
        .with_context(|| format!("cannot connect to the display of {title}"))?;
    let (w, h) = net.source().size();
    info!(width = w, height = h, "view of {title} connected");
    let bridge = clipboard::Bridge::start(net.input_sender());
    let seamless = !desktop && wait_for_window_list(&net);
    if !desktop && !seamless {
        info!("the display lists no windows; showing the whole display");
    }
    let app_title = title.clone();
    let clipboard = clipboard::hook(bridge);
    let viewport = if seamless {
        // The root is hidden at once: every app window gets a viewport of its own.
        egui::ViewportBuilder::default()
            .with_title(format!("{title} (zos viewer)"))
            .with_inner_size([1.0, 1.0])
            .with_decorations(false)
            .with_taskbar(false)
    } else {
        let max = workarea::max_inner_size().unwrap_or((3840, 2160));
        let (iw, ih) = workarea::fit_within((u32::from(w), u32::from(h)), max);
        egui::ViewportBuilder::default()
            .with_title(&title)
            .with_inner_size([iw as f32, ih as f32])
            .with_min_inner_size([64.0, 48.0])
    };
    let native = eframe::NativeOptions {
        viewport: viewport.with_app_id("zos-viewer"),
        // Ctrl+C, Ctrl+X and Ctrl+V belong to the app (a terminal's Ctrl+C above all).
        clipboard_shortcuts: false,
        ..Default::default()
    };
    let result = eframe::run_native(
        &title,
        native,
        Box::new(move |cc| {
            let app: Box<dyn eframe::App> = if seamless {
                Box::new(seamless::SeamlessApp::new(
                    net,
                    app_title,
                    resize_remote,
                    clipboard,
                    cc,
                ))
            } else {
                Box::new(desktop::DesktopApp::new(
                    net,
                    app_title,
                    resize_remote,
                    clipboard,
                    &cc.egui_ctx,
                ))
            };
            Ok(app)
        }),
    );
    result.map_err(|e| anyhow!("the viewer window of {title} failed: {e}"))
}

/// Waits (briefly) for the server's window list; false if it sends none.
fn wait_for_window_list(net: &net::Net) -> bool {
    let deadline = Instant::now() + WINDOW_LIST_WAIT;
    while net.source().windows().is_none() {
        if Instant::now() > deadline || net.ended().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}
