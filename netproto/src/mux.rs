//! Independent, flow-controlled channels over one encrypted session.
//!
//! A session carries a control channel (id 0, always open) and any number of
//! bulk channels, each opened by either side with a label. Channels carry
//! whole messages (split into pieces of at most [`MAX_PIECE`] bytes on the
//! wire) in order.
//!
//! Channels never block each other: each has a credit window of
//! [`WINDOW`] bytes. A sender waits for credit before sending a piece; a
//! receiver returns credit as its application consumes messages. The reader
//! task therefore never waits on a slow channel, and a peer that sends past
//! its credit is a protocol violation that ends the session. Credit, open
//! and reset frames jump ahead of bulk data in the writer; close frames and
//! the session's shutdown stay behind the data sent before them.
//!
//! One task reads and decrypts, another encrypts and writes, each with its
//! own nonce counter, so the two directions run on two cores.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Semaphore, mpsc, watch};

use crate::error::{Error, Result};
use crate::frame::{FrameReader, Inner, MAX_NOISE_MESSAGE, MAX_PIECE};

/// Credit window of each channel, in bytes.
pub const WINDOW: usize = 4 << 20;
/// Credit charged for a piece beyond its bytes, so empty pieces are not free.
const PIECE_OVERHEAD: usize = 64;
/// The largest message a channel accepts by default.
pub const MAX_MESSAGE: usize = 64 << 20;
/// Channels the peer may open that the application has not accepted yet.
const MAX_PENDING_OPENS: usize = 64;
/// Bulk frames queued for the writer.
const WRITE_QUEUE: usize = 32;

/// What the writer is asked to send.
enum Outgoing {
    Frame(Inner),
    /// A data frame's plaintext, encoded by the sending channel.
    Plain(Vec<u8>),
    /// Send everything queued before this, then end the stream.
    Shutdown,
}

/// Events delivered to one channel's receiver.
enum Event {
    Piece(Bytes, bool),
    Close,
    Reset(String),
}

struct ChannelSlot {
    events: mpsc::UnboundedSender<Event>,
    credit: Arc<Semaphore>,
    unconsumed: Arc<AtomicUsize>,
}

struct Shared {
    bulk_tx: mpsc::Sender<Outgoing>,
    small_tx: mpsc::UnboundedSender<Outgoing>,
    channels: Mutex<HashMap<u32, ChannelSlot>>,
    next_id: AtomicU32,
    /// `Some(reason)` once the session has ended.
    ended: watch::Sender<Option<String>>,
}

impl Shared {
    fn end(&self, reason: String) {
        self.ended.send_if_modified(|state| {
            if state.is_none() {
                *state = Some(reason);
                true
            } else {
                false
            }
        });
        let slots: Vec<ChannelSlot> = self
            .channels
            .lock()
            .expect("channel table")
            .drain()
            .map(|(_, s)| s)
            .collect();
        for slot in slots {
            slot.credit.close();
        }
    }

    fn end_reason(&self) -> String {
        self.ended
            .borrow()
            .clone()
            .unwrap_or_else(|| "session ended".into())
    }

    fn register(
        &self,
        id: u32,
    ) -> (
        mpsc::UnboundedReceiver<Event>,
        Arc<Semaphore>,
        Arc<AtomicUsize>,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        let credit = Arc::new(Semaphore::new(WINDOW));
        let unconsumed = Arc::new(AtomicUsize::new(0));
        self.channels.lock().expect("channel table").insert(
            id,
            ChannelSlot {
                events: tx,
                credit: credit.clone(),
                unconsumed: unconsumed.clone(),
            },
        );
        (rx, credit, unconsumed)
    }
}

/// The handle to a running session's channel layer. Cheap to clone.
///
/// When the last clone is dropped the session closes as by [`Mux::close`]:
/// what was queued is sent, then the connection ends.
#[derive(Clone)]
pub struct Mux {
    shared: Arc<Shared>,
    incoming: Arc<tokio::sync::Mutex<mpsc::Receiver<Channel>>>,
    _close_on_drop: Arc<CloseOnDrop>,
}

struct CloseOnDrop(mpsc::Sender<Outgoing>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        let bulk = self.0.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = bulk.send(Outgoing::Shutdown).await;
            });
        }
    }
}

impl Mux {
    /// Starts the reader and writer tasks over an established Noise
    /// transport. Returns the handle and the control channel (id 0).
    pub fn start<R, W>(
        reader: R,
        writer: W,
        transport: snow::StatelessTransportState,
        initiator: bool,
    ) -> (Mux, Channel)
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let transport = Arc::new(transport);
        let (bulk_tx, bulk_rx) = mpsc::channel(WRITE_QUEUE);
        let (small_tx, small_rx) = mpsc::unbounded_channel();
        let (incoming_tx, incoming_rx) = mpsc::channel(MAX_PENDING_OPENS);
        let (ended, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            bulk_tx,
            small_tx,
            channels: Mutex::new(HashMap::new()),
            // Initiators use odd ids, responders even ones; 0 is control.
            next_id: AtomicU32::new(if initiator { 1 } else { 2 }),
            ended,
        });
        let control = Channel::new(0, "control".into(), shared.clone());
        tokio::spawn(write_loop(
            writer,
            transport.clone(),
            bulk_rx,
            small_rx,
            shared.clone(),
        ));
        tokio::spawn(read_loop(
            reader,
            transport,
            shared.clone(),
            incoming_tx,
            initiator,
        ));
        (
            Mux {
                _close_on_drop: Arc::new(CloseOnDrop(shared.bulk_tx.clone())),
                shared,
                incoming: Arc::new(tokio::sync::Mutex::new(incoming_rx)),
            },
            control,
        )
    }

    /// Opens a new channel with a label the peer sees.
    pub fn open(&self, label: &str) -> Result<Channel> {
        self.check_open()?;
        let id = self.shared.next_id.fetch_add(2, Ordering::Relaxed);
        let channel = Channel::new(id, label.to_string(), self.shared.clone());
        self.shared
            .small_tx
            .send(Outgoing::Frame(Inner::Open {
                channel: id,
                label: label.to_string(),
            }))
            .map_err(|_| Error::Closed(self.shared.end_reason()))?;
        Ok(channel)
    }

    /// Waits for the peer to open a channel; `None` once the session ended.
    pub async fn accept(&self) -> Option<Channel> {
        self.incoming.lock().await.recv().await
    }

    /// Sends everything queued (in order, after any message already sent),
    /// then ends the session.
    pub fn close(&self) {
        let bulk = self.shared.bulk_tx.clone();
        tokio::spawn(async move {
            let _ = bulk.send(Outgoing::Shutdown).await;
        });
    }

    /// Ends the session at once with a reason, dropping queued data.
    pub fn abort(&self, reason: &str) {
        self.shared.end(reason.to_string());
    }

    /// Waits until the session has ended and returns why.
    pub async fn ended(&self) -> String {
        let mut rx = self.shared.ended.subscribe();
        loop {
            if let Some(reason) = rx.borrow_and_update().clone() {
                return reason;
            }
            if rx.changed().await.is_err() {
                return self.shared.end_reason();
            }
        }
    }

    /// The reason the session ended, if it has.
    pub fn end_reason(&self) -> Option<String> {
        self.shared.ended.borrow().clone()
    }

    fn check_open(&self) -> Result<()> {
        match self.end_reason() {
            Some(reason) => Err(Error::Closed(reason)),
            None => Ok(()),
        }
    }
}

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
    id: u32,
    shared: Arc<Shared>,
    _slot: Arc<SlotGuard>,
    credit: Arc<Semaphore>,
    finished: Arc<AtomicBool>,
}

/// The receiving half of a [`Channel`]. Dropping it discards whatever the
/// peer still sends on the channel.
pub struct ChannelReceiver {
    id: u32,
    label: String,
    shared: Arc<Shared>,
    _slot: Arc<SlotGuard>,
    events: mpsc::UnboundedReceiver<Event>,
    unconsumed: Arc<AtomicUsize>,
    partial: BytesMut,
    to_return: usize,
    max_message: usize,
    finished: Arc<AtomicBool>,
    ended: bool,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Channel({} {:?})", self.rx.id, self.rx.label)
    }
}

impl Channel {
    fn new(id: u32, label: String, shared: Arc<Shared>) -> Channel {
        let (events, credit, unconsumed) = shared.register(id);
        let finished = Arc::new(AtomicBool::new(false));
        let slot = Arc::new(SlotGuard {
            id,
            shared: shared.clone(),
        });
        Channel {
            tx: ChannelSender {
                id,
                shared: shared.clone(),
                _slot: slot.clone(),
                credit,
                finished: finished.clone(),
            },
            rx: ChannelReceiver {
                id,
                label,
                shared,
                _slot: slot,
                events,
                unconsumed,
                partial: BytesMut::new(),
                to_return: 0,
                max_message: MAX_MESSAGE,
                finished,
                ended: false,
            },
        }
    }

    /// The channel's id within its session.
    pub fn id(&self) -> u32 {
        self.rx.id
    }

    /// The label it was opened with.
    pub fn label(&self) -> &str {
        &self.rx.label
    }

    /// Sets the largest message this side accepts (default [`MAX_MESSAGE`]).
    pub fn set_max_message(&mut self, bytes: usize) {
        self.rx.max_message = bytes;
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
        self.id
    }

    /// Sends one message, waiting for credit as needed.
    pub async fn send(&self, message: &[u8]) -> Result<()> {
        let mut pieces = message.chunks(MAX_PIECE).peekable();
        if message.is_empty() {
            return self.send_piece(&[], true).await;
        }
        while let Some(piece) = pieces.next() {
            let last = pieces.peek().is_none();
            self.send_piece(piece, last).await?;
        }
        Ok(())
    }

    async fn send_piece(&self, piece: &[u8], last: bool) -> Result<()> {
        if self.finished.load(Ordering::Acquire) {
            return Err(Error::Closed(format!("channel {} was reset", self.id)));
        }
        let cost = (piece.len() + PIECE_OVERHEAD) as u32;
        let permit = self
            .credit
            .acquire_many(cost)
            .await
            .map_err(|_| Error::Closed(self.closed_reason()))?;
        permit.forget();
        self.shared
            .bulk_tx
            .send(Outgoing::Plain(crate::frame::encode_data(
                self.id, last, piece,
            )))
            .await
            .map_err(|_| Error::Closed(self.shared.end_reason()))
    }

    fn closed_reason(&self) -> String {
        match self.shared.ended.borrow().clone() {
            Some(reason) => reason,
            None => format!("channel {} was reset", self.id),
        }
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
        if self.finished.swap(true, Ordering::AcqRel) {
            return;
        }
        // Close travels behind this channel's data, never ahead of it.
        let close = Outgoing::Frame(Inner::Close { channel: self.id });
        if let Err(mpsc::error::TrySendError::Full(close)) = self.shared.bulk_tx.try_send(close)
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let bulk = self.shared.bulk_tx.clone();
            runtime.spawn(async move {
                let _ = bulk.send(close).await;
            });
        }
    }
}

impl ChannelReceiver {
    /// The channel's id within its session.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The label it was opened with.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Sets the largest message this side accepts (default [`MAX_MESSAGE`]).
    pub fn set_max_message(&mut self, bytes: usize) {
        self.max_message = bytes;
    }

    /// Receives the next whole message; `Ok(None)` when the peer closed the
    /// channel cleanly.
    pub async fn recv(&mut self) -> Result<Option<Bytes>> {
        if self.ended {
            return Ok(None);
        }
        loop {
            let event = match self.events.recv().await {
                Some(e) => e,
                None => return Err(Error::Closed(self.shared.end_reason())),
            };
            match event {
                Event::Piece(bytes, last) => {
                    let cost = bytes.len() + PIECE_OVERHEAD;
                    self.unconsumed.fetch_sub(cost, Ordering::AcqRel);
                    self.return_credit(cost);
                    if self.partial.len() + bytes.len() > self.max_message {
                        let reason = format!(
                            "message larger than the {} bytes this channel accepts",
                            self.max_message
                        );
                        self.reset(&reason);
                        return Err(Error::Malformed(reason));
                    }
                    if last && self.partial.is_empty() {
                        return Ok(Some(bytes));
                    }
                    self.partial.extend_from_slice(&bytes);
                    if last {
                        return Ok(Some(self.partial.split().freeze()));
                    }
                }
                Event::Close => {
                    self.ended = true;
                    return Ok(None);
                }
                Event::Reset(reason) => {
                    self.ended = true;
                    self.finished.store(true, Ordering::Release);
                    return Err(Error::Closed(format!("channel reset by peer: {reason}")));
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

    fn return_credit(&mut self, cost: usize) {
        self.to_return += cost;
        if self.to_return >= WINDOW / 4 {
            let bytes = self.to_return as u32;
            self.to_return = 0;
            let _ = self.shared.small_tx.send(Outgoing::Frame(Inner::Credit {
                channel: self.id,
                bytes,
            }));
        }
    }

    /// Ends the channel in error (both directions), telling the peer why.
    pub fn reset(&mut self, reason: &str) {
        self.ended = true;
        if self.finished.swap(true, Ordering::AcqRel) {
            return;
        }
        let _ = self.shared.small_tx.send(Outgoing::Frame(Inner::Reset {
            channel: self.id,
            reason: reason.to_string(),
        }));
        if let Some(slot) = self
            .shared
            .channels
            .lock()
            .expect("channel table")
            .get(&self.id)
        {
            slot.credit.close();
        }
    }
}

/// Keeps a channel's slot in the table while either half lives.
struct SlotGuard {
    id: u32,
    shared: Arc<Shared>,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.shared
            .channels
            .lock()
            .expect("channel table")
            .remove(&self.id);
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut writer: W,
    transport: Arc<snow::StatelessTransportState>,
    mut bulk: mpsc::Receiver<Outgoing>,
    mut small: mpsc::UnboundedReceiver<Outgoing>,
    shared: Arc<Shared>,
) {
    let mut ended = shared.ended.subscribe();
    let mut nonce: u64 = 0;
    let mut small_plain = Vec::with_capacity(2048);
    let mut out = Vec::with_capacity(4 * (MAX_NOISE_MESSAGE + 2));
    let result: Result<()> = async {
        loop {
            let first = tokio::select! {
                biased;
                _ = ended.wait_for(|r| r.is_some()) => return Ok(()),
                m = small.recv() => m,
                m = bulk.recv() => m,
            };
            let Some(mut item) = first else { return Ok(()) };
            // Encrypt a batch: everything ready now, up to ~256 KiB.
            loop {
                match item {
                    Outgoing::Shutdown => {
                        writer
                            .write_all(&out)
                            .await
                            .map_err(|e| Error::io("send", e))?;
                        let _ = writer.shutdown().await;
                        return Err(Error::Closed("session closed".into()));
                    }
                    Outgoing::Frame(_) | Outgoing::Plain(_) => {
                        let plain: &[u8] = match &item {
                            Outgoing::Plain(p) => p,
                            Outgoing::Frame(frame) => {
                                small_plain.clear();
                                frame.encode_into(&mut small_plain);
                                &small_plain
                            }
                            Outgoing::Shutdown => unreachable!("handled above"),
                        };
                        let start = out.len();
                        out.resize(start + 2 + plain.len() + crate::frame::TAG_LEN, 0);
                        let n = transport.write_message(nonce, plain, &mut out[start + 2..])?;
                        nonce += 1;
                        out[start..start + 2].copy_from_slice(&(n as u16).to_be_bytes());
                        out.truncate(start + 2 + n);
                    }
                }
                if out.len() >= 256 << 10 {
                    break;
                }
                item = match small.try_recv() {
                    Ok(m) => m,
                    Err(_) => match bulk.try_recv() {
                        Ok(m) => m,
                        Err(_) => break,
                    },
                };
            }
            writer
                .write_all(&out)
                .await
                .map_err(|e| Error::io("send", e))?;
            out.clear();
        }
    }
    .await;
    if let Err(e) = result {
        shared.end(e.to_string());
    }
}

async fn read_loop<R: AsyncRead + Unpin>(
    reader: R,
    transport: Arc<snow::StatelessTransportState>,
    shared: Arc<Shared>,
    incoming: mpsc::Sender<Channel>,
    initiator: bool,
) {
    let mut ended = shared.ended.subscribe();
    let mut nonce: u64 = 0;
    let mut frames = FrameReader::new(reader);
    let mut plain = vec![0u8; MAX_NOISE_MESSAGE];
    let reason = loop {
        let frame = tokio::select! {
            _ = ended.wait_for(|r| r.is_some()) => return,
            f = frames.next() => f,
        };
        let cipher = match frame {
            Ok(Some(c)) => c,
            Ok(None) => break "peer closed the session".to_string(),
            Err(e) => break e.to_string(),
        };
        let len = match transport.read_message(nonce, cipher, &mut plain) {
            Ok(len) => len,
            Err(e) => {
                break format!("frame failed authentication ({e}): tampered, replayed or corrupt");
            }
        };
        nonce += 1;
        let inner = match Inner::decode(&plain[..len]) {
            Ok(f) => f,
            Err(e) => break e.to_string(),
        };
        if let Err(e) = dispatch(inner, &shared, &incoming, initiator) {
            break e.to_string();
        }
    };
    tracing::debug!("session reader ends: {reason}");
    shared.end(reason);
}

fn dispatch(
    inner: Inner,
    shared: &Arc<Shared>,
    incoming: &mpsc::Sender<Channel>,
    initiator: bool,
) -> Result<()> {
    match inner {
        Inner::Data {
            channel,
            bytes,
            last,
        } => {
            let table = shared.channels.lock().expect("channel table");
            if let Some(slot) = table.get(&channel) {
                let cost = bytes.len() + PIECE_OVERHEAD;
                let held = slot.unconsumed.fetch_add(cost, Ordering::AcqRel) + cost;
                if held > WINDOW {
                    return Err(Error::Malformed(format!(
                        "peer overran channel {channel}'s credit window ({held} > {WINDOW} bytes)"
                    )));
                }
                if slot.events.send(Event::Piece(bytes, last)).is_err() {
                    // Nobody reads this channel any more: discard, and give
                    // the credit straight back so the peer is not stalled.
                    slot.unconsumed.fetch_sub(cost, Ordering::AcqRel);
                    let _ = shared.small_tx.send(Outgoing::Frame(Inner::Credit {
                        channel,
                        bytes: cost as u32,
                    }));
                }
            }
            // Data for a channel we already dropped is discarded.
        }
        Inner::Open { channel, label } => {
            let peer_parity = if initiator { 0 } else { 1 };
            if channel == 0 || channel % 2 != peer_parity {
                return Err(Error::Malformed(format!(
                    "peer opened channel {channel} with a wrong id"
                )));
            }
            if shared
                .channels
                .lock()
                .expect("channel table")
                .contains_key(&channel)
            {
                return Err(Error::Malformed(format!("peer reopened channel {channel}")));
            }
            let ch = Channel::new(channel, label, shared.clone());
            if let Err(e) = incoming.try_send(ch) {
                let mut ch = match e {
                    mpsc::error::TrySendError::Full(ch) | mpsc::error::TrySendError::Closed(ch) => {
                        ch
                    }
                };
                ch.reset("too many channels waiting to be accepted");
            }
        }
        Inner::Credit { channel, bytes } => {
            if let Some(slot) = shared.channels.lock().expect("channel table").get(&channel) {
                if slot.credit.available_permits() + bytes as usize > 2 * WINDOW {
                    return Err(Error::Malformed(format!(
                        "peer granted excess credit on channel {channel}"
                    )));
                }
                slot.credit.add_permits(bytes as usize);
            }
        }
        Inner::Close { channel } => {
            if let Some(slot) = shared.channels.lock().expect("channel table").get(&channel) {
                let _ = slot.events.send(Event::Close);
            }
        }
        Inner::Reset { channel, reason } => {
            if let Some(slot) = shared.channels.lock().expect("channel table").get(&channel) {
                let _ = slot.events.send(Event::Reset(reason));
                slot.credit.close();
            }
        }
    }
    Ok(())
}
