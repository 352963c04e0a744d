//! The pod root's side of [`super::clone_root`]: wait for the maps, run the mount plan with raw
//! system calls, then exec the init or become an idle placeholder. Runs in a child of a
//! possibly multi-threaded process: no allocation, no locks, only data prepared before the
//! clone.

use super::{PreparedMounts, Then};
use std::os::fd::RawFd;

/// What the child needs: its pipes, the socket to keep, the plan and what to become.
pub(super) struct ChildCtx<'a> {
    pub go: RawFd,
    pub go_w: RawFd,
    pub status: RawFd,
    pub status_r: RawFd,
    pub sock: RawFd,
    pub mounts: &'a PreparedMounts,
    pub then: &'a Then,
    pub argv: &'a [*const libc::c_char],
    pub envp: &'a [*const libc::c_char],
}

/// Report `step` failed with the current errno, and exit.
///
/// # Safety
/// Only in the cloned child.
unsafe fn fail(ctx: &ChildCtx<'_>, step: usize) -> ! {
    // SAFETY: as for `fail_to`.
    unsafe { fail_to(ctx.status, step) }
}

/// [`fail`], reporting on status pipe `status`.
///
/// # Safety
/// Only in the cloned child.
unsafe fn fail_to(status: i32, step: usize) -> ! {
    // SAFETY: errno location is thread-local and valid; write from a local; _exit.
    unsafe {
        let errno = *libc::__errno_location();
        let mut rec = [0u8; 8];
        rec[..4].copy_from_slice(&(step as u32).to_le_bytes());
        rec[4..].copy_from_slice(&errno.to_le_bytes());
        libc::write(status, rec.as_ptr().cast(), 8);
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
pub(super) unsafe fn child(ctx: &ChildCtx<'_>, bind_fds: &mut [i32], path_buf: &mut [u8; 32]) -> ! {
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
        // The pod's own /dev/shm: POSIX shared memory and named semaphores are the pod's.
        if libc::mount(
            c"tmpfs".as_ptr(),
            c"/dev/shm".as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            c"mode=1777".as_ptr().cast(),
        ) != 0
            && *libc::__errno_location() != libc::ENOENT
        {
            fail(ctx, 12);
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
                // The socket goes to 3: if the status pipe has that number, move it first
                // (overwritten, it would report success before the exec).
                let status = if ctx.status == 3 {
                    libc::fcntl(ctx.status, libc::F_DUPFD_CLOEXEC, 4)
                } else {
                    ctx.status
                };
                if status < 0 {
                    fail(ctx, 10);
                }
                let high = libc::fcntl(ctx.sock, libc::F_DUPFD, 10);
                let devnull = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
                if high < 0 || devnull < 0 {
                    fail_to(status, 10);
                }
                for fd in 0..3 {
                    libc::dup2(devnull, fd);
                }
                if libc::dup2(high, 3) != 3 {
                    fail_to(status, 10);
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
                fail_to(status, 11);
            }
            Then::Placeholder { fd } => {
                // The socket takes number `fd`: if the status pipe has it, move the pipe first
                // (overwritten, it would report READY into the socket and close it).
                let status = if ctx.status == *fd {
                    libc::fcntl(ctx.status, libc::F_DUPFD_CLOEXEC, 0)
                } else {
                    ctx.status
                };
                if status < 0 {
                    fail(ctx, 10);
                }
                if ctx.sock != *fd && libc::dup3(ctx.sock, *fd, 0) != *fd {
                    fail_to(status, 10);
                }
                libc::setsid();
                let mut rec = [0xffu8; 8];
                rec[4..].copy_from_slice(&0i32.to_le_bytes());
                libc::write(status, rec.as_ptr().cast(), 8);
                libc::close(status);
                loop {
                    libc::pause();
                }
            }
        }
    }
}
