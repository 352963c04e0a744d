//! Creating the root process of a pod: `clone3` into new user, PID, mount and IPC namespaces,
//! uid/gid maps written by the parent, then the mount plan run by the child with raw system
//! calls, and finally either `execve` of the pod's init or an idle placeholder for a restore.
//!
//! The parent may be multi-threaded: the child only makes raw system calls on data prepared
//! before the clone (no allocation, no locks).

use super::cvt;
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
pub fn clone_root(mounts: &PreparedMounts, then: &Then, sock: RawFd) -> io::Result<PodRoot> {
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
    // SAFETY: raw clone3 with a valid clone_args (no stack: the child runs on a copy of ours,
    // like fork). In the child, `child` below only makes raw system calls on data prepared
    // above and never returns.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
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
    cvt(pid)?;
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

struct ChildCtx<'a> {
    go: RawFd,
    go_w: RawFd,
    status: RawFd,
    status_r: RawFd,
    sock: RawFd,
    mounts: &'a PreparedMounts,
    then: &'a Then,
    argv: &'a [*const libc::c_char],
    envp: &'a [*const libc::c_char],
}

/// Report `step` failed with the current errno, and exit.
///
/// # Safety
/// Only in the cloned child.
unsafe fn fail(ctx: &ChildCtx<'_>, step: usize) -> ! {
    // SAFETY: errno location is thread-local and valid; write from a local; _exit.
    unsafe {
        let errno = *libc::__errno_location();
        let mut rec = [0u8; 8];
        rec[..4].copy_from_slice(&(step as u32).to_le_bytes());
        rec[4..].copy_from_slice(&errno.to_le_bytes());
        libc::write(ctx.status, rec.as_ptr().cast(), 8);
        libc::_exit(1)
    }
}

/// Write `/proc/self/fd/N` into `buf` as a C string.
fn fd_path(buf: &mut [u8; 32], fd: i32) -> *const libc::c_char {
    let prefix = b"/proc/self/fd/";
    buf[..prefix.len()].copy_from_slice(prefix);
    let mut digits = [0u8; 10];
    let mut n = fd as u32;
    let mut k = 0;
    loop {
        digits[k] = b'0' + (n % 10) as u8;
        k += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..k {
        buf[prefix.len() + i] = digits[k - 1 - i];
    }
    buf[prefix.len() + k] = 0;
    buf.as_ptr().cast()
}

/// The child's side: wait for the maps, run the plan, become what `then` says.
///
/// # Safety
/// Only in the cloned child of [`clone_root`]; never returns.
unsafe fn child(ctx: &ChildCtx<'_>, bind_fds: &mut [i32], path_buf: &mut [u8; 32]) -> ! {
    let null = std::ptr::null::<libc::c_char>();
    // SAFETY: raw system calls on descriptors inherited from the parent and C strings
    // prepared before the clone; no allocation.
    unsafe {
        libc::close(ctx.go_w);
        libc::close(ctx.status_r);
        let mut b = 0u8;
        if libc::read(ctx.go, (&mut b as *mut u8).cast(), 1) != 1 {
            fail(ctx, 0);
        }
        libc::close(ctx.go);
        let m = ctx.mounts;
        if libc::mount(
            null,
            c"/".as_ptr(),
            null,
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            fail(ctx, 1);
        }
        for (i, (src, _, _)) in m.binds.iter().enumerate() {
            bind_fds[i] = libc::open(src.as_ptr(), libc::O_PATH | libc::O_CLOEXEC);
            if bind_fds[i] < 0 {
                fail(ctx, 2);
            }
        }
        let nosuid = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        if libc::mount(
            c"proc".as_ptr(),
            c"/proc".as_ptr(),
            c"proc".as_ptr(),
            nosuid,
            std::ptr::null(),
        ) != 0
        {
            fail(ctx, 3);
        }
        if libc::mount(
            c"devpts".as_ptr(),
            c"/dev/pts".as_ptr(),
            c"devpts".as_ptr(),
            libc::MS_NOSUID | libc::MS_NOEXEC,
            c"newinstance,ptmxmode=0666,mode=0620".as_ptr().cast(),
        ) != 0
        {
            fail(ctx, 4);
        }
        if libc::mount(
            c"/dev/pts/ptmx".as_ptr(),
            c"/dev/ptmx".as_ptr(),
            null,
            libc::MS_BIND,
            std::ptr::null(),
        ) != 0
        {
            fail(ctx, 5);
        }
        for mask in &m.masks {
            if libc::mount(
                c"tmpfs".as_ptr(),
                mask.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                c"mode=0755".as_ptr().cast(),
            ) != 0
            {
                fail(ctx, 6);
            }
        }
        for (i, (_, dirs, target)) in m.binds.iter().enumerate() {
            for d in dirs {
                if libc::mkdir(d.as_ptr(), 0o755) != 0 && *libc::__errno_location() != libc::EEXIST
                {
                    fail(ctx, 7);
                }
            }
            let src = fd_path(path_buf, bind_fds[i]);
            if libc::mount(
                src,
                target.as_ptr(),
                null,
                libc::MS_BIND | libc::MS_REC,
                std::ptr::null(),
            ) != 0
            {
                fail(ctx, 8);
            }
            libc::close(bind_fds[i]);
        }
        if let Some(cwd) = &m.cwd
            && libc::chdir(cwd.as_ptr()) != 0
        {
            fail(ctx, 9);
        }
        match ctx.then {
            Then::Exec { path, .. } => {
                let high = libc::fcntl(ctx.sock, libc::F_DUPFD, 10);
                let devnull = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
                if high < 0 || devnull < 0 {
                    fail(ctx, 10);
                }
                for fd in 0..3 {
                    libc::dup2(devnull, fd);
                }
                if libc::dup2(high, 3) != 3 {
                    fail(ctx, 10);
                }
                // Everything else closes on exec, the status pipe included: its end-of-file
                // tells the parent that exec succeeded.
                libc::syscall(
                    libc::SYS_close_range,
                    4u32,
                    u32::MAX,
                    libc::CLOSE_RANGE_CLOEXEC,
                );
                libc::execve(path.as_ptr(), ctx.argv.as_ptr(), ctx.envp.as_ptr());
                fail(ctx, 11);
            }
            Then::Placeholder { fd } => {
                if ctx.sock != *fd && libc::dup3(ctx.sock, *fd, 0) != *fd {
                    fail(ctx, 10);
                }
                libc::setsid();
                let mut rec = [0xffu8; 8];
                rec[4..].copy_from_slice(&0i32.to_le_bytes());
                libc::write(ctx.status, rec.as_ptr().cast(), 8);
                libc::close(ctx.status);
                loop {
                    libc::pause();
                }
            }
        }
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
