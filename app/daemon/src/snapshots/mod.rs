//! Snapshots of migrants at home, rollback, and suspending / resuming them (issue 13).
//!
//! | module | concept |
//! |---|---|
//! | `mod` | [`Snapshots`]: the keeper of each task's dirty-page tracker; `zos snapshot`, `zos snapshots` |
//! | `store` | the files: `HOME/snapshots/task-<id>/NNNN[-name].zpod` and `index.json` |
//! | `dump` | the engine's part of one snapshot, on a blocking thread (whole or delta) |
//! | `restore` | restoring a chain (whole + deltas) and putting it in the task's place: `zos rollback`, `zos resume` |
//! | `suspend` | `zos suspend` / `zos resume`, and `HOME/snapshots/suspended.json` |
//! | `schedule` | `zos snapshot --every D --keep N`: the rolling set |
//!
//! # Chains
//!
//! A task's first snapshot is whole; the keeper then holds a
//! [`zos_checkpoint::DirtyTracker`] on the task's pod, and each later snapshot is a delta: the
//! pages written since the previous one. Restoring snapshot `k` reads its chain (the whole
//! one it builds on, every delta up to `k`) into a [`zos_checkpoint::PageBase`]. Anything that
//! loses the tracker (a failed snapshot, a rollback, a move away — the mover calls
//! [`Snapshots::forget`] through the registry's move hook, as only one tracker per pod can
//! work — or a new pod) makes the next snapshot whole again.

mod dump;
mod restore;
mod schedule;
mod store;
mod suspend;

pub use store::{DELTA, WHOLE};

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use zos_checkpoint::DirtyTracker;
use zos_netproto::control::{Reply, Request, SnapshotInfo};

use crate::error::{DaemonError, Result};
use crate::migrants::{Migrants, Placement, not_here, unix_seconds};
use dump::{Dumped, Then};
use store::{Entry, Store};

/// The master's snapshot keeper.
pub struct Snapshots {
    store: Arc<Store>,
    migrants: Arc<Migrants>,
    slots: Mutex<HashMap<u64, Arc<Slot>>>,
    schedules: Mutex<HashMap<u64, schedule::Schedule>>,
    /// One suspend or resume at a time (they edit `suspended.json`).
    suspending: tokio::sync::Mutex<()>,
    shutdown: CancellationToken,
}

/// One task's keeper: its tracker between snapshots, one operation at a time.
#[derive(Default)]
struct Slot {
    tracker: tokio::sync::Mutex<Option<DirtyTracker>>,
    /// [`Snapshots::forget`] was called while an operation held the tracker.
    stale: AtomicBool,
}

impl Snapshots {
    /// The keeper of the master whose home is `home`. Tasks an earlier daemon suspended are
    /// listed again as `suspended`, and new task ids start above every id that has
    /// snapshots.
    pub fn new(
        home: &std::path::Path,
        migrants: Arc<Migrants>,
        shutdown: CancellationToken,
    ) -> Arc<Snapshots> {
        let store = Arc::new(Store::new(home));
        if let Some(last) = store.tasks_on_disk().last() {
            migrants.reserve_ids_below(last + 1);
        }
        let me = Arc::new(Snapshots {
            store,
            migrants: migrants.clone(),
            slots: Mutex::new(HashMap::new()),
            schedules: Mutex::new(HashMap::new()),
            suspending: tokio::sync::Mutex::new(()),
            shutdown,
        });
        let weak = Arc::downgrade(&me);
        migrants.set_before_move(Arc::new(move |task| {
            if let Some(me) = weak.upgrade() {
                me.forget(task);
            }
        }));
        me.list_suspended_again();
        me.arm_saved_schedules();
        me
    }

    /// Lets go of task `task`'s dirty-page tracker (before another tracker is started on its
    /// pod, as a live move does: only one works at a time); its next snapshot is whole.
    pub fn forget(&self, task: u64) {
        let Some(slot) = self.slots.lock().get(&task).cloned() else {
            return;
        };
        match slot.tracker.try_lock() {
            Ok(mut t) => {
                if t.take().is_some() {
                    tracing::info!("task {task}: dirty-page tracking for snapshots stopped");
                }
            }
            // An operation holds it: it drops it when done.
            Err(_) => slot.stale.store(true, Ordering::Release),
        }
    }

    fn slot(&self, task: u64) -> Arc<Slot> {
        self.slots.lock().entry(task).or_default().clone()
    }

    /// `zos snapshot TASK [--name N]`.
    pub async fn snapshot(&self, task: u64, name: Option<String>) -> Result<Reply> {
        if let Some(n) = &name {
            store::check_name(n)?;
        }
        let snapshot = self.take(task, name, false, false).await?;
        Ok(Reply::SnapshotTaken { task, snapshot })
    }

    /// `zos snapshot TASK [--name N]` of a task away: its zombie takes a snapshot now and
    /// sends it home (`mover`), which becomes the task's next snapshot here, whole.
    pub async fn snapshot_away(
        &self,
        mover: &crate::migration::Mover,
        task: u64,
        name: Option<String>,
    ) -> Result<Reply> {
        if let Some(n) = &name {
            store::check_name(n)?;
        }
        let on = match self.migrants.info(task)?.placement {
            Placement::Away { host } => host,
            p => return Err(not_here(task, &p)),
        };
        let image = mover.snapshot_away(task).await?;
        self.adopt_image(task, name, on, image).await
    }

    /// `image` (a whole pod image zombie `on` just sent home, as the mover kept it) becomes
    /// the task's next snapshot, whole (a tracker at home, if any, is forgotten: the pod
    /// there is gone).
    async fn adopt_image(
        &self,
        task: u64,
        name: Option<String>,
        on: String,
        image: std::path::PathBuf,
    ) -> Result<Reply> {
        if let Some(n) = &name {
            store::check_name(n)?;
        }
        let slot = self.slot(task);
        let mut tracker = slot.tracker.lock().await;
        *tracker = None;
        let mut index = self.store.load(task)?;
        if index.command.is_empty() {
            index.command = self.migrants.info(task)?.command;
        }
        let (mut file, pending) = self.store.create(task, &index, name.as_deref())?;
        let label = Label {
            name,
            auto: false,
            on: Some(on.clone()),
        };
        let keep = keeper(self.store.clone(), task, index, pending, label, None);
        let kept = tokio::task::spawn_blocking(move || -> Result<(Entry, Dumped)> {
            let mut from = std::fs::File::open(&image)
                .map_err(|e| DaemonError::io("open the task's last image", e))?;
            let bytes = std::io::copy(&mut from, &mut file)
                .and_then(|n| file.sync_all().map(|()| n))
                .map_err(|e| DaemonError::io("write the snapshot", e))?;
            keep(Dumped {
                whole: true,
                bytes,
                frozen: std::time::Duration::ZERO,
                tracker_start: std::time::Duration::ZERO,
            })
        })
        .await
        .map_err(|_| DaemonError::User("the snapshot's thread died".into()))??;
        let info = kept.0.info;
        tracing::info!(
            "task {task}: snapshot {} (whole, {} bytes) sent home by {on}",
            info.id,
            info.bytes
        );
        Ok(Reply::SnapshotTaken {
            task,
            snapshot: info,
        })
    }

    /// Takes a snapshot of task `task` (at home): a delta when the keeper holds a tracker
    /// from the previous one, else (or with `whole`) whole. `auto`: taken by a schedule.
    async fn take(
        &self,
        task: u64,
        name: Option<String>,
        auto: bool,
        whole: bool,
    ) -> Result<SnapshotInfo> {
        let slot = self.slot(task);
        let mut tracker = slot.tracker.lock().await;
        let (root, index, parent) = self.prepare(task, &slot, &mut tracker, whole)?;
        let (file, pending) = self.store.create(task, &index, name.as_deref())?;
        let label = Label {
            name,
            auto,
            on: None,
        };
        let keep = keeper(self.store.clone(), task, index, pending, label, parent);
        let held = tracker.take();
        let (kept, back) =
            tokio::task::spawn_blocking(move || dump::dump(root, held, file, Then::RunOn, keep))
                .await
                .map_err(|_| DaemonError::User("the snapshot's thread died".into()))?;
        if !slot.stale.swap(false, Ordering::AcqRel) {
            *tracker = back;
        }
        let (entry, d) = kept?;
        tracing::info!(
            "task {task}: snapshot {} ({}, {} bytes, stopped {:.1} ms{})",
            entry.info.id,
            entry.info.kind,
            entry.info.bytes,
            d.frozen.as_secs_f64() * 1e3,
            if d.whole {
                format!(
                    ", tracking started in {:.1} ms",
                    d.tracker_start.as_secs_f64() * 1e3
                )
            } else {
                String::new()
            }
        );
        Ok(entry.info)
    }

    /// Before a dump of task `task`: its pod's root (it must be at home), its index, the
    /// snapshot a delta would build on; `tracker` is cleared when a delta cannot be trusted
    /// (asked for `whole`, forgotten, another pod, no snapshot to build on).
    fn prepare(
        &self,
        task: u64,
        slot: &Slot,
        tracker: &mut Option<DirtyTracker>,
        whole: bool,
    ) -> Result<(i32, store::Index, Option<u32>)> {
        let root = self.home_root(task)?;
        let stale = slot.stale.swap(false, Ordering::AcqRel);
        if whole || stale || tracker.as_ref().is_some_and(|t| t.root() != root) {
            *tracker = None;
        }
        let mut index = self.store.load(task)?;
        let parent = index.snapshots.last().map(|e| e.info.id);
        if parent.is_none() {
            *tracker = None;
        }
        if index.command.is_empty() {
            index.command = self.migrants.info(task)?.command;
        }
        Ok((root, index, parent))
    }

    /// Host PID of task `task`'s pod init, if it runs at home; else why not.
    fn home_root(&self, task: u64) -> Result<i32> {
        let info = self.migrants.info(task)?;
        match (&info.placement, info.init_pid) {
            (Placement::Home, Some(pid)) => Ok(pid),
            (p, _) => Err(not_here(task, p)),
        }
    }

    /// `zos snapshots TASK`: the task's snapshots (also of a task that is gone).
    pub fn list(&self, task: u64) -> Result<Reply> {
        let index = self.store.load(task)?;
        if index.snapshots.is_empty() && !self.migrants.contains(task) {
            return Err(DaemonError::User(format!(
                "no migrant task {task} and no snapshots of it (see `zos tasks`)"
            )));
        }
        let (every_s, keep) = match self.schedules.lock().get(&task) {
            Some(s) => (Some(s.every.as_secs()), Some(s.keep)),
            None => (None, None),
        };
        Ok(Reply::Snapshots {
            task,
            dir: self.store.task_dir(task).display().to_string(),
            snapshots: index.snapshots.into_iter().map(|e| e.info).collect(),
            every_s,
            keep,
        })
    }

    /// `zos snapshots --prune`: removes the snapshots of tasks this master no longer has
    /// (neither running nor suspended).
    pub fn prune_gone(&self) -> Result<Reply> {
        let mut tasks = Vec::new();
        let mut bytes = 0;
        for task in self.store.tasks_on_disk() {
            if self.migrants.contains(task) {
                continue;
            }
            bytes += self.store.remove_task(task)?;
            tasks.push(task);
        }
        Ok(Reply::Pruned { tasks, bytes })
    }

    /// Answers the snapshot requests (`Snapshot`, `SnapshotEvery`, `Snapshots`,
    /// `PruneSnapshots`, `Rollback`, `Suspend`, `Resume`).
    pub async fn handle(self: &Arc<Self>, request: Request) -> Reply {
        let result = match request {
            Request::Snapshot { task, name } => self.snapshot(task, name).await,
            Request::SnapshotEvery {
                task,
                every_s,
                keep,
            } => self.set_every(task, every_s, keep).await,
            Request::Snapshots { task } => self.list(task),
            Request::PruneSnapshots => self.prune_gone(),
            Request::Rollback { task, snapshot } => self.rollback(task, &snapshot).await,
            Request::Suspend => self.suspend_all().await,
            Request::Resume { tasks } => self.resume(tasks).await,
            other => Err(DaemonError::User(format!(
                "not a snapshot request: {other:?}"
            ))),
        };
        result.unwrap_or_else(|e| Reply::Error {
            message: e.to_string(),
        })
    }

    /// The snapshots' directory (`HOME/snapshots`).
    pub fn dir(&self) -> &std::path::Path {
        self.store.dir()
    }
}

/// What the index says of a snapshot besides what its dump measured.
struct Label {
    /// The name the user gave it.
    name: Option<String>,
    /// Taken by a schedule.
    auto: bool,
    /// The zombie that took it (the task ran there).
    on: Option<String>,
}

/// What a dump does once its file is complete and synced: the file takes its name and the
/// index lists it (written anew). The entry, and what the dump measured.
fn keeper(
    store: Arc<Store>,
    task: u64,
    mut index: store::Index,
    pending: store::Pending,
    label: Label,
    parent: Option<u32>,
) -> impl FnOnce(Dumped) -> Result<(Entry, Dumped)> + Send + 'static {
    move |d| {
        let entry = entry_for(&index, &pending, label, parent, d);
        pending.keep()?;
        index.next = entry.info.id + 1;
        index.snapshots.push(entry.clone());
        store.save(task, &index)?;
        Ok((entry, d))
    }
}

/// The index entry of the snapshot `pending` holds.
fn entry_for(
    index: &store::Index,
    pending: &store::Pending,
    label: Label,
    parent: Option<u32>,
    d: Dumped,
) -> Entry {
    let parent = if d.whole { None } else { parent };
    let chain_before = parent
        .and_then(|p| index.snapshots.iter().find(|e| e.info.id == p))
        .map_or(0, |e| e.info.chain_bytes);
    Entry {
        info: SnapshotInfo {
            id: pending.id,
            name: label.name,
            at: unix_seconds(SystemTime::now()),
            kind: if d.whole { WHOLE } else { DELTA }.into(),
            parent,
            bytes: d.bytes,
            chain_bytes: chain_before + d.bytes,
            frozen_us: d.frozen.as_micros() as u64,
            auto: label.auto,
            on: label.on,
        },
        file: pending.file.clone(),
    }
}
