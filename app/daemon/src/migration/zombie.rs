//! The zombie's side of migration: [`ZombieMoves`] serves the dominating master's `migrants`
//! channel (list, resume, discard, recall) and its `migrate/<task>` channels (`arrive`), sends
//! recalled tasks home (`depart`), and keeps the copies nobody may run yet:
//!
//! - a tree restored here and held stopped whose `Commit` never came (*uncommitted*),
//! - a tree whose whole image went home and whose master never said how it ended (*sent*),
//! - the pods of a master that went away (lease ended): stopped with SIGSTOP (*frozen*).
//!
//! Each waits for the master's word after a re-domination (`Resume`/`Discard` with the epoch)
//! or for the grace period (`migrant_grace` in zombie.toml, default 10 min) to end: then it is
//! killed and its files removed. A master that releases the zombie takes its migrants home
//! first; whatever of it is still here then is killed at once.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use zos_netproto::PublicKey;
use zos_netproto::migration::{
    ExportPath, HeldState, HeldTask, MAX_HELD, MAX_MIGRANTS_MESSAGE, MIGRANTS_LABEL, MigrantsReply,
    MigrantsRequest, parse_migrate_label,
};
use zos_netproto::mux::{Channel, Mux};

use super::engine::{Decision, Hold};
use super::files::{FileStore, HashCache, pod_pids};
use crate::error::Result;
use crate::migrants::HostedPods;

/// The default of `migrant_grace`.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(600);

/// The dominating master, as a move needs it.
#[derive(Clone)]
pub struct MasterLink {
    /// Its key.
    pub key: PublicKey,
    /// The name it was paired under.
    pub name: String,
    /// Its session's channels.
    pub mux: Mux,
}

/// Says whether the master with a key may run migrants here now (it dominates at
/// `complete`, as its trust entry allows), with its link; else why not.
pub type Authority =
    Arc<dyn Fn(&PublicKey) -> std::result::Result<MasterLink, String> + Send + Sync>;

/// A copy held in doubt.
pub(super) enum Doubt {
    /// Restored here, stopped, never committed.
    Uncommitted(Hold<Result<i32>>),
    /// Frozen here after its image went home.
    Sent(Hold<()>),
}

pub(super) struct Pending {
    pub master: PublicKey,
    pub epoch: u64,
    pub doubt: Doubt,
    pub deadline: Option<Instant>,
}

struct Frozen {
    master: PublicKey,
    /// The processes we stopped (not those that were stopped already).
    pids: Vec<i32>,
    deadline: Instant,
}

/// What the zombie keeps of a task it hosts, to send it home.
#[derive(Clone)]
pub(super) struct TaskMeta {
    pub master: PublicKey,
    pub command: Vec<String>,
    pub exports: Vec<ExportPath>,
    /// A travelled file's path here → the path it came from.
    pub originals: HashMap<String, String>,
}

#[derive(Default)]
pub(super) struct State {
    pub pending: HashMap<u64, Pending>,
    frozen: HashMap<u64, Frozen>,
    pub meta: HashMap<u64, TaskMeta>,
    /// Tasks with a move in flight.
    pub moving: HashSet<u64>,
    /// Masters that went away, and when their grace period ends.
    gone: HashMap<PublicKey, Instant>,
    /// The snapshot keepers of the tasks hosted here.
    pub keepers: HashMap<u64, super::pushes::KeeperSlot>,
}

/// The zombie's migrations (see the module docs).
pub struct ZombieMoves {
    pub(super) hosted: Arc<HostedPods>,
    pub(super) runtime: PathBuf,
    pub(super) grace: Duration,
    pub(super) cache: Arc<HashCache>,
    pub(super) state: Mutex<State>,
}

impl ZombieMoves {
    /// The moves of a zombie whose runtime dir is `runtime`; held copies wait `grace` for
    /// their master. Everything held is killed when `shutdown` is cancelled.
    pub fn new(
        hosted: Arc<HostedPods>,
        runtime: PathBuf,
        grace: Duration,
        shutdown: CancellationToken,
    ) -> Arc<ZombieMoves> {
        let me = Arc::new(ZombieMoves {
            hosted,
            runtime,
            grace,
            cache: Arc::new(HashCache::default()),
            state: Mutex::new(State::default()),
        });
        let sweeper = me.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => sweeper.sweep(false).await,
                    _ = shutdown.cancelled() => {
                        sweeper.sweep(true).await;
                        return;
                    }
                }
            }
        });
        me
    }

    /// A channel the master with `key` opened: `migrants` (if it may run migrants here) or
    /// `migrate/<task>` (refused with a reason on the channel if it may not). Returns the
    /// channel if it is not one of ours.
    pub fn serve_channel(
        self: &Arc<Self>,
        mut channel: Channel,
        key: PublicKey,
        authority: Authority,
    ) -> Option<Channel> {
        if channel.label() == MIGRANTS_LABEL {
            match authority(&key) {
                Ok(master) => {
                    let me = self.clone();
                    tokio::spawn(
                        async move { me.serve_requests(channel, master, authority).await },
                    );
                }
                Err(reason) => channel.reset(&reason),
            }
            return None;
        }
        if let Some(task) = parse_migrate_label(channel.label()) {
            let me = self.clone();
            tokio::spawn(async move { me.arrive(channel, task, key, authority).await });
            return None;
        }
        Some(channel)
    }

    async fn serve_requests(
        self: Arc<Self>,
        mut channel: Channel,
        master: MasterLink,
        authority: Authority,
    ) {
        channel.set_max_message(MAX_MIGRANTS_MESSAGE);
        loop {
            let request = match channel.recv_msg::<MigrantsRequest>().await {
                Ok(Some(r)) => r,
                Ok(None) => return,
                Err(e) => {
                    tracing::info!("{}'s migrants channel ended: {e}", master.name);
                    return;
                }
            };
            let reply = match authority(&master.key) {
                Err(reason) => MigrantsReply::Refused { reason },
                Ok(now) => self.clone().answer(request, &now, authority.clone()).await,
            };
            if channel.send_msg(&reply).await.is_err() {
                return;
            }
        }
    }

    async fn answer(
        self: Arc<Self>,
        request: MigrantsRequest,
        master: &MasterLink,
        authority: Authority,
    ) -> MigrantsReply {
        match request {
            MigrantsRequest::List => MigrantsReply::Held {
                tasks: self.held(&master.key),
            },
            MigrantsRequest::Resume { task, epoch } => self.resume(task, epoch, master).await,
            MigrantsRequest::Discard { task, epoch } => {
                self.discard(task, epoch, &master.key).await;
                MigrantsReply::Done
            }
            MigrantsRequest::Recall {
                task,
                epoch,
                codec,
                live,
            } => self.recall(task, epoch, codec, live, master, authority),
            MigrantsRequest::SendImage { task, epoch } => {
                self.send_image_now(task, epoch, master.key)
            }
        }
    }

    /// The copies of `master`'s tasks held here.
    fn held(&self, master: &PublicKey) -> Vec<HeldTask> {
        let st = self.state.lock();
        let mut out: Vec<HeldTask> = Vec::new();
        for h in self
            .hosted
            .list()
            .into_iter()
            .filter(|h| h.master == *master)
        {
            if st.pending.contains_key(&h.task) {
                continue;
            }
            let state = if st.frozen.contains_key(&h.task) {
                HeldState::Frozen
            } else {
                HeldState::Running
            };
            out.push(HeldTask {
                task: h.task,
                epoch: h.epoch,
                state,
            });
        }
        for (task, p) in st.pending.iter().filter(|(_, p)| p.master == *master) {
            out.push(HeldTask {
                task: *task,
                epoch: p.epoch,
                state: match p.doubt {
                    Doubt::Uncommitted(_) => HeldState::Uncommitted,
                    Doubt::Sent(_) => HeldState::Sent,
                },
            });
        }
        out.truncate(MAX_HELD);
        out
    }

    /// The master says the copy of `task` at `epoch` is the task: let it run.
    async fn resume(&self, task: u64, epoch: u64, master: &MasterLink) -> MigrantsReply {
        let pending = {
            let mut st = self.state.lock();
            match st.pending.get(&task) {
                Some(p) if p.master == master.key && p.epoch == epoch => st.pending.remove(&task),
                Some(_) => {
                    return refused(format!(
                        "the copy of task {task} here is not at epoch {epoch}"
                    ));
                }
                None => None,
            }
        };
        match pending.map(|p| p.doubt) {
            Some(Doubt::Uncommitted(hold)) => match hold.decide(Decision::Commit).await {
                Some(Ok(_)) => {}
                other => return refused(format!("task {task} could not be resumed: {other:?}")),
            },
            Some(Doubt::Sent(hold)) => {
                hold.decide(Decision::Abort).await;
            }
            None => {}
        }
        let hosted_here = self
            .hosted
            .list()
            .into_iter()
            .any(|h| h.task == task && h.master == master.key && h.epoch == epoch);
        if !hosted_here {
            return refused(format!("task {task} is not here at epoch {epoch}"));
        }
        self.thaw(task);
        // Its terminal relay goes to the master again.
        self.hosted.connect(master.key, master.mux.clone());
        tracing::info!("task {task} (epoch {epoch}) runs again for {}", master.name);
        MigrantsReply::Done
    }

    /// The copy of `task` at `epoch` is not the task's (its move failed, or it is stale).
    pub(super) async fn discard(&self, task: u64, epoch: u64, master: &PublicKey) {
        let pending = {
            let mut st = self.state.lock();
            match st.pending.get(&task) {
                Some(p) if p.master == *master && p.epoch == epoch => st.pending.remove(&task),
                _ => None,
            }
        };
        match pending.map(|p| p.doubt) {
            Some(Doubt::Uncommitted(hold)) => {
                hold.decide(Decision::Abort).await;
            }
            Some(Doubt::Sent(hold)) => {
                let _ = self.hosted.hand_off(task);
                hold.decide(Decision::Commit).await;
            }
            None => {
                let stale = self
                    .hosted
                    .list()
                    .into_iter()
                    .any(|h| h.task == task && h.master == *master && h.epoch == epoch);
                if !stale {
                    return;
                }
                self.thaw_forget(task);
                let _ = self.hosted.kill(task);
            }
        }
        tracing::info!("discarded the copy of task {task} at epoch {epoch}");
        self.forget(task);
    }

    /// The master with `key` went away (its lease ended): its pods are stopped and, like the
    /// copies held in doubt, kept for the grace period.
    pub fn master_gone(&self, key: &PublicKey) {
        let deadline = Instant::now() + self.grace;
        let mut st = self.state.lock();
        st.gone.entry(*key).or_insert(deadline);
        for p in st.pending.values_mut().filter(|p| p.master == *key) {
            p.deadline.get_or_insert(deadline);
        }
        for h in self.hosted.list().into_iter().filter(|h| h.master == *key) {
            if st.pending.contains_key(&h.task) || st.frozen.contains_key(&h.task) {
                continue;
            }
            let pids = stop_pod(h.pid);
            tracing::info!(
                "task {} stopped: its master is gone; kept {} s for it",
                h.task,
                self.grace.as_secs()
            );
            st.frozen.insert(
                h.task,
                Frozen {
                    master: *key,
                    pids,
                    deadline,
                },
            );
        }
    }

    /// The master with `key` released this zombie: nothing of its stays.
    pub async fn master_released(&self, key: &PublicKey) {
        let tasks: Vec<(u64, u64)> = {
            let st = self.state.lock();
            let mut t: Vec<(u64, u64)> = self
                .hosted
                .list()
                .into_iter()
                .filter(|h| h.master == *key)
                .map(|h| (h.task, h.epoch))
                .collect();
            t.extend(
                st.pending
                    .iter()
                    .filter(|(_, p)| p.master == *key)
                    .map(|(k, p)| (*k, p.epoch)),
            );
            t
        };
        for (task, epoch) in tasks {
            tracing::info!("released with task {task} still here: it ends");
            self.discard(task, epoch, key).await;
        }
        self.forget_master(key);
    }

    /// Forgets every task of the master with `key` that has nothing here any more (files of
    /// tasks that went home are kept for their next visit until then).
    fn forget_master(&self, key: &PublicKey) {
        let tasks: Vec<u64> = {
            let mut st = self.state.lock();
            st.gone.remove(key);
            st.meta
                .iter()
                .filter(|(_, m)| m.master == *key)
                .map(|(t, _)| *t)
                .collect()
        };
        for task in tasks {
            self.forget(task);
        }
        let _ = std::fs::remove_dir(self.runtime.join("migrants"));
    }

    /// Kills what waited past its grace (or everything, when the daemon stops).
    async fn sweep(&self, all: bool) {
        let now = Instant::now();
        let over: Vec<PublicKey> = {
            let st = self.state.lock();
            st.gone
                .iter()
                .filter(|(_, d)| all || **d <= now)
                .map(|(k, _)| *k)
                .collect()
        };
        let expired: Vec<(u64, PublicKey, u64)> = {
            let st = self.state.lock();
            let frozen = st
                .frozen
                .iter()
                .filter(|(_, f)| all || f.deadline <= now)
                .map(|(t, f)| (*t, f.master));
            let pending = st
                .pending
                .iter()
                .filter(|(_, p)| all || p.deadline.is_some_and(|d| d <= now))
                .map(|(t, p)| (*t, p.master));
            frozen
                .chain(pending)
                .map(|(t, m)| {
                    let epoch = st
                        .pending
                        .get(&t)
                        .map(|p| p.epoch)
                        .or_else(|| {
                            self.hosted
                                .list()
                                .iter()
                                .find(|h| h.task == t)
                                .map(|h| h.epoch)
                        })
                        .unwrap_or(0);
                    (t, m, epoch)
                })
                .collect()
        };
        for (task, master, epoch) in expired {
            tracing::info!(
                "task {task}: its master did not come back within the grace period; it ends"
            );
            self.discard(task, epoch, &master).await;
            self.thaw_forget(task);
        }
        for key in over {
            self.forget_master(&key);
        }
    }

    /// The master with `key` dominates this zombie (again): no grace period runs for it.
    pub fn master_back(&self, key: &PublicKey) {
        self.state.lock().gone.remove(key);
    }

    /// SIGCONT to the processes of `task` we stopped.
    fn thaw(&self, task: u64) {
        if let Some(f) = self.state.lock().frozen.remove(&task) {
            for pid in f.pids {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGCONT,
                );
            }
        }
    }

    fn thaw_forget(&self, task: u64) {
        self.state.lock().frozen.remove(&task);
    }

    /// Forgets what was kept of `task` here, with its travelled files.
    pub(super) fn forget(&self, task: u64) {
        let mut st = self.state.lock();
        if st.pending.contains_key(&task) || st.moving.contains(&task) {
            return;
        }
        st.frozen.remove(&task);
        st.meta.remove(&task);
        drop(st);
        if !self.hosted.list().iter().any(|h| h.task == task) {
            FileStore::new(&self.runtime, task).remove();
        }
    }
}

fn refused(reason: String) -> MigrantsReply {
    MigrantsReply::Refused { reason }
}

/// SIGSTOP to every process of the pod at `root` that is not stopped already; those stopped.
fn stop_pod(root: i32) -> Vec<i32> {
    let mut stopped = Vec::new();
    for pid in pod_pids(root) {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(") ").and_then(|(_, r)| r.chars().next()));
        if matches!(state, Some('T') | Some('t') | Some('Z') | None) {
            continue;
        }
        if nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGSTOP,
        )
        .is_ok()
        {
            stopped.push(pid);
        }
    }
    stopped
}
