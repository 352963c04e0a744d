//! The master's task registry: virtually shared apps, each in its own
//! virtual display (one Xvnc per app, RFB on a private unix socket) under a
//! supervisor process that outlives the daemon ([`crate::apps`]), and
//! migrants (pods, [`crate::migrants::Migrants`]) in the same id space.
//!
//! Each shared app is kept by a thread of its own, which connects the
//! app's [`Fanout`] — the one RFB client of that Xvnc, which serves every
//! view — and watches the app's supervisor until the app ends or the daemon
//! stops; then it ends the fan-out (so every view closes) and unregisters
//! the task. A stopping daemon ends its apps (unless told to keep them);
//! a daemon that dies leaves them running for the next one to adopt.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;
use zos_display::{AppWindows, Fanout};
use zos_netproto::control::{TaskInfo, task_state};
use zos_netproto::wire::TaskSummary;

use crate::apps;
use crate::error::{DaemonError, Result};
use crate::migrants::Migrants;

/// Size of a new shared app's virtual display.
pub const DEFAULT_GEOMETRY: (u16, u16) = (1280, 800);

/// How long a stopping daemon waits for a supervisor to end its app.
const STOP_WAIT: Duration = Duration::from_secs(10);
/// How long the fan-out may take to connect to an app's display (a hung
/// Xvnc must not hold a starting daemon).
const FANOUT_TIMEOUT: Duration = Duration::from_secs(15);

/// A registered task and the fan-out that serves its display.
struct Entry {
    info: TaskInfo,
    fanout: Arc<Fanout>,
}

/// Registered tasks.
pub struct Tasks {
    runtime: PathBuf,
    name: String,
    next_id: Arc<AtomicU64>,
    tasks: Mutex<BTreeMap<u64, Entry>>,
    migrants: Arc<Migrants>,
    /// Bumped on every change of the list.
    changes: Arc<watch::Sender<u64>>,
    shutdown: CancellationToken,
    /// The program that supervises a shared app (`PROGRAM supervise-app`);
    /// `None`: this very binary.
    supervisor: Option<PathBuf>,
    /// Leave the shared apps running when the daemon stops.
    keep_apps: AtomicBool,
}

impl Tasks {
    /// A registry whose displays live under `runtime`, on a master named
    /// after the host; all tasks end when `shutdown` is cancelled.
    pub fn new(runtime: PathBuf, shutdown: CancellationToken) -> Arc<Tasks> {
        Tasks::named(runtime, crate::sysinfo::hostname(), shutdown)
    }

    /// Like [`Tasks::new`] for the master called `name` (a task's `where`
    /// while it runs here).
    pub fn named(runtime: PathBuf, name: String, shutdown: CancellationToken) -> Arc<Tasks> {
        let next_id = Arc::new(AtomicU64::new(1));
        let changes = Arc::new(watch::channel(0).0);
        let migrants = Migrants::new(
            &runtime,
            name.clone(),
            zos_checkpoint::pod::default_init_path(),
            next_id.clone(),
            changes.clone(),
            shutdown.clone(),
        );
        Arc::new(Tasks {
            runtime,
            name,
            next_id,
            tasks: Mutex::new(BTreeMap::new()),
            migrants,
            changes,
            shutdown,
            supervisor: None,
            keep_apps: AtomicBool::new(false),
        })
    }

    /// The migrants (pods) among the tasks: the registry the mover uses.
    pub fn migrants(&self) -> &Arc<Migrants> {
        &self.migrants
    }

    /// Every task, by id.
    pub fn list(&self) -> Vec<TaskInfo> {
        let mut all: Vec<TaskInfo> = self.tasks.lock().values().map(|e| e.info.clone()).collect();
        all.extend(self.migrants.list());
        all.sort_by_key(|t| t.id);
        all
    }

    /// Every task as a dominated zombie sees it.
    pub fn summaries(&self) -> Vec<TaskSummary> {
        self.list()
            .into_iter()
            .map(|t| TaskSummary {
                id: t.id,
                kind: t.kind,
                command: t.command,
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

    /// Waits (up to `limit`) until every task has cleaned up after a shutdown
    /// (shared apps gone, migrants' local pods ended).
    pub async fn wait_all_ended(&self, limit: std::time::Duration) {
        let end = tokio::time::Instant::now() + limit;
        while !self.tasks.lock().is_empty() && tokio::time::Instant::now() < end {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let left = end.saturating_duration_since(tokio::time::Instant::now());
        self.migrants.wait_all_ended(left).await;
    }

    /// Starts `argv` as a virtually shared app under a supervisor of its
    /// own; returns once it runs.
    pub async fn run_shared(self: &Arc<Self>, argv: Vec<String>) -> Result<TaskInfo> {
        if argv.is_empty() {
            return Err(DaemonError::User(
                "no command given (zos run --shared -- COMMAND …)".into(),
            ));
        }
        let program = match &self.supervisor {
            Some(p) => p.clone(),
            None => std::env::current_exe()
                .map_err(|e| DaemonError::io("find the zos binary (the apps' supervisor)", e))?,
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (started_tx, started_rx) = oneshot::channel();
        let me = self.clone();
        std::thread::Builder::new()
            .name(format!("task-{id}"))
            .spawn(
                move || match apps::start(&program, &me.runtime, id, &argv) {
                    Ok(app) => me.keep_shared(app, Some(started_tx)),
                    Err(e) => {
                        let _ = started_tx.send(Err(e));
                    }
                },
            )
            .map_err(|e| DaemonError::io("start task thread", e))?;
        started_rx
            .await
            .map_err(|_| DaemonError::User("the task ended while starting".into()))?
    }

    /// Adopts the shared apps whose supervisors outlived an earlier daemon
    /// (same task ids; new ids start above theirs) and removes what dead
    /// ones left behind. Returns the tasks adopted.
    pub async fn adopt_running(self: &Arc<Self>) -> Vec<TaskInfo> {
        let found = apps::scan(&self.runtime).await;
        for path in &found.removed {
            tracing::info!("removed {path}, left by a shared app that is gone");
        }
        if let Some(last) = found.highest_id {
            self.next_id.fetch_max(last + 1, Ordering::Relaxed);
        }
        let mut adopted = Vec::new();
        for app in found.live {
            let id = app.record.id;
            let (started_tx, started_rx) = oneshot::channel();
            let me = self.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("task-{id}"))
                .spawn(move || me.keep_shared(app, Some(started_tx)));
            if let Err(e) = spawned {
                tracing::warn!("task {id}: cannot start its thread: {e}");
                continue;
            }
            match started_rx.await {
                Ok(Ok(info)) => {
                    tracing::info!(
                        "adopted task {id}: {:?} (pid {}) on display {}, left running by an earlier daemon",
                        info.command,
                        info.pid.unwrap_or(0),
                        info.display.as_deref().unwrap_or("?")
                    );
                    adopted.push(info);
                }
                Ok(Err(e)) => tracing::warn!("task {id} cannot be adopted: {e}"),
                Err(_) => tracing::warn!("task {id} ended while being adopted"),
            }
        }
        adopted
    }

    /// Leave the shared apps running when the daemon stops (they are
    /// adopted by the next one).
    pub fn keep_apps_on_shutdown(&self) {
        self.keep_apps.store(true, Ordering::Relaxed);
    }

    /// What stopping the daemon now would do to each task that has not
    /// ended: (what ends, what stays), one line each.
    pub fn stop_plan(&self, keep_apps: bool) -> (Vec<String>, Vec<String>) {
        let (mut ends, mut stays) = (Vec::new(), Vec::new());
        for t in self.list() {
            let what = format!("task {} ({}, {})", t.id, t.kind, t.command.join(" "));
            match (t.kind.as_str(), t.state.as_str()) {
                (_, task_state::EXITED) => {}
                (_, task_state::SUSPENDED) => {
                    stays.push(format!("{what} stays suspended (zos resume)"))
                }
                ("shared", _) if keep_apps => stays.push(format!("{what} keeps running")),
                (_, task_state::RUNNING | task_state::HOME | task_state::MOVING)
                    if t.r#where == self.name || t.kind == "shared" =>
                {
                    ends.push(what)
                }
                _ => stays.push(format!("{what} stays on {}", t.r#where)),
            }
        }
        (ends, stays)
    }

    /// Keeps a supervised app registered while it runs: its fan-out (the
    /// one RFB client of its display, serving every view) and a watch on
    /// its supervisor. When the app ends, or the daemon stops (then the
    /// app is ended too, unless it is to be kept), the fan-out ends (so
    /// every view closes) and the task is unregistered.
    fn keep_shared(
        &self,
        app: apps::Supervised,
        started: Option<oneshot::Sender<Result<TaskInfo>>>,
    ) {
        let id = app.record.id;
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                if let Some(s) = started {
                    let _ = s.send(Err(DaemonError::io("task runtime", e)));
                }
                return;
            }
        };
        let ended = runtime.block_on(async {
            let fail = |started: Option<oneshot::Sender<Result<TaskInfo>>>, why: String| {
                tracing::warn!("task {id}: {why}");
                if let Some(s) = started {
                    let _ = s.send(Err(DaemonError::User(why)));
                }
            };
            // The fan-out's upstream connection runs on this thread's runtime and
            // ends with it.
            let connect = tokio::time::timeout(FANOUT_TIMEOUT, Fanout::start(&app.record.rfb_socket));
            let fanout = match connect.await {
                // Seamless viewers get the app's windows: a keeper of ours on its
                // display lists them (the supervisor's places them the same way).
                Ok(Ok(f)) => Arc::new(
                    match AppWindows::on(app.record.display_number, &app.record.xauthority) {
                        Ok(windows) => f.with_windows(windows.feed()),
                        Err(e) => {
                            tracing::warn!("task {id}: its windows are not listed: {e}");
                            f
                        }
                    },
                ),
                Ok(Err(e)) => {
                    let _ = apps::stop(&app.socket).await;
                    fail(started, format!("cannot connect to the app's display: {e}"));
                    return true;
                }
                Err(_) => {
                    let _ = apps::stop(&app.socket).await;
                    fail(
                        started,
                        format!(
                            "the app's display did not answer within {} s",
                            FANOUT_TIMEOUT.as_secs()
                        ),
                    );
                    return true;
                }
            };
            let watch = match apps::watch(&app.socket).await {
                Ok((_, watch)) => watch,
                Err(e) => {
                    fail(started, format!("its supervisor does not answer: {e}"));
                    return true;
                }
            };
            let record = &app.record;
            let info = TaskInfo {
                id,
                kind: "shared".into(),
                command: record.argv.clone(),
                display: Some(record.display()),
                state: task_state::RUNNING.into(),
                pid: Some(record.app_pid),
                host: None,
                r#where: self.name.clone(),
                since: record.since,
                ..TaskInfo::default()
            };
            self.insert(info.clone(), fanout);
            tracing::info!("task {id} runs: {:?} on display {}", record.argv, record.display());
            if let Some(s) = started {
                let _ = s.send(Ok(info));
            }
            let ended = watch.ended();
            tokio::pin!(ended);
            tokio::select! {
                status = &mut ended => {
                    tracing::info!("task {id} ended: {status}");
                    true
                }
                _ = self.shutdown.cancelled() => {
                    if self.keep_apps.load(Ordering::Relaxed) {
                        tracing::info!("task {id} keeps running (supervisor pid {})", record.supervisor_pid);
                        false
                    } else {
                        tracing::info!("task {id} stopped with the daemon");
                        if let Err(e) = apps::stop(&app.socket).await {
                            tracing::warn!("task {id}: {e}");
                        }
                        match tokio::time::timeout(STOP_WAIT, &mut ended).await {
                            Ok(status) => tracing::info!("task {id} ended: {status}"),
                            Err(_) => tracing::warn!("task {id}: its supervisor did not end within {} s", STOP_WAIT.as_secs()),
                        }
                        true
                    }
                }
            }
        });
        // Dropping the runtime ends the fan-out's upstream connection, and so
        // every view. The supervisor said the display is gone before the
        // task is unregistered: a stopping daemon waits for the list to
        // empty, so nothing of an ended app outlives it.
        drop(runtime);
        self.remove(id);
        if let Some(mut child) = app.child {
            if ended {
                let _ = child.wait();
            }
        }
        if ended {
            tracing::info!("task {id}: virtual display removed");
        }
    }
}
