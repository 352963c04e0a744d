//! Restoring a snapshot chain in a task's place: `zos rollback` (the running copy ends only
//! once the snapshot is restored and held) and bringing back a suspended task.
//!
//! The restore runs on a thread of its own (the restored tree is held under ptrace by the
//! thread that made it) inside the daemon's runtime (the adoption starts the terminal's
//! relay): read the chain, merge it ([`PageBase`]), restore held stopped; only then end the
//! old pod, if any, and adopt the restored one. A failure before that leaves the task as it
//! was: running (rollback) or suspended (resume).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use zos_checkpoint::{PageBase, TreeRestoreOptions, restore_tree_with_base};
use zos_netproto::control::{Reply, SnapshotInfo};

use super::Snapshots;
use crate::error::{DaemonError, Result};
use crate::migrants::{MoveTicket, end_local_pod};

impl Snapshots {
    /// `zos rollback TASK SNAP`: task `task` (at home) runs from snapshot `what` (its id or
    /// name) in place of its running copy.
    pub async fn rollback(&self, task: u64, what: &str) -> Result<Reply> {
        let slot = self.slot(task);
        let mut tracker = slot.tracker.lock().await;
        self.home_root(task)?;
        let index = self.store.load(task)?;
        let snapshot = index
            .find(what)
            .ok_or_else(|| {
                DaemonError::User(format!(
                    "task {task} has no snapshot {what:?} (see `zos snapshots {task}`)"
                ))
            })?
            .info
            .clone();
        let ticket = self.migrants.begin_replace(task)?;
        // The old pod ends either way or stays untracked; its next snapshot is whole.
        *tracker = None;
        let (snapshot, took) = self.restore_into(ticket, task, snapshot, true).await?;
        tracing::info!(
            "task {task} rolled back to snapshot {} in {:.2} s",
            snapshot.id,
            took.as_secs_f64()
        );
        Ok(Reply::RolledBack {
            task,
            snapshot,
            restore_us: took.as_micros() as u64,
        })
    }

    /// Restores `snapshot` of `task` and makes it the task's pod (ending the pod it has
    /// here first when `replace`), through `ticket`. The time it took.
    pub(super) async fn restore_into(
        &self,
        ticket: MoveTicket,
        task: u64,
        snapshot: SnapshotInfo,
        replace: bool,
    ) -> Result<(SnapshotInfo, Duration)> {
        let store = self.store.clone();
        let (done_tx, done) = oneshot::channel();
        let runtime = tokio::runtime::Handle::current();
        let id = snapshot.id;
        let start = Instant::now();
        std::thread::Builder::new()
            .name(format!("rollback-{task}"))
            .spawn(move || {
                let _runtime = runtime.enter();
                let _ = done_tx.send(restore_and_adopt(&store, ticket, task, id, replace));
            })
            .map_err(|e| DaemonError::io("start a restore thread", e))?;
        done.await
            .map_err(|_| DaemonError::User("the restore's thread died".into()))??;
        Ok((snapshot, start.elapsed()))
    }
}

/// On the restoring thread: chain → held tree → (old pod ended) → adopted. Dropping the
/// ticket on an early return puts the task back where it was.
fn restore_and_adopt(
    store: &super::store::Store,
    ticket: MoveTicket,
    task: u64,
    id: u32,
    replace: bool,
) -> Result<i32> {
    let index = store.load(task)?;
    let chain = index.chain(id)?;
    let mut files = store.read_chain(task, &chain)?;
    let last = files
        .pop()
        .ok_or_else(|| DaemonError::User(format!("snapshot {id} has no file")))?;
    let mut base = PageBase::new();
    for f in files {
        base.add_image(Arc::new(f))
            .map_err(|e| DaemonError::User(format!("snapshot chain of {id}: {e}")))?;
    }
    let tree = restore_tree_with_base(&last, &base, &TreeRestoreOptions::default())
        .map_err(|e| DaemonError::User(format!("restoring snapshot {id}: {e}")))?;
    drop((last, base));
    if replace && let Err(e) = end_local_pod(&ticket) {
        tree.kill();
        return Err(e);
    }
    let epoch = ticket.next_epoch();
    ticket.adopt_restored(tree, epoch)
}
