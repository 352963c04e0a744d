//! [`Capture`]: the master's keyboard and pointer, taken from its own X
//! display while input goes to a zombie.
//!
//! A thread holds one X connection to the master's display. While idle it
//! only holds passive grabs of the two hotkeys and, with an edge set, looks
//! where the pointer is every [`EDGE_POLL`]. When told to grab it takes the
//! keyboard and the pointer (an invisible cursor), shows a [`Banner`](super::Banner) saying
//! where input goes, and turns every key, button and motion into an
//! [`InputEvent`]; the hotkeys and the crossing back over the edge are
//! reported instead of forwarded. Releasing the grab gives everything back
//! to the master's own clients at once.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tracing::{info, warn};

use super::capturer::Capturer;
use super::hotkey::{Edge, Hotkey};
use super::mailbox::{Mailbox, mailbox};
use super::wire::InputEvent;
use crate::error::{DisplayError, Result};
use crate::xconn;

/// How often the pointer's place is read while watching an edge.
pub const EDGE_POLL: Duration = Duration::from_millis(20);
/// How long another client's grab is waited out.
pub(super) const GRAB_PATIENCE: Duration = Duration::from_secs(1);
/// How long a message (not the driving notice) stays on screen.
pub(super) const MESSAGE_TIME: Duration = Duration::from_secs(3);

/// What the master's capture is told.
#[derive(Clone, Debug)]
pub struct CaptureOptions {
    /// The master's display (`:0`).
    pub display: String,
    /// Its authority file, if not the default one.
    pub xauthority: Option<PathBuf>,
    /// The hotkey to the next target.
    pub next: Hotkey,
    /// The hotkey to the previous target.
    pub previous: Hotkey,
}

/// Where the events go while grabbed, straight from the capture's thread
/// (no task in between: the shortest path to the wire); returns false if
/// they could not be taken.
pub type InputSink = Box<dyn FnMut(Vec<InputEvent>) -> bool + Send>;

/// Which way a hotkey switches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Switch {
    /// The next target (master → first zombie → …).
    Next,
    /// The previous one.
    Previous,
}

/// What the capture reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaptureEvent {
    /// The grab is held: events follow.
    Grabbed,
    /// The grab could not be had (another client holds one).
    GrabFailed(String),
    /// Input events, in order, while grabbed (when no [`InputSink`] takes
    /// them).
    Input(Vec<InputEvent>),
    /// The [`InputSink`] refused events.
    SinkRefused,
    /// A hotkey was pressed.
    Hotkey(Switch),
    /// Not grabbed, the pointer reached the watched edge.
    EdgeReached(Edge),
    /// Grabbed after an edge crossing, the pointer went back over the
    /// opposite edge.
    CrossedBack,
    /// The X connection failed; the capture has ended.
    Failed(String),
}

/// What the capture's thread is told (see [`Capture`]'s methods).
pub(super) enum Command {
    Grab {
        notice: String,
        entered: Option<Edge>,
    },
    Release {
        message: Option<String>,
    },
    Watch(Option<Edge>),
    Notice(String),
    Stop,
}

/// The capture thread's handle; dropping it releases any grab and ends it.
#[derive(Debug)]
pub struct Capture {
    mailbox: Mailbox<Command>,
    thread: Option<std::thread::JoinHandle<()>>,
    display: String,
}

impl Capture {
    /// Connects to the master's display and starts the thread; its reports
    /// go to `events`, input events too.
    pub fn start(
        options: CaptureOptions,
        events: UnboundedSender<CaptureEvent>,
    ) -> Result<Capture> {
        Self::start_with_sink(options, events, None)
    }

    /// Like [`Capture::start`], with input events handed to `sink`.
    pub fn start_with_sink(
        options: CaptureOptions,
        events: UnboundedSender<CaptureEvent>,
        sink: Option<InputSink>,
    ) -> Result<Capture> {
        let (conn, screen) = xconn::connect(&options.display, options.xauthority.as_deref())?;
        let (mailbox, inbox) = mailbox()?;
        let mut capturer = Capturer::new(conn, screen, &options, events, sink)?;
        let name = options.display.clone();
        let thread = std::thread::Builder::new()
            .name("input-capture".into())
            .spawn(move || {
                if let Err(e) = capturer.run(&inbox) {
                    warn!("input capture ended: {e}");
                    capturer.report(CaptureEvent::Failed(e.to_string()));
                }
            })
            .map_err(|source| DisplayError::Sys {
                call: "spawn the capture thread",
                source,
            })?;
        info!(on = %name, "input capture on the master's display");
        Ok(Capture {
            mailbox,
            thread: Some(thread),
            display: name,
        })
    }

    /// The display it captures.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Takes keyboard and pointer, showing `notice`; `entered` is the edge
    /// the pointer crossed to get there, if it did.
    pub fn grab(&self, notice: &str, entered: Option<Edge>) -> bool {
        self.mailbox.send(Command::Grab {
            notice: notice.to_string(),
            entered,
        })
    }

    /// Gives keyboard and pointer back, showing `message` for a moment.
    pub fn release(&self, message: Option<String>) -> bool {
        self.mailbox.send(Command::Release { message })
    }

    /// Watches `edge` (or none) while not grabbed.
    pub fn watch_edge(&self, edge: Option<Edge>) -> bool {
        self.mailbox.send(Command::Watch(edge))
    }

    /// Replaces the notice shown while grabbed.
    pub fn notice(&self, text: &str) -> bool {
        self.mailbox.send(Command::Notice(text.to_string()))
    }

    /// Whether the thread still runs.
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.mailbox.send(Command::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
