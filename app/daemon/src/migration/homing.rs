//! Bringing migrants home: `zos home TASK` (the zombie sends it back on a `home/<task>`
//! channel it opens when recalled), `zos home TASK --from-image` (a task lost with its zombie
//! restarts from the last image the master holds) and `zos release HOST` (every migrant there
//! comes home first).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use zos_checkpoint::TreeRestoreOptions;
use zos_netproto::control::{Compression, Reply};
use zos_netproto::migration::{Executable, MigrantsReply, MigrantsRequest, MoveMessage};

use super::engine::{self, Decision, ENGINE_LIMIT};
use super::files::{FileStore, HashCache};
use super::link::{MoveLink, STEP_TIMEOUT, bounded};
use super::master::Mover;
use super::progress::{Phase, Progress};
use super::receiver::{self, memory_for_images};
use super::sender::{OFFER_TIMEOUT, variant};
use crate::error::{DaemonError, Result};
use crate::limits::LEASE;
use crate::migrants::Placement;

/// How long a task must have been lost before its image may be restored: the zombie's lease
/// has then surely ended, and with it the zombie has stopped its copy.
pub const LOST_BEFORE_IMAGE: Duration = Duration::from_secs(LEASE.as_secs() + 2);

impl Mover {
    /// Brings task `task` home from the zombie it runs on.
    pub async fn home(
        self: &Arc<Self>,
        task: u64,
        compress: Compression,
        live: bool,
        progress: &Progress,
    ) -> Result<Reply> {
        let info = self.migrants.info(task)?;
        let host = match &info.placement {
            Placement::Away { host } => host.clone(),
            Placement::Lost { host } => {
                return Err(DaemonError::User(format!(
                    "task {task} was lost with {host}; `zos home {task} --from-image` restarts it from its last image"
                )));
            }
            other => {
                return Err(DaemonError::User(format!(
                    "task {task} is not away ({})",
                    other.state_word()
                )));
            }
        };
        let key = info
            .zombie_key
            .ok_or_else(|| DaemonError::User(format!("task {task}: no zombie recorded")))?;
        let session = self.dominions.session_of(&key).ok_or_else(|| {
            DaemonError::User(format!("{host} is not dominated by this master any more"))
        })?;
        let zombie = session.zombie.clone();
        let ticket = self.migrants.begin_home(task)?;
        let epoch = ticket.epoch();
        let next = ticket.next_epoch();
        let arrival = self.dominions.home_channels.expect(task, key);
        let codec = match self.codec_for(compress, &key) {
            engine::CodecChoice::Fixed(c) => Some(c),
            engine::CodecChoice::Auto(_) => None,
        };
        let recall = MigrantsRequest::Recall {
            task,
            epoch,
            codec,
            live,
        };
        match self.ask(&zombie, &recall).await {
            Ok(MigrantsReply::Done) => {}
            Ok(MigrantsReply::Refused { reason }) => {
                self.dominions.home_channels.forget(task);
                return Err(DaemonError::User(format!(
                    "{} will not send task {task}: {}",
                    zombie.name,
                    bounded(&reason)
                )));
            }
            other => {
                self.dominions.home_channels.forget(task);
                return Err(DaemonError::User(format!(
                    "{} did not take the recall: {other:?}",
                    zombie.name
                )));
            }
        }
        let channel = match tokio::time::timeout(STEP_TIMEOUT, arrival).await {
            Ok(Ok(c)) => c,
            _ => {
                self.dominions.home_channels.forget(task);
                return Err(DaemonError::User(format!(
                    "{} did not open the channel to send task {task}",
                    zombie.name
                )));
            }
        };
        let mut link = MoveLink::new(channel, &zombie.name);
        let offer = match link.recv(OFFER_TIMEOUT, "its offer").await? {
            MoveMessage::Offer(o) => o,
            other => {
                return Err(DaemonError::User(format!(
                    "{} started with {}",
                    zombie.name,
                    variant(&other)
                )));
            }
        };
        if let Err(reason) = offer.check() {
            link.abort(&reason).await;
            return Err(DaemonError::User(format!(
                "{}'s offer: {reason}",
                zombie.name
            )));
        }
        if offer.task != task || offer.epoch != next {
            let reason = format!(
                "offered task {} at epoch {}, asked for task {task} at epoch {next}",
                offer.task, offer.epoch
            );
            link.abort(&reason).await;
            return Err(DaemonError::User(reason));
        }
        let limit = memory_for_images();
        if offer.image_hint > limit {
            let reason = format!(
                "the task needs about {} MiB and this master can give {} MiB",
                offer.image_hint >> 20,
                limit >> 20
            );
            link.send(&MoveMessage::Refuse {
                reason: reason.clone(),
            })
            .await?;
            return Err(DaemonError::User(reason));
        }
        let store = FileStore::new(&self.runtime, task);
        let cache = self.cache.clone();
        let need_of = |list: &[Executable]| {
            tokio::task::block_in_place(|| master_needs(list, &store, &cache))
        };
        let need = need_of(&offer.executables);
        link.send(&MoveMessage::Accept { need: need.clone() })
            .await?;
        progress.enter(Phase::Freeze, 0);
        let received = match receiver::receive(
            &mut link,
            offer.executables.clone(),
            need,
            &store,
            receiver::ImageSize {
                limit,
                hint: offer.image_hint,
            },
            need_of,
            progress,
        )
        .await
        {
            Ok(r) => r,
            Err(e) => {
                link.abort(&e.to_string()).await;
                return Err(e);
            }
        };
        progress.enter(Phase::Restore, 0);
        let opts = TreeRestoreOptions {
            substitutions: master_substitutions(&received.executables, &store),
            ..Default::default()
        };
        let adopt: engine::Adopt = Box::new(move |tree| match tree.resume() {
            Ok(pod) => ticket.adopt_pod(pod, next),
            Err(e) => {
                let why = format!("the restored task could not be resumed: {e}");
                ticket.failed(&why);
                Err(DaemonError::User(why))
            }
        });
        let image_bytes = received.image.len() as u64;
        let (restored, hold) =
            engine::start_restore(task, received.image, received.base, opts, adopt)?;
        let restored = match tokio::time::timeout(ENGINE_LIMIT, restored).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(DaemonError::User("the restore's thread died".into())),
            Err(_) => Err(DaemonError::User("the restore did not finish".into())),
        };
        if let Err(e) = restored {
            link.abort(&e.to_string()).await;
            return Err(e);
        }
        // The commit point: the task is home at `next` once its copy here runs.
        progress.enter(Phase::Commit, 0);
        match hold.decide(Decision::Commit).await {
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                link.abort(&e.to_string()).await;
                return Err(e);
            }
            None => {
                link.abort("the restore's thread died").await;
                return Err(DaemonError::User("the restore's thread died".into()));
            }
        }
        match link.send(&MoveMessage::Commit { epoch: next }).await {
            Ok(()) => match link.recv(STEP_TIMEOUT, "Running").await {
                Ok(MoveMessage::Running { epoch: e }) if e == next => {}
                other => tracing::warn!(
                    "task {task}: {} did not confirm it ended its copy: {other:?}",
                    zombie.name
                ),
            },
            Err(e) => tracing::warn!(
                "task {task} is home; {} may not know yet ({e}) and keeps its stopped copy until told",
                zombie.name
            ),
        }
        tracing::info!("task {task} came home from {} (epoch {next})", zombie.name);
        Ok(Reply::Moved {
            task,
            to: self.migrants.master_name().to_string(),
            phases: progress.finish(),
            image_bytes,
            precopy: progress.precopy_summary(),
        })
    }

    /// One line on the image `zos home TASK --from-image` would restore (its age), or why
    /// it may not.
    pub fn image_age_line(&self, task: u64) -> Result<String> {
        let info = self.migrants.info(task)?;
        let Placement::Lost { host } = &info.placement else {
            return Err(DaemonError::User(format!(
                "task {task} is not lost ({}); --from-image is for tasks lost with their zombie",
                info.placement.state_word()
            )));
        };
        let lost_for = info.since.elapsed().unwrap_or_default();
        if lost_for < LOST_BEFORE_IMAGE {
            return Err(DaemonError::User(format!(
                "task {task} was lost with {host} only {} s ago; {host} may still run it until its lease ends: try again in {} s",
                lost_for.as_secs(),
                (LOST_BEFORE_IMAGE - lost_for).as_secs() + 1
            )));
        }
        let record = info.last_image.clone().ok_or_else(|| {
            DaemonError::User(format!("this master holds no image of task {task}"))
        })?;
        let age = SystemTime::now()
            .duration_since(record.at)
            .unwrap_or_default()
            .as_secs();
        Ok(format!(
            "restoring task {task} from its image of {} ago (epoch {}); what it did on {host} since is lost",
            human_age(age),
            record.epoch
        ))
    }

    /// Restarts task `task`, lost with its zombie, from the last image this master holds
    /// (the epoch goes up, so a copy that zombie may still hold is stale).
    pub async fn home_from_image(
        self: &Arc<Self>,
        task: u64,
        progress: &Progress,
    ) -> Result<Reply> {
        self.image_age_line(task)?;
        let ticket = self.migrants.begin_home(task)?;
        let next = ticket.next_epoch();
        progress.enter(Phase::SendImage, 0);
        let me = self.clone();
        let image = tokio::task::spawn_blocking(move || me.images.read(task))
            .await
            .map_err(|_| DaemonError::User("reading the image failed".into()))??;
        let image_bytes = image.len() as u64;
        progress.enter(Phase::Restore, image_bytes);
        let adopt: engine::Adopt = Box::new(move |tree| ticket.adopt_restored(tree, next));
        let (restored, hold) =
            engine::start_restore(task, image, None, TreeRestoreOptions::default(), adopt)?;
        match restored.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(DaemonError::User("the restore's thread died".into())),
        }
        progress.enter(Phase::Commit, 0);
        match hold.decide(Decision::Commit).await {
            Some(Ok(_)) => Ok(Reply::Moved {
                task,
                to: self.migrants.master_name().to_string(),
                phases: progress.finish(),
                image_bytes,
                precopy: None,
            }),
            Some(Err(e)) => Err(e),
            None => Err(DaemonError::User("the restore's thread died".into())),
        }
    }

    /// Every migrant running on a zombie now.
    pub fn away(&self) -> Vec<u64> {
        self.migrants
            .infos()
            .into_iter()
            .filter(|i| matches!(i.placement, Placement::Away { .. }))
            .map(|i| i.id)
            .collect()
    }

    /// The migrants that run on the zombie `host` (by its key).
    pub fn away_on(&self, key: &zos_netproto::PublicKey) -> Vec<u64> {
        self.migrants
            .infos()
            .into_iter()
            .filter(|i| {
                i.zombie_key.as_ref() == Some(key) && matches!(i.placement, Placement::Away { .. })
            })
            .map(|i| i.id)
            .collect()
    }
}

/// Which offered files the master lacks: those whose own copy (at the path they came from,
/// else at their path) differs or is missing, and not already received for this task.
fn master_needs(list: &[Executable], store: &FileStore, cache: &HashCache) -> Vec<[u8; 32]> {
    let mut need = Vec::new();
    for x in list {
        if store.has(&x.sha256, x.size) || need.contains(&x.sha256) {
            continue;
        }
        let own = x.original.as_deref().unwrap_or(&x.path);
        let same = std::fs::File::open(own)
            .and_then(|mut f| cache.hash(&mut f))
            .is_ok_and(|(sha, size)| sha == x.sha256 && size == x.size);
        if !same {
            need.push(x.sha256);
        }
    }
    need
}

/// Substitutions for the master's restore: a file that travelled here, or this master's own
/// copy at the path it came from.
fn master_substitutions(
    list: &[Executable],
    store: &FileStore,
) -> HashMap<String, std::path::PathBuf> {
    let mut out = HashMap::new();
    for x in list {
        if store.has(&x.sha256, x.size) {
            out.insert(x.path.clone(), store.path_of(&x.sha256));
        } else if let Some(orig) = &x.original
            && orig != &x.path
        {
            out.insert(x.path.clone(), std::path::PathBuf::from(orig));
        }
    }
    out
}

/// "42 s", "5 min", "3 h", "2 days".
pub fn human_age(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}
