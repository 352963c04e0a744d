//! The zombie's user ends the domination: `zos release` on the zombie, the
//! tray's Release item, the status window's button.
//!
//! The dominion's `user_release` token tells its session, which asks the
//! master to release the zombie (`Release{reason}`, zombie → master). The
//! master runs its normal release — its migrants come home first — and
//! sends `Release` back; the zombie cleans up and answers `Released`. A
//! master that has not released the zombie within [`USER_RELEASE_WAIT`]
//! (an old master, a hung one) does not hold it: the zombie lets go by
//! itself and ends the session with `Bye`, saying why.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Zombie;
use crate::error::{DaemonError, Result};
use crate::limits::USER_RELEASE_WAIT;

/// How often the user's request checks whether the domination has ended.
const CHECK: Duration = Duration::from_millis(100);

impl Zombie {
    /// Ends the domination on the user's behalf and waits until the
    /// zombie is free; returns the master's name. `master` may be empty
    /// or name the dominating master (its name or fingerprint prefix).
    pub(super) async fn user_release(&self, master: &str) -> Result<String> {
        let (name, token, session) = {
            let dominion = self.dominion.lock();
            let Some(d) = dominion.as_ref() else {
                return Err(DaemonError::User(format!(
                    "{} is not dominated by a master",
                    self.cfg.name
                )));
            };
            if !master.is_empty()
                && master != d.master_name
                && !d.master.fingerprint().matches(master)
            {
                return Err(DaemonError::User(format!(
                    "{} is dominated by {}, not by {master:?}",
                    self.cfg.name, d.master_name
                )));
            }
            (d.master_name.clone(), d.user_release.clone(), d.session_id)
        };
        tracing::info!("the user ends the domination by {name}");
        token.cancel();
        let deadline = tokio::time::Instant::now() + USER_RELEASE_WAIT + Duration::from_secs(5);
        while self.dominated_by(session) {
            if tokio::time::Instant::now() > deadline {
                return Err(DaemonError::User(format!(
                    "the domination by {name} did not end within {} s",
                    (USER_RELEASE_WAIT + Duration::from_secs(5)).as_secs()
                )));
            }
            tokio::time::sleep(CHECK).await;
        }
        Ok(name)
    }

    /// The token of session `id`'s domination that the user's release
    /// cancels, while it dominates.
    pub(super) fn user_release_token(&self, id: u64) -> Option<CancellationToken> {
        self.dominion
            .lock()
            .as_ref()
            .filter(|d| d.session_id == id)
            .map(|d| d.user_release.clone())
    }
}
