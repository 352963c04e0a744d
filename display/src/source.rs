//! [`FrameSource`]: what a viewer knows of the remote screen — pixels, pointer shape, resize
//! outcome, counters — readable from any thread while the driver task updates it.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::clipboard::RemoteClipboard;
use crate::cursor::CursorShape;
use crate::framebuffer::{DirtyRect, Frame, FrameUpdate, Framebuffer, PixelOrder};
use crate::seamless::WindowList;
use crate::stats::{Counters, ViewerStats};

/// How the last desktop resize request went.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ResizeStatus {
    /// No resize has been asked for.
    #[default]
    None,
    /// Asked for; the server has not answered yet.
    Pending {
        /// Requested width.
        width: u16,
        /// Requested height.
        height: u16,
    },
    /// The server confirmed the new size.
    Done {
        /// Confirmed width.
        width: u16,
        /// Confirmed height.
        height: u16,
    },
    /// The server refused, did not answer in time, or cannot resize.
    Failed {
        /// Requested width.
        width: u16,
        /// Requested height.
        height: u16,
        /// Why, in words.
        reason: String,
    },
}

/// The state shared by a connection's driver task and its readers.
#[derive(Debug)]
pub(crate) struct Shared {
    framebuffer: Mutex<Framebuffer>,
    cursor: Mutex<Option<CursorShape>>,
    resize: watch::Sender<ResizeStatus>,
    pub(crate) counters: Counters,
    /// Receivers to clone for subscribers; the driver task owns the senders, so they close
    /// when it ends.
    frame_versions: watch::Receiver<u64>,
    cursor_versions: watch::Receiver<u64>,
    /// The server's window list (`None` until a ZOS server sends one); the tap holds the
    /// sender.
    windows: watch::Receiver<Option<Arc<WindowList>>>,
    /// The server's clipboard text; the tap holds the sender.
    clipboard: watch::Receiver<RemoteClipboard>,
}

/// The driver's side of the version channels.
#[derive(Debug)]
pub(crate) struct Publisher {
    frame: watch::Sender<u64>,
    cursor: watch::Sender<u64>,
}

/// Locks `m`, carrying on after a panic elsewhere: the data is at worst half-updated pixels.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    /// New, empty state storing pixels in `order`, the publisher the driver task keeps, and
    /// the tap's sinks.
    pub(crate) fn new(order: PixelOrder) -> (Shared, Publisher, crate::tap::Sinks) {
        let (frame, frame_versions) = watch::channel(0);
        let (cursor, cursor_versions) = watch::channel(0);
        let (windows_tx, windows) = watch::channel(None);
        let (clipboard_tx, clipboard) = watch::channel(RemoteClipboard::default());
        let shared = Shared {
            framebuffer: Mutex::new(Framebuffer::new(order)),
            cursor: Mutex::default(),
            resize: watch::Sender::new(ResizeStatus::None),
            counters: Counters::default(),
            frame_versions,
            cursor_versions,
            windows,
            clipboard,
        };
        let sinks = crate::tap::Sinks {
            windows: windows_tx,
            clipboard: clipboard_tx,
        };
        (shared, Publisher { frame, cursor }, sinks)
    }

    pub(crate) fn fb(&self) -> MutexGuard<'_, Framebuffer> {
        lock(&self.framebuffer)
    }

    /// Tells subscribers about the framebuffer's current version if it moved.
    pub(crate) fn publish_frame(&self, publisher: &Publisher) {
        let version = self.fb().version();
        publisher
            .frame
            .send_if_modified(|v| std::mem::replace(v, version) != version);
    }

    pub(crate) fn set_cursor(&self, publisher: &Publisher, rect: vnc::Rect, data: Vec<u8>) {
        let version = *publisher.cursor.borrow() + 1;
        *lock(&self.cursor) = Some(CursorShape::from_event(rect, data, version));
        publisher.cursor.send_replace(version);
    }

    pub(crate) fn set_resize(&self, status: ResizeStatus) {
        self.resize.send_replace(status);
    }

    /// A receiver that sees every new resize status.
    pub(crate) fn subscribe_resize(&self) -> watch::Receiver<ResizeStatus> {
        self.resize.subscribe()
    }
}

/// A handle on what a [`ViewerConnection`](crate::ViewerConnection) receives, for another
/// thread (a window's UI thread, say). Cheap to clone; it never waits on the network, only
/// briefly on the lock the driver holds while it applies one rectangle.
///
/// Updates are meant for one consumer: [`take_update`](Self::take_update) hands each change
/// out once.
#[derive(Debug, Clone)]
pub struct FrameSource {
    pub(crate) shared: Arc<Shared>,
}

impl FrameSource {
    /// The current pixels of everything that changed since the previous call, or `None` if
    /// nothing did. However late it is called, it returns only the latest pixels of at most a
    /// few dozen merged rectangles.
    pub fn take_update(&self) -> Option<FrameUpdate> {
        self.shared.fb().take_update()
    }

    /// The rectangles that changed since the previous call (without their pixels).
    pub fn take_dirty(&self) -> Vec<DirtyRect> {
        self.shared.fb().take_dirty()
    }

    /// A copy of the whole current screen.
    pub fn frame(&self) -> Frame {
        self.shared.fb().snapshot()
    }

    /// The current screen size (0×0 until the server has told it).
    pub fn size(&self) -> (u16, u16) {
        self.shared.fb().size()
    }

    /// One pixel of the current screen (red, green, blue, alpha), if (`x`, `y`) is on it.
    pub fn pixel(&self, x: u16, y: u16) -> Option<[u8; 4]> {
        self.shared.fb().pixel(x, y)
    }

    /// The framebuffer version, which grows with every change.
    pub fn version(&self) -> u64 {
        self.shared.fb().version()
    }

    /// The remote pointer's current shape; `None` until the server sent one.
    pub fn cursor(&self) -> Option<CursorShape> {
        lock(&self.shared.cursor).clone()
    }

    /// The version of the pointer shape: 0 before the first, then one more per shape.
    pub fn cursor_version(&self) -> u64 {
        *self.shared.cursor_versions.borrow()
    }

    /// A receiver of the framebuffer version; it reports the channel closed once the
    /// connection has ended.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.frame_versions.clone()
    }

    /// A receiver of the pointer shape version; closed once the connection has ended.
    pub fn subscribe_cursor(&self) -> watch::Receiver<u64> {
        self.shared.cursor_versions.clone()
    }

    /// True once the connection has ended (server gone, protocol error or closed).
    pub fn is_closed(&self) -> bool {
        self.shared.frame_versions.has_changed().is_err()
    }

    /// How the latest desktop resize request went.
    pub fn resize_status(&self) -> ResizeStatus {
        self.shared.resize.borrow().clone()
    }

    /// The server's current window list: `None` until a ZOS fan-out (which sends one at once
    /// to a viewer that asks) has sent it.
    pub fn windows(&self) -> Option<Arc<WindowList>> {
        self.shared.windows.borrow().clone()
    }

    /// A receiver that sees every new window list.
    pub fn subscribe_windows(&self) -> watch::Receiver<Option<Arc<WindowList>>> {
        self.shared.windows.clone()
    }

    /// The server's latest clipboard text (serial 0: none yet).
    pub fn clipboard(&self) -> RemoteClipboard {
        self.shared.clipboard.borrow().clone()
    }

    /// A receiver that sees every clipboard text the server sends.
    pub fn subscribe_clipboard(&self) -> watch::Receiver<RemoteClipboard> {
        self.shared.clipboard.clone()
    }

    /// The rectangles changed since the last [`take_update`](Self::take_update), without
    /// taking them (to decide which windows need drawing).
    pub fn peek_dirty(&self) -> Vec<DirtyRect> {
        self.shared.fb().peek_dirty()
    }

    /// What has been received so far.
    pub fn stats(&self) -> ViewerStats {
        self.shared.counters.snapshot()
    }
}
