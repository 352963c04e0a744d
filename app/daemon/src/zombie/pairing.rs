//! The zombie's side of pairing: the SPAKE2 exchange bound to both static
//! keys and the session's handshake hash.

use zos_netproto::Level;
use zos_netproto::control::PairCodeInfo;
use zos_netproto::pairing::{self, PendingCode, Side};
use zos_netproto::session::Session;
use zos_netproto::wire::Message;

use super::{PAIR_STEP_TIMEOUT, Zombie, variant};
use crate::error::{DaemonError, Result};

impl Zombie {
    /// Runs the zombie's side of pairing; returns the level granted.
    pub(super) async fn pair(
        &self,
        session: &mut Session,
        master_name: &str,
        spake: &[u8],
    ) -> Result<Option<Level>> {
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
            Err(reason) => {
                session.send(&Message::PairFailed { reason }).await?;
                return Ok(None);
            }
        };
        let me = self.identity.public();
        let (key, challenge) = match pairing::zombie_respond(&code, &session.remote, &me, spake) {
            Ok(x) => x,
            Err(e) => {
                session
                    .send(&Message::PairFailed {
                        reason: e.to_string(),
                    })
                    .await?;
                return Ok(None);
            }
        };
        session
            .send(&Message::PairChallenge { spake: challenge })
            .await?;
        let confirm = tokio::time::timeout(PAIR_STEP_TIMEOUT, session.recv())
            .await
            .map_err(|_| DaemonError::User("master did not confirm pairing in time".into()))??;
        let Message::PairConfirm { mac } = confirm else {
            return Err(DaemonError::User(format!(
                "expected PairConfirm, got {}",
                variant(&confirm)
            )));
        };
        if !pairing::verify_confirmation(&key, Side::Master, &session.handshake_hash, &mac) {
            let left = {
                let mut pending = self.pending.lock();
                let left = pending.as_ref().map(|c| c.attempts_left()).unwrap_or(0);
                if left == 0 {
                    *pending = None;
                }
                left
            };
            tracing::warn!(
                "pairing attempt by {} with a wrong code ({left} attempts left)",
                session.remote.fingerprint()
            );
            let reason = if left == 0 {
                "wrong code; it was the third try, so the code is no longer valid: make a new one with `zos pair-code`".to_string()
            } else {
                format!(
                    "wrong code ({left} {} left)",
                    if left == 1 { "attempt" } else { "attempts" }
                )
            };
            session.send(&Message::PairFailed { reason }).await?;
            return Ok(None);
        }
        self.trust
            .lock()
            .insert(&session.remote, master_name, level)?;
        *self.pending.lock() = None;
        tracing::info!(
            "paired with master {master_name} ({}), level {level}",
            session.remote.fingerprint()
        );
        let mac = pairing::confirmation(&key, Side::Zombie, &session.handshake_hash);
        session.send(&Message::PairDone { level, mac }).await?;
        Ok(Some(level))
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
