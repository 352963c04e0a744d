//! The zombie's side of domination: asking the user, which master holds
//! the zombie, what that master shares, and letting go of it all.
//!
//! One master at a time. A master gets at most the level its trust entry
//! allows (and never more than it asked for); an unpaired one gets nothing.
//! Unless the zombie accepts automatically, its user answers each request
//! (`zos accept` / `zos refuse`, or the tray) within [`CONSENT_TIMEOUT`].
//! The lease (see [`super::LEASE`]) is kept by every message of the master;
//! when it runs out, or the session ends, or the master releases the zombie,
//! [`Zombie::let_go`] undoes everything the domination set up.

use std::time::Instant;

use tokio::sync::oneshot;
use zos_netproto::control::{AskInfo, TaskInfo};
use zos_netproto::mux::{Channel, Mux};
use zos_netproto::session::Session;
use zos_netproto::wire::Message;
use zos_netproto::wire::{self, TaskSummary};
use zos_netproto::{Level, PublicKey};

use super::viewers::Viewers;
use super::{CONSENT_TIMEOUT, Zombie};
use crate::error::{DaemonError, Result};

/// A domination request waiting for the user's answer.
pub(crate) struct Ask {
    master_name: String,
    master: PublicKey,
    level: Level,
    since: Instant,
    answer: oneshot::Sender<bool>,
}

/// The master dominating this zombie.
pub(crate) struct Dominion {
    /// The session it came on.
    pub session_id: u64,
    /// Its key.
    pub master: PublicKey,
    /// Its name.
    pub master_name: String,
    /// The level granted.
    pub level: Level,
    /// The session's channels (views are opened here).
    pub mux: Mux,
    /// The tasks it shares, as last announced.
    pub tasks: Vec<TaskSummary>,
    /// Since when.
    pub since: Instant,
    /// Viewer windows opened here for the master's shared apps.
    pub viewers: Viewers,
    /// The master's shared folders, mounted here.
    pub share: Option<zos_fileshare::Mount>,
}

/// Where a dominating master's shared folders are mounted on the zombie.
pub(crate) fn mountpoint(runtime: &std::path::Path) -> std::path::PathBuf {
    runtime.join("anima")
}

impl Zombie {
    /// Decides a `Dominate` request on session `id`, asking the user unless
    /// this zombie accepts by itself; returns the level granted or the
    /// reason for refusing. Only a broken session is an `Err`.
    pub(super) async fn decide_domination(
        &self,
        id: u64,
        session: &mut Session,
        asked: Level,
        trusted: Option<Level>,
    ) -> Result<std::result::Result<Level, String>> {
        let Some(trusted) = trusted else {
            return Ok(Err(self.not_paired()));
        };
        if let Err(reason) = self.check_free(session) {
            return Ok(Err(reason));
        }
        let granted = asked.min(trusted);
        if granted < asked {
            tracing::info!(
                "master {} asked for level {asked}; its trust entry allows {trusted}",
                session.remote_name
            );
        }
        if !self.cfg.auto_accept {
            let (answer, decision) = oneshot::channel();
            {
                let mut asking = self.asking.lock();
                if asking.is_some() {
                    return Ok(Err(format!(
                        "{} is already asking its user about another master",
                        self.cfg.name
                    )));
                }
                *asking = Some(Ask {
                    master_name: session.remote_name.clone(),
                    master: session.remote,
                    level: granted,
                    since: Instant::now(),
                    answer,
                });
            }
            tracing::info!(
                "master {} ({}) asks to dominate this zombie at level {granted}: answer with `zos accept` or `zos refuse` (or in the tray) within {} s",
                session.remote_name,
                session.remote.fingerprint(),
                CONSENT_TIMEOUT.as_secs()
            );
            session
                .send(&Message::Asking {
                    timeout_s: CONSENT_TIMEOUT.as_secs() as u32,
                })
                .await?;
            let answer = tokio::time::timeout(CONSENT_TIMEOUT, decision).await;
            self.asking.lock().take();
            match answer {
                Ok(Ok(true)) => tracing::info!("the user accepted {}", session.remote_name),
                Ok(Ok(false)) | Ok(Err(_)) => {
                    tracing::info!("the user refused {}", session.remote_name);
                    return Ok(Err(format!("the user of {} refused", self.cfg.name)));
                }
                Err(_) => {
                    tracing::info!("nobody answered {}'s request", session.remote_name);
                    return Ok(Err(format!(
                        "nobody on {} answered within {} s",
                        self.cfg.name,
                        CONSENT_TIMEOUT.as_secs()
                    )));
                }
            }
        }
        if let Err(reason) = self.check_free(session) {
            return Ok(Err(reason));
        }
        *self.dominion.lock() = Some(Dominion {
            session_id: id,
            master: session.remote,
            master_name: session.remote_name.clone(),
            level: granted,
            mux: session.mux.clone(),
            tasks: Vec::new(),
            since: Instant::now(),
            viewers: Viewers::new(self.cfg.paths.home.clone(), self.cfg.open_viewers),
            share: None,
        });
        self.advert_changed.notify_one();
        tracing::info!(
            "dominated by master {} ({}) at level {granted}",
            session.remote_name,
            session.remote.fingerprint()
        );
        Ok(Ok(granted))
    }

    /// Refuses while another master (or this one) dominates.
    fn check_free(&self, session: &Session) -> std::result::Result<(), String> {
        match self.dominion.lock().as_ref() {
            None => Ok(()),
            Some(d) if d.master == session.remote => Err(format!(
                "{} is already dominated by this master",
                self.cfg.name
            )),
            Some(d) => Err(format!(
                "{} is already dominated by {} ({})",
                self.cfg.name,
                d.master_name,
                d.master.fingerprint()
            )),
        }
    }

    /// The user's answer to the waiting request; an error if none waits.
    pub(super) fn answer(&self, accept: bool) -> std::result::Result<String, String> {
        let ask = self
            .asking
            .lock()
            .take()
            .ok_or_else(|| "no domination request is waiting".to_string())?;
        let name = ask.master_name.clone();
        ask.answer
            .send(accept)
            .map_err(|_| format!("master {name} gave up waiting"))?;
        Ok(name)
    }

    /// The waiting request, for `zos status` and the tray.
    pub(super) fn ask_info(&self) -> Option<AskInfo> {
        self.asking.lock().as_ref().map(|a| AskInfo {
            master: a.master_name.clone(),
            fingerprint: a.master.fingerprint().0,
            level: a.level,
            expires_in_s: CONSENT_TIMEOUT.saturating_sub(a.since.elapsed()).as_secs(),
        })
    }

    /// Whether session `id` dominates this zombie.
    pub(super) fn dominated_by(&self, id: u64) -> bool {
        self.dominion_level(id).is_some()
    }

    /// The level session `id` dominates at, if it does.
    pub(super) fn dominion_level(&self, id: u64) -> Option<Level> {
        self.dominion
            .lock()
            .as_ref()
            .filter(|d| d.session_id == id)
            .map(|d| d.level)
    }

    /// Mounts the dominating master's shared folders (served on a channel
    /// opened here) and answers `Mounted` or `MountFailed`.
    pub(super) async fn mount_share(&self, id: u64, session: &mut Session) -> Result<()> {
        let answer = match self.try_mount(id, session).await {
            Ok((exports, at)) => {
                tracing::info!(
                    "shared folders of {} mounted at {at}: {}",
                    session.remote_name,
                    if exports.is_empty() {
                        "(none exported to this zombie)".to_string()
                    } else {
                        exports.join(", ")
                    }
                );
                Message::Mounted { exports, at }
            }
            Err(reason) => {
                tracing::warn!(
                    "cannot mount the shared folders of {}: {reason}",
                    session.remote_name
                );
                Message::MountFailed { reason }
            }
        };
        session.send(&answer).await?;
        Ok(())
    }

    async fn try_mount(
        &self,
        id: u64,
        session: &Session,
    ) -> std::result::Result<(Vec<String>, String), String> {
        let at = mountpoint(&self.cfg.paths.runtime);
        // A mount point left by a crashed run is empty; anything else is not ours.
        if at.exists() {
            std::fs::remove_dir(&at).map_err(|e| format!("{} is in the way: {e}", at.display()))?;
        }
        std::fs::create_dir(&at).map_err(|e| format!("create {}: {e}", at.display()))?;
        let channel = session
            .mux
            .open(wire::FILESHARE_LABEL)
            .map_err(|e| e.to_string())?;
        let mount = match zos_fileshare::mount_async(channel, &at, Default::default()).await {
            Ok(m) => m,
            Err(e) => {
                let _ = std::fs::remove_dir(&at);
                return Err(e.to_string());
            }
        };
        let names = mount.exports().iter().map(|e| e.name.clone()).collect();
        let mut dominion = self.dominion.lock();
        match dominion.as_mut().filter(|d| d.session_id == id) {
            Some(d) => d.share = Some(mount),
            // Released meanwhile: undo at once.
            None => {
                drop(dominion);
                let at = at.clone();
                tokio::task::spawn_blocking(move || {
                    let _ = mount.unmount();
                    let _ = std::fs::remove_dir(&at);
                });
                return Err("the domination ended while mounting".into());
            }
        }
        Ok((names, at.display().to_string()))
    }

    /// Where session `id`'s shared folders are mounted, if they are.
    pub(super) fn mount_of(&self, id: u64) -> Option<String> {
        self.dominion
            .lock()
            .as_ref()
            .filter(|d| d.session_id == id)
            .and_then(|d| d.share.as_ref())
            .map(|m| m.mountpoint().display().to_string())
    }

    /// Records the task list the dominating master announced, and opens
    /// viewers for new shared apps; returns how many viewers it opened.
    pub(super) fn set_master_tasks(&self, id: u64, tasks: Vec<TaskSummary>) -> u32 {
        if let Some(d) = self.dominion.lock().as_mut().filter(|d| d.session_id == id) {
            let opened = d.viewers.follow(&tasks);
            tracing::info!(
                "master {} shares {} task(s): {}",
                d.master_name,
                tasks.len(),
                tasks
                    .iter()
                    .map(|t| format!("{} {}", t.id, t.command.join(" ")))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            d.tasks = tasks;
            return opened;
        }
        0
    }

    /// Ends the domination held by session `id`, if it holds it.
    pub(super) fn take_dominion(&self, id: u64) -> Option<Dominion> {
        let mut dominion = self.dominion.lock();
        if dominion.as_ref().is_some_and(|d| d.session_id == id) {
            dominion.take()
        } else {
            None
        }
    }

    /// Undoes everything a domination set up on this zombie.
    pub(super) async fn let_go(&self, dominion: Dominion, why: &str) {
        self.advert_changed.notify_one();
        let Dominion {
            mut viewers,
            master_name,
            since,
            share,
            ..
        } = dominion;
        // Views end with their channels; the viewer windows are closed,
        // the shared folders unmounted (lazily if busy) and the mount
        // point removed.
        tokio::task::spawn_blocking(move || {
            viewers.close_all();
            if let Some(share) = share {
                let at = share.mountpoint().to_path_buf();
                if let Err(e) = share.unmount() {
                    tracing::warn!("unmounting {}: {e}", at.display());
                }
                if let Err(e) = std::fs::remove_dir(&at) {
                    tracing::warn!("removing {}: {e}", at.display());
                }
            }
        })
        .await
        .ok();
        tracing::info!(
            "domination by {} ended after {} s: {why}; cleaned up",
            master_name,
            since.elapsed().as_secs()
        );
    }

    /// The dominating master's tasks, as `zos tasks` lists them here.
    pub(super) fn master_tasks(&self) -> Vec<TaskInfo> {
        let dominion = self.dominion.lock();
        let Some(d) = dominion.as_ref() else {
            return Vec::new();
        };
        d.tasks
            .iter()
            .map(|t| TaskInfo {
                id: t.id,
                kind: t.kind.clone(),
                command: t.command.clone(),
                display: None,
                state: "running".into(),
                pid: None,
                host: Some(d.master_name.clone()),
            })
            .collect()
    }

    /// Opens a view channel for the dominating master's task `task`.
    pub(super) fn open_view(&self, task: u64) -> Result<Channel> {
        let dominion = self.dominion.lock();
        let Some(d) = dominion.as_ref() else {
            return Err(DaemonError::User(format!(
                "{} is not dominated by a master, so there is nothing to view",
                self.cfg.name
            )));
        };
        if !d.tasks.iter().any(|t| t.id == task) {
            return Err(DaemonError::User(format!(
                "master {} shares no task {task} (see `zos tasks`)",
                d.master_name
            )));
        }
        Ok(d.mux.open(&wire::view_label(task))?)
    }
}
