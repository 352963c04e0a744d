//! The zombie's side of domination: which master holds it, what that
//! master shares, and letting go of it all.
//!
//! One master at a time. A master gets at most the level its trust entry
//! allows (and never more than it asked for); an unpaired one gets nothing.
//! The lease (see [`super::LEASE`]) is kept by every message of the master;
//! when it runs out, or the session ends, or the master releases the zombie,
//! [`Zombie::let_go`] undoes everything the domination set up.

use std::time::Instant;

use zos_netproto::control::TaskInfo;
use zos_netproto::mux::{Channel, Mux};
use zos_netproto::session::Session;
use zos_netproto::wire::{self, TaskSummary};
use zos_netproto::{Level, PublicKey};

use super::Zombie;
use crate::error::{DaemonError, Result};

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
}

impl Zombie {
    /// Decides a `Dominate` request on session `id`; returns the level
    /// granted or the reason for refusing.
    pub(super) fn accept_domination(
        &self,
        id: u64,
        session: &Session,
        asked: Level,
        trusted: Option<Level>,
    ) -> std::result::Result<Level, String> {
        let Some(trusted) = trusted else {
            return Err(self.not_paired());
        };
        let mut dominion = self.dominion.lock().expect("dominion");
        if let Some(d) = dominion.as_ref() {
            return Err(if d.master == session.remote {
                format!("{} is already dominated by this master", self.cfg.name)
            } else {
                format!(
                    "{} is already dominated by {} ({})",
                    self.cfg.name,
                    d.master_name,
                    d.master.fingerprint()
                )
            });
        }
        let granted = asked.min(trusted);
        if granted < asked {
            tracing::info!(
                "master {} asked for level {asked}; its trust entry allows {trusted}",
                session.remote_name
            );
        }
        *dominion = Some(Dominion {
            session_id: id,
            master: session.remote,
            master_name: session.remote_name.clone(),
            level: granted,
            mux: session.mux.clone(),
            tasks: Vec::new(),
            since: Instant::now(),
        });
        tracing::info!(
            "dominated by master {} ({}) at level {granted}",
            session.remote_name,
            session.remote.fingerprint()
        );
        Ok(granted)
    }

    /// Whether session `id` dominates this zombie.
    pub(super) fn dominated_by(&self, id: u64) -> bool {
        self.dominion_level(id).is_some()
    }

    /// The level session `id` dominates at, if it does.
    pub(super) fn dominion_level(&self, id: u64) -> Option<Level> {
        self.dominion
            .lock()
            .expect("dominion")
            .as_ref()
            .filter(|d| d.session_id == id)
            .map(|d| d.level)
    }

    /// Records the task list the dominating master announced.
    pub(super) fn set_master_tasks(&self, id: u64, tasks: Vec<TaskSummary>) {
        if let Some(d) = self
            .dominion
            .lock()
            .expect("dominion")
            .as_mut()
            .filter(|d| d.session_id == id)
        {
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
        }
    }

    /// Ends the domination held by session `id`, if it holds it.
    pub(super) fn take_dominion(&self, id: u64) -> Option<Dominion> {
        let mut dominion = self.dominion.lock().expect("dominion");
        if dominion.as_ref().is_some_and(|d| d.session_id == id) {
            dominion.take()
        } else {
            None
        }
    }

    /// Undoes everything a domination set up on this zombie.
    pub(super) async fn let_go(&self, dominion: Dominion, why: &str) {
        // Views end with their channels, which end with the session.
        tracing::info!(
            "domination by {} ended after {} s: {why}; cleaned up",
            dominion.master_name,
            dominion.since.elapsed().as_secs()
        );
    }

    /// The dominating master's tasks, as `zos tasks` lists them here.
    pub(super) fn master_tasks(&self) -> Vec<TaskInfo> {
        let dominion = self.dominion.lock().expect("dominion");
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
        let dominion = self.dominion.lock().expect("dominion");
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
