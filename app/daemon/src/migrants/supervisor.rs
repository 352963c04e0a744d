//! The thread that keeps one local pod: it spawns the pod (so the init's parent thread lives
//! as long as the pod), starts its terminal, watches the init through a pidfd — never with
//! `waitpid` while it runs, since the checkpoint engine may be tracing it from the mover's
//! thread — and once the init has exited decides what that means:
//!
//! - the pod was handed off (the task lives on elsewhere): reap, nothing else;
//! - a move is in progress: wait until the mover commits or fails;
//! - otherwise the task ended: reap, record `exited CODE`, finish the terminal.
//!
//! When the daemon stops, the pod gets SIGTERM (its init forwards it to the task's process
//! group) and [`STOP_GRACE`] later SIGKILL.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use zos_checkpoint::pod::{self, Pod, PodSpec};

use super::registry::{LocalPod, Migrant, Migrants};
use super::{Placement, local_pty, sys};
use crate::error::{DaemonError, Result};

/// Between SIGTERM and SIGKILL when the daemon stops.
pub const STOP_GRACE: Duration = Duration::from_secs(2);
/// How often the watcher looks at the shutdown token.
const POLL_MS: i32 = 200;

/// Spawns a pod for `migrant` from `spec` on a thread of its own, which then keeps it;
/// returns once the pod runs (or with why it could not start).
pub(super) async fn spawn(
    migrants: Arc<Migrants>,
    migrant: Arc<Migrant>,
    spec: PodSpec,
) -> Result<()> {
    let (started_tx, started_rx) = oneshot::channel();
    let id = migrant.id;
    std::thread::Builder::new()
        .name(format!("migrant-{id}"))
        .spawn(move || {
            let mut pod = match pod::spawn(&spec) {
                Ok(pod) => pod,
                Err(e) => {
                    let _ = started_tx
                        .send(Err(DaemonError::User(format!("cannot start the pod: {e}"))));
                    return;
                }
            };
            let pty = pod.take_pty_master();
            let generation = register(&migrant, pod.pid());
            migrants.live_pods.fetch_add(1, Ordering::AcqRel);
            start_terminal(&migrant, pty, generation);
            let _ = started_tx.send(Ok(()));
            watch(&migrants, &migrant, pod, generation);
        })
        .map_err(|e| DaemonError::io("start a migrant thread", e))?;
    started_rx
        .await
        .map_err(|_| DaemonError::User("the pod's thread ended while starting".into()))?
}

/// Keeps a pod that was restored here (a migrant come home), already registered as
/// `generation`.
pub(super) fn keep(
    migrants: Arc<Migrants>,
    migrant: Arc<Migrant>,
    pod: Pod,
    pty: Option<OwnedFd>,
    generation: u64,
) -> Result<()> {
    migrants.live_pods.fetch_add(1, Ordering::AcqRel);
    start_terminal(&migrant, pty, generation);
    let id = migrant.id;
    std::thread::Builder::new()
        .name(format!("migrant-{id}"))
        .spawn(move || watch(&migrants, &migrant, pod, generation))
        .map(drop)
        .map_err(|e| DaemonError::io("start a migrant thread", e))
}

fn register(migrant: &Migrant, pid: i32) -> u64 {
    let mut st = migrant.state.lock();
    st.generations += 1;
    let generation = st.generations;
    st.local = Some(LocalPod {
        pid,
        generation,
        handed_off: false,
    });
    generation
}

fn start_terminal(migrant: &Migrant, pty: Option<OwnedFd>, generation: u64) {
    let id = migrant.id;
    match pty {
        Some(master) => {
            if let Err(e) = local_pty::start(
                migrant.terminal.clone(),
                master,
                format!("task-{id}.{generation}"),
                || {},
            ) {
                tracing::warn!("task {id}: cannot relay its terminal: {e}");
            }
        }
        None => tracing::warn!("task {id}: its pod came without a terminal"),
    }
}

/// Watches the pod until its init exited, then settles what that means (module docs).
fn watch(migrants: &Migrants, migrant: &Migrant, mut pod: Pod, generation: u64) {
    let id = migrant.id;
    match sys::pidfd_open(pod.pid()) {
        Ok(pidfd) => wait_exit(migrants, migrant, &mut pod, &pidfd, generation),
        // Already gone (and not yet reaped): settle it now.
        Err(e) => tracing::debug!("task {id}: pidfd: {e}"),
    }
    loop {
        let mut st = migrant.state.lock();
        let ours = st
            .local
            .as_ref()
            .is_some_and(|l| l.generation == generation);
        let handed_off = st.local.as_ref().is_some_and(|l| l.handed_off);
        if !ours || handed_off {
            if ours {
                st.local = None;
            }
            drop(st);
            let _ = pod.wait_timeout(Duration::from_secs(5));
            tracing::debug!("task {id}: pod {generation} handed off and gone");
            break;
        }
        if st.ticket_out && !migrants.shutdown.is_cancelled() {
            drop(st);
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        drop(st);
        let code = match pod.wait_timeout(Duration::from_secs(5)) {
            Ok(Some(code)) => code,
            other => {
                tracing::warn!("task {id}: cannot collect its pod's exit status: {other:?}");
                255
            }
        };
        let mut st = migrant.state.lock();
        st.local = None;
        st.set_placement(Placement::Exited { code });
        drop(st);
        migrant.terminal.finish();
        tracing::info!("migrant task {id} ended: exit {code}");
        migrants.changed();
        break;
    }
    migrants.live_pods.fetch_sub(1, Ordering::AcqRel);
}

/// Returns once the init has exited; stops the pod when the daemon stops.
fn wait_exit(
    migrants: &Migrants,
    migrant: &Migrant,
    pod: &mut Pod,
    pidfd: &OwnedFd,
    generation: u64,
) {
    let id = migrant.id;
    let mut term_sent: Option<Instant> = None;
    loop {
        match sys::wait_readable(pidfd.as_fd(), POLL_MS) {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!("task {id}: watching its pod: {e}");
                std::thread::sleep(Duration::from_millis(POLL_MS as u64));
            }
        }
        if !migrants.shutdown.is_cancelled() {
            continue;
        }
        let handed_off = migrant
            .state
            .lock()
            .local
            .as_ref()
            .is_none_or(|l| l.generation != generation || l.handed_off);
        if handed_off {
            continue;
        }
        match term_sent {
            None => {
                tracing::info!("task {id}: the daemon stops, so does its pod (SIGTERM)");
                let _ = pod.signal(libc::SIGTERM);
                term_sent = Some(Instant::now());
            }
            Some(at) if at.elapsed() >= STOP_GRACE => {
                tracing::info!("task {id}: still running {STOP_GRACE:?} after SIGTERM: SIGKILL");
                let _ = pod.signal(libc::SIGKILL);
                term_sent = Some(Instant::now() + Duration::from_secs(3600));
            }
            Some(_) => {}
        }
    }
}
