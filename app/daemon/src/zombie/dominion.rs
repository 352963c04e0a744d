//! The master dominating this zombie: the channels of its session, what
//! it shares (folders mounted here, apps shown in viewer windows), and
//! letting go of it all.
//!
//! [`super::consent`] decides who dominates; the lease (see
//! [`crate::limits::LEASE`]) is kept by the session loop. When the lease
//! runs out, or the session ends, or the master releases the zombie,
//! [`Zombie::let_go`] undoes everything the domination set up.

use std::time::Instant;

use tokio_util::sync::CancellationToken;
use zos_netproto::control::TaskInfo;
use zos_netproto::mux::{Channel, Mux};
use zos_netproto::wire::Message;
use zos_netproto::wire::{self, TaskSummary};
use zos_netproto::{Level, PublicKey};

use super::Zombie;
use super::consent::Granted;
use super::helpers::Helper;
use super::viewers::Viewers;
use super::zos_session::OpenSession;
use crate::error::{DaemonError, Result};
use crate::peer::Peer;

/// The master dominating this zombie.
pub(crate) struct Dominion {
    /// The session it came on.
    pub session_id: u64,
    /// Its key.
    pub master: PublicKey,
    /// The name it was paired under.
    pub master_name: String,
    /// The level granted.
    pub level: Level,
    /// The session's channels (views are opened here); none in tests.
    pub mux: Option<Mux>,
    /// The tasks it shares, as last announced.
    pub tasks: Vec<TaskSummary>,
    /// Since when.
    pub since: Instant,
    /// Viewer windows opened here for the master's shared apps.
    pub viewers: Viewers,
    /// The master's shared folders, mounted here.
    pub share: Option<zos_fileshare::Mount>,
    /// Cancelled when the zombie's user ends the domination (see
    /// [`super::release`]).
    pub user_release: CancellationToken,
    /// The status window on the user's display, while it is open.
    pub status_window: Option<Helper>,
    /// The ZOS session opened for it, if any.
    pub zos: Option<OpenSession>,
}

/// Where a dominating master's shared folders are mounted on the zombie.
pub(crate) fn mountpoint(runtime: &std::path::Path) -> std::path::PathBuf {
    runtime.join("anima")
}

impl Zombie {
    /// Makes the master with `key` (paired as `name`) on session `id` the
    /// dominating one.
    pub(super) fn install_dominion(
        &self,
        id: u64,
        key: PublicKey,
        name: String,
        granted: Granted,
        mux: Option<Mux>,
    ) {
        let level = granted.level;
        tracing::info!(
            "dominated by master {name} ({}) at level {level}",
            key.fingerprint()
        );
        if let Some(mux) = &mux {
            // The terminals of migrants held for this master go to it.
            self.hosted.connect(key, mux.clone());
        }
        self.moves.master_back(&key);
        *self.dominion.lock() = Some(Dominion {
            session_id: id,
            master: key,
            master_name: name,
            level,
            mux,
            tasks: Vec::new(),
            since: Instant::now(),
            viewers: Viewers::new(
                self.cfg.paths.home.clone(),
                self.cfg.desktop.display,
                self.cfg.open_viewers || granted.show_apps,
            ),
            share: None,
            user_release: CancellationToken::new(),
            status_window: self.open_status_window(),
            zos: None,
        });
        self.advert_changed.notify_one();
    }

    /// The status window, when this zombie's user has a display for it.
    fn open_status_window(&self) -> Option<Helper> {
        let desktop = self.cfg.desktop;
        if !(desktop.display && desktop.status_window) {
            return None;
        }
        Helper::spawn(
            &self.cfg.paths.home,
            &["zombie-window"],
            "status window".into(),
        )
        .inspect_err(|e| tracing::warn!("cannot open the status window: {e}"))
        .ok()
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
    pub(super) async fn mount_share<P: Peer>(&self, id: u64, peer: &mut P) -> Result<()> {
        let name = self.dominion_master_name(id).unwrap_or_default();
        let answer = match self.try_mount(id, peer.mux()).await {
            Ok((exports, at)) => {
                tracing::info!(
                    "shared folders of {name} mounted at {at}: {}",
                    if exports.is_empty() {
                        "(none exported to this zombie)".to_string()
                    } else {
                        exports.join(", ")
                    }
                );
                Message::Mounted { exports, at }
            }
            Err(reason) => {
                tracing::warn!("cannot mount the shared folders of {name}: {reason}");
                Message::MountFailed { reason }
            }
        };
        peer.send(&answer).await?;
        Ok(())
    }

    async fn try_mount(
        &self,
        id: u64,
        mux: Option<&Mux>,
    ) -> std::result::Result<(Vec<String>, String), String> {
        let mux = mux.ok_or("this session carries no channels")?;
        let at = mountpoint(&self.cfg.paths.runtime);
        // A mount point left by a crashed run is empty; anything else is not ours.
        if at.exists() {
            std::fs::remove_dir(&at).map_err(|e| format!("{} is in the way: {e}", at.display()))?;
        }
        std::fs::create_dir(&at).map_err(|e| format!("create {}: {e}", at.display()))?;
        let channel = mux.open(wire::FILESHARE_LABEL).map_err(|e| e.to_string())?;
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

    /// The name of the master dominating through session `id`.
    pub(super) fn dominion_master_name(&self, id: u64) -> Option<String> {
        self.dominion
            .lock()
            .as_ref()
            .filter(|d| d.session_id == id)
            .map(|d| d.master_name.clone())
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
            let opened = d.viewers.follow_tasks(&tasks);
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
        self.hosted.disconnect();
        let Dominion {
            mut viewers,
            master_name,
            since,
            share,
            status_window,
            zos,
            ..
        } = dominion;
        // Views end with their channels; the viewer windows are closed,
        // the shared folders unmounted (lazily if busy) and the mount
        // point removed.
        tokio::task::spawn_blocking(move || {
            viewers.close_all();
            if let Some(window) = status_window {
                window.close();
            }
            if let Some(share) = share {
                let at = share.mountpoint().to_path_buf();
                if let Err(e) = share.unmount() {
                    tracing::warn!("unmounting {}: {e}", at.display());
                }
                if let Err(e) = std::fs::remove_dir(&at) {
                    tracing::warn!("removing {}: {e}", at.display());
                }
            }
            // Last, so that once Xephyr is gone everything else is.
            if let Some(zos) = zos {
                zos.close();
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
                r#where: d.master_name.clone(),
                ..TaskInfo::default()
            })
            .collect()
    }

    /// Opens a viewer for each shared app of the dominating master, now and
    /// as they come (`Request::ShowMasterApps`); how many it opened.
    pub(super) fn show_master_apps(&self) -> Result<u32> {
        let mut dominion = self.dominion.lock();
        let Some(d) = dominion.as_mut() else {
            return Err(DaemonError::User(format!(
                "{} is not dominated by a master, so there is nothing to show",
                self.cfg.name
            )));
        };
        let opened = d.viewers.show_all(&d.tasks).map_err(DaemonError::User)?;
        tracing::info!(
            "showing the apps of master {}: {opened} viewer(s) opened",
            d.master_name
        );
        Ok(opened)
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
        let mux = d.mux.as_ref().ok_or_else(|| {
            DaemonError::User("the dominating session carries no channels".into())
        })?;
        Ok(mux.open(&wire::view_label(task))?)
    }
}
