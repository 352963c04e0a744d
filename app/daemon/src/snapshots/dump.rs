//! The checkpoint engine's part of a snapshot, on a blocking thread (the engine's ptrace
//! calls of one dump stay on the thread that makes them).
//!
//! With a dirty-page tracker from the previous snapshot the dump is a **delta** (only the
//! pages written since); without one it is **whole**, and a tracker is started first so the
//! next one can be a delta. Any failure drops the tracker: pages it reported may not be in
//! any file, so the next snapshot must be whole again.

use std::fs::File;
use std::io::BufWriter;
use std::time::{Duration, Instant};

use zos_checkpoint::{
    AfterDump, DirtyTracker, TreeDumpOptions, checkpoint_tree, checkpoint_tree_delta,
    checkpoint_tree_tracked,
};

use crate::error::{DaemonError, Result};

/// What a dump did.
#[derive(Debug, Clone, Copy)]
pub struct Dumped {
    /// A whole image (else a delta over the previous snapshot).
    pub whole: bool,
    /// Bytes written.
    pub bytes: u64,
    /// How long the task was stopped for the dump itself.
    pub frozen: Duration,
    /// How long starting the tracker took (a whole snapshot that starts a chain), during
    /// which the task was stopped for a moment too.
    pub tracker_start: Duration,
}

/// How the dump ends for the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// The task runs on; a tracker is kept for the next snapshot.
    RunOn,
    /// The task ends once the snapshot is kept (`zos suspend`); it resumes if keeping fails.
    End,
}

/// Dumps the pod whose init has host PID `root` into `file`, with `tracker` (from the
/// previous snapshot of the chain) if any, then calls `keep` (the file is complete and
/// synced: rename it, index it). Returns `keep`'s result and the tracker for the next
/// snapshot (`None` after any failure, or with [`Then::End`]).
pub fn dump<T>(
    root: i32,
    tracker: Option<DirtyTracker>,
    file: File,
    then: Then,
    keep: impl FnOnce(Dumped) -> Result<T>,
) -> (Result<T>, Option<DirtyTracker>) {
    let whole = tracker.is_none();
    let t = Instant::now();
    let mut tracker = match (tracker, then) {
        (Some(t), _) => Some(t),
        (None, Then::RunOn) => match DirtyTracker::start(root) {
            Ok(t) => Some(t),
            Err(e) => return (Err(engine(e)), None),
        },
        (None, Then::End) => None,
    };
    let tracker_start = if whole { t.elapsed() } else { Duration::ZERO };
    let opts = TreeDumpOptions {
        after: match then {
            Then::RunOn => AfterDump::LeaveRunning,
            Then::End => AfterDump::KeepFrozen,
        },
    };
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let result = match (&mut tracker, whole) {
        (Some(t), false) => checkpoint_tree_delta(root, &opts, t, &mut out),
        (Some(t), true) => checkpoint_tree_tracked(root, &opts, t, &mut out),
        (None, _) => checkpoint_tree(root, &opts, &mut out),
    };
    let mut stats = match result {
        Ok(s) => s,
        // The engine let the task run on.
        Err(e) => return (Err(engine(e)), None),
    };
    let held = stats.held.take();
    let synced = out
        .into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_all())
        .map_err(|e| DaemonError::io("write the snapshot", e));
    let kept = synced.and_then(|()| {
        keep(Dumped {
            whole,
            bytes: stats.bytes_written,
            frozen: stats.frozen,
            tracker_start,
        })
    });
    match (held, &kept) {
        (Some(frozen), Ok(_)) => frozen.kill(),
        (Some(frozen), Err(_)) => {
            if let Err(e) = frozen.resume() {
                tracing::error!("resuming a task after a failed snapshot: {e}");
            }
        }
        (None, _) => {}
    }
    match (&kept, then) {
        (Ok(_), Then::RunOn) => (kept, tracker),
        _ => (kept, None),
    }
}

fn engine(e: zos_checkpoint::Error) -> DaemonError {
    DaemonError::User(format!("snapshot: {e}"))
}
