//! Restoring a process from an image.
//!
//! The image file is opened without following symbolic links from a directory owned by the
//! caller or root, mapped, and validated in full (header, version, flags, every checksum,
//! every metadata field, CPU features), the caller's right to the image's credentials is
//! checked ([`crate::creds`]) and so is that the original process no longer runs — all before
//! anything is created. Then an empty placeholder process is forked with the saved PID
//! (`clone3` with `set_tid`) when that PID is free and the caller may choose PIDs, taken over
//! with ptrace, and rebuilt by system calls injected into it. A failure at any step kills the
//! placeholder.

pub(crate) mod child;
mod files;
pub(crate) mod memory;
pub(crate) mod task;

use crate::creds::{Credentials, CredsPlan, authorize};
use crate::error::{Error, Result, io_err};
use crate::image::IMAGE_FILE;
use crate::image::format::{ParsedImage, parse};
use crate::image::key::ImageKey;
use crate::image::model::{Origin, ProcessImage};
use crate::image::validate::validate;
use crate::imagedir::ImageDir;
use crate::inject::Tracee;
use crate::sys::{mem::FileMap, nr};
use child::Child;
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
    /// Restore even though the original process still runs (a second copy).
    pub force: bool,
    /// Whose credentials the restored process runs with.
    pub credentials: Credentials,
    /// This machine's image key: root needs it to restore a signed image of another user.
    pub key: Option<ImageKey>,
}

/// Result of a restore.
#[derive(Debug, Clone)]
pub struct RestoreStats {
    /// PID of the restored process.
    pub pid: i32,
    /// Time from opening the image to the process running.
    pub elapsed: Duration,
    /// Where the restored process differs from the original, one line each (a new PID, a
    /// deleted file under another name, an executable link the caller may not set…).
    pub notes: Vec<String>,
}

/// Open (safely, see [`ImageDir::open`]) and map the image in `dir`.
pub fn load(dir: &Path) -> Result<(FileMap, PathBuf)> {
    let d = ImageDir::open(dir)?;
    let file = d.open_file(IMAGE_FILE)?;
    let path = d.path().join(IMAGE_FILE);
    let map = FileMap::new(&file).map_err(io_err(&path))?;
    Ok((map, path))
}

/// Whether a process started as `origin` still runs as `pid`.
fn original_runs(pid: i32, origin: &Origin) -> bool {
    let Ok(st) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let zombie = st
        .rsplit_once(") ")
        .is_some_and(|(_, r)| r.starts_with('Z') || r.starts_with('X'));
    let same = crate::proc::origin(pid).is_ok_and(|o| &o == origin);
    same && !zombie && !origin.boot_id.is_empty()
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

/// Everything checked before anything is created: fields, credentials, the original.
fn admit(img: &ParsedImage<'_>, opts: &RestoreOptions) -> Result<CredsPlan> {
    validate(img)?;
    let plan = authorize(img, opts.credentials, opts.key.as_ref())?;
    let m: &ProcessImage = &img.meta;
    if !opts.force && original_runs(m.pid, &m.origin) {
        return Err(Error::OriginalRunning(m.pid));
    }
    Ok(plan)
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
    let plan = admit(&img, opts)?;
    let m = &img.meta;
    let mut notes = Vec::new();
    let free = pid_free_soon(m.pid);
    if !free {
        notes.push(format!("PID {} is in use: restored under a new PID", m.pid));
    }
    let mut child = Child::create(free.then_some(m.pid), &m.vmas)?;
    let same_ids = free && child.pid == m.pid;
    if free && !same_ids {
        notes.push(format!(
            "PID {} could not be chosen (taken meanwhile, or choosing PIDs needs \
             CAP_CHECKPOINT_RESTORE): restored under a new PID",
            m.pid
        ));
    }
    let pid = child.pid;
    tracing::debug!(pid, scratch = child.scratch, "placeholder ready");
    memory::build(&mut child, &m.vmas, &img.pages)?;
    memory::set_mm(&mut child, &m.mm, &mut notes)?;
    tracing::debug!(
        pid,
        vmas = m.vmas.len(),
        pages = img.pages.len(),
        "memory restored"
    );
    let owner = match &plan {
        CredsPlan::Keep if opts.credentials == Credentials::Caller => files::Owner::Caller,
        _ => files::Owner::Saved,
    };
    files::restore_files(&mut child, &m.files, &img.files, opts, owner, &mut notes)?;
    task::restore_attrs(&mut child, &m.attrs, false)?;
    tracing::debug!(pid, files = m.files.len(), "files and attributes restored");
    let tids = task::create_threads(&mut child, &m.threads, same_ids)?;
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
    if let CredsPlan::Set(creds) = &plan {
        for t in &mut tracees {
            task::set_creds(&child, t, creds)?;
        }
        task::set_creds(&child, &mut main, creds)?;
    }
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
    for n in &notes {
        tracing::warn!(pid, "{n}");
    }
    Ok(RestoreStats {
        pid,
        elapsed,
        notes,
    })
}
