//! The network side of a viewer: a thread with a Tokio runtime that owns the
//! [`ViewerConnection`], forwards the windows' input to it, wakes them ([`Wake`]) when pixels,
//! the pointer shape or the app's window list change, hands the app's clipboard texts on, and
//! records why the connection ended.
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
use tokio::sync::mpsc;
use tracing::{debug, info, warn};
use zos_display::{FrameSource, ViewerConnection, ViewerOptions, Wheel, WindowRequest};

use crate::wake::Coalescer;

/// How long closing the view may take when the window goes.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the server may take for the handshake, and then to tell its screen size.
const FIRST_SIZE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the window asks the connection to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Press (`true`) or release an X keysym.
    Key(u32, bool),
    /// Pointer at (x, y) with a button mask.
    Pointer(u16, u16, u8),
    /// One wheel click at (x, y) with a button mask held.
    Wheel(u16, u16, u8, Wheel),
    /// Resize the remote desktop to width × height.
    Resize(u16, u16),
    /// Our clipboard's new text, for the app.
    Clipboard(String),
    /// A request about one of the app's windows.
    Window(WindowRequest),
}

/// Sends input to the connection from any thread; never blocks.
#[derive(Clone)]
pub struct InputSender(mpsc::UnboundedSender<Input>);

impl InputSender {
    /// Queues `input` (dropped once the connection has ended).
    pub fn send(&self, input: Input) {
        let _ = self.0.send(input);
    }
}

/// Why the windows are woken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// New pixels (coalesced per update: see [`crate::wake`]).
    Pixels,
    /// A new pointer shape.
    Cursor,
    /// A new window list.
    Windows,
    /// The connection ended.
    Ended,
}

/// What the windows give the network side to call (from its thread).
pub struct Hooks {
    /// Wakes the windows concerned.
    pub wake: Box<dyn Fn(Wake) + Send + Sync>,
    /// Takes the app's new clipboard text.
    pub clipboard: Box<dyn Fn(Arc<str>) + Send + Sync>,
}

/// The running network side.
pub struct Net {
    input: mpsc::UnboundedSender<Input>,
    source: FrameSource,
    hooks: Arc<OnceLock<Hooks>>,
    close: Arc<tokio::sync::Notify>,
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
        let hooks = Arc::new(OnceLock::<Hooks>::new());
        let close = Arc::new(tokio::sync::Notify::new());
        let ended = Arc::new(Mutex::new(None));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (done_tx, done) = std::sync::mpsc::channel::<()>();
        let thread = {
            let hooks = Arc::clone(&hooks);
            let close = Arc::clone(&close);
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
                    runtime.block_on(serve(
                        stream, options, input_rx, ready_tx, close, hooks, ended,
                    ));
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
            hooks,
            close,
            ended,
            thread: Some(thread),
            done,
        })
    }

    /// From now on, call `hooks` when something changes (once; later calls are ignored).
    pub fn set_hooks(&self, hooks: Hooks) {
        (hooks.wake)(Wake::Pixels);
        (hooks.wake)(Wake::Windows);
        let _ = self.hooks.set(hooks);
    }

    /// The remote screen, pointer shape and counters.
    pub fn source(&self) -> &FrameSource {
        &self.source
    }

    /// A sender of input for another thread.
    pub fn input_sender(&self) -> InputSender {
        InputSender(self.input.clone())
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
        // Ends the thread's loop once the input queued so far is sent; it closes the
        // connection.
        self.close.notify_one();
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
    close: Arc<tokio::sync::Notify>,
    hooks: Arc<OnceLock<Hooks>>,
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
    let wake = |why| {
        if let Some(hooks) = hooks.get() {
            (hooks.wake)(why);
        }
    };
    let mut frames = source.subscribe();
    let mut cursors = source.subscribe_cursor();
    let mut windows = source.subscribe_windows();
    let mut clipboard = source.subscribe_clipboard();
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
            _ = close.notified() => break "the window closed".to_owned(),
            changed = frames.changed() => {
                if changed.is_err() {
                    break String::new();
                }
                unshown.changed(Instant::now());
            }
            _ = sleep_until(deadline), if deadline.is_some() => {
                unshown.woken();
                wake(Wake::Pixels);
            }
            changed = cursors.changed() => {
                if changed.is_err() {
                    break String::new();
                }
                wake(Wake::Cursor);
            }
            Ok(()) = windows.changed() => wake(Wake::Windows),
            Ok(()) = clipboard.changed() => {
                let text = clipboard.borrow_and_update().text.clone();
                if let Some(hooks) = hooks.get() {
                    (hooks.clipboard)(text);
                }
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
    wake(Wake::Ended);
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
        Input::Clipboard(text) => {
            // A text too large is refused with a reason; the view goes on.
            if let Err(e) = connection.send_clipboard(text) {
                warn!("clipboard not sent: {e}");
            }
            Ok(())
        }
        Input::Window(request) => {
            if let Err(e) = connection.request_window(request) {
                debug!("window request not sent: {e}");
            }
            Ok(())
        }
    }
}
