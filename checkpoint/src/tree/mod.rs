//! Process trees in a pod: check, checkpoint (with a frozen hold) and restore.
//!
//! The tree is the pod's init (PID 1 of its PID namespace) and every process below it. PIDs,
//! parents, sessions, process groups, defunct and stopped children, threads, the pod's pty and
//! every shared open file description (pipes with their bytes, FIFOs, files with a shared
//! offset, unix socket pairs with their queues, eventfd, timerfd, signalfd, epoll, memfd: the
//! kinds of `objects/`) are carried; shared anonymous memory inherited over `fork` stays
//! shared; what processes hold besides (each thread's capabilities, POSIX timers, file locks,
//! memfd and System V mappings, the pod's `/dev/shm` and System V IPC namespace) is carried by
//! `procstate/`. Anything else is refused by [`check_tree`] before the tree is touched, naming
//! the process (PID in the pod and comm), the descriptor and the reason.
//!
//! All ptrace calls of one operation come from the calling thread; the handles that hold a
//! tree under ptrace ([`FrozenTree`], [`RestoredTree`]) are therefore neither `Send` nor
//! `Sync`: keep them on the thread that made them.
//!
//! # What is not carried
//!
//! - Input typed into the pod's pty that the task has not read yet: reading it would consume
//!   it, so it stays in the old pty ([`TreeDumpStats::pty_input_lost`] counts what the kernel
//!   reports: whole lines in canonical mode). Output the task wrote is never in the image: it
//!   stays readable on the old master until the holder has read it all (then EIO).
//! - Supplementary groups (a pod's processes have the restorer's: `setgroups` is denied in the
//!   pod), securebits, resource usage counters, the core-dump bit of a child that died of a
//!   signal and is still unreaped.
//! - A restored stopped child is stopped again by a SIGSTOP, so its parent may see one more
//!   stop notification; a restored defunct child may cause one more SIGCHLD.
//!
//! # Refused (each naming process, descriptor, reason)
//!
//! Descriptors no kind claims or a kind refuses (TCP/IP and other sockets, unix sockets bound
//! to a name or connected outside the pod, descriptors or credentials in flight, epoll
//! registrations of closed descriptors, inotify, pidfd and other anonymous inodes, ptys other
//! than the pod's pty 0, `/dev/tty` by name), leases, private mappings of memfds, partly
//! unmapped System V attachments, POSIX timers on another process's CPU clock, seccomp,
//! foreign tracers, processes in other namespaces than the pod's init
//! or with their own root directory, with another uid/gid than the pod's one mapped user,
//! sharing an address space, descriptor table, fs or signal handlers with their parent
//! (vfork), sessions inherited from a process that left them, process groups without their
//! leader, sessions or groups outside the pod, shared memory moved by `mremap` or overlapping
//! across processes, a process that joined the pod's PID namespace from outside.

mod check;
mod dump;
mod fdtable;
mod freeze;
pub(crate) mod model;
mod restore;
mod scan;

pub(crate) use freeze::freeze_for_tracking;

use crate::check::CheckReport;
use crate::error::{Error, Result};
use crate::pod::{MountPlan, Pod};
use std::collections::HashMap;
use std::io::Write;
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::time::Duration;

/// Marker that keeps a ptrace-holding handle on its thread.
type NotSend = PhantomData<*const ()>;

/// What happens to the tree once its image is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AfterDump {
    /// End the tree (SIGKILL to its init).
    #[default]
    Kill,
    /// Let it run on (a snapshot).
    LeaveRunning,
    /// Keep every thread held under ptrace and return a [`FrozenTree`] in
    /// [`TreeDumpStats::held`], for a later [`FrozenTree::resume`] or [`FrozenTree::kill`].
    KeepFrozen,
}

/// Options of [`checkpoint_tree`].
#[derive(Debug, Clone, Default)]
pub struct TreeDumpOptions {
    /// What happens afterwards.
    pub after: AfterDump,
}

/// Figures and results of one [`checkpoint_tree`].
#[derive(Debug, Default)]
pub struct TreeDumpStats {
    /// How long the tree was stopped (until written and released or killed; for
    /// [`AfterDump::KeepFrozen`] until the image was written).
    pub frozen: Duration,
    /// Whole call, from the check to the last byte written.
    pub total: Duration,
    /// Bytes of the image stream.
    pub bytes_written: u64,
    /// Memory pages saved (all processes).
    pub pages: u64,
    /// Processes saved (defunct ones included).
    pub processes: usize,
    /// Executables and libraries the tree maps (paths in the pod's view), for the caller to
    /// compare with the receiving host's and send as substitutions when they differ.
    pub mapped_files: Vec<String>,
    /// Bytes typed into the pod's pty that the task had not read yet: they are not in the
    /// image (reading them would consume them).
    pub pty_input_lost: usize,
    /// The still-frozen tree, with [`AfterDump::KeepFrozen`].
    pub held: Option<FrozenTree>,
}

/// A tree whose every thread is held under ptrace after [`checkpoint_tree`] with
/// [`AfterDump::KeepFrozen`]. Dropping it resumes the tree.
#[derive(Debug)]
pub struct FrozenTree {
    pub(crate) inner: Option<freeze::TreeFreeze>,
    pub(crate) _thread: NotSend,
}

impl FrozenTree {
    /// Let the tree run on from where it stopped (a failed migration).
    pub fn resume(mut self) -> Result<()> {
        match self.inner.take() {
            Some(mut f) => f.release(),
            None => Ok(()),
        }
    }

    /// End the tree (the migration committed elsewhere).
    pub fn kill(mut self) {
        if let Some(mut f) = self.inner.take() {
            f.kill();
        }
    }

    /// Send SIGKILL to the pod's init (which ends every process of its PID namespace) without
    /// waiting: from here the frozen copy can never run again, even if this handle is lost.
    /// [`FrozenTree::kill`] then collects it.
    pub fn doom(&self) {
        if let Some(f) = &self.inner {
            let _ = crate::sys::kill(f.root, libc::SIGKILL);
        }
    }
}

impl Drop for FrozenTree {
    fn drop(&mut self) {
        if let Some(mut f) = self.inner.take()
            && let Err(e) = f.release()
        {
            tracing::warn!("resuming a frozen tree failed: {e}");
        }
    }
}

/// Options of [`restore_tree`].
#[derive(Debug, Clone, Default)]
pub struct TreeRestoreOptions {
    /// The uid the pod's user is mapped to outside (default: the caller's effective uid). Only
    /// root may give another: the pod's user namespace then belongs to that user (made by an
    /// intermediate process with its credentials) and the caller becomes a child subreaper.
    pub outside_uid: Option<u32>,
    /// The gid mapped to outside (default: the caller's effective gid).
    pub outside_gid: Option<u32>,
    /// Masks and bind mounts of the new pod (exports at the paths they have on the master).
    pub mounts: MountPlan,
    /// Executables and libraries that travelled with the image: original path (in the pod's
    /// view) → the file to map instead (in the caller's view).
    pub substitutions: HashMap<String, PathBuf>,
}

/// A restored tree, every thread held stopped under ptrace. Only [`RestoredTree::resume`] lets
/// it run; dropping it kills it.
#[derive(Debug)]
pub struct RestoredTree {
    pub(crate) inner: Option<restore::Held>,
    pub(crate) _thread: NotSend,
}

impl RestoredTree {
    /// Host PID of the restored init.
    pub fn pid(&self) -> i32 {
        self.inner.as_ref().map_or(0, |h| h.root)
    }

    /// `(PID in the pod, host PID)` of every restored process, init first.
    pub fn pids(&self) -> &[(i32, i32)] {
        self.inner.as_ref().map_or(&[], |h| &h.pids)
    }

    /// The new pty master (the task's terminal).
    pub fn pty_master(&self) -> Option<BorrowedFd<'_>> {
        self.inner
            .as_ref()
            .and_then(|h| h.pty_master.as_ref())
            .map(|f| f.as_fd())
    }

    /// Let every process run; returns the pod's handle (with the pty master).
    pub fn resume(mut self) -> Result<Pod> {
        match self.inner.take() {
            Some(h) => h.resume(),
            None => Err(Error::Restore("tree already released".into())),
        }
    }

    /// Kill the restored tree (the migration did not commit).
    pub fn kill(mut self) {
        if let Some(h) = self.inner.take() {
            h.kill();
        }
    }
}

impl Drop for RestoredTree {
    fn drop(&mut self) {
        if let Some(h) = self.inner.take() {
            h.kill();
        }
    }
}

/// Check whether the pod whose init has host PID `root_pid` can be checkpointed; lists every
/// reason if not, each naming the process (PID in the pod and comm) and the descriptor.
pub fn check_tree(root_pid: i32) -> Result<CheckReport> {
    check::check_tree(root_pid)
}

/// Checkpoint the pod whose init has host PID `root_pid` as one image stream written to `out`
/// (see [`crate::image::format`]). Refuses (leaving the tree untouched and running) whatever
/// [`check_tree`] refuses; any later failure releases the tree.
pub fn checkpoint_tree(
    root_pid: i32,
    opts: &TreeDumpOptions,
    out: impl Write,
) -> Result<TreeDumpStats> {
    dump::checkpoint_tree(root_pid, opts, out)
}

/// Restore a pod from a complete image stream: validated in full first, then a new pod
/// (namespaces, maps, mount plan) with every process at its PID, held stopped.
pub fn restore_tree(image: &[u8], opts: &TreeRestoreOptions) -> Result<RestoredTree> {
    restore::restore_tree(image, None, opts)
}

/// [`restore_tree`] of a delta image (see [`crate::image::format`]) over the pages of
/// `base` (pre-copy rounds, or earlier images of a snapshot chain); a whole image ignores
/// the base.
pub fn restore_tree_with_base(
    image: &[u8],
    base: &crate::track::PageBase,
    opts: &TreeRestoreOptions,
) -> Result<RestoredTree> {
    restore::restore_tree(image, Some(base), opts)
}

/// [`checkpoint_tree`] as a delta image: only the pages written since `tracker` last
/// reported them (its previous round, or snapshot), plus what every process has (see
/// [`crate::image::format`]); everything else as in a whole image.
pub fn checkpoint_tree_delta(
    root: i32,
    opts: &TreeDumpOptions,
    tracker: &mut crate::track::DirtyTracker,
    out: impl Write,
) -> Result<TreeDumpStats> {
    dump::checkpoint_tree_since(root, opts, dump::Tracking::Delta(tracker), out)
}

/// [`checkpoint_tree`] (a whole image) that also restarts `tracker`'s report at this image,
/// while the tree is frozen: the first of a chain of snapshots.
pub fn checkpoint_tree_tracked(
    root: i32,
    opts: &TreeDumpOptions,
    tracker: &mut crate::track::DirtyTracker,
    out: impl Write,
) -> Result<TreeDumpStats> {
    dump::checkpoint_tree_since(root, opts, dump::Tracking::Reset(tracker), out)
}

#[allow(unused)]
fn _unused(_: OwnedFd) {}
