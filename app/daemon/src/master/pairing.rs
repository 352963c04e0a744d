//! The master's side of pairing: SPAKE2 with the code its user typed,
//! bound to both static keys and the session's handshake hash. Each of the
//! zombie's answers has a deadline ([`ANSWER_TIMEOUT`]). The zombie is
//! recorded under the name it gives itself now — made unique among the
//! paired zombies, since from then on the name is how this master knows it.

use zos_netproto::PublicKey;
use zos_netproto::control::Reply;
use zos_netproto::pairing::{self, Side};
use zos_netproto::trust::PeerEntry;
use zos_netproto::wire::Message;

use super::Master;
use crate::error::{DaemonError, Result};
use crate::limits::ANSWER_TIMEOUT;
use crate::peer::{Peer, SessionPeer, expect_within, unexpected};

impl Master {
    /// `zos pair HOST --code CODE`.
    pub(super) async fn pair(&self, host: &str, code: &str) -> Result<Reply> {
        if code.len() != 6 || !code.chars().all(|c| c.is_ascii_digit()) {
            return Err(DaemonError::User("a pairing code is 6 digits".into()));
        }
        let (addr, _) = self.locate(host)?;
        let mut peer = self.connect(addr).await?;
        let who = format!("zombie {}", peer.info().announced_name);
        let result = self.pair_on(&mut peer, &who, code).await;
        let _ = peer
            .send(&Message::Bye {
                reason: "pairing finished".into(),
            })
            .await;
        peer.close();
        result
    }

    async fn pair_on(&self, peer: &mut SessionPeer, who: &str, code: &str) -> Result<Reply> {
        match expect_within(peer, ANSWER_TIMEOUT, who, "our hello (no Welcome)").await? {
            Message::Welcome { .. } => {}
            other => return Err(unexpected(who, &other, "our hello")),
        }
        let zombie_key = peer.info().key;
        let (state, spake) = pairing::master_start(code, &self.identity.public(), &zombie_key);
        peer.send(&Message::PairStart {
            name: self.cfg.name.clone(),
            spake,
        })
        .await?;
        let challenge = match expect_within(peer, ANSWER_TIMEOUT, who, "PairStart").await? {
            Message::PairChallenge { spake } => spake,
            Message::PairFailed { reason } => {
                return Err(DaemonError::User(format!(
                    "pairing refused by {who}: {reason}"
                )));
            }
            other => return Err(unexpected(who, &other, "PairStart")),
        };
        let key = state.finish(&challenge)?;
        let hash = peer.info().handshake_hash;
        let mac = pairing::confirmation(&key, Side::Master, &hash);
        peer.send(&Message::PairConfirm { mac }).await?;
        match expect_within(peer, ANSWER_TIMEOUT, who, "PairConfirm").await? {
            Message::PairDone { level, mac } => {
                if !pairing::verify_confirmation(&key, Side::Zombie, &hash, &mac) {
                    return Err(DaemonError::User(format!(
                        "{who} could not prove it knows the code: not pairing (possible impostor)"
                    )));
                }
                let name = unique_name(
                    &peer.info().announced_name,
                    &zombie_key,
                    self.zombies.lock().entries(),
                );
                self.zombies.lock().insert(&zombie_key, &name, level)?;
                self.revoked.lock().remove(&zombie_key);
                tracing::info!(
                    "paired with zombie {name} ({}), level {level}",
                    zombie_key.fingerprint()
                );
                Ok(Reply::Paired {
                    name,
                    fingerprint: zombie_key.fingerprint().0,
                    level,
                })
            }
            Message::PairFailed { reason } => Err(DaemonError::User(format!(
                "pairing refused by {who}: {reason}"
            ))),
            other => Err(unexpected(who, &other, "PairConfirm")),
        }
    }
}

/// `announced`, or `announced-2`, `-3` … if another paired zombie (another
/// key) in `paired` already goes by it. Control characters are dropped and
/// the name is cut to 64 characters.
fn unique_name(announced: &str, key: &PublicKey, paired: &[PeerEntry]) -> String {
    let base: String = announced
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    let base = if base.trim().is_empty() {
        "zombie".to_string()
    } else {
        base
    };
    let taken = |name: &str| {
        paired
            .iter()
            .any(|e| e.name == name && e.public_key().ok() != Some(*key))
    };
    let mut name = base.clone();
    let mut n = 2;
    while taken(&name) {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use zos_netproto::Level;

    fn entry(name: &str, key: &PublicKey) -> PeerEntry {
        PeerEntry {
            key: key.to_hex(),
            name: name.into(),
            level: Level::Complete,
            added: 0,
        }
    }

    #[test]
    fn a_name_another_paired_zombie_holds_gets_a_suffix() {
        let (desk, other, third) = (PublicKey([1; 32]), PublicKey([2; 32]), PublicKey([3; 32]));
        let paired = vec![entry("desk", &desk), entry("desk-2", &other)];
        assert_eq!(
            unique_name("desk", &desk, &paired),
            "desk",
            "re-pairing keeps it"
        );
        assert_eq!(unique_name("desk", &third, &paired), "desk-3");
        assert_eq!(unique_name("lab", &third, &paired), "lab");
        assert_eq!(unique_name("a\u{7}b\n", &third, &paired), "ab");
        assert_eq!(unique_name(" ", &third, &paired), "zombie");
        assert_eq!(unique_name(&"x".repeat(500), &third, &paired).len(), 64);
    }
}
