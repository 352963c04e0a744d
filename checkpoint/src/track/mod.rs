//! Dirty-page tracking of a running pod, for iterative pre-copy and incremental snapshots.
//!
//! [`DirtyTracker::start`] freezes the pod for a moment, creates a userfaultfd inside every
//! process (an injected `userfaultfd(UFFD_USER_MODE_ONLY)`, taken out with `pidfd_getfd` and
//! closed in the process again), lets the pod run, registers each private mapping for async
//! write-protect and protects every page *with content*. From then on
//! [`DirtyTracker::written`] returns the pages a process wrote since the previous call: the
//! protected pages written again (a `PAGEMAP_SCAN` of the kernel's fast path, which protects
//! them again) and the pages that have content now and had none at the previous call (a
//! write to a page never touched: a second, read-only `PAGEMAP_SCAN`, which `ranges` of the
//! dump would make anyway), protected in turn. Nothing is ever delivered to the task: in
//! async mode the kernel resolves a write to a protected page by itself (a minor fault).
//!
//! Pages without content are never protected: protecting one installs a marker in its page
//! table entry, which the kernel then reports as a swapped page — a 512 MiB reservation the
//! task never touched would have read as 512 MiB of content (carried as zeros and made
//! resident on the other side) and grown page tables for all of it.
//!
//! What the tracker cannot vouch for is reported as wholly dirty, never as clean: a process
//! forked after the start, a mapping it could not register (then taken whole every time),
//! a process whose address space was replaced (`execve`: the old userfaultfd is then bound
//! to a dead address space) or a scan that failed. Shared mappings are not tracked (their
//! pages may be written by other processes); the dumps take them whole.
//!
//! Besides, the tracker remembers what the other side holds of each process (the pages
//! rounds sent since the last dump, or the pages the last dump had): a delta dump also
//! takes every page the process has that the other side does not hold, so a page that came
//! into being without a write the tracker saw is never missing on the other side.
//!
//! Dropping the tracker unregisters everything, which removes the protection again.

mod base;
mod round;

pub use base::{PageBase, flatten};
pub use round::{RoundStats, write_round};

use crate::error::{Result, SysContext, io_err};
use crate::inject::Tracee;
use crate::proc::{self, MapLine};
use crate::sys::{fds, nr, uffd};
use crate::tree::freeze_for_tracking;
use std::collections::HashMap;
use std::fs::File;
use std::os::fd::OwnedFd;

/// Pages a process wrote, as sorted, disjoint, page-aligned `[start, end)` ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dirty {
    /// Everything is to be taken (the tracker cannot tell).
    pub whole: bool,
    /// The written ranges (meaningful when not `whole`).
    pub ranges: Vec<(u64, u64)>,
}

impl Dirty {
    /// Everything.
    pub fn whole() -> Dirty {
        Dirty {
            whole: true,
            ranges: Vec::new(),
        }
    }

    /// The parts of `wanted` (sorted `(addr, len)` ranges) that are dirty.
    pub fn select(&self, wanted: &[(u64, usize)]) -> Vec<(u64, usize)> {
        if self.whole {
            return wanted.to_vec();
        }
        intersect(wanted, &self.ranges)
    }

    /// Bytes in the written ranges.
    pub fn bytes(&self) -> u64 {
        self.ranges.iter().map(|r| r.1 - r.0).sum()
    }
}

/// `a` (sorted `(addr, len)`) ∩ `b` (sorted, disjoint `[start, end)`), as `(addr, len)`.
pub(crate) fn intersect(a: &[(u64, usize)], b: &[(u64, u64)]) -> Vec<(u64, usize)> {
    let mut out = Vec::new();
    let mut j = 0;
    for &(s, l) in a {
        let e = s + l as u64;
        while j < b.len() && b[j].1 <= s {
            j += 1;
        }
        let mut k = j;
        while k < b.len() && b[k].0 < e {
            let (x, y) = (s.max(b[k].0), e.min(b[k].1));
            if x < y {
                out.push((x, (y - x) as usize));
            }
            k += 1;
        }
    }
    out
}

/// `a` minus `b`, both sorted, disjoint `[start, end)` ranges.
pub(crate) fn subtract(a: &[(u64, u64)], b: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for &(s, e) in a {
        let mut at = s;
        let i = b.partition_point(|h| h.1 <= s);
        for &(hs, he) in &b[i..] {
            if hs >= e {
                break;
            }
            if hs > at {
                out.push((at, hs));
            }
            at = at.max(he);
        }
        if at < e {
            out.push((at, e));
        }
    }
    out
}

/// Sort and merge `[start, end)` ranges.
pub(crate) fn normalize(mut r: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    r.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(r.len());
    for (s, e) in r {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// One tracked process.
struct Tracked {
    /// Its PID inside the pod.
    pod_pid: i32,
    uffd: OwnedFd,
    /// Opened at the start: bound to the address space the userfaultfd tracks.
    pagemap: File,
    /// Registered `[start, end)` ranges.
    registered: Vec<(u64, u64)>,
    /// The pages of registered ranges that had content at the last scan (protected then).
    populated: Vec<(u64, u64)>,
    /// The trackable mappings of a file at the last registration (the others are anonymous).
    file_backed: Vec<(u64, u64)>,
    /// Ranges to report at the next call besides what the scan finds.
    pending: Vec<(u64, u64)>,
    /// What the other side holds of this process (sorted, disjoint): pages sent in rounds
    /// since the last dump, or the pages the last dump had.
    held: Vec<(u64, u64)>,
    /// The tracker lost this process (it is reported whole from now on).
    lost: bool,
}

/// Tracks the pages every process of a pod writes (see the module docs).
pub struct DirtyTracker {
    root: i32,
    procs: HashMap<i32, Tracked>,
}

impl std::fmt::Debug for DirtyTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pids: Vec<i32> = self.procs.keys().copied().collect();
        write!(f, "DirtyTracker {{ root: {}, procs: {pids:?} }}", self.root)
    }
}

/// Whether a mapping's pages are tracked (private memory with content of its own).
fn trackable(m: &MapLine) -> bool {
    !m.shared() && !m.path.starts_with("[v") && m.end > m.start
}

impl DirtyTracker {
    /// Start tracking every live process of the pod whose init is `root` (host PID). The
    /// pod is frozen only while a userfaultfd is created in each process.
    pub fn start(root: i32) -> Result<DirtyTracker> {
        let mut made: Vec<(i32, i32, OwnedFd)> = Vec::new();
        let made_ref = &mut made;
        freeze_for_tracking(root, &mut |host, pod_pid, gadget| {
            let fd = create_uffd_in(host, gadget)?;
            made_ref.push((host, pod_pid, fd));
            Ok(())
        })?;
        let mut procs = HashMap::new();
        for (host, pod_pid, fd) in made {
            uffd::enable_wp_async(&fd)
                .sys(|| "UFFDIO_API (async write-protect; Linux ≥ 6.7)".into())?;
            let path = format!("/proc/{host}/pagemap");
            let pagemap = File::open(&path).map_err(io_err(&path))?;
            let mut t = Tracked {
                pod_pid,
                uffd: fd,
                pagemap,
                registered: Vec::new(),
                populated: Vec::new(),
                file_backed: Vec::new(),
                pending: Vec::new(),
                held: Vec::new(),
                lost: false,
            };
            t.register_new(host);
            // Protect every page with content: round 0 then reads them all after this.
            if let Err(e) = t.scan() {
                tracing::warn!(host, "dirty tracking could not protect the process: {e}");
                t.lost = true;
            }
            procs.insert(host, t);
        }
        tracing::debug!(root, processes = procs.len(), "dirty tracking started");
        Ok(DirtyTracker { root, procs })
    }

    /// The pod's init (host PID).
    pub fn root(&self) -> i32 {
        self.root
    }

    /// (host PID, PID in the pod) of every tracked process.
    pub fn tracked(&self) -> Vec<(i32, i32)> {
        let mut v: Vec<(i32, i32)> = self.procs.iter().map(|(h, t)| (*h, t.pod_pid)).collect();
        v.sort_unstable_by_key(|p| p.1);
        v
    }

    /// The pages process `host` wrote since the previous call (or since the start), and
    /// protect them again. Unknown or lost processes are reported whole.
    pub fn written(&mut self, host: i32) -> Dirty {
        let Some(t) = self.procs.get_mut(&host) else {
            return Dirty::whole();
        };
        if t.lost {
            return Dirty::whole();
        }
        let mut ranges = std::mem::take(&mut t.pending);
        ranges.extend(t.register_new(host));
        match t.scan() {
            Ok(w) if !t.lost => {
                ranges.extend(w);
                Dirty {
                    whole: false,
                    ranges: normalize(ranges),
                }
            }
            Ok(_) => Dirty::whole(),
            Err(e) => {
                tracing::warn!(host, "dirty tracking lost the process: {e}");
                t.lost = true;
                Dirty::whole()
            }
        }
    }

    /// The other side now holds these pages of `host` too (a round sent them).
    pub fn note_held(&mut self, host: i32, ranges: impl IntoIterator<Item = (u64, u64)>) {
        if let Some(t) = self.procs.get_mut(&host) {
            t.held.extend(ranges);
            t.held = normalize(std::mem::take(&mut t.held));
        }
    }

    /// The other side holds exactly these pages of `host` (a dump had them).
    pub fn set_held(&mut self, host: i32, ranges: impl IntoIterator<Item = (u64, u64)>) {
        if let Some(t) = self.procs.get_mut(&host) {
            t.held = normalize(ranges.into_iter().collect());
        }
    }

    /// The parts of `content` (sorted `(addr, len)`) the other side does not hold: a page
    /// that came into being without a write the tracker saw (whatever the kernel did) still
    /// goes. All of `content` for a process not tracked.
    pub fn not_held(&self, host: i32, content: &[(u64, usize)]) -> Vec<(u64, usize)> {
        let Some(t) = self.procs.get(&host) else {
            return content.to_vec();
        };
        let wanted: Vec<(u64, u64)> = content.iter().map(|&(s, l)| (s, s + l as u64)).collect();
        subtract(&wanted, &t.held)
            .into_iter()
            .map(|(s, e)| (s, (e - s) as usize))
            .collect()
    }

    /// The pages of `host` with content in `[start, end)` as the last
    /// [`DirtyTracker::written`] found them, if it walked all of that range (a registered
    /// mapping of a process not lost): what `ranges` of the dump would find while the pod
    /// is still frozen since, without a second walk.
    pub(crate) fn content_in(&self, host: i32, start: u64, end: u64) -> Option<Vec<(u64, u64)>> {
        let t = self.procs.get(&host).filter(|t| !t.lost)?;
        let r = t
            .registered
            .get(t.registered.partition_point(|r| r.1 <= start))?;
        if !(r.0 <= start && end <= r.1) {
            return None;
        }
        let from = t.populated.partition_point(|p| p.1 <= start);
        let out = t.populated[from..]
            .iter()
            .take_while(|p| p.0 < end)
            .map(|&(a, b)| (a.max(start), b.min(end)))
            .collect();
        Some(out)
    }

    /// Report `[start, end)` ranges of `host` again at the next [`DirtyTracker::written`]
    /// (their copy failed).
    pub fn redirty(&mut self, host: i32, ranges: impl IntoIterator<Item = (u64, u64)>) {
        if let Some(t) = self.procs.get_mut(&host) {
            t.pending.extend(ranges);
        }
    }
}

impl Tracked {
    /// Register the private mappings (or parts) the kernel says are not registered — new
    /// ones, and those replaced or moved since (which lose their registration); returns
    /// them (wholly dirty: their pages were never protected). A mapping the kernel refuses
    /// stays unregistered and is returned every time. A failure that shows the address
    /// space is gone (an `execve`: the pagemap opened at the start reads a dead one) marks
    /// it lost.
    fn register_new(&mut self, host: i32) -> Vec<(u64, u64)> {
        let maps = match proc::maps(host) {
            Ok(m) => m,
            Err(_) => {
                self.lost = true;
                return Vec::new();
            }
        };
        self.file_backed = maps
            .iter()
            .filter(|m| trackable(m) && m.inode != 0)
            .map(|m| (m.start, m.end))
            .collect();
        let mut fresh = Vec::new();
        for m in maps.iter().filter(|m| trackable(m)) {
            match uffd::scan_unregistered(&self.pagemap, m.start, m.end) {
                Ok(parts) if parts.is_empty() => continue,
                Ok(_) => {}
                Err(_) => {
                    self.lost = true;
                    return Vec::new();
                }
            }
            match uffd::register_wp(&self.uffd, m.start, m.end) {
                Ok(()) => self.registered.push((m.start, m.end)),
                Err(e) if matches!(e.raw_os_error(), Some(libc::ESRCH | libc::ENOMEM)) => {
                    self.lost = true;
                    return Vec::new();
                }
                Err(e) => {
                    tracing::debug!(host, start = m.start, "mapping not tracked: {e}");
                }
            }
            fresh.push((m.start, m.end));
        }
        self.registered = normalize(std::mem::take(&mut self.registered));
        fresh
    }

    /// Written ranges of the registered mappings, protected again: the protected pages
    /// written since, and the pages with content that had none at the previous scan (see
    /// the module docs). Reads after this see every write it reports, or the next scan
    /// reports it.
    fn scan(&mut self) -> std::io::Result<Vec<(u64, u64)>> {
        let mut out = Vec::new();
        for &(s, e) in &self.populated {
            out.extend(uffd::protect_written(&self.pagemap, s, e)?);
        }
        let mut content = Vec::new();
        for &(s, e) in &self.registered {
            // The kernel looks at every page's owner only where it must: file mappings.
            let of_files = subtract(&[(s, e)], &subtract(&[(s, e)], &self.file_backed));
            for (a, b) in subtract(&[(s, e)], &of_files) {
                let kind = uffd::Mapping::PrivateAnon;
                content.extend(uffd::scan_content(&self.pagemap, a, b, kind)?);
            }
            for (a, b) in of_files {
                let kind = uffd::Mapping::PrivateFile;
                content.extend(uffd::scan_content(&self.pagemap, a, b, kind)?);
            }
        }
        let content = normalize(content);
        let fresh = subtract(&content, &self.populated);
        for &(s, e) in &fresh {
            uffd::protect_written(&self.pagemap, s, e)?;
        }
        out.extend(fresh);
        self.populated = content;
        Ok(out)
    }
}

impl Drop for DirtyTracker {
    fn drop(&mut self) {
        for t in self.procs.values() {
            for &(s, e) in &t.registered {
                let _ = uffd::unregister(&t.uffd, s, e);
            }
        }
    }
}

/// Create a userfaultfd inside the frozen process `host` and take it out.
fn create_uffd_in(host: i32, gadget: u64) -> Result<OwnedFd> {
    let gadget = match gadget {
        0 => vdso_gadget(host)?,
        g => g,
    };
    let mut t = Tracee::new(host, host, gadget)?;
    let flags = (libc::O_CLOEXEC | libc::O_NONBLOCK) as u64 | uffd::UFFD_USER_MODE_ONLY;
    let fd = t.call("userfaultfd", uffd::NR_USERFAULTFD, &[flags])? as i32;
    let taken = fds::pidfd_open(host)
        .and_then(|p| fds::pidfd_getfd(&p, fd))
        .sys(|| format!("take the userfaultfd out of {host}"));
    t.call("close", nr::CLOSE, &[fd as u64])?;
    taken
}

/// A `syscall` instruction in the vDSO of `pid`.
fn vdso_gadget(pid: i32) -> Result<u64> {
    let maps = proc::maps(pid)?;
    let vdso = maps
        .iter()
        .find(|m| m.path == "[vdso]")
        .ok_or_else(|| crate::Error::Restore(format!("process {pid} has no vDSO")))?;
    let code = crate::dump::collect::peek(pid, vdso.start, (vdso.end - vdso.start) as usize)?;
    crate::inject::find_syscall_insn(&code, vdso.start)
        .ok_or_else(|| crate::Error::Restore("no syscall instruction in the vDSO".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intersect_keeps_only_common_parts() {
        let a = [(0x1000, 0x3000), (0x8000, 0x1000)];
        let b = [(0x2000, 0x3000), (0x3000, 0x9000)];
        // normalize merges the touching b ranges.
        let b = normalize(b.to_vec());
        assert_eq!(intersect(&a, &b), vec![(0x2000, 0x2000), (0x8000, 0x1000)]);
        assert!(intersect(&a, &[]).is_empty());
    }

    #[test]
    fn subtract_keeps_what_the_second_set_lacks() {
        let a = [(0x1000, 0x5000), (0x8000, 0x9000)];
        let b = [(0x0, 0x2000), (0x3000, 0x4000), (0x8000, 0x9000)];
        assert_eq!(subtract(&a, &b), vec![(0x2000, 0x3000), (0x4000, 0x5000)]);
        assert_eq!(subtract(&a, &[]), a.to_vec());
        assert!(subtract(&[], &b).is_empty());
    }
}
