//! A pty master on this host as the source of a terminal: one thread reads it all the time
//! (output to the terminal; the read blocks only on the pty), one writes what clients type and
//! applies window sizes. The reader ends at end of file or `EIO` (every slave closed: the pod
//! ended, or its frozen copy was killed after a move), after the last byte was taken.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use tokio::sync::mpsc;

use super::sys;
use super::terminal::{SourceCmd, Terminal};

/// Commands queued for the writer before a client waits.
const COMMAND_QUEUE: usize = 64;
/// The largest read from the pty.
const READ_CHUNK: usize = 16 << 10;

/// Starts reading `master` into `terminal` (after older sources drained) and writing its
/// input; `on_end` runs on the reader thread once the pty is drained.
pub fn start(
    terminal: Arc<Terminal>,
    master: OwnedFd,
    what: String,
    on_end: impl FnOnce() + Send + 'static,
) -> std::io::Result<()> {
    let reader = File::from(master);
    let writer = reader.try_clone()?;
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    let source = terminal.add_source(tx);
    let term = terminal.clone();
    let name = what.clone();
    std::thread::Builder::new()
        .name(format!("{what}-out"))
        .spawn(move || {
            term.wait_turn_blocking(source);
            read_all(&term, source, reader, &name);
            term.source_ended(source);
            on_end();
        })?;
    std::thread::Builder::new()
        .name(format!("{what}-in"))
        .spawn(move || write_commands(rx, writer, &what))?;
    Ok(())
}

fn read_all(term: &Terminal, source: u64, mut pty: File, what: &str) {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        match pty.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                term.push_output(source, &buf[..n]);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                if e.raw_os_error() != Some(libc::EIO) {
                    tracing::warn!("{what}: reading its terminal: {e}");
                }
                break;
            }
        }
    }
    tracing::debug!("{what}: terminal drained");
}

/// Applies commands until the terminal drops this source.
fn write_commands(mut rx: mpsc::Receiver<SourceCmd>, mut pty: File, what: &str) {
    while let Some(cmd) = rx.blocking_recv() {
        match cmd {
            SourceCmd::Input(bytes) => {
                if let Err(e) = pty.write_all(&bytes) {
                    tracing::debug!("{what}: typing into its terminal: {e}");
                    break;
                }
            }
            SourceCmd::Resize { cols, rows } => {
                apply_size(pty.as_fd(), cols, rows, what);
            }
        }
    }
}

/// Sets the window size; the kernel signals the foreground group only on a change, so an
/// unchanged size gets its SIGWINCH from us (a client attaching wants a redraw).
pub fn apply_size(fd: std::os::fd::BorrowedFd<'_>, cols: u16, rows: u16, what: &str) {
    if sys::window_size(fd).is_ok_and(|now| now == (cols, rows)) {
        let _ = sys::nudge_foreground(fd);
    } else if let Err(e) = sys::set_window_size(fd, cols, rows) {
        tracing::debug!("{what}: window size: {e}");
    }
}
