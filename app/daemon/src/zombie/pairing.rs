//! The zombie's side of pairing: the SPAKE2 exchange bound to both static
//! keys and the session's handshake hash, under the rate limits of
//! [`super::attempts`].

use tokio::time::Instant;
use zos_netproto::Level;
use zos_netproto::control::PairCodeInfo;
use zos_netproto::pairing::{self, PendingCode, Side};
use zos_netproto::wire::Message;

use super::{Zombie, variant};
use crate::error::{DaemonError, Result};
use crate::limits::PAIR_STEP_TIMEOUT;
use crate::peer::Peer;

/// How a pairing attempt ended (a broken session is an `Err`).
pub(super) enum PairOutcome {
    /// Paired at this level, under this name.
    Paired(Level, String),
    /// Refused or failed; the master may try again on this session.
    Failed,
    /// Refused by the rate limit; the session ends.
    RateLimited,
}

/// The longest master name kept (longer ones are cut).
const MAX_NAME: usize = 64;

impl Zombie {
    /// Runs the zombie's side of pairing for a `PairStart` from the master
    /// at the other end of `peer`, which calls itself `master_name`.
    pub(super) async fn pair<P: Peer>(
        &self,
        peer: &mut P,
        master_name: &str,
        spake: &[u8],
    ) -> Result<PairOutcome> {
        let info = peer.info().clone();
        let ip = info.addr.ip();
        let admitted = self.attempts.lock().admit(ip, &info.key, Instant::now());
        if let Err(limited) = admitted {
            if let Some(left_out) = self.attempts.lock().log_refusal(Instant::now()) {
                tracing::warn!(
                    "pairing attempt by {} from {ip} refused: {} ({left_out} more refusals not logged)",
                    info.key.fingerprint(),
                    limited.reason()
                );
            }
            peer.send(&Message::PairFailed {
                reason: limited.reason(),
            })
            .await?;
            return Ok(PairOutcome::RateLimited);
        }
        let taken: std::result::Result<(String, Level), String> = {
            let mut pending = self.pending.lock();
            match pending.as_mut() {
                None => Err(format!(
                    "no pairing code is active on {}: run `zos pair-code` there first",
                    self.cfg.name
                )),
                Some(code) => match code.take_attempt() {
                    Ok(()) => Ok((code.code().to_string(), code.level())),
                    Err(e) => {
                        *pending = None;
                        Err(e.to_string())
                    }
                },
            }
        };
        let (code, level) = match taken {
            Ok(x) => x,
            Err(reason) => return self.pair_failed(peer, reason, "no usable code").await,
        };
        let me = self.identity.public();
        let (key, challenge) = match pairing::zombie_respond(&code, &info.key, &me, spake) {
            Ok(x) => x,
            Err(e) => {
                return self
                    .pair_failed(peer, e.to_string(), "malformed pairing message")
                    .await;
            }
        };
        peer.send(&Message::PairChallenge { spake: challenge })
            .await?;
        let confirm = match tokio::time::timeout(PAIR_STEP_TIMEOUT, peer.recv()).await {
            Ok(confirm) => confirm?,
            Err(_) => {
                self.note_failure(peer, "no confirmation in time");
                return Err(DaemonError::User(
                    "master did not confirm pairing in time".into(),
                ));
            }
        };
        let Message::PairConfirm { mac } = confirm else {
            self.note_failure(peer, "broke off the exchange");
            return Err(DaemonError::User(format!(
                "expected PairConfirm, got {}",
                variant(&confirm)
            )));
        };
        if !pairing::verify_confirmation(&key, Side::Master, &info.handshake_hash, &mac) {
            let left = {
                let mut pending = self.pending.lock();
                let left = pending.as_ref().map(|c| c.attempts_left()).unwrap_or(0);
                if left == 0 {
                    *pending = None;
                }
                left
            };
            tracing::warn!(
                "pairing attempt by {} from {ip} with a wrong code ({left} attempts left)",
                info.key.fingerprint()
            );
            let reason = if left == 0 {
                "wrong code; it was the third try, so the code is no longer valid: make a new one with `zos pair-code`".to_string()
            } else {
                format!(
                    "wrong code ({left} {} left)",
                    if left == 1 { "attempt" } else { "attempts" }
                )
            };
            return self.pair_failed(peer, reason, "wrong code").await;
        }
        let name = clean_name(master_name);
        self.trust.lock().insert(&info.key, &name, level)?;
        *self.pending.lock() = None;
        tracing::info!(
            "paired with master {name} ({}) at {ip}, level {level}",
            info.key.fingerprint()
        );
        let mac = pairing::confirmation(&key, Side::Zombie, &info.handshake_hash);
        peer.send(&Message::PairDone { level, mac }).await?;
        Ok(PairOutcome::Paired(level, name))
    }

    /// Tells the master why pairing failed, and records it for the user.
    async fn pair_failed<P: Peer>(
        &self,
        peer: &mut P,
        reason: String,
        why: &str,
    ) -> Result<PairOutcome> {
        self.note_failure(peer, why);
        peer.send(&Message::PairFailed { reason }).await?;
        Ok(PairOutcome::Failed)
    }

    fn note_failure<P: Peer>(&self, peer: &P, why: &str) {
        let info = peer.info();
        self.attempts
            .lock()
            .note_failure(info.addr.ip(), &info.key, why, Instant::now());
    }
}

/// A master's name as it is stored: printable, at most [`MAX_NAME`]
/// characters.
pub(super) fn clean_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME)
        .collect();
    if cleaned.trim().is_empty() {
        "unnamed".to_string()
    } else {
        cleaned
    }
}

pub(super) fn code_info(c: &PendingCode) -> PairCodeInfo {
    PairCodeInfo {
        code: c.code().to_string(),
        level: c.level(),
        expires_in_s: c.remaining().as_secs(),
        attempts_left: c.attempts_left(),
    }
}
