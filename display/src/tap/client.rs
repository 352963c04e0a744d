//! The viewer-to-server half of the tap: vnc-rs' messages forwarded whole (its SetEncodings
//! with our two pseudo-encodings added), ours written in between.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tracing::{debug, trace};

use super::{Outgoing, State};
use crate::clipboard::{self, CLIENT_CUT_TEXT, EXTENDED_CLIPBOARD, Extended, FORMAT_TEXT};
use crate::seamless::{self, wire};

/// The longest message vnc-rs writes (a ClientCutText of its 1 MiB limit).
const MAX_MESSAGE: usize = (1 << 20) + 64;

/// Runs until vnc-rs or the server goes; then shuts the stream's write side.
pub(super) async fn run<R, W>(
    mut from_vnc: R,
    mut real: W,
    state: Arc<State>,
    mut outgoing: mpsc::Receiver<Outgoing>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let result = forward(&mut from_vnc, &mut real, &state, &mut outgoing).await;
    if let Err(e) = result {
        debug!("tap: the viewer's side ended: {e}");
    }
    let _ = real.shutdown().await;
}

async fn forward<R, W>(
    from_vnc: &mut R,
    real: &mut W,
    state: &State,
    outgoing: &mut mpsc::Receiver<Outgoing>,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    let mut pending = Vec::new();
    // The handshake passes as it comes; everything read once the server's ServerInit went
    // to vnc-rs is messages (vnc-rs writes them only after reading it).
    loop {
        let n = tokio::select! {
            n = from_vnc.read(&mut buf) => n?,
            _ = state.init_done.notified() => continue,
        };
        if n == 0 {
            return Ok(());
        }
        if state.initialised.load(Ordering::SeqCst) {
            pending.extend_from_slice(&buf[..n]);
            break;
        }
        real.write_all(&buf[..n]).await?;
    }
    loop {
        while let Some(length) = message_length(&pending)? {
            let mut message: Vec<u8> = pending.drain(..length).collect();
            adjust(&mut message, state);
            real.write_all(&message).await?;
        }
        real.flush().await?;
        tokio::select! {
            n = from_vnc.read(&mut buf) => {
                let n = n?;
                if n == 0 {
                    return Ok(());
                }
                pending.extend_from_slice(&buf[..n]);
            }
            message = outgoing.recv() => match message {
                Some(message) => ours(message, real, state).await?,
                None => return Ok(()),
            },
        }
    }
}

/// The length of the complete client message at the start of `bytes`, if it is all there.
fn message_length(bytes: &[u8]) -> std::io::Result<Option<usize>> {
    let Some(&kind) = bytes.first() else {
        return Ok(None);
    };
    let be16 = |at: usize| {
        bytes
            .get(at..at + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    };
    let be32 = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let length = match kind {
        0 => Some(20),
        2 => be16(2).map(|n| 4 + 4 * n),
        3 => Some(10),
        4 => Some(8),
        5 => Some(6),
        6 => be32(4).map(|n| 8 + n),
        251 => bytes.get(6).map(|&n| 8 + 16 * usize::from(n)),
        other => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("vnc-rs wrote message type {other}"),
            ));
        }
    };
    match length {
        Some(l) if l > MAX_MESSAGE => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a {l}-byte client message"),
        )),
        Some(l) if l <= bytes.len() => Ok(Some(l)),
        _ => Ok(None),
    }
}

/// Notes vnc-rs' pixel format; adds our pseudo-encodings to its SetEncodings.
fn adjust(message: &mut Vec<u8>, state: &State) {
    match message[0] {
        0 => state.set_format(&message[4..20]),
        2 => {
            let listed: Vec<i32> = message[4..]
                .chunks_exact(4)
                .map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            for extra in [EXTENDED_CLIPBOARD, seamless::PSEUDO_ENCODING] {
                if !listed.contains(&extra) {
                    message.extend_from_slice(&extra.to_be_bytes());
                }
            }
            let count = ((message.len() - 4) / 4) as u16;
            message[2..4].copy_from_slice(&count.to_be_bytes());
            trace!(count, "tap: encodings");
        }
        _ => {}
    }
}

/// Writes one message of ours.
async fn ours<W: AsyncWrite + Unpin>(
    message: Outgoing,
    real: &mut W,
    state: &State,
) -> std::io::Result<()> {
    match message {
        Outgoing::Message(bytes) => real.write_all(&bytes).await,
        Outgoing::Window(request) => {
            if state.seamless.load(Ordering::Relaxed) {
                real.write_all(&wire::encode_request(&request)).await
            } else {
                debug!(
                    ?request,
                    "tap: the server lists no windows; request dropped"
                );
                Ok(())
            }
        }
        Outgoing::Clipboard(text) => {
            *state.our_text.lock().unwrap_or_else(|p| p.into_inner()) = Some(text.clone());
            if state.extended_clipboard.load(Ordering::Relaxed) {
                // Announce it (the server takes the selection), then hand it over at once.
                let notify = Extended::Notify {
                    formats: FORMAT_TEXT,
                };
                real.write_all(&clipboard::encode_extended(CLIENT_CUT_TEXT, &notify))
                    .await?;
                real.write_all(&clipboard::encode_extended(
                    CLIENT_CUT_TEXT,
                    &Extended::Provide(Some(text)),
                ))
                .await
            } else {
                real.write_all(&clipboard::encode_plain(CLIENT_CUT_TEXT, &text))
                    .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_lengths_need_the_whole_message() {
        assert_eq!(message_length(&[]).unwrap(), None);
        assert_eq!(message_length(&[3; 9]).unwrap(), None);
        assert_eq!(message_length(&[3; 12]).unwrap(), Some(10));
        assert_eq!(message_length(&[2, 0, 0, 2, 0, 0, 0, 0]).unwrap(), None);
        assert_eq!(message_length(&[2, 0, 0, 1, 0, 0, 0, 0]).unwrap(), Some(8));
        assert_eq!(
            message_length(&[6, 0, 0, 0, 0, 0, 0, 1, b'x']).unwrap(),
            Some(9)
        );
        assert!(message_length(&[77]).is_err());
        assert!(message_length(&[6, 0, 0, 0, 0x7f, 0, 0, 0]).is_err());
    }

    #[test]
    fn our_encodings_are_added_once() {
        let state = State::default();
        let mut m = vec![2, 0, 0, 1, 0, 0, 0, 0];
        adjust(&mut m, &state);
        assert_eq!(&m[2..4], &[0, 3]);
        let again = m.clone();
        adjust(&mut m, &state);
        assert_eq!(m, again);
    }
}
