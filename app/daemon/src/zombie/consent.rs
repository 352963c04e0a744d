//! Whether a master may dominate this zombie: it must be paired, the
//! zombie free, and — unless the zombie accepts by itself — its user must
//! say yes (`zos accept` / `zos refuse`, or the tray) within
//! [`CONSENT_TIMEOUT`]. One master at a time, at most at the level its
//! trust entry allows and never more than it asked for.

use std::time::Instant;

use tokio::sync::oneshot;
use zos_netproto::control::AskInfo;
use zos_netproto::wire::Message;
use zos_netproto::{Level, PublicKey};

use super::Zombie;
use crate::error::Result;
use crate::limits::CONSENT_TIMEOUT;
use crate::peer::Peer;

/// A domination request waiting for the user's answer.
pub(crate) struct Ask {
    master_name: String,
    master: PublicKey,
    level: Level,
    since: Instant,
    answer: oneshot::Sender<bool>,
}

impl Zombie {
    /// Decides a `Dominate` request on session `id`, asking the user unless
    /// this zombie accepts by itself; on yes, the master holds the zombie
    /// from here on. Returns the level granted or the reason for refusing;
    /// only a broken session is an `Err`.
    pub(super) async fn decide_domination<P: Peer>(
        &self,
        id: u64,
        peer: &mut P,
        asked: Level,
        trusted: Option<Level>,
    ) -> Result<std::result::Result<Level, String>> {
        let key = peer.info().key;
        let (Some(trusted), Some(name)) = (trusted, self.paired_name(&key)) else {
            return Ok(Err(self.not_paired()));
        };
        if let Err(reason) = self.check_free(&key) {
            return Ok(Err(reason));
        }
        let granted = asked.min(trusted);
        if granted < asked {
            tracing::info!(
                "master {name} asked for level {asked}; its trust entry allows {trusted}"
            );
        }
        if !self.cfg.auto_accept {
            if let Err(reason) = self.ask_user(peer, &name, granted).await? {
                return Ok(Err(reason));
            }
        }
        if let Err(reason) = self.check_free(&key) {
            return Ok(Err(reason));
        }
        self.install_dominion(id, key, name, granted, peer.mux().cloned());
        Ok(Ok(granted))
    }

    /// Asks the user, tells the master it is asking, and waits for the
    /// answer; `Err(reason)` if the user refused or did not answer.
    async fn ask_user<P: Peer>(
        &self,
        peer: &mut P,
        name: &str,
        granted: Level,
    ) -> Result<std::result::Result<(), String>> {
        let key = peer.info().key;
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
                master_name: name.to_string(),
                master: key,
                level: granted,
                since: Instant::now(),
                answer,
            });
        }
        tracing::info!(
            "master {name} ({}) asks to dominate this zombie at level {granted}: answer with `zos accept` or `zos refuse` (or in the tray) within {} s",
            key.fingerprint(),
            CONSENT_TIMEOUT.as_secs()
        );
        let asked = peer
            .send(&Message::Asking {
                timeout_s: CONSENT_TIMEOUT.as_secs() as u32,
            })
            .await;
        let answer = match asked {
            Ok(()) => tokio::time::timeout(CONSENT_TIMEOUT, decision).await,
            Err(e) => {
                self.asking.lock().take();
                return Err(e.into());
            }
        };
        self.asking.lock().take();
        match answer {
            Ok(Ok(true)) => {
                tracing::info!("the user accepted {name}");
                Ok(Ok(()))
            }
            Ok(Ok(false)) | Ok(Err(_)) => {
                tracing::info!("the user refused {name}");
                Ok(Err(format!("the user of {} refused", self.cfg.name)))
            }
            Err(_) => {
                tracing::info!("nobody answered {name}'s request");
                Ok(Err(format!(
                    "nobody on {} answered within {} s",
                    self.cfg.name,
                    CONSENT_TIMEOUT.as_secs()
                )))
            }
        }
    }

    /// Refuses while another master (or this one) dominates.
    fn check_free(&self, master: &PublicKey) -> std::result::Result<(), String> {
        match self.dominion.lock().as_ref() {
            None => Ok(()),
            Some(d) if d.master == *master => Err(format!(
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
}
