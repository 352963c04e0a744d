//! Creating the empty placeholder process that a restore turns into the saved one.

use super::cvt;
use std::io;

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Size of `struct clone_args` (version 2, with `set_tid` and `cgroup`).
pub const CLONE_ARGS_SIZE: usize = std::mem::size_of::<CloneArgs>();

/// Bytes of a `struct clone_args` for a thread created by injection (`set_tid` points at a
/// `pid_t` in the target's memory, or 0).
pub fn thread_clone_args(set_tid_ptr: u64) -> Vec<u8> {
    let flags = (libc::CLONE_VM
        | libc::CLONE_FS
        | libc::CLONE_FILES
        | libc::CLONE_SIGHAND
        | libc::CLONE_THREAD
        | libc::CLONE_SYSVSEM) as u64;
    let words = [
        flags,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        set_tid_ptr,
        u64::from(set_tid_ptr != 0),
        0,
    ];
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// Bytes of a `struct clone_args` for a child process created by injection in a placeholder
/// (fork semantics, SIGCHLD to the parent; `set_tid` points at one `pid_t` in the target).
pub fn process_clone_args(set_tid_ptr: u64) -> Vec<u8> {
    let words = [0, 0, 0, 0, libc::SIGCHLD as u64, 0, 0, 0, set_tid_ptr, 1, 0];
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// Start an orphaned, idle process (its parent exits at once, so it is reparented to the
/// nearest subreaper or init) with PID `want` if given, all descriptors closed.
/// Returns its PID. The process loops in `pause()` until a tracer takes it over.
pub fn spawn_placeholder(want: Option<i32>) -> io::Result<i32> {
    let mut fds = [0i32; 2];
    // SAFETY: fds is a valid array of two ints.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } as i64)?;
    let tid: i32 = want.unwrap_or(0);
    let args = CloneArgs {
        exit_signal: libc::SIGCHLD as u64,
        set_tid: if want.is_some() {
            &tid as *const i32 as u64
        } else {
            0
        },
        set_tid_size: u64::from(want.is_some()),
        ..Default::default()
    };
    // SAFETY: fork in a possibly multi-threaded process: the child below only makes raw
    // system calls (async-signal-safe) on data prepared before the fork, then exits.
    let fork_pid = unsafe { libc::fork() };
    if fork_pid == 0 {
        // SAFETY: raw clone3 with a valid clone_args; in the new process only raw syscalls
        // follow; the intermediate reports the result on the pipe and exits at once.
        unsafe {
            let r = libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, CLONE_ARGS_SIZE);
            if r == 0 {
                libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32);
                loop {
                    libc::syscall(libc::SYS_pause);
                }
            }
            let v: i64 = if r < 0 {
                -i64::from(*libc::__errno_location())
            } else {
                r
            };
            libc::write(fds[1], &v as *const i64 as *const libc::c_void, 8);
            libc::_exit(0);
        }
    }
    // SAFETY: closing our copy of the write end, which we own.
    unsafe { libc::close(fds[1]) };
    if fork_pid < 0 {
        let e = io::Error::last_os_error();
        // SAFETY: closing the read end we own.
        unsafe { libc::close(fds[0]) };
        return Err(e);
    }
    let mut v: i64 = 0;
    // SAFETY: reading 8 bytes into v, then closing the read end we own.
    let n = unsafe {
        let n = libc::read(fds[0], &mut v as *mut i64 as *mut libc::c_void, 8);
        libc::close(fds[0]);
        n
    };
    super::ptrace::reap(fork_pid)?;
    if n != 8 {
        return Err(io::Error::other("placeholder helper died"));
    }
    if v < 0 {
        return Err(io::Error::from_raw_os_error(-v as i32));
    }
    Ok(v as i32)
}

/// Fork a benchmark workload: a child that takes user and group `uid` (if given), dirties
/// `bytes` of fresh anonymous memory (every page written), closes every descriptor above 2 and
/// then idles. Returns once the memory is dirty. The child is ours to reap.
pub fn spawn_dirty(bytes: usize, uid: Option<u32>) -> io::Result<i32> {
    let mut fds = [0i32; 2];
    // SAFETY: fds is a valid array of two ints.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } as i64)?;
    // SAFETY: the child only makes raw system calls and writes to memory it just mapped.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: raw credential calls, mapping fresh memory and writing inside it; then raw
        // syscalls only.
        unsafe {
            if let Some(id) = uid {
                let none: [libc::gid_t; 0] = [];
                if libc::syscall(libc::SYS_setgroups, 0, none.as_ptr()) != 0
                    || libc::syscall(libc::SYS_setresgid, id, id, id) != 0
                    || libc::syscall(libc::SYS_setresuid, id, id, id) != 0
                {
                    libc::_exit(1);
                }
            }
            let p = libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            ) as *mut u64;
            if p as *mut libc::c_void == libc::MAP_FAILED {
                libc::_exit(1);
            }
            let words = bytes / 8;
            let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
            for i in (0..words).step_by(64) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                p.add(i).write_volatile(x);
            }
            let w = fds[1] as u32;
            if w > 3 {
                libc::syscall(libc::SYS_close_range, 3u32, w - 1, 0u32);
            }
            libc::syscall(libc::SYS_close_range, w + 1, u32::MAX, 0u32);
            libc::write(fds[1], b"x".as_ptr().cast(), 1);
            libc::close(fds[1]);
            loop {
                libc::syscall(libc::SYS_pause);
            }
        }
    }
    // SAFETY: closing our write end; reading one byte into a local; closing the read end.
    let n = unsafe {
        libc::close(fds[1]);
        let mut b = 0u8;
        let n = if pid > 0 {
            libc::read(fds[0], (&mut b as *mut u8).cast(), 1)
        } else {
            -1
        };
        // Wait for end-of-file: the child has closed its last extra descriptor.
        while pid > 0 && libc::read(fds[0], (&mut b as *mut u8).cast(), 1) > 0 {}
        libc::close(fds[0]);
        n
    };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if n != 1 {
        return Err(io::Error::other("benchmark workload failed"));
    }
    Ok(pid)
}
