//! The master's mover: `zos migrate` (a pod at home → a zombie dominated at `complete`),
//! `zos checkpoint --task`, and what a (re-)domination learns of the migrants a zombie holds.
//! `zos home`, `--from-image` and `zos release` are in `homing`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use parking_lot::Mutex;
use zos_checkpoint::pod::ZOMBIE_MASKS;
use zos_checkpoint::{AfterDump, TreeDumpOptions};
use zos_netproto::control::{Compression, Reply};
use zos_netproto::migration::{
    Codec, ExportPath, MIGRANTS_LABEL, MIGRATION_VERSION, MigrantsReply, MigrantsRequest,
    MoveMessage, Offer, migrate_label,
};
use zos_netproto::{Level, PublicKey};

use super::codec::DEFAULT_LINK_BPS;
use super::engine::{CodecChoice, Decision, ENGINE_LIMIT};
use super::files::{self, HashCache};
use super::images::ImageStore;
use super::link::{MigrantsClient, MoveLink, STEP_TIMEOUT};
use super::progress::{Phase, Progress};
use super::sender::{self, Outgoing};
use crate::domination::{DominionSession, Dominions, PairedZombie};
use crate::error::{DaemonError, Result};
use crate::migrants::{ImageRecord, Migrants, Placement};

/// The master's mover.
pub struct Mover {
    pub(super) migrants: Arc<Migrants>,
    pub(super) dominions: Arc<Dominions>,
    pub(super) images: Arc<ImageStore>,
    /// The last zombie snapshot kept of each task (its number in the zombie's chain).
    pub(super) snapshot_seqs: Mutex<HashMap<u64, u64>>,
    /// The snapshot interval this master asked of each task's zombie, and when it last
    /// kept one: a zombie may not send them faster than half that.
    pub(super) snapshot_pace:
        Mutex<HashMap<u64, (std::time::Duration, Option<std::time::Instant>)>>,
    /// Tasks whose snapshot is being taken in now (one at a time per task).
    pub(super) snapshots_busy: Mutex<std::collections::HashSet<u64>>,
    /// Tasks this master asked a snapshot of (`SendImage`): the next one is kept whatever
    /// the pace, once.
    pub(super) snapshots_asked: Mutex<std::collections::HashSet<u64>>,
    pub(super) runtime: PathBuf,
    exports: PathBuf,
    pub(super) cache: Arc<HashCache>,
    /// Each zombie's `migrants` channel, with the session it was opened on.
    clients: tokio::sync::Mutex<HashMap<PublicKey, (Instant, MigrantsClient)>>,
    /// The link rate last measured to each zombie (bytes/s).
    rates: Mutex<HashMap<PublicKey, f64>>,
}

/// How a move goes.
#[derive(Clone, Copy, Debug)]
pub struct MoveHow {
    /// Compression of the image on the link.
    pub compress: Compression,
    /// Live (pre-copy rounds while the task runs) rather than stop-and-copy.
    pub live: bool,
    /// How often the zombie sends the task's snapshot home (0: never).
    pub image_every_s: u32,
}

impl Mover {
    /// The mover of a master whose home is `home` and runtime dir `runtime`; `exports` is its
    /// export list. Images left by an earlier run are removed.
    pub fn new(
        migrants: Arc<Migrants>,
        dominions: Arc<Dominions>,
        home: &Path,
        runtime: &Path,
        exports: PathBuf,
    ) -> Arc<Mover> {
        let images = ImageStore::new(home);
        images.sweep(&[]);
        Arc::new(Mover {
            migrants,
            dominions,
            images: Arc::new(images),
            snapshot_seqs: Default::default(),
            snapshot_pace: Default::default(),
            snapshots_busy: Default::default(),
            snapshots_asked: Default::default(),
            runtime: runtime.to_path_buf(),
            exports,
            cache: Arc::new(HashCache::default()),
            clients: Default::default(),
            rates: Default::default(),
        })
    }

    /// The zombie `host`'s session, which must be dominated at `complete`.
    pub(super) fn complete_session(&self, host: &str) -> Result<DominionSession> {
        let s = self.dominions.session(host).ok_or_else(|| {
            DaemonError::User(format!(
                "{host} is not dominated by this master (`zos dominate {host}` first)"
            ))
        })?;
        if s.level != Level::Complete {
            return Err(DaemonError::User(format!(
                "{} is dominated at level {}: migrants need level complete (`zos release {}`, then `zos dominate {} --level complete`)",
                s.zombie.name, s.level, s.zombie.name, s.zombie.name
            )));
        }
        Ok(s)
    }

    /// Moves task `task` (at home) to the zombie `host` (see the module docs); where it runs
    /// now and each phase's time.
    pub async fn migrate(
        self: &Arc<Self>,
        task: u64,
        host: &str,
        how: MoveHow,
        progress: &Progress,
    ) -> Result<Reply> {
        let MoveHow {
            compress,
            live,
            image_every_s,
        } = how;
        let session = self.complete_session(host)?;
        let zombie = session.zombie.clone();
        let ticket = self.migrants.begin_move(task, &zombie.name)?;
        let root = ticket
            .local_init_pid()
            .ok_or_else(|| DaemonError::User(format!("task {task} has no pod on this master")))?;
        let epoch = ticket.next_epoch();
        let exports = self.export_paths(&zombie);
        let skip: Vec<String> = exports.iter().map(|e| e.path.clone()).collect();
        let cache = self.cache.clone();
        let skip2 = skip.clone();
        let (report, executables, hint) = tokio::task::spawn_blocking(move || {
            let report = zos_checkpoint::check_tree(root).map(|mut r| {
                r.reasons
                    .extend(files::hidden_on_zombie(root, ZOMBIE_MASKS, &skip2));
                r
            });
            let paths = files::mapped_paths(root);
            let list = files::describe(root, &paths, &skip2, &HashMap::new(), &cache);
            (report, list, files::pod_resident_bytes(root))
        })
        .await
        .map_err(|_| DaemonError::User("the check failed".into()))?;
        let report = report.map_err(|e| DaemonError::User(format!("task {task}: {e}")))?;
        if !report.ok() {
            return Err(DaemonError::User(format!(
                "task {task} cannot move to {} (it runs on here): {}",
                zombie.name,
                report.reasons.join("; ")
            )));
        }
        let offer = Offer {
            version: MIGRATION_VERSION,
            task,
            epoch,
            command: ticket.command().to_vec(),
            image_hint: hint,
            executables,
            exports,
            image_every_s,
        };
        let channel = session.mux.open(&migrate_label(task))?;
        let mut link = MoveLink::new(channel, &zombie.name);
        let (file, pending) = self.images.create(task)?;
        let out = Outgoing {
            root,
            offer,
            codec: self.codec_for(compress, &zombie.key),
            image_file: Some(file),
            skip,
            originals: HashMap::new(),
            live,
        };
        let sent = match sender::send_task(&mut link, out, progress, self.cache.clone()).await {
            Ok(s) => s,
            Err(e) => {
                link.abort(&e.to_string()).await;
                self.discard_later(&zombie, task, epoch);
                // A task that ended meanwhile makes the engine fail with "no such process".
                if pod_ended(root) {
                    return Err(DaemonError::User(format!(
                        "task {task} ended during the move: nothing moved ({e})"
                    )));
                }
                return Err(e);
            }
        };
        if sent.summary.pty_input_lost > 0 {
            tracing::warn!(
                "task {task}: {} typed byte(s) it had not read stay behind",
                sent.summary.pty_input_lost
            );
        }
        if sent.link_bps > 0.0 {
            self.rates.lock().insert(zombie.key, sent.link_bps);
        }
        progress.enter(Phase::Restore, 0);
        let restored = match link.recv(ENGINE_LIMIT, "Restored").await {
            Ok(MoveMessage::Restored { epoch: e }) if e == epoch => Ok(()),
            Ok(other) => Err(DaemonError::User(format!(
                "{} answered the image with {}",
                zombie.name,
                sender::variant(&other)
            ))),
            Err(e) => Err(e),
        };
        let kept = restored.and_then(|()| pending.keep());
        let path = match kept {
            Ok(path) => path,
            Err(e) => {
                link.abort(&e.to_string()).await;
                sent.hold.decide(Decision::Abort).await;
                self.discard_later(&zombie, task, epoch);
                return Err(e);
            }
        };
        // The commit point: from here the task is the zombie's.
        progress.enter(Phase::Commit, 0);
        let _ = self.migrants.set_last_image(
            task,
            ImageRecord {
                path,
                at: SystemTime::now(),
                epoch,
            },
        );
        ticket.committed_away(&zombie, epoch);
        self.snapshot_pace.lock().insert(
            task,
            (std::time::Duration::from_secs(image_every_s as u64), None),
        );
        sent.hold.decide(Decision::Commit).await;
        if let Err(e) = link.send(&MoveMessage::Commit { epoch }).await {
            tracing::warn!(
                "task {task}: committed, but {} may not know it yet ({e}); it holds the task until this master says so",
                zombie.name
            );
        } else {
            match link.recv(STEP_TIMEOUT, "Running").await {
                Ok(MoveMessage::Running { epoch: e }) if e == epoch => {}
                other => tracing::warn!(
                    "task {task}: {} did not confirm it runs: {other:?}",
                    zombie.name
                ),
            }
        }
        self.images.sweep(&self.live_ids());
        tracing::info!(
            "task {task} moved to {} (epoch {epoch}): {} pre-copy round(s), image {} bytes, {} process(es)",
            zombie.name,
            sent.rounds,
            sent.summary.bytes,
            sent.summary.processes
        );
        Ok(Reply::Moved {
            task,
            to: zombie.name,
            phases: progress.finish(),
            image_bytes: sent.summary.bytes,
            precopy: progress.precopy_summary(),
        })
    }

    /// `zos checkpoint --task`: the task's image in `out` (a directory, made 0700), the task
    /// running on.
    pub async fn checkpoint_task(&self, task: u64, out: &str) -> Result<Reply> {
        let root = self.migrants.local_init_pid(task)?;
        if !out.starts_with('/') {
            return Err(DaemonError::User(format!(
                "the image directory must be an absolute path, not {out:?}"
            )));
        }
        let dir = PathBuf::from(out);
        tokio::task::spawn_blocking(move || {
            crate::paths::make_private_dir(&dir)?;
            let path = dir.join("image.zckpt");
            let part = dir.join(".image.zckpt.part");
            let _ = std::fs::remove_file(&part);
            let file = {
                use std::os::unix::fs::OpenOptionsExt;
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&part)
                    .map_err(|e| DaemonError::io(format!("create {}", part.display()), e))?
            };
            let opts = TreeDumpOptions {
                after: AfterDump::LeaveRunning,
            };
            let stats = zos_checkpoint::checkpoint_tree(root, &opts, std::io::BufWriter::new(file))
                .map_err(|e| {
                    let _ = std::fs::remove_file(&part);
                    DaemonError::User(format!("task {task}: {e}"))
                })?;
            std::fs::rename(&part, &path)
                .map_err(|e| DaemonError::io(format!("rename to {}", path.display()), e))?;
            Ok(Reply::Checkpointed {
                task,
                path: path.display().to_string(),
                bytes: stats.bytes_written,
                frozen_us: stats.frozen.as_micros() as u64,
            })
        })
        .await
        .map_err(|_| DaemonError::User("the checkpoint failed".into()))?
    }

    /// After a domination at `complete`: asks the zombie which of our migrants it holds;
    /// resumes those it holds at their current epoch (a partition healed) and brings them
    /// home, discards the rest. One line per migrant found.
    ///
    /// Why home: the exports a resumed task had open on the zombie went with the old
    /// session (its file service ended), so there it would only see errors in its shared
    /// folders; at home it has its files again.
    pub async fn reconcile(self: &Arc<Self>, zombie: &PairedZombie) -> Result<Vec<String>> {
        let MigrantsReply::Held { tasks } = self.ask(zombie, &MigrantsRequest::List).await? else {
            return Err(DaemonError::User(format!(
                "{} did not list its migrants",
                zombie.name
            )));
        };
        let mut lines = Vec::new();
        let mut resumed = Vec::new();
        for held in tasks {
            let info = self.migrants.info(held.task).ok();
            let ours = info.as_ref().is_some_and(|i| {
                i.epoch == held.epoch
                    && i.zombie_key == Some(zombie.key)
                    && matches!(i.placement, Placement::Lost { .. } | Placement::Away { .. })
            });
            if ours {
                let was_lost = info
                    .as_ref()
                    .is_some_and(|i| matches!(i.placement, Placement::Lost { .. }));
                if was_lost {
                    let _ = self.migrants.mark_found(held.task, zombie, held.epoch);
                }
                let request = MigrantsRequest::Resume {
                    task: held.task,
                    epoch: held.epoch,
                };
                match self.ask(zombie, &request).await {
                    Ok(MigrantsReply::Done) => {
                        lines.push(format!(
                            "task {} runs on {} again (epoch {})",
                            held.task, zombie.name, held.epoch
                        ));
                        resumed.push(held.task);
                    }
                    other => {
                        if was_lost {
                            let _ = self.migrants.mark_lost(held.task);
                        }
                        lines.push(format!(
                            "task {}: {} could not resume it: {other:?}",
                            held.task, zombie.name
                        ));
                    }
                }
            } else {
                let request = MigrantsRequest::Discard {
                    task: held.task,
                    epoch: held.epoch,
                };
                let _ = self.ask(zombie, &request).await;
                lines.push(format!(
                    "{} held a stale copy of task {} (epoch {}): discarded",
                    zombie.name, held.task, held.epoch
                ));
            }
        }
        for task in resumed {
            let progress = Progress::new(task);
            match self.home(task, Compression::Auto, true, &progress).await {
                Ok(_) => lines.push(format!(
                    "task {task} came home from {} after the partition",
                    zombie.name
                )),
                Err(e) => lines.push(format!(
                    "task {task} stays on {}: it could not come home ({e})",
                    zombie.name
                )),
            }
        }
        Ok(lines)
    }

    /// Asks `zombie` on its `migrants` channel (opened on first use for each domination).
    pub(super) async fn ask(
        &self,
        zombie: &PairedZombie,
        request: &MigrantsRequest,
    ) -> Result<MigrantsReply> {
        let session = self.dominions.session_of(&zombie.key).ok_or_else(|| {
            DaemonError::User(format!("{} is not dominated any more", zombie.name))
        })?;
        let mut clients = self.clients.lock().await;
        let fresh = clients
            .get(&zombie.key)
            .is_none_or(|(started, _)| *started != session.started);
        if fresh {
            let channel = session.mux.open(MIGRANTS_LABEL)?;
            clients.insert(
                zombie.key,
                (session.started, MigrantsClient::new(channel, &zombie.name)),
            );
        }
        let (_, client) = clients.get_mut(&zombie.key).expect("just made");
        let answer = client.ask(request).await;
        if answer.is_err() {
            clients.remove(&zombie.key);
        }
        answer
    }

    /// Tells the zombie, in the background, that the copy of `task` at `epoch` is not the
    /// task's (a move that failed after the image went).
    pub(super) fn discard_later(self: &Arc<Self>, zombie: &PairedZombie, task: u64, epoch: u64) {
        let me = self.clone();
        let zombie = zombie.clone();
        tokio::spawn(async move {
            let _ = me
                .ask(&zombie, &MigrantsRequest::Discard { task, epoch })
                .await;
        });
    }

    /// The exports of this master as the zombie sees them: names in its mount, master paths.
    fn export_paths(&self, zombie: &PairedZombie) -> Vec<ExportPath> {
        let Ok(store) = zos_fileshare::ExportStore::load(&self.exports) else {
            return Vec::new();
        };
        let policy = store.policy_for(&zombie.name, &zombie.key.fingerprint());
        policy
            .names()
            .into_iter()
            .zip(policy.exports.iter())
            .filter_map(|(name, x)| {
                Some(ExportPath {
                    name,
                    path: x.path.to_str()?.to_string(),
                })
            })
            .collect()
    }

    /// The codec choice for `compress` towards the zombie with `key`.
    pub(super) fn codec_for(&self, compress: Compression, key: &PublicKey) -> CodecChoice {
        match compress {
            Compression::None => CodecChoice::Fixed(Codec::None),
            Compression::Lz4 => CodecChoice::Fixed(Codec::Lz4),
            Compression::Zstd => CodecChoice::Fixed(Codec::Zstd),
            Compression::Auto => CodecChoice::Auto(self.link_rate(key)),
        }
    }

    /// The link rate last measured to the zombie with `key`.
    pub(super) fn link_rate(&self, key: &PublicKey) -> f64 {
        self.rates
            .lock()
            .get(key)
            .copied()
            .unwrap_or(DEFAULT_LINK_BPS)
    }

    /// Ids of the migrants the registry lists.
    pub(super) fn live_ids(&self) -> Vec<u64> {
        self.migrants.infos().iter().map(|i| i.id).collect()
    }
}

/// Whether the pod whose init is host PID `root` has ended (gone, or dead and not yet reaped).
fn pod_ended(root: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{root}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
        Err(_) => true,
    }
}

#[cfg(test)]
mod ended_tests {
    use super::pod_ended;

    #[test]
    fn a_running_process_has_not_ended_and_a_dead_one_has() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        let pid = child.id() as i32;
        assert!(!pod_ended(pid));
        child.kill().unwrap();
        // Dead, not reaped yet: a zombie.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !pod_ended(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(pod_ended(pid), "killed, not reaped");
        child.wait().unwrap();
        assert!(pod_ended(pid), "reaped");
    }
}
