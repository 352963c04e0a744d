//! Windows of ours that the zombie daemon opens for its user: viewers
//! (`zos view TASK`), the consent prompt (`zos consent-prompt`) and the
//! status window (`zos zombie-window`). Each is a `zos` process of its own
//! that talks to the daemon over its control socket, dies with the daemon
//! (SIGTERM: it closes its window), and is ended — SIGTERM, then SIGKILL
//! after [`STOP_TIMEOUT`] — and reaped when it is no longer wanted.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How long a helper may take to exit after SIGTERM.
pub(crate) const STOP_TIMEOUT: Duration = Duration::from_secs(3);

/// A helper process.
pub(crate) struct Helper {
    child: Option<Child>,
    what: String,
}

impl Helper {
    /// Starts `zos --home HOME ARGS…` (this very binary), naming it `what`
    /// in the log.
    pub(crate) fn spawn(home: &Path, args: &[&str], what: String) -> std::io::Result<Helper> {
        Helper::spawn_in(home, args, what, None)
    }

    /// [`Helper::spawn`], on the ZOS session's display when `session` is
    /// given (the zombie's own display otherwise).
    pub(crate) fn spawn_in(
        home: &Path,
        args: &[&str],
        what: String,
        session: Option<&super::SessionEnv>,
    ) -> std::io::Result<Helper> {
        let exe = std::env::current_exe()?;
        let mut command = Command::new(exe);
        command
            .arg("--home")
            .arg(home)
            .args(args)
            // Mesa would keep a shader cache in the user's home: the
            // master's windows must leave nothing behind.
            .env("MESA_SHADER_CACHE_DISABLE", "true")
            .stdin(Stdio::null());
        if let Some(env) = session {
            env.apply(&mut command);
        }
        // A helper never outlives the daemon that opened it.
        zos_display::die_with_parent(&mut command, libc::SIGTERM);
        let child = command.spawn()?;
        tracing::info!("{what} opened (pid {})", child.id());
        Ok(Helper {
            child: Some(child),
            what,
        })
    }

    /// Whether it still runs (an exited one is reaped).
    pub(crate) fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Ends it (SIGTERM, then SIGKILL) and reaps it; blocks up to
    /// [`STOP_TIMEOUT`].
    pub(crate) fn close(mut self) {
        if let Some(child) = self.child.take() {
            stop(child, &self.what);
        }
    }
}

fn stop(mut child: Child, what: &str) {
    if let Ok(None) = child.try_wait() {
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Ok(None) = child.try_wait() {
            let _ = child.kill();
        }
    }
    let _ = child.wait();
    tracing::info!("{what} closed");
}

impl Drop for Helper {
    /// Ends it without blocking the caller: a thread waits for it.
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            let what = std::mem::take(&mut self.what);
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let _ = std::thread::Builder::new()
                .name("helper-reaper".into())
                .spawn(move || stop(child, &what));
        }
    }
}
