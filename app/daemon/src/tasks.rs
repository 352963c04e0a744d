//! The master's task registry: virtually shared apps, each in its own
//! virtual display (one Xvnc per app, RFB on a private unix socket).
//!
//! Each shared app is kept by a thread of its own, which starts the display
//! (Xvnc dies with the thread that started it), connects the app's
//! [`Fanout`] — the one RFB client of that Xvnc, which serves every view —
//! launches the app, and waits for it to exit or for the daemon to stop; then
//! it ends the app and the fan-out (so every view closes), removes the display
//! and unregisters the task. Nothing outlives the daemon.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;
use zos_display::{AppWindows, Fanout, VirtualDisplay, launch_app};
use zos_netproto::control::TaskInfo;
use zos_netproto::wire::TaskSummary;

use crate::error::{DaemonError, Result};

/// Size of a new shared app's virtual display.
pub const DEFAULT_GEOMETRY: (u16, u16) = (1280, 800);

/// A registered task and the fan-out that serves its display.
struct Entry {
    info: TaskInfo,
    fanout: Arc<Fanout>,
}

/// Registered tasks.
pub struct Tasks {
    runtime: PathBuf,
    next_id: AtomicU64,
    tasks: Mutex<BTreeMap<u64, Entry>>,
    /// Bumped on every change of the list.
    changes: watch::Sender<u64>,
    shutdown: CancellationToken,
}

impl Tasks {
    /// A registry whose displays live under `runtime`; all tasks end when
    /// `shutdown` is cancelled.
    pub fn new(runtime: PathBuf, shutdown: CancellationToken) -> Arc<Tasks> {
        Arc::new(Tasks {
            runtime,
            next_id: AtomicU64::new(1),
            tasks: Mutex::new(BTreeMap::new()),
            changes: watch::channel(0).0,
            shutdown,
        })
    }

    /// Every task, by id.
    pub fn list(&self) -> Vec<TaskInfo> {
        self.tasks.lock().values().map(|e| e.info.clone()).collect()
    }

    /// Every task as a dominated zombie sees it.
    pub fn summaries(&self) -> Vec<TaskSummary> {
        self.tasks
            .lock()
            .values()
            .map(|e| TaskSummary {
                id: e.info.id,
                kind: e.info.kind.clone(),
                command: e.info.command.clone(),
            })
            .collect()
    }

    /// A receiver that sees a change whenever a task comes or goes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The fan-out that serves shared task `id`'s display to its viewers.
    pub fn fanout(&self, id: u64) -> Option<Arc<Fanout>> {
        self.tasks.lock().get(&id).map(|e| Arc::clone(&e.fanout))
    }

    fn insert(&self, info: TaskInfo, fanout: Arc<Fanout>) {
        self.tasks.lock().insert(info.id, Entry { info, fanout });
        self.changes.send_modify(|v| *v += 1);
    }

    fn remove(&self, id: u64) {
        self.tasks.lock().remove(&id);
        self.changes.send_modify(|v| *v += 1);
    }

    /// Waits (up to `limit`) until every task has cleaned up after a shutdown.
    pub async fn wait_all_ended(&self, limit: std::time::Duration) {
        let end = tokio::time::Instant::now() + limit;
        while !self.tasks.lock().is_empty() && tokio::time::Instant::now() < end {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Starts `argv` as a virtually shared app; returns once it runs.
    pub async fn run_shared(self: &Arc<Self>, argv: Vec<String>) -> Result<TaskInfo> {
        if argv.is_empty() {
            return Err(DaemonError::User(
                "no command given (zos run --shared -- COMMAND …)".into(),
            ));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (started_tx, started_rx) = oneshot::channel();
        let me = self.clone();
        std::thread::Builder::new()
            .name(format!("task-{id}"))
            .spawn(move || me.keep_shared(id, argv, started_tx))
            .map_err(|e| DaemonError::io("start task thread", e))?;
        started_rx
            .await
            .map_err(|_| DaemonError::User("the task ended while starting".into()))?
    }

    /// The task's thread: display, app, wait, clean up.
    fn keep_shared(&self, id: u64, argv: Vec<String>, started: oneshot::Sender<Result<TaskInfo>>) {
        let screen = match VirtualDisplay::start(&self.runtime, DEFAULT_GEOMETRY) {
            Ok(d) => d,
            Err(e) => {
                let _ = started.send(Err(DaemonError::User(format!(
                    "cannot start a virtual display: {e}"
                ))));
                return;
            }
        };
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                let _ = started.send(Err(DaemonError::io("task runtime", e)));
                return;
            }
        };
        // The app's windows keep their size, side by side, and the newest gets
        // the keyboard; if that fails the app still runs, in its corner.
        let _windows = AppWindows::start(&screen)
            .inspect_err(|e| tracing::warn!("task {id}: cannot manage its windows: {e}"));
        runtime.block_on(async {
            // The fan-out's upstream connection runs on this thread's runtime and
            // ends with it.
            let fanout = match Fanout::start(screen.rfb_socket()).await {
                // Seamless viewers get the app's windows from its window manager.
                Ok(f) => Arc::new(match &_windows {
                    Ok(w) => f.with_windows(w.feed()),
                    Err(_) => f,
                }),
                Err(e) => {
                    let _ = started.send(Err(DaemonError::User(format!(
                        "cannot connect to the app's display: {e}"
                    ))));
                    return;
                }
            };
            let mut child = match launch_app(&screen, &argv) {
                Ok(c) => c,
                Err(e) => {
                    let _ = started.send(Err(DaemonError::User(format!("cannot start {:?}: {e}", argv[0]))));
                    return;
                }
            };
            let info = TaskInfo {
                id,
                kind: "shared".into(),
                command: argv.clone(),
                display: Some(screen.display()),
                state: "running".into(),
                pid: child.id(),
                host: None,
            };
            self.insert(info.clone(), fanout);
            tracing::info!("task {id} started: {:?} on display {}", argv, screen.display());
            let _ = started.send(Ok(info));
            tokio::select! {
                status = child.wait() => {
                    tracing::info!("task {id} ended: {}", status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()));
                }
                _ = self.shutdown.cancelled() => {
                    tracing::info!("task {id} stopped with the daemon");
                    let _ = child.kill().await;
                }
            }
        });
        // Dropping the runtime ends the fan-out's upstream connection, and so
        // every view. Unregister only once the display is gone: a stopping
        // daemon waits for the list to empty, so nothing of it outlives it.
        drop(runtime);
        drop(screen);
        self.remove(id);
        tracing::info!("task {id}: virtual display removed");
    }
}
