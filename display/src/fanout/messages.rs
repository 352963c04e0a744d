//! The messages an RFB viewer sends (RFC 6143 §7.5, plus SetDesktopSize of the
//! ExtendedDesktopSize extension), read from the viewer's stream.

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::clipboard::{self, Extended};
use crate::error::{DisplayError, Result};
use crate::framebuffer::DirtyRect;
use crate::seamless::{self, WindowRequest, wire};

/// Encoding numbers of RFC 6143 §7.7 and the registry.
pub(crate) mod encoding {
    /// Raw pixels.
    pub(crate) const RAW: i32 = 0;
    /// A copy within the screen.
    pub(crate) const COPY_RECT: i32 = 1;
    /// The pointer shape pseudo-encoding.
    pub(crate) const CURSOR: i32 = -239;
    /// The (old) desktop size pseudo-encoding.
    pub(crate) const DESKTOP_SIZE: i32 = -223;
    /// The extended desktop size pseudo-encoding (screen layouts, client-requested sizes).
    pub(crate) const EXTENDED_DESKTOP_SIZE: i32 = -308;
}

/// What a viewer said it can decode, from its latest SetEncodings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Encodings {
    /// CopyRect rectangles.
    pub(crate) copy_rect: bool,
    /// The Cursor pseudo-encoding (the pointer shape apart from the pixels).
    pub(crate) cursor: bool,
    /// The DesktopSize pseudo-encoding.
    pub(crate) desktop_size: bool,
    /// The ExtendedDesktopSize pseudo-encoding.
    pub(crate) extended_desktop_size: bool,
    /// The Extended Clipboard pseudo-encoding.
    pub(crate) extended_clipboard: bool,
    /// ZOS's window lists ([`seamless::PSEUDO_ENCODING`]).
    pub(crate) windows: bool,
}

impl Encodings {
    fn from_list(list: &[i32]) -> Encodings {
        Encodings {
            copy_rect: list.contains(&encoding::COPY_RECT),
            cursor: list.contains(&encoding::CURSOR),
            desktop_size: list.contains(&encoding::DESKTOP_SIZE),
            extended_desktop_size: list.contains(&encoding::EXTENDED_DESKTOP_SIZE),
            extended_clipboard: list.contains(&clipboard::EXTENDED_CLIPBOARD),
            windows: list.contains(&seamless::PSEUDO_ENCODING),
        }
    }
}

/// One message from a viewer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ClientMessage {
    /// SetPixelFormat: the 16 bytes of the format.
    SetPixelFormat([u8; 16]),
    /// SetEncodings, reduced to what the fan-out can send.
    SetEncodings(Encodings),
    /// FramebufferUpdateRequest.
    UpdateRequest {
        /// Only changes are wanted (else the whole area, changed or not).
        incremental: bool,
        /// The area asked for.
        area: DirtyRect,
    },
    /// KeyEvent: an X keysym pressed or released.
    Key {
        /// Pressed (else released).
        down: bool,
        /// The keysym.
        keysym: u32,
    },
    /// PointerEvent: position and button mask (bits 3–6 are the wheel).
    Pointer {
        /// Buttons held.
        buttons: u8,
        /// Column.
        x: u16,
        /// Row.
        y: u16,
    },
    /// ClientCutText in plain Latin-1.
    CutText(String),
    /// ClientCutText with an extended clipboard payload (`None`: one we skip).
    ExtendedCutText(Option<Extended>),
    /// A ZOS window request.
    Window(WindowRequest),
    /// SetDesktopSize: the size asked for and how many screens the layout has.
    SetDesktopSize {
        /// Width asked for.
        width: u16,
        /// Height asked for.
        height: u16,
        /// Screens in the requested layout.
        screens: u8,
    },
}

/// The most encodings a viewer may list.
const MAX_ENCODINGS: u16 = 1024;

/// Reads the next message; `None` at a clean end of the stream before a message.
pub(crate) async fn read<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<ClientMessage>> {
    let kind = match r.read_u8().await {
        Ok(k) => k,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let message = match kind {
        0 => {
            let mut buf = [0u8; 19];
            r.read_exact(&mut buf).await?;
            let mut format = [0u8; 16];
            format.copy_from_slice(&buf[3..]);
            ClientMessage::SetPixelFormat(format)
        }
        2 => {
            r.read_u8().await?;
            let n = r.read_u16().await?;
            if n > MAX_ENCODINGS {
                return Err(DisplayError::Protocol(format!("{n} encodings listed")));
            }
            let mut list = Vec::with_capacity(usize::from(n));
            for _ in 0..n {
                list.push(r.read_i32().await?);
            }
            ClientMessage::SetEncodings(Encodings::from_list(&list))
        }
        3 => {
            let incremental = r.read_u8().await? != 0;
            let area = DirtyRect {
                x: r.read_u16().await?,
                y: r.read_u16().await?,
                width: r.read_u16().await?,
                height: r.read_u16().await?,
            };
            ClientMessage::UpdateRequest { incremental, area }
        }
        4 => {
            let down = r.read_u8().await? != 0;
            r.read_u16().await?;
            let keysym = r.read_u32().await?;
            ClientMessage::Key { down, keysym }
        }
        5 => {
            let buttons = r.read_u8().await?;
            let x = r.read_u16().await?;
            let y = r.read_u16().await?;
            ClientMessage::Pointer { buttons, x, y }
        }
        6 => {
            let mut pad = [0u8; 3];
            r.read_exact(&mut pad).await?;
            // A negative length is the Extended Clipboard form.
            let length = r.read_i32().await?;
            let size = length.unsigned_abs();
            if size > clipboard::MAX_WIRE {
                return Err(DisplayError::Protocol(format!(
                    "{size} bytes of cut text (at most {})",
                    clipboard::MAX_WIRE
                )));
            }
            let mut payload = vec![0u8; size as usize];
            r.read_exact(&mut payload).await?;
            if length >= 0 {
                ClientMessage::CutText(clipboard::decode_plain(&payload))
            } else {
                match clipboard::decode_extended(&payload) {
                    Ok(m) => ClientMessage::ExtendedCutText(Some(m)),
                    Err(e) => {
                        tracing::debug!("a viewer's {e} (skipped)");
                        ClientMessage::ExtendedCutText(None)
                    }
                }
            }
        }
        seamless::MESSAGE_TYPE => {
            let subtype = r.read_u8().await?;
            r.read_u16().await?;
            let length = r.read_u32().await?;
            if length > wire::MAX_CLIENT_BODY {
                return Err(DisplayError::Protocol(format!(
                    "a {length}-byte ZOS message"
                )));
            }
            let mut body = vec![0u8; length as usize];
            r.read_exact(&mut body).await?;
            ClientMessage::Window(
                wire::decode_request(subtype, &body).map_err(DisplayError::Protocol)?,
            )
        }
        251 => {
            r.read_u8().await?;
            let width = r.read_u16().await?;
            let height = r.read_u16().await?;
            let screens = r.read_u8().await?;
            r.read_u8().await?;
            let mut layout = vec![0u8; usize::from(screens) * 16];
            r.read_exact(&mut layout).await?;
            ClientMessage::SetDesktopSize {
                width,
                height,
                screens,
            }
        }
        other => {
            return Err(DisplayError::Protocol(format!(
                "unknown message type {other}"
            )));
        }
    };
    Ok(Some(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(bytes: &[u8]) -> Vec<ClientMessage> {
        let mut r = bytes;
        let mut out = Vec::new();
        while let Some(m) = read(&mut r).await.unwrap() {
            out.push(m);
        }
        out
    }

    #[tokio::test]
    async fn reads_each_kind() {
        let mut b = vec![0u8, 0, 0, 0];
        b.extend_from_slice(&[32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]);
        b.extend_from_slice(&[2, 0, 0, 5, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0x11, 0, 0, 0, 0]);
        b.extend_from_slice(&clipboard::EXTENDED_CLIPBOARD.to_be_bytes());
        b.extend_from_slice(&seamless::PSEUDO_ENCODING.to_be_bytes());
        b.extend_from_slice(&[3, 1, 0, 1, 0, 2, 0, 3, 0, 4]);
        b.extend_from_slice(&[4, 1, 0, 0, 0, 0, 0xff, 0x0d]);
        b.extend_from_slice(&[5, 0x10, 0, 7, 0, 8]);
        b.extend_from_slice(&[6, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']);
        b.extend_from_slice(&[251, 0, 3, 0x20, 2, 0x58, 1, 0]);
        b.extend_from_slice(&[0; 16]);
        b.extend(clipboard::encode_extended(
            clipboard::CLIENT_CUT_TEXT,
            &Extended::Provide(Some("ü".into())),
        ));
        b.extend(wire::encode_request(&WindowRequest::Activate { id: 9 }));
        let m = parse(&b).await;
        assert!(matches!(m[0], ClientMessage::SetPixelFormat(f) if f[0] == 32 && f[10] == 16));
        assert_eq!(
            m[1],
            ClientMessage::SetEncodings(Encodings {
                copy_rect: true,
                cursor: true,
                desktop_size: false,
                extended_desktop_size: false,
                extended_clipboard: true,
                windows: true,
            })
        );
        assert_eq!(
            m[2],
            ClientMessage::UpdateRequest {
                incremental: true,
                area: DirtyRect {
                    x: 1,
                    y: 2,
                    width: 3,
                    height: 4
                }
            }
        );
        assert_eq!(
            m[3],
            ClientMessage::Key {
                down: true,
                keysym: 0xff0d
            }
        );
        assert_eq!(
            m[4],
            ClientMessage::Pointer {
                buttons: 0x10,
                x: 7,
                y: 8
            }
        );
        assert_eq!(m[5], ClientMessage::CutText("hi".into()));
        assert_eq!(
            m[6],
            ClientMessage::SetDesktopSize {
                width: 800,
                height: 600,
                screens: 1
            }
        );
        assert_eq!(
            m[7],
            ClientMessage::ExtendedCutText(Some(Extended::Provide(Some("ü".into()))))
        );
        assert_eq!(
            m[8],
            ClientMessage::Window(WindowRequest::Activate { id: 9 })
        );
        assert_eq!(m.len(), 9);
    }

    #[tokio::test]
    async fn unknown_messages_and_truncation_are_errors() {
        let mut r: &[u8] = &[150, 0, 0];
        assert!(matches!(read(&mut r).await, Err(DisplayError::Protocol(_))));
        let mut r: &[u8] = &[5, 0];
        assert!(read(&mut r).await.is_err());
        // Oversized cut text and ZOS messages end the view before anything is allocated.
        let mut r: &[u8] = &[6, 0, 0, 0, 0x7f, 0, 0, 0];
        assert!(matches!(read(&mut r).await, Err(DisplayError::Protocol(_))));
        let mut r: &[u8] = &[seamless::MESSAGE_TYPE, 2, 0, 0, 0, 1, 0, 0];
        assert!(matches!(read(&mut r).await, Err(DisplayError::Protocol(_))));
    }
}
