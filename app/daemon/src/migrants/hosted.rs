//! [`HostedPods`]: the pods a zombie runs for its master (migrants restored here).
//!
//! Each pod's pty master stays on the zombie; its output goes to the master over a
//! `pty/<task>` channel of the dominating session (`relay`), and what the master sends is
//! typed in. Without a session the relay stops reading the pty (the task blocks once the pty's
//! buffer is full) and goes on, losing nothing, when [`HostedPods::connect`] gives it the next
//! one. When a pod ends on its own, its last output and then `Exited{code}` go to the master.
//! The mover decides when pods are handed off (gone home), frozen, killed.

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;
use zos_checkpoint::RestoredTree;
use zos_checkpoint::pod::Pod;
use zos_netproto::PublicKey;
use zos_netproto::mux::Mux;

use super::hosted_relay::Relay;
use super::sys;
use crate::error::{DaemonError, Result};

/// A pod this zombie runs, as [`HostedPods::list`] shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostedInfo {
    /// The master it runs for.
    pub master: PublicKey,
    /// The master's task id.
    pub task: u64,
    /// The epoch it runs at.
    pub epoch: u64,
    /// Host PID of its init.
    pub pid: i32,
}

struct Hosted {
    master: PublicKey,
    epoch: u64,
    pid: i32,
    /// Its end is expected: no `Exited` goes to the master.
    handed_off: Arc<AtomicBool>,
}

/// The current link to a master: a number (to tell links apart), the master's key and its
/// session.
pub(super) type Link = Option<(u64, PublicKey, Mux)>;

/// The zombie's pods (see the module docs).
pub struct HostedPods {
    pods: Mutex<BTreeMap<u64, Hosted>>,
    link: watch::Sender<Link>,
    links: Mutex<u64>,
    shutdown: CancellationToken,
    /// The daemon's runtime, if made inside one (adoption may come from a thread outside it).
    runtime: Option<tokio::runtime::Handle>,
}

impl HostedPods {
    /// No pods; all are killed when `shutdown` is cancelled. Relays run on the Tokio runtime
    /// this is called in (or, outside one, on the runtime of the thread that adopts a pod).
    pub fn new(shutdown: CancellationToken) -> Arc<HostedPods> {
        Arc::new(HostedPods {
            pods: Mutex::new(BTreeMap::new()),
            link: watch::channel(None).0,
            links: Mutex::new(0),
            shutdown,
            runtime: tokio::runtime::Handle::try_current().ok(),
        })
    }

    /// The session of the master with `key`, now dominating this zombie: the relay of every
    /// pod held for it (re)opens its `pty/<task>` on it.
    pub fn connect(&self, key: PublicKey, mux: Mux) {
        let mut n = self.links.lock();
        *n += 1;
        self.link.send_replace(Some((*n, key, mux)));
    }

    /// The session of the master with `key`, if it is the one connected now.
    pub fn session_of(&self, key: &PublicKey) -> Option<Mux> {
        self.link
            .borrow()
            .as_ref()
            .filter(|(_, k, _)| k == key)
            .map(|(_, _, mux)| mux.clone())
    }

    /// The master is gone: relays wait (and stop reading) until the next [`HostedPods::connect`].
    pub fn disconnect(&self) {
        self.link.send_replace(None);
    }

    /// Lets a tree restored here run (after the master's `Commit{epoch}`) and keeps it as the
    /// pod of `master`'s `task`. Call on the thread that restored it. Returns the init's host
    /// PID.
    pub fn adopt_restored(
        self: &Arc<Self>,
        master: PublicKey,
        task: u64,
        epoch: u64,
        tree: RestoredTree,
    ) -> Result<i32> {
        let pod = tree.resume().map_err(|e| {
            DaemonError::User(format!("the restored task could not be resumed: {e}"))
        })?;
        self.adopt_pod(master, task, epoch, pod)
    }

    /// Keeps a running pod (its pty master still in the handle) as `master`'s `task` at
    /// `epoch`. Its relay starts on the current link if that is `master`'s.
    pub fn adopt_pod(
        self: &Arc<Self>,
        master: PublicKey,
        task: u64,
        epoch: u64,
        mut pod: Pod,
    ) -> Result<i32> {
        let pid = pod.pid();
        // A pod we cannot keep is not left running unwatched.
        fn refuse(pod: &mut Pod, why: String) -> Result<i32> {
            let _ = pod.kill();
            Err(DaemonError::User(why))
        }
        let runtime = match self
            .runtime
            .clone()
            .map(Ok)
            .unwrap_or_else(tokio::runtime::Handle::try_current)
        {
            Ok(r) => r,
            Err(e) => return refuse(&mut pod, format!("no runtime for the pty relay: {e}")),
        };
        let Some(pty) = pod.take_pty_master() else {
            return refuse(&mut pod, "the restored pod has no terminal".into());
        };
        let handed_off = Arc::new(AtomicBool::new(false));
        {
            let mut pods = self.pods.lock();
            if pods.contains_key(&task) {
                drop(pods);
                return refuse(&mut pod, format!("task {task} already runs here"));
            }
            pods.insert(
                task,
                Hosted {
                    master,
                    epoch,
                    pid,
                    handed_off: handed_off.clone(),
                },
            );
        }
        let (exit_tx, exit_rx) = oneshot::channel();
        let relay = Relay {
            master,
            task,
            epoch,
            link: self.link.subscribe(),
            handed_off: handed_off.clone(),
            exit: exit_rx,
        };
        relay
            .start(pty, &runtime)
            .map_err(|e| DaemonError::io("start the pty relay", e))?;
        let me = self.clone();
        std::thread::Builder::new()
            .name(format!("hosted-{task}"))
            .spawn(move || me.watch(task, pod, handed_off, exit_tx))
            .map_err(|e| DaemonError::io("start a hosted pod thread", e))?;
        tracing::info!("hosting task {task} (epoch {epoch}), init pid {pid}");
        Ok(pid)
    }

    /// Every pod held, with its epoch.
    pub fn list(&self) -> Vec<HostedInfo> {
        self.pods
            .lock()
            .iter()
            .map(|(task, h)| HostedInfo {
                master: h.master,
                task: *task,
                epoch: h.epoch,
                pid: h.pid,
            })
            .collect()
    }

    /// Host PID of `task`'s init (the root to check and checkpoint when it goes home).
    pub fn init_pid(&self, task: u64) -> Option<i32> {
        self.pods.lock().get(&task).map(|h| h.pid)
    }

    /// `task` went home (or is discarded): its end is expected and is not reported to the
    /// master. Call before killing its frozen copy; its pty's last output is still relayed.
    pub fn hand_off(&self, task: u64) -> Result<()> {
        match self.pods.lock().get(&task) {
            Some(h) => {
                h.handed_off.store(true, Ordering::Release);
                Ok(())
            }
            None => Err(DaemonError::User(format!("task {task} does not run here"))),
        }
    }

    /// Sends `signal` to every process of `task`'s pod (SIGSTOP to freeze it while its master
    /// is away, SIGCONT to let it go on).
    pub fn signal_all(&self, task: u64, signal: i32) -> Result<()> {
        let pid = self
            .init_pid(task)
            .ok_or_else(|| DaemonError::User(format!("task {task} does not run here")))?;
        let signal = nix::sys::signal::Signal::try_from(signal)
            .map_err(|e| DaemonError::User(format!("signal {signal}: {e}")))?;
        for p in pod_processes(pid) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), signal);
        }
        Ok(())
    }

    /// Kills `task`'s pod (nothing is reported to the master).
    pub fn kill(&self, task: u64) -> Result<()> {
        let pid = {
            let pods = self.pods.lock();
            let h = pods
                .get(&task)
                .ok_or_else(|| DaemonError::User(format!("task {task} does not run here")))?;
            h.handed_off.store(true, Ordering::Release);
            h.pid
        };
        // SIGKILL of the init ends the pod.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        Ok(())
    }

    /// Kills every pod.
    pub fn kill_all(&self) {
        let tasks: Vec<u64> = self.pods.lock().keys().copied().collect();
        for task in tasks {
            let _ = self.kill(task);
        }
    }

    /// Waits (up to `limit`) until every pod has gone.
    pub async fn wait_all_ended(&self, limit: Duration) {
        let end = tokio::time::Instant::now() + limit;
        while !self.pods.lock().is_empty() && tokio::time::Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Watches the init (pidfd), kills the pod when the daemon stops, reaps it, tells the relay
    /// the exit code and forgets the pod.
    fn watch(
        &self,
        task: u64,
        mut pod: Pod,
        handed_off: Arc<AtomicBool>,
        exit: oneshot::Sender<i32>,
    ) {
        if let Ok(pidfd) = sys::pidfd_open(pod.pid()) {
            loop {
                if sys::wait_readable(pidfd.as_fd(), 200).unwrap_or(false) {
                    break;
                }
                if self.shutdown.is_cancelled() {
                    handed_off.store(true, Ordering::Release);
                    let _ = pod.signal(libc::SIGKILL);
                }
            }
        }
        let code = pod
            .wait_timeout(Duration::from_secs(5))
            .ok()
            .flatten()
            .unwrap_or(255);
        self.pods.lock().remove(&task);
        tracing::info!("hosted task {task} ended: exit {code}");
        let _ = exit.send(code);
    }
}

/// Host PIDs of `init` and all its descendants (through `/proc/PID/task/TID/children`).
fn pod_processes(init: i32) -> Vec<i32> {
    let mut out = vec![init];
    let mut i = 0;
    while i < out.len() && out.len() < 100_000 {
        let pid = out[i];
        i += 1;
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let path = t.path().join("children");
            if let Ok(text) = std::fs::read_to_string(path) {
                out.extend(
                    text.split_whitespace()
                        .filter_map(|p| p.parse::<i32>().ok()),
                );
            }
        }
    }
    out
}
