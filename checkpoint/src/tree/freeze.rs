//! Holding every thread of every process of a pod under ptrace.

use super::scan::{PodScan, scan};
use crate::error::{Error, Result};
use crate::freeze::{Frozen, freeze};
use crate::sys;
use std::collections::HashMap;

/// Every live process of a pod, frozen (defunct ones cannot be seized and need not be).
#[derive(Default)]
pub struct TreeFreeze {
    /// Host PID of the pod's init.
    pub root: i32,
    /// The frozen processes, in scan order.
    pub procs: Vec<Frozen>,
    /// State letter of each frozen process (host PID) just before we froze it (`T` for a
    /// stopped one: under our ptrace every process shows `t`).
    pub states: HashMap<i32, char>,
}

impl std::fmt::Debug for TreeFreeze {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pids: Vec<i32> = self.procs.iter().map(|p| p.pid).collect();
        write!(f, "TreeFreeze {{ root: {}, procs: {pids:?} }}", self.root)
    }
}

/// Freeze the pod whose init is `root`; returns the hold and a scan of the frozen tree.
/// Processes forked meanwhile are frozen too (until a scan finds nothing new); one that exits
/// meanwhile stays as defunct. On failure everything frozen so far is released.
pub fn freeze_tree(root: i32) -> Result<(TreeFreeze, PodScan)> {
    let mut hold = TreeFreeze {
        root,
        ..Default::default()
    };
    for _round in 0..64 {
        let s = scan(root)?;
        let mut fresh = false;
        for p in &s.procs {
            if p.defunct() || hold.procs.iter().any(|f| f.pid == p.host) {
                continue;
            }
            fresh = true;
            match freeze(p.host) {
                Ok(f) => {
                    hold.states.insert(p.host, p.state);
                    hold.procs.push(f);
                }
                // Exited meanwhile: the next scan shows it defunct or gone.
                Err(Error::Gone(_) | Error::NoProcess(_)) => {}
                Err(e) => {
                    let _ = hold.release();
                    return Err(e);
                }
            }
        }
        if !fresh {
            // Keep scan order for the frozen list.
            let order: Vec<i32> = s.procs.iter().map(|p| p.host).collect();
            hold.procs
                .sort_by_key(|f| order.iter().position(|&h| h == f.pid).unwrap_or(usize::MAX));
            return Ok((hold, s));
        }
    }
    let _ = hold.release();
    Err(Error::Refused {
        pid: root,
        reasons: vec!["the pod keeps forking new processes faster than it can be frozen".into()],
    })
}

impl TreeFreeze {
    /// Let every process run on.
    pub fn release(&mut self) -> Result<()> {
        let mut first = None;
        for f in self.procs.iter_mut().rev() {
            if let Err(e) = f.release() {
                first.get_or_insert(e);
            }
        }
        self.procs.clear();
        first.map_or(Ok(()), Err)
    }

    /// End the pod (SIGKILL to its init ends its PID namespace) and wait until every frozen
    /// thread is gone; the init's exit status stays for its parent.
    pub fn kill(&mut self) {
        let _ = sys::kill(self.root, libc::SIGKILL);
        for f in self.procs.iter_mut().rev() {
            f.kill();
        }
        self.procs.clear();
    }
}

/// Freeze the pod whose init is `root`, call `each(host PID, PID in the pod, syscall gadget)`
/// for every live process (to inject something), and let the pod run again — also when a
/// call failed (the first error is returned).
pub fn freeze_for_tracking(
    root: i32,
    each: &mut dyn FnMut(i32, i32, u64) -> Result<()>,
) -> Result<()> {
    let (mut hold, scan) = freeze_tree(root)?;
    let mut first = None;
    for f in &hold.procs {
        let Some(p) = scan.procs.iter().find(|p| p.host == f.pid) else {
            continue;
        };
        if let Err(e) = each(f.pid, p.pid, f.gadget) {
            first.get_or_insert(e);
            break;
        }
    }
    let released = hold.release();
    match first {
        Some(e) => Err(e),
        None => released,
    }
}
