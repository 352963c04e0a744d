//! File locks held by a pod's processes: POSIX record locks (owned by the process, re-taken
//! by it at restore with an injected `fcntl(F_SETLK)`), and open-file-description and
//! `flock` locks (owned by the description, re-taken by the restorer on its copy of it).
//! They are read from the `lock:` lines of each descriptor's fdinfo.

use crate::error::{Result, SysContext};
use crate::proc;
use crate::restore::child::Child;
use crate::sys::{locks, nr};
use serde::{Deserialize, Serialize};

const FLOCK: u64 = 73;
use std::os::fd::OwnedFd;

/// Who owns a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Owner {
    /// A process (`fcntl(F_SETLK)`): the descriptor it was taken through.
    Process,
    /// An open file description (`fcntl(F_OFD_SETLK)`).
    Description,
    /// An open file description (`flock`).
    Flock,
}

/// One lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Lock {
    /// Its kind of owner.
    pub owner: Owner,
    /// Write (exclusive) or read (shared).
    pub write: bool,
    /// First byte.
    pub start: u64,
    /// Length (0: to the end of the file, whatever its size).
    pub len: u64,
    /// PID in the pod of the process that took it (0: not known or not in the pod).
    pub pid: i32,
}

/// A lock of an object of the tree (index in its object table).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct ObjectLock {
    /// The object.
    pub object: u32,
    /// The lock.
    pub lock: Lock,
}

/// A POSIX lock of one process, taken through descriptor `fd`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct RecordLock {
    /// The descriptor.
    pub fd: i32,
    /// The lock.
    pub lock: Lock,
}

/// Parse one `lock:` line of fdinfo (`1: POSIX  ADVISORY  WRITE 123 fe:00:456 10 29`).
fn parse(line: &str) -> std::result::Result<Lock, String> {
    let w: Vec<&str> = line.split_whitespace().collect();
    let bad = || format!("cannot read the lock `{}`", line.trim());
    // lock: N: KIND MODE TYPE PID DEV:INO START END
    let (kind, mode, ty, pid, start, end) = match w.as_slice() {
        ["lock:", _, kind, mode, ty, pid, _, start, end] => (*kind, *mode, *ty, *pid, *start, *end),
        _ => return Err(bad()),
    };
    let owner = match kind {
        "POSIX" => Owner::Process,
        "OFDLCK" => Owner::Description,
        "FLOCK" => Owner::Flock,
        "LEASE" | "DELEG" => {
            return Err(format!("holds a {} (not supported)", kind.to_lowercase()));
        }
        other => return Err(format!("holds a lock of kind {other} (not supported)")),
    };
    if mode != "ADVISORY" {
        return Err(format!(
            "holds a {} lock (not supported)",
            mode.to_lowercase()
        ));
    }
    let write = match ty {
        "WRITE" => true,
        "READ" => false,
        _ => return Err(bad()),
    };
    let start: u64 = start.parse().map_err(|_| bad())?;
    let len = match end {
        "EOF" => 0,
        e => e
            .parse::<u64>()
            .ok()
            .and_then(|e| (e + 1).checked_sub(start))
            .ok_or_else(bad)?,
    };
    // The PID as our /proc shows it; its own in the pod is what its owner will see.
    let pid = pid
        .parse::<i32>()
        .ok()
        .filter(|&p| p > 0)
        .and_then(crate::objects::fdinfo::pid_in_pod)
        .unwrap_or(0);
    Ok(Lock {
        owner,
        write,
        start,
        len,
        pid,
    })
}

/// The locks descriptor `fd` of `pid` holds, or why they cannot be carried.
pub(crate) fn of_fd(pid: i32, fd: i32) -> std::result::Result<Vec<Lock>, String> {
    let Ok(info) = proc::read(pid, &format!("fdinfo/{fd}")) else {
        return Ok(Vec::new());
    };
    info.lines()
        .filter(|l| l.starts_with("lock:"))
        .map(parse)
        .collect()
}

/// Take back a process's POSIX locks, inside it.
pub(crate) fn retake(c: &mut Child, locks: &[RecordLock]) -> Result<()> {
    for r in locks {
        let ty = if r.lock.write {
            libc::F_WRLCK
        } else {
            libc::F_RDLCK
        } as u16;
        let mut fl = Vec::with_capacity(32);
        fl.extend(ty.to_le_bytes());
        fl.extend((libc::SEEK_SET as u16).to_le_bytes());
        fl.extend([0u8; 4]);
        fl.extend(r.lock.start.to_le_bytes());
        fl.extend(r.lock.len.to_le_bytes());
        fl.extend([0u8; 8]);
        let p = c.put(0, &fl)?;
        c.main.call(
            &format!(
                "fcntl(F_SETLK) on fd {} ({}..+{}; held by someone else?)",
                r.fd, r.lock.start, r.lock.len
            ),
            nr::FCNTL,
            &[r.fd as u64, libc::F_SETLK as u64, p],
        )?;
    }
    Ok(())
}

/// Take back a `flock` inside the process that took it, on its descriptor `fd` of the locked
/// description (so the lock shows that process as its taker).
pub(crate) fn retake_flock(c: &mut Child, fd: i32, l: &Lock) -> Result<()> {
    let op = if l.write {
        libc::LOCK_EX
    } else {
        libc::LOCK_SH
    } | libc::LOCK_NB;
    c.main
        .call(
            &format!("flock fd {fd} (held by someone else?)"),
            FLOCK,
            &[fd as u64, op as u64],
        )
        .map(drop)
}

/// Take back a description's lock, on the restorer's copy of it.
pub(crate) fn retake_on(fd: &OwnedFd, l: &Lock) -> Result<()> {
    let what = || format!("re-take a lock (held by someone else?): {l:?}");
    match l.owner {
        Owner::Flock => locks::flock(fd, l.write).sys(what),
        Owner::Description => locks::ofd_lock(fd, l.write, l.start, l.len).sys(what),
        Owner::Process => Ok(()),
    }
}
