//! The tap: a splice between a viewer's RFB stream and vnc-rs that carries what vnc-rs does
//! not know — ZOS's window lists and requests ([`crate::seamless`]) and text clipboards both
//! ways, plain and extended ([`crate::clipboard`]).
//!
//! vnc-rs gets one end of an in-memory pipe. Two tasks sit between it and the real stream:
//! [`server`] reads what the server sends, message by message, forwards everything vnc-rs
//! understands unchanged (pixel payloads are copied through without being looked at) and
//! keeps cut-text and ZOS messages for itself; [`client`] forwards vnc-rs' messages whole,
//! adds the two pseudo-encodings to its SetEncodings, and slips our own messages in between.
//! Either task ending closes both sides.

mod client;
mod server;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use tokio::io::{AsyncRead, AsyncWrite, DuplexStream};
use tokio::sync::{Notify, mpsc, watch};
use tracing::debug;

use crate::clipboard::RemoteClipboard;
use crate::seamless::{WindowList, WindowRequest};

/// The pipe between the tap and vnc-rs (large enough for a few rectangles; the tap waits when
/// it is full, so TCP backpressure still reaches the server).
const PIPE: usize = 256 * 1024;
/// Messages of ours waiting to be written.
const OUTGOING: usize = 64;

/// What the tap hands on.
#[derive(Debug)]
pub(crate) struct Sinks {
    /// The latest window list from a ZOS server.
    pub(crate) windows: watch::Sender<Option<Arc<WindowList>>>,
    /// The latest clipboard text from the server.
    pub(crate) clipboard: watch::Sender<RemoteClipboard>,
}

/// What both halves know.
#[derive(Debug, Default)]
struct State {
    /// The handshake is over (the server's ServerInit went to vnc-rs).
    initialised: AtomicBool,
    init_done: Notify,
    /// The server sent Extended Clipboard caps.
    extended_clipboard: AtomicBool,
    /// The server sent a window list (it speaks ZOS's extension).
    seamless: AtomicBool,
    /// Bytes per pixel, and per "TPIXEL" of Tight, in the format vnc-rs asked for.
    bytes_per_pixel: AtomicU8,
    tight_pixel: AtomicU8,
    /// The text we last sent, to answer the server's requests for it.
    our_text: std::sync::Mutex<Option<String>>,
}

impl State {
    fn set_format(&self, format: &[u8]) {
        let (bpp, depth, true_colour) = (format[0], format[1], format[3] != 0);
        let max = |i: usize| u16::from_be_bytes([format[i], format[i + 1]]);
        let tight =
            if bpp == 32 && depth == 24 && true_colour && (4..10).step_by(2).all(|i| max(i) == 255)
            {
                3
            } else {
                bpp / 8
            };
        self.bytes_per_pixel.store(bpp / 8, Ordering::Relaxed);
        self.tight_pixel.store(tight, Ordering::Relaxed);
    }

    fn our_text(&self) -> Option<String> {
        self.our_text
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Something of ours for the server.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// Our clipboard changed to this text.
    Clipboard(String),
    /// A window request (sent only to a server that speaks ZOS).
    Window(WindowRequest),
    /// A message composed by the reader (clipboard caps, requests, answers).
    Message(Vec<u8>),
}

/// Sends our messages through the tap.
#[derive(Debug, Clone)]
pub(crate) struct TapHandle {
    outgoing: mpsc::Sender<Outgoing>,
}

impl TapHandle {
    /// Queues `message`; false if the connection is gone or too much is queued (then it is
    /// dropped: clipboard and window requests are worth nothing late).
    pub(crate) fn send(&self, message: Outgoing) -> bool {
        match self.outgoing.try_send(message) {
            Ok(()) => true,
            Err(e) => {
                debug!("tap: not sent: {e}");
                false
            }
        }
    }
}

/// Splices `stream`: returns the end vnc-rs reads and writes, and the handle for our
/// messages. Must be called inside a Tokio runtime.
pub(crate) fn splice<S>(stream: S, sinks: Sinks) -> (DuplexStream, TapHandle)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (inner, ours) = tokio::io::duplex(PIPE);
    let (real_read, real_write) = tokio::io::split(stream);
    let (ours_read, ours_write) = tokio::io::split(ours);
    let (outgoing, outgoing_rx) = mpsc::channel(OUTGOING);
    let state = Arc::new(State::default());
    let handle = TapHandle { outgoing };
    let server = tokio::spawn(server::run(
        real_read,
        ours_write,
        Arc::clone(&state),
        sinks,
        handle.clone(),
    ));
    tokio::spawn(async move {
        client::run(ours_read, real_write, state, outgoing_rx).await;
        // vnc-rs is gone: stop reading for it (dropping the read half closes the stream).
        server.abort();
    });
    (inner, handle)
}
