//! Every `unsafe` line of the crate lives under this module: thin, checked wrappers around
//! ptrace, `process_vm_readv`/`writev`, `mmap`, `fork`/`clone3` and a few raw system calls.
//! The rest of the crate is safe Rust.

pub mod anon;
pub mod fds;
pub mod locks;
pub mod mem;
pub mod podns;
pub mod ptrace;
pub mod sock;
pub mod spawn;
pub mod uffd;

use serde::{Deserialize, Serialize};
use std::io;

/// x86-64 system call numbers used by injection.
#[allow(missing_docs)]
pub mod nr {
    pub const CLOSE: u64 = 3;
    pub const CLOSE_RANGE: u64 = 436;
    pub const LSEEK: u64 = 8;
    pub const MMAP: u64 = 9;
    pub const MPROTECT: u64 = 10;
    pub const MUNMAP: u64 = 11;
    pub const BRK: u64 = 12;
    pub const RT_SIGACTION: u64 = 13;
    pub const NANOSLEEP: u64 = 35;
    pub const GETITIMER: u64 = 36;
    pub const SETITIMER: u64 = 38;
    pub const CHDIR: u64 = 80;
    pub const UMASK: u64 = 95;
    pub const SETRESUID: u64 = 117;
    pub const SETRESGID: u64 = 119;
    pub const SETGROUPS: u64 = 116;
    pub const SETSID: u64 = 112;
    pub const RT_SIGQUEUEINFO: u64 = 129;
    pub const SIGALTSTACK: u64 = 131;
    pub const PERSONALITY: u64 = 135;
    pub const PRCTL: u64 = 157;
    pub const ARCH_PRCTL: u64 = 158;
    pub const TGKILL: u64 = 234;
    pub const SET_TID_ADDRESS: u64 = 218;
    pub const RESTART_SYSCALL: u64 = 219;
    pub const CLOCK_NANOSLEEP: u64 = 230;
    pub const OPENAT: u64 = 257;
    pub const SET_ROBUST_LIST: u64 = 273;
    pub const DUP3: u64 = 292;
    pub const RT_TGSIGQUEUEINFO: u64 = 297;
    pub const RSEQ: u64 = 334;
    pub const CLONE3: u64 = 435;
    pub const IOCTL: u64 = 16;
    pub const READ: u64 = 0;
    pub const WRITE: u64 = 1;
    pub const FCNTL: u64 = 72;
    pub const MINCORE: u64 = 27;
    pub const RECVMSG: u64 = 47;
    pub const SETPGID: u64 = 109;
    pub const CAPSET: u64 = 126;
    pub const EXIT_GROUP: u64 = 231;
    pub const MKNODAT: u64 = 259;
    pub const UNLINKAT: u64 = 263;
}

/// The x86-64 general registers as `PTRACE_GETREGS` lays them out (`struct user_regs_struct`).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Regs {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub orig_rax: u64,
    pub rip: u64,
    pub cs: u64,
    pub eflags: u64,
    pub rsp: u64,
    pub ss: u64,
    pub fs_base: u64,
    pub gs_base: u64,
    pub ds: u64,
    pub es: u64,
    pub fs: u64,
    pub gs: u64,
}

pub(crate) fn cvt(r: i64) -> io::Result<i64> {
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Send a signal to a process.
pub fn kill(pid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: kill has no memory arguments.
    cvt(unsafe { libc::kill(pid, sig) } as i64).map(drop)
}

/// `get_robust_list(tid)`: (head, length).
pub fn robust_list(tid: i32) -> io::Result<(u64, u64)> {
    let mut head: u64 = 0;
    let mut len: u64 = 0;
    // SAFETY: both out pointers are valid for writes of a pointer-sized value.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_get_robust_list,
            tid,
            &mut head as *mut u64,
            &mut len as *mut u64,
        )
    })?;
    Ok((head, len))
}

/// `prlimit64(pid, resource)` write.
pub fn set_rlimit(pid: i32, res: u32, soft: u64, hard: u64) -> io::Result<()> {
    let new = libc::rlimit64 {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: new is a valid pointer, the old-limit pointer is null.
    cvt(unsafe { libc::prlimit64(pid, res as _, &new, std::ptr::null_mut()) } as i64).map(drop)
}

/// The effective UID of the calling process.
pub fn euid() -> u32 {
    // SAFETY: geteuid cannot fail and has no arguments.
    unsafe { libc::geteuid() }
}

/// The effective GID of the calling process.
pub fn egid() -> u32 {
    // SAFETY: getegid cannot fail and has no arguments.
    unsafe { libc::getegid() }
}

/// XCR0: the XSAVE features this CPU and kernel enable.
pub fn xcr0() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: xgetbv(0) is available on every x86-64 CPU with OSXSAVE, which the kernel
    // requires for the XSAVE register set we read; it only writes eax/edx.
    unsafe {
        std::arch::asm!("xgetbv", in("ecx") 0u32, out("eax") lo, out("edx") hi,
            options(nomem, nostack, preserves_flags));
    }
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Make the calling process a child subreaper so orphaned restored processes are reaped
/// by it (useful for tests and daemons; PID 1 here does not reap orphans).
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    cvt(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } as i64).map(drop)
}

/// Wait up to `timeout` for child `pid` to exit and reap it; its wait status, or `None` if it
/// is still running.
pub fn wait_exit(pid: i32, timeout: std::time::Duration) -> io::Result<Option<i32>> {
    let start = std::time::Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: status is a valid out pointer.
        let r =
            cvt(unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG | libc::__WALL) } as i64)?;
        if r == pid as i64 {
            return Ok(Some(status));
        }
        if start.elapsed() >= timeout {
            return Ok(None);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Reserve `len` bytes of storage for `file` (best effort: errors are ignored by callers).
pub fn fallocate(file: &std::fs::File, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: fallocate on a descriptor we own, integer arguments only.
    cvt(unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len as libc::off_t) } as i64).map(drop)
}

/// Nice value of a thread.
pub fn get_nice(tid: i32) -> io::Result<i32> {
    // SAFETY: raw getpriority with integer arguments; returns 20 - nice on success.
    let r = cvt(unsafe { libc::syscall(libc::SYS_getpriority, libc::PRIO_PROCESS, tid) })?;
    Ok(20 - r as i32)
}

/// Set the nice value of a thread.
pub fn set_nice(tid: i32, nice: i32) -> io::Result<()> {
    // SAFETY: setpriority with integer arguments only.
    cvt(unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) } as i64).map(drop)
}

/// CPU affinity mask of a thread (raw bytes).
pub fn get_affinity(tid: i32) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 128];
    // SAFETY: buf is valid for 128 bytes of writes; raw syscall returns the bytes filled.
    let n = cvt(unsafe {
        libc::syscall(
            libc::SYS_sched_getaffinity,
            tid,
            buf.len(),
            buf.as_mut_ptr(),
        )
    })?;
    buf.truncate(n as usize);
    Ok(buf)
}

/// Set the CPU affinity mask of a thread.
pub fn set_affinity(tid: i32, mask: &[u8]) -> io::Result<()> {
    // SAFETY: mask is valid for mask.len() bytes of reads.
    cvt(unsafe { libc::syscall(libc::SYS_sched_setaffinity, tid, mask.len(), mask.as_ptr()) })
        .map(drop)
}
