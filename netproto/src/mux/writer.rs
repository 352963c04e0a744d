//! The writer: one task seals queued frames in order and writes them.
//!
//! Frames wait in the outbox, bounded in bytes: data frames (which a
//! channel's sender encodes into a pooled buffer, its one copy of the
//! message) wait for room behind [`DATA_QUEUE`]; small frames never wait
//! but are capped by [`SMALL_QUEUE`]: a peer that stops reading while we
//! keep owing it credit, resets or closes ends the session instead of
//! growing our memory. Credit, open and reset frames overtake queued data;
//! close frames and the shutdown stay behind the data queued before them.
//!
//! The writer seals each frame in place (its own nonce counter) and writes
//! a batch with one vectored write, so nothing is copied again.

use std::collections::VecDeque;
use std::io::IoSlice;

use parking_lot::Mutex;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

use super::table::Shared;
use crate::cipher::Sealer;
use crate::error::{Error, Result};
use crate::frame::{Inner, MAX_NOISE_MESSAGE, encode_data};

/// Bytes of data frames queued before senders wait.
pub const DATA_QUEUE: usize = 256 << 10;
/// Bytes of small frames queued (each charged 64 bytes beyond its size) before
/// the session ends for a peer that does not read.
pub const SMALL_QUEUE: usize = 256 << 10;
/// What a queued small frame is charged beyond its bytes.
const SMALL_FRAME_COST: usize = 64;
/// Bytes written in one go, at most (unless one frame is larger).
const BATCH: usize = 256 << 10;
/// Buffers kept for reuse by data frames.
const POOL: usize = 12;
/// A buffer that holds any frame: length prefix, body, tag.
const FRAME_CAPACITY: usize = 2 + MAX_NOISE_MESSAGE;

/// A frame's plaintext behind a two-byte space for its outer length.
pub(super) struct Frame {
    buf: Vec<u8>,
    data: bool,
}

enum Queued {
    Frame(Frame),
    Shutdown,
}

#[derive(Default)]
struct State {
    urgent: VecDeque<Frame>,
    ordered: VecDeque<Queued>,
    data_bytes: usize,
    small_bytes: usize,
    small_peak: usize,
    pool: Vec<Vec<u8>>,
    closed: bool,
}

/// Frames waiting for the writer.
pub(super) struct Outbox {
    state: Mutex<State>,
    /// Wakes the writer.
    wake: Notify,
    /// Wakes senders waiting for room.
    room: Notify,
}

/// What the writer took.
pub(super) struct Batch {
    frames: Vec<Frame>,
    shutdown: bool,
}

impl Outbox {
    pub fn new() -> Outbox {
        Outbox {
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            room: Notify::new(),
        }
    }

    /// Encodes a data frame into a pooled buffer.
    pub fn data_frame(&self, channel: u32, last: bool, body: &[u8]) -> Frame {
        let mut buf = self
            .state
            .lock()
            .pool
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(FRAME_CAPACITY));
        buf.clear();
        buf.extend_from_slice(&[0, 0]);
        encode_data(&mut buf, channel, last, body);
        Frame { buf, data: true }
    }

    /// Queues a data frame, waiting while [`DATA_QUEUE`] bytes are queued.
    pub async fn push_data(&self, frame: Frame) -> std::result::Result<(), ()> {
        let mut frame = Some(frame);
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            {
                let mut state = self.state.lock();
                if state.closed {
                    return Err(());
                }
                if state.data_bytes < DATA_QUEUE {
                    let frame = frame.take().expect("pushed once");
                    state.data_bytes += frame.buf.len();
                    state.ordered.push_back(Queued::Frame(frame));
                    drop(state);
                    self.wake.notify_one();
                    return Ok(());
                }
            }
            room.await;
        }
    }

    /// Queues a small frame without waiting: ahead of data (`urgent`) or
    /// behind it. Fails when [`SMALL_QUEUE`] is exceeded.
    pub fn push_small(&self, inner: &Inner, urgent: bool) -> Result<()> {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&[0, 0]);
        inner.encode_into(&mut buf);
        let cost = buf.len() + SMALL_FRAME_COST;
        let frame = Frame { buf, data: false };
        let mut state = self.state.lock();
        if state.closed {
            return Ok(());
        }
        if state.small_bytes + cost > SMALL_QUEUE {
            return Err(Error::Limit(format!(
                "the peer is not reading: over {SMALL_QUEUE} bytes of control frames are queued for it"
            )));
        }
        state.small_bytes += cost;
        state.small_peak = state.small_peak.max(state.small_bytes);
        if urgent {
            state.urgent.push_back(frame);
        } else {
            state.ordered.push_back(Queued::Frame(frame));
        }
        drop(state);
        self.wake.notify_one();
        Ok(())
    }

    /// Queues the end of the session behind everything queued.
    pub fn push_shutdown(&self) {
        let mut state = self.state.lock();
        if !state.closed {
            state.ordered.push_back(Queued::Shutdown);
            drop(state);
            self.wake.notify_one();
        }
    }

    /// Drops everything queued; later pushes are ignored or fail.
    pub fn close(&self) {
        let mut state = self.state.lock();
        state.closed = true;
        state.urgent.clear();
        state.ordered.clear();
        state.data_bytes = 0;
        state.small_bytes = 0;
        state.pool.clear();
        drop(state);
        self.wake.notify_one();
        self.room.notify_waiters();
    }

    /// Bytes queued now (data and small frames) and the most small-frame
    /// bytes ever queued.
    pub fn queued(&self) -> (usize, usize) {
        let state = self.state.lock();
        (state.data_bytes + state.small_bytes, state.small_peak)
    }

    /// Takes the next batch: urgent frames, then queued ones in order up to
    /// [`BATCH`] bytes or a shutdown. `None` once closed.
    fn take(&self, batch: &mut Batch) -> Option<()> {
        let mut state = self.state.lock();
        if state.closed {
            return None;
        }
        let mut bytes = 0;
        while let Some(frame) = state.urgent.pop_front() {
            state.small_bytes -= frame.buf.len() + SMALL_FRAME_COST;
            bytes += frame.buf.len();
            batch.frames.push(frame);
        }
        while bytes < BATCH {
            match state.ordered.pop_front() {
                None => break,
                Some(Queued::Shutdown) => {
                    batch.shutdown = true;
                    break;
                }
                Some(Queued::Frame(frame)) => {
                    if frame.data {
                        state.data_bytes -= frame.buf.len();
                    } else {
                        state.small_bytes -= frame.buf.len() + SMALL_FRAME_COST;
                    }
                    bytes += frame.buf.len();
                    batch.frames.push(frame);
                }
            }
        }
        drop(state);
        self.room.notify_waiters();
        Some(())
    }

    /// Keeps written data buffers for reuse.
    fn recycle(&self, frames: &mut Vec<Frame>) {
        let mut state = self.state.lock();
        for frame in frames.drain(..) {
            if frame.data && state.pool.len() < POOL && !state.closed {
                state.pool.push(frame.buf);
            }
        }
    }
}

/// Seals and writes queued frames until the session ends or shuts down.
pub(super) async fn write_loop<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut sealer: Sealer,
    shared: std::sync::Arc<Shared>,
) {
    let mut ended = shared.ended.subscribe();
    let mut batch = Batch {
        frames: Vec::new(),
        shutdown: false,
    };
    let result: Result<()> = async {
        loop {
            if shared.outbox.take(&mut batch).is_none() {
                return Ok(());
            }
            if batch.frames.is_empty() && !batch.shutdown {
                tokio::select! {
                    _ = shared.outbox.wake.notified() => continue,
                    _ = ended.wait_for(|r| r.is_some()) => return Ok(()),
                }
            }
            for frame in &mut batch.frames {
                sealer.seal(&mut frame.buf, 2)?;
                let len = (frame.buf.len() - 2) as u16;
                frame.buf[..2].copy_from_slice(&len.to_be_bytes());
            }
            tokio::select! {
                r = write_batch(&mut writer, &batch.frames) => r?,
                _ = ended.wait_for(|r| r.is_some()) => return Ok(()),
            }
            shared.outbox.recycle(&mut batch.frames);
            if batch.shutdown {
                let _ = writer.shutdown().await;
                return Err(Error::Closed("session closed".into()));
            }
        }
    }
    .await;
    if let Err(e) = result {
        shared.end(e.to_string());
    }
}

async fn write_batch<W: AsyncWrite + Unpin>(writer: &mut W, frames: &[Frame]) -> Result<()> {
    let mut slices: Vec<IoSlice<'_>> = frames.iter().map(|f| IoSlice::new(&f.buf)).collect();
    let mut slices = &mut slices[..];
    while !slices.is_empty() {
        let n = writer
            .write_vectored(slices)
            .await
            .map_err(|e| Error::io("send", e))?;
        if n == 0 {
            return Err(Error::io(
                "send",
                std::io::Error::from(std::io::ErrorKind::WriteZero),
            ));
        }
        IoSlice::advance_slices(&mut slices, n);
    }
    writer.flush().await.map_err(|e| Error::io("send", e))
}
