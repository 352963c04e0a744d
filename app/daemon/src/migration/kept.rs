//! The master's side of the zombies' snapshots (`image/<task>`, see `pushes`): a whole
//! image replaces the task's last image; a delta is merged into it (the last image as its
//! base, flattened into a whole image again), so that the kept image is always one a
//! `zos home --from-image` restores as it is. The task's image age then starts again.
//! Bounds on what a zombie can make the master do: one snapshot of a task at a time, only
//! for a task this master moved there asking for snapshots, at most twice as often as it
//! asked, each within the memory this host can give an image.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use zos_checkpoint::PageBase;
use zos_netproto::PublicKey;
use zos_netproto::migration::{MAX_IMAGE_BYTES, MoveMessage};
use zos_netproto::mux::Channel;

use super::codec::Decoder;
use super::link::{Frame, MoveLink};
use super::master::Mover;
use super::receiver::memory_for_images;
use crate::error::{DaemonError, Result};
use crate::migrants::{ImageRecord, Placement};

/// How long the zombie may take between two parts of a snapshot.
const PART_TIMEOUT: Duration = Duration::from_secs(120);

/// How long `zos snapshot` of a task away waits for the zombie's snapshot to be kept.
const ASKED_TIMEOUT: Duration = Duration::from_secs(300);

/// How long it waits for that snapshot to start arriving (the zombie dumps the task first).
const ASKED_START_TIMEOUT: Duration = Duration::from_secs(60);

impl Mover {
    /// `zos snapshot` of a task away: asks its zombie for a snapshot now (`SendImage`), waits
    /// until this master kept it (merged into the task's last image, as the periodic ones),
    /// and returns that image's path (a whole pod image).
    pub async fn snapshot_away(&self, task: u64) -> Result<std::path::PathBuf> {
        let info = self.migrants.info(task)?;
        let (Placement::Away { host }, Some(key)) = (&info.placement, info.zombie_key) else {
            return Err(DaemonError::User(format!(
                "task {task} does not run on a zombie"
            )));
        };
        let zombie = crate::domination::PairedZombie {
            name: host.clone(),
            key,
        };
        let before = info.last_image.as_ref().map(|r| r.at);
        self.snapshots_asked.lock().insert(task);
        let request = zos_netproto::migration::MigrantsRequest::SendImage {
            task,
            epoch: info.epoch,
        };
        let answer = self.ask(&zombie, &request).await;
        let refused = match answer {
            Ok(zos_netproto::migration::MigrantsReply::Done) => None,
            Ok(zos_netproto::migration::MigrantsReply::Refused { reason }) => Some(reason),
            Ok(other) => Some(format!("it answered {other:?}")),
            Err(e) => Some(e.to_string()),
        };
        if let Some(why) = refused {
            self.snapshots_asked.lock().remove(&task);
            return Err(DaemonError::User(format!(
                "{host} did not take a snapshot of task {task}: {why}"
            )));
        }
        let asked_at = std::time::Instant::now();
        let mut arriving = false;
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            // Whether a snapshot was taken in and ended (the flag is gone, none in progress)
            // or could not come, read before the image: a success sets the image first.
            let busy = self.snapshots_busy.lock().contains(&task);
            arriving |= busy;
            let ended = !self.snapshots_asked.lock().contains(&task) && !busy;
            let late = if arriving {
                asked_at.elapsed() > ASKED_TIMEOUT
            } else {
                // The zombie dumps first, then sends: a dump that failed sends nothing.
                asked_at.elapsed() > ASKED_START_TIMEOUT
            };
            let now = self.migrants.info(task)?;
            if let Some(r) = now.last_image.filter(|r| Some(r.at) != before) {
                return Ok(r.path);
            }
            let gone = !matches!(&now.placement, Placement::Away { host: h } if *h == *host);
            if ended || gone || late {
                self.snapshots_asked.lock().remove(&task);
                return Err(DaemonError::User(format!(
                    "no snapshot of task {task} came from {host} (see the daemons' logs)"
                )));
            }
        }
    }

    /// Takes a snapshot of `task` the zombie `key` (named `name`) sends on `channel`.
    pub async fn keep_snapshot(
        self: Arc<Self>,
        task: u64,
        key: PublicKey,
        name: String,
        channel: Channel,
    ) {
        let mut link = MoveLink::new(channel, &name);
        // One snapshot of a task at a time: a zombie cannot make the master merge many
        // images at once.
        if !self.snapshots_busy.lock().insert(task) {
            link.abort(&format!("a snapshot of task {task} is being kept already"))
                .await;
            return;
        }
        let result = self.take_snapshot(task, &key, &mut link).await;
        self.snapshots_busy.lock().remove(&task);
        match result {
            Ok(seq) => {
                let _ = link.send(&MoveMessage::SnapshotKept { seq }).await;
            }
            Err(e) => {
                tracing::warn!("task {task}: snapshot from {name} not kept: {e}");
                link.abort(&e.to_string()).await;
            }
        }
    }

    async fn take_snapshot(&self, task: u64, key: &PublicKey, link: &mut MoveLink) -> Result<u64> {
        let info = self.migrants.info(task)?;
        let away_there = matches!(info.placement, Placement::Away { .. })
            && info.zombie_key.as_ref() == Some(key);
        if !away_there {
            return Err(DaemonError::User(format!(
                "task {task} does not run on {} for this master",
                link.peer
            )));
        }
        let (epoch, seq, delta) = match link.recv(PART_TIMEOUT, "Snapshot").await? {
            MoveMessage::Snapshot { epoch, seq, delta } => (epoch, seq, delta),
            other => {
                return Err(DaemonError::User(format!(
                    "{} opened a snapshot with {other:?}",
                    link.peer
                )));
            }
        };
        if epoch != info.epoch {
            return Err(DaemonError::User(format!(
                "a snapshot of task {task} at epoch {epoch}, which runs at epoch {}",
                info.epoch
            )));
        }
        let asked = self.snapshots_asked.lock().remove(&task);
        match self.snapshot_pace.lock().get(&task) {
            Some(_) if asked => {}
            Some((every, _)) if every.is_zero() => {
                return Err(DaemonError::User(format!(
                    "this master asked for no snapshots of task {task}"
                )));
            }
            Some((every, Some(last))) if last.elapsed() < *every / 2 => {
                return Err(DaemonError::User(format!(
                    "a snapshot of task {task} {} ms after the last one: too soon",
                    last.elapsed().as_millis()
                )));
            }
            Some(_) => {}
            None => {
                return Err(DaemonError::User(format!(
                    "this master moved task {task} there without asking for snapshots"
                )));
            }
        }
        if delta && self.snapshot_seqs.lock().get(&task) != Some(&(seq.wrapping_sub(1))) {
            return Err(DaemonError::User(format!(
                "snapshot {seq} of task {task} is a delta over one this master did not keep"
            )));
        }
        let limit = memory_for_images().min(MAX_IMAGE_BYTES);
        let mut dec = Decoder::new();
        let mut image = Vec::new();
        loop {
            match link.recv_frame(PART_TIMEOUT, "the snapshot").await? {
                Frame::Image(codec, raw_len, data) => {
                    if image.len() as u64 + raw_len as u64 > limit {
                        return Err(DaemonError::User(format!(
                            "a snapshot larger than the {limit} bytes this master can take"
                        )));
                    }
                    dec.decode_into(codec, &data, raw_len, &mut image)
                        .map_err(DaemonError::User)?;
                }
                Frame::Message(MoveMessage::ImageEnd { raw_bytes })
                    if raw_bytes == image.len() as u64 =>
                {
                    break;
                }
                Frame::Message(other) => {
                    return Err(DaemonError::User(format!(
                        "{} sent {other:?} in a snapshot",
                        link.peer
                    )));
                }
            }
        }
        let images = self.images.clone();
        let path = tokio::task::spawn_blocking(move || -> Result<std::path::PathBuf> {
            let whole = if delta {
                let mut base = PageBase::new();
                base.add_image(Arc::new(images.read(task)?))
                    .map_err(|e| DaemonError::User(format!("the last image: {e}")))?;
                zos_checkpoint::track::flatten(&image, &base)
                    .map_err(|e| DaemonError::User(format!("the snapshot: {e}")))?
            } else {
                zos_checkpoint::image::format::parse_tree(&image)
                    .map_err(|e| DaemonError::User(format!("the snapshot: {e}")))?;
                image
            };
            let (mut file, pending) = images.create(task)?;
            file.write_all(&whole)
                .and_then(|()| file.sync_data())
                .map_err(|e| DaemonError::io("write the task's image", e))?;
            pending.keep()
        })
        .await
        .map_err(|_| DaemonError::User("keeping the snapshot failed".into()))??;
        self.migrants.set_last_image(
            task,
            ImageRecord {
                path,
                at: SystemTime::now(),
                epoch,
            },
        )?;
        self.snapshot_seqs.lock().insert(task, seq);
        if let Some(pace) = self.snapshot_pace.lock().get_mut(&task) {
            pace.1 = Some(std::time::Instant::now());
        }
        tracing::info!("task {task}: snapshot {seq} from {} kept", link.peer);
        Ok(seq)
    }
}
