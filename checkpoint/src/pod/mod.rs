//! Pods: a process tree in its own user, PID, mount and IPC namespaces, with our small init
//! (`zos-pod-init`) as PID 1 and one pseudo-terminal whose master the caller holds.
//!
//! [`spawn`] starts a fresh pod from a [`PodSpec`]; [`Pod`] is the handle of a running pod
//! (also what [`RestoredTree::resume`](crate::RestoredTree::resume) gives back). The user
//! namespace maps one uid and one gid, `INSIDE OUTSIDE 1`, where OUTSIDE is the caller's own
//! (effective) uid/gid; `setgroups` is denied. No privilege beyond the caller's is needed, as
//! long as the kernel allows unprivileged user namespaces.

mod mounts;

pub use mounts::{BindMount, MountPlan, ZOMBIE_MASKS};

use crate::error::{Error, Result};
use std::ffi::OsString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::time::Duration;

/// File name of the pod's init binary, installed next to `zos`.
pub const INIT_NAME: &str = "zos-pod-init";

/// Everything needed to start a fresh pod.
#[derive(Debug, Clone)]
pub struct PodSpec {
    /// Path of the `zos-pod-init` binary (see [`default_init_path`]).
    pub init: PathBuf,
    /// The task's command line; `argv[0]` is looked up in `PATH` of `env`.
    pub argv: Vec<OsString>,
    /// Working directory of the task (a path in the pod's view of the file system).
    pub cwd: PathBuf,
    /// The task's environment, `KEY=VALUE` each.
    pub env: Vec<OsString>,
    /// The uid the task has inside the pod (the user's uid on the master; 0 if the master
    /// daemon runs as root).
    pub inside_uid: u32,
    /// The gid the task has inside the pod.
    pub inside_gid: u32,
    /// Masks and bind mounts made inside the pod's mount namespace before the task starts.
    pub mounts: MountPlan,
}

/// `zos-pod-init` next to the running executable.
pub fn default_init_path() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(INIT_NAME)))
        .unwrap_or_else(|| PathBuf::from(INIT_NAME))
}

/// A running pod: the host PID of its init, and its pty master until taken.
///
/// The caller is the init's parent (it waits for it with [`Pod::wait`]). Dropping the handle
/// neither kills nor reaps the pod.
#[derive(Debug)]
pub struct Pod {
    pid: i32,
    pty_master: Option<OwnedFd>,
    status: Option<i32>,
}

impl Pod {
    pub(crate) fn new(pid: i32, pty_master: Option<OwnedFd>) -> Pod {
        Pod {
            pid,
            pty_master,
            status: None,
        }
    }

    /// Host PID of the pod's init (PID 1 inside); the root to pass to
    /// [`checkpoint_tree`](crate::checkpoint_tree).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The pty master (the task's terminal), unless taken.
    pub fn pty_master(&self) -> Option<BorrowedFd<'_>> {
        self.pty_master.as_ref().map(|f| f.as_fd())
    }

    /// Take the pty master out of the handle.
    pub fn take_pty_master(&mut self) -> Option<OwnedFd> {
        self.pty_master.take()
    }

    /// Send `sig` to the init (it forwards SIGTERM, SIGINT and SIGHUP to the task's process
    /// group; SIGKILL ends the whole pod).
    pub fn signal(&self, sig: i32) -> Result<()> {
        use crate::error::SysContext;
        if self.status.is_some() {
            return Err(Error::NoProcess(self.pid));
        }
        crate::sys::kill(self.pid, sig).sys(|| format!("kill {} {sig}", self.pid))
    }

    /// Wait up to `timeout` for the pod to end; its exit code (the task's code, or 128 +
    /// signal), or `None` if it still runs.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<i32>> {
        if let Some(s) = self.status {
            return Ok(Some(s));
        }
        let s = crate::wait_child(self.pid, timeout)?;
        self.status = s;
        Ok(s)
    }

    /// Wait for the pod to end; its exit code (see [`Pod::wait_timeout`]).
    pub fn wait(&mut self) -> Result<i32> {
        loop {
            if let Some(s) = self.wait_timeout(Duration::from_secs(3600))? {
                return Ok(s);
            }
        }
    }

    /// SIGKILL the whole pod and reap it.
    pub fn kill(&mut self) -> Result<i32> {
        if self.status.is_none() {
            let _ = crate::sys::kill(self.pid, libc::SIGKILL);
        }
        self.wait()
    }
}

/// Start a fresh pod (see the module docs): namespaces, uid/gid maps, the mount plan, then
/// `zos-pod-init` running the task on the pod's pty. Returns once the init has handed over the
/// pty master, or with the step that failed (nothing is left running then).
pub fn spawn(spec: &PodSpec) -> Result<Pod> {
    let _ = spec;
    Err(Error::Restore("pod::spawn: not implemented yet".into()))
}
