//! The domination hand-shake, master side: `Dominate`, the zombie's
//! `Asking` (its user decides) and `Dominated` or a refusal, its mount of
//! the shared folders, and the task list with the viewers it opened. Every
//! wait has a deadline; the user's thinking time is bounded by what the
//! zombie announced (at most [`MAX_CONSENT_WAIT`]) and is not part of the
//! set-up time reported.
//!
//! The breakdown (DESIGN.md's tm = zt + xt + Σ pt): zt = connect +
//! authenticate + accept, fs = the shared folders' mount, xt = the display
//! set-up (task list announced, viewers opened).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use zos_netproto::Level;
use zos_netproto::control::Reply;
use zos_netproto::wire::Message;

use super::{Dominion, Dominions, PairedZombie};
use crate::control_server::Replies;
use crate::error::{DaemonError, Result};
use crate::limits::{ANSWER_TIMEOUT, CONSENT_MARGIN, MAX_CONSENT_WAIT, SET_UP_TIMEOUT};
use crate::peer::{Peer, expect_within, unexpected};

/// The outcome of a successful domination.
pub struct Dominated {
    /// The name the zombie was paired under.
    pub name: String,
    /// The level granted.
    pub level: Level,
    /// Each part of the set-up and how long it took.
    pub timing: Vec<(String, Duration)>,
}

/// Where the progress of a domination is told (the `zos dominate` client).
pub trait Progress: Send {
    /// Tells one step; fails if nobody listens any more.
    fn progress(&mut self, message: String) -> impl Future<Output = Result<()>> + Send;

    /// Tells that the zombie (`zombie`, as paired) asks its user, who has
    /// `timeout` to answer.
    fn asking(
        &mut self,
        zombie: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Cancelled when whoever asked for the domination gives up.
    fn withdrawn(&self) -> CancellationToken;
}

impl Progress for Replies {
    async fn progress(&mut self, message: String) -> Result<()> {
        self.send(&Reply::Progress { message }).await
    }

    async fn asking(&mut self, zombie: &str, timeout: Duration) -> Result<()> {
        self.send(&Reply::Asking {
            zombie: zombie.to_string(),
            timeout_s: timeout.as_secs(),
        })
        .await
    }

    fn withdrawn(&self) -> CancellationToken {
        self.gone.clone()
    }
}

/// A record of the progress told, for tests: never withdrawn.
impl Progress for Vec<String> {
    async fn progress(&mut self, message: String) -> Result<()> {
        self.push(message);
        Ok(())
    }

    async fn asking(&mut self, zombie: &str, timeout: Duration) -> Result<()> {
        self.push(format!(
            "zombie {zombie} is asking its user to accept (up to {} s)",
            timeout.as_secs()
        ));
        Ok(())
    }

    fn withdrawn(&self) -> CancellationToken {
        CancellationToken::new()
    }
}

impl Dominions {
    /// Dominates `zombie` (paired, welcomed, at the other end of `peer`)
    /// at `level`. `zt_start` is when the connection attempt began.
    pub async fn start<P: Peer + 'static>(
        self: &Arc<Self>,
        mut peer: P,
        zombie: PairedZombie,
        level: Level,
        zt_start: Instant,
        out: &mut impl Progress,
    ) -> Result<Dominated> {
        let name = zombie.name.clone();
        if let Some(l) = self.level_of(&zombie.key) {
            peer.close();
            return Err(DaemonError::User(format!(
                "{name} is already dominated by this master (level {l}); `zos release {name}` first to change it"
            )));
        }
        let result = self
            .hand_shake(&mut peer, &zombie.name, level, zt_start, out)
            .await;
        let (granted, timing) = match result {
            Ok(done) => done,
            Err(e) => {
                peer.close();
                return Err(e);
            }
        };
        let release = CancellationToken::new();
        let (ended_tx, ended_rx) = oneshot::channel();
        let key = zombie.key;
        self.live.lock().insert(
            key,
            Dominion {
                zombie: zombie.clone(),
                level: granted,
                addr: peer.info().addr,
                started: Instant::now(),
                release: release.clone(),
                ended: Some(ended_rx),
                mux: peer.mux().cloned(),
            },
        );
        tracing::info!(
            "dominating {name} ({}) at level {granted}: {}",
            key.fingerprint(),
            timing
                .iter()
                .map(|(part, d)| format!("{part} {:.1} ms", d.as_secs_f64() * 1e3))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let me = self.clone();
        let kept = zombie.clone();
        tokio::spawn(async move {
            let ended = me.drive(peer, &kept, release).await;
            me.live.lock().remove(&key);
            tracing::info!("domination of {name} ended: {}", ended.why);
            // Migrants still there are lost with it (until it comes back with them).
            crate::migration::zombie_gone(me.tasks.migrants(), &key);
            let _ = ended_tx.send(());
            if ended.by_zombie
                && let Some(f) = me.on_zombie_ended.lock().as_ref()
            {
                f(kept);
            }
        });
        Ok(Dominated {
            name: zombie.name,
            level: granted,
            timing,
        })
    }

    /// Runs the exchange up to the viewers; returns the level granted and
    /// the breakdown.
    async fn hand_shake<P: Peer>(
        &self,
        peer: &mut P,
        name: &str,
        level: Level,
        zt_start: Instant,
        out: &mut impl Progress,
    ) -> Result<(Level, Vec<(String, Duration)>)> {
        let who = &format!("zombie {name}");
        peer.send(&Message::Dominate { level }).await?;
        let mut waited = Duration::ZERO;
        let answer = match expect_within(peer, ANSWER_TIMEOUT, who, "Dominate").await {
            Ok(Message::Asking { timeout_s }) => {
                let asked_at = Instant::now();
                let limit = Duration::from_secs(timeout_s.into()).min(MAX_CONSENT_WAIT);
                out.asking(name, limit).await?;
                let withdrawn = out.withdrawn();
                let decision = expect_within(
                    peer,
                    limit + CONSENT_MARGIN,
                    who,
                    "Dominate (its user's decision)",
                );
                let answer = tokio::select! {
                    answer = decision => answer,
                    _ = withdrawn.cancelled() => {
                        tracing::info!("the request to dominate {name} was withdrawn while its user was asked");
                        let _ = peer
                            .send(&Message::Bye {
                                reason: "the master withdrew its request".into(),
                            })
                            .await;
                        return Err(DaemonError::User(format!(
                            "the request to dominate {name} was withdrawn"
                        )));
                    }
                };
                waited = asked_at.elapsed();
                answer
            }
            other => other,
        };
        let granted = match answer {
            Ok(Message::Dominated { level }) => level,
            Ok(other) => return Err(unexpected(who, &other, "Dominate")),
            Err(DaemonError::Net(zos_netproto::Error::Refused(reason))) => {
                return Err(DaemonError::User(format!(
                    "{who} refused domination: {reason}"
                )));
            }
            Err(e) => return Err(e),
        };
        // The user's thinking time is not part of the set-up.
        let zt = zt_start.elapsed().saturating_sub(waited);
        if waited > Duration::ZERO {
            tracing::info!("{who}'s user accepted after {:.1} s", waited.as_secs_f64());
        }

        // The file-system mount: the zombie opens the file service's
        // channel (served by the peer's channel policy meanwhile), mounts,
        // and says how it went.
        let fs_start = Instant::now();
        let mount = expect_within(peer, SET_UP_TIMEOUT, who, "Dominated with its mount").await?;
        let message = match mount {
            Message::Mounted { exports, at } => {
                tracing::info!("{who} mounted {} export(s) at {at}", exports.len());
                match exports.len() {
                    0 => format!("{who}: no folder is exported to it (`zos export PATH`)"),
                    _ => format!("{who}: shared folders {} at {at}", exports.join(", ")),
                }
            }
            Message::MountFailed { reason } => {
                tracing::warn!("{who} could not mount the shared folders: {reason}");
                format!("{who} could not mount the shared folders: {reason}")
            }
            other => return Err(unexpected(who, &other, "its mount")),
        };
        out.progress(message).await?;
        let fs = fs_start.elapsed();

        // The display set-up: the task list, and the zombie's viewers.
        let xt_start = Instant::now();
        peer.send(&Message::Tasks {
            tasks: self.tasks.summaries(),
        })
        .await?;
        match expect_within(peer, SET_UP_TIMEOUT, who, "the task list").await? {
            Message::Shown { viewers } => tracing::info!("{who} opened {viewers} viewer(s)"),
            other => return Err(unexpected(who, &other, "the task list")),
        }
        let xt = xt_start.elapsed();
        Ok((
            granted,
            vec![("zt".into(), zt), ("fs".into(), fs), ("xt".into(), xt)],
        ))
    }
}
