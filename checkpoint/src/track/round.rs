//! One pre-copy round: the pages of a running pod written since the previous round (all of
//! them in round 0), as a rounds stream (see `image::format`).
//!
//! The task runs meanwhile. A page is protected before it is read (the tracker's scan does
//! both in that order), so a write that races with the copy marks the page again and the next
//! round (or the final stop) carries it. A range that cannot be read — unmapped meanwhile —
//! is handed back to the tracker as dirty.

use super::{Dirty, DirtyTracker};
use crate::dump::memory::{chunked, ranges};
use crate::error::{Result, io_err};
use crate::image::format::ImageWriter;
use crate::image::model::{Vma, VmaKind};
use crate::proc::{self, MapLine};
use crate::sys::mem::{self, IOV_MAX};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;

const CHUNK: usize = 1 << 20;

/// What a round carried.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundStats {
    /// Bytes of the stream.
    pub bytes: u64,
    /// Pages carried.
    pub pages: u64,
    /// Bytes the tracker reported written (before keeping only pages with content).
    pub dirty_bytes: u64,
}

/// The private mappings of a map listing, as the dump sees them (for `ranges`).
fn private_vmas(maps: &[MapLine]) -> Vec<Vma> {
    maps.iter()
        .filter(|m| !m.shared() && !m.path.starts_with("[v") && m.end > m.start)
        .map(|m| Vma {
            start: m.start,
            end: m.end,
            prot: m.prot(),
            shared: false,
            growsdown: false,
            name: None,
            kind: if m.inode == 0 {
                VmaKind::Anon
            } else {
                VmaKind::File {
                    path: m.path.clone(),
                    offset: m.offset,
                }
            },
        })
        .collect()
}

/// Write one round of every tracked process to `out`: all pages with content when `first`,
/// else those written since the previous round.
pub fn write_round(tracker: &mut DirtyTracker, first: bool, out: impl Write) -> Result<RoundStats> {
    let name = "pre-copy round";
    let mut w = ImageWriter::new_rounds(std::io::BufWriter::with_capacity(CHUNK, out))
        .map_err(io_err(name))?;
    let mut stats = RoundStats::default();
    let mut buf = vec![0u8; CHUNK];
    for (host, pod_pid) in tracker.tracked() {
        // A process that cannot be read now (it is ending) is left out: the final dump
        // takes whatever of it the other side does not hold.
        let Ok(maps) = proc::maps(host) else {
            continue;
        };
        let pm = format!("/proc/{host}/pagemap");
        let Ok(pagemap) = File::open(&pm) else {
            continue;
        };
        let dirty = if first {
            Dirty::whole()
        } else {
            tracker.written(host)
        };
        stats.dirty_bytes += dirty.bytes();
        let memf = File::open(format!("/proc/{host}/mem")).ok();
        w.proc_marker(pod_pid).map_err(io_err(name))?;
        let mut failed = Vec::new();
        for vma in private_vmas(&maps) {
            // After round 0, the tracker's report just walked the registered mappings.
            let known = (!first)
                .then(|| tracker.content_in(host, vma.start, vma.end))
                .flatten();
            let content = match known {
                Some(found) => chunked(found),
                None => match ranges(&pagemap, &vma) {
                    Ok(c) => c,
                    Err(_) => {
                        failed.push((vma.start, vma.end));
                        continue;
                    }
                },
            };
            for batch in batches(&dirty.select(&content)) {
                let total: usize = batch.iter().map(|r| r.1).sum();
                let data = &mut buf[..total];
                if !read(host, memf.as_ref(), &batch, data) {
                    failed.extend(batch.iter().map(|&(a, l)| (a, a + l as u64)));
                    continue;
                }
                let mut off = 0;
                for &(a, l) in &batch {
                    w.pages(a, &data[off..off + l]).map_err(io_err(name))?;
                    off += l;
                    stats.pages += l as u64 / 4096;
                }
                tracker.note_held(host, batch.iter().map(|&(a, l)| (a, a + l as u64)));
            }
        }
        if !failed.is_empty() {
            tracker.redirty(host, failed);
        }
    }
    let (_, bytes) = w.finish().map_err(io_err(name))?;
    stats.bytes = bytes;
    Ok(stats)
}

/// Ranges grouped into reads of at most one chunk and `IOV_MAX` ranges (a range is at most
/// one chunk long, as `ranges` makes them).
fn batches(wanted: &[(u64, usize)]) -> Vec<Vec<(u64, usize)>> {
    let mut out: Vec<Vec<(u64, usize)>> = Vec::new();
    let mut len = 0;
    for &(a, l) in wanted {
        match out.last_mut() {
            Some(b) if len + l <= CHUNK && b.len() < IOV_MAX => {
                b.push((a, l));
                len += l;
            }
            _ => {
                out.push(vec![(a, l)]);
                len = l;
            }
        }
    }
    out
}

/// Read `batch` of the running `pid` into `data`; `/proc/PID/mem` for what
/// `process_vm_readv` cannot read (no read permission).
fn read(pid: i32, memf: Option<&File>, batch: &[(u64, usize)], data: &mut [u8]) -> bool {
    if mem::read_remote(pid, batch, data).is_ok_and(|n| n == data.len()) {
        return true;
    }
    let Some(memf) = memf else { return false };
    let mut off = 0;
    for &(a, l) in batch {
        if memf.read_exact_at(&mut data[off..off + l], a).is_err() {
            return false;
        }
        off += l;
    }
    true
}
