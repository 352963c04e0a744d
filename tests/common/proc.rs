//! A spawned process in its own process group, killed with its group on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::poll::{Deadline, POLL};

/// A running process whose stdout and stderr go to a log file.
#[derive(Debug)]
pub struct Proc {
    label: String,
    child: Child,
    log: PathBuf,
    /// Bytes of the log written before the process started (a header).
    log_start: usize,
    status: Option<ExitStatus>,
}

impl Proc {
    /// Starts `cmd` in a new process group with stdout and stderr appended to `log`.
    pub fn start(label: &str, mut cmd: Command, log: &Path) -> Proc {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("open log {}: {e}", log.display()));
        let err = file.try_clone().expect("dup log fd");
        let log_start = file.metadata().map(|m| m.len() as usize).unwrap_or(0);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err));
        die_with_parent(&mut cmd);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {label} ({cmd:?}): {e}"));
        Proc {
            label: label.to_string(),
            child,
            log: log.to_path_buf(),
            log_start,
            status: None,
        }
    }

    /// The process id (also its process group id).
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Its log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Everything it has written so far (without the harness's header).
    pub fn log(&self) -> String {
        let bytes = std::fs::read(&self.log).unwrap_or_default();
        let own = bytes.get(self.log_start..).unwrap_or_default();
        super::strip_ansi(&String::from_utf8_lossy(own))
    }

    /// Sends `sig` to the process itself (not its group).
    pub fn signal(&self, sig: i32) {
        if self.status.is_none() {
            // SAFETY: kill(2) with a pid we own; no memory is involved.
            unsafe { libc::kill(self.pid(), sig) };
        }
    }

    /// SIGTERM: asks it to stop gracefully.
    pub fn term(&self) {
        self.signal(libc::SIGTERM);
    }

    /// SIGKILL: the process dies without cleaning up.
    pub fn kill9(&self) {
        self.signal(libc::SIGKILL);
    }

    /// Its exit status if it has exited.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("waitpid");
        }
        self.status
    }

    /// Waits for it to exit, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_status() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(POLL);
        }
    }

    /// Whether the process has exited (without reaping it).
    pub fn exited(&self) -> bool {
        if self.status.is_some() {
            return true;
        }
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        // The state follows the parenthesised command name.
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_none_or(|s| s == "Z" || s == "X")
    }

    /// Waits until its log has a line containing `pattern` and returns that
    /// line; `None` if the deadline passes or the process exits first.
    pub fn try_wait_log(&self, pattern: &str, timeout: Duration) -> Option<String> {
        let deadline = Deadline::after(timeout);
        loop {
            let exited = self.exited();
            if let Some(line) = self.log().lines().find(|l| l.contains(pattern)) {
                return Some(line.to_string());
            }
            if exited || deadline.passed() {
                return None;
            }
            std::thread::sleep(POLL);
        }
    }

    /// Like [`Proc::try_wait_log`], but panics (showing the log) on timeout.
    pub fn wait_log(&self, pattern: &str, timeout: Duration) -> String {
        self.try_wait_log(pattern, timeout).unwrap_or_else(|| {
            panic!(
                "{}: no log line containing {pattern:?} within {timeout:?}{}\n--- log {} ---\n{}",
                self.label,
                if self.exited() {
                    " (the process exited)"
                } else {
                    ""
                },
                self.log.display(),
                self.log()
            )
        })
    }

    /// Number of log lines containing `pattern` so far.
    pub fn count_log(&self, pattern: &str) -> usize {
        self.log().lines().filter(|l| l.contains(pattern)).count()
    }
}

/// Puts the child in its own process group and has the kernel kill it if
/// the thread that started it dies (a test run killed with SIGKILL leaves
/// no daemons running; the next run removes its namespaces), also when the
/// test run dies while the child is being started.
///
/// SIGINT and SIGQUIT get their default action back, as in a terminal: a test
/// run started in the background of a shell without job control (a CI script,
/// `cmd &`) ignores them, and children inherit that, so a Ctrl-C sent by a
/// test would go unnoticed.
pub fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    // SAFETY: runs in the forked child before exec and only calls signal(2),
    // which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGQUIT, libc::SIG_DFL);
            Ok(())
        });
    }
    zos_display::die_with_parent(cmd, libc::SIGKILL);
}

impl Drop for Proc {
    fn drop(&mut self) {
        let pgid = self.pid();
        // SAFETY: kill(2) on the process group this guard created; the
        // group id is our child's pid, so nothing else is hit.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}
