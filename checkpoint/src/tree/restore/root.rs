//! The pod's root placeholder, its pty pair and the shared objects, made before the tree is
//! forked.

use super::super::TreeRestoreOptions;
use super::super::model::{PtyState, TreeImage};
use super::PodRoot;
use crate::error::{Error, Result, SysContext};
use crate::image::format::ParsedTree;
use crate::image::model::{Vma, VmaKind};
use crate::objects::{PTY_SLAVE, RestoreCx};
use crate::pod::mounts;
use crate::restore::child::{Child, TreeLink};
use crate::sys::{fds, nr, podns, ptrace};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;

const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;

/// Clone the root, write its maps, run the mount plan, adopt and wipe it, map the shared
/// regions. Nothing is left behind on failure.
pub(super) fn create(
    tree: &TreeImage,
    parsed: &ParsedTree<'_>,
    opts: &TreeRestoreOptions,
    subst: HashMap<String, OwnedFd>,
    drop_to: Option<(u32, u32)>,
) -> Result<PodRoot> {
    let sock_fd = tree
        .processes
        .iter()
        .flat_map(|e| e.fds.iter().map(|f| f.fd))
        .max()
        .unwrap_or(2)
        .max(2)
        + 1;
    let prepared = mounts::prepare(&opts.mounts)?;
    let (ours, theirs) = fds::socketpair().sys(|| "socketpair".into())?;
    let then = podns::Then::Placeholder { fd: sock_fd };
    let mut clone = podns::clone_root(&prepared, &then, theirs.as_raw_fd(), drop_to)
        .map_err(crate::pod::userns_hint)
        .sys(|| "create the pod's namespaces".into())?;
    drop(theirs);
    let pid = clone.pid;
    let kill = |e: Error| {
        let _ = crate::sys::kill(pid, libc::SIGKILL);
        let _ = ptrace::reap(pid);
        e
    };
    let outside = drop_to.unwrap_or((crate::sys::euid(), crate::sys::egid()));
    podns::write_maps(
        pid,
        (tree.inside_uid, outside.0),
        (tree.inside_gid, outside.1),
    )
    .sys(|| "write the pod's uid/gid maps".into())
    .map_err(kill)?;
    if let Err((step, e)) = clone.start() {
        return Err(kill(Error::Sys {
            op: format!("pod set-up: {step}"),
            source: e,
        }));
    }
    let link = TreeLink {
        sock: Rc::new(ours),
        sock_fd,
        subst: Rc::new(subst),
    };
    let mut root = match Child::adopt(pid, 1, link) {
        Ok(c) => c,
        Err(e) => return Err(kill(e)),
    };
    // Where the scratch area may go: nowhere any process of the image has memory.
    let mut avoid: Vec<Vma> = parsed
        .procs
        .iter()
        .flat_map(|p| p.meta.vmas.iter().cloned())
        .collect();
    for r in &tree.shm {
        avoid.push(Vma {
            start: r.base,
            end: r.base + r.len,
            prot: 0,
            shared: true,
            growsdown: false,
            name: None,
            kind: VmaKind::Anon,
        });
    }
    for (start, end) in crate::procstate::avoid(tree) {
        avoid.push(Vma {
            start,
            end,
            prot: 0,
            shared: true,
            growsdown: false,
            name: None,
            kind: VmaKind::Anon,
        });
    }
    root.wipe(&avoid, Some(sock_fd))?;
    let rw = (libc::PROT_READ | libc::PROT_WRITE) as u64;
    let flags = (libc::MAP_SHARED | libc::MAP_ANONYMOUS) as u64 | MAP_FIXED_NOREPLACE;
    for r in &tree.shm {
        root.main.call(
            &format!("mmap shared region {:#x}", r.base),
            nr::MMAP,
            &[r.base, r.len, rw, flags, u64::MAX, 0],
        )?;
    }
    let pidfd = fds::pidfd_open(pid).sys(|| format!("pidfd_open {pid}"))?;
    Ok(PodRoot { root, pidfd })
}

/// The pod's pty 0: (master, slave), both held by the restorer, with the saved attributes.
pub(super) fn pty(pod: &mut PodRoot, state: Option<&PtyState>) -> Result<(OwnedFd, OwnedFd)> {
    let mut cx = RestoreCx {
        data: &[],
        state: Default::default(),
        root: &mut pod.root,
        root_pidfd: &pod.pidfd,
    };
    let master = cx.open_in_pod("/dev/ptmx", libc::O_RDWR | libc::O_NOCTTY, 0)?;
    fds::ioctl_int(master.as_raw_fd(), libc::TIOCSPTLCK, 0).sys(|| "unlock the pty".into())?;
    let index = fds::ioctl_int(master.as_raw_fd(), libc::TIOCGPTN, 0).sys(|| "TIOCGPTN".into())?;
    if index != 0 {
        return Err(Error::Restore(format!(
            "the pod's new pty got index {index}, not 0"
        )));
    }
    let slave = cx.open_in_pod(PTY_SLAVE, libc::O_RDWR | libc::O_NOCTTY, 0)?;
    if let Some(s) = state {
        let mut t = fds::get_termios(slave.as_raw_fd()).sys(|| "tcgetattr".into())?;
        [t.c_iflag, t.c_oflag, t.c_cflag, t.c_lflag] = s.flags;
        t.c_line = s.line;
        for (d, v) in t.c_cc.iter_mut().zip(&s.cc) {
            *d = *v;
        }
        [t.c_ispeed, t.c_ospeed] = s.speed;
        fds::set_termios(slave.as_raw_fd(), &t).sys(|| "tcsetattr".into())?;
        fds::set_winsize(slave.as_raw_fd(), s.winsize).sys(|| "TIOCSWINSZ".into())?;
    }
    Ok((master, slave))
}

/// Create every object once. Returns their descriptors (by object index) and the kinds'
/// state, which must outlive the passing (a FIFO's read-write holder keeps its bytes).
pub(super) fn objects(
    pod: &mut PodRoot,
    tree: &TreeImage,
    data: &[&[u8]],
) -> Result<(Vec<OwnedFd>, crate::objects::TypeMap)> {
    let mut cx = RestoreCx {
        data,
        state: Default::default(),
        root: &mut pod.root,
        root_pidfd: &pod.pidfd,
    };
    crate::procstate::before_objects(&mut cx, tree)?;
    let mut out = Vec::with_capacity(tree.objects.len());
    for (i, o) in tree.objects.iter().enumerate() {
        let fd = o
            .create(&mut cx)
            .map_err(|e| Error::Restore(format!("object {i} ({}): {e}", o.kind())))?;
        out.push(fd);
    }
    crate::procstate::after_objects(&out, tree)?;
    Ok((out, cx.state))
}
