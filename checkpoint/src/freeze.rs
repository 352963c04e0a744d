//! Stopping every thread of a process with ptrace, and letting it go again.

use crate::error::{Error, Result, SysContext};
use crate::inject::{Tracee, gone};
use crate::proc;
use crate::restart::resume_regs;
use crate::sys::ptrace::{self, Stop};
use crate::sys::{self, Regs, nr};

/// `PTRACE_EVENT_STOP`.
pub const EVENT_STOP: i32 = 128;

/// One stopped thread.
#[derive(Debug, Clone)]
pub struct FrozenThread {
    /// Thread id.
    pub tid: i32,
    /// Registers as stopped.
    pub regs: Regs,
    /// Its own blocked-signal mask (we block everything while it is frozen).
    pub sigmask: u64,
    /// Signals the kernel had already dequeued for delivery when it stopped (raw siginfo).
    pub delivered: Vec<Vec<u8>>,
}

/// A process whose threads are all stopped under our ptrace.
pub struct Frozen {
    /// The process.
    pub pid: i32,
    /// Its threads, leader first.
    pub threads: Vec<FrozenThread>,
    /// A scratch page we mapped into it, to unmap on release.
    pub scratch: Option<u64>,
    /// Address of a `syscall` instruction in it.
    pub gadget: u64,
    done: bool,
}

/// Seize and stop every thread of `pid`. Leaves nothing behind on failure.
pub fn freeze(pid: i32) -> Result<Frozen> {
    let mut f = Frozen {
        pid,
        threads: Vec::new(),
        scratch: None,
        gadget: 0,
        done: false,
    };
    let mut seized: Vec<i32> = Vec::new();
    loop {
        let new: Vec<i32> = proc::tasks(pid)?
            .into_iter()
            .filter(|t| !seized.contains(t))
            .collect();
        if new.is_empty() {
            break;
        }
        for t in new {
            match ptrace::seize(t, ptrace::SEIZE_OPTIONS_SOFT) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) && t != pid => continue,
                Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                    f.abort(&seized);
                    let st = proc::status(pid, Some(t)).unwrap_or_default();
                    let field = |k: &str| st.get(k).cloned().unwrap_or_default();
                    if field("State").starts_with('Z') || field("State").starts_with('X') {
                        return Err(Error::Gone(pid));
                    }
                    return Err(Error::Refused {
                        pid,
                        reasons: vec![format!(
                            "thread {t} cannot be traced (tracer {}, state {}): a foreign tracer?",
                            field("TracerPid"),
                            field("State")
                        )],
                    });
                }
                Err(e) => {
                    f.abort(&seized);
                    return Err(gone(pid, e));
                }
            }
            seized.push(t);
            if let Err(e) = ptrace::interrupt(t) {
                f.abort(&seized);
                return Err(gone(pid, e));
            }
        }
    }
    for &t in &seized {
        match stop_one(pid, t) {
            Ok(Some(th)) => f.threads.push(th),
            Ok(None) if t != pid => {}
            Ok(None) => {
                f.abort(&seized);
                return Err(Error::Gone(pid));
            }
            Err(e) => {
                f.abort(&seized);
                return Err(e);
            }
        }
    }
    tracing::debug!(pid, threads = f.threads.len(), "frozen");
    Ok(f)
}

fn stop_one(pid: i32, t: i32) -> Result<Option<FrozenThread>> {
    let mut delivered = Vec::new();
    loop {
        match ptrace::wait(t).sys(|| format!("waitpid {t}"))? {
            Stop::Event(EVENT_STOP, _) => break,
            Stop::Signal(_) => {
                delivered.push(ptrace::get_siginfo(t).map_err(|e| gone(pid, e))?);
                break;
            }
            Stop::Exited => return Ok(None),
            Stop::Event(..) | Stop::Syscall => {
                ptrace::cont(t, 0).map_err(|e| gone(pid, e))?;
            }
        }
    }
    let regs = ptrace::get_regs(t).map_err(|e| gone(pid, e))?;
    let sigmask = ptrace::get_sigmask(t).map_err(|e| gone(pid, e))?;
    ptrace::set_sigmask(t, !0).map_err(|e| gone(pid, e))?;
    Ok(Some(FrozenThread {
        tid: t,
        regs,
        sigmask,
        delivered,
    }))
}

impl Frozen {
    fn abort(&mut self, seized: &[i32]) {
        for &t in seized {
            if let Some(th) = self.threads.iter().find(|th| th.tid == t) {
                let _ = ptrace::set_sigmask(t, th.sigmask);
            }
            let _ = ptrace::detach(t, 0);
        }
        self.done = true;
    }

    /// Undo our changes and let every thread run on from where it stopped.
    pub fn release(&mut self) -> Result<()> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        let mut first_err = None;
        if let Some(addr) = self.scratch.take() {
            let r = Tracee::new(self.pid, self.pid, self.gadget)
                .and_then(|mut t| t.call("munmap scratch", nr::MUNMAP, &[addr, 4096]));
            first_err = r.err();
        }
        for th in &self.threads {
            let mut reinjected = false;
            for si in th.delivered.iter().filter(|_| self.gadget != 0) {
                let sig = i32::from_le_bytes(si[..4].try_into().unwrap());
                if requeue(self.pid, th.tid, self.gadget, sig).is_ok() {
                    reinjected = true;
                }
            }
            let regs = if reinjected {
                th.regs
            } else {
                resume_regs(&th.regs, true)
            };
            let r = ptrace::set_regs(th.tid, &regs)
                .and_then(|_| ptrace::set_sigmask(th.tid, th.sigmask))
                .and_then(|_| ptrace::detach(th.tid, 0));
            if let Err(e) = r {
                first_err.get_or_insert(gone(self.pid, e));
            }
        }
        match first_err {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }

    /// Kill the process (after a successful checkpoint) and wait until its threads are gone.
    pub fn kill(&mut self) {
        self.done = true;
        let _ = sys::kill(self.pid, libc::SIGKILL);
        // If we are also its parent, leave the leader's exit status for us to collect.
        let ours = proc::stat_fields(self.pid)
            .map(|f| proc::stat_field(&f, 4) == u64::from(std::process::id()))
            .unwrap_or(false);
        // Non-leader threads first: the leader's exit is reported only after theirs.
        for th in self.threads.iter().rev() {
            if ours && th.tid == self.pid {
                let _ = ptrace::wait_exited_nowait(self.pid);
                continue;
            }
            while let Ok(s) = ptrace::wait(th.tid) {
                if s == Stop::Exited {
                    break;
                }
            }
        }
    }
}

/// Put a signal that was already dequeued back into the thread's queue, from inside it.
fn requeue(pid: i32, tid: i32, gadget: u64, sig: i32) -> Result<()> {
    let mut t = Tracee::new(pid, tid, gadget)?;
    t.call("tgkill", nr::TGKILL, &[pid as u64, tid as u64, sig as u64])
        .map(drop)
}

impl Drop for Frozen {
    fn drop(&mut self) {
        if let Err(e) = self.release() {
            tracing::warn!(pid = self.pid, "releasing the process failed: {e}");
        }
    }
}
