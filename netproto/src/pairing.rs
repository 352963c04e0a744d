//! Pairing a master with a zombie through a short one-time code.
//!
//! The zombie shows a 6-digit code; its user reads it to the master's user,
//! who types it. The code is never used as a key: both sides run SPAKE2 with
//! it inside an already-established Noise session, with the two static public
//! keys as SPAKE2 identities, and then prove to each other that they derived
//! the same key with an HMAC over the Noise handshake hash. A code overheard
//! on the wire (it never crosses it) or seen on screen is useless for pairing
//! any other key once used, a guess costs one of three attempts, and an
//! active attacker learns nothing to test guesses offline.
//!
//! ```text
//! master                                   zombie
//!   PairStart{name, spake_A}      ──────▶   (uses one attempt)
//!                                 ◀──────   PairChallenge{spake_B}
//!   PairConfirm{mac_M}            ──────▶   verify mac_M → trust store
//!                                 ◀──────   PairDone{level, mac_Z} | PairFailed
//!   verify mac_Z → zombies.toml
//! ```

use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use rand::Rng;
use sha2::Sha256;
use spake2::{Ed25519Group, Identity as SpakeId, Password, Spake2};

use crate::error::{Error, Result};
use crate::identity::PublicKey;
use crate::trust::Level;

/// How long a code stays valid.
pub const CODE_LIFETIME: Duration = Duration::from_secs(120);
/// Attempts a code allows.
pub const MAX_ATTEMPTS: u32 = 3;

/// A code shown on the zombie, waiting for a master.
#[derive(Debug, Clone)]
pub struct PendingCode {
    code: String,
    level: Level,
    expires: Instant,
    attempts: u32,
}

impl PendingCode {
    /// Draws a fresh random 6-digit code granting `level`.
    pub fn issue(level: Level) -> Self {
        Self::issue_for(level, CODE_LIFETIME)
    }

    fn issue_for(level: Level, lifetime: Duration) -> Self {
        let n: u32 = rand::rngs::OsRng.gen_range(0..1_000_000);
        PendingCode {
            code: format!("{n:06}"),
            level,
            expires: Instant::now() + lifetime,
            attempts: 0,
        }
    }

    /// The code to show.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The level it grants.
    pub fn level(&self) -> Level {
        self.level
    }

    /// Time left before it expires.
    pub fn remaining(&self) -> Duration {
        self.expires.saturating_duration_since(Instant::now())
    }

    /// Attempts still allowed.
    pub fn attempts_left(&self) -> u32 {
        MAX_ATTEMPTS.saturating_sub(self.attempts)
    }

    /// Whether the code can still be tried.
    pub fn usable(&self) -> bool {
        self.remaining() > Duration::ZERO && self.attempts < MAX_ATTEMPTS
    }

    /// Spends one attempt; fails if none is left or the code expired.
    pub fn take_attempt(&mut self) -> Result<()> {
        if self.remaining() == Duration::ZERO {
            return Err(Error::Pairing(
                "the pairing code has expired; make a new one".into(),
            ));
        }
        if self.attempts >= MAX_ATTEMPTS {
            return Err(Error::Pairing(
                "the pairing code was tried 3 times and is no longer valid; make a new one".into(),
            ));
        }
        self.attempts += 1;
        Ok(())
    }
}

/// The master's half of a pairing in progress.
pub struct MasterPairing {
    state: Spake2<Ed25519Group>,
}

/// Starts the master's side: returns its state and the SPAKE2 message to send.
pub fn master_start(
    code: &str,
    master: &PublicKey,
    zombie: &PublicKey,
) -> (MasterPairing, Vec<u8>) {
    let (state, msg) = Spake2::<Ed25519Group>::start_a(
        &Password::new(code.as_bytes()),
        &SpakeId::new(&master.0),
        &SpakeId::new(&zombie.0),
    );
    (MasterPairing { state }, msg)
}

impl MasterPairing {
    /// Finishes with the zombie's message; returns the shared key.
    pub fn finish(self, zombie_msg: &[u8]) -> Result<Vec<u8>> {
        self.state
            .finish(zombie_msg)
            .map_err(|e| Error::Pairing(format!("bad SPAKE2 message from zombie: {e:?}")))
    }
}

/// The zombie's side: answers the master's message; returns the shared key
/// and the message to send back.
pub fn zombie_respond(
    code: &str,
    master: &PublicKey,
    zombie: &PublicKey,
    master_msg: &[u8],
) -> Result<(Vec<u8>, Vec<u8>)> {
    let (state, msg) = Spake2::<Ed25519Group>::start_b(
        &Password::new(code.as_bytes()),
        &SpakeId::new(&master.0),
        &SpakeId::new(&zombie.0),
    );
    let key = state
        .finish(master_msg)
        .map_err(|e| Error::Pairing(format!("bad SPAKE2 message from master: {e:?}")))?;
    Ok((key, msg))
}

/// Which side a confirmation MAC comes from.
#[derive(Clone, Copy)]
pub enum Side {
    /// The master's proof.
    Master,
    /// The zombie's proof.
    Zombie,
}

/// The confirmation MAC: HMAC-SHA256(key, side label ‖ handshake hash).
pub fn confirmation(key: &[u8], side: Side, handshake_hash: &[u8; 32]) -> Vec<u8> {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(match side {
        Side::Master => b"zos pairing: master confirms",
        Side::Zombie => b"zos pairing: zombie confirms",
    });
    mac.update(handshake_hash);
    mac.finalize().into_bytes().to_vec()
}

/// Checks a confirmation MAC in constant time.
pub fn verify_confirmation(key: &[u8], side: Side, handshake_hash: &[u8; 32], mac: &[u8]) -> bool {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(match side {
        Side::Master => b"zos pairing: master confirms",
        Side::Zombie => b"zos pairing: zombie confirms",
    });
    m.update(handshake_hash);
    m.verify_slice(mac).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    /// Whether the zombie (key `kz`) accepts the master's (key `km`) proof.
    fn master_proof_accepted(kz: &[u8], km: &[u8], h: &[u8; 32]) -> bool {
        verify_confirmation(kz, Side::Master, h, &confirmation(km, Side::Master, h))
    }

    #[test]
    fn same_code_agrees_wrong_code_does_not() {
        let m = Identity::generate().unwrap().public();
        let z = Identity::generate().unwrap().public();
        let h = [7u8; 32];
        let (state, a) = master_start("123456", &m, &z);
        let (kz, b) = zombie_respond("123456", &m, &z, &a).unwrap();
        let km = state.finish(&b).unwrap();
        assert!(master_proof_accepted(&kz, &km, &h));
        assert!(!verify_confirmation(
            &kz,
            Side::Zombie,
            &h,
            &confirmation(&km, Side::Master, &h)
        ));

        let (state, a) = master_start("123457", &m, &z);
        let (kz, b) = zombie_respond("123456", &m, &z, &a).unwrap();
        let km = state.finish(&b).unwrap();
        assert!(!master_proof_accepted(&kz, &km, &h));
    }

    #[test]
    fn code_binds_both_keys() {
        let m = Identity::generate().unwrap().public();
        let other = Identity::generate().unwrap().public();
        let z = Identity::generate().unwrap().public();
        let h = [1u8; 32];
        // An attacker with the right code but another key derives another key.
        let (state, a) = master_start("000001", &other, &z);
        let (kz, b) = zombie_respond("000001", &m, &z, &a).unwrap();
        let km = state.finish(&b).unwrap();
        assert!(!master_proof_accepted(&kz, &km, &h));
    }

    #[test]
    fn expired_code_is_refused() {
        let mut c = PendingCode::issue_for(Level::Complete, Duration::from_millis(30));
        assert!(c.usable());
        std::thread::sleep(Duration::from_millis(40));
        assert!(!c.usable());
        let err = c.take_attempt().unwrap_err().to_string();
        assert!(err.contains("expired"), "{err}");
        let left = PendingCode::issue(Level::Partial).remaining().as_secs();
        assert!((119..=120).contains(&left), "{left}");
    }

    #[test]
    fn three_attempts_then_invalid() {
        let mut c = PendingCode::issue(Level::Partial);
        assert_eq!(c.code().len(), 6);
        for _ in 0..3 {
            c.take_attempt().unwrap();
        }
        assert!(!c.usable());
        assert!(c.take_attempt().is_err());
    }
}
