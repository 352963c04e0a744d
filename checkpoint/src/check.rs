//! Deciding up front whether a process can be checkpointed, with every reason if not.

use crate::error::{Error, Result};
use crate::fdclass::{FdClass, classify};
use crate::proc;
use crate::vmas::{self, VmaClass};

/// The verdict of [`check`](crate::check).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// The process checked.
    pub pid: i32,
    /// Every reason the process cannot be checkpointed; empty if it can.
    pub reasons: Vec<String>,
}

impl CheckReport {
    /// True when the process can be checkpointed.
    pub fn ok(&self) -> bool {
        self.reasons.is_empty()
    }

    /// Turn a negative verdict into [`Error::Refused`].
    pub fn into_result(self) -> Result<()> {
        if self.ok() {
            Ok(())
        } else {
            Err(Error::Refused {
                pid: self.pid,
                reasons: self.reasons,
            })
        }
    }
}

/// Check whether `pid` can be checkpointed; lists every problem found.
pub fn check(pid: i32) -> Result<CheckReport> {
    let status = proc::status(pid, None)?;
    let mut reasons = Vec::new();
    let state = status.get("State").cloned().unwrap_or_default();
    if state.starts_with('Z') || state.starts_with('X') {
        return Err(Error::NoProcess(pid));
    }
    if crate::sys::euid() != 0 {
        reasons.push("checkpointing needs root (ptrace and PR_SET_MM_MAP)".into());
    }
    if pid == std::process::id() as i32 {
        reasons.push("a process cannot checkpoint itself".into());
    }
    if !status.contains_key("VmSize") {
        reasons.push("kernel thread (no user memory)".into());
        return Ok(CheckReport { pid, reasons });
    }
    match status.get("TracerPid").map(String::as_str) {
        Some("0") | None => {}
        Some(t) => reasons.push(format!("already traced by PID {t} (a foreign tracer)")),
    }
    if state.starts_with('T') || state.starts_with('t') {
        reasons.push(format!("process is stopped ({state})"));
    }
    if let Some(m) = status.get("Seccomp").filter(|m| m.as_str() != "0") {
        reasons.push(format!("seccomp filter active (mode {m})"));
    }
    for ns in ["pid", "mnt", "user"] {
        let theirs = proc::link(pid, &format!("ns/{ns}")).ok();
        let ours = std::fs::read_link(format!("/proc/self/ns/{ns}")).ok();
        if theirs.is_some() && theirs.as_deref() != ours.as_ref().and_then(|p| p.to_str()) {
            reasons.push(format!("runs in another {ns} namespace"));
        }
    }
    for (what, rel) in [("working directory", "cwd"), ("executable", "exe")] {
        if let Ok(l) = proc::link(pid, rel)
            && l.ends_with(" (deleted)")
        {
            reasons.push(format!("{what} {l} was deleted"));
        }
    }
    let kids = proc::children(pid);
    if !kids.is_empty() {
        let list: Vec<String> = kids.iter().map(i32::to_string).collect();
        reasons.push(format!("has child processes ({})", list.join(", ")));
    }
    if proc::read(pid, "timers")
        .map(|t| !t.trim().is_empty())
        .unwrap_or(false)
    {
        reasons.push("uses POSIX timers (timer_create)".into());
    }
    for fd in proc::fds(pid)? {
        match classify(pid, fd) {
            Ok(FdClass::Unsupported(r)) => reasons.push(r),
            Ok(_) => {}
            Err(Error::NoProcess(p)) => return Err(Error::NoProcess(p)),
            Err(_) => continue, // closed meanwhile
        }
        if let Ok((_, _, true)) = proc::fdinfo(pid, fd) {
            reasons.push(format!("fd {fd} holds a file lock"));
        }
    }
    for m in proc::maps(pid)? {
        if let VmaClass::Unsupported(r) = vmas::classify(&m) {
            reasons.push(r);
        }
    }
    Ok(CheckReport { pid, reasons })
}
