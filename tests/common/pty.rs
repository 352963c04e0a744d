//! A command run on a pseudo-terminal the test holds: the test reads what it shows and types
//! into it, as a user at a terminal would. Killed with its process group on drop.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::poll;

/// A process on a pty of the test's.
pub struct PtyProc {
    child: Child,
    master: File,
    screen: Arc<Mutex<Vec<u8>>>,
}

impl PtyProc {
    /// Starts `cmd` as a session leader with a new pty (of `cols` × `rows`) as its
    /// controlling terminal and stdin, stdout and stderr.
    pub fn start(mut cmd: Command, cols: u16, rows: u16) -> PtyProc {
        let (master, slave) = open_pty(cols, rows);
        cmd.stdin(Stdio::from(slave.try_clone().expect("dup pty slave")))
            .stdout(Stdio::from(slave.try_clone().expect("dup pty slave")))
            .stderr(Stdio::from(slave));
        // SAFETY: between fork and exec the child only makes async-signal-safe calls
        // (setsid, ioctl, prctl, getppid) on values prepared before the fork.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                if libc::getppid() == 1 {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let screen = Arc::new(Mutex::new(Vec::new()));
        let mut reader = master.try_clone().expect("dup pty master");
        let shown = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                shown.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        PtyProc {
            child,
            master,
            screen,
        }
    }

    /// Everything the terminal showed so far, as text.
    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().unwrap()).into_owned()
    }

    /// Waits until the terminal shows `text`; panics with the screen otherwise.
    pub fn wait_for(&self, text: &str, timeout: Duration) {
        if poll::until(timeout, || self.screen().contains(text).then_some(())).is_none() {
            panic!(
                "the terminal never showed {text:?} within {timeout:?}; it shows:\n{}",
                self.screen()
            );
        }
    }

    /// Types `bytes`.
    pub fn type_bytes(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).expect("type into the pty");
    }

    /// Waits up to `timeout` for the process to exit; its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        poll::until(timeout, || self.child.try_wait().ok().flatten())
    }
}

impl Drop for PtyProc {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            // SAFETY: kill(2) of the process group this process leads.
            unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
            let _ = self.child.wait();
        }
    }
}

/// A new pty pair with the given window size.
fn open_pty(cols: u16, rows: u16) -> (File, File) {
    let mut master = -1;
    let mut slave = -1;
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two descriptors to valid out pointers; the name pointer may be
    // null; termios null means defaults; the winsize is read during the call only.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: fcntl on the descriptor openpty just gave us: the command must not inherit it.
    unsafe { libc::fcntl(master, libc::F_SETFD, libc::FD_CLOEXEC) };
    // SAFETY: openpty just gave us these two descriptors; nobody else owns them.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    (File::from(master), File::from(slave))
}
