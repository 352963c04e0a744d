//! An Xvfb X server for one host, on a display it picks itself.

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::time::Duration;

use super::host::Host;
use super::proc::Proc;

/// A running Xvfb; killed (and its lock and socket removed) on drop.
pub struct Xvfb {
    /// The display, e.g. `:123`.
    pub display: String,
    number: u32,
    proc: Proc,
}

impl Xvfb {
    /// Starts Xvfb inside `host`'s namespace with a 1280x800x24 screen.
    pub fn start(host: &Host) -> Xvfb {
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills the two-element array it is given.
        let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
        assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
        // SAFETY: both fds were just created by pipe2 and are owned only here.
        let (read_end, write_end) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let wfd = fds[1];
        let fd_arg = wfd.to_string();
        let args = [
            "-displayfd",
            &fd_arg,
            "-screen",
            "0",
            "1280x800x24",
            "-nolisten",
            "tcp",
            "-noreset",
        ];
        let mut cmd = host.command("Xvfb", &args);
        // SAFETY: the closure runs in the forked child before exec and only
        // calls fcntl(2), which is async-signal-safe: it lets the pipe's
        // write end survive exec so Xvfb can report its display there.
        unsafe {
            cmd.pre_exec(move || {
                if libc::fcntl(wfd, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let log = host.new_log("Xvfb");
        let proc = Proc::start(&format!("{}: Xvfb", host.label), cmd, &log);
        drop(write_end);
        // Read the display number Xvfb writes once it accepts connections.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut f = std::fs::File::from(read_end);
            let mut s = Vec::new();
            let mut b = [0u8; 1];
            while let Ok(1) = f.read(&mut b) {
                if b[0] == b'\n' {
                    break;
                }
                s.push(b[0]);
            }
            let _ = tx.send(String::from_utf8_lossy(&s).into_owned());
        });
        let text = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let number: u32 = text.trim().parse().unwrap_or_else(|_| {
            panic!(
                "Xvfb did not report a display (got {text:?})\n--- log ---\n{}",
                proc.log()
            )
        });
        Xvfb {
            display: format!(":{number}"),
            number,
            proc,
        }
    }

    /// The process.
    pub fn proc(&self) -> &Proc {
        &self.proc
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        self.proc.term();
        if self.proc.wait_exit(Duration::from_secs(3)).is_none() {
            self.proc.kill9();
            let _ = self.proc.wait_exit(Duration::from_secs(3));
            let _ = std::fs::remove_file(format!("/tmp/.X{}-lock", self.number));
            let _ = std::fs::remove_file(format!("/tmp/.X11-unix/X{}", self.number));
        }
    }
}
