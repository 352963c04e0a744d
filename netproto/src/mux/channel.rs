//! A channel and its sending half.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::credit::{self, CONTROL_WINDOW, RecvWindow, WINDOW};
use super::receiver::ChannelReceiver;
use super::table::{Shared, Slot};
use super::{MAX_CONTROL_MESSAGE, MAX_MESSAGE};
use crate::error::{Error, Result};
use crate::frame::{Inner, MAX_PIECE};

/// One channel: an ordered stream of messages in each direction.
///
/// [`Channel::split`] gives its sending and receiving halves, so one task can
/// send while another receives.
pub struct Channel {
    tx: ChannelSender,
    rx: ChannelReceiver,
}

/// The sending half of a [`Channel`]. Dropping it tells the peer that this
/// side sends no more (the peer's receiver then ends with `Ok(None)`).
pub struct ChannelSender {
    slot: Arc<Slot>,
    shared: Arc<Shared>,
    _registered: Arc<Registered>,
}

/// Keeps a channel in the table while either half lives.
pub(super) struct Registered {
    id: u32,
    shared: Arc<Shared>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.shared.unregister(self.id);
    }
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Channel({} {:?})", self.rx.id(), self.rx.label())
    }
}

impl Channel {
    fn new(
        id: u32,
        label: String,
        shared: Arc<Shared>,
        window: RecvWindow,
        send_credit: usize,
        max_message: usize,
    ) -> Channel {
        let (slot, events) = shared.register(id, window, send_credit, max_message);
        let registered = Arc::new(Registered {
            id,
            shared: shared.clone(),
        });
        Channel {
            tx: ChannelSender {
                slot: slot.clone(),
                shared: shared.clone(),
                _registered: registered.clone(),
            },
            rx: ChannelReceiver::new(slot, shared, registered, events, label),
        }
    }

    /// The control channel: both windows open from the start.
    pub(super) fn control(shared: Arc<Shared>) -> Channel {
        let window = RecvWindow::granted(CONTROL_WINDOW);
        Channel::new(
            0,
            "control".into(),
            shared,
            window,
            CONTROL_WINDOW,
            MAX_CONTROL_MESSAGE,
        )
    }

    /// A channel this side opens: the peer may answer at once (our window
    /// is granted with the `Open`); we send once the peer accepts.
    pub(super) fn opened(id: u32, label: String, shared: Arc<Shared>) -> Channel {
        Channel::new(
            id,
            label,
            shared,
            RecvWindow::granted(WINDOW),
            0,
            MAX_MESSAGE,
        )
    }

    /// A channel the peer opened: no window for it until it is accepted.
    pub(super) fn accepted_later(id: u32, label: String, shared: Arc<Shared>) -> Channel {
        Channel::new(
            id,
            label,
            shared,
            RecvWindow::pending(WINDOW),
            WINDOW,
            MAX_MESSAGE,
        )
    }

    /// Grants the peer this channel's window (at accept).
    pub(super) fn grant(&self) {
        let grant = self.tx.slot.recv.lock().grant();
        self.tx.shared.return_credit(self.id(), grant);
    }

    /// The channel's id within its session.
    pub fn id(&self) -> u32 {
        self.rx.id()
    }

    /// The label it was opened with.
    pub fn label(&self) -> &str {
        self.rx.label()
    }

    /// Sets the largest message this side accepts (default [`MAX_MESSAGE`];
    /// on the control channel at most [`MAX_CONTROL_MESSAGE`]).
    pub fn set_max_message(&mut self, bytes: usize) {
        self.rx.set_max_message(bytes);
    }

    /// Sends one message, waiting for credit as needed.
    pub async fn send(&self, message: &[u8]) -> Result<()> {
        self.tx.send(message).await
    }

    /// Serialises `value` with postcard and sends it as one message.
    pub async fn send_msg<T: Serialize>(&self, value: &T) -> Result<()> {
        self.tx.send_msg(value).await
    }

    /// Receives the next whole message; `Ok(None)` when the peer closed the
    /// channel cleanly.
    pub async fn recv(&mut self) -> Result<Option<Bytes>> {
        self.rx.recv().await
    }

    /// Receives and decodes one postcard message; `Ok(None)` on clean close.
    pub async fn recv_msg<T: DeserializeOwned>(&mut self) -> Result<Option<T>> {
        self.rx.recv_msg().await
    }

    /// Ends the channel in error, telling the peer why.
    pub fn reset(&mut self, reason: &str) {
        self.rx.reset(reason);
    }

    /// Splits the channel into halves that can be used from different tasks.
    pub fn split(self) -> (ChannelSender, ChannelReceiver) {
        (self.tx, self.rx)
    }
}

impl ChannelSender {
    /// The channel's id within its session.
    pub fn id(&self) -> u32 {
        self.slot.id
    }

    /// Sends one message, waiting for credit as needed.
    pub async fn send(&self, message: &[u8]) -> Result<()> {
        if self.slot.id == 0 && message.len() > MAX_CONTROL_MESSAGE {
            return Err(Error::Limit(format!(
                "a control message of {} bytes is over the {MAX_CONTROL_MESSAGE}-byte limit",
                message.len()
            )));
        }
        if message.is_empty() {
            return self.send_piece(&[], true).await;
        }
        let mut pieces = message.chunks(MAX_PIECE).peekable();
        while let Some(piece) = pieces.next() {
            self.send_piece(piece, pieces.peek().is_none()).await?;
        }
        Ok(())
    }

    async fn send_piece(&self, piece: &[u8], last: bool) -> Result<()> {
        if self.slot.finished.load(Ordering::Acquire) {
            return Err(Error::Closed(self.closed_reason()));
        }
        let cost = credit::cost(piece.len()) as u32;
        self.slot
            .send_credit
            .acquire_many(cost)
            .await
            .map_err(|_| Error::Closed(self.closed_reason()))?
            .forget();
        let frame = self.shared.outbox.data_frame(self.slot.id, last, piece);
        self.shared
            .outbox
            .push_data(frame)
            .await
            .map_err(|()| Error::Closed(self.shared.end_reason()))
    }

    fn closed_reason(&self) -> String {
        self.shared
            .ended_reason()
            .unwrap_or_else(|| format!("channel {} was reset", self.slot.id))
    }

    /// Serialises `value` with postcard and sends it as one message.
    pub async fn send_msg<T: Serialize>(&self, value: &T) -> Result<()> {
        let bytes = postcard::to_stdvec(value)
            .map_err(|e| Error::Malformed(format!("encode message: {e}")))?;
        self.send(&bytes).await
    }
}

impl Drop for ChannelSender {
    fn drop(&mut self) {
        if self.slot.finished.swap(true, Ordering::AcqRel) {
            return;
        }
        // Close travels behind this channel's data, never ahead of it.
        self.shared.send_ordered(Inner::Close {
            channel: self.slot.id,
        });
    }
}
