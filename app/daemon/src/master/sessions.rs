//! Sessions a master opens to zombies: finding the zombie (by the name it
//! was paired under first), connecting within [`CONNECT_DEADLINE`],
//! checking that both sides are paired, and `zos ping`.
//!
//! A paired zombie is known by the key and name in `zombies.toml`: a name
//! that is a paired zombie's resolves to that zombie's key, and the session
//! must present it; whatever name the zombie gives itself is only logged.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;
use zos_netproto::PublicKey;
use zos_netproto::control::Reply;
use zos_netproto::session::Session;
use zos_netproto::wire::{Message, Role};

use super::Master;
use crate::control_server::Replies;
use crate::domination::PairedZombie;
use crate::error::{DaemonError, Result};
use crate::limits::{ANSWER_TIMEOUT, CONNECT_DEADLINE, SESSION_REUSE_LIMIT};
use crate::peer::{ChannelPolicy, Peer, SessionPeer, expect_within, unexpected};

impl Master {
    /// Where `host` is, and the key it must present if `host` names a
    /// paired zombie.
    pub(super) fn locate(&self, host: &str) -> Result<(SocketAddr, Option<PairedZombie>)> {
        let paired: Vec<PairedZombie> = self
            .zombies
            .lock()
            .entries()
            .iter()
            .filter(|e| e.name == host)
            .filter_map(|e| {
                Some(PairedZombie {
                    name: e.name.clone(),
                    key: e.public_key().ok()?,
                })
            })
            .collect();
        match paired.as_slice() {
            [zombie] => {
                let fingerprint = zombie.key.fingerprint().0;
                let (addr, _) = self.hosts.resolve(&fingerprint).map_err(|_| {
                    DaemonError::User(format!(
                        "paired zombie {host} ({fingerprint}) is not visible on the LAN (`zos hosts` lists what is)"
                    ))
                })?;
                Ok((addr, Some(zombie.clone())))
            }
            [] => Ok((self.hosts.resolve(host)?.0, None)),
            several => Err(DaemonError::User(format!(
                "{host:?} names {} paired zombies ({}); use the fingerprint",
                several.len(),
                several
                    .iter()
                    .map(|z| z.key.fingerprint().0)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// Connects to the zombie at `addr`, refusing channels it opens.
    pub(super) async fn connect(&self, addr: SocketAddr) -> Result<SessionPeer> {
        let connect = Session::connect(addr, &self.identity, Role::Master, &self.cfg.name);
        let session = tokio::time::timeout(CONNECT_DEADLINE, connect)
            .await
            .map_err(|_| {
                DaemonError::User(format!(
                    "the zombie at {addr} did not complete the handshake within {} s",
                    CONNECT_DEADLINE.as_secs()
                ))
            })??;
        let mut peer = SessionPeer::new(session, ChannelPolicy::Refuse);
        if peer.remote_role() != Role::Zombie {
            peer.close();
            return Err(DaemonError::User(format!("{addr} is not a zombie")));
        }
        Ok(peer)
    }

    /// Opens a session to `host` and checks that both sides are paired;
    /// returns it with the zombie as this master paired it.
    pub(super) async fn paired_session(&self, host: &str) -> Result<(SessionPeer, PairedZombie)> {
        let (addr, expected) = self.locate(host)?;
        let mut peer = self.connect(addr).await?;
        let key = peer.info().key;
        let who = match &expected {
            Some(z) => format!("zombie {}", z.name),
            None => format!("the zombie at {addr}"),
        };
        let welcome =
            expect_within(&mut peer, ANSWER_TIMEOUT, &who, "our hello (no Welcome)").await?;
        let Message::Welcome { level } = welcome else {
            peer.close();
            return Err(unexpected(&who, &welcome, "our hello"));
        };
        let announced = peer.info().announced_name.clone();
        if let Some(z) = expected.as_ref().filter(|z| z.key != key) {
            peer.close();
            return Err(DaemonError::User(format!(
                "the zombie at {addr} presents key {}, not the key of {} ({}) that this master paired with; not talking to it",
                key.fingerprint(),
                z.name,
                z.key.fingerprint()
            )));
        }
        if level.is_none() {
            let _ = peer
                .send(&Message::Bye {
                    reason: "not paired".into(),
                })
                .await;
            peer.close();
            // Paired here but not there: its user revoked this master.
            if let Some(name) = self.zombies.lock().get(&key).map(|e| e.name.clone()) {
                if self.revoked.lock().insert(key) {
                    tracing::warn!(
                        "zombie {name} ({}) no longer trusts this master",
                        key.fingerprint()
                    );
                }
                return Err(DaemonError::User(format!(
                    "not trusted by {name} any more (its user revoked this master): pair again (`zos pair-code` on {name}, then `zos pair {name} --code CODE` here)"
                )));
            }
            return Err(DaemonError::User(format!(
                "zombie {announced} refused: this master is not paired with it (run `zos pair-code` on {announced}, then `zos pair {announced} --code CODE` here)"
            )));
        }
        self.revoked.lock().remove(&key);
        let Some(name) = self.zombies.lock().get(&key).map(|e| e.name.clone()) else {
            peer.close();
            return Err(DaemonError::User(format!(
                "zombie {announced} at {addr} presents key {}, which this master never paired with; pair again with `zos pair {announced} --code CODE`",
                key.fingerprint()
            )));
        };
        if name != announced {
            tracing::info!(
                "zombie {name} ({}) now calls itself {announced:?}",
                key.fingerprint()
            );
        }
        Ok((peer, PairedZombie { name, key }))
    }

    /// `zos ping`: `count` round trips, `interval` apart, on one session
    /// (a new one after pauses longer than [`SESSION_REUSE_LIMIT`]).
    pub(super) async fn ping(
        &self,
        host: &str,
        count: u32,
        interval: Duration,
        out: &mut Replies,
    ) -> Result<Reply> {
        let (mut peer, mut zombie) = self.paired_session(host).await?;
        let mut last_used = Instant::now();
        for seq in 0..u64::from(count.max(1)) {
            if out.gone.is_cancelled() {
                break;
            }
            if last_used.elapsed() > SESSION_REUSE_LIMIT {
                peer.close();
                (peer, zombie) = self.reconnect(host, &zombie.key).await?;
            }
            let start = Instant::now();
            peer.send(&Message::Ping { seq }).await?;
            let who = format!("zombie {}", zombie.name);
            match expect_within(&mut peer, ANSWER_TIMEOUT, &who, "Ping").await {
                Ok(Message::Pong { seq: s }) if s == seq => {}
                Ok(other) => return Err(unexpected(&who, &other, "Ping")),
                Err(e @ DaemonError::User(_)) => return Err(e),
                Err(e) => {
                    return Err(DaemonError::User(format!(
                        "session with {} ended: {e}",
                        zombie.name
                    )));
                }
            }
            last_used = Instant::now();
            let rtt_us = start.elapsed().as_micros() as u64;
            out.send(&Reply::Pong {
                seq,
                rtt_us,
                peer: zombie.name.clone(),
            })
            .await?;
            if seq + 1 < u64::from(count) && !interval.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = out.gone.cancelled() => break,
                }
            }
        }
        let _ = peer
            .send(&Message::Bye {
                reason: "ping finished".into(),
            })
            .await;
        peer.close();
        Ok(Reply::Done)
    }

    /// A new session to the zombie with `key`, found as `host` was.
    async fn reconnect(&self, host: &str, key: &PublicKey) -> Result<(SessionPeer, PairedZombie)> {
        let (peer, zombie) = self.paired_session(host).await?;
        if zombie.key != *key {
            return Err(DaemonError::User(format!(
                "{host} is now a different zombie ({}); stopping",
                zombie.key.fingerprint()
            )));
        }
        Ok((peer, zombie))
    }
}
