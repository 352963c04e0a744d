//! Text clipboards in RFB: the plain cut-text messages (Latin-1, RFC 6143 §7.5.6 and §7.6.4)
//! and the Extended Clipboard pseudo-encoding (UTF-8, zlib-compressed), which TigerVNC's Xvnc
//! 1.12 offers.
//!
//! Both directions use one frame: message type 3 (server) or 6 (client), three bytes of
//! padding, an S32 length and the payload. A negative length, only after both sides
//! announced [`EXTENDED_CLIPBOARD`], means an extended payload of `-length` bytes: U32 flags
//! (formats in bits 0–15, one action in bits 24–28), then for *caps* the largest size taken
//! of each format listed, for *provide* a zlib stream of U32 length and data per format
//! (text: UTF-8, CRLF line ends, NUL-terminated); request, peek and notify carry nothing more.
//! Only text is handled; at most [`MAX_CLIPBOARD`] bytes of it, either way.

use std::io::{Read, Write};
use std::sync::Arc;

use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;

/// The most clipboard text (UTF-8 bytes) sent or taken; larger clipboards are not shared.
pub const MAX_CLIPBOARD: usize = 1 << 20;
/// The Extended Clipboard pseudo-encoding.
pub const EXTENDED_CLIPBOARD: i32 = 0xC0A1_E5CE_u32 as i32;
/// The largest cut-text payload read off the wire (a compressed provide of
/// [`MAX_CLIPBOARD`] bytes is smaller; plain Latin-1 text is one byte a character). Longer
/// ones are skipped unread.
pub(crate) const MAX_WIRE: u32 = MAX_CLIPBOARD as u32 + 64 * 1024;

/// A clipboard text received from the other side of a connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteClipboard {
    /// Grows with each text received (0: none yet).
    pub serial: u64,
    /// The text.
    pub text: Arc<str>,
}

/// Format: UTF-8 text.
pub(crate) const FORMAT_TEXT: u32 = 1;
/// Actions.
pub(crate) const ACTION_CAPS: u32 = 1 << 24;
pub(crate) const ACTION_REQUEST: u32 = 1 << 25;
pub(crate) const ACTION_PEEK: u32 = 1 << 26;
pub(crate) const ACTION_NOTIFY: u32 = 1 << 27;
pub(crate) const ACTION_PROVIDE: u32 = 1 << 28;
const ACTIONS: u32 = 0xff00_0000;
const FORMATS: u32 = 0x0000_ffff;

/// Message types of the cut-text messages.
pub(crate) const SERVER_CUT_TEXT: u8 = 3;
pub(crate) const CLIENT_CUT_TEXT: u8 = 6;

/// One extended clipboard message, reduced to what text needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Extended {
    /// The sender's capabilities: its actions, and the largest text it takes unasked
    /// (0: only notify).
    Caps {
        /// Action bits.
        actions: u32,
        /// Largest text accepted in an unsolicited provide, if text is a format it has.
        text_max: Option<u32>,
    },
    /// Send me your clipboard (if text is among `formats`).
    Request {
        /// Format bits.
        formats: u32,
    },
    /// Tell me which formats your clipboard has.
    Peek,
    /// My clipboard changed and has these formats (0: it is empty).
    Notify {
        /// Format bits.
        formats: u32,
    },
    /// My clipboard's text (`None` if it offered other formats only).
    Provide(Option<String>),
}

/// What is wrong with a clipboard message (it is skipped; the connection goes on).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("clipboard message: {0}")]
pub struct ClipboardError(String);

fn bad(why: impl Into<String>) -> ClipboardError {
    ClipboardError(why.into())
}

/// Decodes an extended payload (the bytes after the negative length).
pub(crate) fn decode_extended(payload: &[u8]) -> Result<Extended, ClipboardError> {
    let flags = u32::from_be_bytes(
        payload
            .get(..4)
            .ok_or_else(|| bad("no flags"))?
            .try_into()
            .expect("4 bytes"),
    );
    let rest = &payload[4..];
    let (actions, formats) = (flags & ACTIONS, flags & FORMATS);
    if actions & ACTION_CAPS != 0 {
        // One size per format bit set, in bit order; text is bit 0, so first if present.
        let text_max = if formats & FORMAT_TEXT != 0 {
            let size = rest.get(..4).ok_or_else(|| bad("caps without sizes"))?;
            Some(u32::from_be_bytes(size.try_into().expect("4 bytes")))
        } else {
            None
        };
        return Ok(Extended::Caps {
            actions: actions & !ACTION_CAPS,
            text_max,
        });
    }
    match actions {
        ACTION_REQUEST => Ok(Extended::Request { formats }),
        ACTION_PEEK => Ok(Extended::Peek),
        ACTION_NOTIFY => Ok(Extended::Notify { formats }),
        ACTION_PROVIDE => {
            if formats & FORMAT_TEXT == 0 {
                return Ok(Extended::Provide(None));
            }
            // Inflate no more than the largest text plus its length and NUL.
            // TigerVNC sync-flushes the stream without ending it: what was inflated before
            // the missing end is the data.
            let mut inflated = Vec::new();
            let read = ZlibDecoder::new(rest)
                .take(MAX_CLIPBOARD as u64 + 8)
                .read_to_end(&mut inflated);
            if let Err(e) = read
                && inflated.len() < 4
            {
                return Err(bad(format!("zlib: {e}")));
            }
            let length = inflated
                .get(..4)
                .map(|b| u32::from_be_bytes(b.try_into().expect("4")) as usize)
                .ok_or_else(|| bad("provide without a length"))?;
            if length > MAX_CLIPBOARD + 1 {
                return Err(bad(format!(
                    "{length} bytes of text (at most {MAX_CLIPBOARD})"
                )));
            }
            let data = inflated
                .get(4..4 + length)
                .ok_or_else(|| bad("provide cut short"))?;
            let data = data.strip_suffix(&[0]).unwrap_or(data);
            Ok(Extended::Provide(Some(
                String::from_utf8_lossy(data).replace("\r\n", "\n"),
            )))
        }
        other => Err(bad(format!("actions {other:#x}"))),
    }
}

/// A whole cut-text message of `message_type` with an extended payload.
pub(crate) fn encode_extended(message_type: u8, message: &Extended) -> Vec<u8> {
    let mut payload = Vec::new();
    match message {
        Extended::Caps { actions, text_max } => {
            payload.extend_from_slice(&(ACTION_CAPS | actions | FORMAT_TEXT).to_be_bytes());
            payload.extend_from_slice(&text_max.unwrap_or(0).to_be_bytes());
        }
        Extended::Request { formats } => {
            payload.extend_from_slice(&(ACTION_REQUEST | formats).to_be_bytes());
        }
        Extended::Peek => payload.extend_from_slice(&ACTION_PEEK.to_be_bytes()),
        Extended::Notify { formats } => {
            payload.extend_from_slice(&(ACTION_NOTIFY | formats).to_be_bytes());
        }
        Extended::Provide(text) => {
            let Some(text) = text else {
                payload.extend_from_slice(&ACTION_PROVIDE.to_be_bytes());
                return frame(message_type, -(payload.len() as i32), &payload);
            };
            payload.extend_from_slice(&(ACTION_PROVIDE | FORMAT_TEXT).to_be_bytes());
            let mut data = text.replace('\n', "\r\n").into_bytes();
            data.push(0);
            let mut z = ZlibEncoder::new(Vec::new(), Compression::fast());
            // Writing into a Vec cannot fail.
            let _ = z.write_all(&(data.len() as u32).to_be_bytes());
            let _ = z.write_all(&data);
            payload.extend_from_slice(&z.finish().unwrap_or_default());
        }
    }
    frame(message_type, -(payload.len() as i32), &payload)
}

/// A whole plain cut-text message: `text` in Latin-1, other characters as `?`.
pub(crate) fn encode_plain(message_type: u8, text: &str) -> Vec<u8> {
    let latin1: Vec<u8> = text
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect();
    frame(message_type, latin1.len() as i32, &latin1)
}

/// Plain cut text (Latin-1) as a string.
pub(crate) fn decode_plain(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

fn frame(message_type: u8, length: i32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&[message_type, 0, 0, 0]);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The capabilities ZOS announces: text up to [`MAX_CLIPBOARD`], sent unasked, and every
/// action.
pub(crate) fn our_caps() -> Extended {
    Extended::Caps {
        actions: ACTION_REQUEST | ACTION_PEEK | ACTION_NOTIFY | ACTION_PROVIDE,
        text_max: Some(MAX_CLIPBOARD as u32),
    }
}

/// Whether `text` may be shared (it fits the cap).
pub fn fits(text: &str) -> bool {
    text.len() <= MAX_CLIPBOARD
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(message: &[u8]) -> &[u8] {
        let length = i32::from_be_bytes(message[4..8].try_into().unwrap());
        assert!(length < 0);
        assert_eq!(message.len(), 8 + length.unsigned_abs() as usize);
        &message[8..]
    }

    #[test]
    fn utf8_text_round_trips_through_provide() {
        let text = "héllo ✓\nsecond line\n";
        let m = encode_extended(CLIENT_CUT_TEXT, &Extended::Provide(Some(text.into())));
        assert_eq!(m[0], CLIENT_CUT_TEXT);
        assert_eq!(
            decode_extended(payload(&m)).unwrap(),
            Extended::Provide(Some(text.into()))
        );
    }

    #[test]
    fn caps_and_small_actions_round_trip() {
        for message in [
            our_caps(),
            Extended::Request {
                formats: FORMAT_TEXT,
            },
            Extended::Peek,
            Extended::Notify {
                formats: FORMAT_TEXT,
            },
            Extended::Notify { formats: 0 },
        ] {
            let m = encode_extended(SERVER_CUT_TEXT, &message);
            let got = decode_extended(payload(&m)).unwrap();
            assert_eq!(got, message);
        }
    }

    #[test]
    fn a_sync_flushed_stream_without_its_end_is_read() {
        // What TigerVNC sends: the zlib stream flushed, never finished.
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(&6u32.to_be_bytes()).unwrap();
        z.write_all(b"hi\r\nx\0").unwrap();
        z.flush().unwrap();
        let mut p = (ACTION_PROVIDE | FORMAT_TEXT).to_be_bytes().to_vec();
        p.extend_from_slice(z.get_ref());
        assert_eq!(
            decode_extended(&p).unwrap(),
            Extended::Provide(Some("hi\nx".into()))
        );
    }

    #[test]
    fn a_zip_bomb_and_garbage_are_refused() {
        // 64 MiB of zeros compress to very little; the length claims all of it.
        let mut z = ZlibEncoder::new(Vec::new(), Compression::best());
        z.write_all(&(64u32 << 20).to_be_bytes()).unwrap();
        z.write_all(&vec![b'a'; 64 << 20]).unwrap();
        let mut p = (ACTION_PROVIDE | FORMAT_TEXT).to_be_bytes().to_vec();
        p.extend_from_slice(&z.finish().unwrap());
        assert!(decode_extended(&p).is_err());
        assert!(decode_extended(&[]).is_err());
        let mut p = (ACTION_PROVIDE | FORMAT_TEXT).to_be_bytes().to_vec();
        p.extend_from_slice(b"not zlib");
        assert!(decode_extended(&p).is_err());
        assert!(decode_extended(&0x4000_0000u32.to_be_bytes()).is_err());
    }

    #[test]
    fn plain_text_is_latin1() {
        let m = encode_plain(SERVER_CUT_TEXT, "é✓x");
        assert_eq!(&m[..8], &[3, 0, 0, 0, 0, 0, 0, 3]);
        assert_eq!(&m[8..], &[0xe9, b'?', b'x']);
        assert_eq!(decode_plain(&m[8..]), "é?x");
    }
}
