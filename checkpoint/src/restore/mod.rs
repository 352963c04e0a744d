//! Restoring a process from an image.
//!
//! The whole image is mapped and validated (header, version, every checksum, CPU features,
//! privileges) before anything is created. Then an empty placeholder process is forked with
//! the saved PID (`clone3` with `set_tid`) when that PID is free, taken over with ptrace, and
//! rebuilt by system calls injected into it. A failure at any step kills the placeholder.

pub(crate) mod child;
mod files;
pub(crate) mod memory;
pub(crate) mod task;

use crate::error::{Error, Result, io_err};
use crate::image::IMAGE_FILE;
use crate::image::format::{ParsedImage, parse};
use crate::inject::Tracee;
use crate::sys::{self, mem::FileMap, nr};
use child::Child;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Options of [`restore`](crate::restore).
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// Where stdin goes if it was a terminal or pipe (default `/dev/null`).
    pub stdin: Option<PathBuf>,
    /// Where stdout goes if it was a terminal or pipe (default `/dev/null`).
    pub stdout: Option<PathBuf>,
    /// Where stderr goes if it was a terminal or pipe (default `/dev/null`).
    pub stderr: Option<PathBuf>,
}

/// Result of a restore.
#[derive(Debug, Clone)]
pub struct RestoreStats {
    /// PID of the restored process.
    pub pid: i32,
    /// Time from opening the image to the process running.
    pub elapsed: Duration,
}

/// Map and validate the image in `dir`.
pub fn load(dir: &Path) -> Result<(FileMap, PathBuf)> {
    let path = dir.join(IMAGE_FILE);
    let file = File::open(&path).map_err(io_err(&path))?;
    let map = FileMap::new(&file).map_err(io_err(&path))?;
    Ok((map, path))
}

fn validate(img: &ParsedImage<'_>) -> Result<()> {
    let m = &img.meta;
    let missing = m.xcr0 & !sys::xcr0();
    if missing != 0 {
        return Err(Error::BadImage(format!(
            "saved on a CPU with XSAVE features {missing:#x} that this CPU lacks"
        )));
    }
    if m.threads.is_empty() || m.threads[0].tid != m.pid {
        return Err(Error::BadImage("no thread-group leader".into()));
    }
    if sys::euid() != 0 {
        return Err(Error::Restore(
            "restoring needs root (clone3 set_tid, PR_SET_MM_MAP exe, credentials)".into(),
        ));
    }
    Ok(())
}

/// Is `pid` free? A zombie holding it (the checkpointed original, not yet reaped by its
/// parent) gets up to a quarter of a second to go away.
fn pid_free_soon(pid: i32) -> bool {
    let path = format!("/proc/{pid}");
    for _ in 0..25 {
        let zombie = match std::fs::read_to_string(format!("{path}/stat")) {
            Err(_) => return true,
            Ok(s) => s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')),
        };
        if !zombie {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// Restore the process saved in `image_dir` (see the crate docs).
pub fn restore(image_dir: &Path, opts: &RestoreOptions) -> Result<RestoreStats> {
    let t0 = Instant::now();
    let (map, _path) = load(image_dir)?;
    let mut stats = restore_from_bytes(map.bytes(), opts)?;
    stats.elapsed = t0.elapsed();
    Ok(stats)
}

/// Restore from a complete image stream held in memory (for example received from a
/// socket); validated in full before anything is created.
pub fn restore_from_bytes(image: &[u8], opts: &RestoreOptions) -> Result<RestoreStats> {
    let t0 = Instant::now();
    let img = parse(image)?;
    validate(&img)?;
    let m = &img.meta;
    let free = pid_free_soon(m.pid);
    if !free {
        tracing::warn!(pid = m.pid, "PID in use: restoring under a new PID");
    }
    let mut child = Child::create(free.then_some(m.pid), &m.vmas)?;
    let pid = child.pid;
    tracing::debug!(pid, scratch = child.scratch, "placeholder ready");
    memory::build(&mut child, &m.vmas, &img.pages)?;
    memory::set_mm(&mut child, &m.mm)?;
    tracing::debug!(
        pid,
        vmas = m.vmas.len(),
        pages = img.pages.len(),
        "memory restored"
    );
    files::restore_files(&mut child, &m.files, &img.files, opts)?;
    task::restore_attrs(&mut child, &m.attrs, false)?;
    tracing::debug!(pid, files = m.files.len(), "files and attributes restored");
    let tids = task::create_threads(&mut child, &m.threads, free)?;
    let mut tracees = Vec::new();
    for (th, &tid) in m.threads.iter().skip(1).zip(&tids) {
        let mut t = Tracee::new(pid, tid, child.scratch)?;
        task::thread_state(&child, &mut t, th)?;
        tracees.push(t);
    }
    let mut main = child.main.clone();
    task::thread_state(&child, &mut main, &m.threads[0])?;
    let all_tids: Vec<i32> = std::iter::once(pid).chain(tids.iter().copied()).collect();
    let targets: Vec<_> = m.threads.iter().zip(all_tids.iter().copied()).collect();
    task::queue_signals(&mut child, &m.attrs.shared_pending, &targets)?;
    for t in &mut tracees {
        task::set_creds(&child, t, &m.attrs)?;
    }
    task::set_creds(&child, &mut main, &m.attrs)?;
    main.call(
        "munmap scratch",
        nr::MUNMAP,
        &[child.scratch, child::SCRATCH],
    )?;
    for (th, tid) in targets.iter().rev() {
        task::release_thread(pid, *tid, th)?;
    }
    child.disarm();
    let elapsed = t0.elapsed();
    tracing::info!(pid, ?elapsed, "restored");
    Ok(RestoreStats { pid, elapsed })
}
