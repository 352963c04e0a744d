//! Reading outer frames, each into a buffer of its own.
//!
//! A frame is read straight into the buffer it is then decrypted in, and a
//! data piece is handed on as a view of that buffer (no copy). So that a
//! piece held by the application pins little more than itself, small frames
//! get buffers of their exact size; large ones (at least [`POOLED_FRAME`]
//! bytes, so at most 1.4 times their size) get a full-size buffer from the
//! reader's pool, which goes back to the pool when the last view of it is
//! dropped: no allocation, and no fresh pages to fault in, per frame.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::MAX_NOISE_MESSAGE;
use crate::error::{Error, Result};

/// Bytes read ahead for frame headers and small frames.
const STAGE: usize = 8 << 10;
/// Bytes read ahead after a large frame: likely the header of another large
/// frame, whose body is better read straight into its own buffer.
const STAGE_AFTER_LARGE: usize = 512;
/// Frames at least this large use pooled full-size buffers.
pub const POOLED_FRAME: usize = 48 << 10;
/// Full-size buffers a reader keeps for reuse: enough for a whole window of
/// one channel in flight (fewer, and the allocator gives the memory back to
/// the system only to fault it in again).
const POOL: usize = 64;

/// Spare full-size frame buffers of one reader.
#[derive(Default)]
struct FramePool(Mutex<Vec<Vec<u8>>>);

impl FramePool {
    fn get(&self) -> Vec<u8> {
        self.0
            .lock()
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(MAX_NOISE_MESSAGE))
    }

    fn put(&self, mut buf: Vec<u8>) {
        let mut spare = self.0.lock();
        if spare.len() < POOL {
            buf.clear();
            spare.push(buf);
        }
    }
}

/// One received frame (decrypted in place once opened).
pub struct InFrame {
    buf: Vec<u8>,
    pool: Option<Arc<FramePool>>,
}

impl InFrame {
    /// Drops the bytes past `len` (the tag, once opened).
    pub fn truncate(&mut self, len: usize) {
        self.buf.truncate(len);
    }

    /// The frame as `Bytes`, without copying it.
    pub fn into_bytes(self) -> Bytes {
        Bytes::from_owner(self)
    }
}

impl Deref for InFrame {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf
    }
}

impl DerefMut for InFrame {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }
}

impl AsRef<[u8]> for InFrame {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for InFrame {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            pool.put(std::mem::take(&mut self.buf));
        }
    }
}

/// Reads outer frames from a stream (see the module's documentation).
///
/// Headers and small frames come through a small staging buffer (few
/// system calls for many small frames); the rest of a large frame is read
/// straight into its own buffer.
pub struct FrameReader<R> {
    inner: R,
    stage: Box<[u8]>,
    start: usize,
    end: usize,
    /// How much to read ahead next.
    ahead: usize,
    pool: Arc<FramePool>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Wraps a stream.
    pub fn new(inner: R) -> Self {
        FrameReader {
            inner,
            stage: vec![0u8; STAGE].into_boxed_slice(),
            start: 0,
            end: 0,
            ahead: STAGE,
            pool: Arc::default(),
        }
    }

    /// The next frame's body; `Ok(None)` on a clean end of stream between
    /// frames.
    pub async fn next(&mut self) -> Result<Option<InFrame>> {
        while self.end - self.start < 2 {
            self.stage.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            let limit = (self.end + self.ahead).min(STAGE);
            let n = self
                .inner
                .read(&mut self.stage[self.end..limit])
                .await
                .map_err(|e| Error::io("receive frame", e))?;
            if n == 0 {
                return if self.end == 0 {
                    Ok(None)
                } else {
                    Err(Error::Malformed(
                        "truncated frame: stream ended inside a frame header".into(),
                    ))
                };
            }
            self.end += n;
        }
        let len = u16::from_be_bytes([self.stage[self.start], self.stage[self.start + 1]]) as usize;
        self.start += 2;
        if len == 0 {
            return Err(Error::Malformed("zero-length frame".into()));
        }
        let large = len >= POOLED_FRAME;
        self.ahead = if large { STAGE_AFTER_LARGE } else { STAGE };
        let mut frame = if large {
            InFrame {
                buf: self.pool.get(),
                pool: Some(self.pool.clone()),
            }
        } else {
            InFrame {
                buf: Vec::with_capacity(len),
                pool: None,
            }
        };
        let staged = (self.end - self.start).min(len);
        frame
            .buf
            .extend_from_slice(&self.stage[self.start..self.start + staged]);
        self.start += staged;
        while frame.buf.len() < len {
            let want = (len - frame.buf.len()) as u64;
            let n = (&mut self.inner)
                .take(want)
                .read_buf(&mut frame.buf)
                .await
                .map_err(|e| Error::io("receive frame", e))?;
            if n == 0 {
                return Err(Error::Malformed(format!(
                    "truncated frame: stream ended {} bytes into a {len}-byte frame",
                    frame.buf.len()
                )));
            }
        }
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frame_reader_splits_frames_and_rejects_bad_ones() {
        let mut stream: Vec<u8> = Vec::new();
        for body in [&b"abc"[..], &[9u8; 60000][..], b"z"] {
            stream.extend_from_slice(&(body.len() as u16).to_be_bytes());
            stream.extend_from_slice(body);
        }
        let mut r = FrameReader::new(&stream[..]);
        let small = r.next().await.unwrap().unwrap();
        assert_eq!(&small[..], b"abc");
        assert!(
            small.buf.capacity() < 64,
            "a small frame gets a small buffer"
        );
        let large = r.next().await.unwrap().unwrap();
        assert_eq!(large.len(), 60000);
        assert!(large.iter().all(|&b| b == 9));
        assert_eq!(&r.next().await.unwrap().unwrap()[..], b"z");
        assert!(r.next().await.unwrap().is_none());
        let mut r = FrameReader::new(&[0u8, 10, 1, 2][..]);
        let err = r.next().await.err().expect("truncated").to_string();
        assert!(err.contains("truncated"), "{err}");
        let mut r = FrameReader::new(&[0u8][..]);
        let err = r.next().await.err().expect("truncated").to_string();
        assert!(err.contains("truncated"), "{err}");
        let mut r = FrameReader::new(&[0u8, 0][..]);
        let err = r.next().await.err().expect("zero").to_string();
        assert!(err.contains("zero-length"), "{err}");
    }

    #[tokio::test]
    async fn large_frames_return_their_buffer_when_the_last_view_drops() {
        let mut stream: Vec<u8> = Vec::new();
        for _ in 0..3 {
            stream.extend_from_slice(&(60000u16).to_be_bytes());
            stream.extend_from_slice(&[1u8; 60000]);
        }
        let mut r = FrameReader::new(&stream[..]);
        let first = r.next().await.unwrap().unwrap().into_bytes();
        let view = first.slice(10..20);
        drop(first);
        assert_eq!(r.pool.0.lock().len(), 0, "still viewed");
        drop(view);
        assert_eq!(r.pool.0.lock().len(), 1, "back in the pool");
        let second = r.next().await.unwrap().unwrap();
        assert_eq!(r.pool.0.lock().len(), 0, "reused");
        assert_eq!(second.len(), 60000);
    }
}
