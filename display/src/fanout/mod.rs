//! [`Fanout`]: one upstream RFB connection to an app's display, served to any number of
//! viewers by a small RFB 3.8 server of ours.
//!
//! Xvnc analyses and encodes every update once per client, so each direct viewer costs it
//! about as much as the first. A fan-out is the only client: it keeps the screen in Xvnc's own
//! pixel format and, for each viewer, the changes it has not been sent yet (a bounded region
//! in the same framebuffer). A viewer gets an update only after it asked, with the latest
//! pixels of everything that changed since its previous one, so an extra viewer costs little
//! more than copying the changed pixels, and a viewer that stops reading holds back only
//! itself. With no viewer the fan-out stops asking Xvnc for updates.
//!
//! | module | concept |
//! |---|---|
//! | `handshake` | the server side of the RFB handshake, security type None |
//! | `messages` | the viewer's messages, parsed |
//! | `format` | pixel formats: the upstream's copied as is, other 32-bit true colour converted |
//! | `update` | one FramebufferUpdate: Raw, CopyRect, DesktopSize, ExtendedDesktopSize, Cursor |
//! | `session` | one viewer's reader (input upstream, wishes) and writer (pacing) |
//! | `extras` | what a viewer gets besides pixels: window lists, clipboard texts and answers |
//!
//! The app's clipboard is the fan-out's: a text from Xvnc goes to every viewer, a text from a
//! viewer to Xvnc and to the other viewers. With an [`AppWindows`](crate::AppWindows) feed
//! ([`Fanout::with_windows`]) it serves seamless viewers their window lists and requests.

mod extras;
mod format;
mod handshake;
mod messages;
mod session;
mod update;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::UnixStream;
use tokio::sync::watch;
use tracing::{debug, info};

use crate::error::{DisplayError, Result};
use crate::framebuffer::{Framebuffer, PixelOrder, RegionId};
use crate::viewer::{ViewerConnection, ViewerOptions};
use crate::windows::WindowFeed;

/// How long [`Fanout::connect`] waits for the screen size.
const FIRST_SCREEN: Duration = Duration::from_secs(10);

/// The desktop name viewers are told.
const NAME: &str = "ZOS shared app";

/// How a viewer's connection through a [`Fanout`] ended (errors aside).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewEnd {
    /// The viewer closed its connection.
    ViewerLeft,
    /// The app's display went away (the upstream connection ended).
    AppEnded,
}

/// One app's display, served to many viewers over a single upstream connection.
///
/// Cheap to share (`Arc<Fanout>`): [`serve`](Self::serve) takes `&self`. Dropping it ends
/// the upstream connection, and with it every viewer's.
#[derive(Debug)]
pub struct Fanout {
    upstream: ViewerConnection,
    /// Viewers being served; updates are asked for upstream only while there is one.
    viewers: Mutex<usize>,
    /// The viewer whose buttons are held: others' pointer events wait until it lets go.
    pointer_owner: Mutex<Option<RegionId>>,
    /// The app's windows, for seamless viewers.
    windows: Option<WindowFeed>,
    /// The app's clipboard as the fan-out knows it.
    clipboard: watch::Sender<SharedClipboard>,
}

/// The app's latest clipboard text and where it came from.
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedClipboard {
    /// Grows with each new text (0: none yet).
    pub(crate) serial: u64,
    pub(crate) text: Option<Arc<str>>,
    /// The viewer it came from (`None`: the app's display).
    pub(crate) origin: Option<RegionId>,
}

/// Locks `m`, carrying on after a panic elsewhere.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Fanout {
    /// Connects to the app's RFB unix socket (an Xvnc's `-rfbunixpath`) and returns once the
    /// screen is known. Must be called inside a Tokio runtime, whose tasks then carry the
    /// upstream connection.
    pub async fn start(rfb_socket: &Path) -> Result<Fanout> {
        let stream = UnixStream::connect(rfb_socket).await?;
        Self::connect(stream).await
    }

    /// Like [`start`](Self::start), over any stream carrying RFB from its first byte.
    pub async fn connect<S>(stream: S) -> Result<Fanout>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + Sync + 'static,
    {
        let upstream =
            ViewerConnection::connect_ordered(stream, ViewerOptions::default(), PixelOrder::Wire)
                .await?;
        // Wait for the size and the first pixels (with ExtendedDesktopSize they come a round
        // trip after the layout), so the first viewer does not start from a black screen.
        let source = upstream.source();
        let mut versions = source.subscribe();
        let ready = tokio::time::timeout(FIRST_SCREEN, async {
            while source.size() == (0, 0) || source.stats().rects == 0 {
                if versions.changed().await.is_err() {
                    return Err(DisplayError::ViewerClosed);
                }
            }
            Ok(())
        })
        .await;
        match ready {
            Ok(r) => r?,
            Err(_) if source.size() != (0, 0) => {}
            Err(_) => return Err(DisplayError::NoScreen(FIRST_SCREEN)),
        }
        let (clipboard, _) = watch::channel(SharedClipboard::default());
        // The display's clipboard texts, as they come (the task ends with the connection).
        let mut from_app = upstream.source().subscribe_clipboard();
        let to_viewers = clipboard.clone();
        tokio::spawn(async move {
            while from_app.changed().await.is_ok() {
                let text = from_app.borrow_and_update().text.clone();
                to_viewers.send_modify(|c| {
                    c.serial += 1;
                    c.text = Some(text);
                    c.origin = None;
                });
            }
        });
        let fanout = Fanout {
            upstream,
            viewers: Mutex::new(0),
            pointer_owner: Mutex::new(None),
            windows: None,
            clipboard,
        };
        fanout.upstream.want_updates(false);
        let (width, height) = fanout.size();
        info!(width, height, "fan-out connected to the app's display");
        Ok(fanout)
    }

    /// Serves one viewer over `stream` (RFB from its first byte, as a server: security type
    /// None, the session layer having authenticated the peer) until it disconnects or the
    /// app's display ends. Any number of viewers may be served at once.
    ///
    /// A viewer asking for a pixel format other than 32-bit true colour, or breaking the
    /// protocol, is disconnected with the error returned (RFB has no failure message after
    /// the handshake).
    pub async fn serve<S>(&self, mut stream: S) -> Result<ViewEnd>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        if self.is_closed() {
            return Ok(ViewEnd::AppEnded);
        }
        handshake::negotiate(&mut stream).await?;
        let registered = Registration::new(self);
        handshake::server_init(&mut stream, registered.size, NAME).await?;
        debug!(id = registered.id, "viewer joined the fan-out");
        let end = session::run(self, registered.id, stream).await;
        debug!(id = registered.id, ?end, "viewer left the fan-out");
        end
    }

    /// Serves the app's window list to seamless viewers (those that announce ZOS's
    /// pseudo-encoding) and carries out their window requests, from `feed` (see
    /// [`AppWindows::feed`](crate::AppWindows::feed)).
    pub fn with_windows(mut self, feed: WindowFeed) -> Fanout {
        self.windows = Some(feed);
        self
    }

    /// A viewer's clipboard text: to the app, and to the other viewers.
    fn set_clipboard(&self, text: String, origin: RegionId) {
        if !crate::clipboard::fits(&text) {
            return;
        }
        debug!(
            bytes = text.len(),
            viewer = origin,
            "clipboard from a viewer"
        );
        if let Err(e) = self.upstream.send_clipboard(text.clone()) {
            debug!("clipboard not sent to the app: {e}");
        }
        self.clipboard.send_modify(|c| {
            c.serial += 1;
            c.text = Some(text.into());
            c.origin = Some(origin);
        });
    }

    /// How many viewers are being served.
    pub fn viewers(&self) -> usize {
        *lock(&self.viewers)
    }

    /// The app's current screen size.
    pub fn size(&self) -> (u16, u16) {
        self.upstream.size()
    }

    /// True once the upstream connection has ended (the app's display is gone).
    pub fn is_closed(&self) -> bool {
        self.upstream.source().is_closed()
    }

    /// Ends the upstream connection (and so every viewer's) and returns how it went: `Ok` if
    /// it was still healthy.
    pub async fn close(self) -> Result<()> {
        self.upstream.close().await
    }

    fn fb(&self) -> MutexGuard<'_, Framebuffer> {
        self.upstream.source_shared().fb()
    }

    /// Whether viewer `id` may move the pointer with `buttons` held; while one viewer holds a
    /// button, the others' pointer events are dropped (as Xvnc does among its clients).
    fn may_point(&self, id: RegionId, buttons: u8) -> bool {
        let mut owner = lock(&self.pointer_owner);
        match *owner {
            Some(o) if o != id => false,
            _ => {
                *owner = (buttons != 0).then_some(id);
                true
            }
        }
    }

    /// Forgets that viewer `id` holds buttons; true if it did.
    fn release_pointer(&self, id: RegionId) -> bool {
        let mut owner = lock(&self.pointer_owner);
        let held = *owner == Some(id);
        if held {
            *owner = None;
        }
        held
    }

    /// Counts a viewer in (`true`) or out, asking upstream for updates only while any is.
    fn count_viewer(&self, joined: bool) {
        let mut n = lock(&self.viewers);
        if joined {
            *n += 1;
        } else {
            *n = n.saturating_sub(1);
        }
        self.upstream.want_updates(*n > 0);
    }
}

/// A viewer's region in the fan-out's framebuffer and its place in the count, both given up
/// on drop (however the serving future ends).
struct Registration<'a> {
    fanout: &'a Fanout,
    id: RegionId,
    size: (u16, u16),
}

impl<'a> Registration<'a> {
    fn new(fanout: &'a Fanout) -> Registration<'a> {
        let (id, size) = fanout.fb().add_region();
        fanout.count_viewer(true);
        Registration { fanout, id, size }
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.fanout.fb().remove_region(self.id);
        self.fanout.release_pointer(self.id);
        self.fanout.count_viewer(false);
    }
}
