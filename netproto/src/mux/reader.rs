//! The reader: one task reads, opens (decrypts in place) and dispatches
//! the peer's frames. It never waits on a channel: every channel's receiver
//! queue is bounded by the credit we granted, so a slow channel holds back
//! only its own sender.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::io::AsyncRead;
use tokio::sync::mpsc;

use super::channel::Channel;
use super::credit::{self, Refusal};
use super::table::{Delivery, Event, Shared};
use super::{MAX_OPEN_CHANNELS, MAX_PENDING_OPENS};
use crate::cipher::Opener;
use crate::error::{Error, Result};
use crate::frame::{FrameReader, Inner};

/// Reads frames until the stream ends, a frame is bad or the session ends.
pub(super) async fn read_loop<R: AsyncRead + Unpin>(
    reader: R,
    mut opener: Opener,
    shared: Arc<Shared>,
    incoming: mpsc::Sender<Channel>,
    initiator: bool,
) {
    let mut ended = shared.ended.subscribe();
    let mut frames = FrameReader::new(reader);
    let mut dispatch = Dispatch {
        shared: shared.clone(),
        incoming,
        peer_parity: if initiator { 0 } else { 1 },
        peer_next: if initiator { 2 } else { 1 },
    };
    let reason = loop {
        let frame = tokio::select! {
            _ = ended.wait_for(|r| r.is_some()) => return,
            f = frames.next() => f,
        };
        let mut frame = match frame {
            Ok(Some(frame)) => frame,
            Ok(None) => break "peer closed the session".to_string(),
            Err(e) => break e.to_string(),
        };
        match opener.open(&mut frame) {
            Ok(len) => frame.truncate(len),
            Err(e) => break e.to_string(),
        }
        let result = Inner::decode_owned(frame).and_then(|inner| dispatch.frame(inner));
        if let Err(e) = result {
            break e.to_string();
        }
    };
    tracing::debug!("session reader ends: {reason}");
    shared.end(reason);
}

/// Applies the peer's frames to the channel table.
struct Dispatch {
    shared: Arc<Shared>,
    incoming: mpsc::Sender<Channel>,
    /// Parity of the ids the peer opens.
    peer_parity: u32,
    /// The smallest id the peer may open next (ids only grow).
    peer_next: u32,
}

impl Dispatch {
    fn frame(&mut self, inner: Inner) -> Result<()> {
        match inner {
            Inner::Data {
                channel,
                bytes,
                last,
            } => self.data(channel, bytes, last),
            Inner::Open { channel, label } => self.open(channel, label),
            Inner::Credit { channel, bytes } => {
                self.known(channel)?;
                if let Some(slot) = self.shared.slot(channel) {
                    let window = if channel == 0 {
                        credit::CONTROL_WINDOW
                    } else {
                        credit::WINDOW
                    };
                    credit::check_grant(
                        channel,
                        slot.send_credit.available_permits(),
                        bytes,
                        window,
                    )?;
                    slot.send_credit.add_permits(bytes as usize);
                }
                Ok(())
            }
            Inner::Close { channel } => {
                self.known(channel)?;
                if let Some(slot) = self.shared.slot(channel) {
                    // (The slot's lock is never held while taking the table's.)
                    let first = slot.recv.lock().peer_finished();
                    if first {
                        self.shared.deliver(channel, Event::Close);
                    }
                }
                Ok(())
            }
            Inner::Reset { channel, reason } => {
                self.known(channel)?;
                if let Some(slot) = self.shared.slot(channel) {
                    slot.finished.store(true, Ordering::Release);
                    slot.send_credit.close();
                    let first = slot.recv.lock().peer_finished();
                    if first {
                        self.shared.deliver(channel, Event::Reset(reason));
                    }
                }
                Ok(())
            }
        }
    }

    /// Refuses frames for channels that were never opened.
    fn known(&self, channel: u32) -> Result<()> {
        let opened = if channel == 0 {
            true
        } else if channel % 2 == self.peer_parity {
            channel < self.peer_next
        } else {
            self.shared.allocated(channel)
        };
        if opened {
            Ok(())
        } else {
            Err(Error::Malformed(format!(
                "peer used channel {channel}, which was never opened"
            )))
        }
    }

    fn data(&mut self, channel: u32, bytes: bytes::Bytes, last: bool) -> Result<()> {
        self.known(channel)?;
        // A channel we dropped: what was in flight is discarded.
        let Some(slot) = self.shared.slot(channel) else {
            return Ok(());
        };
        let cost = credit::cost(bytes.len());
        let max_message = slot.max_message.load(Ordering::Acquire);
        let charged = slot
            .recv
            .lock()
            .charge(channel, bytes.len(), last, max_message);
        match charged {
            Ok(()) => {}
            Err(Refusal::Violation(e)) => return Err(e),
            Err(Refusal::TooLarge(reason)) if channel == 0 => {
                return Err(Error::Malformed(format!(
                    "control {reason} (the limit is {} bytes)",
                    super::MAX_CONTROL_MESSAGE
                )));
            }
            Err(Refusal::TooLarge(reason)) => {
                // The channel fails; the session goes on.
                if !slot.finished.swap(true, Ordering::AcqRel) {
                    self.shared.send_urgent(Inner::Reset {
                        channel,
                        reason: reason.clone(),
                    });
                }
                slot.send_credit.close();
                self.shared.deliver(channel, Event::Failed(reason));
                self.shared.unregister(channel);
                return Ok(());
            }
        }
        self.shared.hold(cost);
        match self.shared.deliver(channel, Event::Piece(bytes, last)) {
            Delivery::Queued => {}
            Delivery::ReceiverGone => {
                // Nobody reads this channel any more: discard, and give the
                // credit back so the peer's sender is not stalled.
                self.shared.release(cost);
                let due = slot.recv.lock().freed(cost);
                self.shared.return_credit(channel, due);
            }
        }
        Ok(())
    }

    fn open(&mut self, channel: u32, label: String) -> Result<()> {
        if channel == 0 || channel % 2 != self.peer_parity || channel < self.peer_next {
            return Err(Error::Malformed(format!(
                "peer opened channel {channel} with a wrong or reused id"
            )));
        }
        self.peer_next = channel.saturating_add(2);
        let (open, pending) = self.shared.channel_counts();
        let refusal = if pending >= MAX_PENDING_OPENS {
            Some(format!(
                "too many channels waiting to be accepted ({MAX_PENDING_OPENS})"
            ))
        } else if open >= MAX_OPEN_CHANNELS {
            Some(format!("too many open channels ({MAX_OPEN_CHANNELS})"))
        } else {
            None
        };
        if let Some(reason) = refusal {
            self.shared.send_urgent(Inner::Reset { channel, reason });
            return Ok(());
        }
        let ch = Channel::accepted_later(channel, label, self.shared.clone());
        if let Err(e) = self.incoming.try_send(ch) {
            let mut ch = match e {
                mpsc::error::TrySendError::Full(ch) | mpsc::error::TrySendError::Closed(ch) => ch,
            };
            ch.reset("this side accepts no channels");
        }
        Ok(())
    }
}
