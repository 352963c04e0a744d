//! Byte streams through a channel: [`splice`] joins a [`Channel`] and any
//! local byte stream (a unix socket to a VNC server, a viewer's connection),
//! copying both ways with the channel's flow control, so a reader that stalls
//! holds back only its own stream.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::{Error, Result};
use crate::mux::{Channel, ChannelReceiver, ChannelSender};

/// Bytes read from the stream per channel message: one piece, so a message
/// is never split into a full piece and a sliver.
const CHUNK: usize = crate::frame::MAX_PIECE;

/// What a finished [`splice`] moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spliced {
    /// Bytes from the stream into the channel.
    pub to_channel: u64,
    /// Bytes from the channel into the stream.
    pub from_channel: u64,
}

/// Copies bytes both ways between `channel` and `stream` until both
/// directions have ended.
///
/// End of file on the stream closes the channel's sending side; the peer
/// closing the channel shuts down the stream's writing side. A channel reset,
/// the session ending or an I/O error ends both directions at once and is
/// returned.
pub async fn splice<S>(channel: Channel, stream: S) -> Result<Spliced>
where
    S: AsyncRead + AsyncWrite + Send,
{
    let (tx, rx) = channel.split();
    let (reader, writer) = tokio::io::split(stream);
    let up = stream_to_channel(reader, tx);
    let down = channel_to_stream(rx, writer);
    tokio::pin!(up, down);
    let mut stats = Spliced::default();
    let (mut up_done, mut down_done) = (false, false);
    while !(up_done && down_done) {
        tokio::select! {
            r = &mut up, if !up_done => {
                stats.to_channel = r?;
                up_done = true;
            }
            r = &mut down, if !down_done => {
                stats.from_channel = r?;
                down_done = true;
            }
        }
    }
    Ok(stats)
}

async fn stream_to_channel<R: AsyncRead>(reader: R, tx: ChannelSender) -> Result<u64> {
    tokio::pin!(reader);
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = reader
            .read(&mut buf)
            .await
            .map_err(|e| Error::io("read local stream", e))?;
        if n == 0 {
            // Dropping `tx` closes our side of the channel.
            return Ok(total);
        }
        tx.send(&buf[..n]).await?;
        total += n as u64;
    }
}

async fn channel_to_stream<W: AsyncWrite>(mut rx: ChannelReceiver, writer: W) -> Result<u64> {
    tokio::pin!(writer);
    let mut total = 0u64;
    while let Some(bytes) = rx.recv().await? {
        writer
            .write_all(&bytes)
            .await
            .map_err(|e| Error::io("write local stream", e))?;
        total += bytes.len() as u64;
    }
    let _ = writer.shutdown().await;
    Ok(total)
}
