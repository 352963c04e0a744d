//! Creating the root process of a pod: `clone3` into new user, PID, mount and IPC namespaces,
//! uid/gid maps written by the parent, then the mount plan run by the child with raw system
//! calls, and finally either `execve` of the pod's init or an idle placeholder for a restore.
//!
//! The parent may be multi-threaded: the child only makes raw system calls on data prepared
//! before the clone (no allocation, no locks).

mod child;

use super::cvt;
use child::{ChildCtx, child};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// The mount plan, every string ready for the child.
#[derive(Debug, Default)]
pub struct PreparedMounts {
    /// Masks (existing directories) to cover with tmpfs.
    pub masks: Vec<CString>,
    /// Bind mounts: (source, directories to create first, target).
    pub binds: Vec<(CString, Vec<CString>, CString)>,
    /// Directory to change to last (the task's cwd), if any.
    pub cwd: Option<CString>,
}

/// What the child becomes once its namespaces are ready.
#[derive(Debug)]
pub enum Then {
    /// `execve(path, argv, envp)` with `/dev/null` on 0–2 and the socket on descriptor 3.
    Exec {
        /// Program.
        path: CString,
        /// Arguments (argv[0] first).
        argv: Vec<CString>,
        /// Environment.
        envp: Vec<CString>,
    },
    /// `setsid`, keep the socket at number `fd`, report ready and wait in `pause()` for a
    /// tracer.
    Placeholder {
        /// Descriptor number the socket must have.
        fd: i32,
    },
}

/// The steps the child reports failures of (index into this table).
pub const STEPS: &[&str] = &[
    "wait for the uid/gid maps",
    "make / private in the pod",
    "open a bind mount source",
    "mount /proc",
    "mount the pod's devpts on /dev/pts",
    "bind /dev/pts/ptmx on /dev/ptmx",
    "mount a tmpfs mask",
    "create a bind mount target",
    "bind mount",
    "change to the working directory",
    "set up descriptors",
    "execute the pod's init",
    "mount the pod's tmpfs on /dev/shm",
];
const READY: u32 = u32::MAX;

/// A freshly cloned pod root (not yet running its plan: call [`PodRoot::start`]).
#[derive(Debug)]
pub struct PodRoot {
    /// Host PID.
    pub pid: i32,
    go: Option<OwnedFd>,
    status: OwnedFd,
}

/// Clone the pod root; it waits for [`PodRoot::start`]. `sock` is the descriptor it keeps.
///
/// With `drop_to = Some((uid, gid))` (root only), an intermediate process first takes those
/// credentials (no supplementary groups), so that the pod's user namespace belongs to that
/// user; the root is then an orphan, reparented to the nearest child subreaper.
pub fn clone_root(
    mounts: &PreparedMounts,
    then: &Then,
    sock: RawFd,
    drop_to: Option<(u32, u32)>,
) -> io::Result<PodRoot> {
    let (go_r, go_w) = super::fds::pipe(0)?;
    let (st_r, st_w) = super::fds::pipe(0)?;
    let mut argv: Vec<*const libc::c_char> = Vec::new();
    let mut envp: Vec<*const libc::c_char> = Vec::new();
    if let Then::Exec {
        argv: a, envp: e, ..
    } = then
    {
        argv = a.iter().map(|s| s.as_ptr()).collect();
        argv.push(std::ptr::null());
        envp = e.iter().map(|s| s.as_ptr()).collect();
        envp.push(std::ptr::null());
    }
    let mut bind_fds = vec![-1i32; mounts.binds.len()];
    let mut fd_path = [0u8; 32];
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs([u64; 11]);
    let mut args = CloneArgs::default();
    args.0[0] =
        (libc::CLONE_NEWUSER | libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWIPC) as u64;
    args.0[4] = libc::SIGCHLD as u64;
    let (pid_r, pid_w) = super::fds::pipe(0)?;
    let mut middle = 0;
    if drop_to.is_some() {
        // SAFETY: fork in a possibly multi-threaded process: the intermediate only makes raw
        // system calls on data prepared before the fork, then clones the root and exits.
        middle = unsafe { libc::fork() };
        cvt(i64::from(middle))?;
    }
    if middle == 0
        && let Some((uid, gid)) = drop_to
    {
        // SAFETY: we are the intermediate; raw system calls only, then _exit.
        unsafe {
            let ok = libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) == 0
                && libc::syscall(libc::SYS_setresgid, gid, gid, gid) == 0
                && libc::syscall(libc::SYS_setresuid, uid, uid, uid) == 0
                && libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) == 0;
            let r: i64 = if ok {
                libc::syscall(
                    libc::SYS_clone3,
                    &args as *const CloneArgs,
                    std::mem::size_of::<CloneArgs>(),
                )
            } else {
                -1
            };
            if r != 0 {
                let v: i64 = if r < 0 {
                    -i64::from(*libc::__errno_location())
                } else {
                    r
                };
                libc::write(pid_w.as_raw_fd(), (&v as *const i64).cast(), 8);
                libc::_exit(0);
            }
        }
    }
    let pid = if drop_to.is_some() && middle != 0 {
        0x7fff_ffff // not the root itself: see below
    } else if drop_to.is_some() {
        0 // the root, cloned by the intermediate
    } else {
        // SAFETY: raw clone3 with a valid clone_args (no stack: the child runs on a copy of
        // ours, like fork). In the child, `child` below only makes raw system calls on data
        // prepared above and never returns.
        unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &args as *const CloneArgs,
                std::mem::size_of::<CloneArgs>(),
            )
        }
    };
    if pid == 0 {
        let ctx = ChildCtx {
            go: go_r.as_raw_fd(),
            go_w: go_w.as_raw_fd(),
            status: st_w.as_raw_fd(),
            status_r: st_r.as_raw_fd(),
            sock,
            mounts,
            then,
            argv: &argv,
            envp: &envp,
        };
        // SAFETY: we are the new child; see `child`.
        unsafe { child(&ctx, &mut bind_fds, &mut fd_path) }
    }
    drop(pid_w);
    let pid = if drop_to.is_some() {
        let mut v: i64 = 0;
        // SAFETY: reading 8 bytes into a local.
        let n = unsafe { libc::read(pid_r.as_raw_fd(), (&mut v as *mut i64).cast(), 8) };
        super::ptrace::reap(middle)?;
        if n != 8 {
            return Err(io::Error::other("the pod's intermediate process died"));
        }
        if v < 0 {
            return Err(io::Error::from_raw_os_error(-v as i32));
        }
        v
    } else {
        cvt(pid)?
    };
    drop(pid_r);
    drop(go_r);
    drop(st_w);
    Ok(PodRoot {
        pid: pid as i32,
        go: Some(go_w),
        status: st_r,
    })
}

impl PodRoot {
    /// Let the child run its plan (after its maps are written); returns once it has exec'd
    /// (for [`Then::Exec`]) or is ready (for [`Then::Placeholder`]). On failure the child
    /// has exited (the caller reaps it); the error names the step.
    pub fn start(&mut self) -> Result<(), (String, io::Error)> {
        let go = self.go.take();
        if let Some(go) = &go {
            // SAFETY: writing one byte from a local.
            unsafe { libc::write(go.as_raw_fd(), b"g".as_ptr().cast(), 1) };
        }
        drop(go);
        let mut rec = [0u8; 8];
        let mut got = 0;
        while got < 8 {
            // SAFETY: reading into the rest of `rec`.
            let n = unsafe {
                libc::read(
                    self.status.as_raw_fd(),
                    rec[got..].as_mut_ptr().cast(),
                    8 - got,
                )
            };
            if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            if n <= 0 {
                break;
            }
            got += n as usize;
        }
        if got == 0 {
            return Ok(()); // closed on exec
        }
        let step = u32::from_le_bytes(rec[..4].try_into().unwrap());
        let errno = i32::from_le_bytes(rec[4..].try_into().unwrap());
        if got == 8 && step == READY {
            return Ok(());
        }
        let what = STEPS
            .get(step as usize)
            .copied()
            .unwrap_or("set up the pod");
        Err((what.to_string(), io::Error::from_raw_os_error(errno)))
    }
}

/// Write the pod's maps: `setgroups deny`, then `INSIDE OUTSIDE 1` for gids and uids.
pub fn write_maps(pid: i32, uid: (u32, u32), gid: (u32, u32)) -> io::Result<()> {
    std::fs::write(format!("/proc/{pid}/setgroups"), "deny")?;
    std::fs::write(
        format!("/proc/{pid}/gid_map"),
        format!("{} {} 1", gid.0, gid.1),
    )?;
    std::fs::write(
        format!("/proc/{pid}/uid_map"),
        format!("{} {} 1", uid.0, uid.1),
    )
}
