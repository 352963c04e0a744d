//! A move's channel as a stream of [`MoveMessage`]s, every step with a deadline, and the
//! `migrants` request channel of a domination.

use std::time::Duration;

use zos_netproto::migration::{
    MAX_MIGRANTS_MESSAGE, MAX_MOVE_MESSAGE, MigrantsReply, MigrantsRequest, MoveMessage,
};
use zos_netproto::mux::{Channel, ChannelReceiver, ChannelSender};

use crate::error::{DaemonError, Result};

/// How long any one step may take: a message sent (credit may be short) or an answer that
/// needs no long work on the other side.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// One move's channel.
pub struct MoveLink {
    tx: Option<ChannelSender>,
    rx: ChannelReceiver,
    /// Who is at the other end (for messages).
    pub peer: String,
}

impl MoveLink {
    /// Wraps a move channel with the peer's name.
    pub fn new(mut channel: Channel, peer: &str) -> MoveLink {
        channel.set_max_message(MAX_MOVE_MESSAGE);
        let (tx, rx) = channel.split();
        MoveLink {
            tx: Some(tx),
            rx,
            peer: peer.to_string(),
        }
    }

    fn sender(&self) -> Result<&ChannelSender> {
        self.tx
            .as_ref()
            .ok_or_else(|| DaemonError::User("the move's channel is closed".into()))
    }

    /// Sends one message within [`STEP_TIMEOUT`].
    pub async fn send(&self, message: &MoveMessage) -> Result<()> {
        let bytes = postcard::to_stdvec(message).expect("move messages encode");
        self.send_encoded(&bytes).await
    }

    /// Sends one already encoded message within [`STEP_TIMEOUT`].
    pub async fn send_encoded(&self, bytes: &[u8]) -> Result<()> {
        let tx = self.sender()?;
        match tokio::time::timeout(STEP_TIMEOUT, tx.send(bytes)).await {
            Ok(r) => r.map_err(|e| self.lost(e)),
            Err(_) => Err(DaemonError::User(format!(
                "{} took nothing for {} s",
                self.peer,
                STEP_TIMEOUT.as_secs()
            ))),
        }
    }

    /// Best effort: tells the other side why this side gives up.
    pub async fn abort(&self, reason: &str) {
        if let Some(tx) = &self.tx {
            let message = MoveMessage::Abort {
                reason: reason.to_string(),
            };
            let _ = tokio::time::timeout(Duration::from_secs(2), tx.send_msg(&message)).await;
        }
    }

    /// The next message within `limit`; the other side's `Abort` is an error with its reason.
    /// `what` names what was awaited.
    pub async fn recv(&mut self, limit: Duration, what: &str) -> Result<MoveMessage> {
        match tokio::time::timeout(limit, self.recv_any()).await {
            Ok(Ok(MoveMessage::Abort { reason })) => Err(DaemonError::User(format!(
                "{} gave up: {}",
                self.peer,
                bounded(&reason)
            ))),
            Ok(other) => other,
            Err(_) => Err(DaemonError::User(format!(
                "{} did not send {what} within {} s",
                self.peer,
                limit.as_secs()
            ))),
        }
    }

    /// The next message within `limit`, the other side's `Abort` included (for the waits
    /// around a commit, where an `Abort` and a lost channel mean different things).
    pub async fn recv_raw(&mut self, limit: Duration, what: &str) -> Result<MoveMessage> {
        match tokio::time::timeout(limit, self.recv_any()).await {
            Ok(r) => r,
            Err(_) => Err(DaemonError::User(format!(
                "{} did not send {what} within {} s",
                self.peer,
                limit.as_secs()
            ))),
        }
    }

    /// The next message within `limit`, image chunks without copying their data; the other
    /// side's `Abort` is an error with its reason.
    pub async fn recv_frame(&mut self, limit: Duration, what: &str) -> Result<Frame> {
        let next = async {
            match self.rx.recv().await {
                Ok(Some(bytes)) => {
                    if let Some((codec, raw_len, data)) = super::codec::parse_image(&bytes) {
                        return Ok(Frame::Image(codec, raw_len, data));
                    }
                    postcard::from_bytes::<MoveMessage>(&bytes)
                        .map(Frame::Message)
                        .map_err(|e| {
                            DaemonError::User(format!(
                                "{} sent an undecodable message: {e}",
                                self.peer
                            ))
                        })
                }
                Ok(None) => Err(DaemonError::User(format!(
                    "{} closed the move's channel",
                    self.peer
                ))),
                Err(e) => Err(self.lost(e)),
            }
        };
        match tokio::time::timeout(limit, next).await {
            Ok(Ok(Frame::Message(MoveMessage::Abort { reason }))) => Err(DaemonError::User(
                format!("{} gave up: {}", self.peer, bounded(&reason)),
            )),
            Ok(other) => other,
            Err(_) => Err(DaemonError::User(format!(
                "{} did not send {what} within {} s",
                self.peer,
                limit.as_secs()
            ))),
        }
    }

    /// The next message, without a deadline (cancel-safe: for `select!`).
    pub async fn recv_any(&mut self) -> Result<MoveMessage> {
        match self.rx.recv_msg::<MoveMessage>().await {
            Ok(Some(m)) => Ok(m),
            Ok(None) => Err(DaemonError::User(format!(
                "{} closed the move's channel",
                self.peer
            ))),
            Err(e) => Err(self.lost(e)),
        }
    }

    fn lost(&self, e: zos_netproto::Error) -> DaemonError {
        DaemonError::User(format!("the link to {} broke: {e}", self.peer))
    }
}

/// What a move's channel brought.
pub enum Frame {
    /// An image chunk: its codec, raw length and data (a slice of the received message).
    Image(zos_netproto::migration::Codec, u32, bytes::Bytes),
    /// Any other message.
    Message(MoveMessage),
}

/// A peer's text, cut to a reasonable length for one line.
pub fn bounded(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect();
    one_line
}

/// The master's end of a domination's `migrants` channel: one request at a time.
pub struct MigrantsClient {
    channel: Channel,
    peer: String,
}

impl MigrantsClient {
    /// Wraps the channel.
    pub fn new(mut channel: Channel, peer: &str) -> MigrantsClient {
        channel.set_max_message(MAX_MIGRANTS_MESSAGE);
        MigrantsClient {
            channel,
            peer: peer.to_string(),
        }
    }

    /// Sends `request` and waits (at most [`STEP_TIMEOUT`]) for its answer.
    pub async fn ask(&mut self, request: &MigrantsRequest) -> Result<MigrantsReply> {
        let peer = self.peer.clone();
        let exchange = async {
            self.channel.send_msg(request).await?;
            self.channel.recv_msg::<MigrantsReply>().await
        };
        match tokio::time::timeout(STEP_TIMEOUT, exchange).await {
            Ok(Ok(Some(reply))) => Ok(reply),
            Ok(Ok(None)) => Err(DaemonError::User(format!(
                "{peer} closed its migrants channel"
            ))),
            Ok(Err(e)) => Err(DaemonError::User(format!(
                "{peer}'s migrants channel broke: {e}"
            ))),
            Err(_) => Err(DaemonError::User(format!(
                "{peer} did not answer {request:?} within {} s",
                STEP_TIMEOUT.as_secs()
            ))),
        }
    }
}
