//! Running system calls inside a stopped tracee.
//!
//! The thread's registers are pointed at a `syscall` instruction (in the vDSO, or in a scratch
//! page during restore) with `orig_rax = -1` so the kernel does not apply its own restart
//! logic, then stepped with `PTRACE_SYSCALL` to the syscall-entry and syscall-exit stops. All
//! signals stay blocked meanwhile (the caller sets the mask). At the exit stop the result is in
//! `rax`; whatever instruction follows the `syscall` never runs, because the caller sets the
//! thread's final registers before letting it go.

use crate::error::{Error, Result, SysContext};
use crate::sys::Regs;
use crate::sys::ptrace::{self, Stop};

/// `PTRACE_EVENT_FORK`.
const EVENT_FORK: i32 = 1;
/// `PTRACE_EVENT_CLONE`.
const EVENT_CLONE: i32 = 3;

/// A stopped thread we can run system calls in.
#[derive(Debug, Clone)]
pub struct Tracee {
    /// Thread id.
    pub tid: i32,
    /// The process it belongs to (for error messages).
    pub pid: i32,
    /// Registers to start each injected call from.
    pub base: Regs,
    /// Address of a `syscall` instruction mapped in the tracee.
    pub gadget: u64,
    /// Threads and processes created by injected `clone3` calls, in order (their IDs in our
    /// PID namespace, from the clone/fork event).
    pub new_threads: Vec<i32>,
}

impl Tracee {
    /// Wrap a stopped thread; reads its registers as the base.
    pub fn new(pid: i32, tid: i32, gadget: u64) -> Result<Tracee> {
        let base = ptrace::get_regs(tid).map_err(|e| gone(pid, e))?;
        Ok(Tracee {
            tid,
            pid,
            base,
            gadget,
            new_threads: Vec::new(),
        })
    }

    /// Run system call `nr` with `args`; returns the raw result (negative errno on failure).
    pub fn raw(&mut self, nr: u64, args: &[u64]) -> Result<i64> {
        let mut r = self.base;
        r.rip = self.gadget;
        r.rax = nr;
        r.orig_rax = u64::MAX;
        let slots = [
            &mut r.rdi, &mut r.rsi, &mut r.rdx, &mut r.r10, &mut r.r8, &mut r.r9,
        ];
        for (slot, a) in slots.into_iter().zip(args) {
            *slot = *a;
        }
        ptrace::set_regs(self.tid, &r).map_err(|e| gone(self.pid, e))?;
        self.step_to_syscall_stop()?;
        self.step_to_syscall_stop()?;
        let out = ptrace::get_regs(self.tid).map_err(|e| gone(self.pid, e))?;
        Ok(out.rax as i64)
    }

    /// Like [`Tracee::raw`] but turns a negative result into an error naming `what`.
    pub fn call(&mut self, what: &str, nr: u64, args: &[u64]) -> Result<u64> {
        let r = self.raw(nr, args)?;
        if (-4095..0).contains(&r) {
            return Err(Error::Sys {
                op: format!("{what} (injected into {})", self.tid),
                source: std::io::Error::from_raw_os_error(-r as i32),
            });
        }
        Ok(r as u64)
    }

    fn step_to_syscall_stop(&mut self) -> Result<()> {
        ptrace::syscall(self.tid, 0).map_err(|e| gone(self.pid, e))?;
        loop {
            match ptrace::wait(self.tid).sys(|| format!("waitpid {}", self.tid))? {
                Stop::Syscall => return Ok(()),
                Stop::Event(EVENT_CLONE | EVENT_FORK, _) => {
                    let t = ptrace::event_msg(self.tid).sys(|| "PTRACE_GETEVENTMSG".into())?;
                    self.new_threads.push(t as i32);
                }
                Stop::Event(..) => {}
                Stop::Signal(sig) => {
                    tracing::warn!(tid = self.tid, sig, "signal during injection suppressed");
                }
                Stop::Exited => return Err(Error::Gone(self.pid)),
            }
            ptrace::syscall(self.tid, 0).map_err(|e| gone(self.pid, e))?;
        }
    }
}

/// Map a ptrace failure on a thread to "the process went away" when it did.
pub fn gone(pid: i32, e: std::io::Error) -> Error {
    if e.raw_os_error() == Some(libc::ESRCH) {
        Error::Gone(pid)
    } else {
        Error::Sys {
            op: format!("ptrace on {pid}"),
            source: e,
        }
    }
}

/// Find a `syscall` instruction (0f 05) in `code` that starts at `base`.
pub fn find_syscall_insn(code: &[u8], base: u64) -> Option<u64> {
    code.windows(2)
        .position(|w| w == [0x0f, 0x05])
        .map(|i| base + i as u64)
}
