//! Saving the pages of a frozen process.
//!
//! `/proc/PID/pagemap` tells which pages exist: for anonymous mappings every present page, for
//! private file mappings only the pages that were written (copied on write, no longer the
//! file's). Never-touched pages and shared file mappings are not saved. Pages are read in
//! batches of up to 1024 ranges / 8 MiB per `process_vm_readv`; mappings without read
//! permission are read through `/proc/PID/mem`.

use crate::error::{Result, SysContext, io_err};
use crate::image::format::ImageWriter;
use crate::image::model::{Vma, VmaKind};
use crate::sys::mem::{self, IOV_MAX};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;

const PAGE: u64 = 4096;
const CHUNK: usize = 8 << 20;
const PRESENT: u64 = 1 << 63;
const SWAPPED: u64 = 1 << 62;
const FILE_PAGE: u64 = 1 << 61;

/// Pages and bytes written.
#[derive(Debug, Default, Clone, Copy)]
pub struct MemStats {
    /// Number of 4 KiB pages saved.
    pub pages: u64,
}

/// Ranges `(addr, len)` of `vma` whose contents must be saved.
fn ranges(pagemap: &File, vma: &Vma) -> Result<Vec<(u64, usize)>> {
    let private_file = matches!(vma.kind, VmaKind::File { .. }) && !vma.shared;
    match vma.kind {
        VmaKind::Anon => {}
        VmaKind::File { .. } if private_file => {}
        _ => return Ok(Vec::new()),
    }
    let n = ((vma.end - vma.start) / PAGE) as usize;
    let mut raw = vec![0u8; n * 8];
    pagemap
        .read_exact_at(&mut raw, vma.start / PAGE * 8)
        .map_err(io_err("pagemap"))?;
    let mut out: Vec<(u64, usize)> = Vec::new();
    for (i, c) in raw.chunks_exact(8).enumerate() {
        let e = u64::from_le_bytes(c.try_into().unwrap());
        let want = if private_file {
            e & PRESENT != 0 && e & FILE_PAGE == 0 || e & SWAPPED != 0
        } else {
            e & (PRESENT | SWAPPED) != 0
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

/// Write every saved page of `vmas` as PAGES frames.
pub fn write_memory<W: Write>(pid: i32, vmas: &[Vma], w: &mut ImageWriter<W>) -> Result<MemStats> {
    let pm_path = format!("/proc/{pid}/pagemap");
    let pagemap = File::open(&pm_path).map_err(io_err(&pm_path))?;
    let mem_path = format!("/proc/{pid}/mem");
    let memf = File::open(&mem_path).map_err(io_err(&mem_path))?;
    let mut buf = vec![0u8; CHUNK];
    let mut stats = MemStats::default();
    let mut batch: Vec<(u64, usize)> = Vec::new();
    let mut batch_len = 0usize;
    let mut flush = |batch: &mut Vec<(u64, usize)>, readable: bool| -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let total: usize = batch.iter().map(|r| r.1).sum();
        let got = if readable {
            mem::read_remote(pid, batch, &mut buf).unwrap_or(0)
        } else {
            0
        };
        if got != total {
            let mut off = 0;
            for &(a, l) in batch.iter() {
                memf.read_exact_at(&mut buf[off..off + l], a)
                    .sys(|| format!("read {a:#x}"))?;
                off += l;
            }
        }
        let mut off = 0;
        for &(a, l) in batch.iter() {
            w.pages(a, &buf[off..off + l]).map_err(io_err("image"))?;
            off += l;
            stats.pages += (l as u64) / PAGE;
        }
        batch.clear();
        Ok(())
    };
    for vma in vmas {
        let readable = vma.prot & libc::PROT_READ as u32 != 0;
        for r in ranges(&pagemap, vma)? {
            if batch_len + r.1 > CHUNK || batch.len() == IOV_MAX {
                flush(&mut batch, true)?;
                batch_len = 0;
            }
            batch.push(r);
            batch_len += r.1;
        }
        if !readable {
            flush(&mut batch, false)?;
            batch_len = 0;
        }
    }
    flush(&mut batch, true)?;
    Ok(stats)
}
