//! Every `unsafe` of the crate: the pipe for `-displayfd`, the child set-up between fork and
//! exec (with [`die_with_parent`], the one place ZOS asks for `PR_SET_PDEATHSIG`), `poll` and
//! `kill`.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::error::{DisplayError, Result};

fn last_error(call: &'static str) -> DisplayError {
    DisplayError::Sys {
        call,
        source: io::Error::last_os_error(),
    }
}

/// A close-on-exec pipe: `(read end, write end)`.
pub(crate) fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a valid array of two ints that pipe2 fills in.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    if rc != 0 {
        return Err(last_error("pipe2"));
    }
    // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Makes the child of `cmd` receive `signal` when the thread that spawned it dies, and never
/// outlive a parent that died before it could ask for that.
///
/// Between fork and exec the child asks for `PR_SET_PDEATHSIG`, then compares `getppid()` with
/// the parent's pid recorded before the fork: if the parent died in between (the signal was
/// then never sent) the child has been reparented and ends at once with `_exit(1)`, without
/// running the parent's signal handlers or exit hooks it inherited.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, so spawn from a
/// long-lived thread (not a blocking-pool thread that may retire). That thread waits in
/// `spawn` until the exec, so only the whole parent process can die in the window the check
/// covers. Other `pre_exec` set-ups may be added to `cmd` before or after; they run in order.
pub fn die_with_parent(cmd: &mut Command, signal: libc::c_int) {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the child between fork and exec and only calls
    // async-signal-safe functions (prctl, getppid, _exit); it allocates nothing and touches
    // no memory but its two copied integers and the error it returns.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// The child set-up of Xvnc: SIGKILL when the spawning thread dies ([`die_with_parent`]),
/// umask 077, and, if `inherit` is given, that descriptor available in the child as
/// `target_fd`.
pub(crate) fn set_child_setup(cmd: &mut Command, inherit: Option<(RawFd, RawFd)>) {
    die_with_parent(cmd, libc::SIGKILL);
    // SAFETY: the closure runs in the child between fork and exec and only calls
    // async-signal-safe functions (umask, dup2, fcntl); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            // Files the child creates are private to us, so the RFB socket is never open to
            // others, not even between Xvnc's bind and its chmod.
            libc::umask(0o077);
            if let Some((fd, target)) = inherit {
                if fd == target {
                    let flags = libc::fcntl(fd, libc::F_GETFD);
                    if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                } else if libc::dup2(fd, target) < 0 {
                    // dup2 leaves the new descriptor without FD_CLOEXEC.
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Waits until `fd` is readable (or hung up) for at most `timeout_ms`; `Ok(false)` on timeout.
pub(crate) fn poll_readable(fd: RawFd, timeout_ms: i32) -> Result<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: `pfd` is a valid pollfd and we pass a count of one.
        let rc = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if rc >= 0 {
            return Ok(rc > 0);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(DisplayError::Sys {
                call: "poll",
                source: err,
            });
        }
    }
}

/// Waits until one of `fds` is readable (or hung up) for at most `timeout_ms` (-1: no
/// limit); returns which are.
pub(crate) fn poll_any<const N: usize>(fds: [RawFd; N], timeout_ms: i32) -> Result<[bool; N]> {
    let mut pfds = fds.map(|fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    });
    loop {
        // SAFETY: `pfds` is a valid array of `N` pollfd structures and we pass its length.
        let rc = unsafe { libc::poll(pfds.as_mut_ptr(), N as libc::nfds_t, timeout_ms) };
        if rc >= 0 {
            return Ok(pfds.map(|p| p.revents != 0));
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(DisplayError::Sys {
                call: "poll",
                source: err,
            });
        }
    }
}

/// Sends `signal` to process `pid`.
pub(crate) fn kill(pid: u32, signal: libc::c_int) -> io::Result<()> {
    // SAFETY: kill takes plain integers and has no memory effects.
    if unsafe { libc::kill(pid as libc::pid_t, signal) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
