//! The receiving half of a channel: whole messages out of pieces, and
//! credit given back as the application takes them.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::{Bytes, BytesMut};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use super::MAX_CONTROL_MESSAGE;
use super::channel::Registered;
use super::credit;
use super::table::{Event, Shared, Slot};
use crate::error::{Error, Result};
use crate::frame::Inner;

/// The receiving half of a [`super::Channel`]. Dropping it discards
/// whatever the peer still sends on the channel (and gives the peer its
/// credit back, so the peer's sender is never stalled by it).
pub struct ChannelReceiver {
    slot: Arc<Slot>,
    shared: Arc<Shared>,
    _registered: Arc<Registered>,
    label: String,
    events: mpsc::UnboundedReceiver<Event>,
    /// The pieces of the message now arriving, and their cost.
    partial: BytesMut,
    partial_cost: usize,
    ended: bool,
}

impl ChannelReceiver {
    pub(super) fn new(
        slot: Arc<Slot>,
        shared: Arc<Shared>,
        registered: Arc<Registered>,
        events: mpsc::UnboundedReceiver<Event>,
        label: String,
    ) -> ChannelReceiver {
        ChannelReceiver {
            slot,
            shared,
            _registered: registered,
            label,
            events,
            partial: BytesMut::new(),
            partial_cost: 0,
            ended: false,
        }
    }

    /// The channel's id within its session.
    pub fn id(&self) -> u32 {
        self.slot.id
    }

    /// The label it was opened with.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Sets the largest message this side accepts (default
    /// [`super::MAX_MESSAGE`]; on the control channel at most
    /// [`MAX_CONTROL_MESSAGE`]).
    pub fn set_max_message(&mut self, bytes: usize) {
        let bytes = if self.slot.id == 0 {
            bytes.min(MAX_CONTROL_MESSAGE)
        } else {
            bytes
        };
        self.slot.max_message.store(bytes, Ordering::Release);
    }

    /// Receives the next whole message; `Ok(None)` when the peer closed the
    /// channel cleanly.
    pub async fn recv(&mut self) -> Result<Option<Bytes>> {
        if self.ended {
            return Ok(None);
        }
        loop {
            let Some(event) = self.events.recv().await else {
                return Err(Error::Closed(self.shared.end_reason()));
            };
            match event {
                Event::Piece(bytes, last) => {
                    let cost = credit::cost(bytes.len());
                    self.freed(cost);
                    if last && self.partial.is_empty() {
                        self.shared.release(cost);
                        return Ok(Some(bytes));
                    }
                    self.partial.extend_from_slice(&bytes);
                    self.partial_cost += cost;
                    if last {
                        self.shared.release(std::mem::take(&mut self.partial_cost));
                        return Ok(Some(self.partial.split().freeze()));
                    }
                }
                Event::Close => {
                    self.ended = true;
                    return Ok(None);
                }
                Event::Reset(reason) => {
                    self.ended = true;
                    return Err(Error::Closed(format!("channel reset by peer: {reason}")));
                }
                Event::Failed(reason) => {
                    self.ended = true;
                    return Err(Error::Malformed(reason));
                }
            }
        }
    }

    /// Receives and decodes one postcard message; `Ok(None)` on clean close.
    pub async fn recv_msg<T: DeserializeOwned>(&mut self) -> Result<Option<T>> {
        match self.recv().await? {
            None => Ok(None),
            Some(bytes) => postcard::from_bytes(&bytes).map(Some).map_err(|e| {
                Error::Malformed(format!("undecodable message on {:?}: {e}", self.label))
            }),
        }
    }

    /// Credit for a piece the application took (or that was discarded).
    fn freed(&self, cost: usize) {
        let due = self.slot.recv.lock().freed(cost);
        self.shared.return_credit(self.slot.id, due);
    }

    /// Ends the channel in error (both directions), telling the peer why.
    pub fn reset(&mut self, reason: &str) {
        self.ended = true;
        self.slot.send_credit.close();
        if self.slot.finished.swap(true, Ordering::AcqRel) {
            return;
        }
        self.shared.send_urgent(Inner::Reset {
            channel: self.slot.id,
            reason: reason.to_string(),
        });
    }
}

impl Drop for ChannelReceiver {
    fn drop(&mut self) {
        // What was queued for us is discarded: count it out and give its
        // credit back, as the reader does for what arrives from now on.
        self.slot.recv.lock().discard();
        self.events.close();
        // The partial message's credit went back piece by piece already.
        self.shared.release(std::mem::take(&mut self.partial_cost));
        let mut queued = 0;
        while let Ok(event) = self.events.try_recv() {
            if let Event::Piece(bytes, _) = event {
                queued += credit::cost(bytes.len());
            }
        }
        if queued > 0 {
            self.shared.release(queued);
            self.freed(queued);
        }
    }
}
