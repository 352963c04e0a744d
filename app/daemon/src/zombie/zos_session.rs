//! The ZOS session a dominated zombie opens on its screen for the master's
//! user (DESIGN.md §7): Xephyr with a panel, started at `complete`
//! domination (at `partial` only if `session_at_partial`) when the zombie
//! daemon has a display, and closed with the domination.
//!
//! The session is kept by a thread of its own (Xephyr dies with the thread
//! that started it); the `input` channel to the master is served by
//! [`super::session_input`]. Programs that should open their windows inside
//! the session — the viewers of the master's shared apps, migrants with a
//! display — get its `DISPLAY` and `XAUTHORITY` from [`Zombie::session_env`].

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use zos_display::input::{ClipboardAgent, ClipboardChange, Injector};
use zos_display::{SessionOptions, ZosSession};
use zos_netproto::Level;
use zos_netproto::control::ZosSessionInfo;
use zos_netproto::mux::Mux;
use zos_netproto::wire;

use super::Zombie;
use super::session_input::{InputState, LinkParts};

/// How long Xephyr and the session's clients may take to come up.
const OPEN_TIMEOUT: Duration = Duration::from_secs(15);

/// How a zombie opens ZOS sessions (from its display, `zombie.toml` and
/// the command line).
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// The zombie's own display (`DISPLAY`); none: no ZOS session.
    pub screen: Option<String>,
    /// Its authority file (`XAUTHORITY`), if it needs one.
    pub xauthority: Option<PathBuf>,
    /// `None`: full screen; else a window of this size (`--windowed`).
    pub windowed: Option<(u16, u16)>,
    /// Open the session at `partial` domination too.
    pub at_partial: bool,
    /// Whether the master's input may drive the session (the user can
    /// change it at any time: tray, `zos input`).
    pub allow_input: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            screen: None,
            xauthority: None,
            windowed: None,
            at_partial: false,
            allow_input: true,
        }
    }
}

/// Where a program opens its windows inside the ZOS session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionEnv {
    /// `DISPLAY`.
    pub display: String,
    /// `XAUTHORITY` (the session's 0600 cookie file).
    pub xauthority: PathBuf,
}

impl SessionEnv {
    /// The two variables, to set on a command.
    pub fn vars(&self) -> [(&'static str, OsString); 2] {
        [
            ("DISPLAY", self.display.clone().into()),
            ("XAUTHORITY", self.xauthority.clone().into_os_string()),
        ]
    }

    /// Sets them on `command` (and removes `WAYLAND_DISPLAY`, so toolkits
    /// pick X11).
    pub fn apply(&self, command: &mut std::process::Command) {
        command.envs(self.vars()).env_remove("WAYLAND_DISPLAY");
    }
}

/// An open ZOS session, held by the dominion.
pub(crate) struct OpenSession {
    pub env: SessionEnv,
    pub state: Arc<Mutex<InputState>>,
    link: CancellationToken,
    keeper: Option<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>)>,
}

impl OpenSession {
    /// Ends the input link and closes the session (blocks until Xephyr is
    /// gone).
    pub fn close(mut self) {
        self.link.cancel();
        if let Some((stop, thread)) = self.keeper.take() {
            let _ = stop.send(());
            let _ = thread.join();
        }
    }
}

impl Drop for OpenSession {
    fn drop(&mut self) {
        self.link.cancel();
        if let Some((stop, _)) = self.keeper.take() {
            // The thread closes the session by itself.
            let _ = stop.send(());
        }
    }
}

/// What the keeper thread hands back once the session is up.
struct Opened {
    env: SessionEnv,
    injector: Injector,
    clipboard: ClipboardAgent,
    panel: std::sync::mpsc::Sender<String>,
}

impl Zombie {
    /// `DISPLAY` and `XAUTHORITY` of the ZOS session while one is open: for
    /// whoever starts a program that should show inside it (viewers of the
    /// master's apps, migrants with a display).
    pub fn session_env(&self) -> Option<SessionEnv> {
        self.dominion
            .lock()
            .as_ref()
            .and_then(|d| d.zos.as_ref())
            .map(|s| s.env.clone())
    }

    /// What `zos status` says of the ZOS session.
    pub(super) fn zos_session_info(&self) -> Option<Box<ZosSessionInfo>> {
        let dominion = self.dominion.lock();
        let d = dominion.as_ref()?;
        let s = d.zos.as_ref()?;
        Some(Box::new(ZosSessionInfo {
            display: s.env.display.clone(),
            xauthority: s.env.xauthority.display().to_string(),
            master: d.master_name.clone(),
            input: s.state.lock().to_string(),
        }))
    }

    /// Allows or refuses the master's input from now on.
    pub(super) fn allow_input(&self, allow: bool) {
        tracing::info!(
            "the user {} input redirection",
            if allow { "allows" } else { "refuses" }
        );
        self.input_allowed.send_replace(allow);
    }

    /// Opens the ZOS session for the master dominating through session
    /// `id` (at `level`), if this zombie has a display, and its `input`
    /// channel; the domination goes on without it if that fails.
    pub(super) async fn open_zos_session(&self, id: u64, level: Level, mux: Option<&Mux>) {
        let cfg = &self.cfg.session;
        let Some(screen) = cfg.screen.clone() else {
            return;
        };
        if level == Level::Partial && !cfg.at_partial {
            return;
        }
        let Some(master) = self.dominion_master_name(id) else {
            return;
        };
        let options = SessionOptions {
            runtime_dir: self.cfg.paths.runtime.clone(),
            host_display: screen,
            host_xauthority: cfg.xauthority.clone(),
            windowed: cfg.windowed,
            title: format!("ZOS session of {master}"),
            panel_text: super::session_input::panel_text(&master, InputState::Off),
        };
        let (changes_tx, changes_rx) = tokio::sync::mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("zos-session".into())
            .spawn(move || keep_session(options, changes_tx, ready_tx, stop_rx));
        let thread = match thread {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!("cannot start the ZOS session's thread: {e}");
                return;
            }
        };
        let opened = match tokio::time::timeout(OPEN_TIMEOUT, ready_rx).await {
            Ok(Ok(Ok(opened))) => opened,
            Ok(Ok(Err(e))) => {
                tracing::warn!("cannot open the ZOS session: {e}; going on without it");
                return;
            }
            _ => {
                tracing::warn!("the ZOS session did not open within {OPEN_TIMEOUT:?}");
                let _ = stop_tx.send(());
                return;
            }
        };
        let state = Arc::new(Mutex::new(InputState::Off));
        let link = CancellationToken::new();
        let env = opened.env.clone();
        let session = OpenSession {
            env: env.clone(),
            state: state.clone(),
            link: link.clone(),
            keeper: Some((stop_tx, thread)),
        };
        {
            let mut dominion = self.dominion.lock();
            let Some(d) = dominion.as_mut().filter(|d| d.session_id == id) else {
                drop(dominion);
                // Released meanwhile.
                tokio::task::spawn_blocking(move || session.close());
                return;
            };
            d.viewers.show_in(Some(env.clone()));
            let tasks = d.tasks.clone();
            d.viewers.follow_tasks(&tasks);
            d.zos = Some(session);
        }
        tracing::info!(
            "ZOS session of {master} open on display {} (XAUTHORITY={})",
            env.display,
            env.xauthority.display()
        );
        let channel = match mux.map(|m| m.open(wire::INPUT_LABEL)) {
            Some(Ok(channel)) => channel,
            Some(Err(e)) => {
                tracing::warn!("cannot open the input channel: {e}");
                return;
            }
            None => return,
        };
        let parts = LinkParts {
            master,
            injector: opened.injector,
            clipboard: opened.clipboard,
            clipboard_changes: changes_rx,
            panel: opened.panel,
            allowed: self.input_allowed.subscribe(),
            state,
            stop: link,
        };
        tokio::spawn(super::session_input::serve(channel, parts));
    }
}

/// The session's thread: opens it, hands back what the input link needs,
/// shows panel texts, and closes the session when told or when every
/// sender is gone.
fn keep_session(
    options: SessionOptions,
    changes: tokio::sync::mpsc::UnboundedSender<ClipboardChange>,
    ready: tokio::sync::oneshot::Sender<Result<Opened, String>>,
    stop: std::sync::mpsc::Receiver<()>,
) {
    let session = match ZosSession::start(&options) {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            return;
        }
    };
    let env = SessionEnv {
        display: session.display(),
        xauthority: session.xauthority().to_path_buf(),
    };
    let parts = Injector::connect(&env.display, Some(&env.xauthority)).and_then(|injector| {
        let clipboard = ClipboardAgent::start(&env.display, Some(&env.xauthority), changes)?;
        Ok((injector, clipboard))
    });
    let (injector, clipboard) = match parts {
        Ok(p) => p,
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            return;
        }
    };
    let (panel_tx, panel_rx) = std::sync::mpsc::channel::<String>();
    let opened = Opened {
        env,
        injector,
        clipboard,
        panel: panel_tx,
    };
    if ready.send(Ok(opened)).is_err() {
        return;
    }
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
        stop.recv_timeout(Duration::from_millis(50))
    {
        let mut text = None;
        while let Ok(t) = panel_rx.try_recv() {
            text = Some(t);
        }
        if let (Some(text), Some(panel)) = (text, session.panel()) {
            panel.set_text(&text);
        }
    }
    drop(session);
}
