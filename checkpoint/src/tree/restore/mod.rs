//! Restoring a pod (CRIU's order, our mechanism).
//!
//! 1. The image is parsed and validated in full.
//! 2. The pod's root is cloned into new user, PID, mount and IPC namespaces (`sys/podns`), its
//!    maps written, the mount plan run; it waits as PID 1, is seized and wiped down to a
//!    scratch area placed where no process of the image has memory, keeping the socket every
//!    placeholder inherits. Shared anonymous regions are mapped in it, so that every process
//!    forked below inherits them.
//! 3. The pty pair and every shared object are created once, in the restorer (paths opened
//!    by injected `openat` in the root: the pod's view and credentials).
//! 4. The tree is forked top-down by injected `clone3` with `set_tid` in each parent (see
//!    `build`), session leaders calling `setsid` (and taking the pty as controlling terminal)
//!    before forking their members; then process groups (leaders first) and the foreground
//!    group.
//! 5. Each live process is rebuilt (see `process`): memory, descriptors passed in over the
//!    socket, attributes, threads, signals, capabilities.
//! 6. Defunct processes exit with their saved status (their parents, stopped, do not reap).
//!
//! The result is held stopped ([`Held`]) until `resume` or `kill`. Any failure kills the pod.

mod build;
mod process;
mod root;
mod validate;

use super::model::{ProcState, TreeImage};
use super::{RestoredTree, TreeRestoreOptions};
use crate::error::{Error, Result, SysContext};
use crate::image::format::parse_tree;
use crate::image::model::ThreadImage;
use crate::pod::Pod;
use crate::restore::child::Child;
use crate::sys::{self, ptrace};
use crate::track::PageBase;
use std::os::fd::OwnedFd;
use std::time::Instant;

/// One restored process, held stopped.
struct HeldProc {
    pid: i32,
    threads: Vec<(ThreadImage, i32)>,
    stop: bool,
}

/// A restored pod held stopped under ptrace (see [`RestoredTree`]).
pub(crate) struct Held {
    /// Host PID of the init.
    pub root: i32,
    /// (PID in the pod, host PID) of every process.
    pub pids: Vec<(i32, i32)>,
    /// The new pty master.
    pub pty_master: Option<OwnedFd>,
    procs: Vec<HeldProc>,
    done: bool,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Held {{ root: {}, pids: {:?} }}", self.root, self.pids)
    }
}

impl Held {
    /// Load every thread's final registers and let it run. Stopped processes go first: each
    /// gets SIGSTOP before it is let go, and nobody else runs before they show as stopped.
    pub fn resume(mut self) -> Result<Pod> {
        self.done = true;
        let mut first = None;
        for stopped in [true, false] {
            for p in self.procs.iter().filter(|p| p.stop == stopped) {
                if p.stop {
                    let _ = sys::kill(p.pid, libc::SIGSTOP);
                }
                for (th, tid) in p.threads.iter().rev() {
                    if let Err(e) = crate::restore::task::release_thread(p.pid, *tid, th) {
                        first.get_or_insert(e);
                    }
                }
            }
            for p in self.procs.iter().filter(|p| p.stop && stopped) {
                let t = Instant::now();
                while t.elapsed() < std::time::Duration::from_secs(2)
                    && !crate::proc::read(p.pid, "stat")
                        .is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('T')))
                {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
        }
        if let Some(e) = first {
            self.kill_all();
            return Err(e);
        }
        Ok(Pod::new(self.root, self.pty_master.take()))
    }

    /// Kill the pod and reap its init.
    pub fn kill(mut self) {
        self.kill_all();
    }

    fn kill_all(&mut self) {
        self.done = true;
        let _ = sys::kill(self.root, libc::SIGKILL);
        // Children first: the dying init waits to reap them, which it cannot while we still
        // have their exits to collect as their tracer.
        // Within a process, its other threads before its leader: a traced leader's exit is
        // reported only once every other thread of it has been collected.
        for p in self.procs.iter().rev() {
            for (_, tid) in p.threads.iter().rev() {
                while let Ok(s) = ptrace::wait(*tid) {
                    if s == ptrace::Stop::Exited {
                        break;
                    }
                }
            }
        }
        // The init is our child: collect it (its threads were waited for above as tracees).
        let _ = crate::wait_child(self.root, std::time::Duration::from_secs(5));
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if !self.done {
            self.kill_all();
        }
    }
}

/// See [`crate::restore_tree`].
pub(crate) fn restore_tree(
    image: &[u8],
    base: Option<&PageBase>,
    opts: &TreeRestoreOptions,
) -> Result<RestoredTree> {
    let t0 = Instant::now();
    let mut phases = crate::phases::Phases::new();
    let mut parsed = parse_tree(image)?;
    if parsed.delta {
        let Some(base) = base else {
            return Err(Error::BadImage(
                "a delta image (pre-copy or incremental snapshot) needs its base".into(),
            ));
        };
        for p in &mut parsed.procs {
            let present = p.present.take().unwrap_or_default();
            p.pages = base.merged(p.meta.pid, &present, &p.pages)?;
        }
    }
    let tree: TreeImage = postcard::from_bytes(parsed.tree)
        .map_err(|e| Error::BadImage(format!("tree does not decode: {e}")))?;
    validate::validate(&tree, &parsed)?;
    phases.end("parse, merge, validate");
    let outside = (
        opts.outside_uid.unwrap_or_else(sys::euid),
        opts.outside_gid.unwrap_or_else(sys::egid),
    );
    let drop_to = if outside == (sys::euid(), sys::egid()) {
        None
    } else if sys::euid() == 0 {
        // The root is then an orphan: collect it (and let Pod::wait work) as its subreaper.
        crate::set_child_subreaper()?;
        Some(outside)
    } else {
        return Err(Error::Restore(format!(
            "restoring for uid/gid {outside:?} needs root (or run the restore as that user)"
        )));
    };
    let mut subst = std::collections::HashMap::new();
    for (orig, file) in &opts.substitutions {
        let f = sys::fds::open(&file.to_string_lossy(), libc::O_RDONLY)
            .sys(|| format!("open substitute {} for {orig}", file.display()))?;
        subst.insert(orig.clone(), f);
    }
    let mut pod = root::create(&tree, &parsed, opts, subst, drop_to)?;
    phases.end("pod root");
    let pty = root::pty(&mut pod, tree.pty.as_ref())?;
    let (objects, mut keep) = root::objects(&mut pod, &tree, &parsed.data)?;
    let mut extras = crate::procstate::PodState::new(&mut keep, &tree);
    phases.end("pty, objects");
    let mut procs = build::fork_tree(&tree, pod.root, &pty.1)?;
    build::groups(&tree, &mut procs, &pty.1)?;
    build::last_pid(&mut procs[0], tree.last_pid)?;
    phases.end("fork the tree");
    let mut held = Vec::new();
    let mut live = parsed.procs.iter();
    for (e, child) in tree.processes.iter().zip(procs.iter_mut()) {
        if matches!(e.state, ProcState::Defunct { .. }) {
            continue;
        }
        let img = live
            .next()
            .ok_or_else(|| Error::BadImage("META missing".into()))?;
        let threads = process::rebuild(child, e, img, &objects, &tree, &mut extras)?;
        phases.end("rebuild processes");
        held.push(HeldProc {
            pid: child.pid,
            threads,
            stop: e.state == ProcState::Stopped,
        });
    }
    drop(keep);
    drop(objects);
    for (e, child) in tree.processes.iter().zip(procs.iter_mut()) {
        if let ProcState::Defunct { status } = e.state {
            process::exit_as(child, status)?;
        }
    }
    let pids = tree
        .processes
        .iter()
        .zip(procs.iter())
        .map(|(e, c)| (e.pid, c.pid))
        .collect();
    let root_pid = procs[0].pid;
    for c in procs.iter_mut() {
        c.disarm();
    }
    phases.end("end");
    tracing::debug!(root = root_pid, "pod restored: {phases}");
    tracing::info!(root = root_pid, elapsed = ?t0.elapsed(), "pod restored (held stopped)");
    Ok(RestoredTree {
        inner: Some(Held {
            root: root_pid,
            pids,
            pty_master: Some(pty.0),
            procs: held,
            done: false,
        }),
        _thread: Default::default(),
    })
}

/// The pod's root placeholder and what comes with it while the tree is built.
pub(crate) struct PodRoot {
    /// The root placeholder (PID 1).
    pub root: Child,
    /// A pidfd of it.
    pub pidfd: OwnedFd,
}
