//! What a pod holds besides descriptors and each process's own memory: per process, the
//! capability sets of each thread, POSIX timers, POSIX record locks and mappings of shared
//! objects (memfd, System V segments); per pod, locks of open file descriptions, memfds that
//! are only mapped, the pod's own `/dev/shm` and its System V IPC namespace.
//!
//! The tree code calls in at fixed points: [`classify_map`], [`timer_reason`] and
//! [`lock_reason`] while checking; [`capture`] per frozen process and [`capture_pod`] at the
//! end of a dump; [`validate`], [`avoid`], [`before_objects`], [`after_objects`],
//! [`map_objects`], [`install`] and [`thread_caps`] while restoring.

pub(crate) mod devshm;
pub(crate) mod locks;
pub(crate) mod maps;
pub(crate) mod sysv;
pub(crate) mod timers;

use crate::error::{Error, Result};
use crate::freeze::Frozen;
use crate::objects::memfd::{self, MemfdFile, encode_extents};
use crate::objects::{DumpCx, FdFacts, Object, RestoreCx, TypeMap};
use crate::restore::child::Child;
use crate::tree::model::{FdRef, ProcEntry, TreeImage};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::os::fd::OwnedFd;

pub(crate) use maps::classify as classify_map;

/// Most timers, locks or shared mappings of one process an image may hold.
const MAX_PER_PROCESS: usize = 1 << 16;

/// Per process.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ProcExtra {
    /// Inheritable, permitted, effective, bounding, ambient capabilities of each thread, in
    /// the order of its META frame.
    pub thread_caps: Vec<[u64; 5]>,
    /// POSIX timers.
    pub timers: Vec<timers::PosixTimer>,
    /// POSIX record locks.
    pub locks: Vec<locks::RecordLock>,
    /// Mappings of shared objects.
    pub maps: Vec<maps::ObjectMap>,
}

/// Per pod.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct PodExtra {
    /// Locks owned by open file descriptions.
    pub object_locks: Vec<locks::ObjectLock>,
    /// Memfds only mapped (no descriptor left): the mapped parts of their content.
    pub memfds: Vec<MemfdFile>,
    /// The pod's own `/dev/shm`.
    pub devshm: Vec<devshm::Entry>,
    /// The pod's System V IPC namespace.
    pub sysv: sysv::Sysv,
}

/// Why a process's POSIX timers cannot be carried, if so.
pub(crate) fn timer_reason(host: i32) -> Option<String> {
    timers::list(host).err()
}

/// Why the pod (whose init is `root`) as a whole cannot be carried: its `/dev/shm`.
pub(crate) fn pod_reasons(root: i32) -> Vec<String> {
    devshm::reasons(root)
}

/// Why the locks of descriptor `fd` of `host` cannot be carried, if so.
pub(crate) fn lock_reason(host: i32, fd: i32) -> Option<String> {
    locks::of_fd(host, fd).err()
}

/// Dump state: the mapped parts of memfds no descriptor holds, by inode: name and pages.
#[derive(Default)]
struct MappedOnly(HashMap<u64, (String, BTreeMap<u64, Vec<u8>>)>);

/// Dump state: locks of descriptions, by object.
#[derive(Default)]
struct DescriptionLocks(BTreeMap<u32, Vec<locks::Lock>>);

/// Capabilities of thread `tid` of `pid` (`/proc` Cap* lines).
fn caps_of(pid: i32, tid: i32) -> Result<[u64; 5]> {
    let st = crate::proc::status(pid, Some(tid))?;
    let c = |k: &str| crate::proc::hex_mask(st.get(k));
    Ok([
        c("CapInh"),
        c("CapPrm"),
        c("CapEff"),
        c("CapBnd"),
        c("CapAmb"),
    ])
}

/// Everything of this module about frozen process `f` (its object mappings split off by
/// [`maps::split`]), whose descriptors are `fds` in a tree whose objects are `objects`.
pub(crate) fn capture(
    f: &Frozen,
    maps: Vec<maps::ObjectMap>,
    fds: &[FdRef],
    objects: &[(Object, FdFacts<'_>)],
    cx: &mut DumpCx,
) -> Result<ProcExtra> {
    let mut extra = ProcExtra {
        thread_caps: f
            .threads
            .iter()
            .map(|t| caps_of(f.pid, t.tid))
            .collect::<Result<_>>()?,
        timers: timers::capture(f)?,
        ..Default::default()
    };
    for r in fds {
        let held = locks::of_fd(f.pid, r.fd).map_err(|reason| Error::Refused {
            pid: f.pid,
            reasons: vec![format!("fd {}: {reason}", r.fd)],
        })?;
        for lock in held {
            if lock.owner == locks::Owner::Process {
                extra.locks.push(locks::RecordLock { fd: r.fd, lock });
            } else {
                let list = cx
                    .state
                    .get::<DescriptionLocks>()
                    .0
                    .entry(r.object)
                    .or_default();
                if !list.contains(&lock) {
                    list.push(lock);
                }
            }
        }
    }
    let held_memfds: Vec<u64> = objects
        .iter()
        .filter_map(|(o, _)| match o {
            Object::Memfd(m) => Some(m.ino()),
            _ => None,
        })
        .collect();
    for m in &maps {
        if let maps::Source::Memfd { ino } = m.source
            && !held_memfds.contains(&ino)
        {
            capture_mapped(f, m, ino, cx)?;
        }
    }
    extra.maps = maps;
    Ok(extra)
}

/// Keep the pages of mapping `m` of a memfd that only mappings hold (its seals cannot be read
/// without a descriptor: it comes back unsealed; its size ends at the last page mapped).
fn capture_mapped(f: &Frozen, m: &maps::ObjectMap, ino: u64, cx: &mut DumpCx) -> Result<()> {
    let name = crate::proc::maps(f.pid)?
        .into_iter()
        .find(|l| l.start == m.start)
        .and_then(|l| memfd::name_of(&l.path).map(str::to_string))
        .unwrap_or_default();
    let entry = cx
        .state
        .get::<MappedOnly>()
        .0
        .entry(ino)
        .or_insert((name, BTreeMap::new()));
    let mut page = vec![0u8; 4096];
    let mut a = m.start;
    while a < m.end {
        // Past the end of the file a page cannot be read: that is where the file ends.
        match crate::sys::mem::read_remote(f.pid, &[(a, 4096)], &mut page) {
            Ok(4096) => {}
            _ => break,
        }
        let off = m.offset + (a - m.start);
        if page.iter().any(|&b| b != 0) {
            entry.1.insert(off, page.clone());
        } else {
            entry.1.entry(off).or_default();
        }
        a += 4096;
    }
    Ok(())
}

/// Everything of this module about the frozen pod (its init `init`), after every process.
pub(crate) fn capture_pod(init: &Frozen, cx: &mut DumpCx) -> Result<PodExtra> {
    let mut extra = PodExtra::default();
    for (object, list) in std::mem::take(&mut cx.state.get::<DescriptionLocks>().0) {
        extra.object_locks.extend(
            list.into_iter()
                .map(|lock| locks::ObjectLock { object, lock }),
        );
    }
    for (ino, (name, pages)) in std::mem::take(&mut cx.state.get::<MappedOnly>().0) {
        let size = pages.keys().last().map_or(0, |&o| o + 4096);
        let extents: Vec<(u64, Vec<u8>)> =
            pages.into_iter().filter(|(_, b)| !b.is_empty()).collect();
        extra.memfds.push(MemfdFile {
            ino,
            name,
            size,
            seals: 0,
            mode: 0o777,
            content: Some(cx.data.add(encode_extents(&extents))),
        });
    }
    extra.devshm = devshm::capture(init.pid, &mut |b| cx.data.add(b))?;
    extra.sysv = sysv::capture(init, &mut |b| cx.data.add(b))?;
    Ok(extra)
}

/// Bounds and references of this module's part of an image (it comes from a peer).
pub(crate) fn validate(t: &TreeImage) -> Result<()> {
    let bad = |m: String| Err(Error::BadImage(m));
    for e in &t.processes {
        let x = &e.extra;
        if x.timers.len() > MAX_PER_PROCESS
            || x.locks.len() > MAX_PER_PROCESS
            || x.maps.len() > MAX_PER_PROCESS
        {
            return bad(format!("pid {}: too many timers, locks or mappings", e.pid));
        }
        if x.maps
            .iter()
            .any(|m| m.start >= m.end || m.start % 4096 != 0 || m.end % 4096 != 0)
        {
            return bad(format!("pid {}: bad shared mapping", e.pid));
        }
        if x.locks.iter().any(|l| !e.fds.iter().any(|f| f.fd == l.fd)) {
            return bad(format!(
                "pid {}: lock on a descriptor it does not have",
                e.pid
            ));
        }
    }
    let x = &t.extra;
    if x.sysv
        .sems
        .iter()
        .any(|s| s.values.len() > sysv::MAX_SEMS as usize)
    {
        return bad("System V semaphore set too large".into());
    }
    if x.object_locks
        .iter()
        .any(|l| l.object as usize >= t.objects.len())
        || x.devshm.len() > devshm::MAX_ENTRIES
        || x.devshm.iter().any(|e| !devshm::clean(&e.path))
    {
        return bad("bad object lock or /dev/shm entry".into());
    }
    Ok(())
}

/// Address ranges the restored processes' shared mappings take (the restore's scratch area
/// must not lie there).
pub(crate) fn avoid(t: &TreeImage) -> Vec<(u64, u64)> {
    t.processes
        .iter()
        .flat_map(|e| e.extra.maps.iter().map(|m| (m.start, m.end)))
        .collect()
}

/// Before the objects are made: the pod's `/dev/shm` and IPC namespace, and memfds only
/// mapped, through its root.
pub(crate) fn before_objects(cx: &mut RestoreCx<'_>, t: &TreeImage) -> Result<()> {
    devshm::restore(cx, &t.extra.devshm)?;
    sysv::restore(cx.root, &t.extra.sysv, cx.data)?;
    for m in &t.extra.memfds {
        let blob = match m.content {
            Some(i) => cx.data(i)?.to_vec(),
            None => Vec::new(),
        };
        memfd::make(cx, m, &blob)?;
    }
    Ok(())
}

/// Once the objects are made (`objects` by index): the locks of descriptions the restorer
/// takes back itself.
pub(crate) fn after_objects(objects: &[OwnedFd], t: &TreeImage) -> Result<()> {
    for l in &t.extra.object_locks {
        if flock_taker(t, l).is_none() {
            locks::retake_on(&objects[l.object as usize], &l.lock)?;
        }
    }
    Ok(())
}

/// The process (and its descriptor) that takes back `flock` lock `l` itself: the one that
/// took it, if it still holds the description.
fn flock_taker(t: &TreeImage, l: &locks::ObjectLock) -> Option<(i32, i32)> {
    if l.lock.owner != locks::Owner::Flock || l.lock.pid == 0 {
        return None;
    }
    let e = t.processes.iter().find(|e| e.pid == l.lock.pid)?;
    let fd = e.fds.iter().find(|f| f.object == l.object)?;
    Some((e.pid, fd.fd))
}

/// Restore-time view for the mappings: the kinds' state (memfds by inode) and the System V
/// segments (size, and which mapping is the last of a segment marked for removal).
pub(crate) struct PodState<'a> {
    /// The kinds' restore state.
    pub objects: &'a mut TypeMap,
    sizes: HashMap<i32, u64>,
    last: HashMap<i32, (i32, u64)>,
}

impl<'a> PodState<'a> {
    /// The state for restoring `t`.
    pub fn new(objects: &'a mut TypeMap, t: &TreeImage) -> PodState<'a> {
        let sizes = t.extra.sysv.shm.iter().map(|s| (s.id, s.size)).collect();
        let mut last = HashMap::new();
        for s in t.extra.sysv.shm.iter().filter(|s| sysv::doomed(s)) {
            for e in &t.processes {
                for m in &e.extra.maps {
                    if m.source == (maps::Source::Sysv { id: s.id }) {
                        last.insert(s.id, (e.pid, m.start));
                    }
                }
            }
        }
        PodState {
            objects,
            sizes,
            last,
        }
    }

    fn sysv_size(&self, id: i32) -> Option<u64> {
        self.sizes.get(&id).copied()
    }

    fn last_attach(&self, id: i32, pid: i32, start: u64) -> bool {
        self.last.get(&id) == Some(&(pid, start))
    }
}

/// The shared mappings of restored process `c` (after its address space is trimmed).
pub(crate) fn map_objects(c: &mut Child, x: &ProcExtra, st: &mut PodState<'_>) -> Result<()> {
    maps::restore(c, &x.maps, st)
}

/// Its POSIX locks, the `flock` locks it took and its timers (after its descriptors and
/// threads exist).
pub(crate) fn install(c: &mut Child, e: &ProcEntry, t: &TreeImage) -> Result<()> {
    locks::retake(c, &e.extra.locks)?;
    for l in &t.extra.object_locks {
        if let Some((pid, fd)) = flock_taker(t, l)
            && pid == e.pid
        {
            locks::retake_flock(c, fd, &l.lock)?;
        }
    }
    timers::recreate(c, &e.extra.timers)
}

/// Capabilities of thread `i` (META order): its own if saved, else the process's `[inh, prm,
/// eff, bnd, amb]`.
pub(crate) fn thread_caps(x: &ProcExtra, i: usize, process: [u64; 5]) -> [u64; 5] {
    x.thread_caps.get(i).copied().unwrap_or(process)
}
