//! The descriptors of every process of a pod, grouped into shared objects (one per open file
//! description, found with `kcmp(KCMP_FILE)`), each claimed by a registered kind.

use super::model::FdRef;
use super::scan::{PodScan, ProcInfo};
use crate::error::{Error, Result, SysContext};
use crate::objects::{Claim, DumpCx, FdFacts, Object};
use crate::proc;
use crate::sys::fds;
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;

/// The object table of a pod.
#[derive(Default)]
pub(crate) struct FdTable<'a> {
    /// Every object, with the facts of its first holder.
    pub objects: Vec<(Object, FdFacts<'a>)>,
    /// Each process's descriptors (by host PID), ascending.
    pub fds: HashMap<i32, Vec<FdRef>>,
    /// Every descriptor that cannot be saved, naming the process and the descriptor.
    pub reasons: Vec<String>,
}

/// What `/proc` says about one descriptor; `None` if it was closed meanwhile.
fn facts<'a>(p: &ProcInfo, fd: i32, scan: &'a PodScan) -> Result<Option<(FdFacts<'a>, bool)>> {
    let link = match proc::link(p.host, &format!("fd/{fd}")) {
        Ok(l) => l,
        Err(_) => return Ok(None),
    };
    let Ok(md) = std::fs::metadata(format!("/proc/{}/fd/{fd}", p.host)) else {
        return Ok(Some((
            FdFacts {
                pid: p.host,
                fd,
                link,
                mode: 0,
                dev: 0,
                ino: 0,
                rdev: 0,
                pos: 0,
                flags: 0,
                pod: &scan.view,
            },
            false,
        )));
    };
    let (pos, flags, _) = match proc::fdinfo(p.host, fd) {
        Ok(v) => v,
        Err(Error::NoProcess(_)) => return Err(Error::NoProcess(p.host)),
        Err(_) => return Ok(None),
    };
    let cloexec = flags & libc::O_CLOEXEC as u32 != 0;
    Ok(Some((
        FdFacts {
            pid: p.host,
            fd,
            link,
            mode: md.mode(),
            dev: md.dev(),
            ino: md.ino(),
            rdev: md.rdev(),
            pos,
            flags: flags & !(libc::O_CLOEXEC as u32),
            pod: &scan.view,
        },
        cloexec,
    )))
}

/// Build the table; with `cx` (a frozen tree) also capture each object's contents.
pub(crate) fn build<'a>(scan: &'a PodScan, mut cx: Option<&mut DumpCx>) -> Result<FdTable<'a>> {
    let mut t = FdTable {
        objects: Vec::new(),
        fds: HashMap::new(),
        reasons: Vec::new(),
    };
    // (dev, ino) → objects of that file, with a holder each: (object, host PID, fd).
    type Holders = Vec<(u32, i32, i32)>;
    let mut by_inode: HashMap<(u64, u64), Holders> = HashMap::new();
    for p in scan.procs.iter().filter(|p| !p.defunct()) {
        let mut refs = Vec::new();
        let list = match proc::fds(p.host) {
            Ok(l) => l,
            Err(_) => continue, // exited meanwhile: the caller's rescan sees it
        };
        for fd in list {
            let (f, cloexec) = match facts(p, fd, scan) {
                Ok(Some(v)) => v,
                Ok(None) => continue,
                // A live tree: the process ended meanwhile; the rescan does not see it.
                Err(Error::NoProcess(_)) if cx.is_none() => break,
                Err(e) => return Err(e),
            };
            let name = format!("{}: fd {fd}", p.name());
            if f.mode == 0 {
                t.reasons.push(format!("{name}: cannot stat {}", f.link));
                continue;
            }
            if let Some(r) = crate::procstate::lock_reason(p.host, fd) {
                t.reasons.push(format!("{name}: {r}"));
            }
            let key = (f.dev, f.ino);
            let mut found = None;
            for &(obj, hp, hfd) in by_inode.get(&key).into_iter().flatten() {
                match fds::same_file(hp, hfd, p.host, fd) {
                    Ok(true) => {
                        found = Some(obj);
                        break;
                    }
                    Ok(false) => {}
                    // A live tree: the process (or the other holder) went away meanwhile.
                    Err(e) if e.raw_os_error() == Some(libc::ESRCH) && cx.is_none() => {}
                    Err(e) => return Err(e).sys(|| format!("kcmp {name}")),
                }
            }
            let object = match found {
                Some(o) => o,
                None => {
                    let mut obj = match Object::inspect(&f) {
                        Some(Claim::Mine(o)) => o,
                        Some(Claim::Refused(r)) => {
                            t.reasons.push(format!("{name}: {r}"));
                            continue;
                        }
                        Some(Claim::NotMine) | None => {
                            t.reasons
                                .push(format!("{name}: {} is not supported", f.link));
                            continue;
                        }
                    };
                    if let Some(cx) = cx.as_deref_mut() {
                        obj.capture(&f, cx)?;
                    }
                    let idx = t.objects.len() as u32;
                    by_inode.entry(key).or_default().push((idx, p.host, fd));
                    t.objects.push((obj, f));
                    idx
                }
            };
            refs.push(FdRef {
                fd,
                object,
                cloexec,
            });
        }
        t.fds.insert(p.host, refs);
    }
    let all: Vec<&Object> = t.objects.iter().map(|(o, _)| o).collect();
    for (o, f) in &t.objects {
        if let Some(r) = o.related(&all) {
            let holder = scan.procs.iter().find(|p| p.host == f.pid);
            let name = holder.map(|p| p.name()).unwrap_or_default();
            t.reasons.push(format!("{name}: fd {}: {r}", f.fd));
        }
    }
    Ok(t)
}
