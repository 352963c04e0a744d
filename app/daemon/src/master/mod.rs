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
use zos_netproto::Identity;
use zos_netproto::control::{Reply, Request, SessionInfo, StatusInfo};
use zos_netproto::discovery::{Browser, Interfaces};
use zos_netproto::trust::PeerStore;
use zos_netproto::wire::Role;

use crate::control_server::{self, Handler, Replies};
use crate::domination::Dominions;
use crate::error::{DaemonError, Result};
use crate::hosts::{HostTable, PROBE_INTERVAL};
use crate::paths::Paths;

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
    let tasks = crate::tasks::Tasks::new(cfg.paths.runtime.clone(), shutdown.clone());
    let dominions = Dominions::new(tasks.clone(), cfg.paths.exports(), shutdown.clone());
    let drive = Drive::start(cfg.drive.clone(), shutdown.clone());
    dominions.set_input(drive.clone());
    let master = Arc::new(Master {
        identity,
        zombies: Mutex::new(zombies),
        hosts: hosts.clone(),
        dominions,
        drive,
        tasks,
        shutdown: shutdown.clone(),
        cfg,
    });
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
            .start(peer, zombie, level, start, out)
            .await?;
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

    async fn release(&self, host: &str) -> Result<Reply> {
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
        let name = self.dominions.release(&key).await?;
        Ok(Reply::Released { name })
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

    /// The hosts seen, each with its state as this master knows it best:
    /// its own dominions at once, others' as the zombies advertise them.
    /// A paired zombie is shown under the name it was paired under.
    fn hosts_with_state(&self) -> Vec<zos_netproto::discovery::HostInfo> {
        let ours = self.dominions.list();
        let mut hosts = self.hosts.list();
        let zombies = self.zombies.lock();
        for host in &mut hosts {
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
                message: "only virtually shared apps exist so far: use `zos run --shared -- COMMAND`".into(),
            },
            Request::Tasks => Reply::Tasks { tasks: self.tasks.list() },
            Request::Dominate { host, level } => self.dominate(&host, level, out).await.unwrap_or_else(error_reply),
            Request::Release { host } => self.release(&host).await.unwrap_or_else(error_reply),
            Request::View { task } => self.view(task, out),
            Request::Shutdown => {
                self.shutdown.cancel();
                Reply::Done
            }
            Request::Answer { .. } => Reply::Error {
                message: "this is a master daemon; domination requests are answered on the zombie (`zos accept` there)".into(),
            },
            Request::AllowInput { .. } => Reply::Error {
                message: "this is a master daemon; input redirection is allowed or refused on the zombie (`zos input` there)".into(),
            },
            Request::Drive { host, edge, display, xauthority } => self.drive(host, edge, display, xauthority).await,
            Request::PairCode { .. } => Reply::Error {
                message: "this is a master daemon; pairing codes are made on the zombie (`zos pair-code` there)".into(),
            },
        }
    }
}
