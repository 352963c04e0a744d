//! Framing on the wire and inside the encrypted session.
//!
//! **Outer frames** (on TCP): a big-endian `u16` length followed by that many
//! bytes of one Noise message (handshake or transport). A Noise message is at
//! most 65535 bytes, so no length can be oversized; a zero length is refused.
//!
//! **Inner frames** (the plaintext of a transport message): a one-byte kind,
//! a big-endian `u32` channel id, then the kind's body:
//!
//! | kind | name | body |
//! |---|---|---|
//! | 0 | `Data` | message bytes; the last piece of a message |
//! | 1 | `DataMore` | message bytes; more pieces of this message follow |
//! | 2 | `Open` | UTF-8 label of the new channel (≤ 256 bytes) |
//! | 3 | `Credit` | `u32` bytes the receiver frees for the sender |
//! | 4 | `Close` | empty: the sender will send no more on this channel |
//! | 5 | `Reset` | UTF-8 reason: the channel ended in error |
//!
//! Any other kind, a short header, an over-long label or a credit body of
//! the wrong size is [`Error::Malformed`] and ends the session.

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::{Error, Result};

mod reader;

pub use reader::{FrameReader, InFrame};

/// The largest Noise message (and so the largest outer frame body).
pub const MAX_NOISE_MESSAGE: usize = 65535;
/// The AEAD tag added by encryption.
pub const TAG_LEN: usize = 16;
/// Bytes of an inner frame header.
pub const INNER_HEADER: usize = 5;
/// The most message bytes one inner frame carries.
pub const MAX_PIECE: usize = MAX_NOISE_MESSAGE - TAG_LEN - INNER_HEADER;
/// The longest channel label.
pub const MAX_LABEL: usize = 256;

/// Writes one outer frame.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, body: &[u8]) -> Result<()> {
    debug_assert!(!body.is_empty() && body.len() <= MAX_NOISE_MESSAGE);
    let len = (body.len() as u16).to_be_bytes();
    w.write_all(&len)
        .await
        .map_err(|e| Error::io("send frame", e))?;
    w.write_all(body)
        .await
        .map_err(|e| Error::io("send frame", e))?;
    Ok(())
}

/// Reads one outer frame into `buf` (at least [`MAX_NOISE_MESSAGE`] long).
///
/// Returns `Ok(None)` on a clean end of stream before a frame starts.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> Result<Option<usize>> {
    let mut len = [0u8; 2];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(Error::io("receive frame", e)),
    }
    let len = u16::from_be_bytes(len) as usize;
    if len == 0 {
        return Err(Error::Malformed("zero-length frame".into()));
    }
    r.read_exact(&mut buf[..len]).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::Malformed(format!(
                "truncated frame: stream ended inside a {len}-byte frame"
            ))
        } else {
            Error::io("receive frame", e)
        }
    })?;
    Ok(Some(len))
}

/// Appends a data frame's plaintext (header and body) to `out`.
pub fn encode_data(out: &mut Vec<u8>, channel: u32, last: bool, body: &[u8]) {
    out.push(if last { DATA } else { DATA_MORE });
    out.extend_from_slice(&channel.to_be_bytes());
    out.extend_from_slice(body);
}

/// One decoded inner frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inner {
    /// A piece of a message; `last` marks its final piece.
    Data {
        /// Channel id.
        channel: u32,
        /// The bytes.
        bytes: Bytes,
        /// Whether this piece ends the message.
        last: bool,
    },
    /// The sender opens a channel.
    Open {
        /// Channel id.
        channel: u32,
        /// What the channel is for.
        label: String,
    },
    /// The receiver of a channel grants the sender more bytes.
    Credit {
        /// Channel id.
        channel: u32,
        /// Bytes granted.
        bytes: u32,
    },
    /// The sender is done sending on the channel.
    Close {
        /// Channel id.
        channel: u32,
    },
    /// The channel failed.
    Reset {
        /// Channel id.
        channel: u32,
        /// Why.
        reason: String,
    },
}

const DATA: u8 = 0;
const DATA_MORE: u8 = 1;
const OPEN: u8 = 2;
const CREDIT: u8 = 3;
const CLOSE: u8 = 4;
const RESET: u8 = 5;

impl Inner {
    /// Appends the encoded frame to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let (kind, channel) = match self {
            Inner::Data { channel, last, .. } => (if *last { DATA } else { DATA_MORE }, *channel),
            Inner::Open { channel, .. } => (OPEN, *channel),
            Inner::Credit { channel, .. } => (CREDIT, *channel),
            Inner::Close { channel } => (CLOSE, *channel),
            Inner::Reset { channel, .. } => (RESET, *channel),
        };
        out.push(kind);
        out.extend_from_slice(&channel.to_be_bytes());
        match self {
            Inner::Data { bytes, .. } => out.extend_from_slice(bytes),
            Inner::Open { label, .. } => out.extend_from_slice(truncate(label, MAX_LABEL)),
            Inner::Credit { bytes, .. } => out.extend_from_slice(&bytes.to_be_bytes()),
            Inner::Close { .. } => {}
            Inner::Reset { reason, .. } => out.extend_from_slice(truncate(reason, 1024)),
        }
    }

    /// Decodes one received inner frame; a data frame's bytes stay where
    /// they are (no copy): the returned `Bytes` is a view of the frame.
    pub fn decode_owned(plain: InFrame) -> Result<Inner> {
        if plain.len() >= INNER_HEADER && matches!(plain[0], DATA | DATA_MORE) {
            let last = plain[0] == DATA;
            let channel = u32::from_be_bytes(plain[1..5].try_into().expect("4 bytes"));
            return Ok(Inner::Data {
                channel,
                bytes: plain.into_bytes().slice(INNER_HEADER..),
                last,
            });
        }
        Self::decode(&plain)
    }

    /// Decodes one inner frame; a data frame's bytes are copied.
    pub fn decode(plain: &[u8]) -> Result<Inner> {
        if plain.len() < INNER_HEADER {
            return Err(Error::Malformed(format!(
                "inner frame of {} bytes is shorter than its header",
                plain.len()
            )));
        }
        let kind = plain[0];
        let channel = u32::from_be_bytes(plain[1..5].try_into().expect("4 bytes"));
        let body = &plain[INNER_HEADER..];
        let text = |what: &str, max: usize| -> Result<String> {
            if body.len() > max {
                return Err(Error::Malformed(format!("{what} of {} bytes", body.len())));
            }
            String::from_utf8(body.to_vec())
                .map_err(|_| Error::Malformed(format!("{what} is not UTF-8")))
        };
        Ok(match kind {
            DATA | DATA_MORE => Inner::Data {
                channel,
                bytes: Bytes::copy_from_slice(body),
                last: kind == DATA,
            },
            OPEN => Inner::Open {
                channel,
                label: text("channel label", MAX_LABEL)?,
            },
            CREDIT => Inner::Credit {
                channel,
                bytes: u32::from_be_bytes(body.try_into().map_err(|_| {
                    Error::Malformed(format!("credit body of {} bytes", body.len()))
                })?),
            },
            CLOSE if body.is_empty() => Inner::Close { channel },
            CLOSE => return Err(Error::Malformed("close frame with a body".into())),
            RESET => Inner::Reset {
                channel,
                reason: text("reset reason", 1024)?,
            },
            other => return Err(Error::Malformed(format!("unknown frame kind {other}"))),
        })
    }
}

fn truncate(s: &str, max: usize) -> &[u8] {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s.as_bytes()[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_roundtrips() {
        let frames = [
            Inner::Data {
                channel: 7,
                bytes: Bytes::from_static(b"hello"),
                last: true,
            },
            Inner::Data {
                channel: 1 << 31,
                bytes: Bytes::new(),
                last: false,
            },
            Inner::Open {
                channel: 3,
                label: "vnc:task-4".into(),
            },
            Inner::Credit {
                channel: 3,
                bytes: 1 << 20,
            },
            Inner::Close { channel: 9 },
            Inner::Reset {
                channel: 9,
                reason: "disk full".into(),
            },
        ];
        for f in frames {
            let mut out = Vec::new();
            f.encode_into(&mut out);
            assert_eq!(Inner::decode(&out).unwrap(), f);
        }
    }

    #[test]
    fn malformed_frames_are_errors() {
        assert!(Inner::decode(&[]).is_err());
        assert!(Inner::decode(&[0, 0, 0]).is_err());
        assert!(Inner::decode(&[9, 0, 0, 0, 1]).is_err());
        assert!(Inner::decode(&[CREDIT, 0, 0, 0, 1, 1, 2]).is_err());
        assert!(Inner::decode(&[CLOSE, 0, 0, 0, 1, 1]).is_err());
        assert!(Inner::decode(&[OPEN, 0, 0, 0, 1, 0xff, 0xfe]).is_err());
        let mut long = vec![OPEN, 0, 0, 0, 1];
        long.extend(std::iter::repeat_n(b'a', MAX_LABEL + 1));
        assert!(Inner::decode(&long).is_err());
    }

    #[tokio::test]
    async fn outer_frames_reject_zero_and_truncated() {
        let mut buf = vec![0u8; MAX_NOISE_MESSAGE];
        let mut zero: &[u8] = &[0, 0];
        assert!(read_frame(&mut zero, &mut buf).await.is_err());
        let mut short: &[u8] = &[0, 10, 1, 2, 3];
        let err = read_frame(&mut short, &mut buf).await.unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
        let mut empty: &[u8] = &[];
        assert_eq!(read_frame(&mut empty, &mut buf).await.unwrap(), None);
    }
}

#[cfg(test)]
mod random_input {
    use super::Inner;

    /// A small deterministic generator, so failures reproduce.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn decoders_never_panic_on_random_bytes() {
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..50_000 {
            let len = (xorshift(&mut s) % 80) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| xorshift(&mut s) as u8).collect();
            let _ = Inner::decode(&bytes);
            let _ = crate::wire::decode(&bytes);
        }
    }
}
