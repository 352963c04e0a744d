//! Viewer windows a dominated zombie opens on its own display: one
//! `zos view TASK` process per shared app of the master, started when the
//! app is announced and ended when the domination ends (each also ends by
//! itself when its view's stream closes).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zos_netproto::wire::TaskSummary;

/// How long a viewer may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);

/// The viewer processes of one domination.
pub(crate) struct Viewers {
    home: PathBuf,
    enabled: bool,
    /// The ZOS session the windows open in, if one is open.
    session: Option<super::SessionEnv>,
    open: BTreeMap<u64, Child>,
}

impl Viewers {
    /// Viewers for the zombie whose home is `home`; none are opened unless
    /// `enabled` (the zombie has a display).
    pub(crate) fn new(home: PathBuf, enabled: bool) -> Viewers {
        Viewers {
            home,
            enabled,
            session: None,
            open: BTreeMap::new(),
        }
    }

    /// Opens the viewers from now on inside the ZOS session `env` (or on
    /// the zombie's own display).
    pub(crate) fn show_in(&mut self, env: Option<super::SessionEnv>) {
        self.session = env;
    }

    /// Opens a viewer for each shared app not shown yet; forgets viewers
    /// that have exited. Returns how many it opened.
    pub(crate) fn follow(&mut self, tasks: &[TaskSummary]) -> u32 {
        self.open
            .retain(|_, child| matches!(child.try_wait(), Ok(None)));
        let mut opened = 0;
        if !self.enabled {
            return opened;
        }
        for task in tasks.iter().filter(|t| t.kind == "shared") {
            if self.open.contains_key(&task.id) {
                continue;
            }
            match self.spawn(task.id) {
                Ok(child) => {
                    tracing::info!(
                        "viewer for the master's task {} opened (pid {})",
                        task.id,
                        child.id()
                    );
                    self.open.insert(task.id, child);
                    opened += 1;
                }
                Err(e) => tracing::warn!("cannot open a viewer for task {}: {e}", task.id),
            }
        }
        opened
    }

    fn spawn(&self, task: u64) -> std::io::Result<Child> {
        let exe = std::env::current_exe()?;
        let mut command = Command::new(exe);
        command
            .arg("--home")
            .arg(&self.home)
            .args(["view", &task.to_string()])
            // Mesa would keep a shader cache in the user's home: the
            // master's viewers must leave nothing behind.
            .env("MESA_SHADER_CACHE_DISABLE", "true")
            .stdin(Stdio::null());
        if let Some(env) = &self.session {
            env.apply(&mut command);
        }
        // A viewer never outlives the daemon that opened it (SIGTERM: it
        // closes its window).
        zos_display::die_with_parent(&mut command, libc::SIGTERM);
        command.spawn()
    }

    /// Ends every viewer (SIGTERM, then SIGKILL) and reaps it.
    pub(crate) fn close_all(&mut self) {
        for (task, mut child) in std::mem::take(&mut self.open) {
            if let Ok(None) = child.try_wait() {
                // SAFETY: kill(2) on our own child, not yet reaped.
                unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
                let deadline = Instant::now() + STOP_TIMEOUT;
                while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
                if let Ok(None) = child.try_wait() {
                    let _ = child.kill();
                }
            }
            let _ = child.wait();
            tracing::info!("viewer for task {task} closed");
        }
    }
}

impl Drop for Viewers {
    fn drop(&mut self) {
        self.close_all();
    }
}
