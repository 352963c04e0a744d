//! A command queue for a thread that otherwise sleeps on its X connection:
//! commands go into a channel and a byte into a socket pair, and the thread
//! polls its X socket and that socket together.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::time::Duration;

use crate::error::{DisplayError, Result};
use crate::sys;

/// The sending side.
pub(crate) struct Mailbox<C> {
    tx: mpsc::Sender<C>,
    wake: UnixStream,
}

/// The receiving side, owned by the thread.
pub(crate) struct Inbox<C> {
    rx: mpsc::Receiver<C>,
    wake: UnixStream,
}

impl<C> std::fmt::Debug for Mailbox<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mailbox")
    }
}

/// A new queue.
pub(crate) fn mailbox<C>() -> Result<(Mailbox<C>, Inbox<C>)> {
    let (a, b) = UnixStream::pair().map_err(|source| DisplayError::Sys {
        call: "socketpair",
        source,
    })?;
    for s in [&a, &b] {
        s.set_nonblocking(true)
            .map_err(|source| DisplayError::Sys {
                call: "set non-blocking",
                source,
            })?;
    }
    let (tx, rx) = mpsc::channel();
    Ok((Mailbox { tx, wake: a }, Inbox { rx, wake: b }))
}

impl<C> Mailbox<C> {
    /// Queues `command` and wakes the thread; false if it has ended.
    pub(crate) fn send(&self, command: C) -> bool {
        if self.tx.send(command).is_err() {
            return false;
        }
        // A full socket buffer already holds a wake-up.
        let _ = (&self.wake).write(&[1]);
        true
    }
}

impl<C> Inbox<C> {
    /// The commands queued so far.
    pub(crate) fn drain(&self) -> Vec<C> {
        let mut buf = [0u8; 64];
        while matches!((&self.wake).read(&mut buf), Ok(n) if n > 0) {}
        self.rx.try_iter().collect()
    }

    /// Sleeps until the X socket `x_fd` is readable, a command comes, or
    /// `timeout` passes (`None`: no limit).
    pub(crate) fn wait(&self, x_fd: RawFd, timeout: Option<Duration>) -> Result<()> {
        let ms = timeout.map_or(-1, |t| t.as_millis().min(60_000) as i32);
        sys::poll_any([x_fd, self.wake.as_raw_fd()], ms)?;
        Ok(())
    }
}
