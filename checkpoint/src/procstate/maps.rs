//! Mappings of shared objects: memfds (mapped from the memfd made once per file at restore)
//! and System V shared memory attachments (attached again with `shmat`). They are kept out
//! of the process's own mapping list (whose pages it saves) and made before it at restore.

use super::PodState;
use crate::error::{Error, Result};
use crate::image::model::Vma;
use crate::objects::memfd;
use crate::proc::{self, MapLine};
use crate::restore::child::Child;
use crate::sys::nr;
use crate::vmas::{self, VmaClass};
use serde::{Deserialize, Serialize};
use std::os::unix::fs::MetadataExt;

const SHMAT: u64 = 30;
const SHMCTL: u64 = 31;
const SHM_RDONLY: u64 = 0o10000;
const SHM_EXEC: u64 = 0o100000;

/// What backs a mapping of a shared object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Source {
    /// The memfd with this inode.
    Memfd {
        /// Its inode number.
        ino: u64,
    },
    /// The System V segment with this id.
    Sysv {
        /// Its shmid.
        id: i32,
    },
}

/// One mapping of a shared object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ObjectMap {
    /// First address.
    pub start: u64,
    /// One past the end.
    pub end: u64,
    /// `PROT_*` bits.
    pub prot: u32,
    /// Offset in the object.
    pub offset: u64,
    /// The object.
    pub source: Source,
}

/// The shared object behind a map line, if any.
pub(crate) fn source(m: &MapLine) -> Option<Source> {
    if memfd::name_of(&m.path).is_some() {
        Some(Source::Memfd { ino: m.inode })
    } else if m.path.starts_with("/SYSV") && m.path.ends_with(" (deleted)") {
        Some(Source::Sysv { id: m.inode as i32 })
    } else {
        None
    }
}

/// Another name, in the pod's own `/dev/shm` (of the pod whose init is `pod`), of the file
/// with inode `ino`: glibc's `sem_open` maps a file under a temporary name, then links it
/// under the semaphore's name and removes the temporary one.
fn devshm_name(pod: i32, ino: u64) -> Option<String> {
    let dir = format!("/proc/{pod}/root{}", super::devshm::DIR);
    std::fs::read_dir(dir).ok()?.flatten().find_map(|e| {
        let md = e.metadata().ok()?;
        (md.is_file() && md.ino() == ino)
            .then(|| format!("{}/{}", super::devshm::DIR, e.file_name().to_string_lossy()))
    })
}

/// [`vmas::classify_with`], with mappings of shared objects left out (carried here) or
/// refused with the reason, and removed names of files in the pod's `/dev/shm` replaced by
/// a name they still have.
pub(crate) fn classify(
    m: &MapLine,
    stat: &dyn Fn(&str) -> std::io::Result<std::fs::Metadata>,
    pod: i32,
) -> VmaClass {
    let range = format!("mapping {:x}-{:x}", m.start, m.end);
    let shm_prefix = format!("{}/", super::devshm::DIR);
    match source(m) {
        None if m.path.starts_with(&shm_prefix) && m.path.ends_with(" (deleted)") => {
            match devshm_name(pod, m.inode) {
                Some(path) => vmas::classify_with(&MapLine { path, ..m.clone() }, stat),
                None => vmas::classify_with(m, stat),
            }
        }
        None => vmas::classify_with(m, stat),
        Some(_) if !m.shared() => VmaClass::Unsupported(format!(
            "{range}: private mapping of {} (not supported)",
            m.path
        )),
        Some(Source::Sysv { .. }) if m.offset != 0 => VmaClass::Unsupported(format!(
            "{range}: part of a System V shared memory attachment was unmapped (not supported)"
        )),
        Some(_) => VmaClass::Skip,
    }
}

/// The mappings of `pid` to save with it (refused as `collect::vmas_with` does), and apart
/// those of shared objects.
pub(crate) fn split(
    pid: i32,
    stat: &dyn Fn(&str) -> std::io::Result<std::fs::Metadata>,
    pod: i32,
) -> Result<(Vec<Vma>, Vec<ObjectMap>)> {
    let mut own = Vec::new();
    let mut shared = Vec::new();
    let mut reasons = Vec::new();
    for m in proc::maps(pid)? {
        match (classify(&m, stat, pod), source(&m)) {
            (VmaClass::Skip, Some(source)) => shared.push(ObjectMap {
                start: m.start,
                end: m.end,
                prot: m.prot(),
                offset: m.offset,
                source,
            }),
            (VmaClass::Keep(v), _) => own.push(v),
            (VmaClass::Skip, None) => {}
            (VmaClass::Unsupported(r), _) => reasons.push(r),
        }
    }
    if reasons.is_empty() {
        Ok((own, shared))
    } else {
        Err(Error::Refused { pid, reasons })
    }
}

/// Make the mappings of shared objects in restored process `c` (after its address space was
/// trimmed, before its own mappings).
pub(crate) fn restore(c: &mut Child, maps: &[ObjectMap], st: &mut PodState<'_>) -> Result<()> {
    for m in maps {
        let len = m.end - m.start;
        let what = format!("map {:#x}-{:#x} ({:?})", m.start, m.end, m.source);
        match m.source {
            Source::Memfd { ino } => {
                let file = memfd::made(st.objects, ino)
                    .ok_or_else(|| Error::BadImage(format!("{what}: memfd missing")))?;
                let fd = c.receive(file)?;
                let flags = (libc::MAP_SHARED | libc::MAP_FIXED) as u64;
                let r = c.main.call(
                    &what,
                    nr::MMAP,
                    &[m.start, len, m.prot as u64, flags, fd as u64, m.offset],
                );
                c.main.call("close", nr::CLOSE, &[fd as u64])?;
                r?;
            }
            Source::Sysv { id } => {
                let mut flags = 0;
                if m.prot & libc::PROT_WRITE as u32 == 0 {
                    flags |= SHM_RDONLY;
                }
                if m.prot & libc::PROT_EXEC as u32 != 0 {
                    flags |= SHM_EXEC;
                }
                let at = c.main.call(&what, SHMAT, &[id as u64, m.start, flags])?;
                if at != m.start {
                    return Err(Error::Restore(format!("{what}: attached at {at:#x}")));
                }
                if let Some(size) = st.sysv_size(id) {
                    let whole = size.div_ceil(4096) * 4096;
                    if whole > len {
                        c.main.call("munmap", nr::MUNMAP, &[m.end, whole - len])?;
                    }
                }
                if st.last_attach(id, c.ns_pid, m.start) {
                    c.main.call(
                        "shmctl(IPC_RMID)",
                        SHMCTL,
                        &[id as u64, libc::IPC_RMID as u64, 0],
                    )?;
                }
            }
        }
    }
    Ok(())
}
