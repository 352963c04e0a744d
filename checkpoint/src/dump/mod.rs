//! Taking a checkpoint: freeze, collect, write the image, then end or release the process.

pub(crate) mod collect;
mod files;
pub(crate) mod memory;

pub use collect::peek;

use crate::check::check;
use crate::error::{Result, io_err};
use crate::freeze::{Frozen, freeze};
use crate::image::IMAGE_FILE;
use crate::image::format::ImageWriter;
use crate::image::key::ImageKey;
use crate::imagedir::ImageDir;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// Largest image preallocated before the freeze when the process is ended afterwards.
const PREALLOCATE_MAX: u64 = 256 << 20;

/// Options of [`checkpoint`](crate::checkpoint).
#[derive(Debug, Clone, Default)]
pub struct DumpOptions {
    /// Let the process run on after the checkpoint instead of ending it.
    pub leave_running: bool,
    /// This machine's image key. An image whose credentials differ from the caller's is
    /// signed with it (root needs that signature to restore it under those credentials). An
    /// image with the caller's own credentials is not: whoever has them needs no signature,
    /// and signing costs about a second per GiB.
    pub key: Option<ImageKey>,
}

/// Figures of one checkpoint.
#[derive(Debug, Clone, Default)]
pub struct DumpStats {
    /// How long the process was stopped.
    pub frozen: Duration,
    /// Whole call, from the check to the image on disk.
    pub total: Duration,
    /// Size of the image.
    pub bytes_written: u64,
    /// Memory pages saved.
    pub pages: u64,
}

/// Collect the frozen process and write its whole image stream to `out`.
fn write_image<W: Write>(
    frozen: &mut Frozen,
    out: W,
    name: &Path,
    bufs: memory::Buffers,
    key: Option<&ImageKey>,
) -> Result<(W, u64, u64)> {
    let pid = frozen.pid;
    let vmas = collect::vmas(pid)?;
    let (files, contents) = files::collect_files(pid)?;
    let mut img = collect::collect(frozen, vmas)?;
    img.files = files;
    tracing::debug!(
        pid,
        vmas = img.vmas.len(),
        threads = img.threads.len(),
        files = img.files.len(),
        "metadata collected"
    );
    let key = key.filter(|_| img.attrs.creds != crate::creds::caller());
    let mut w = ImageWriter::new(out, key).map_err(io_err(name))?;
    w.meta(&img).map_err(io_err(name))?;
    let mem = memory::write_memory(pid, &img.vmas, &mut w, bufs)?;
    for (i, c) in contents.iter().enumerate() {
        w.file_data(i as u32, c).map_err(io_err(name))?;
    }
    let (out, bytes) = w.finish().map_err(io_err(name))?;
    Ok((out, bytes, mem.pages))
}

/// Checkpoint `pid` as an image stream written to `out` (a socket, a pipe, …) instead of a
/// directory; the bytes are exactly those of `image.zckpt`. On failure the process is left
/// running (the receiver sees a stream without an END frame and must discard it).
pub fn checkpoint_to_writer(
    pid: i32,
    out: &mut dyn Write,
    opts: &DumpOptions,
) -> Result<DumpStats> {
    let t0 = Instant::now();
    check(pid)?.into_result()?;
    let bufs = memory::Buffers::new(resident_memory(pid));
    let out = BufWriter::with_capacity(1 << 20, out);
    let mut frozen = freeze(pid)?;
    let t_frozen = Instant::now();
    let key = opts.key.as_ref();
    let (_, bytes_written, pages) = write_image(&mut frozen, out, "stream".as_ref(), bufs, key)?;
    let frozen_time;
    if opts.leave_running {
        frozen.release()?;
        frozen_time = t_frozen.elapsed();
    } else {
        frozen_time = t_frozen.elapsed();
        frozen.kill();
    }
    Ok(DumpStats {
        frozen: frozen_time,
        total: t0.elapsed(),
        bytes_written,
        pages,
    })
}

/// Checkpoint `pid` into `out_dir` (see the crate docs). The directory is created mode 0700
/// if missing; an existing one must be a real directory of the caller's that group and others
/// cannot write. The image is written to a new 0600 file beside the old image, never through a
/// symbolic link, and renamed into place.
pub fn checkpoint(pid: i32, out_dir: &Path, opts: &DumpOptions) -> Result<DumpStats> {
    let t0 = Instant::now();
    check(pid)?.into_result()?;
    let dir = ImageDir::create(out_dir)?;
    let part_name = format!("{IMAGE_FILE}.part");
    let part = dir.path().join(&part_name);
    let file = dir.create_file(&part_name)?;
    // Allocate the image's storage before freezing: on tmpfs, allocating pages is a large part
    // of writing them, and this way it is not time the process spends stopped. It costs a
    // little more in total, so a large process that is ended anyway skips it.
    let estimate = resident_memory(pid);
    if estimate > 0 && (opts.leave_running || estimate <= PREALLOCATE_MAX) {
        let _ = crate::sys::fallocate(&file, estimate + (1 << 20));
    }
    let bufs = memory::Buffers::new(estimate);
    let out = BufWriter::with_capacity(1 << 20, file);
    let mut frozen = match freeze(pid) {
        Ok(f) => f,
        Err(e) => {
            dir.remove(&part_name);
            return Err(e);
        }
    };
    let t_frozen = Instant::now();
    let written = (|| -> Result<(u64, u64)> {
        let (out, bytes, pages) = write_image(&mut frozen, out, &part, bufs, opts.key.as_ref())?;
        let file = out
            .into_inner()
            .map_err(|e| io_err(&part)(e.into_error()))?;
        file.set_len(bytes).map_err(io_err(&part))?;
        file.sync_all().map_err(io_err(&part))?;
        Ok((bytes, pages))
    })();
    let (bytes_written, pages) = match written {
        Ok(v) => v,
        Err(e) => {
            dir.remove(&part_name);
            drop(frozen);
            return Err(e);
        }
    };
    if let Err(e) = dir.rename(&part_name, IMAGE_FILE) {
        dir.remove(&part_name);
        return Err(e);
    }
    // Frozen time ends when the process runs again, or when it is sent SIGKILL.
    let frozen_time;
    if opts.leave_running {
        frozen.release()?;
        frozen_time = t_frozen.elapsed();
    } else {
        frozen_time = t_frozen.elapsed();
        frozen.kill();
    }
    tracing::info!(
        pid,
        ?frozen_time,
        bytes_written,
        pages,
        "checkpoint written"
    );
    Ok(DumpStats {
        frozen: frozen_time,
        total: t0.elapsed(),
        bytes_written,
        pages,
    })
}

/// Resident anonymous and dirty shared memory of `pid` (from `/proc/PID/smaps_rollup`): about
/// what its image will hold.
/// About how much memory `pid` has resident, from the kernel's counters (`statm`: costs
/// nothing, unlike `smaps_rollup`, which walks every page — 17 ms for 1 GiB, while frozen):
/// enough to size copy buffers.
pub(crate) fn resident_estimate(pid: i32) -> u64 {
    crate::proc::read(pid, "statm")
        .ok()
        .and_then(|t| t.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

pub(crate) fn resident_memory(pid: i32) -> u64 {
    let Ok(text) = crate::proc::read(pid, "smaps_rollup") else {
        return 0;
    };
    let kib: u64 = text
        .lines()
        .filter(|l| l.starts_with("Anonymous:") || l.starts_with("Shared_Dirty:"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum();
    kib * 1024
}
