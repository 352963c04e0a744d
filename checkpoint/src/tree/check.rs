//! Everything that keeps a pod from being checkpointed, found before it is touched.

use super::fdtable::{self, FdTable};
use super::model::ShmRegion;
use super::scan::{PodScan, ProcInfo, scan, strangers};
use crate::check::CheckReport;
use crate::error::Result;
use crate::objects::DumpCx;
use crate::proc::{self, MapLine};
use crate::sys::fds;
use crate::vmas::VmaClass;
use std::collections::HashMap;
use std::fs::Metadata;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;

/// Namespaces every process must share with the pod's init.
const NAMESPACES: &[&str] = &[
    "user",
    "pid",
    "mnt",
    "ipc",
    "net",
    "uts",
    "cgroup",
    "time",
    "pid_for_children",
    "time_for_children",
];
/// Device number of `/dev/pts/0`.
const PTS0: u64 = 136 << 8;

/// `stat` of a path in the pod's view of the file system.
pub(crate) fn pod_stat(root: &OwnedFd, path: &str) -> std::io::Result<Metadata> {
    let fd = fds::open_in_root(root, path, libc::O_PATH)?;
    std::fs::File::from(fd).metadata()
}

/// The pod's root directory, for [`pod_stat`].
pub(crate) fn pod_root(root: i32) -> Result<OwnedFd> {
    use crate::error::SysContext;
    fds::open(
        &format!("/proc/{root}/root"),
        libc::O_PATH | libc::O_DIRECTORY,
    )
    .sys(|| format!("open the file system of pod {root}"))
}

/// Is this mapping shared anonymous memory (inherited over fork)?
pub(crate) fn is_shm(m: &MapLine) -> bool {
    m.shared() && m.path == "/dev/zero (deleted)"
}

/// Shared anonymous regions by inode, from every live process's mappings.
pub(crate) fn shm_regions(
    maps: &HashMap<i32, Vec<MapLine>>,
) -> std::result::Result<HashMap<u64, ShmRegion>, String> {
    let mut out: HashMap<u64, ShmRegion> = HashMap::new();
    for lines in maps.values() {
        for m in lines.iter().filter(|m| is_shm(m)) {
            let base = m.start - m.offset;
            let r = out.entry(m.inode).or_insert(ShmRegion { base, len: 0 });
            if r.base != base {
                return Err(format!(
                    "shared memory {:x}-{:x} sits at another address than in a related process (mremap)",
                    m.start, m.end
                ));
            }
            r.len = r.len.max(m.end - base);
        }
    }
    let mut v: Vec<&ShmRegion> = out.values().collect();
    v.sort_by_key(|r| r.base);
    for w in v.windows(2) {
        if w[0].base + w[0].len > w[1].base {
            return Err(format!(
                "shared memory regions at {:#x} and {:#x} overlap across processes",
                w[0].base, w[1].base
            ));
        }
    }
    Ok(out)
}

/// Reasons from the structure of the tree and each process's own state (not descriptors).
fn process_reasons(
    s: &PodScan,
    root_fd: &OwnedFd,
    out: &mut Vec<String>,
) -> HashMap<i32, Vec<MapLine>> {
    let root = &s.procs[0];
    let by_pid: HashMap<i32, &ProcInfo> = s.procs.iter().map(|p| (p.pid, p)).collect();
    let ns_of = |host: i32, ns: &str| proc::link(host, &format!("ns/{ns}")).ok();
    let root_ns: Vec<Option<String>> = NAMESPACES.iter().map(|n| ns_of(root.host, n)).collect();
    let root_dir = std::fs::metadata(format!("/proc/{}/root", root.host)).ok();
    let outside = (
        s.uid_map.first().map(|m| m[1]),
        s.gid_map.first().map(|m| m[1]),
    );
    // A tracer is a thread: ours when it is one of our tasks.
    let ours = |t: i32| std::path::Path::new(&format!("/proc/self/task/{t}")).exists();
    let mut maps = HashMap::new();
    for p in &s.procs {
        let name = p.name();
        let mut say = |r: String| out.push(format!("{name}: {r}"));
        if p.pgid == 0 || p.sid == 0 {
            say("its session or process group lies outside the pod".into());
        }
        if p.pid != p.sid {
            match by_pid.get(&p.ppid) {
                Some(parent) if parent.sid == p.sid => {}
                _ => say(format!(
                    "its session {} was inherited from a process that has left it (not supported)",
                    p.sid
                )),
            }
        }
        if p.pgid != 0 && by_pid.get(&p.pgid).is_none_or(|l| l.pgid != p.pgid) {
            say(format!(
                "its process group {} has no leader in it any more (not supported)",
                p.pgid
            ));
        }
        if p.tty_nr != 0 {
            if p.tty_nr != PTS0 {
                say(format!(
                    "its controlling terminal ({}:{}) is not the pod's pty",
                    p.tty_nr >> 8,
                    p.tty_nr & 0xff
                ));
            } else if p.pid != p.sid
                && by_pid
                    .get(&p.ppid)
                    .is_none_or(|q| q.tty_nr == 0 || q.sid != p.sid)
            {
                say("has the pod's terminal as controlling terminal but its parent has not".into());
            }
        }
        if p.defunct() {
            if p.nthreads > 1 {
                say(format!(
                    "its main thread exited while {} threads run",
                    p.nthreads - 1
                ));
            }
            continue;
        }
        if p.tracer != 0 && !ours(p.tracer) {
            say(format!("is traced by host PID {}", p.tracer));
        }
        if p.state == 't' && !ours(p.tracer) {
            say("is stopped by a tracer".into());
        }
        if p.seccomp != 0 {
            say(format!("has a seccomp filter (mode {})", p.seccomp));
        }
        if Some(p.uids) != outside.0.map(|u| [u; 4]) || Some(p.gids) != outside.1.map(|g| [g; 4]) {
            say(format!(
                "runs with uids {:?} / gids {:?}; only the pod's one mapped user is carried",
                p.uids, p.gids
            ));
        }
        if p.threads.len() != p.nthreads || p.threads.iter().any(|t| t.1 <= 0) {
            say("a thread is not visible in the pod".into());
        }
        for (ns, theirs) in NAMESPACES.iter().zip(&root_ns) {
            let mine = ns_of(p.host, ns);
            if mine.is_some() && mine != *theirs {
                say(format!(
                    "runs in another {ns} namespace than the pod's init"
                ));
            }
        }
        // Unreadable while the process exits (its file system view is gone): nothing to say.
        if let Ok(d) = std::fs::metadata(format!("/proc/{}/root", p.host))
            && Some((d.dev(), d.ino())) != root_dir.as_ref().map(|r| (r.dev(), r.ino()))
        {
            say("has its own root directory (chroot)".into());
        }
        for (what, rel) in [("working directory", "cwd"), ("executable", "exe")] {
            if let Ok(l) = proc::link(p.host, rel)
                && l.ends_with(" (deleted)")
            {
                say(format!("its {what} {l} was deleted"));
            }
        }
        if let Some(r) = crate::procstate::timer_reason(p.host) {
            say(r);
        }
        if let Some(parent) = by_pid.get(&p.ppid).filter(|q| !q.defunct()) {
            for (kind, what) in [
                (fds::KCMP_VM, "address space (vfork)"),
                (fds::KCMP_FILES, "descriptor table"),
                (fds::KCMP_FS, "root, cwd and umask"),
                (fds::KCMP_SIGHAND, "signal handlers"),
            ] {
                if fds::shares(parent.host, p.host, kind).unwrap_or(false) {
                    say(format!("shares its {what} with its parent (not supported)"));
                }
            }
        }
        let stat = |path: &str| pod_stat(root_fd, path);
        match proc::maps(p.host) {
            Ok(lines) => {
                for m in &lines {
                    if let VmaClass::Unsupported(r) =
                        crate::procstate::classify_map(m, &stat, root.host)
                    {
                        say(r);
                    }
                }
                maps.insert(p.host, lines);
            }
            Err(e) => say(format!("cannot read its mappings: {e}")),
        }
    }
    maps
}

/// What examining a pod found: every reason it cannot be saved, its descriptors grouped into
/// objects, each live process's mappings and the shared memory regions (by inode).
pub(crate) struct Verdict<'a> {
    /// Every reason, naming process and descriptor.
    pub reasons: Vec<String>,
    /// The object table (captured when examined with a [`DumpCx`]).
    pub table: FdTable<'a>,
    /// Mappings of each live process (by host PID).
    pub maps: HashMap<i32, Vec<MapLine>>,
    /// Shared anonymous regions by inode.
    pub shm: HashMap<u64, ShmRegion>,
}

/// Examine the scanned pod; with `cx` (a frozen pod) also capture the objects' contents.
pub(crate) fn examine<'a>(s: &'a PodScan, cx: Option<&mut DumpCx>) -> Result<Verdict<'a>> {
    let mut out = Vec::new();
    let root = &s.procs[0];
    let ours = proc::link(std::process::id() as i32, "ns/user").ok();
    let empty = |reasons| Verdict {
        reasons,
        table: FdTable::default(),
        maps: HashMap::new(),
        shm: HashMap::new(),
    };
    if root.pid != 1 || proc::link(root.host, "ns/user").ok() == ours {
        out.push(format!(
            "host PID {} is not the init of a pod (PID 1 of its own user and PID namespaces)",
            root.host
        ));
        return Ok(empty(out));
    }
    if s.uid_map.len() != 1 || s.uid_map[0][2] != 1 || s.gid_map.len() != 1 || s.gid_map[0][2] != 1
    {
        out.push("the pod maps more than one uid or gid".into());
        return Ok(empty(out));
    }
    for h in strangers(root.host, &s.to_pod) {
        let comm = proc::read(h, "comm").unwrap_or_default();
        out.push(format!(
            "host PID {h} ({}) joined the pod's PID namespace from outside",
            comm.trim_end()
        ));
    }
    let root_fd = pod_root(root.host)?;
    let maps = process_reasons(s, &root_fd, &mut out);
    out.extend(crate::procstate::pod_reasons(root.host));
    let shm = shm_regions(&maps).unwrap_or_else(|r| {
        out.push(r);
        HashMap::new()
    });
    let table = fdtable::build(s, cx)?;
    out.extend(table.reasons.iter().cloned());
    Ok(Verdict {
        reasons: out,
        table,
        maps,
        shm,
    })
}

/// See [`crate::check_tree`]. Processes come and go while a live tree is examined (a shell
/// forks a pipeline every few milliseconds, and a process caught exiting or in `execve` looks
/// odd): a reason counts only if it is still there when the tree is examined again, up to
/// three times. The frozen tree is examined once more before anything is saved.
pub(crate) fn check_tree(root_pid: i32) -> Result<CheckReport> {
    let mut reasons = examine(&scan(root_pid)?, None)?.reasons;
    for _ in 0..2 {
        if reasons.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        let again = examine(&scan(root_pid)?, None)?.reasons;
        reasons.retain(|r| again.contains(r));
    }
    Ok(CheckReport {
        pid: root_pid,
        reasons,
    })
}
