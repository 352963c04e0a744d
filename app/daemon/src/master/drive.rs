//! Driving: where the master's keyboard and mouse go — its own screen, or
//! the ZOS session of a zombie it dominates.
//!
//! One controller task owns it all: the [`Capture`] of the master's display
//! (hotkeys, edge watch, grab, events), the master's [`ClipboardAgent`], and
//! the `input` links the zombies opened ([`super::drive_link`]). It switches
//! on `zos drive HOST`, the hotkeys (master → zombies by name → master), or
//! the pointer crossing the chosen edge (`--edge`), and gives input back on
//! `zos drive --stop`, the hotkey, the crossing back, a refusal by the
//! zombie's user, or a link that stays silent for [`LINK_TIMEOUT`].

use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use zos_display::input::{Edge, Hotkey};
use zos_netproto::PublicKey;
use zos_netproto::mux::Channel;

use super::drive_controller::Controller;
use crate::input_link::InputMessage;
#[cfg(doc)]
use crate::input_link::LINK_TIMEOUT;
#[cfg(doc)]
use zos_display::input::{Capture, ClipboardAgent};

/// Where the master's input comes from and which keys switch it.
#[derive(Clone, Debug)]
pub struct DriveConfig {
    /// The master's display (`DISPLAY` of the daemon); `zos drive` may name
    /// one when the daemon has none.
    pub display: Option<String>,
    /// Its authority file (`XAUTHORITY`).
    pub xauthority: Option<PathBuf>,
    /// To the next target.
    pub next: Hotkey,
    /// To the previous one.
    pub previous: Hotkey,
}

impl Default for DriveConfig {
    fn default() -> Self {
        DriveConfig {
            display: None,
            xauthority: None,
            next: DEFAULT_NEXT.parse().expect("a valid hotkey"),
            previous: DEFAULT_PREVIOUS.parse().expect("a valid hotkey"),
        }
    }
}

/// The hotkey to the next target unless `master.toml` says otherwise.
pub const DEFAULT_NEXT: &str = "Ctrl+Alt+Right";
/// The hotkey to the previous target unless `master.toml` says otherwise.
pub const DEFAULT_PREVIOUS: &str = "Ctrl+Alt+Left";

/// What `zos drive` asks.
#[derive(Clone, Debug)]
pub enum DriveRequest {
    /// Drive `host` now, or arm `edge` for it.
    Start {
        /// Paired name or fingerprint.
        host: String,
        /// Switch only when the pointer leaves this edge.
        edge: Option<Edge>,
        /// The caller's display and authority file.
        display: Option<String>,
        /// See `display`.
        xauthority: Option<PathBuf>,
    },
    /// Give input back; disarm the edge.
    Stop,
}

/// The answer: the zombie driven now (if any) and what happened.
pub type DriveAnswer = Result<(Option<String>, String), String>;

/// What the controller hears.
pub(crate) enum Event {
    Request(DriveRequest, oneshot::Sender<DriveAnswer>),
    Attach {
        name: String,
        key: PublicKey,
        channel: Channel,
    },
    Link {
        id: u64,
        message: InputMessage,
    },
    LinkClosed {
        id: u64,
        why: String,
    },
}

/// The handle to the controller.
pub struct Drive {
    events: mpsc::UnboundedSender<Event>,
    driving: Arc<Mutex<Option<String>>>,
}

impl Drive {
    /// Starts the controller; it ends with `shutdown`. The capture starts
    /// at once if `cfg` names a display, else at the first `zos drive`.
    pub fn start(cfg: DriveConfig, shutdown: CancellationToken) -> Arc<Drive> {
        let (events, rx) = mpsc::unbounded_channel();
        let driving = Arc::new(Mutex::new(None));
        let (controller, capture, clipboard) =
            Controller::new(cfg, events.clone(), driving.clone());
        tokio::spawn(controller.run(rx, capture, clipboard, shutdown));
        Arc::new(Drive { events, driving })
    }

    /// Takes the `input` channel the dominated zombie `name` (`key`) opened.
    pub fn attach(&self, name: String, key: PublicKey, channel: Channel) {
        let _ = self.events.send(Event::Attach { name, key, channel });
    }

    /// Carries out a `zos drive` request.
    pub async fn request(&self, request: DriveRequest) -> DriveAnswer {
        let (tx, rx) = oneshot::channel();
        if self.events.send(Event::Request(request, tx)).is_err() {
            return Err("the master is shutting down".into());
        }
        rx.await
            .unwrap_or_else(|_| Err("the master is shutting down".into()))
    }

    /// The zombie driven now.
    pub fn driving(&self) -> Option<String> {
        self.driving.lock().clone()
    }
}
