//! [`Peer`] over a real session: control messages on channel 0, and a
//! policy for the channels the peer opens.

use zos_netproto::mux::{Channel, Mux};
use zos_netproto::session::Session;
use zos_netproto::wire::Message;
use zos_netproto::{Error as NetError, Result as NetResult};

use super::{Peer, PeerInfo};
use crate::limits::{MAX_CONTROL_MESSAGE, MAX_REFUSED_CHANNELS};

/// What happens to a channel the peer opens.
pub enum ChannelPolicy {
    /// Reset at once: this session has no use for channels opened by the
    /// peer. After [`MAX_REFUSED_CHANNELS`] of them the session ends.
    Refuse,
    /// Handed to this function (which serves or resets it).
    Serve(Box<dyn FnMut(Channel) + Send>),
}

/// A live session as a [`Peer`].
pub struct SessionPeer {
    session: Session,
    info: PeerInfo,
    channels: ChannelPolicy,
    refused: usize,
    /// False once the channel layer said no more channels will come.
    accepting: bool,
}

impl SessionPeer {
    /// Wraps an established session. Its control channel accepts messages
    /// of at most [`MAX_CONTROL_MESSAGE`] bytes from here on.
    pub fn new(mut session: Session, channels: ChannelPolicy) -> SessionPeer {
        session.control.set_max_message(MAX_CONTROL_MESSAGE);
        let info = PeerInfo {
            key: session.remote,
            announced_name: session.remote_name.clone(),
            addr: session.peer_addr,
            handshake_hash: session.handshake_hash,
        };
        SessionPeer {
            session,
            info,
            channels,
            refused: 0,
            accepting: true,
        }
    }

    /// Changes what happens to the channels the peer opens from now on.
    pub fn set_channel_policy(&mut self, channels: ChannelPolicy) {
        self.channels = channels;
    }

    /// The session's role as the peer announced it.
    pub fn remote_role(&self) -> zos_netproto::wire::Role {
        self.session.remote_role
    }

    fn on_channel(&mut self, mut channel: Channel) -> NetResult<()> {
        match &mut self.channels {
            ChannelPolicy::Serve(serve) => serve(channel),
            ChannelPolicy::Refuse => {
                self.refused += 1;
                tracing::debug!(
                    "{} opened channel {:?}; refused",
                    self.info.addr,
                    channel.label()
                );
                channel.reset("this session accepts no channels");
                if self.refused > MAX_REFUSED_CHANNELS {
                    let reason = format!(
                        "the peer opened {} channels on a session that accepts none",
                        self.refused
                    );
                    self.session.mux.abort(&reason);
                    return Err(NetError::Malformed(reason));
                }
            }
        }
        Ok(())
    }
}

impl Peer for SessionPeer {
    fn info(&self) -> &PeerInfo {
        &self.info
    }

    async fn send(&mut self, message: &Message) -> NetResult<()> {
        self.session.send(message).await
    }

    async fn recv(&mut self) -> NetResult<Message> {
        let mux = self.session.mux.clone();
        loop {
            tokio::select! {
                channel = mux.accept(), if self.accepting => match channel {
                    Some(channel) => self.on_channel(channel)?,
                    None => self.accepting = false,
                },
                message = self.session.recv() => return message,
            }
        }
    }

    fn mux(&self) -> Option<&Mux> {
        Some(&self.session.mux)
    }

    fn close(&mut self) {
        self.session.mux.close();
    }

    fn abort(&mut self, reason: &str) {
        self.session.mux.abort(reason);
    }
}
