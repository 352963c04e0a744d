//! `zos suspend`: every migrant at home is snapshotted (a delta when its keeper tracks it)
//! while frozen, then ended, and listed as `suspended` in `HOME/snapshots/suspended.json`
//! (task, command, directory, epoch, snapshot), which the next master daemon reads at start:
//! the tasks are listed again as `suspended` until `zos resume [TASK…]` restores each from
//! that snapshot. Nothing is lost between the snapshot and the end: the task stays frozen
//! from the dump until it is killed (and resumes if the snapshot cannot be kept).

use serde::{Deserialize, Serialize};
use zos_netproto::control::Reply;

use super::Snapshots;
use super::dump::{self, Then};
use super::store::{read_private, write_replacing};
use crate::error::{DaemonError, Result};
use crate::migrants::{Placement, unix_seconds};

/// The largest `suspended.json` read.
const MAX_LIST_BYTES: u64 = 4 << 20;

/// A suspended task, as `suspended.json` keeps it.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SuspendedTask {
    task: u64,
    command: Vec<String>,
    cwd: String,
    epoch: u64,
    /// The snapshot it resumes from.
    snapshot: u32,
    /// When it was suspended (Unix seconds).
    at: u64,
}

impl Snapshots {
    fn suspended_file(&self) -> std::path::PathBuf {
        self.store.dir().join("suspended.json")
    }

    fn load_suspended(&self) -> Result<Vec<SuspendedTask>> {
        let path = self.suspended_file();
        match read_private(&path, MAX_LIST_BYTES) {
            Ok(text) => serde_json::from_slice(&text).map_err(|e| {
                DaemonError::User(format!(
                    "{} is not a list of suspended tasks: {e}",
                    path.display()
                ))
            }),
            Err(DaemonError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Ok(Vec::new())
            }
            Err(e) => Err(e),
        }
    }

    fn save_suspended(&self, list: &[SuspendedTask]) -> Result<()> {
        crate::paths::make_private_dir(self.store.dir())?;
        let text = serde_json::to_vec_pretty(list).expect("the list serialises");
        write_replacing(&self.suspended_file(), &text)
    }

    /// At the daemon's start: the tasks an earlier daemon suspended are listed again.
    pub(super) fn list_suspended_again(&self) {
        let list = match self.load_suspended() {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("suspended tasks: {e}");
                return;
            }
        };
        for t in &list {
            if let Err(e) =
                self.migrants
                    .add_suspended(t.task, t.command.clone(), t.cwd.clone(), t.epoch)
            {
                tracing::warn!("suspended task {}: {e}", t.task);
            }
        }
        if !list.is_empty() {
            let ids: Vec<String> = list.iter().map(|t| t.task.to_string()).collect();
            tracing::info!(
                "{} suspended task(s) from before: {} — `zos resume` brings them back",
                list.len(),
                ids.join(", ")
            );
        }
    }

    /// `zos suspend`: every migrant at home.
    pub async fn suspend_all(&self) -> Result<Reply> {
        let _one = self.suspending.lock().await;
        let mut list = self.load_suspended()?;
        let (mut tasks, mut failed) = (Vec::new(), Vec::new());
        for info in self.migrants.infos() {
            if info.placement != Placement::Home {
                continue;
            }
            match self.suspend_one(info.id).await {
                Ok(snapshot) => {
                    list.retain(|t| t.task != info.id);
                    list.push(SuspendedTask {
                        task: info.id,
                        command: info.command,
                        cwd: info.cwd,
                        epoch: info.epoch,
                        snapshot,
                        at: unix_seconds(std::time::SystemTime::now()),
                    });
                    self.save_suspended(&list)?;
                    tasks.push(info.id);
                }
                Err(e) => failed.push(format!("task {}: {e}", info.id)),
            }
        }
        Ok(Reply::Suspended { tasks, failed })
    }

    /// Snapshots task `task` frozen, then ends it: `suspended`. The snapshot's id.
    async fn suspend_one(&self, task: u64) -> Result<u32> {
        let slot = self.slot(task);
        let mut tracker = slot.tracker.lock().await;
        let (root, index, parent) = self.prepare(task, &slot, &mut tracker, false)?;
        let (file, pending) = self.store.create(task, &index, None)?;
        let ticket = self.migrants.begin_replace(task)?;
        let label = super::Label {
            name: None,
            auto: false,
            on: None,
        };
        let keep = super::keeper(self.store.clone(), task, index, pending, label, parent);
        let held = tracker.take();
        let (kept, _) =
            tokio::task::spawn_blocking(move || dump::dump(root, held, file, Then::End, keep))
                .await
                .map_err(|_| DaemonError::User("the snapshot's thread died".into()))?;
        // On an error the task runs on (the dump resumed it) and the ticket's drop says so.
        let info = kept?.0.info;
        ticket.suspended();
        tracing::info!(
            "task {task}: suspended as snapshot {} ({}, {} bytes)",
            info.id,
            info.kind,
            info.bytes
        );
        Ok(info.id)
    }

    /// `zos resume [TASK…]`: each suspended task (none named: all) from its snapshot.
    pub async fn resume(&self, wanted: Vec<u64>) -> Result<Reply> {
        let _one = self.suspending.lock().await;
        let mut list = self.load_suspended()?;
        let mut targets: Vec<SuspendedTask> = if wanted.is_empty() {
            list.clone()
        } else {
            let mut out = Vec::new();
            for id in &wanted {
                match list.iter().find(|t| t.task == *id) {
                    Some(t) => out.push(t.clone()),
                    None => {
                        return Err(DaemonError::User(format!(
                            "task {id} is not suspended (see `zos tasks`)"
                        )));
                    }
                }
            }
            out
        };
        if targets.is_empty() {
            return Err(DaemonError::User("no task is suspended".into()));
        }
        let (mut tasks, mut failed) = (Vec::new(), Vec::new());
        for t in targets.drain(..) {
            match self.resume_one(&t).await {
                Ok(()) => {
                    list.retain(|x| x.task != t.task);
                    self.save_suspended(&list)?;
                    tasks.push(t.task);
                }
                Err(e) => failed.push(format!("task {}: {e}", t.task)),
            }
        }
        Ok(Reply::Resumed { tasks, failed })
    }

    async fn resume_one(&self, t: &SuspendedTask) -> Result<()> {
        let slot = self.slot(t.task);
        let mut tracker = slot.tracker.lock().await;
        *tracker = None;
        let index = self.store.load(t.task)?;
        let snapshot = index
            .find(&t.snapshot.to_string())
            .ok_or_else(|| DaemonError::User(format!("its snapshot {} is gone", t.snapshot)))?
            .info
            .clone();
        let ticket = self.migrants.begin_resume(t.task)?;
        self.restore_into(ticket, t.task, snapshot, false).await?;
        tracing::info!("task {}: resumed from snapshot {}", t.task, t.snapshot);
        Ok(())
    }
}
