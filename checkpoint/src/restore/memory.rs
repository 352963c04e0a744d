//! Rebuilding the address space: mappings, page contents, protections, `PR_SET_MM_MAP`.
//!
//! Anonymous memory is recreated as anonymous mappings and filled with the saved bytes
//! (never mapped from the image, so `MADV_DONTNEED` still yields zeros). Private file mappings
//! are mapped from their file and the written pages overlaid; shared file mappings are mapped
//! with their final protection and keep the file's current content.

use super::child::Child;
use crate::error::{Error, Result};
use crate::image::model::{MmInfo, Vma, VmaKind};
use crate::sys::{mem, nr};
use std::collections::HashMap;

const PR_SET_MM: u64 = 35;
const PR_SET_MM_MAP: u64 = 14;
const PR_SET_VMA: u64 = 0x5356_4d41;
const PR_SET_VMA_ANON_NAME: u64 = 0;
const PARALLEL_MIN: usize = 64 << 20;

/// Create every mapping of `vmas` (except the vDSO, already there) and fill in `pages`.
pub fn build(child: &mut Child, vmas: &[Vma], pages: &[(u64, &[u8])]) -> Result<()> {
    build_with(child, vmas, pages, &[])
}

/// [`build`], where the shared anonymous mappings inside `inherited` already exist (mapped
/// read-write by an ancestor and inherited over fork, so they stay shared).
pub fn build_with(
    child: &mut Child,
    vmas: &[Vma],
    pages: &[(u64, &[u8])],
    inherited: &[(u64, u64)],
) -> Result<()> {
    let rw = (libc::PROT_READ | libc::PROT_WRITE) as u32;
    let mut fds: HashMap<(String, bool), i32> = HashMap::new();
    let mut mapped_prot = Vec::with_capacity(vmas.len());
    for v in vmas {
        let len = v.end - v.start;
        let (prot, flags, fd, off) = match &v.kind {
            VmaKind::Vdso | VmaKind::Vvar => {
                mapped_prot.push(v.prot);
                continue;
            }
            VmaKind::Anon
                if v.shared && inherited.iter().any(|&(a, b)| a <= v.start && v.end <= b) =>
            {
                mapped_prot.push(rw);
                continue;
            }
            VmaKind::Anon => {
                let mut f = libc::MAP_ANONYMOUS | libc::MAP_FIXED;
                f |= if v.shared {
                    libc::MAP_SHARED
                } else {
                    libc::MAP_PRIVATE
                };
                if v.growsdown {
                    f |= libc::MAP_GROWSDOWN;
                }
                (rw, f, -1i32, 0u64)
            }
            VmaKind::File { path, offset } => {
                let write = v.shared && v.prot & libc::PROT_WRITE as u32 != 0;
                let fd = match fds.get(&(path.clone(), write)) {
                    Some(&fd) => fd,
                    None => {
                        let acc = if write { libc::O_RDWR } else { libc::O_RDONLY };
                        let fd = child.open(path, acc | libc::O_CLOEXEC, 0)?;
                        fds.insert((path.clone(), write), fd);
                        fd
                    }
                };
                // Map read-write only when written pages must be put back, so that the
                // kernel's accounting flags (and so VMA merging) match the original.
                let i = pages.partition_point(|p| p.0 < v.start);
                let has_pages = pages.get(i).is_some_and(|p| p.0 < v.end);
                if v.shared {
                    (v.prot, libc::MAP_SHARED | libc::MAP_FIXED, fd, *offset)
                } else if has_pages {
                    (rw, libc::MAP_PRIVATE | libc::MAP_FIXED, fd, *offset)
                } else {
                    (v.prot, libc::MAP_PRIVATE | libc::MAP_FIXED, fd, *offset)
                }
            }
        };
        child.main.call(
            &format!("mmap {:#x}-{:#x}", v.start, v.end),
            nr::MMAP,
            &[
                v.start,
                len,
                prot as u64,
                flags as u64,
                fd as i64 as u64,
                off,
            ],
        )?;
        mapped_prot.push(prot);
        if let Some(name) = &v.name {
            // Best effort: kernels without CONFIG_ANON_VMA_NAME refuse it (EINVAL).
            let p = child.put_str(0, name)?;
            let r = child.main.raw(
                nr::PRCTL,
                &[PR_SET_VMA, PR_SET_VMA_ANON_NAME, v.start, len, p],
            )?;
            if r < 0 {
                tracing::warn!(start = v.start, name, "cannot name the mapping ({r})");
            }
        }
    }
    for (_, fd) in fds {
        child.main.call("close", nr::CLOSE, &[fd as u64])?;
    }
    write_pages(child.pid, pages)?;
    for (v, mapped) in vmas.iter().zip(mapped_prot) {
        if mapped != v.prot {
            child.main.call(
                "mprotect",
                nr::MPROTECT,
                &[v.start, v.end - v.start, v.prot as u64],
            )?;
        }
    }
    Ok(())
}

/// Copy the saved pages into the child, on two threads for large images (the copy and the
/// child's page allocation are the bulk of a large restore).
fn write_pages(pid: i32, pages: &[(u64, &[u8])]) -> Result<()> {
    let write = |part: &[(u64, &[u8])]| -> Result<()> {
        mem::write_remote_many(pid, part).map_err(|(i, e)| {
            let (addr, data) = part[i];
            Error::Sys {
                op: format!("write {} bytes at {addr:#x}", data.len()),
                source: e,
            }
        })
    };
    let total: usize = pages.iter().map(|p| p.1.len()).sum();
    if total < PARALLEL_MIN {
        return write(pages);
    }
    let mut acc = 0;
    let mid = pages
        .iter()
        .position(|p| {
            acc += p.1.len();
            acc >= total / 2
        })
        .unwrap_or(0);
    let (a, b) = pages.split_at(mid);
    std::thread::scope(|sc| {
        let other = sc.spawn(|| write(b));
        let r = write(a);
        r.and(
            other
                .join()
                .unwrap_or_else(|_| Err(Error::Restore("writer panicked".into()))),
        )
    })
}

/// Set code/data/brk/stack/arg/env bounds, auxv and `/proc/PID/exe` in one `PR_SET_MM_MAP`.
/// Changing the executable link needs CAP_CHECKPOINT_RESTORE (or CAP_SYS_ADMIN); without it
/// the rest is set and the link stays the restorer's (noted).
pub fn set_mm(child: &mut Child, mm: &MmInfo, notes: &mut Vec<String>) -> Result<()> {
    // The placeholder's exe is the restorer's; if the image's is the same file, keep it (the
    // kernel refuses to switch exe while the old one is still mapped).
    let same = crate::proc::link(child.pid, "exe").is_ok_and(|e| e == mm.exe);
    let exe_fd = if same {
        -1
    } else {
        child.open(&mm.exe, libc::O_RDONLY | libc::O_CLOEXEC, 0)?
    };
    let r = prctl_mm_map(child, mm, exe_fd);
    let r = match r {
        Err(Error::Sys { source, .. })
            if exe_fd >= 0 && source.raw_os_error() == Some(libc::EPERM) =>
        {
            notes.push(format!(
                "/proc/PID/exe is the restorer's, not {}: changing it needs \
                 CAP_CHECKPOINT_RESTORE",
                mm.exe
            ));
            prctl_mm_map(child, mm, -1)
        }
        r => r,
    };
    if exe_fd >= 0 {
        child.main.call("close", nr::CLOSE, &[exe_fd as u64])?;
    }
    r.map_err(|e| Error::Restore(format!("{e} (mm layout {mm:x?})")))
}

fn prctl_mm_map(child: &mut Child, mm: &MmInfo, exe_fd: i32) -> Result<()> {
    let auxv: Vec<u8> = mm.auxv.iter().flat_map(|w| w.to_le_bytes()).collect();
    let auxv_addr = child.put(1024, &auxv)?;
    let mut s: Vec<u8> = mm
        .bounds()
        .iter()
        .chain([&auxv_addr])
        .flat_map(|w| w.to_le_bytes())
        .collect();
    s.extend((auxv.len() as u32).to_le_bytes());
    s.extend((exe_fd as u32).to_le_bytes());
    let p = child.put(0, &s)?;
    child
        .main
        .call(
            "PR_SET_MM_MAP",
            nr::PRCTL,
            &[PR_SET_MM, PR_SET_MM_MAP, p, s.len() as u64, 0],
        )
        .map(drop)
}
