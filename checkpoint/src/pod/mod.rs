//! Pods: a process tree in its own user, PID, mount and IPC namespaces, with our small init
//! (`zos-pod-init`) as PID 1 and one pseudo-terminal whose master the caller holds.
//!
//! [`spawn`] starts a fresh pod from a [`PodSpec`]; [`Pod`] is the handle of a running pod
//! (also what [`RestoredTree::resume`](crate::RestoredTree::resume) gives back). The user
//! namespace maps one uid and one gid, `INSIDE OUTSIDE 1`, where OUTSIDE is the caller's own
//! (effective) uid/gid; `setgroups` is denied. No privilege beyond the caller's is needed, as
//! long as the kernel allows unprivileged user namespaces.

pub mod bench;
pub(crate) mod mounts;

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

/// Open `path` read-only as the pod whose init has host PID `root_pid` sees it (its mount
/// namespace; `..` and symbolic links cannot leave its root): for example to hash the
/// executables and libraries [`TreeDumpStats::mapped_files`](crate::TreeDumpStats) names.
pub fn open_in_pod(root_pid: i32, path: &str) -> Result<std::fs::File> {
    use crate::error::SysContext;
    let root = crate::sys::fds::open(
        &format!("/proc/{root_pid}/root"),
        libc::O_PATH | libc::O_DIRECTORY,
    )
    .sys(|| format!("open the file system of pod {root_pid}"))?;
    crate::sys::fds::open_in_root(&root, path, libc::O_RDONLY)
        .map(std::fs::File::from)
        .sys(|| format!("open {path} in pod {root_pid}"))
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
    use crate::sys::{fds, podns};
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    if spec.argv.is_empty() {
        return Err(Error::Restore("pod: empty command".into()));
    }
    if !spec.init.is_file() {
        return Err(Error::Restore(format!(
            "pod: {} not found (build or install {INIT_NAME})",
            spec.init.display()
        )));
    }
    let mut mounts = mounts::prepare(&spec.mounts)?;
    mounts.cwd = Some(mounts::cstring(spec.cwd.as_os_str())?);
    let mut argv = vec![
        mounts::cstring(spec.init.as_os_str())?,
        c"--pty-sock".to_owned(),
        c"3".to_owned(),
        c"--".to_owned(),
    ];
    for a in &spec.argv {
        argv.push(mounts::cstring(a)?);
    }
    let envp = spec
        .env
        .iter()
        .map(|e| mounts::cstring(e))
        .collect::<Result<Vec<_>>>()?;
    let then = podns::Then::Exec {
        path: mounts::cstring(spec.init.as_os_str())?,
        argv,
        envp,
    };
    let (ours, theirs) = fds::socketpair().map_err(|e| sys_err("socketpair", e))?;
    let mut root = podns::clone_root(&mounts, &then, theirs.as_raw_fd(), None)
        .map_err(|e| sys_err("create the pod's namespaces", userns_hint(e)))?;
    drop(theirs);
    let fail = |pid: i32, e: Error| {
        let _ = crate::sys::kill(pid, libc::SIGKILL);
        let _ = crate::sys::ptrace::reap(pid);
        e
    };
    let outside = (crate::sys::euid(), crate::sys::egid());
    podns::write_maps(
        root.pid,
        (spec.inside_uid, outside.0),
        (spec.inside_gid, outside.1),
    )
    .map_err(|e| fail(root.pid, sys_err("write the pod's uid/gid maps", e)))?;
    if let Err((step, e)) = root.start() {
        return Err(fail(root.pid, sys_err(&format!("pod set-up: {step}"), e)));
    }
    match fds::recv_fd(ours.as_raw_fd(), 10_000) {
        Ok(Some(master)) => Ok(Pod::new(root.pid, Some(master))),
        Ok(None) | Err(_) => {
            let code = crate::wait_child(root.pid, Duration::from_secs(2))?;
            let _ = fail(root.pid, Error::Gone(root.pid));
            Err(Error::Restore(format!(
                "{INIT_NAME} ended before handing over the pty (exit {code:?}); cannot run {:?}?",
                std::ffi::OsStr::from_bytes(spec.argv[0].as_bytes())
            )))
        }
    }
}

fn sys_err(op: &str, source: std::io::Error) -> Error {
    Error::Sys {
        op: op.to_string(),
        source,
    }
}

/// Say what to allow when the kernel refuses an unprivileged user namespace.
pub(crate) fn userns_hint(e: std::io::Error) -> std::io::Error {
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::ENOSPC) | Some(libc::EUSERS) | Some(libc::EINVAL) => {
            std::io::Error::new(
                e.kind(),
                format!(
                    "{e} (the kernel refused a new user namespace: allow unprivileged user \
                     namespaces, e.g. sysctl kernel.unprivileged_userns_clone=1 and \
                     user.max_user_namespaces > 0, and no AppArmor restriction)"
                ),
            )
        }
        _ => e,
    }
}
