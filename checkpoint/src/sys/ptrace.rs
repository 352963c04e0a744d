//! ptrace requests and waiting for tracee stops.

use super::{Regs, cvt};
use std::io;

const PTRACE_GETSIGMASK: u32 = 0x420a;
const PTRACE_SETSIGMASK: u32 = 0x420b;
const PTRACE_PEEKSIGINFO: u32 = 0x4209;
const PTRACE_GET_RSEQ_CONFIGURATION: u32 = 0x420f;
const NT_X86_XSTATE: usize = 0x202;
/// Size of the XSAVE buffer handed to the kernel (covers every feature of x86-64 CPUs).
pub const XSTATE_BUF: usize = 16384;

/// Options set on every tracee: syscall stops marked, clones followed, kill on tracer exit.
pub const SEIZE_OPTIONS: libc::c_int =
    libc::PTRACE_O_TRACESYSGOOD | libc::PTRACE_O_TRACECLONE | libc::PTRACE_O_EXITKILL;
/// Options for a process that must survive the tracer (checkpoint with leave-running).
pub const SEIZE_OPTIONS_SOFT: libc::c_int = libc::PTRACE_O_TRACESYSGOOD;

fn req(request: u32, tid: i32, addr: usize, data: usize) -> io::Result<libc::c_long> {
    // SAFETY: every caller passes addr/data that are either plain integers or pointers to
    // live, correctly sized buffers owned by the caller for the duration of the call.
    let r = unsafe { libc::ptrace(request as _, tid, addr, data) };
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// `PTRACE_SEIZE` with `options`.
pub fn seize(tid: i32, options: libc::c_int) -> io::Result<()> {
    req(libc::PTRACE_SEIZE, tid, 0, options as usize).map(drop)
}

/// `PTRACE_INTERRUPT`: stop a seized tracee.
pub fn interrupt(tid: i32) -> io::Result<()> {
    req(libc::PTRACE_INTERRUPT, tid, 0, 0).map(drop)
}

/// `PTRACE_SYSCALL`: run to the next syscall entry or exit, delivering `sig` (0 = none).
pub fn syscall(tid: i32, sig: i32) -> io::Result<()> {
    req(libc::PTRACE_SYSCALL, tid, 0, sig as usize).map(drop)
}

/// `PTRACE_CONT`.
pub fn cont(tid: i32, sig: i32) -> io::Result<()> {
    req(libc::PTRACE_CONT, tid, 0, sig as usize).map(drop)
}

/// `PTRACE_DETACH`, delivering `sig` (0 = none).
pub fn detach(tid: i32, sig: i32) -> io::Result<()> {
    req(libc::PTRACE_DETACH, tid, 0, sig as usize).map(drop)
}

/// Read the general registers.
pub fn get_regs(tid: i32) -> io::Result<Regs> {
    let mut r = Regs::default();
    req(libc::PTRACE_GETREGS, tid, 0, &mut r as *mut Regs as usize)?;
    Ok(r)
}

/// Write the general registers.
pub fn set_regs(tid: i32, r: &Regs) -> io::Result<()> {
    req(libc::PTRACE_SETREGS, tid, 0, r as *const Regs as usize).map(drop)
}

/// Read the XSAVE area (x87, SSE, AVX, …); returns the bytes the kernel filled.
pub fn get_xstate(tid: i32) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; XSTATE_BUF];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    req(
        libc::PTRACE_GETREGSET,
        tid,
        NT_X86_XSTATE,
        &mut iov as *mut libc::iovec as usize,
    )?;
    buf.truncate(iov.iov_len);
    Ok(buf)
}

/// Write the XSAVE area.
pub fn set_xstate(tid: i32, xs: &[u8]) -> io::Result<()> {
    let mut buf = xs.to_vec();
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    req(
        libc::PTRACE_SETREGSET,
        tid,
        NT_X86_XSTATE,
        &mut iov as *mut libc::iovec as usize,
    )
    .map(drop)
}

/// The blocked-signal mask of a stopped tracee.
pub fn get_sigmask(tid: i32) -> io::Result<u64> {
    let mut m = 0u64;
    req(PTRACE_GETSIGMASK, tid, 8, &mut m as *mut u64 as usize)?;
    Ok(m)
}

/// Set the blocked-signal mask of a stopped tracee.
pub fn set_sigmask(tid: i32, m: u64) -> io::Result<()> {
    req(PTRACE_SETSIGMASK, tid, 8, &m as *const u64 as usize).map(drop)
}

/// The pending signals (raw 128-byte siginfo each) of the thread (`shared` = process queue).
pub fn peek_siginfo(tid: i32, shared: bool) -> io::Result<Vec<Vec<u8>>> {
    #[repr(C)]
    struct Args {
        off: u64,
        flags: u32,
        nr: i32,
    }
    let mut out = Vec::new();
    let mut buf = vec![0u8; 128 * 32];
    loop {
        let args = Args {
            off: out.len() as u64,
            flags: shared as u32,
            nr: 32,
        };
        let n = req(
            PTRACE_PEEKSIGINFO,
            tid,
            &args as *const Args as usize,
            buf.as_mut_ptr() as usize,
        )? as usize;
        out.extend(buf[..n * 128].chunks(128).map(<[u8]>::to_vec));
        if n < 32 {
            return Ok(out);
        }
    }
}

/// rseq registration of a thread: (area address, area length, signature); `None` if none.
pub fn rseq_config(tid: i32) -> io::Result<Option<(u64, u32, u32)>> {
    #[repr(C)]
    #[derive(Default)]
    struct Conf {
        ptr: u64,
        size: u32,
        sig: u32,
        flags: u32,
        pad: u32,
    }
    let mut c = Conf::default();
    req(
        PTRACE_GET_RSEQ_CONFIGURATION,
        tid,
        std::mem::size_of::<Conf>(),
        &mut c as *mut Conf as usize,
    )?;
    Ok((c.ptr != 0).then_some((c.ptr, c.size, c.sig)))
}

/// The siginfo (128 bytes) of the signal a tracee is stopped for.
pub fn get_siginfo(tid: i32) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 128];
    req(libc::PTRACE_GETSIGINFO, tid, 0, buf.as_mut_ptr() as usize)?;
    Ok(buf)
}

/// The event message of the last ptrace event (e.g. the new thread's TID).
pub fn event_msg(tid: i32) -> io::Result<u64> {
    let mut m: libc::c_ulong = 0;
    req(
        libc::PTRACE_GETEVENTMSG,
        tid,
        0,
        &mut m as *mut libc::c_ulong as usize,
    )?;
    Ok(m)
}

/// What `waitpid` reported about a tracee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Syscall entry or exit stop (`PTRACE_O_TRACESYSGOOD`).
    Syscall,
    /// A `PTRACE_EVENT_*` stop; `PTRACE_EVENT_STOP` for interrupts and group stops.
    Event(i32, i32),
    /// A signal-delivery stop for this signal.
    Signal(i32),
    /// The thread exited or was killed.
    Exited,
}

/// Wait for the next state change of one tracee.
pub fn wait(tid: i32) -> io::Result<Stop> {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out pointer for the call.
        let r = unsafe { libc::waitpid(tid, &mut status, libc::__WALL) };
        if r == -1 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        break;
    }
    if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
        return Ok(Stop::Exited);
    }
    let sig = libc::WSTOPSIG(status);
    let event = status >> 16;
    Ok(if sig == libc::SIGTRAP | 0x80 {
        Stop::Syscall
    } else if event != 0 {
        Stop::Event(event, sig)
    } else {
        Stop::Signal(sig)
    })
}

/// Reap a child without blocking on anything but it (used for helper processes).
pub fn reap(pid: i32) -> io::Result<i32> {
    let mut status = 0;
    // SAFETY: status is a valid out pointer.
    cvt(unsafe { libc::waitpid(pid, &mut status, 0) } as i64)?;
    Ok(status)
}

/// Wait until process `pid` (our own child) has exited, without reaping it, so its parent —
/// us — still collects its status as usual.
pub fn wait_exited_nowait(pid: i32) -> io::Result<()> {
    loop {
        // SAFETY: siginfo_t is plain data; zeroed is a valid value for the out parameter.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: info is a valid out pointer for waitid.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT | libc::__WALL,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}
