//! The master role: browse for zombies, pair with them, open sessions.
//!
//! | module | concept |
//! |---|---|
//! | `mod` | the daemon, its control requests, status and host list |
//! | `sessions` | finding a zombie (paired names first), connecting, `zos ping` |
//! | `pairing` | the master's side of pairing |
//! | `drive`, `drive_controller`, `drive_link` | where the master's keyboard and mouse go: capture, switching, the zombies' `input` channels |
//! | `settings` | `master.toml`: the drive hotkeys |

mod drive;
mod drive_controller;
mod drive_link;
mod pairing;
mod sessions;
pub mod settings;

pub use drive::{DEFAULT_NEXT, DEFAULT_PREVIOUS, Drive, DriveConfig, DriveRequest};

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use tokio_util::sync::CancellationToken;
use zos_netproto::control::{Reply, Request, SessionInfo, StatusInfo};
use zos_netproto::discovery::{Browser, Interfaces};
use zos_netproto::trust::PeerStore;
use zos_netproto::wire::{Message, Role};
use zos_netproto::{Identity, PublicKey};

use crate::control_server::{self, Handler, Replies};
use crate::domination::{Dominions, PairedZombie};
use crate::error::{DaemonError, Result};
use crate::hosts::{HostTable, PROBE_INTERVAL};
use crate::migration::{Mover, Progress, run_with_progress};
use crate::paths::Paths;
use crate::peer::Peer;

/// How a master is configured.
#[derive(Clone, Debug)]
pub struct MasterConfig {
    /// Its directories.
    pub paths: Paths,
    /// Its name, shown to zombies.
    pub name: String,
    /// mDNS interfaces.
    pub interfaces: Interfaces,
    /// Its display and hotkeys for driving zombies.
    pub drive: DriveConfig,
}

/// A running master daemon's state.
pub struct Master {
    cfg: MasterConfig,
    identity: Identity,
    zombies: Mutex<PeerStore>,
    hosts: Arc<HostTable>,
    tasks: Arc<crate::tasks::Tasks>,
    dominions: Arc<Dominions>,
    mover: Arc<Mover>,
    snapshots: Arc<crate::snapshots::Snapshots>,
    /// Paired zombies that said they no longer trust this master (their
    /// user revoked it): their tiles say "pair again".
    revoked: Mutex<std::collections::BTreeSet<PublicKey>>,
    drive: Arc<Drive>,
    shutdown: CancellationToken,
}

/// Runs a master daemon until `shutdown` is cancelled.
pub async fn run(cfg: MasterConfig, shutdown: CancellationToken) -> Result<()> {
    crate::rlimit::raise_descriptor_limit();
    let identity = Identity::load_or_create(&cfg.paths.identity())?;
    let zombies = PeerStore::load(&cfg.paths.zombies())?;
    let socket = cfg.paths.socket();
    let control = control_server::bind(&socket)?;
    let hosts = Arc::new(HostTable::default());
    let (browser, changes) = Browser::start(&cfg.interfaces)?;
    let browser = Arc::new(browser);
    {
        let hosts = hosts.clone();
        std::thread::Builder::new()
            .name("host-table".into())
            .spawn(move || {
                while let Ok(change) = changes.recv() {
                    hosts.apply(change);
                }
            })
            .map_err(|e| DaemonError::io("spawn host table thread", e))?;
    }
    let tasks = crate::tasks::Tasks::named(
        cfg.paths.runtime.clone(),
        cfg.name.clone(),
        shutdown.clone(),
    );
    let dominions = Dominions::new(tasks.clone(), cfg.paths.exports(), shutdown.clone());
    let mover = Mover::new(
        tasks.migrants().clone(),
        dominions.clone(),
        &cfg.paths.home,
        &cfg.paths.runtime,
        cfg.paths.exports(),
    );
    let keeper = mover.clone();
    dominions.set_image_sink(Box::new(move |task, key, name, channel| {
        let keeper = keeper.clone();
        tokio::spawn(async move { keeper.keep_snapshot(task, key, name, channel).await });
    }));
    let snapshots = crate::snapshots::Snapshots::new(
        &cfg.paths.home,
        tasks.migrants().clone(),
        shutdown.clone(),
    );
    let drive = Drive::start(cfg.drive.clone(), shutdown.clone());
    dominions.set_input(drive.clone());
    let master = Arc::new(Master {
        identity,
        zombies: Mutex::new(zombies),
        hosts: hosts.clone(),
        dominions,
        mover,
        snapshots,
        drive,
        tasks,
        revoked: Mutex::new(Default::default()),
        shutdown: shutdown.clone(),
        cfg,
    });
    // A dominated zombie that ends the session itself may have revoked us:
    // look (a fresh session's Welcome says), so its tile can tell. One whose
    // user ended the domination is released as by `zos release`.
    {
        let weak = Arc::downgrade(&master);
        master
            .dominions
            .on_release_asked(Box::new(move |zombie, _reason| {
                if let Some(master) = weak.upgrade() {
                    tokio::spawn(async move {
                        let mut nowhere = crate::control_server::Replies::nowhere();
                        if let Err(e) = master.release(&zombie.name, false, &mut nowhere).await {
                            tracing::warn!("releasing {} at its request: {e}", zombie.name);
                        }
                    });
                }
            }));
        let weak = Arc::downgrade(&master);
        master.dominions.on_zombie_ended(Box::new(move |zombie| {
            if let Some(master) = weak.upgrade() {
                tokio::spawn(async move { master.check_trust(&zombie).await });
            }
        }));
    }
    // Shared apps left running by an earlier daemon are ours again before
    // the first client asks.
    let adopted = master.tasks.adopt_running().await;
    if !adopted.is_empty() {
        tracing::info!("adopted {} shared app(s)", adopted.len());
    }
    tokio::spawn(control_server::serve(
        control,
        socket.clone(),
        master.clone(),
        shutdown.clone(),
    ));
    tracing::info!(
        "master daemon ready: {} fingerprint {}, control socket {}",
        master.cfg.name,
        master.identity.public().fingerprint(),
        socket.display()
    );
    let mut probe = tokio::time::interval(PROBE_INTERVAL);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = probe.tick() => {
                for instance in hosts.probe().await {
                    browser.verify(&instance);
                }
            }
        }
    }
    // Dominated zombies are released, and shared apps end and their
    // displays go, before the daemon does.
    master
        .dominions
        .wait_all_ended(Duration::from_secs(25))
        .await;
    master.tasks.wait_all_ended(Duration::from_secs(5)).await;
    tokio::task::spawn_blocking(move || browser.stop())
        .await
        .ok();
    tracing::info!("master stopped");
    Ok(())
}

impl Master {
    async fn dominate(
        &self,
        host: &str,
        level: zos_netproto::Level,
        out: &mut Replies,
    ) -> Result<Reply> {
        let start = Instant::now();
        let (mut peer, zombie) = self.paired_session(host).await?;
        peer.set_channel_policy(self.dominions.channel_policy(zombie.clone()));
        let done = self
            .dominions
            .start(peer, zombie.clone(), level, start, out)
            .await?;
        if done.level == zos_netproto::Level::Complete {
            // Migrants it kept for us while we were away run again; stale copies go.
            match self.mover.reconcile(&zombie).await {
                Ok(lines) => {
                    for message in lines {
                        let _ = out.send(&Reply::Progress { message }).await;
                    }
                }
                Err(e) => tracing::warn!("asking {} for our migrants: {e}", zombie.name),
            }
        }
        Ok(Reply::Dominated {
            name: done.name,
            level: done.level,
            timing: done
                .timing
                .into_iter()
                .map(|(what, d)| (what, d.as_micros() as u64))
                .collect(),
        })
    }

    async fn release(&self, host: &str, force: bool, out: &mut Replies) -> Result<Reply> {
        let key = match self.dominions.find(host) {
            Some(key) => key,
            None => {
                // Perhaps named by its address or mDNS instance.
                let (_, info) = self.hosts.resolve(host)?;
                let fingerprint = info.map(|i| i.fingerprint).unwrap_or_default();
                self.dominions.find(&fingerprint).ok_or_else(|| {
                    DaemonError::User(format!("{host} is not dominated by this master"))
                })?
            }
        };
        let stuck = self.bring_home(self.mover.away_on(&key), out).await;
        if !stuck.is_empty() && !force {
            return Err(DaemonError::User(format!(
                "not released: {}; `zos release {host} --force` releases anyway (such a task is then lost, and `zos home TASK --from-image` restarts it from its last image)",
                stuck.join("; ")
            )));
        }
        let name = self.dominions.release(&key).await?;
        Ok(Reply::Released { name })
    }

    /// Brings each of `tasks` home (live), one after another, saying so on `out` with each
    /// move's progress; what did not come home, one line each.
    async fn bring_home(&self, tasks: Vec<u64>, out: &mut Replies) -> Vec<String> {
        let mut stuck = Vec::new();
        for task in tasks {
            let _ = out
                .send(&Reply::Progress {
                    message: format!("bringing task {task} home…"),
                })
                .await;
            let progress = Progress::new(task);
            let (mover, p) = (self.mover.clone(), progress.clone());
            let job = async move {
                mover
                    .home(task, zos_netproto::control::Compression::Auto, true, &p)
                    .await
            };
            match run_with_progress(out, progress, job).await {
                Reply::Moved { phases, .. } => {
                    let total: u64 = phases.iter().map(|(_, us)| us).sum();
                    let _ = out
                        .send(&Reply::Progress {
                            message: format!("task {task} is home ({:.2} s)", total as f64 / 1e6),
                        })
                        .await;
                }
                Reply::Error { message } => stuck.push(format!("task {task}: {message}")),
                other => stuck.push(format!("task {task}: {other:?}")),
            }
        }
        stuck
    }

    /// `zos suspend`: every migrant away comes home first (live), then every migrant at
    /// home is snapshotted and ended (see `snapshots`); one that could not come home stays
    /// where it runs and is named.
    async fn suspend(&self, out: &mut Replies) -> Reply {
        let stuck = self.bring_home(self.mover.away(), out).await;
        match self.snapshots.handle(Request::Suspend).await {
            Reply::Suspended { tasks, mut failed } => {
                failed.extend(stuck);
                Reply::Suspended { tasks, failed }
            }
            other => other,
        }
    }

    async fn migrate(
        &self,
        task: u64,
        host: String,
        how: crate::migration::MoveHow,
        out: &mut Replies,
    ) -> Reply {
        let progress = Progress::new(task);
        let (mover, p) = (self.mover.clone(), progress.clone());
        let job = async move { mover.migrate(task, &host, how, &p).await };
        run_with_progress(out, progress, job).await
    }

    async fn home(&self, task: u64, from_image: bool, live: bool, out: &mut Replies) -> Reply {
        let progress = Progress::new(task);
        let (mover, p) = (self.mover.clone(), progress.clone());
        if from_image {
            match self.mover.image_age_line(task) {
                Ok(message) => {
                    let _ = out.send(&Reply::Progress { message }).await;
                }
                Err(e) => return error_reply(e),
            }
            let job = async move { mover.home_from_image(task, &p).await };
            return run_with_progress(out, progress, job).await;
        }
        let job = async move {
            mover
                .home(task, zos_netproto::control::Compression::Auto, live, &p)
                .await
        };
        run_with_progress(out, progress, job).await
    }

    fn view(&self, task: u64, out: &mut Replies) -> Reply {
        let Some(fanout) = self.tasks.fanout(task) else {
            return Reply::Error {
                message: format!("no shared task {task} (see `zos tasks`)"),
            };
        };
        out.upgrade(Box::new(move |stream| {
            Box::pin(crate::views::serve_local(stream, fanout))
        }));
        Reply::Stream
    }

    fn attach(&self, task: u64, out: &mut Replies) -> Reply {
        let terminal = match self.tasks.migrants().terminal(task) {
            Ok(t) => t,
            Err(e) => return error_reply(e),
        };
        out.upgrade(Box::new(move |stream| {
            Box::pin(crate::migrants::serve_attach(stream, terminal))
        }));
        Reply::Stream
    }

    fn logs(&self, task: u64, follow: bool, out: &mut Replies) -> Reply {
        let terminal = match self.tasks.migrants().terminal(task) {
            Ok(t) => t,
            Err(e) => return error_reply(e),
        };
        out.upgrade(Box::new(move |stream| {
            Box::pin(crate::migrants::serve_logs(stream, terminal, follow))
        }));
        Reply::Stream
    }

    fn resize(&self, task: u64, cols: u16, rows: u16) -> Reply {
        if cols == 0 || rows == 0 {
            return Reply::Error {
                message: format!("a window of {cols}x{rows} is no window"),
            };
        }
        match self.tasks.migrants().terminal(task) {
            Ok(t) => match t.resize(cols, rows) {
                Ok(()) => Reply::Done,
                Err(e) => Reply::Error {
                    message: format!("task {task}: {e}"),
                },
            },
            Err(e) => error_reply(e),
        }
    }

    /// The hosts seen, each with its state as this master knows it best:
    /// its own dominions at once, others' as the zombies advertise them.
    /// A paired zombie is shown under the name it was paired under.
    fn hosts_with_state(&self) -> Vec<zos_netproto::discovery::HostInfo> {
        let ours = self.dominions.list();
        let mut hosts = self.hosts.list();
        let zombies = self.zombies.lock();
        let revoked = self.revoked.lock();
        for host in &mut hosts {
            host.revoked = revoked
                .iter()
                .any(|k| k.fingerprint().0 == host.fingerprint);
            if let Some(paired) = zombies.entries().iter().find(|e| {
                e.public_key()
                    .is_ok_and(|k| k.fingerprint().0 == host.fingerprint)
            }) {
                host.name = paired.name.clone();
            }
            if let Some(d) = ours
                .iter()
                .find(|d| d.key.fingerprint().0 == host.fingerprint)
            {
                host.dominated = Some(zos_netproto::discovery::Domination {
                    master: self.cfg.name.clone(),
                    level: d.level,
                });
            } else if host
                .dominated
                .as_ref()
                .is_some_and(|d| d.master == self.cfg.name)
            {
                // An advert older than our release.
                host.dominated = None;
            }
        }
        hosts
    }

    fn status(&self) -> StatusInfo {
        let driving = self.drive.driving();
        StatusInfo {
            role: Role::Master,
            name: self.cfg.name.clone(),
            fingerprint: self.identity.public().fingerprint().0,
            listen: None,
            trusted: self.zombies.lock().entries().len(),
            pairing: None,
            sessions: self
                .dominions
                .list()
                .into_iter()
                .map(|d| SessionInfo {
                    fingerprint: d.key.fingerprint().0,
                    addr: d.addr.to_string(),
                    age_s: d.started.elapsed().as_secs(),
                    dominating: Some(d.level),
                    mount: None,
                    driven: driving.as_deref() == Some(d.name.as_str()),
                    peer: d.name,
                })
                .collect(),
            asking: None,
            pairing_attempts: Vec::new(),
            session: None,
        }
    }
}

impl Master {
    /// `zos drive`: input to a dominated zombie's ZOS session, or back.
    async fn drive(
        &self,
        host: Option<String>,
        edge: Option<String>,
        display: Option<String>,
        xauthority: Option<String>,
    ) -> Reply {
        let request = match host {
            None => DriveRequest::Stop,
            Some(host) => {
                let edge = match edge.map(|e| e.parse()).transpose() {
                    Ok(edge) => edge,
                    Err(message) => return Reply::Error { message },
                };
                DriveRequest::Start {
                    host,
                    edge,
                    display,
                    xauthority: xauthority.map(std::path::PathBuf::from),
                }
            }
        };
        match self.drive.request(request).await {
            Ok((target, message)) => Reply::Driving { target, message },
            Err(message) => Reply::Error { message },
        }
    }
}

impl Master {
    /// Opens a session to `zombie` to learn whether it still trusts this
    /// master (a refusal marks it revoked; see `paired_session`).
    async fn check_trust(&self, zombie: &PairedZombie) {
        match self.paired_session(&zombie.name).await {
            Ok((mut peer, _)) => {
                let _ = peer
                    .send(&Message::Bye {
                        reason: "checked the pairing".into(),
                    })
                    .await;
                peer.close();
            }
            Err(e) => tracing::info!("checking the pairing with {}: {e}", zombie.name),
        }
    }

    /// `zos stop`: refuses (saying what would end) while tasks would end,
    /// unless forced; else stops, keeping the shared apps if asked.
    fn stop(&self, force: bool, keep_apps: bool) -> Reply {
        let (ends, stays) = self.tasks.stop_plan(keep_apps);
        if !ends.is_empty() && !force {
            return Reply::WouldEnd { ends, stays };
        }
        if keep_apps {
            self.tasks.keep_apps_on_shutdown();
        }
        tracing::info!(
            "stopping on request: {} task(s) end, {} stay",
            ends.len(),
            stays.len()
        );
        self.shutdown.cancel();
        Reply::Stopping { ends, stays }
    }
}

fn error_reply(e: DaemonError) -> Reply {
    Reply::Error {
        message: e.to_string(),
    }
}

impl Handler for Master {
    async fn handle(self: Arc<Self>, request: Request, out: &mut Replies) -> Reply {
        match request {
            Request::Status => Reply::Status(self.status()),
            Request::Hosts => Reply::Hosts { hosts: self.hosts_with_state() },
            Request::Pair { host, code } => self.pair(&host, &code).await.unwrap_or_else(error_reply),
            Request::Ping { host, count, interval_ms } => self
                .ping(&host, count, Duration::from_millis(interval_ms), out)
                .await
                .unwrap_or_else(error_reply),
            Request::TrustList => Reply::Trust {
                entries: self.zombies.lock().entries().to_vec(),
            },
            Request::TrustRevoke { what } => match self.zombies.lock().remove(&what) {
                Ok(entries) if entries.is_empty() => Reply::Error {
                    message: format!("no paired zombie matches {what:?} (see `zos trust list`)"),
                },
                Ok(entries) => Reply::Revoked { entries, sessions_ended: 0 },
                Err(e) => Reply::Error { message: e.to_string() },
            },
            Request::Run { shared: true, argv } => match self.tasks.run_shared(argv).await {
                Ok(task) => Reply::Started { task },
                Err(e) => error_reply(e),
            },
            Request::Run { shared: false, .. } => Reply::Error {
                message: "say what kind of task: `zos run --shared -- COMMAND` (an X11 app) or `zos run --migrant -- COMMAND` (a pod that can move)".into(),
            },
            Request::Tasks => Reply::Tasks { tasks: self.tasks.list() },
            Request::Dominate { host, level } => self.dominate(&host, level, out).await.unwrap_or_else(error_reply),
            Request::Release { host, force } => self.release(&host, force, out).await.unwrap_or_else(error_reply),
            Request::View { task } => self.view(task, out),
            Request::Shutdown { force, keep_apps } => self.stop(force, keep_apps),
            Request::ShowMasterApps | Request::Answer { .. } => Reply::Error {
                message: "this is a master daemon; domination requests are answered on the zombie (`zos accept` there)".into(),
            },
            Request::AllowInput { .. } => Reply::Error {
                message: "this is a master daemon; input redirection is allowed or refused on the zombie (`zos input` there)".into(),
            },
            Request::Drive { host, edge, display, xauthority } => self.drive(host, edge, display, xauthority).await,
            Request::PairCode { .. } => Reply::Error {
                message: "this is a master daemon; pairing codes are made on the zombie (`zos pair-code` there)".into(),
            },
            Request::RunMigrant { argv, cwd, env } => match self.tasks.migrants().run(argv, cwd, env).await {
                Ok(task) => Reply::Started { task },
                Err(e) => error_reply(e),
            },
            Request::Attach { task } => self.attach(task, out),
            Request::Resize { task, cols, rows } => self.resize(task, cols, rows),
            Request::Logs { task, follow } => self.logs(task, follow, out),
            Request::Migrate {
                task,
                host,
                compress,
                stop_and_copy,
                image_every_s,
            } => {
                let how = crate::migration::MoveHow {
                    compress,
                    live: !stop_and_copy,
                    image_every_s: image_every_s
                        .unwrap_or(zos_netproto::migration::DEFAULT_IMAGE_EVERY_S),
                };
                self.migrate(task, host, how, out).await
            }
            Request::Home {
                task,
                from_image,
                stop_and_copy,
            } => self.home(task, from_image, !stop_and_copy, out).await,
            Request::CheckpointTask { task, out: dir } => {
                self.mover.checkpoint_task(task, &dir).await.unwrap_or_else(error_reply)
            }
            Request::Snapshot { task, name } if self.tasks.migrants().runs_away(task) => self
                .snapshots
                .snapshot_away(&self.mover, task, name)
                .await
                .unwrap_or_else(error_reply),
            request @ (Request::Snapshot { .. }
            | Request::SnapshotEvery { .. }
            | Request::Snapshots { .. }
            | Request::PruneSnapshots
            | Request::Rollback { .. }
            | Request::Resume { .. }) => self.snapshots.handle(request).await,
            Request::Suspend => self.suspend(out).await,
        }
    }
}
