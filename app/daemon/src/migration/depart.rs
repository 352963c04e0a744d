//! A migrant leaving the zombie for home, when its master recalls it: the zombie opens
//! `home/<task>`, offers the task (its travelled files named by where they came from), sends
//! the frozen tree's image, and waits for the master's word: `Commit` ends the copy here,
//! `Abort` resumes it. A channel lost after the whole image went leaves the copy frozen here
//! until the master says which it is (or the grace period ends).

use std::sync::Arc;

use zos_netproto::migration::{
    Codec, MIGRATION_VERSION, MigrantsReply, MoveMessage, Offer, home_label,
};

use super::codec::DEFAULT_LINK_BPS;
use super::engine::{CodecChoice, Decision, ENGINE_LIMIT};
use super::files;
use super::link::MoveLink;
use super::progress::Progress;
use super::sender::{self, Outgoing};
use super::zombie::{Authority, Doubt, MasterLink, Pending, ZombieMoves};
use crate::error::{DaemonError, Result};

impl ZombieMoves {
    /// The master recalls `task` (at `epoch`): starts sending it home.
    pub(super) fn recall(
        self: Arc<Self>,
        task: u64,
        epoch: u64,
        codec: Option<Codec>,
        live: bool,
        master: &MasterLink,
        authority: Authority,
    ) -> MigrantsReply {
        let refuse = |reason: String| MigrantsReply::Refused { reason };
        let Some(h) = self
            .hosted
            .list()
            .into_iter()
            .find(|h| h.task == task && h.master == master.key)
        else {
            return refuse(format!("task {task} does not run here"));
        };
        if h.epoch != epoch {
            return refuse(format!(
                "task {task} runs here at epoch {}, not {epoch}",
                h.epoch
            ));
        }
        {
            let mut st = self.state.lock();
            if st.pending.contains_key(&task) || !st.moving.insert(task) {
                return refuse(format!("task {task} is moving already"));
            }
        }
        let master = master.clone();
        let me = self.clone();
        tokio::spawn(async move {
            let result = me
                .clone()
                .depart(task, epoch, codec, live, h.pid, &master)
                .await;
            me.state.lock().moving.remove(&task);
            if let Err(e) = result {
                tracing::info!("task {task} did not go home: {e}");
                // It runs here again; if its master left meanwhile, it waits stopped.
                if authority(&master.key).is_err() {
                    me.master_gone(&master.key);
                }
            }
        });
        MigrantsReply::Done
    }

    async fn depart(
        self: Arc<Self>,
        task: u64,
        epoch: u64,
        codec: Option<Codec>,
        live: bool,
        root: i32,
        master: &MasterLink,
    ) -> Result<()> {
        // No snapshot may freeze the pod while it moves, and the move's own tracker needs
        // the pod untracked: the keeper waits, and starts a new chain if the task stays.
        let keeper = self.keeper(task);
        let mut keeper = keeper.lock().await;
        keeper.reset();
        let channel = master.mux.open(&home_label(task))?;
        let mut link = MoveLink::new(channel, &master.name);
        let meta = self.state.lock().meta.get(&task).cloned().ok_or_else(|| {
            DaemonError::User(format!("nothing is known here of how task {task} came"))
        })?;
        let skip: Vec<String> = meta.exports.iter().map(|e| e.path.clone()).collect();
        let cache = self.cache.clone();
        let (skip2, originals) = (skip.clone(), meta.originals.clone());
        let checked = tokio::task::spawn_blocking(move || {
            let report = zos_checkpoint::check_tree(root);
            let paths = files::mapped_paths(root);
            let list = files::describe(root, &paths, &skip2, &originals, &cache);
            (report, list, files::pod_resident_bytes(root))
        })
        .await
        .map_err(|_| DaemonError::User("the check failed".into()))?;
        let (report, executables, hint) = checked;
        let reasons = match report {
            Ok(r) => r.reasons,
            Err(e) => vec![e.to_string()],
        };
        if !reasons.is_empty() {
            let why = format!(
                "task {task} cannot move (it runs on here): {}",
                reasons.join("; ")
            );
            link.abort(&why).await;
            return Err(DaemonError::User(why));
        }
        let offer = Offer {
            version: MIGRATION_VERSION,
            task,
            epoch: epoch + 1,
            command: meta.command.clone(),
            image_hint: hint,
            executables,
            exports: Vec::new(),
            image_every_s: 0,
        };
        let out = Outgoing {
            root,
            offer,
            codec: codec.map_or(CodecChoice::Auto(DEFAULT_LINK_BPS), CodecChoice::Fixed),
            image_file: None,
            skip,
            originals: meta.originals.clone(),
            live,
        };
        let progress = Progress::new(task);
        let sent = match sender::send_task(&mut link, out, &progress, self.cache.clone()).await {
            Ok(s) => s,
            Err(e) => {
                link.abort(&e.to_string()).await;
                return Err(e);
            }
        };
        match link.recv_raw(ENGINE_LIMIT, "the master's commit").await {
            Ok(MoveMessage::Commit { epoch: e }) if e == epoch + 1 => {
                let _ = self.hosted.hand_off(task);
                sent.hold.decide(Decision::Commit).await;
                let _ = link.send(&MoveMessage::Running { epoch: e }).await;
                tracing::info!("task {task} went home (epoch {e})");
                Ok(())
            }
            Ok(MoveMessage::Abort { reason }) => {
                sent.hold.decide(Decision::Abort).await;
                Err(DaemonError::User(format!(
                    "the master gave up: {}",
                    super::link::bounded(&reason)
                )))
            }
            other => {
                // The master may or may not have the task running now: keep ours frozen
                // until it says (or the grace period ends).
                tracing::warn!(
                    "task {task}: no word after its image went home ({other:?}); kept frozen"
                );
                self.state.lock().pending.insert(
                    task,
                    Pending {
                        master: master.key,
                        epoch,
                        doubt: Doubt::Sent(sent.hold),
                        deadline: Some(std::time::Instant::now() + self.grace),
                    },
                );
                Ok(())
            }
        }
    }
}
