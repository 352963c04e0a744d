//! [`VirtualDisplay`]: one private Xvnc per app, reachable over RFB only through a unix socket.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use crate::error::{DisplayError, Result};
use crate::{sys, xauth};

/// How long Xvnc may take to report its display number.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long Xvnc may take to exit after SIGTERM before it gets SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);
/// `sun_path` holds 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

static NEXT_ID: AtomicU32 = AtomicU32::new(0);

/// A running `Xvnc` holding one app's X display.
///
/// RFB is served only on a unix socket (mode 0600) inside the runtime directory given to
/// [`VirtualDisplay::start`]; no TCP port is opened, neither for RFB nor for X11. X clients
/// need the cookie of [`xauthority`](Self::xauthority), so other local users cannot open the
/// X display either. The socket
/// uses security type None: whoever can open it is trusted, and the ZOS session layer does the
/// authentication. Dropping the value stops Xvnc (SIGTERM, then SIGKILL) and reaps it; Xvnc is
/// also killed if the thread that started it dies.
#[derive(Debug)]
pub struct VirtualDisplay {
    child: Child,
    number: u32,
    rfb_socket: PathBuf,
    xauthority: PathBuf,
    geometry: (u16, u16),
}

impl VirtualDisplay {
    /// Starts Xvnc with a screen of `geometry` (width, height) at depth 24, letting it choose a
    /// free display number, and waits until it is ready (display number reported, RFB socket
    /// listening).
    ///
    /// Call it from a long-lived thread: Xvnc gets SIGKILL when the spawning thread exits
    /// (`PR_SET_PDEATHSIG`), so that a crash of ours never leaves it behind.
    pub fn start(runtime_dir: &Path, geometry: (u16, u16)) -> Result<VirtualDisplay> {
        if !runtime_dir.is_dir() {
            return Err(DisplayError::RuntimeDir(runtime_dir.to_owned()));
        }
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let rfb_socket = runtime_dir.join(format!("xvnc-{}-{id}.sock", std::process::id()));
        if rfb_socket.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(DisplayError::SocketPathTooLong(rfb_socket));
        }
        // A stale socket of an earlier process with the same pid would make Xvnc fail.
        let _ = std::fs::remove_file(&rfb_socket);
        let xauthority = runtime_dir.join(format!("xvnc-{}-{id}.xauth", std::process::id()));
        xauth::write_cookie_file(&xauthority)?;

        let (read_end, write_end) = sys::pipe()?;
        let wfd = write_end.as_raw_fd();
        let mut cmd = Command::new("Xvnc");
        cmd.arg("-displayfd")
            .arg(wfd.to_string())
            .arg("-rfbunixpath")
            .arg(&rfb_socket)
            .args(["-rfbunixmode", "0600", "-rfbport", "-1"])
            .args(["-SecurityTypes", "None", "-nolisten", "tcp"])
            .arg("-auth")
            .arg(&xauthority)
            .args(["-geometry", &format!("{}x{}", geometry.0, geometry.1)])
            .args(["-depth", "24", "-AlwaysShared", "-desktop", "zos"])
            // Clipboards both ways, CLIPBOARD and PRIMARY, up to our cap.
            .args(["-AcceptCutText", "1", "-SendCutText", "1"])
            .args(["-SendPrimary", "1", "-SetPrimary", "1"])
            .args(["-MaxCutText", &crate::clipboard::MAX_CLIPBOARD.to_string()])
            .args(
                std::env::var("ZOS_XVNC_LOG")
                    .map(|l| vec!["-Log".to_owned(), l])
                    .unwrap_or_default(),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        sys::set_child_setup(&mut cmd, Some((wfd, wfd)));
        let mut child = cmd.spawn().map_err(|source| DisplayError::Spawn {
            program: "Xvnc".into(),
            source,
        })?;
        drop(write_end);
        debug!(pid = child.id(), socket = %rfb_socket.display(), "Xvnc spawned");

        let number = match read_display_number(File::from(read_end)) {
            Ok(n) => n,
            Err(e) => {
                let log = stop_child(&mut child);
                let _ = std::fs::remove_file(&rfb_socket);
                let _ = std::fs::remove_file(&xauthority);
                return Err(DisplayError::XvncStartup(format!("{e}; Xvnc said: {log}")));
            }
        };
        // Xvnc reports the display number once the X sockets are up; the RFB listener is set up
        // before that, but check rather than assume.
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while !rfb_socket.exists() {
            if Instant::now() > deadline {
                let log = stop_child(&mut child);
                let _ = std::fs::remove_file(&xauthority);
                return Err(DisplayError::XvncStartup(format!(
                    "no RFB socket at {}; Xvnc said: {log}",
                    rfb_socket.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // Drain stderr in the background so Xvnc never blocks on a full pipe.
        if let Some(mut err) = child.stderr.take() {
            let _ = std::thread::Builder::new()
                .name(format!("xvnc-{number}-log"))
                .spawn(move || {
                    let mut buf = String::new();
                    let _ = err.read_to_string(&mut buf);
                    for line in buf.lines().filter(|l| !l.trim().is_empty()) {
                        debug!(display = number, "Xvnc: {line}");
                    }
                });
        }
        info!(display = number, pid = child.id(), socket = %rfb_socket.display(), "virtual display started");
        Ok(VirtualDisplay {
            child,
            number,
            rfb_socket,
            xauthority,
            geometry,
        })
    }

    /// The X display name, e.g. `":12"`, for `DISPLAY`.
    pub fn display(&self) -> String {
        format!(":{}", self.number)
    }

    /// The X display number.
    pub fn number(&self) -> u32 {
        self.number
    }

    /// The unix socket serving RFB (VNC) for this display.
    pub fn rfb_socket(&self) -> &Path {
        &self.rfb_socket
    }

    /// The X authority file (mode 0600) whose cookie X clients need to open the display; set
    /// `XAUTHORITY` to it ([`launch_app`](crate::launch_app) does).
    pub fn xauthority(&self) -> &Path {
        &self.xauthority
    }

    /// The screen size it was started with.
    pub fn geometry(&self) -> (u16, u16) {
        self.geometry
    }

    /// The process id of Xvnc.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for VirtualDisplay {
    fn drop(&mut self) {
        let pid = self.child.id();
        stop_child(&mut self.child);
        // After a SIGKILL Xvnc leaves its files; remove them if they are still ours.
        let _ = std::fs::remove_file(&self.rfb_socket);
        let _ = std::fs::remove_file(&self.xauthority);
        remove_x_files(self.number, pid);
        info!(display = self.number, "virtual display stopped");
    }
}

/// Removes the lock file and socket an X server with `pid` left for display `number` after a
/// SIGKILL (nothing if another server holds the number now).
pub(crate) fn remove_x_files(number: u32, pid: u32) {
    let lock = PathBuf::from(format!("/tmp/.X{number}-lock"));
    if let Ok(text) = std::fs::read_to_string(&lock)
        && text.trim().parse::<u32>() == Ok(pid)
    {
        // The socket first: once the lock is gone another server may take the
        // number, and its socket must not be the one removed.
        let _ = std::fs::remove_file(format!("/tmp/.X11-unix/X{number}"));
        let _ = std::fs::remove_file(&lock);
    }
}

/// Reads an X server's `-displayfd` answer: the display number and a newline.
pub(crate) fn read_display_number(mut pipe: File) -> Result<u32, String> {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    let mut text = String::new();
    let mut buf = [0u8; 16];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("timed out waiting for the display number".into());
        }
        if !sys::poll_readable(pipe.as_raw_fd(), left.as_millis() as i32)
            .map_err(|e| e.to_string())?
        {
            continue;
        }
        let n = pipe.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the X server exited before reporting a display".into());
        }
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
        if text.contains('\n') || text.len() > 8 {
            return text
                .trim()
                .parse()
                .map_err(|_| format!("bad display number {text:?}"));
        }
    }
}

/// Stops a child: SIGTERM, a grace period, then SIGKILL; reaps it and returns what it wrote to
/// stderr if that is still ours to read (empty otherwise).
pub(crate) fn stop_child(child: &mut Child) -> String {
    if let Ok(None) = child.try_wait() {
        if let Err(e) = sys::kill(child.id(), libc::SIGTERM) {
            warn!(pid = child.id(), "SIGTERM to an X server: {e}");
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Ok(None) = child.try_wait() {
            warn!(pid = child.id(), "an X server ignored SIGTERM; killing it");
            let _ = child.kill();
            let _ = child.wait();
        }
    }
    let mut log = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut log);
    }
    log.trim().to_owned()
}
