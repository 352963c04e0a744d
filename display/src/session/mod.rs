//! [`ZosSession`]: the nested X server (Xephyr) a dominated zombie opens on
//! its own screen for the master's user — where the master's keyboard and
//! mouse go, and where the windows of its shared apps and migrants open.
//!
//! Xephyr runs full-screen (or as a window of a given size) on the zombie's
//! display, picks a free display number of its own, serves X only on local
//! sockets (`-nolisten tcp`) and only to holders of a fresh cookie (a 0600
//! file in the runtime directory given). A [`Panel`] at its top shows whose
//! session it is and whether input is redirected. Dropping the session
//! stops both and removes every file they made: the cookie, the lock file
//! and socket if a killed server left them, and `/tmp/.X11-unix` if it did
//! not exist before.

mod panel;

pub use panel::Panel;

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use tracing::{info, warn};

use crate::error::{DisplayError, Result};
use crate::xvnc::{read_display_number, remove_x_files, stop_child};
use crate::{sys, xauth};

/// Where X servers keep their sockets.
const SOCKET_DIR: &str = "/tmp/.X11-unix";

/// How to open a ZOS session.
#[derive(Clone, Debug)]
pub struct SessionOptions {
    /// A private directory (0700) for the cookie file.
    pub runtime_dir: PathBuf,
    /// The zombie's own display, which Xephyr shows its screen on.
    pub host_display: String,
    /// The authority file for the zombie's display, if it needs one.
    pub host_xauthority: Option<PathBuf>,
    /// `None`: full screen; else a window of this size.
    pub windowed: Option<(u16, u16)>,
    /// Xephyr's window title, e.g. "ZOS session of alice's laptop".
    pub title: String,
    /// The panel's first text.
    pub panel_text: String,
}

/// A running ZOS session; dropped, it stops and leaves nothing behind.
#[derive(Debug)]
pub struct ZosSession {
    child: Child,
    number: u32,
    xauthority: PathBuf,
    made_socket_dir: bool,
    panel: Option<Panel>,
}

impl ZosSession {
    /// Starts Xephyr and the panel and waits until both are up. Call it from
    /// a long-lived thread: Xephyr gets SIGKILL when the spawning thread
    /// exits, so a crash of ours never leaves it behind.
    pub fn start(options: &SessionOptions) -> Result<ZosSession> {
        if !options.runtime_dir.is_dir() {
            return Err(DisplayError::RuntimeDir(options.runtime_dir.clone()));
        }
        let xauthority = options.runtime_dir.join("zos-session.xauth");
        xauth::write_cookie_file(&xauthority)?;
        let made_socket_dir = !Path::new(SOCKET_DIR).exists();
        let (read_end, write_end) = sys::pipe()?;
        let wfd = write_end.as_raw_fd();
        let mut cmd = Command::new("Xephyr");
        cmd.arg("-displayfd")
            .arg(wfd.to_string())
            .arg("-auth")
            .arg(&xauthority)
            .args(["-nolisten", "tcp", "-no-host-grab", "-noreset", "-br"])
            .arg("-title")
            .arg(&options.title);
        match options.windowed {
            None => cmd.arg("-fullscreen"),
            Some((w, h)) => cmd.args(["-screen", &format!("{w}x{h}")]),
        };
        cmd.env("DISPLAY", &options.host_display)
            .env_remove("WAYLAND_DISPLAY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        match &options.host_xauthority {
            Some(path) => cmd.env("XAUTHORITY", path),
            None => cmd.env_remove("XAUTHORITY"),
        };
        sys::set_child_setup(&mut cmd, Some((wfd, wfd)));
        let mut child = cmd.spawn().map_err(|source| {
            let _ = std::fs::remove_file(&xauthority);
            DisplayError::Spawn {
                program: "Xephyr".into(),
                source,
            }
        })?;
        drop(write_end);
        let number = match read_display_number(File::from(read_end)) {
            Ok(n) => n,
            Err(e) => {
                let log = stop_child(&mut child);
                let _ = std::fs::remove_file(&xauthority);
                if made_socket_dir {
                    let _ = std::fs::remove_dir(SOCKET_DIR);
                }
                return Err(DisplayError::XvncStartup(format!(
                    "Xephyr on {}: {e}; it said: {log}",
                    options.host_display
                )));
            }
        };
        drain_stderr(&mut child, number);
        let mut session = ZosSession {
            child,
            number,
            xauthority,
            made_socket_dir,
            panel: None,
        };
        session.panel = Some(Panel::start(
            &session.display(),
            &session.xauthority,
            &options.panel_text,
        )?);
        info!(
            display = number,
            pid = session.pid(),
            on = %options.host_display,
            "ZOS session opened"
        );
        Ok(session)
    }

    /// Its display name, e.g. `":3"`.
    pub fn display(&self) -> String {
        format!(":{}", self.number)
    }

    /// The authority file (0600) holding its cookie.
    pub fn xauthority(&self) -> &Path {
        &self.xauthority
    }

    /// `DISPLAY` and `XAUTHORITY` for a program that should open its
    /// windows inside the session.
    pub fn env(&self) -> [(&'static str, OsString); 2] {
        [
            ("DISPLAY", self.display().into()),
            ("XAUTHORITY", self.xauthority.clone().into_os_string()),
        ]
    }

    /// Xephyr's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The panel at the top of the session.
    pub fn panel(&self) -> Option<&Panel> {
        self.panel.as_ref()
    }
}

impl Drop for ZosSession {
    fn drop(&mut self) {
        drop(self.panel.take());
        let pid = self.child.id();
        let log = stop_child(&mut self.child);
        if !log.is_empty() {
            tracing::debug!(display = self.number, "Xephyr: {log}");
        }
        remove_x_files(self.number, pid);
        if let Err(e) = std::fs::remove_file(&self.xauthority) {
            warn!("removing {}: {e}", self.xauthority.display());
        }
        // Only if we made it and no other server put a socket there since.
        if self.made_socket_dir {
            let _ = std::fs::remove_dir(SOCKET_DIR);
        }
        info!(display = self.number, "ZOS session closed");
    }
}

/// Logs Xephyr's stderr in the background so it never blocks on a full pipe.
fn drain_stderr(child: &mut Child, number: u32) {
    if let Some(mut err) = child.stderr.take() {
        let _ = std::thread::Builder::new()
            .name(format!("xephyr-{number}-log"))
            .spawn(move || {
                let mut buf = String::new();
                let _ = std::io::Read::read_to_string(&mut err, &mut buf);
                for line in buf.lines().filter(|l| !l.trim().is_empty()) {
                    tracing::debug!(display = number, "Xephyr: {line}");
                }
            });
    }
}
