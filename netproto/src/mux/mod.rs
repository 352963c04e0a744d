//! Independent, flow-controlled channels over one encrypted session.
//!
//! A session carries a control channel (id 0, always open) and any number of
//! bulk channels, each opened by either side with a label. Channels carry
//! whole messages (split into pieces of at most [`MAX_PIECE`] bytes on the
//! wire) in order.
//!
//! Channels never block each other: each has a credit window (see
//! [`credit`]); a sender waits for credit before sending a piece, a receiver
//! gives credit back as its application takes messages, so the reader task
//! never waits on a slow channel. A channel the peer opens gets no credit
//! until the application accepts it, and everything the layer holds for
//! the peer or queues for it is bounded: [`MAX_PENDING_OPENS`],
//! [`MAX_OPEN_CHANNELS`], [`MAX_CONTROL_MESSAGE`], the windows, and the
//! writer's queues ([`writer`]).
//!
//! One task reads and decrypts (`reader`), another encrypts and writes
//! ([`writer`]), each with its own nonce counter, so the two directions run
//! on two cores.
//!
//! [`MAX_PIECE`]: crate::frame::MAX_PIECE

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

use crate::cipher::TransportKeys;
use crate::error::{Error, Result};
use crate::frame::Inner;

mod channel;
pub mod credit;
mod reader;
mod receiver;
mod table;
pub mod writer;

pub use channel::{Channel, ChannelSender};
pub use credit::{CONTROL_WINDOW, PIECE_OVERHEAD, WINDOW};
pub use receiver::ChannelReceiver;

/// The largest message a bulk channel accepts by default (one window; an
/// application that needs more says so with `set_max_message`). A channel
/// holds at most its window of queued pieces plus this much of a message.
pub const MAX_MESSAGE: usize = 4 << 20;
/// The largest message on the control channel: a larger one (even one never
/// finished) ends the session once this much of it has arrived, and sending
/// one fails before anything is sent.
pub const MAX_CONTROL_MESSAGE: usize = 64 << 10;
/// Channels the peer may open that the application has not accepted yet;
/// more are reset.
pub const MAX_PENDING_OPENS: usize = 64;
/// Bulk channels open at once in a session (both sides' together, pending
/// ones included); the peer's further opens are reset, ours fail.
pub const MAX_OPEN_CHANNELS: usize = 128;

/// The handle to a running session's channel layer. Cheap to clone.
///
/// When the last clone is dropped the session closes as by [`Mux::close`]:
/// what was queued is sent, then the connection ends.
#[derive(Clone)]
pub struct Mux {
    shared: Arc<table::Shared>,
    incoming: Arc<tokio::sync::Mutex<mpsc::Receiver<Channel>>>,
    _close_on_drop: Arc<CloseOnDrop>,
}

struct CloseOnDrop(Arc<table::Shared>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.outbox.push_shutdown();
    }
}

/// What the channel layer holds and queues now, for tests and diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MuxStats {
    /// Bytes received (piece costs) that the application has not taken yet,
    /// including the pieces of messages not complete yet.
    pub held: usize,
    /// The most `held` has been in this session.
    pub held_peak: usize,
    /// Bytes of frames queued for the writer.
    pub queued: usize,
    /// The most bytes of small (credit, open, reset, close) frames queued.
    pub small_queued_peak: usize,
    /// Bulk channels in the table (pending ones included).
    pub channels: usize,
    /// Channels the peer opened that are not accepted yet.
    pub pending: usize,
}

impl Mux {
    /// Starts the reader and writer tasks over an established Noise
    /// transport. Returns the handle and the control channel (id 0).
    pub fn start<R, W>(
        reader: R,
        writer: W,
        transport: TransportKeys,
        initiator: bool,
    ) -> (Mux, Channel)
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (incoming_tx, incoming_rx) = mpsc::channel(MAX_PENDING_OPENS);
        let shared = Arc::new(table::Shared::new(initiator));
        let control = Channel::control(shared.clone());
        tokio::spawn(writer::write_loop(writer, transport.sealer, shared.clone()));
        tokio::spawn(reader::read_loop(
            reader,
            transport.opener,
            shared.clone(),
            incoming_tx,
            initiator,
        ));
        (
            Mux {
                _close_on_drop: Arc::new(CloseOnDrop(shared.clone())),
                shared,
                incoming: Arc::new(tokio::sync::Mutex::new(incoming_rx)),
            },
            control,
        )
    }

    /// Opens a new channel with a label the peer sees. Sending on it waits
    /// until the peer accepts it.
    pub fn open(&self, label: &str) -> Result<Channel> {
        self.check_open()?;
        if self.shared.channel_counts().0 >= MAX_OPEN_CHANNELS {
            return Err(Error::Limit(format!(
                "this session has {MAX_OPEN_CHANNELS} channels open already"
            )));
        }
        let id = self.shared.allocate_id()?;
        let channel = Channel::opened(id, label.to_string(), self.shared.clone());
        self.shared.send_urgent(Inner::Open {
            channel: id,
            label: label.to_string(),
        });
        self.check_open()?;
        Ok(channel)
    }

    /// Waits for the peer to open a channel and accepts it, granting the
    /// peer its credit window; `None` once the session ended.
    ///
    /// Until a channel is accepted here the peer may send nothing on it.
    pub async fn accept(&self) -> Option<Channel> {
        let channel = self.incoming.lock().await.recv().await?;
        if self.end_reason().is_some() {
            return None;
        }
        channel.grant();
        Some(channel)
    }

    /// Sends everything queued (in order, after any message already sent),
    /// then ends the session.
    pub fn close(&self) {
        self.shared.outbox.push_shutdown();
    }

    /// Ends the session at once with a reason, dropping queued data.
    pub fn abort(&self, reason: &str) {
        self.shared.end(reason.to_string());
    }

    /// Waits until the session has ended and returns why.
    pub async fn ended(&self) -> String {
        let mut rx = self.shared.ended.subscribe();
        match rx.wait_for(|r| r.is_some()).await {
            Ok(reason) => reason.clone().unwrap_or_default(),
            Err(_) => self.shared.end_reason(),
        }
    }

    /// The reason the session ended, if it has.
    pub fn end_reason(&self) -> Option<String> {
        self.shared.ended_reason()
    }

    /// What the layer holds and queues now.
    pub fn stats(&self) -> MuxStats {
        let (channels, pending) = self.shared.channel_counts();
        let (queued, small_queued_peak) = self.shared.outbox.queued();
        let counters = &self.shared.counters;
        MuxStats {
            held: counters.held.load(Ordering::Acquire),
            held_peak: counters.held_peak.load(Ordering::Acquire),
            queued,
            small_queued_peak,
            channels,
            pending,
        }
    }

    fn check_open(&self) -> Result<()> {
        match self.end_reason() {
            Some(reason) => Err(Error::Closed(reason)),
            None => Ok(()),
        }
    }
}
