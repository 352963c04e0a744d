//! Saving the pages of a frozen process.
//!
//! `PAGEMAP_SCAN` (or, before Linux 6.7, `/proc/PID/pagemap`) tells which pages exist: for
//! anonymous mappings every present or swapped page, for private file mappings only the pages
//! that were written (copied on write, no longer the file's). Never-touched pages, pages that
//! only map the shared zero page, and shared file mappings are not saved. Pages are read in
//! batches of up to 1024 ranges / 1 MiB per `process_vm_readv`; mappings without read
//! permission are read through `/proc/PID/mem`.

use crate::error::{Error, Result, SysContext, io_err};
use crate::image::format::{ImageWriter, pages_crc};
use crate::image::model::{Vma, VmaKind};
use crate::sys::mem::{self, AnonBuf, IOV_MAX};
use crate::sys::uffd;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

const PAGE: u64 = 4096;
const CHUNK: usize = 1 << 20;
const PRESENT: u64 = 1 << 63;
const SWAPPED: u64 = 1 << 62;
const FILE_PAGE: u64 = 1 << 61;
const PFN_MASK: u64 = (1 << 55) - 1;

/// Pages written.
#[derive(Debug, Default, Clone, Copy)]
pub struct MemStats {
    /// Number of 4 KiB pages saved.
    pub pages: u64,
}

/// Whether `PAGEMAP_SCAN` answered (cleared at its first `ENOTTY`/`EINVAL`: Linux < 6.7).
static PAGEMAP_SCAN_WORKS: AtomicBool = AtomicBool::new(true);

/// Ranges `(addr, len)` of `vma` whose contents must be saved, each at most `CHUNK` long.
pub(crate) fn ranges(pagemap: &File, vma: &Vma) -> Result<Vec<(u64, usize)>> {
    let private_file = matches!(vma.kind, VmaKind::File { .. }) && !vma.shared;
    match vma.kind {
        VmaKind::Anon => {}
        VmaKind::File { .. } if private_file => {}
        _ => return Ok(Vec::new()),
    }
    if PAGEMAP_SCAN_WORKS.load(Ordering::Relaxed) {
        let kind = match (&vma.kind, vma.shared) {
            (VmaKind::Anon, false) => uffd::Mapping::PrivateAnon,
            (VmaKind::Anon, true) => uffd::Mapping::SharedAnon,
            _ => uffd::Mapping::PrivateFile,
        };
        match uffd::scan_content(pagemap, vma.start, vma.end, kind) {
            Ok(found) => return Ok(chunked(found)),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTTY | libc::EINVAL)) => {
                tracing::debug!("no PAGEMAP_SCAN ({e}): reading the pagemap");
                PAGEMAP_SCAN_WORKS.store(false, Ordering::Relaxed);
            }
            Err(e) => return Err(io_err("PAGEMAP_SCAN")(e)),
        }
    }
    ranges_from_pagemap(pagemap, vma, private_file)
}

/// `[start, end)` ranges as `(addr, len)` pieces of at most `CHUNK` bytes (as the writer
/// batches them).
pub(crate) fn chunked(found: Vec<(u64, u64)>) -> Vec<(u64, usize)> {
    let mut out = Vec::new();
    for (mut s, e) in found {
        while s < e {
            let l = (e - s).min(CHUNK as u64);
            out.push((s, l as usize));
            s += l;
        }
    }
    out
}

/// [`ranges`] by reading the pagemap (8 bytes a page), for kernels without `PAGEMAP_SCAN`.
fn ranges_from_pagemap(pagemap: &File, vma: &Vma, private_file: bool) -> Result<Vec<(u64, usize)>> {
    let n = ((vma.end - vma.start) / PAGE) as usize;
    let mut raw = vec![0u8; n * 8];
    pagemap
        .read_exact_at(&mut raw, vma.start / PAGE * 8)
        .map_err(io_err("pagemap"))?;
    // Pages mapping the shared zero page read as zeros in a fresh mapping too: skip them.
    let zero = if vma.kind == VmaKind::Anon && !vma.shared {
        mem::zero_pfn()
    } else {
        None
    };
    let mut out: Vec<(u64, usize)> = Vec::new();
    for (i, c) in raw.chunks_exact(8).enumerate() {
        let e = u64::from_le_bytes(c.try_into().unwrap());
        let want = if private_file {
            e & PRESENT != 0 && e & FILE_PAGE == 0 || e & SWAPPED != 0
        } else {
            e & (PRESENT | SWAPPED) != 0 && (e & PRESENT == 0 || Some(e & PFN_MASK) != zero)
        };
        if !want {
            continue;
        }
        let addr = vma.start + i as u64 * PAGE;
        match out.last_mut() {
            Some((a, l)) if *a + *l as u64 == addr && *l < CHUNK => *l += PAGE as usize,
            _ => out.push((addr, PAGE as usize)),
        }
    }
    Ok(out)
}

/// One `process_vm_readv` worth of ranges.
struct Batch {
    ranges: Vec<(u64, usize)>,
    readable: bool,
}

/// Ranges to save chosen by the caller for some mappings (by start address) instead of what
/// the pagemap says (shared memory of a tree, whose pages other processes may have written).
pub type Overrides = std::collections::HashMap<u64, Vec<(u64, usize)>>;

/// Group the ranges to save into batches of at most `CHUNK` bytes and `IOV_MAX` ranges.
fn plan(pid: i32, vmas: &[Vma], overrides: &Overrides) -> Result<Vec<Batch>> {
    let pm_path = format!("/proc/{pid}/pagemap");
    let pagemap = File::open(&pm_path).map_err(io_err(&pm_path))?;
    let mut out: Vec<Batch> = Vec::new();
    let mut len = 0usize;
    for vma in vmas {
        let readable = vma.prot & libc::PROT_READ as u32 != 0;
        let chosen = match overrides.get(&vma.start) {
            Some(r) => r.clone(),
            None => ranges(&pagemap, vma)?,
        };
        for r in chosen {
            match out.last_mut() {
                Some(b)
                    if b.readable == readable && len + r.1 <= CHUNK && b.ranges.len() < IOV_MAX =>
                {
                    b.ranges.push(r);
                    len += r.1;
                }
                _ => {
                    out.push(Batch {
                        ranges: vec![r],
                        readable,
                    });
                    len = r.1;
                }
            }
        }
    }
    Ok(out)
}

/// Read one batch into `buf` and checksum each range as a PAGES frame.
fn fill(pid: i32, memf: &File, b: &Batch, buf: &mut [u8]) -> Result<Vec<u32>> {
    let total: usize = b.ranges.iter().map(|r| r.1).sum();
    let got = if b.readable {
        mem::read_remote(pid, &b.ranges, buf).unwrap_or(0)
    } else {
        0
    };
    if got != total {
        let mut off = 0;
        for &(a, l) in &b.ranges {
            memf.read_exact_at(&mut buf[off..off + l], a)
                .sys(|| format!("read {a:#x}"))?;
            off += l;
        }
    }
    let mut off = 0;
    Ok(b.ranges
        .iter()
        .map(|&(a, l)| {
            off += l;
            pages_crc(a, &buf[off - l..off])
        })
        .collect())
}

/// Copy buffers, allocated and touched before the process is frozen (a first touch of fresh
/// memory costs a page fault per page, which would otherwise be time frozen).
pub struct Buffers(Vec<AnonBuf>);

impl Buffers {
    /// Enough buffers for an image of about `estimate` bytes (at most four).
    pub fn new(estimate: u64) -> Buffers {
        let n = (estimate / CHUNK as u64 + 1).min(4) as usize;
        Buffers((0..n).filter_map(|_| AnonBuf::new(CHUNK).ok()).collect())
    }
}

/// Write every saved page of `vmas` as PAGES frames. A second thread reads the target's
/// memory and checksums it while this one writes.
pub fn write_memory<W: Write>(
    pid: i32,
    vmas: &[Vma],
    w: &mut ImageWriter<W>,
    bufs: Buffers,
) -> Result<MemStats> {
    write_memory_with(pid, vmas, w, bufs, &Overrides::new())
}

/// [`write_memory`], with the ranges of some mappings chosen by the caller.
pub fn write_memory_with<W: Write>(
    pid: i32,
    vmas: &[Vma],
    w: &mut ImageWriter<W>,
    bufs: Buffers,
    overrides: &Overrides,
) -> Result<MemStats> {
    let batches = plan(pid, vmas, overrides)?;
    let mem_path = format!("/proc/{pid}/mem");
    let memf = File::open(&mem_path).map_err(io_err(&mem_path))?;
    let (free_tx, free_rx) = mpsc::channel::<AnonBuf>();
    let (full_tx, full_rx) = mpsc::sync_channel::<Result<(usize, AnonBuf, Vec<u32>)>>(2);
    if bufs.0.is_empty() && !batches.is_empty() {
        return Err(Error::Restore("cannot allocate copy buffers".into()));
    }
    for b in bufs.0 {
        free_tx.send(b).ok();
    }
    let (batches, memf) = (&batches, &memf);
    // The closure owns both channel ends it uses, so an early error return drops them and
    // unblocks the reader thread before the scope joins it.
    std::thread::scope(move |sc| -> Result<MemStats> {
        let mut stats = MemStats::default();
        sc.spawn(move || {
            for (i, b) in batches.iter().enumerate() {
                let Ok(mut buf) = free_rx.recv() else { return };
                let r = fill(pid, memf, b, buf.bytes_mut()).map(|crcs| (i, buf, crcs));
                let stop = r.is_err();
                if full_tx.send(r).is_err() || stop {
                    return;
                }
            }
        });
        for _ in 0..batches.len() {
            let (i, buf, crcs) = full_rx.recv().map_err(|_| Error::Gone(pid))??;
            let mut off = 0;
            for (&(a, l), crc) in batches[i].ranges.iter().zip(crcs) {
                w.pages_with_crc(a, &buf.bytes()[off..off + l], crc)
                    .map_err(io_err("image"))?;
                off += l;
                stats.pages += (l as u64) / PAGE;
            }
            free_tx.send(buf).ok();
        }
        Ok(stats)
    })
}
