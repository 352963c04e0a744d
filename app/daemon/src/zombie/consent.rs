//! Whether a master may dominate this zombie: it must be paired, the
//! zombie free, and — unless the zombie accepts by itself — its user must
//! say yes within [`CONSENT_TIMEOUT`]: `zos accept` / `zos refuse`, the
//! tray, or the consent prompt the zombie opens on its user's desktop (a
//! window of ours and a desktop notification with Accept and Refuse, see
//! `zos consent-prompt`). One master at a time, at most at the level its
//! trust entry allows and never more than it asked for. A master that
//! leaves while its request waits (`Ctrl-C` on `zos dominate`) withdraws
//! it at once: the prompt closes.

use std::time::Instant;

use tokio::sync::oneshot;
use zos_netproto::control::AskInfo;
use zos_netproto::wire::Message;
use zos_netproto::{Level, PublicKey};

use super::Zombie;
use super::helpers::Helper;
use crate::error::{DaemonError, Result};
use crate::limits::CONSENT_TIMEOUT;
use crate::peer::Peer;

/// A domination request waiting for the user's answer.
pub(crate) struct Ask {
    master_name: String,
    master: PublicKey,
    level: Level,
    since: Instant,
    answer: oneshot::Sender<Decision>,
}

/// The user's answer to a domination request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Decision {
    /// Yes or no.
    pub accept: bool,
    /// Open a viewer for each of the master's shared apps.
    pub show_apps: bool,
}

/// A domination granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Granted {
    /// At what level.
    pub level: Level,
    /// Whether the user wants to see the master's apps.
    pub show_apps: bool,
}

/// The user's answer, unless the sender went or the time ran out.
type Answered = std::result::Result<
    std::result::Result<Decision, oneshot::error::RecvError>,
    tokio::time::error::Elapsed,
>;

/// What a wait for the user ended with.
enum Waited {
    Answer(Answered),
    Master(zos_netproto::Result<Message>),
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
    ) -> Result<std::result::Result<Granted, String>> {
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
        let mut show_apps = false;
        if !self.cfg.auto_accept {
            match self.ask_user(peer, &name, granted).await? {
                Ok(decision) => show_apps = decision.show_apps,
                Err(reason) => return Ok(Err(reason)),
            }
        }
        if let Err(reason) = self.check_free(&key) {
            return Ok(Err(reason));
        }
        let granted = Granted {
            level: granted,
            show_apps,
        };
        self.install_dominion(id, key, name, granted, peer.mux().cloned());
        Ok(Ok(granted))
    }

    /// Asks the user (with the consent prompt on its desktop, if it has
    /// one), tells the master it is asking, and waits for the answer;
    /// `Err(reason)` if the user refused or did not answer. A master that
    /// leaves meanwhile withdraws its request: the session ends at once.
    async fn ask_user<P: Peer>(
        &self,
        peer: &mut P,
        name: &str,
        granted: Level,
    ) -> Result<std::result::Result<Decision, String>> {
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
        let prompt = self.open_prompt();
        let asked = peer
            .send(&Message::Asking {
                timeout_s: CONSENT_TIMEOUT.as_secs() as u32,
            })
            .await;
        let waited = match asked {
            Ok(()) => tokio::select! {
                answer = tokio::time::timeout(CONSENT_TIMEOUT, decision) => Waited::Answer(answer),
                message = peer.recv() => Waited::Master(message),
            },
            Err(e) => {
                self.asking.lock().take();
                return Err(e.into());
            }
        };
        self.asking.lock().take();
        // The prompt also closes itself once nothing is asked any more.
        drop(prompt);
        let answer = match waited {
            Waited::Answer(answer) => answer,
            Waited::Master(message) => {
                let why = match message {
                    Ok(Message::Bye { reason }) => reason,
                    Ok(other) => format!("it sent {} while waiting", super::variant(&other)),
                    Err(e) => e.to_string(),
                };
                tracing::info!("master {name} withdrew its request ({why})");
                return Err(DaemonError::User(format!(
                    "master {name} withdrew its request to dominate ({why})"
                )));
            }
        };
        match answer {
            Ok(Ok(decision)) if decision.accept => {
                tracing::info!(
                    "the user accepted {name}{}",
                    if decision.show_apps {
                        ", showing its apps"
                    } else {
                        ""
                    }
                );
                Ok(Ok(decision))
            }
            Ok(Ok(_)) | Ok(Err(_)) => {
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

    /// The consent prompt on the user's desktop, if it has one.
    fn open_prompt(&self) -> Option<Helper> {
        if !self.cfg.desktop.any() {
            return None;
        }
        Helper::spawn(
            &self.cfg.paths.home,
            &["consent-prompt"],
            "consent prompt".into(),
        )
        .inspect_err(|e| tracing::warn!("cannot open the consent prompt: {e}"))
        .ok()
    }

    /// The user's answer to the waiting request; an error if none waits.
    pub(super) fn answer(&self, decision: Decision) -> std::result::Result<String, String> {
        let ask = self
            .asking
            .lock()
            .take()
            .ok_or_else(|| "no domination request is waiting".to_string())?;
        let name = ask.master_name.clone();
        ask.answer
            .send(decision)
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
