//! The master's side of domination: one long-lived session per dominated
//! zombie.
//!
//! [`Dominions::start`] runs the exchange `Dominate → Dominated`, sends the
//! task list, and leaves a driver task that keeps the session: it announces
//! every change of the task list, serves the channels the zombie opens
//! (views of shared apps), keeps the lease alive with pings, and on release
//! (or daemon shutdown) sends `Release` and waits for `Released`. When the
//! session ends for any reason the dominion is forgotten.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use zos_netproto::session::Session;
use zos_netproto::wire::{self, Message};
use zos_netproto::{Level, PublicKey};

use zos_netproto::control::Reply;

use crate::control_server::Replies;
use crate::error::{DaemonError, Result};
use crate::tasks::Tasks;
use crate::views;

/// How often the master pings a dominated zombie (the zombie's lease is
/// renewed by every message).
pub const KEEPALIVE: Duration = Duration::from_secs(2);
/// A dominated zombie that has said nothing for this long is given up.
pub const SILENCE_LIMIT: Duration = Duration::from_secs(10);
/// How long a zombie may take to mount and to open its viewers.
const SET_UP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a zombie may take to clean up after `Release`.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(20);

/// One dominated zombie.
struct Dominion {
    name: String,
    key: PublicKey,
    level: Level,
    started: Instant,
    release: CancellationToken,
    /// Fires when the driver has finished (the zombie is free).
    ended: Option<oneshot::Receiver<()>>,
}

/// What `zos status` shows of a dominion.
#[derive(Clone, Debug)]
pub struct DominionInfo {
    /// The zombie's name.
    pub name: String,
    /// Its key.
    pub key: PublicKey,
    /// The level granted.
    pub level: Level,
    /// Since when.
    pub started: Instant,
    /// The zombie's address.
    pub addr: std::net::SocketAddr,
}

/// The zombies this master dominates, by key.
pub struct Dominions {
    tasks: Arc<Tasks>,
    /// The export list (`exports.toml`), read afresh for each zombie.
    exports: PathBuf,
    shutdown: CancellationToken,
    live: Mutex<BTreeMap<PublicKey, (Dominion, std::net::SocketAddr)>>,
}

/// The outcome of a successful domination.
pub struct Dominated {
    /// The zombie's name.
    pub name: String,
    /// The level granted.
    pub level: Level,
    /// Each part of the set-up and how long it took.
    pub timing: Vec<(String, Duration)>,
}

impl Dominions {
    /// No dominions yet; every one ends when `shutdown` is cancelled.
    /// `exports` is the master's export list file.
    pub fn new(tasks: Arc<Tasks>, exports: PathBuf, shutdown: CancellationToken) -> Arc<Dominions> {
        Arc::new(Dominions {
            tasks,
            exports,
            shutdown,
            live: Mutex::new(BTreeMap::new()),
        })
    }

    /// Whether the zombie with `key` is dominated by us, and at what level.
    pub fn level_of(&self, key: &PublicKey) -> Option<Level> {
        self.live.lock().get(key).map(|(d, _)| d.level)
    }

    /// Every live dominion.
    pub fn list(&self) -> Vec<DominionInfo> {
        self.live
            .lock()
            .values()
            .map(|(d, addr)| DominionInfo {
                name: d.name.clone(),
                key: d.key,
                level: d.level,
                started: d.started,
                addr: *addr,
            })
            .collect()
    }

    /// Finds a dominion by the zombie's name or key fingerprint prefix.
    pub fn find(&self, query: &str) -> Option<PublicKey> {
        let live = self.live.lock();
        live.values()
            .find(|(d, _)| d.name == query || d.key.fingerprint().matches(query))
            .map(|(d, _)| d.key)
    }

    /// Dominates the zombie at the other end of `session` (paired, welcomed)
    /// at `level`. `zt_start` is when the connection attempt began.
    pub async fn start(
        self: &Arc<Self>,
        mut session: Session,
        level: Level,
        zt_start: Instant,
        out: &mut Replies,
    ) -> Result<Dominated> {
        let key = session.remote;
        let name = session.remote_name.clone();
        if let Some(l) = self.level_of(&key) {
            session.mux.close();
            return Err(DaemonError::User(format!(
                "{name} is already dominated by this master (level {l}); `zos release {name}` first to change it"
            )));
        }
        session.send(&Message::Dominate { level }).await?;
        let mut waited = Duration::ZERO;
        let granted = match session.expect().await {
            Ok(Message::Asking { timeout_s }) => {
                let asked_at = Instant::now();
                out.send(&Reply::Progress {
                    message: format!("{name} is asking its user to accept (up to {timeout_s} s)…"),
                })
                .await?;
                let answer = session.expect().await;
                waited = asked_at.elapsed();
                match answer {
                    Ok(Message::Dominated { level }) => level,
                    other => self.refusal(&mut session, &name, other)?,
                }
            }
            Ok(Message::Dominated { level }) => level,
            other => self.refusal(&mut session, &name, other)?,
        };
        // The user's thinking time is not part of the set-up.
        let zt = zt_start.elapsed().saturating_sub(waited);
        if waited > Duration::ZERO {
            tracing::info!("{name}'s user accepted after {:.1} s", waited.as_secs_f64());
        }

        // The file-system mount: the zombie opens the file service's
        // channel, mounts, and says how it went.
        let fs_start = Instant::now();
        match self.answer_serving(&mut session, &name).await? {
            Message::Mounted { exports, at } => {
                tracing::info!("{name} mounted {} export(s) at {at}", exports.len());
                out.send(&Reply::Progress {
                    message: match exports.len() {
                        0 => format!("{name}: no folder is exported to it (`zos export PATH`)"),
                        _ => format!("{name}: shared folders {} at {at}", exports.join(", ")),
                    },
                })
                .await?;
            }
            Message::MountFailed { reason } => {
                tracing::warn!("{name} could not mount the shared folders: {reason}");
                out.send(&Reply::Progress {
                    message: format!("{name} could not mount the shared folders: {reason}"),
                })
                .await?;
            }
            other => {
                session.mux.close();
                return Err(DaemonError::User(format!(
                    "zombie {name} answered {} instead of its mount",
                    crate::zombie::variant(&other)
                )));
            }
        }
        let fs = fs_start.elapsed();

        // The display set-up: the task list, and the zombie's viewers.
        let xt_start = Instant::now();
        session
            .send(&Message::Tasks {
                tasks: self.tasks.summaries(),
            })
            .await?;
        match self.answer_serving(&mut session, &name).await? {
            Message::Shown { viewers } => {
                tracing::info!("{name} opened {viewers} viewer(s)");
            }
            other => {
                session.mux.close();
                return Err(DaemonError::User(format!(
                    "zombie {name} answered {} to the task list",
                    crate::zombie::variant(&other)
                )));
            }
        }
        let xt = xt_start.elapsed();

        let release = CancellationToken::new();
        let (ended_tx, ended_rx) = oneshot::channel();
        let addr = session.peer_addr;
        self.live.lock().insert(
            key,
            (
                Dominion {
                    name: name.clone(),
                    key,
                    level: granted,
                    started: Instant::now(),
                    release: release.clone(),
                    ended: Some(ended_rx),
                },
                addr,
            ),
        );
        tracing::info!(
            "dominating {name} ({}) at level {granted}: zt {:.1} ms, fs {:.1} ms, xt {:.1} ms",
            key.fingerprint(),
            zt.as_secs_f64() * 1e3,
            fs.as_secs_f64() * 1e3,
            xt.as_secs_f64() * 1e3
        );
        let me = self.clone();
        let zombie = name.clone();
        tokio::spawn(async move {
            let why = me.drive(session, release).await;
            me.live.lock().remove(&key);
            tracing::info!("domination of {zombie} ended: {why}");
            let _ = ended_tx.send(());
        });
        Ok(Dominated {
            name,
            level: granted,
            timing: vec![("zt".into(), zt), ("fs".into(), fs), ("xt".into(), xt)],
        })
    }

    /// The error for anything but `Dominated` in answer to `Dominate`.
    fn refusal(
        &self,
        session: &mut Session,
        name: &str,
        answer: zos_netproto::Result<Message>,
    ) -> Result<Level> {
        session.mux.close();
        Err(match answer {
            Ok(other) => DaemonError::User(format!(
                "zombie {name} answered {} to Dominate",
                crate::zombie::variant(&other)
            )),
            Err(zos_netproto::Error::Refused(reason)) => {
                DaemonError::User(format!("zombie {name} refused domination: {reason}"))
            }
            Err(e) => e.into(),
        })
    }

    /// Releases the zombie with `key` and waits until it has let go.
    pub async fn release(&self, key: &PublicKey) -> Result<String> {
        let (name, ended) = {
            let mut live = self.live.lock();
            let Some((d, _)) = live.get_mut(key) else {
                return Err(DaemonError::User(
                    "that zombie is not dominated by this master".into(),
                ));
            };
            d.release.cancel();
            (d.name.clone(), d.ended.take())
        };
        if let Some(ended) = ended {
            let _ = tokio::time::timeout(RELEASE_TIMEOUT + Duration::from_secs(1), ended).await;
        }
        Ok(name)
    }

    /// Waits (up to `limit`) until every dominion has ended after a shutdown.
    pub async fn wait_all_ended(&self, limit: Duration) {
        let end = tokio::time::Instant::now() + limit;
        while !self.live.lock().is_empty() && tokio::time::Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Keeps one dominated session until it ends; returns why it ended.
    async fn drive(&self, mut session: Session, release: CancellationToken) -> String {
        let mux = session.mux.clone();
        let name = session.remote_name.clone();
        let mut changes = self.tasks.subscribe();
        let mut keepalive = tokio::time::interval(KEEPALIVE);
        keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        let mut seq = 0u64;
        let reason = loop {
            tokio::select! {
                _ = release.cancelled() => break "released by the user",
                _ = self.shutdown.cancelled() => break "the master is shutting down",
                changed = changes.changed() => {
                    if changed.is_err() {
                        break "the task registry closed";
                    }
                    let tasks = self.tasks.summaries();
                    if let Err(e) = session.send(&Message::Tasks { tasks }).await {
                        return format!("session lost: {e}");
                    }
                }
                _ = keepalive.tick() => {
                    if last_heard.elapsed() > SILENCE_LIMIT {
                        mux.abort("the zombie stopped answering");
                        return format!("{name} said nothing for {} s", SILENCE_LIMIT.as_secs());
                    }
                    seq += 1;
                    if let Err(e) = session.send(&Message::Ping { seq }).await {
                        return format!("session lost: {e}");
                    }
                }
                channel = mux.accept() => match channel {
                    Some(channel) => {
                        last_heard = Instant::now();
                        self.serve_channel(channel, &name, &session.remote);
                    }
                    None => return format!("session lost: {}", mux.end_reason().unwrap_or_default()),
                },
                message = session.recv() => {
                    last_heard = Instant::now();
                    match message {
                        Ok(Message::Pong { .. } | Message::Shown { .. }) => {}
                        Ok(Message::Bye { reason }) => {
                            mux.close();
                            return format!("{name} ended it: {reason}");
                        }
                        Ok(other) => {
                            tracing::warn!("unexpected {} from dominated {name}", crate::zombie::variant(&other));
                        }
                        Err(e) => return format!("session lost: {e}"),
                    }
                }
            }
        };
        // Release: the zombie cleans up, then says so.
        let _ = session
            .send(&Message::Release {
                reason: reason.to_string(),
            })
            .await;
        let wait = async {
            loop {
                match session.recv().await {
                    Ok(Message::Released) => return true,
                    Ok(_) => continue,
                    Err(_) => return false,
                }
            }
        };
        let clean = matches!(tokio::time::timeout(RELEASE_TIMEOUT, wait).await, Ok(true));
        mux.close();
        if clean {
            reason.to_string()
        } else {
            format!("{reason} (the zombie did not confirm its clean-up)")
        }
    }

    /// The zombie's next control message, serving the channels it opens
    /// meanwhile (its mount needs the file service while it waits).
    async fn answer_serving(&self, session: &mut Session, name: &str) -> Result<Message> {
        let mux = session.mux.clone();
        let key = session.remote;
        let deadline = tokio::time::sleep(SET_UP_TIMEOUT);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => {
                    mux.close();
                    return Err(DaemonError::User(format!(
                        "zombie {name} did not finish setting up within {} s",
                        SET_UP_TIMEOUT.as_secs()
                    )));
                }
                channel = mux.accept() => match channel {
                    Some(channel) => self.serve_channel(channel, name, &key),
                    None => return Err(DaemonError::User(format!("the session with {name} ended"))),
                },
                message = session.expect() => return Ok(message?),
            }
        }
    }

    /// Serves one channel the zombie opened.
    fn serve_channel(
        &self,
        mut channel: zos_netproto::mux::Channel,
        zombie: &str,
        key: &PublicKey,
    ) {
        if channel.label() == wire::FILESHARE_LABEL {
            let policy = match zos_fileshare::ExportStore::load(&self.exports) {
                Ok(store) => store.policy_for(zombie, &key.fingerprint()),
                Err(e) => {
                    tracing::warn!("cannot read the export list: {e}");
                    channel.reset(&format!("the master cannot read its export list: {e}"));
                    return;
                }
            };
            let zombie = zombie.to_string();
            tokio::spawn(async move {
                tracing::info!("serving {} export(s) to {zombie}", policy.names().len());
                match zos_fileshare::serve(channel, policy).await {
                    Ok(()) => tracing::info!("{zombie} unmounted the shared folders"),
                    Err(e) => tracing::info!("file service for {zombie} ended: {e}"),
                }
            });
            return;
        }
        match wire::parse_view_label(channel.label()) {
            Some(id) => match self.tasks.fanout(id) {
                Some(fanout) => {
                    let zombie = zombie.to_string();
                    tokio::spawn(async move {
                        tracing::info!("{zombie} views task {id}");
                        views::serve_channel(channel, fanout).await;
                        tracing::info!("{zombie} stopped viewing task {id}");
                    });
                }
                None => channel.reset(&format!("no shared task {id} on this master")),
            },
            None => {
                let label = channel.label().to_string();
                tracing::warn!("{zombie} opened an unknown channel {label:?}");
                channel.reset(&format!("unknown channel {label:?}"));
            }
        }
    }
}
