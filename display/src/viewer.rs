//! [`ViewerConnection`]: the client side of one VNC view, turning RFB updates into an RGBA
//! framebuffer and sending keys and pointer events back.
//!
//! One task drives the `vnc-rs` client: it selects over the client's events and an input
//! channel, so `vnc-rs`' internal lock is never awaited from two places (DISPLAY-NOTES trap 1);
//! it drains every queued event as soon as one arrives (trap 2); and it asks for an
//! incremental refresh after each batch, in particular after a desktop-size update, which with
//! ExtendedDesktopSize carries no pixels (trap 3).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, trace, warn};
use vnc::{PixelFormat, VncClient, VncConnector, VncEncoding, VncError, VncEvent, X11Event};

use crate::error::{DisplayError, Result};
use crate::framebuffer::{DirtyRect, Frame, Framebuffer};

/// Input events queued for the driver task before `key`/`pointer` wait.
const INPUT_QUEUE: usize = 256;
/// With nothing else happening, an incremental refresh is requested this often, so that a
/// lost request can never stall the view.
const REFRESH_FALLBACK: Duration = Duration::from_millis(500);

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

/// A live view of a remote (or local) VNC desktop.
///
/// Dropping it ends the connection.
#[derive(Debug)]
pub struct ViewerConnection {
    input: mpsc::Sender<X11Event>,
    framebuffer: Arc<Mutex<Framebuffer>>,
    versions: watch::Receiver<u64>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<()>>>,
}

impl ViewerConnection {
    /// Performs the RFB handshake (security type None) over `stream` with default options and
    /// starts the driver task. Must be called inside a Tokio runtime.
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
        let mut connector = VncConnector::new(stream)
            .set_auth_method(async { Err::<String, _>(VncError::NoPassword) })
            .allow_shared(true)
            .set_pixel_format(PixelFormat::rgba());
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
            .build()?
            .try_start()
            .await?
            .finish()?;
        info!(codec = ?options.codec, "VNC viewer connected");
        let framebuffer = Arc::new(Mutex::new(Framebuffer::default()));
        let (version_tx, versions) = watch::channel(0);
        let (input, input_rx) = mpsc::channel(INPUT_QUEUE);
        let (stop, stop_rx) = oneshot::channel();
        let task = tokio::spawn(drive(
            client,
            input_rx,
            stop_rx,
            Arc::clone(&framebuffer),
            version_tx,
        ));
        Ok(ViewerConnection {
            input,
            framebuffer,
            versions,
            stop: Some(stop),
            task: Some(task),
        })
    }

    fn fb(&self) -> MutexGuard<'_, Framebuffer> {
        // A panic while holding the lock leaves pixels at worst half-updated; keep serving.
        self.framebuffer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A copy of the current screen.
    pub fn frame(&self) -> Frame {
        self.fb().snapshot()
    }

    /// The current screen size (0×0 until the server has told it).
    pub fn size(&self) -> (u16, u16) {
        self.fb().size()
    }

    /// The rectangles that changed since the previous call (for partial texture uploads).
    pub fn take_dirty(&self) -> Vec<DirtyRect> {
        self.fb().take_dirty()
    }

    /// A receiver of the framebuffer version, which changes with every update. It reports the
    /// channel closed when the connection has ended.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.versions.clone()
    }

    /// Sends a key press (`down`) or release of X keysym `keysym`.
    pub async fn key(&self, keysym: u32, down: bool) -> Result<()> {
        self.send(X11Event::KeyEvent((keysym, down).into())).await
    }

    /// Moves the pointer to (`x`, `y`) with `buttons` held (bit 0 left, 1 middle, 2 right,
    /// 3/4 wheel up/down).
    pub async fn pointer(&self, x: u16, y: u16, buttons: u8) -> Result<()> {
        self.send(X11Event::PointerEvent((x, y, buttons).into()))
            .await
    }

    /// Asks the server for the whole screen again.
    pub async fn full_refresh(&self) -> Result<()> {
        self.send(X11Event::FullRefresh).await
    }

    async fn send(&self, event: X11Event) -> Result<()> {
        self.input
            .send(event)
            .await
            .map_err(|_| DisplayError::ViewerClosed)
    }

    /// True once the connection has ended (server gone, protocol error or closed).
    pub fn is_closed(&self) -> bool {
        self.task.as_ref().is_none_or(|t| t.is_finished())
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

/// What a batch of events did.
#[derive(Default)]
struct Batch {
    events: usize,
    resized: bool,
}

/// The single task that owns the `vnc-rs` client.
async fn drive(
    client: VncClient,
    mut input: mpsc::Receiver<X11Event>,
    mut stop: oneshot::Receiver<()>,
    framebuffer: Arc<Mutex<Framebuffer>>,
    versions: watch::Sender<u64>,
) -> Result<()> {
    let mut tick = tokio::time::interval(REFRESH_FALLBACK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut largest_batch = 0;
    let result = loop {
        tokio::select! {
            event = client.recv_event() => {
                let mut batch = Batch::default();
                let mut next = event;
                // Consume everything queued now, not one event per wake-up (trap 2).
                let outcome = loop {
                    match next {
                        Ok(e) => {
                            if let Err(e) = apply(e, &framebuffer, &mut batch) {
                                break Err(e);
                            }
                        }
                        Err(e) => break Err(e.into()),
                    }
                    next = match client.poll_event().await {
                        Ok(Some(e)) => Ok(e),
                        Ok(None) => break Ok(()),
                        Err(e) => Err(e),
                    };
                };
                if batch.events > largest_batch {
                    largest_batch = batch.events;
                    debug!(largest_batch, "VNC event batch");
                }
                let version = framebuffer.lock().unwrap_or_else(|p| p.into_inner()).version();
                versions.send_if_modified(|v| std::mem::replace(v, version) != version);
                if let Err(e) = outcome {
                    break Err(e);
                }
                if batch.resized {
                    trace!("desktop size changed; asking for pixels (trap 3)");
                }
                // Ask for the next update: the server only sends after a request.
                if let Err(e) = client.input(X11Event::Refresh).await {
                    break Err(e.into());
                }
                tick.reset();
            }
            event = input.recv() => match event {
                Some(event) => {
                    if let Err(e) = client.input(event).await {
                        break Err(e.into());
                    }
                }
                None => break Ok(()),
            },
            _ = &mut stop => break Ok(()),
            _ = tick.tick() => {
                if let Err(e) = client.input(X11Event::Refresh).await {
                    break Err(e.into());
                }
            }
        }
    };
    match &result {
        Ok(()) => info!("VNC viewer closed"),
        Err(e) => warn!("VNC viewer ended: {e}"),
    }
    let _ = client.close().await;
    result
}

/// Applies one event to the framebuffer.
fn apply(event: VncEvent, framebuffer: &Mutex<Framebuffer>, batch: &mut Batch) -> Result<()> {
    batch.events += 1;
    let mut fb = framebuffer.lock().unwrap_or_else(|p| p.into_inner());
    match event {
        VncEvent::SetResolution(screen) => {
            batch.resized |= fb.resize(screen.width, screen.height);
        }
        VncEvent::DesktopUpdate(update) => {
            if let Some(layout) = update.layout {
                batch.resized |= fb.resize(layout.width, layout.height);
            }
        }
        VncEvent::RawImage(rect, data) => fb.put(rect.into(), &data),
        VncEvent::Copy(dst, src) => fb.copy(dst.into(), src.into()),
        VncEvent::SetPixelFormat(pf) => trace!(?pf, "server pixel format"),
        VncEvent::JpegImage(rect, _) => warn!(?rect, "unexpected JPEG rectangle ignored"),
        VncEvent::SetCursor(..) | VncEvent::Bell | VncEvent::Text(_) => {}
        VncEvent::Error(e) => return Err(DisplayError::Vnc(VncError::General(e))),
        other => trace!(?other, "VNC event ignored"),
    }
    Ok(())
}
