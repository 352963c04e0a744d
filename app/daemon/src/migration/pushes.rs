//! The zombie's snapshots of the migrants it runs, sent home every
//! [`Offer::image_every_s`](zos_netproto::migration::Offer) on `image/<task>` (see the
//! protocol's module docs), so that `zos home --from-image` after this zombie's death loses
//! at most one interval of work.
//!
//! Each task has a keeper: the first snapshot is a whole pod image (and starts a dirty-page
//! tracker on the pod); the next ones are deltas holding only the pages written since the
//! previous snapshot the master kept. The task runs on meanwhile, stopped only for the dump
//! itself (`LeaveRunning`). Any failure (the master refused, the link went, the dump failed)
//! drops the tracker: the next snapshot is whole again. A move of the task takes the
//! keeper's lock first and drops its tracker (a pod takes one tracker at a time), so that a
//! snapshot and a move never freeze the pod together.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex as AsyncMutex;
use zos_checkpoint::{AfterDump, DirtyTracker, TreeDumpOptions};
use zos_netproto::PublicKey;
use zos_netproto::migration::{Codec, IMAGE_CHUNK, MigrantsReply, MoveMessage, image_label};

use super::codec::Encoder;
use super::link::MoveLink;
use super::zombie::ZombieMoves;
use crate::error::{DaemonError, Result};

/// How long the master may take to keep a snapshot (a delta is merged into its last image).
const KEEP_TIMEOUT: Duration = Duration::from_secs(300);

/// A task's snapshot chain on this zombie.
#[derive(Default)]
pub(super) struct Keeper {
    /// Tracks the pages written since the last snapshot the master kept.
    tracker: Option<DirtyTracker>,
    /// The next snapshot's number.
    seq: u64,
}

/// A keeper shared by its loop and the moves of its task.
pub(super) type KeeperSlot = Arc<AsyncMutex<Keeper>>;

impl Keeper {
    /// Forget the chain (a move takes the pod): the next snapshot is whole.
    pub(super) fn reset(&mut self) {
        self.tracker = None;
    }
}

impl ZombieMoves {
    /// Starts sending `task` (at `epoch`, run for `master`) home every `every`; stops once the
    /// task no longer runs here at that epoch.
    pub(super) fn keep_images(
        self: &Arc<Self>,
        task: u64,
        epoch: u64,
        master: PublicKey,
        every: Duration,
    ) {
        if every.is_zero() {
            return;
        }
        let slot = self.keeper(task);
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(pid) = me
                    .hosted
                    .list()
                    .into_iter()
                    .find(|h| h.task == task && h.epoch == epoch)
                    .map(|h| h.pid)
                else {
                    me.state.lock().keepers.remove(&task);
                    return;
                };
                let Some(mux) = me.hosted.session_of(&master) else {
                    continue;
                };
                let mut keeper = slot.lock().await;
                if me.state.lock().moving.contains(&task) {
                    continue;
                }
                push_logged(&mut keeper, task, epoch, pid, &mux, "").await;
            }
        });
    }

    /// `SendImage`: sends a snapshot of `task` (at `epoch`, run for `master`) home now, in
    /// the background, as the periodic ones go; `Done` once it is under way.
    pub(super) fn send_image_now(
        self: &Arc<Self>,
        task: u64,
        epoch: u64,
        master: PublicKey,
    ) -> MigrantsReply {
        let refused = |reason: String| MigrantsReply::Refused { reason };
        let Some(pid) = self
            .hosted
            .list()
            .into_iter()
            .find(|h| h.task == task && h.epoch == epoch && h.master == master)
            .map(|h| h.pid)
        else {
            return refused(format!("task {task} at epoch {epoch} does not run here"));
        };
        if self.state.lock().moving.contains(&task) {
            return refused(format!("task {task} is moving"));
        }
        let Some(mux) = self.hosted.session_of(&master) else {
            return refused("no session with that master".into());
        };
        let slot = self.keeper(task);
        let me = self.clone();
        tokio::spawn(async move {
            let mut keeper = slot.lock().await;
            if me.state.lock().moving.contains(&task) {
                tracing::warn!("task {task}: moving: no snapshot sent home now");
                return;
            }
            push_logged(&mut keeper, task, epoch, pid, &mux, " as asked").await;
        });
        MigrantsReply::Done
    }

    /// The keeper of `task` (made on first use).
    pub(super) fn keeper(&self, task: u64) -> KeeperSlot {
        self.state
            .lock()
            .keepers
            .entry(task)
            .or_insert_with(|| Arc::new(AsyncMutex::new(Keeper::default())))
            .clone()
    }
}

/// [`push`], saying how it went in the log (`how`: "" or " as asked"); a failure forgets the
/// chain (the next snapshot is whole).
async fn push_logged(
    keeper: &mut Keeper,
    task: u64,
    epoch: u64,
    pid: i32,
    mux: &zos_netproto::mux::Mux,
    how: &str,
) {
    let t = Instant::now();
    match push(keeper, task, epoch, pid, mux).await {
        Ok(bytes) => tracing::info!(
            "task {task}: snapshot {} sent home{how} ({:.1} MiB) in {:.0} ms",
            keeper.seq - 1,
            bytes as f64 / 1048576.0,
            t.elapsed().as_secs_f64() * 1e3
        ),
        Err(e) => {
            tracing::warn!("task {task}: no snapshot sent home{how}: {e}");
            keeper.reset();
        }
    }
}

/// Dumps the pod whose init is `pid` (whole, or a delta over the last snapshot) and sends it
/// home; the raw bytes sent.
async fn push(
    keeper: &mut Keeper,
    task: u64,
    epoch: u64,
    pid: i32,
    mux: &zos_netproto::mux::Mux,
) -> Result<u64> {
    let tracker = keeper.tracker.take();
    let (image, tracker, delta) = tokio::task::spawn_blocking(move || snapshot(pid, tracker))
        .await
        .map_err(|_| DaemonError::User("the snapshot's thread died".into()))??;
    let seq = if delta { keeper.seq } else { 0 };
    let channel = mux.open(&image_label(task))?;
    let mut link = MoveLink::new(channel, "the master");
    link.send(&MoveMessage::Snapshot { epoch, seq, delta })
        .await?;
    let mut enc = Encoder::new();
    for chunk in image.chunks(IMAGE_CHUNK) {
        let (_, message) = enc.encode_message(Codec::Lz4, chunk);
        link.send_encoded(&message).await?;
    }
    link.send(&MoveMessage::ImageEnd {
        raw_bytes: image.len() as u64,
    })
    .await?;
    match link.recv(KEEP_TIMEOUT, "SnapshotKept").await? {
        MoveMessage::SnapshotKept { seq: s } if s == seq => {}
        other => {
            return Err(DaemonError::User(format!(
                "the master answered the snapshot with {other:?}"
            )));
        }
    }
    keeper.tracker = Some(tracker);
    keeper.seq = seq + 1;
    Ok(image.len() as u64)
}

/// A whole snapshot (starting a tracker) or a delta over the tracker's last report; the
/// task runs on.
fn snapshot(pid: i32, tracker: Option<DirtyTracker>) -> Result<(Vec<u8>, DirtyTracker, bool)> {
    let opts = TreeDumpOptions {
        after: AfterDump::LeaveRunning,
    };
    let mut out = Vec::new();
    let fail = |e: zos_checkpoint::Error| DaemonError::User(format!("snapshot: {e}"));
    match tracker {
        Some(mut t) => {
            zos_checkpoint::checkpoint_tree_delta(pid, &opts, &mut t, &mut out).map_err(fail)?;
            Ok((out, t, true))
        }
        None => {
            let mut t = DirtyTracker::start(pid).map_err(fail)?;
            zos_checkpoint::checkpoint_tree_tracked(pid, &opts, &mut t, &mut out).map_err(fail)?;
            Ok((out, t, false))
        }
    }
}
