//! `zos attach TASK`: a migrant's terminal in this one.
//!
//! The daemon turns the control connection into the task's terminal (wherever it runs): its
//! recent output first, then everything new; what is typed here goes in. This terminal is put
//! in raw mode (so keys reach the task as typed), its size goes to the task's at the start —
//! which also makes a full-screen program redraw — and at every SIGWINCH. Ctrl-] detaches; the
//! task runs on. When the task ends, its last output is shown and `zos attach` exits.

use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::termios::{self, SetArg, Termios};
use zos_daemon::Paths;
use zos_netproto::control::{self, Request};

/// The detach key: Ctrl-] (as telnet and docker do).
pub const DETACH: u8 = 0x1d;

/// `zos attach TASK`.
pub fn attach(paths: &Paths, task: u64) -> Result<ExitCode> {
    // SIGWINCH goes to the watcher thread only: block it here before any thread starts.
    let mut winch = SigSet::empty();
    winch.add(Signal::SIGWINCH);
    winch.thread_block().context("block SIGWINCH")?;
    let socket = paths.socket();
    let stream = crate::tasks::open_stream(paths, &Request::Attach { task })?;
    let stdin = std::io::stdin();
    let raw = Arc::new(Mutex::new(RawMode::enter(stdin.as_fd())?));
    if raw.lock().map(|r| r.is_some()).unwrap_or(false) {
        eprint!("[attached to task {task}; Ctrl-] detaches]\r\n");
    }
    // The task's window follows ours, and redraws now.
    send_size(&socket, task);
    {
        let socket = socket.clone();
        std::thread::Builder::new()
            .name("winch".into())
            .spawn(move || {
                while winch.wait().is_ok() {
                    send_size(&socket, task);
                }
            })
            .context("start the window-size thread")?;
    }
    {
        let output = stream.try_clone().context("control socket")?;
        let raw = raw.clone();
        let socket = socket.clone();
        std::thread::Builder::new()
            .name("output".into())
            .spawn(move || show_output(output, raw, socket, task))
            .context("start the output thread")?;
    }
    type_input(stream, stdin.lock())?;
    if let Ok(mut r) = raw.lock() {
        r.take();
    }
    eprintln!("[detached from task {task}; it runs on]");
    Ok(ExitCode::SUCCESS)
}

/// Copies the task's output to stdout; at its end, restores the terminal and exits.
fn show_output(mut from: UnixStream, raw: Arc<Mutex<Option<RawMode>>>, socket: PathBuf, task: u64) {
    let mut out = std::io::stdout();
    let mut buf = vec![0u8; 16 << 10];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if out.write_all(&buf[..n]).and_then(|()| out.flush()).is_err() {
                    break;
                }
            }
        }
    }
    if let Ok(mut r) = raw.lock() {
        r.take();
    }
    eprintln!("\r\n[task {task} {}]", how_it_ended(&socket, task));
    std::process::exit(0);
}

/// "ended: exit 0", or the state it is in (the connection may have ended for another reason).
fn how_it_ended(socket: &std::path::Path, task: u64) -> String {
    match control::request(socket, &Request::Tasks) {
        Ok(control::Reply::Tasks { tasks }) => match tasks.into_iter().find(|t| t.id == task) {
            Some(t) => match t.exit {
                Some(code) => format!("ended: exit {code}"),
                None => format!("is {}; the terminal connection closed", t.state),
            },
            None => "is gone".into(),
        },
        _ => "can no longer be asked about: the daemon does not answer".into(),
    }
}

/// Sends what is typed until the detach key or the end of input.
fn type_input(mut to: UnixStream, mut stdin: impl Read) -> Result<()> {
    let mut buf = [0u8; 4096];
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("read the terminal"),
        };
        let (typed, detach) = match buf[..n].iter().position(|&b| b == DETACH) {
            Some(i) => (&buf[..i], true),
            None => (&buf[..n], false),
        };
        if to.write_all(typed).is_err() {
            // The task ended: the output thread says so and exits.
            std::thread::park();
        }
        if detach {
            let _ = to.shutdown(std::net::Shutdown::Both);
            return Ok(());
        }
    }
}

/// Tells the daemon this terminal's size (nothing when stdout is not a terminal).
fn send_size(socket: &std::path::Path, task: u64) {
    let Some((cols, rows)) = window_size(std::io::stdout().as_fd()) else {
        return;
    };
    if let Err(e) = control::request(socket, &Request::Resize { task, cols, rows }) {
        tracing::debug!("resize: {e}");
    }
}

fn window_size(fd: BorrowedFd<'_>) -> Option<(u16, u16)> {
    zos_daemon::migrants::window_size(fd)
        .ok()
        .filter(|&(cols, rows)| cols > 0 && rows > 0)
}

/// A terminal in raw mode until dropped (nothing when stdin is not a terminal).
struct RawMode {
    saved: Termios,
}

impl RawMode {
    fn enter(fd: BorrowedFd<'_>) -> Result<Option<RawMode>> {
        let Ok(saved) = termios::tcgetattr(fd) else {
            return Ok(None);
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSANOW, &raw).context("raw mode")?;
        Ok(Some(RawMode { saved }))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &self.saved);
    }
}
