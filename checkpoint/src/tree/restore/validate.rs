//! Checking a decoded pod image before anything is created: it comes from a peer.

use super::super::model::{ProcState, TreeImage};
use crate::error::{Error, Result};
use crate::image::format::ParsedTree;
use std::collections::HashMap;

/// Most processes a pod image may hold.
const MAX_PROCS: usize = 8192;
/// Most objects.
const MAX_OBJECTS: usize = 1 << 16;
/// Highest descriptor number accepted.
const MAX_FD: i32 = 1 << 20;
/// Highest PID accepted (the kernel's `PID_MAX_LIMIT`).
const PID_MAX: i32 = 1 << 22;

fn bad(m: impl Into<String>) -> Error {
    Error::BadImage(m.into())
}

/// Everything the restore relies on: order (parents first, init first), unique IDs in range,
/// references inside the tables, one META per live process with matching IDs, CPU features.
pub(crate) fn validate(t: &TreeImage, p: &ParsedTree<'_>) -> Result<()> {
    let n = t.processes.len();
    if n == 0 || n > MAX_PROCS || t.objects.len() > MAX_OBJECTS {
        return Err(bad(format!(
            "{n} processes, {} objects: out of bounds",
            t.objects.len()
        )));
    }
    let root = &t.processes[0];
    if root.pid != 1 || root.ppid != 0 || root.state != ProcState::Running {
        return Err(bad("the first process is not a running PID 1"));
    }
    let mut index: HashMap<i32, usize> = HashMap::new();
    for (i, e) in t.processes.iter().enumerate() {
        if e.pid <= 0 || e.pid >= PID_MAX || index.insert(e.pid, i).is_some() {
            return Err(bad(format!("bad or repeated PID {}", e.pid)));
        }
        if i > 0 && !index.contains_key(&e.ppid) {
            return Err(bad(format!(
                "pid {}: parent {} not before it",
                e.pid, e.ppid
            )));
        }
    }
    for e in &t.processes {
        let leader = |id: i32| index.get(&id).map(|&k| &t.processes[k]);
        match leader(e.sid) {
            Some(l) if l.sid == e.sid => {}
            _ => {
                return Err(bad(format!(
                    "pid {}: no leader for session {}",
                    e.pid, e.sid
                )));
            }
        }
        match leader(e.pgid) {
            Some(l) if l.sid == e.sid && l.pgid == e.pgid => {}
            _ => {
                return Err(bad(format!(
                    "pid {}: no leader for group {}",
                    e.pid, e.pgid
                )));
            }
        }
        if e.pid != e.sid
            && index
                .get(&e.ppid)
                .is_none_or(|&k| t.processes[k].sid != e.sid)
        {
            return Err(bad(format!(
                "pid {}: session not inherited from its parent",
                e.pid
            )));
        }
        let mut last = -1;
        for f in &e.fds {
            if f.fd <= last || f.fd >= MAX_FD || f.object as usize >= t.objects.len() {
                return Err(bad(format!("pid {}: bad descriptor {}", e.pid, f.fd)));
            }
            last = f.fd;
        }
        for u in &e.shm {
            let r = t
                .shm
                .get(u.region as usize)
                .ok_or_else(|| bad("shared memory region out of range"))?;
            if u.start < r.base || u.end > r.base + r.len || u.start >= u.end {
                return Err(bad("shared memory mapping outside its region"));
            }
        }
    }
    let live: Vec<_> = t
        .processes
        .iter()
        .filter(|e| !matches!(e.state, ProcState::Defunct { .. }))
        .collect();
    if live.len() != p.procs.len() {
        return Err(bad(format!(
            "{} live processes but {} META frames",
            live.len(),
            p.procs.len()
        )));
    }
    let xcr0 = crate::sys::xcr0();
    for (e, img) in live.iter().zip(&p.procs) {
        crate::image::validate::validate(img)
            .map_err(|err| bad(format!("pid {}: {err}", e.pid)))?;
        let m = &img.meta;
        if m.pid != e.pid || m.threads.is_empty() || m.threads[0].tid != m.pid {
            return Err(bad(format!("pid {}: metadata of another process", e.pid)));
        }
        if m.xcr0 & !xcr0 != 0 {
            return Err(bad(format!(
                "saved on a CPU with XSAVE features {:#x} that this CPU lacks",
                m.xcr0 & !xcr0
            )));
        }
        if m.threads.iter().any(|th| th.tid <= 0 || th.tid >= PID_MAX) {
            return Err(bad(format!("pid {}: bad thread id", e.pid)));
        }
    }
    crate::procstate::validate(t)?;
    Ok(())
}
