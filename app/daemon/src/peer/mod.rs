//! The message-level seam between the daemons' rules and a session.
//!
//! The rules of the zombie (consent, lease, idle sessions, pairing
//! attempts) and of the master (the domination hand-shake, its driver) talk
//! to a [`Peer`]: a stream of control [`Message`]s with the peer's
//! authenticated identity. [`SessionPeer`] is a real session (channels the
//! peer opens are refused or served, see [`ChannelPolicy`]); the tests run
//! the same rules against an in-memory pair ([`memory`]) with paused time,
//! without network namespaces or root.

#[cfg(test)]
pub(crate) mod memory;
mod session;

pub use session::{ChannelPolicy, SessionPeer};

use std::net::SocketAddr;
use std::time::Duration;

use zos_netproto::mux::Mux;
use zos_netproto::wire::Message;
use zos_netproto::{Error as NetError, PublicKey};

use crate::error::{DaemonError, Result};
use crate::zombie::variant;

/// Who is at the other end, as its handshake proved and its hello said.
#[derive(Clone, Debug)]
pub struct PeerInfo {
    /// Its authenticated static key.
    pub key: PublicKey,
    /// The name it gives itself (its `Hello`); only for logs and for
    /// recording a name when pairing — a paired peer's name is the one it
    /// was paired under.
    pub announced_name: String,
    /// Its address.
    pub addr: SocketAddr,
    /// The Noise handshake hash of the session (pairing binds to it).
    pub handshake_hash: [u8; 32],
}

/// A peer that control messages are exchanged with.
pub trait Peer: Send {
    /// Who it is.
    fn info(&self) -> &PeerInfo;

    /// Sends one control message.
    fn send(&mut self, message: &Message) -> impl Future<Output = zos_netproto::Result<()>> + Send;

    /// Receives the next control message; an ended session is an error.
    fn recv(&mut self) -> impl Future<Output = zos_netproto::Result<Message>> + Send;

    /// The session's channel layer, if it has one (an in-memory peer has
    /// none: opening a channel there fails).
    fn mux(&self) -> Option<&Mux>;

    /// Sends what is queued, then ends the session.
    fn close(&mut self);

    /// Ends the session at once.
    fn abort(&mut self, reason: &str);
}

/// Receives a message, turning `Refused` and `Bye` into errors.
pub async fn expect<P: Peer>(peer: &mut P) -> zos_netproto::Result<Message> {
    match peer.recv().await? {
        Message::Refused { reason } => Err(NetError::Refused(reason)),
        Message::Bye { reason } => Err(NetError::Closed(format!(
            "peer ended the session: {reason}"
        ))),
        m => Ok(m),
    }
}

/// Like [`expect`], with a deadline: the error names `who` (as we know it)
/// and what it did not answer in time (`what`, e.g. "Dominate").
pub async fn expect_within<P: Peer>(
    peer: &mut P,
    limit: Duration,
    who: &str,
    what: &str,
) -> Result<Message> {
    match tokio::time::timeout(limit, expect(peer)).await {
        Ok(answer) => Ok(answer?),
        Err(_) => {
            peer.abort(&format!("no answer to {what}"));
            Err(DaemonError::User(format!(
                "{who} did not answer {what} within {} s",
                limit.as_secs()
            )))
        }
    }
}

/// The error for an answer that does not fit the request.
pub fn unexpected(who: &str, answer: &Message, to: &str) -> DaemonError {
    DaemonError::User(format!("{who} answered {} to {to}", variant(answer)))
}
