//! [`HostedPods`]: the pods a zombie runs for its master (migrants restored here).
//!
//! Each pod's pty master stays on the zombie; its output goes to the master over a
//! `pty/<task>` channel of the dominating session (`relay`), and what the master sends is
//! typed in. Without a session the relay stops reading the pty (the task blocks once the pty's
//! buffer is full) and goes on, losing nothing, when [`HostedPods::connect`] gives it the next
//! one. When a pod ends on its own, its last output and then `Exited{code}` go to the master.
//! The mover decides when pods are handed off (gone home), frozen, killed.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use zos_checkpoint::RestoredTree;
use zos_checkpoint::pod::Pod;
use zos_netproto::PublicKey;
use zos_netproto::mux::Mux;

use super::relay::{MAX_OUTPUT_CHUNK, MAX_PTY_MESSAGE, PtyMessage, pty_label};
use super::terminal::SourceCmd;
use super::{local_pty, sys};
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
type Link = Option<(u64, PublicKey, Mux)>;

/// The zombie's pods (see the module docs).
pub struct HostedPods {
    pods: Mutex<BTreeMap<u64, Hosted>>,
    link: watch::Sender<Link>,
    links: Mutex<u64>,
    shutdown: CancellationToken,
}

impl HostedPods {
    /// No pods; all are killed when `shutdown` is cancelled.
    pub fn new(shutdown: CancellationToken) -> Arc<HostedPods> {
        Arc::new(HostedPods {
            pods: Mutex::new(BTreeMap::new()),
            link: watch::channel(None).0,
            links: Mutex::new(0),
            shutdown,
        })
    }

    /// The session of the master with `key`, now dominating this zombie: the relay of every
    /// pod held for it (re)opens its `pty/<task>` on it.
    pub fn connect(&self, key: PublicKey, mux: Mux) {
        let mut n = self.links.lock();
        *n += 1;
        self.link.send_replace(Some((*n, key, mux)));
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
        let Some(pty) = pod.take_pty_master() else {
            return Err(DaemonError::User("the restored pod has no terminal".into()));
        };
        let handed_off = Arc::new(AtomicBool::new(false));
        {
            let mut pods = self.pods.lock();
            if pods.contains_key(&task) {
                return Err(DaemonError::User(format!("task {task} already runs here")));
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
        self.start_relay(master, task, epoch, pty, handed_off.clone(), exit_rx)?;
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

    fn start_relay(
        &self,
        master: PublicKey,
        task: u64,
        epoch: u64,
        pty: OwnedFd,
        handed_off: Arc<AtomicBool>,
        exit: oneshot::Receiver<i32>,
    ) -> Result<()> {
        let reader = File::from(pty);
        let writer = reader
            .try_clone()
            .map_err(|e| DaemonError::io("pty master", e))?;
        let (out_tx, out_rx) = mpsc::channel::<Bytes>(64);
        let (cmd_tx, cmd_rx) = mpsc::channel::<SourceCmd>(64);
        std::thread::Builder::new()
            .name(format!("hosted-{task}-out"))
            .spawn(move || read_pty(reader, out_tx))
            .map_err(|e| DaemonError::io("start a pty reader", e))?;
        let what = format!("hosted task {task}");
        std::thread::Builder::new()
            .name(format!("hosted-{task}-in"))
            .spawn(move || write_pty(cmd_rx, writer, &what))
            .map_err(|e| DaemonError::io("start a pty writer", e))?;
        let relay = Relay {
            master,
            task,
            epoch,
            link: self.link.subscribe(),
            out: out_rx,
            commands: cmd_tx,
            handed_off,
            exit,
        };
        tokio::spawn(relay.run());
        Ok(())
    }
}

/// Reads the pty until it is drained (EIO once every slave is closed).
fn read_pty(mut pty: File, out: mpsc::Sender<Bytes>) {
    let mut buf = vec![0u8; MAX_OUTPUT_CHUNK];
    loop {
        match pty.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if out
                    .blocking_send(Bytes::copy_from_slice(&buf[..n]))
                    .is_err()
                {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
}

fn write_pty(mut commands: mpsc::Receiver<SourceCmd>, mut pty: File, what: &str) {
    use std::io::Write;
    while let Some(cmd) = commands.blocking_recv() {
        match cmd {
            SourceCmd::Input(bytes) => {
                if pty.write_all(&bytes).is_err() {
                    break;
                }
            }
            SourceCmd::Resize { cols, rows } => {
                local_pty::apply_size(pty.as_fd(), cols, rows, what)
            }
        }
    }
}

/// One pod's relay to the master (see the module docs).
struct Relay {
    master: PublicKey,
    task: u64,
    epoch: u64,
    link: watch::Receiver<Link>,
    out: mpsc::Receiver<Bytes>,
    commands: mpsc::Sender<SourceCmd>,
    handed_off: Arc<AtomicBool>,
    exit: oneshot::Receiver<i32>,
}

/// How one link's session of the relay ended.
enum LinkEnd {
    /// The link broke: wait for the next; this output is still to be sent.
    Broken(Option<Bytes>),
    /// Every output byte was sent.
    Drained,
}

impl Relay {
    async fn run(mut self) {
        let mut pending: Option<Bytes> = None;
        let mut used = 0u64;
        loop {
            let Some((n, mux)) = self.next_link(used).await else {
                return;
            };
            used = n;
            let channel = match mux.open(&pty_label(self.task)) {
                Ok(c) => c,
                Err(e) => {
                    tracing::info!("task {}: cannot open its pty channel: {e}", self.task);
                    continue;
                }
            };
            match self.serve(channel, pending.take()).await {
                LinkEnd::Broken(unsent) => pending = unsent,
                LinkEnd::Drained => return,
            }
        }
    }

    /// The next link to our master newer than `used`; `None` when the daemon stops.
    async fn next_link(&mut self, used: u64) -> Option<(u64, Mux)> {
        loop {
            if let Some((n, key, mux)) = self.link.borrow_and_update().clone()
                && n > used
                && key == self.master
            {
                return Some((n, mux));
            }
            self.link.changed().await.ok()?;
        }
    }

    async fn serve(
        &mut self,
        mut channel: zos_netproto::mux::Channel,
        pending: Option<Bytes>,
    ) -> LinkEnd {
        channel.set_max_message(MAX_PTY_MESSAGE);
        let (sender, mut receiver) = channel.split();
        let hello = PtyMessage::Hello {
            task: self.task,
            epoch: self.epoch,
        };
        if sender.send_msg(&hello).await.is_err() {
            return LinkEnd::Broken(pending);
        }
        if let Some(bytes) = pending
            && sender
                .send_msg(&PtyMessage::Output(bytes.to_vec()))
                .await
                .is_err()
        {
            return LinkEnd::Broken(Some(bytes));
        }
        loop {
            tokio::select! {
                chunk = self.out.recv() => match chunk {
                    Some(bytes) => {
                        if sender.send_msg(&PtyMessage::Output(bytes.to_vec())).await.is_err() {
                            return LinkEnd::Broken(Some(bytes));
                        }
                    }
                    None => break,
                },
                message = receiver.recv_msg::<PtyMessage>() => match message {
                    Ok(Some(PtyMessage::Input(bytes))) => {
                        let _ = self.commands.send(SourceCmd::Input(bytes.into())).await;
                    }
                    Ok(Some(PtyMessage::Resize { cols, rows })) => {
                        let _ = self.commands.send(SourceCmd::Resize { cols, rows }).await;
                    }
                    Ok(Some(other)) => {
                        tracing::warn!("task {}: unexpected {other:?} from the master", self.task);
                        return LinkEnd::Broken(None);
                    }
                    Ok(None) | Err(_) => return LinkEnd::Broken(None),
                },
            }
        }
        // The pty is drained: the pod ended (or its copy was killed after going home).
        let code = (&mut self.exit).await.unwrap_or(255);
        if !self.handed_off.load(Ordering::Acquire) {
            let _ = sender.send_msg(&PtyMessage::Exited { code }).await;
        }
        drop(sender);
        LinkEnd::Drained
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
