//! Turning `/proc/PID/maps` lines into saved mappings, or reasons they cannot be saved.

use crate::image::model::{Vma, VmaKind};
use crate::proc::MapLine;
use std::os::unix::fs::MetadataExt;

/// Outcome for one mapping line.
pub enum VmaClass {
    /// Save it.
    Keep(Vma),
    /// Leave it out (`[vsyscall]`, fixed by the kernel in every process).
    Skip,
    /// Cannot be saved: the reason.
    Unsupported(String),
}

/// Classify one line of `/proc/PID/maps` (files checked in our own view).
pub fn classify(m: &MapLine) -> VmaClass {
    classify_with(m, &|p| std::fs::metadata(p))
}

/// Classify one line of `/proc/PID/maps`, looking files up with `stat` (for a pod: in the
/// pod's view of the file system).
pub fn classify_with(
    m: &MapLine,
    stat: &dyn Fn(&str) -> std::io::Result<std::fs::Metadata>,
) -> VmaClass {
    let vma = |kind| Vma {
        start: m.start,
        end: m.end,
        prot: m.prot(),
        shared: m.shared(),
        growsdown: m.path == "[stack]",
        name: m
            .path
            .strip_prefix("[anon:")
            .or_else(|| m.path.strip_prefix("[anon_shmem:"))
            .and_then(|n| n.strip_suffix(']'))
            .map(str::to_string),
        kind,
    };
    let range = format!("{:x}-{:x}", m.start, m.end);
    match m.path.as_str() {
        "[vsyscall]" => return VmaClass::Skip,
        "[vdso]" => return VmaClass::Keep(vma(VmaKind::Vdso)),
        "[vvar]" | "[vvar_vclock]" => return VmaClass::Keep(vma(VmaKind::Vvar)),
        "" | "[heap]" | "[stack]" if m.inode == 0 => return VmaClass::Keep(vma(VmaKind::Anon)),
        p if (p.starts_with("[anon:") || p.starts_with("[anon_shmem:")) && m.inode == 0 => {
            return VmaClass::Keep(vma(VmaKind::Anon));
        }
        "/dev/zero (deleted)" if m.shared() => return VmaClass::Keep(vma(VmaKind::Anon)),
        _ => {}
    }
    let p = &m.path;
    if p.starts_with("/SYSV") {
        return VmaClass::Unsupported(format!("mapping {range}: System V shared memory"));
    }
    if p.starts_with("/memfd:") {
        return VmaClass::Unsupported(format!("mapping {range}: memfd {p}"));
    }
    if p.ends_with(" (deleted)") {
        return VmaClass::Unsupported(format!("mapping {range}: deleted file {p}"));
    }
    if !p.starts_with('/') {
        return VmaClass::Unsupported(format!("mapping {range}: special mapping {p}"));
    }
    match stat(p) {
        Ok(md) if md.is_file() && (md.ino() == m.inode) => VmaClass::Keep(vma(VmaKind::File {
            path: p.clone(),
            offset: m.offset,
        })),
        Ok(md) if md.is_file() => VmaClass::Unsupported(format!(
            "mapping {range}: {p} was replaced on disk since it was mapped"
        )),
        Ok(_) => VmaClass::Unsupported(format!("mapping {range}: {p} is not a regular file")),
        Err(e) => VmaClass::Unsupported(format!("mapping {range}: {p}: {e}")),
    }
}
