//! [`ViewerConnection`]: the client side of one VNC view, turning RFB updates into an RGBA
//! framebuffer and a pointer shape, and sending keys, pointer events and desktop resize
//! requests back. The [`driver`](crate::driver) task does the work.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::info;
use vnc::{VncConnector, VncEncoding, VncError, X11Event};

use crate::cursor::CursorShape;
use crate::driver::{self, Command};
use crate::error::{DisplayError, Result};
use crate::framebuffer::{DirtyRect, Frame, PixelOrder, wire_format};
use crate::seamless::WindowRequest;
use crate::source::{FrameSource, ResizeStatus, Shared};
use crate::stats::ViewerStats;
use crate::tap::{self, Outgoing, TapHandle};

/// Input events queued for the driver task before `key`/`pointer` wait.
const INPUT_QUEUE: usize = 256;

/// Which pixel encoding the viewer asks the server for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Codec {
    /// Uncompressed: the cheapest for both ends, the best on loopback and LAN.
    #[default]
    Raw,
    /// Tight (lossless): less data, more server CPU; for narrow links.
    Tight,
    /// ZRLE: compact, but costs the client 2–4× the CPU of Tight.
    Zrle,
}

/// Options of a [`ViewerConnection`].
#[derive(Debug, Clone, Default)]
pub struct ViewerOptions {
    /// The preferred encoding (CopyRect and Raw are always accepted too).
    pub codec: Codec,
}

/// A wheel turn: one click of the wheel in a direction (RFB buttons 4–7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wheel {
    /// Button 4: scroll up.
    Up,
    /// Button 5: scroll down.
    Down,
    /// Button 6: scroll left.
    Left,
    /// Button 7: scroll right.
    Right,
}

impl Wheel {
    /// The bits of all four wheel buttons.
    pub const ALL_MASKS: u8 = 0b0111_1000;

    /// The bit of this wheel button in an RFB pointer event's button mask.
    pub fn mask(self) -> u8 {
        match self {
            Wheel::Up => 1 << 3,
            Wheel::Down => 1 << 4,
            Wheel::Left => 1 << 5,
            Wheel::Right => 1 << 6,
        }
    }
}

/// A live view of a remote (or local) VNC desktop.
///
/// Dropping it ends the connection.
#[derive(Debug)]
pub struct ViewerConnection {
    input: mpsc::Sender<Command>,
    tap: TapHandle,
    source: FrameSource,
    /// Whether the driver keeps asking the server for updates.
    wanted: watch::Sender<bool>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<()>>>,
}

impl ViewerConnection {
    /// Performs the RFB handshake (security type None) over `stream` with default options and
    /// starts the driver task. Must be called inside a Tokio runtime.
    ///
    /// Besides the pixel encoding it asks for CopyRect, desktop resizing (DesktopSize and
    /// ExtendedDesktopSize) and the pointer shape (Cursor pseudo-encoding, so the server no
    /// longer paints the pointer into the pixels).
    pub async fn connect<S>(stream: S) -> Result<ViewerConnection>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + Sync + 'static,
    {
        Self::connect_with(stream, ViewerOptions::default()).await
    }

    /// Like [`connect`](Self::connect), with explicit options.
    pub async fn connect_with<S>(stream: S, options: ViewerOptions) -> Result<ViewerConnection>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + Sync + 'static,
    {
        Self::connect_ordered(stream, options, PixelOrder::Rgba).await
    }

    /// Like [`connect_with`](Self::connect_with), keeping pixels in `order`.
    pub(crate) async fn connect_ordered<S>(
        stream: S,
        options: ViewerOptions,
        order: PixelOrder,
    ) -> Result<ViewerConnection>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + Sync + 'static,
    {
        let (shared, publisher, sinks) = Shared::new(order);
        let shared = Arc::new(shared);
        let stream = shared.counters.count(stream);
        // vnc-rs reads through the tap, which keeps window lists and clipboards for us.
        let (stream, tap) = tap::splice(stream, sinks);
        let mut connector = VncConnector::new(stream)
            .set_auth_method(async { Err::<String, _>(VncError::NoPassword) })
            .allow_shared(true)
            .set_pixel_format(wire_format());
        connector = match options.codec {
            Codec::Raw => connector,
            Codec::Tight => connector.add_encoding(VncEncoding::Tight),
            Codec::Zrle => connector.add_encoding(VncEncoding::Zrle),
        };
        let client = connector
            .add_encoding(VncEncoding::CopyRect)
            .add_encoding(VncEncoding::Raw)
            .add_encoding(VncEncoding::DesktopSizePseudo)
            .add_encoding(VncEncoding::ExtendedDesktopSizePseudo)
            .add_encoding(VncEncoding::CursorPseudo)
            .build()?
            .try_start()
            .await?
            .finish()?;
        info!(codec = ?options.codec, "VNC viewer connected");
        let (input, input_rx) = mpsc::channel(INPUT_QUEUE);
        let (stop, stop_rx) = oneshot::channel();
        let (wanted, wanted_rx) = watch::channel(true);
        let task = tokio::spawn(driver::drive(
            client,
            input_rx,
            stop_rx,
            wanted_rx,
            Arc::clone(&shared),
            publisher,
        ));
        Ok(ViewerConnection {
            input,
            tap,
            source: FrameSource { shared },
            wanted,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// A handle on the screen, pointer shape and counters for another thread (it outlives the
    /// connection and then shows the last screen).
    pub fn source(&self) -> FrameSource {
        self.source.clone()
    }

    /// Starts or stops asking the server for updates (it asks from the start). Stopped, the
    /// server encodes nothing for this connection; started again, the next update carries
    /// everything that changed meanwhile.
    pub(crate) fn want_updates(&self, wanted: bool) {
        self.wanted
            .send_if_modified(|w| std::mem::replace(w, wanted) != wanted);
    }

    /// The state the driver updates (for a fan-out in this crate).
    pub(crate) fn source_shared(&self) -> &Shared {
        &self.source.shared
    }

    /// A copy of the current screen.
    pub fn frame(&self) -> Frame {
        self.source.frame()
    }

    /// The current screen size (0×0 until the server has told it).
    pub fn size(&self) -> (u16, u16) {
        self.source.size()
    }

    /// The rectangles that changed since the previous call (for partial texture uploads).
    pub fn take_dirty(&self) -> Vec<DirtyRect> {
        self.source.take_dirty()
    }

    /// A receiver of the framebuffer version, which changes with every update. It reports the
    /// channel closed when the connection has ended.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.source.subscribe()
    }

    /// The remote pointer's current shape; `None` until the server sent one.
    pub fn cursor(&self) -> Option<CursorShape> {
        self.source.cursor()
    }

    /// What has been received so far (for benchmarks).
    pub fn stats(&self) -> ViewerStats {
        self.source.stats()
    }

    /// How the latest [`request_resize`](Self::request_resize) went.
    pub fn resize_status(&self) -> ResizeStatus {
        self.source.resize_status()
    }

    /// Sends a key press (`down`) or release of X keysym `keysym`.
    pub async fn key(&self, keysym: u32, down: bool) -> Result<()> {
        self.send(X11Event::KeyEvent((keysym, down).into())).await
    }

    /// Moves the pointer to (`x`, `y`) with `buttons` held (bit 0 left, 1 middle, 2 right,
    /// 3/4 wheel up/down, 5/6 wheel left/right).
    pub async fn pointer(&self, x: u16, y: u16, buttons: u8) -> Result<()> {
        self.send(X11Event::PointerEvent((x, y, buttons).into()))
            .await
    }

    /// One click of the wheel at (`x`, `y`) while `buttons` are held: the wheel button is
    /// pressed, then released.
    pub async fn wheel(&self, x: u16, y: u16, buttons: u8, wheel: Wheel) -> Result<()> {
        let held = buttons & !Wheel::ALL_MASKS;
        self.pointer(x, y, held | wheel.mask()).await?;
        self.pointer(x, y, held).await
    }

    /// Asks the server to resize the desktop to `width` × `height` and returns at once; the
    /// outcome shows in [`resize_status`](Self::resize_status), and the new size in the frame
    /// once the server confirms. A refusal or failure is reported there (and logged), never
    /// fatal to the connection. While one request waits for its answer, later ones are merged:
    /// only the latest is sent next.
    pub async fn request_resize(&self, width: u16, height: u16) -> Result<()> {
        self.input
            .send(Command::Resize(width, height))
            .await
            .map_err(|_| DisplayError::ViewerClosed)
    }

    /// Gives the server our clipboard's `text` (as UTF-8 where it offers the Extended
    /// Clipboard, else Latin-1 with other characters as `?`). Never waits; a text over
    /// [`MAX_CLIPBOARD`](crate::clipboard::MAX_CLIPBOARD) is refused.
    pub fn send_clipboard(&self, text: String) -> Result<()> {
        if !crate::clipboard::fits(&text) {
            return Err(DisplayError::Protocol(format!(
                "a {}-byte clipboard is over the {}-byte limit",
                text.len(),
                crate::clipboard::MAX_CLIPBOARD
            )));
        }
        self.queue(Outgoing::Clipboard(text))
    }

    /// Asks a ZOS server to do `request` to one of the app's windows (dropped if the server
    /// has sent no window list: it does not speak the extension). Never waits.
    pub fn request_window(&self, request: WindowRequest) -> Result<()> {
        self.queue(Outgoing::Window(request))
    }

    fn queue(&self, message: Outgoing) -> Result<()> {
        if self.is_closed() || !self.tap.send(message) {
            return Err(DisplayError::ViewerClosed);
        }
        Ok(())
    }

    /// Asks the server for the whole screen again.
    pub async fn full_refresh(&self) -> Result<()> {
        self.send(X11Event::FullRefresh).await
    }

    async fn send(&self, event: X11Event) -> Result<()> {
        if self.is_closed() {
            return Err(DisplayError::ViewerClosed);
        }
        self.input
            .send(Command::Input(event))
            .await
            .map_err(|_| DisplayError::ViewerClosed)
    }

    /// True once the connection has ended (server gone, protocol error or closed).
    pub fn is_closed(&self) -> bool {
        // The driver drops the frame channel as it ends, a moment before its task counts as
        // finished: either says the connection is over (so a subscriber that saw the channel
        // close finds the viewer closed too).
        self.source.is_closed() || self.task.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Ends the connection and returns how it went: `Ok` if it was still healthy.
    pub async fn close(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => match task.await {
                Ok(result) => result,
                Err(e) => Err(DisplayError::Vnc(VncError::General(e.to_string()))),
            },
            None => Ok(()),
        }
    }
}

impl Drop for ViewerConnection {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
