//! One session with a master: what it may ask, and how long it may stay.
//!
//! After `Welcome`, an unpaired master may only pair; anything else is
//! refused and ends the session. Every request re-checks the trust store.
//! A session ends when its master has said nothing for
//!
//! - [`UNPAIRED_IDLE_TIMEOUT`] while unpaired (and at the latest
//!   [`UNPAIRED_SESSION_LIFETIME`] after it began),
//! - [`PAIRED_IDLE_TIMEOUT`] while paired but not dominating,
//! - [`LEASE`] while dominating: the lease has run out (cable pulled), and
//!   the zombie lets go of everything the domination set up.
//!
//! When the zombie's user ends the domination ([`super::release`]), the
//! session asks the master to release it, and lets go by itself if the
//! master has not within [`USER_RELEASE_WAIT`].

use std::sync::Arc;
use std::time::Instant;

use tokio::time::Instant as Clock;
use tokio_util::sync::CancellationToken;
use zos_netproto::Level;
use zos_netproto::wire::Message;

use super::pairing::PairOutcome;
use super::{LiveSession, Zombie, variant};
use crate::admission::Ticket;
use crate::error::Result;
use crate::limits::{
    LEASE, PAIRED_IDLE_TIMEOUT, UNPAIRED_IDLE_TIMEOUT, UNPAIRED_SESSION_LIFETIME, USER_RELEASE_WAIT,
};
use crate::peer::Peer;

/// Why a session stops waiting for its master.
enum Wake {
    Message(Message),
    Cancelled,
    Quiet(Quiet),
    /// The zombie's user ended the domination.
    UserRelease,
    /// … and the master has not released the zombie in time.
    UserReleaseOverdue,
}

/// Which silence ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Quiet {
    Lease,
    PairedIdle,
    UnpairedIdle,
    UnpairedLifetime,
}

impl Zombie {
    /// Runs a session with the master at the other end of `peer` until it
    /// ends, then forgets it and lets go of its domination, if it held one.
    pub(super) async fn session<P: Peer>(
        self: &Arc<Self>,
        peer: &mut P,
        ticket: &Ticket,
    ) -> Result<()> {
        let info = peer.info().clone();
        let mut level = self.trusted_level(&info.key);
        ticket.set_paired(level.is_some());
        peer.send(&Message::Welcome { level }).await?;
        let cancel = CancellationToken::new();
        let id = self.next_session_id();
        let name = self
            .paired_name(&info.key)
            .unwrap_or_else(|| info.announced_name.clone());
        self.sessions.lock().push(LiveSession {
            id,
            master: info.key,
            master_name: name.clone(),
            paired: level.is_some(),
            addr: info.addr,
            started: Instant::now(),
            cancel: cancel.clone(),
        });
        match level {
            Some(l) => tracing::info!(
                "session {id} from master {name} ({}) at {}, paired, level {l}",
                info.key.fingerprint(),
                info.addr
            ),
            None => tracing::info!(
                "session {id} from an unpaired master calling itself {:?} ({}) at {}",
                info.announced_name,
                info.key.fingerprint(),
                info.addr
            ),
        }
        let result = self
            .session_loop(id, peer, ticket, &mut level, &cancel)
            .await;
        self.sessions.lock().retain(|s| s.id != id);
        if let Some(dominion) = self.take_dominion(id) {
            let why = match &result {
                Ok(()) => "the session ended".to_string(),
                Err(e) => format!("the session was lost ({e})"),
            };
            // Its migrants wait here, stopped, for it to come back.
            self.moves.master_gone(&dominion.master);
            self.let_go(dominion, &why).await;
        }
        tracing::info!("session {id} ended");
        result
    }

    async fn session_loop<P: Peer>(
        &self,
        id: u64,
        peer: &mut P,
        ticket: &Ticket,
        level: &mut Option<Level>,
        cancel: &CancellationToken,
    ) -> Result<()> {
        let started = Clock::now();
        let mut last_heard = started;
        // When the master must have released the zombie its user let go of.
        let mut user_release_by: Option<Clock> = None;
        loop {
            let dominated = self.dominated_by(id);
            if !dominated {
                user_release_by = None;
            }
            let (quiet, deadline) = quiet_deadline(dominated, level.is_some(), started, last_heard);
            let release_asked = match user_release_by {
                None => self.user_release_token(id),
                Some(_) => None,
            };
            let wake = tokio::select! {
                _ = cancel.cancelled() => Wake::Cancelled,
                _ = tokio::time::sleep_until(deadline) => Wake::Quiet(quiet),
                _ = cancelled(release_asked.as_ref()) => Wake::UserRelease,
                _ = sleep_until(user_release_by) => Wake::UserReleaseOverdue,
                m = peer.recv() => Wake::Message(m?),
            };
            let msg = match wake {
                Wake::Message(msg) => msg,
                Wake::Cancelled => {
                    let reason = if self.shutdown.is_cancelled() {
                        "the zombie is shutting down".to_string()
                    } else {
                        format!("this master's key was revoked on {}", self.cfg.name)
                    };
                    let _ = peer.send(&Message::Bye { reason }).await;
                    return Ok(());
                }
                Wake::UserRelease => {
                    let reason = format!("the user of {} ended the domination", self.cfg.name);
                    tracing::info!("session {id}: {reason}; asking the master to release it");
                    peer.send(&Message::Release { reason }).await?;
                    user_release_by = Some(Clock::now() + USER_RELEASE_WAIT);
                    continue;
                }
                Wake::UserReleaseOverdue => {
                    let reason = format!(
                        "the user of {} ended the domination and the master did not release it within {} s",
                        self.cfg.name,
                        USER_RELEASE_WAIT.as_secs()
                    );
                    if let Some(dominion) = self.take_dominion(id) {
                        self.let_go(dominion, &reason).await;
                    }
                    let _ = peer.send(&Message::Bye { reason }).await;
                    return Ok(());
                }
                Wake::Quiet(Quiet::Lease) => {
                    tracing::warn!(
                        "session {id}: the dominating master said nothing for {} s; its lease ended",
                        LEASE.as_secs()
                    );
                    peer.abort("lease expired");
                    return Ok(());
                }
                Wake::Quiet(quiet) => {
                    let reason = match quiet {
                        Quiet::UnpairedLifetime => format!(
                            "still unpaired after {} s",
                            UNPAIRED_SESSION_LIFETIME.as_secs()
                        ),
                        _ => format!("idle for {} s", last_heard.elapsed().as_secs()),
                    };
                    tracing::info!("session {id}: {reason}; ending it");
                    let _ = peer.send(&Message::Bye { reason }).await;
                    return Ok(());
                }
            };
            last_heard = Clock::now();
            match msg {
                Message::Ping { seq } => {
                    // The trust store is authoritative on every request.
                    *level = self.trusted_level(&peer.info().key);
                    if level.is_none() {
                        peer.send(&Message::Refused {
                            reason: self.not_paired(),
                        })
                        .await?;
                        return Ok(());
                    }
                    peer.send(&Message::Pong { seq }).await?;
                }
                Message::PairStart { name, spake } => match self.pair(peer, &name, &spake).await? {
                    PairOutcome::Paired(granted, name) => {
                        *level = Some(granted);
                        ticket.set_paired(true);
                        if let Some(s) = self.sessions.lock().iter_mut().find(|s| s.id == id) {
                            s.paired = true;
                            s.master_name = name;
                        }
                    }
                    PairOutcome::Failed => {}
                    PairOutcome::RateLimited => return Ok(()),
                },
                Message::Dominate { level: asked } => {
                    *level = self.trusted_level(&peer.info().key);
                    match self.decide_domination(id, peer, asked, *level).await? {
                        Ok(granted) => {
                            peer.send(&Message::Dominated {
                                level: granted.level,
                            })
                            .await?;
                            self.mount_share(id, peer).await?;
                            self.open_zos_session(id, granted.level, peer.mux()).await;
                        }
                        Err(reason) => {
                            peer.send(&Message::Refused { reason }).await?;
                            return Ok(());
                        }
                    }
                }
                Message::Tasks { tasks } if dominated => {
                    let viewers = self.set_master_tasks(id, tasks);
                    peer.send(&Message::Shown { viewers }).await?;
                }
                Message::Release { reason } if dominated => {
                    if let Some(dominion) = self.take_dominion(id) {
                        // Nothing of the master stays: its migrants came home or end now.
                        self.moves.master_released(&dominion.master).await;
                        self.let_go(dominion, &format!("released by the master ({reason})"))
                            .await;
                    }
                    peer.send(&Message::Released).await?;
                }
                Message::Bye { .. } => return Ok(()),
                other => {
                    let reason = if level.is_none() {
                        self.not_paired()
                    } else {
                        format!("unexpected message {}", variant(&other))
                    };
                    peer.send(&Message::Refused { reason }).await?;
                    return Ok(());
                }
            }
        }
    }
}

/// Completes when `token` is cancelled; never without one.
async fn cancelled(token: Option<&CancellationToken>) {
    match token {
        Some(t) => t.cancelled().await,
        None => std::future::pending().await,
    }
}

/// Completes at `when`; never without one.
async fn sleep_until(when: Option<Clock>) {
    match when {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Which silence applies to a session now, and when it runs out.
fn quiet_deadline(
    dominated: bool,
    paired: bool,
    started: Clock,
    last_heard: Clock,
) -> (Quiet, Clock) {
    if dominated {
        (Quiet::Lease, last_heard + LEASE)
    } else if paired {
        (Quiet::PairedIdle, last_heard + PAIRED_IDLE_TIMEOUT)
    } else {
        let idle = last_heard + UNPAIRED_IDLE_TIMEOUT;
        let lifetime = started + UNPAIRED_SESSION_LIFETIME;
        if lifetime < idle {
            (Quiet::UnpairedLifetime, lifetime)
        } else {
            (Quiet::UnpairedIdle, idle)
        }
    }
}
