//! The network side of a viewer window: a thread with a Tokio runtime that owns the
//! [`ViewerConnection`], forwards the window's input to it, wakes the window when pixels or
//! the pointer shape change, and records why the connection ended.
//!
//! The window (UI thread) never waits on it: input goes through an unbounded channel (each
//! event is a few bytes and the window sends at most its frame's events), and pixels come
//! through the connection's [`FrameSource`], which holds only the latest screen. Wake-ups for
//! pixels are coalesced per update ([`crate::wake`]); a new pointer shape wakes at once.

use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow};
use eframe::egui;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};
use zos_display::{FrameSource, ViewerConnection, ViewerOptions, Wheel};

use crate::wake::Coalescer;

/// How long closing the view may take when the window goes.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);
/// The delay of a wake-up (see `serve`).
const WAKE_DELAY: Duration = Duration::from_micros(100);
/// How long the server may take for the handshake, and then to tell its screen size.
const FIRST_SIZE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the window asks the connection to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Press (`true`) or release an X keysym.
    Key(u32, bool),
    /// Pointer at (x, y) with a button mask.
    Pointer(u16, u16, u8),
    /// One wheel click at (x, y) with a button mask held.
    Wheel(u16, u16, u8, Wheel),
    /// Resize the remote desktop to width × height.
    Resize(u16, u16),
}

/// The running network side.
pub struct Net {
    input: mpsc::UnboundedSender<Input>,
    source: FrameSource,
    waker: Arc<OnceLock<egui::Context>>,
    ended: Arc<Mutex<Option<String>>>,
    thread: Option<JoinHandle<()>>,
    /// Disconnects when the thread is done.
    done: std::sync::mpsc::Receiver<()>,
}

impl Net {
    /// Starts the thread, performs the RFB handshake over `stream` and waits until the
    /// server has told the screen size. Returns the handshake's error if it fails.
    pub fn start(stream: UnixStream, options: ViewerOptions) -> Result<Net> {
        stream
            .set_nonblocking(true)
            .context("make the view stream non-blocking")?;
        let (input, input_rx) = mpsc::unbounded_channel();
        let waker = Arc::new(OnceLock::<egui::Context>::new());
        let ended = Arc::new(Mutex::new(None));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (done_tx, done) = std::sync::mpsc::channel::<()>();
        let thread = {
            let waker = Arc::clone(&waker);
            let ended = Arc::clone(&ended);
            std::thread::Builder::new()
                .name("zos-viewer-net".into())
                .spawn(move || {
                    let _done = done_tx;
                    let runtime = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt,
                        Err(e) => {
                            let _ = ready_tx.send(Err(anyhow!("cannot start a runtime: {e}")));
                            return;
                        }
                    };
                    runtime.block_on(serve(stream, options, input_rx, ready_tx, waker, ended));
                })
                .context("spawn the viewer's network thread")?
        };
        let source = match ready_rx.recv() {
            Ok(Ok(source)) => source,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(anyhow!("the viewer's network thread died"));
            }
        };
        Ok(Net {
            input,
            source,
            waker,
            ended,
            thread: Some(thread),
            done,
        })
    }

    /// From now on, wake `ctx` (repaint) when something changes.
    pub fn set_waker(&self, ctx: &egui::Context) {
        let _ = self.waker.set(ctx.clone());
        ctx.request_repaint();
    }

    /// The remote screen, pointer shape and counters.
    pub fn source(&self) -> &FrameSource {
        &self.source
    }

    /// Queues `input`; never blocks. Input after the end of the connection is dropped.
    pub fn send(&self, input: Input) {
        let _ = self.input.send(input);
    }

    /// Why the connection ended, once it has.
    pub fn ended(&self) -> Option<String> {
        self.ended.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Closing the input channel ends the thread's loop, which closes the connection.
        let (closed, _) = mpsc::unbounded_channel();
        self.input = closed;
        // A stalled stream could hold the thread in a write; do not hang the window's exit on
        // it (the thread then ends with the process).
        let finished = !matches!(
            self.done.recv_timeout(CLOSE_TIMEOUT),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout)
        );
        match self.thread.take() {
            Some(thread) if finished => {
                let _ = thread.join();
            }
            _ => warn!(
                "the view did not close within {} s",
                CLOSE_TIMEOUT.as_secs()
            ),
        }
    }
}

/// The thread's work: connect, then forward input and wake the window until either side
/// ends.
async fn serve(
    stream: UnixStream,
    options: ViewerOptions,
    mut input: mpsc::UnboundedReceiver<Input>,
    ready: std::sync::mpsc::Sender<Result<FrameSource>>,
    waker: Arc<OnceLock<egui::Context>>,
    ended: Arc<Mutex<Option<String>>>,
) {
    let connection = match connect(stream, options).await {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let source = connection.source();
    let _ = ready.send(Ok(source.clone()));
    let wake = || {
        if let Some(ctx) = waker.get() {
            // egui answers a zero-delay request with two frames ("to settle"); a non-zero one
            // with one. A second full-window frame is pure cost under llvmpipe.
            ctx.request_repaint_after(WAKE_DELAY);
        }
    };
    let mut frames = source.subscribe();
    let mut cursors = source.subscribe_cursor();
    let mut unshown = Coalescer::default();
    let reason = loop {
        let deadline = unshown.deadline();
        tokio::select! {
            biased;
            event = input.recv() => match event {
                Some(event) => {
                    if let Err(e) = forward(&connection, event).await {
                        break format!("sending input failed: {e}");
                    }
                }
                None => break "the window closed".to_owned(),
            },
            changed = frames.changed() => {
                if changed.is_err() {
                    break String::new();
                }
                unshown.changed(Instant::now());
            }
            _ = sleep_until(deadline), if deadline.is_some() => {
                unshown.woken();
                wake();
            }
            changed = cursors.changed() => {
                if changed.is_err() {
                    break String::new();
                }
                wake();
            }
        }
    };
    let window_closed = !reason.is_empty();
    let result = connection.close().await;
    let reason = match (window_closed, result) {
        (true, _) => reason,
        (false, Ok(())) => "the display closed the connection".to_owned(),
        (false, Err(e)) if e.is_disconnect() => {
            "the display closed the connection (the app or its session ended)".to_owned()
        }
        (false, Err(e)) => format!("the connection failed: {e}"),
    };
    info!("view ended: {reason}");
    *ended.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
    wake();
}

/// Sleeps until `deadline` (forever if there is none).
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// The RFB handshake, then a wait for the first screen size.
async fn connect(stream: UnixStream, options: ViewerOptions) -> Result<ViewerConnection> {
    let stream = tokio::net::UnixStream::from_std(stream).context("adopt the view stream")?;
    let connection = tokio::time::timeout(
        FIRST_SIZE_TIMEOUT,
        ViewerConnection::connect_with(stream, options),
    )
    .await
    .map_err(|_| {
        anyhow!(
            "the display did not complete the RFB handshake within {} s",
            FIRST_SIZE_TIMEOUT.as_secs()
        )
    })?
    .context("RFB handshake with the app's display")?;
    let deadline = Instant::now() + FIRST_SIZE_TIMEOUT;
    let mut frames = connection.subscribe();
    while connection.size().0 == 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, frames.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                let why = connection.close().await.err();
                return Err(anyhow!(
                    "the display closed the view before sending its size{}",
                    why.map(|e| format!(": {e}")).unwrap_or_default()
                ));
            }
            Err(_) => return Err(anyhow!("the display sent no screen size in time")),
        }
    }
    debug!(size = ?connection.size(), "view connected");
    Ok(connection)
}

async fn forward(connection: &ViewerConnection, input: Input) -> zos_display::Result<()> {
    match input {
        Input::Key(keysym, down) => connection.key(keysym, down).await,
        Input::Pointer(x, y, buttons) => connection.pointer(x, y, buttons).await,
        Input::Wheel(x, y, buttons, wheel) => connection.wheel(x, y, buttons, wheel).await,
        Input::Resize(w, h) => {
            let r = connection.request_resize(w, h).await;
            if r.is_err() {
                warn!(w, h, "resize request not sent: the connection is closed");
            }
            r
        }
    }
}
