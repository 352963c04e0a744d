//! An authenticated, encrypted session between two ZOS instances.
//!
//! [`Session::connect`] (master side) and [`Session::accept`] (zombie side)
//! run the Noise handshake, start the channel layer and exchange
//! [`Message::Hello`]; a peer of another protocol version is refused with
//! [`Message::Refused`] naming both versions.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;

use crate::PROTOCOL_VERSION;
use crate::error::{Error, Result};
use crate::identity::{Identity, PublicKey};
use crate::mux::{Channel, Mux};
use crate::noise;
use crate::wire::{Message, Role};

/// How long to wait for the TCP connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for the peer's hello after the handshake.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// A live session.
pub struct Session {
    /// The peer's authenticated static key.
    pub remote: PublicKey,
    /// The peer's name from its hello.
    pub remote_name: String,
    /// The peer's role from its hello.
    pub remote_role: Role,
    /// The Noise handshake hash of this session.
    pub handshake_hash: [u8; 32],
    /// The peer's address.
    pub peer_addr: SocketAddr,
    /// The channel layer; open and accept bulk channels here.
    pub mux: Mux,
    /// The control channel.
    pub control: Channel,
}

impl Session {
    /// Connects to `addr` and runs the initiator's side.
    pub async fn connect(
        addr: SocketAddr,
        identity: &Identity,
        role: Role,
        name: &str,
    ) -> Result<Session> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| Error::Timeout(format!("connect to {addr}")))?
            .map_err(|e| Error::io(format!("connect to {addr}"), e))?;
        Self::establish(stream, identity, role, name, true).await
    }

    /// Runs the responder's side on an accepted connection.
    pub async fn accept(
        stream: TcpStream,
        identity: &Identity,
        role: Role,
        name: &str,
    ) -> Result<Session> {
        Self::establish(stream, identity, role, name, false).await
    }

    async fn establish(
        mut stream: TcpStream,
        identity: &Identity,
        role: Role,
        name: &str,
        initiator: bool,
    ) -> Result<Session> {
        let _ = stream.set_nodelay(true);
        let peer_addr = stream
            .peer_addr()
            .map_err(|e| Error::io("peer address", e))?;
        let done = if initiator {
            noise::initiate(&mut stream, identity).await?
        } else {
            noise::respond(&mut stream, identity).await?
        };
        let (reader, writer) = stream.into_split();
        let (mux, mut control) = Mux::start(reader, writer, done.transport, initiator);
        control
            .send(&crate::wire::encode(&Message::Hello {
                version: PROTOCOL_VERSION,
                role,
                name: name.to_string(),
            }))
            .await?;
        let hello = tokio::time::timeout(HELLO_TIMEOUT, control.recv())
            .await
            .map_err(|_| Error::Timeout("peer's hello".into()))??
            .ok_or_else(|| Error::Closed("peer closed before its hello".into()))?;
        let (remote_name, remote_role) = match crate::wire::decode(&hello)? {
            Message::Hello {
                version,
                role,
                name,
            } => {
                if version != PROTOCOL_VERSION {
                    let err = Error::Version {
                        peer: version,
                        ours: PROTOCOL_VERSION,
                    };
                    let _ = control
                        .send(&crate::wire::encode(&Message::Refused {
                            reason: err.to_string(),
                        }))
                        .await;
                    mux.close();
                    return Err(err);
                }
                (name, role)
            }
            Message::Refused { reason } => {
                mux.close();
                return Err(Error::Refused(reason));
            }
            other => {
                mux.close();
                return Err(Error::Malformed(format!("expected hello, got {other:?}")));
            }
        };
        Ok(Session {
            remote: done.remote,
            remote_name,
            remote_role,
            handshake_hash: done.handshake_hash,
            peer_addr,
            mux,
            control,
        })
    }

    /// Sends a control message. If the session has ended, the error carries
    /// the peer's parting reason (its `Bye` or `Refused`) when it sent one.
    pub async fn send(&mut self, msg: &Message) -> Result<()> {
        match self.control.send(&crate::wire::encode(msg)).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.parting_reason().await.unwrap_or(e)),
        }
    }

    /// Reads what the peer said before the session ended, if anything.
    async fn parting_reason(&mut self) -> Option<Error> {
        let bytes = tokio::time::timeout(Duration::from_millis(200), self.control.recv())
            .await
            .ok()?
            .ok()??;
        match crate::wire::decode(&bytes).ok()? {
            Message::Bye { reason } => {
                Some(Error::Closed(format!("peer ended the session: {reason}")))
            }
            Message::Refused { reason } => Some(Error::Refused(reason)),
            _ => None,
        }
    }

    /// Receives a control message; a closed session is an error.
    pub async fn recv(&mut self) -> Result<Message> {
        match self.control.recv().await? {
            Some(bytes) => crate::wire::decode(&bytes),
            None => {
                Err(Error::Closed(self.mux.end_reason().unwrap_or_else(|| {
                    "peer closed the control channel".into()
                })))
            }
        }
    }

    /// Receives a control message, turning `Refused` and `Bye` into errors.
    pub async fn expect(&mut self) -> Result<Message> {
        match self.recv().await? {
            Message::Refused { reason } => Err(Error::Refused(reason)),
            Message::Bye { reason } => {
                Err(Error::Closed(format!("peer ended the session: {reason}")))
            }
            m => Ok(m),
        }
    }
}
