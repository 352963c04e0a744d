//! Counters of what a viewer received, for benchmarks, and the stream wrapper that counts the
//! bytes on the wire.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What a viewer has received since it connected. All counters only grow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ViewerStats {
    /// Update batches: runs of framebuffer rectangles the viewer applied together before it
    /// asked the server for the next update. With one update outstanding at a time this is
    /// about the number of server updates (a large update may arrive as more than one batch).
    pub updates: u64,
    /// Framebuffer rectangles applied (pixels or copies; pseudo-rectangles not counted).
    pub rects: u64,
    /// Decoded pixel bytes received (4 per pixel).
    pub pixel_bytes: u64,
    /// Bytes read from the stream, RFB framing and compression included.
    pub wire_bytes: u64,
}

/// The live counters behind [`ViewerStats`], shared by the driver task and readers.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    updates: AtomicU64,
    rects: AtomicU64,
    pixel_bytes: AtomicU64,
    wire_bytes: Arc<AtomicU64>,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> ViewerStats {
        ViewerStats {
            updates: self.updates.load(Ordering::Relaxed),
            rects: self.rects.load(Ordering::Relaxed),
            pixel_bytes: self.pixel_bytes.load(Ordering::Relaxed),
            wire_bytes: self.wire_bytes.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn add_update(&self) {
        self.updates.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_rect(&self, pixel_bytes: usize) {
        self.rects.fetch_add(1, Ordering::Relaxed);
        self.pixel_bytes
            .fetch_add(pixel_bytes as u64, Ordering::Relaxed);
    }

    /// Wraps `stream` so that every byte read from it is counted here.
    pub(crate) fn count<S>(&self, stream: S) -> CountingStream<S> {
        CountingStream {
            inner: stream,
            read: Arc::clone(&self.wire_bytes),
        }
    }
}

/// A byte stream that counts what is read from it.
#[derive(Debug)]
pub(crate) struct CountingStream<S> {
    inner: S,
    read: Arc<AtomicU64>,
}

impl<S: AsyncRead + Unpin> AsyncRead for CountingStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        let got = buf.filled().len().saturating_sub(before);
        this.read.fetch_add(got as u64, Ordering::Relaxed);
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CountingStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn counts_bytes_read_not_written() {
        let counters = Counters::default();
        let (a, mut b) = tokio::io::duplex(64);
        let mut counted = counters.count(a);
        b.write_all(b"hello").await.unwrap();
        counted.write_all(b"ignored").await.unwrap();
        let mut buf = [0u8; 5];
        counted.read_exact(&mut buf).await.unwrap();
        assert_eq!(counters.snapshot().wire_bytes, 5);
        counters.add_rect(16);
        counters.add_update();
        let s = counters.snapshot();
        assert_eq!((s.updates, s.rects, s.pixel_bytes), (1, 1, 16));
    }
}
