//! `zos snapshot --every D --keep N TASK`: a snapshot every `D` while the task runs at home,
//! and a rolling set. The schedule is kept in the task's `index.json` and armed again when a
//! daemon starts and still has the task (suspended, then resumed), until `--every off` or the
//! task's end.
//!
//! The rule: the newest `N` snapshots taken by the schedule stay restorable. A chain (a whole
//! snapshot and the deltas after it) is never cut: once the open chain holds `N` snapshots,
//! the next one is whole and starts a new chain, and a chain is removed as a whole once the
//! oldest of the newest `N` no longer builds on it — so at most `2N − 1` scheduled snapshots
//! are on disk. A chain holding a snapshot the user took (`zos snapshot`, named or not) is
//! never removed by the schedule.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use zos_netproto::control::Reply;

use super::Snapshots;
use super::store::{Index, WHOLE};
use crate::error::{DaemonError, Result};
use crate::migrants::Placement;

/// The shortest interval.
pub const MIN_EVERY: Duration = Duration::from_secs(1);
/// The longest interval (30 days).
pub const MAX_EVERY: Duration = Duration::from_secs(30 * 86_400);
/// The largest rolling set.
pub const MAX_KEEP: u32 = 1000;

/// A task's schedule.
pub(super) struct Schedule {
    pub every: Duration,
    pub keep: u32,
    cancel: CancellationToken,
}

impl Snapshots {
    /// `zos snapshot --every`: snapshots task `task` every `every_s` seconds (`None`: stops),
    /// keeping `keep` restorable.
    pub async fn set_every(
        self: &Arc<Self>,
        task: u64,
        every_s: Option<u64>,
        keep: u32,
    ) -> Result<Reply> {
        let Some(every_s) = every_s else {
            match self.schedules.lock().remove(&task) {
                Some(old) => old.cancel.cancel(),
                None => {
                    return Err(DaemonError::User(format!(
                        "task {task} has no snapshot schedule"
                    )));
                }
            }
            self.save_schedule(task, None).await?;
            tracing::info!("task {task}: snapshot schedule stopped");
            return Ok(Reply::SnapshotSchedule {
                task,
                every_s: None,
                keep,
            });
        };
        let every = Duration::from_secs(every_s);
        if !(MIN_EVERY..=MAX_EVERY).contains(&every) {
            return Err(DaemonError::User(format!(
                "--every must be between {} s and {} days",
                MIN_EVERY.as_secs(),
                MAX_EVERY.as_secs() / 86_400
            )));
        }
        if keep == 0 || keep > MAX_KEEP {
            return Err(DaemonError::User(format!(
                "--keep must be between 1 and {MAX_KEEP}"
            )));
        }
        self.home_root(task)?;
        self.save_schedule(task, Some((every_s, keep))).await?;
        self.arm(task, every, keep);
        tracing::info!("task {task}: a snapshot every {every_s} s, {keep} kept");
        Ok(Reply::SnapshotSchedule {
            task,
            every_s: Some(every_s),
            keep,
        })
    }

    /// Writes task `task`'s schedule into its index (the keeper's lock held: a snapshot
    /// being kept writes the index too).
    async fn save_schedule(&self, task: u64, schedule: Option<(u64, u32)>) -> Result<()> {
        let slot = self.slot(task);
        let _held = slot.tracker.lock().await;
        let mut index = self.store.load(task)?;
        if index.schedule == schedule {
            return Ok(());
        }
        index.schedule = schedule;
        self.store.save(task, &index)
    }

    /// At the daemon's start: the schedules of the tasks it has (suspended ones, listed
    /// again) run again.
    pub(super) fn arm_saved_schedules(self: &Arc<Self>) {
        for task in self.store.tasks_on_disk() {
            if !self.migrants.contains(task) {
                continue;
            }
            let Ok(Some((every_s, keep))) = self.store.load(task).map(|i| i.schedule) else {
                continue;
            };
            let every = Duration::from_secs(every_s);
            if !(MIN_EVERY..=MAX_EVERY).contains(&every) || keep == 0 || keep > MAX_KEEP {
                tracing::warn!("task {task}: a schedule out of bounds in its index: ignored");
                continue;
            }
            tracing::info!(
                "task {task}: snapshot schedule armed again (every {every_s} s, {keep} kept)"
            );
            self.arm(task, every, keep);
        }
    }

    /// Starts (or replaces) the schedule's loop of task `task`.
    fn arm(self: &Arc<Self>, task: u64, every: Duration, keep: u32) {
        let cancel = self.shutdown.child_token();
        let old = self.schedules.lock().insert(
            task,
            Schedule {
                every,
                keep,
                cancel: cancel.clone(),
            },
        );
        if let Some(old) = old {
            old.cancel.cancel();
        }
        let me = self.clone();
        tokio::spawn(async move { me.run_schedule(task, every, keep, cancel).await });
    }

    async fn run_schedule(&self, task: u64, every: Duration, keep: u32, cancel: CancellationToken) {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            let whole = self
                .store
                .load(task)
                .is_ok_and(|i| i.open_chain_len() >= keep as usize);
            match self.take(task, None, true, whole).await {
                Ok(_) => {
                    if let Err(e) = self.prune_rolling(task, keep).await {
                        tracing::warn!("task {task}: removing old snapshots: {e}");
                    }
                }
                Err(e) => match self.migrants.info(task).map(|i| i.placement) {
                    Err(_) | Ok(Placement::Exited { .. }) => {
                        tracing::info!("task {task} ended: its snapshot schedule too");
                        break;
                    }
                    Ok(Placement::Suspended) => {
                        tracing::debug!("task {task} is suspended: no scheduled snapshot")
                    }
                    Ok(_) => tracing::warn!("task {task}: scheduled snapshot skipped: {e}"),
                },
            }
        }
        // Ours is the one cancelled (a newer schedule of the task has a fresh token).
        cancel.cancel();
        let mut schedules = self.schedules.lock();
        if schedules
            .get(&task)
            .is_some_and(|s| s.cancel.is_cancelled())
        {
            schedules.remove(&task);
        }
    }

    /// Removes the chains of task `task` the rolling set of `keep` no longer needs.
    async fn prune_rolling(&self, task: u64, keep: u32) -> Result<u64> {
        let slot = self.slot(task);
        let _held = slot.tracker.lock().await;
        let mut index = self.store.load(task)?;
        let drop = rolling_drop(&index, keep as usize);
        if drop.is_empty() {
            return Ok(0);
        }
        let files: Vec<String> = index
            .snapshots
            .iter()
            .filter(|e| drop.contains(&e.info.id))
            .map(|e| e.file.clone())
            .collect();
        index.snapshots.retain(|e| !drop.contains(&e.info.id));
        self.store.save(task, &index)?;
        let freed = self.store.remove_files(task, &files);
        tracing::info!(
            "task {task}: removed {} old scheduled snapshot(s), {freed} bytes",
            files.len()
        );
        Ok(freed)
    }
}

/// The snapshots the rolling set of `keep` drops (module docs).
fn rolling_drop(index: &Index, keep: usize) -> Vec<u32> {
    let autos: Vec<u32> = index
        .snapshots
        .iter()
        .filter(|e| e.info.auto)
        .map(|e| e.info.id)
        .collect();
    if autos.len() <= keep {
        return Vec::new();
    }
    let oldest_kept = autos[autos.len() - keep];
    let Ok(chain) = index.chain(oldest_kept) else {
        return Vec::new();
    };
    let needed_from = chain[0].info.id;
    // Each snapshot's chain: the whole snapshot it builds on.
    let mut root_of: HashMap<u32, u32> = HashMap::new();
    for e in &index.snapshots {
        let root = if e.info.kind == WHOLE {
            e.info.id
        } else {
            match e.info.parent.and_then(|p| root_of.get(&p)) {
                Some(r) => *r,
                None => return Vec::new(),
            }
        };
        root_of.insert(e.info.id, root);
    }
    let mut chains: HashMap<u32, (bool, bool)> = HashMap::new(); // root → (all auto, all old)
    for e in &index.snapshots {
        let c = chains.entry(root_of[&e.info.id]).or_insert((true, true));
        c.0 &= e.info.auto;
        c.1 &= e.info.id < needed_from;
    }
    index
        .snapshots
        .iter()
        .filter(|e| chains[&root_of[&e.info.id]] == (true, true))
        .map(|e| e.info.id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshots::store::{DELTA, Entry};
    use zos_netproto::control::SnapshotInfo;

    /// Snapshots 1.. of the given kinds ('W' whole, 'd' delta), auto unless 'M'/'m' (manual).
    fn index(kinds: &str) -> Index {
        let mut snapshots = Vec::new();
        for (i, k) in kinds.chars().enumerate() {
            let id = i as u32 + 1;
            let whole = k == 'W' || k == 'M';
            snapshots.push(Entry {
                info: SnapshotInfo {
                    id,
                    kind: if whole { WHOLE } else { DELTA }.into(),
                    parent: (!whole).then_some(id - 1),
                    auto: k == 'W' || k == 'd',
                    on: None,
                    ..Default::default()
                },
                file: String::new(),
            });
        }
        Index {
            next: kinds.len() as u32 + 1,
            command: vec![],
            snapshots,
            schedule: None,
        }
    }

    #[test]
    fn whole_chains_go_once_the_newest_keep_no_longer_build_on_them() {
        // keep 3: W1 d2 d3 | W4 → the newest three (d2 d3 W4) need chain 1: nothing goes.
        assert!(rolling_drop(&index("WddW"), 3).is_empty());
        assert!(rolling_drop(&index("WddWd"), 3).is_empty());
        // W4 d5 d6 are the newest three: chain 1 goes whole.
        assert_eq!(rolling_drop(&index("WddWdd"), 3), vec![1, 2, 3]);
        assert!(rolling_drop(&index("Wdd"), 3).is_empty());
    }

    #[test]
    fn a_chain_with_a_snapshot_the_user_took_stays() {
        // Snapshot 2 was taken by hand (a delta 'm').
        assert!(rolling_drop(&index("WmdWdd"), 3).is_empty());
        assert_eq!(rolling_drop(&index("WmdWddWdd"), 3), vec![4, 5, 6]);
    }
}
