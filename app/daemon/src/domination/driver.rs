//! The kept session of a dominated zombie: every change of the task list
//! is announced, a ping every [`KEEPALIVE`] keeps the zombie's lease, a
//! zombie silent for [`SILENCE_LIMIT`] is given up, and on release (or
//! shutdown) `Release` is sent and `Released` awaited for at most
//! [`RELEASE_TIMEOUT`]. A zombie whose user ended the domination asks for
//! the same release by sending `Release` itself: the master runs its
//! release (`on_release_asked`, which brings its migrants home first), which
//! ends up here as for `zos release`. The channels the zombie
//! opens meanwhile are served by the peer's channel policy (see
//! [`super::channels`]).

use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use zos_netproto::wire::Message;

use super::{Dominions, PairedZombie};
use crate::limits::{KEEPALIVE, RELEASE_TIMEOUT, SILENCE_LIMIT};
use crate::peer::Peer;
use crate::zombie::variant;

/// How a kept session ended.
pub(super) struct Ended {
    /// Why, in words.
    pub why: String,
    /// The zombie ended it itself (`Bye`).
    pub by_zombie: bool,
}

impl Ended {
    fn ours(why: String) -> Ended {
        Ended {
            why,
            by_zombie: false,
        }
    }
}

impl Dominions {
    /// Keeps one dominated session until it ends; returns how it ended.
    pub(super) async fn drive<P: Peer>(
        &self,
        mut peer: P,
        zombie: &PairedZombie,
        release: CancellationToken,
    ) -> Ended {
        let name = zombie.name.as_str();
        let mut release_asked = false;
        let mut changes = self.tasks.subscribe();
        let mut keepalive = tokio::time::interval(KEEPALIVE);
        keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        let mut seq = 0u64;
        let reason = loop {
            tokio::select! {
                _ = release.cancelled() => break "released by the user".to_string(),
                _ = self.shutdown.cancelled() => break "the master is shutting down".to_string(),
                changed = changes.changed() => {
                    if changed.is_err() {
                        break "the task registry closed".to_string();
                    }
                    let tasks = self.tasks.summaries();
                    if let Err(e) = peer.send(&Message::Tasks { tasks }).await {
                        return Ended::ours(format!("session lost: {e}"));
                    }
                }
                _ = keepalive.tick() => {
                    if last_heard.elapsed() > SILENCE_LIMIT {
                        peer.abort("the zombie stopped answering");
                        return Ended::ours(format!("{name} said nothing for {} s", SILENCE_LIMIT.as_secs()));
                    }
                    seq += 1;
                    if let Err(e) = peer.send(&Message::Ping { seq }).await {
                        return Ended::ours(format!("session lost: {e}"));
                    }
                }
                message = peer.recv() => {
                    last_heard = Instant::now();
                    match message {
                        Ok(Message::Pong { .. } | Message::Shown { .. }) => {}
                        Ok(Message::Bye { reason }) => {
                            peer.close();
                            return Ended {
                                why: format!("{name} ended it: {reason}"),
                                by_zombie: true,
                            };
                        }
                        // Its user ended the domination: the master's release.
                        Ok(Message::Release { reason }) if !release_asked => {
                            release_asked = true;
                            tracing::info!("released at {name}'s request: {reason}");
                            match self.on_release_asked.lock().as_ref() {
                                Some(release) => release(zombie.clone(), reason),
                                None => break format!("released at {name}'s request: {reason}"),
                            }
                        }
                        Ok(other) => {
                            tracing::warn!("unexpected {} from dominated {name}", variant(&other));
                        }
                        Err(e) => return Ended::ours(format!("session lost: {e}")),
                    }
                }
            }
        };
        let clean = release_and_wait(&mut peer, &reason).await;
        peer.close();
        Ended::ours(if clean {
            reason
        } else {
            format!(
                "{reason} (the zombie did not confirm its clean-up within {} s)",
                RELEASE_TIMEOUT.as_secs()
            )
        })
    }
}

/// Sends `Release` and waits for `Released`; whether it came in time.
async fn release_and_wait<P: Peer>(peer: &mut P, reason: &str) -> bool {
    let _ = peer
        .send(&Message::Release {
            reason: reason.to_string(),
        })
        .await;
    let wait = async {
        loop {
            match peer.recv().await {
                Ok(Message::Released) => return true,
                Ok(_) => continue,
                Err(_) => return false,
            }
        }
    };
    matches!(tokio::time::timeout(RELEASE_TIMEOUT, wait).await, Ok(true))
}
