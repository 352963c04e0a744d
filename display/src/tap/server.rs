//! The server-to-viewer half of the tap: RFB parsed message by message, forwarded to vnc-rs
//! except cut text and ZOS messages, which are handled here.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::io::{AsyncBufRead, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tracing::{debug, trace, warn};

use super::{Outgoing, Sinks, State, TapHandle};
use crate::clipboard::{self, CLIENT_CUT_TEXT, Extended, FORMAT_TEXT, RemoteClipboard};
use crate::seamless::{MESSAGE_TYPE, wire};

/// How much of the server's stream is read at once (pixel payloads pass through in pieces of
/// this size).
const READ_BUFFER: usize = 64 * 1024;
/// The longest desktop name or failure reason passed on.
const MAX_STRING: u32 = 64 * 1024;

type Result<T> = std::io::Result<T>;

fn invalid(why: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, why)
}

/// Reads the server's stream until it ends or breaks; errors are logged.
pub(super) async fn run<R, W>(real: R, to_vnc: W, state: Arc<State>, sinks: Sinks, tap: TapHandle)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = Reader {
        r: BufReader::with_capacity(READ_BUFFER, real),
        w: to_vnc,
        state,
        sinks,
        tap,
        icons: wire::IconCache::new(),
        clipboard_serial: 0,
    };
    match reader.handshake().await {
        Ok(true) => {}
        Ok(false) => {
            // Not a handshake we follow (security we do not know): vnc-rs decides; pass on.
            let _ = tokio::io::copy_buf(&mut reader.r, &mut reader.w).await;
            return;
        }
        Err(e) => {
            debug!("tap: handshake: {e}");
            return;
        }
    }
    loop {
        if let Err(e) = reader.message().await {
            match e.kind() {
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::BrokenPipe => {
                    debug!("tap: the stream ended")
                }
                _ => warn!("tap: the server's stream: {e}"),
            }
            return;
        }
    }
}

struct Reader<R, W> {
    r: BufReader<R>,
    w: W,
    state: Arc<State>,
    sinks: Sinks,
    tap: TapHandle,
    icons: wire::IconCache,
    clipboard_serial: u64,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Reader<R, W> {
    /// Reads `N` bytes and passes them on.
    async fn fixed<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut buf = [0u8; N];
        self.r.read_exact(&mut buf).await?;
        self.w.write_all(&buf).await?;
        Ok(buf)
    }

    /// Passes `n` bytes on unread.
    async fn pass(&mut self, n: u64) -> Result<()> {
        pass_through(&mut self.r, &mut self.w, n).await
    }

    /// A length-prefixed string, passed on.
    async fn string(&mut self) -> Result<()> {
        let length = u32::from_be_bytes(self.fixed::<4>().await?);
        if length > MAX_STRING {
            return Err(invalid(format!("a {length}-byte string")));
        }
        self.pass(u64::from(length)).await
    }

    /// Follows the handshake vnc-rs does (None or VncAuth); false if it goes elsewhere.
    async fn handshake(&mut self) -> Result<bool> {
        let version = self.fixed::<12>().await?;
        // vnc-rs answers 3.8 or 3.7 to those, 3.3 to anything else.
        let minor = match &version {
            b"RFB 003.008\n" => 8,
            b"RFB 003.007\n" => 7,
            _ => 3,
        };
        let auth = if minor == 3 {
            match u32::from_be_bytes(self.fixed::<4>().await?) {
                0 => {
                    self.string().await?;
                    return Ok(false);
                }
                kind => kind,
            }
        } else {
            let [n] = self.fixed::<1>().await?;
            if n == 0 {
                self.string().await?;
                return Ok(false);
            }
            let mut types = vec![0u8; usize::from(n)];
            self.r.read_exact(&mut types).await?;
            self.w.write_all(&types).await?;
            if types.contains(&1) {
                1
            } else if types.contains(&2) {
                2
            } else {
                return Ok(false);
            }
        };
        match auth {
            1 if minor == 8 => self.security_result(minor).await?,
            1 => {}
            2 => {
                self.pass(16).await?;
                self.security_result(minor).await?;
            }
            _ => return Ok(false),
        }
        // ServerInit: size, pixel format, name.
        let init = self.fixed::<20>().await?;
        self.state.set_format(&init[4..20]);
        // From here on vnc-rs' writes are messages: say so before it can read the name.
        self.state.initialised.store(true, Ordering::SeqCst);
        self.state.init_done.notify_one();
        self.string().await?;
        self.w.flush().await?;
        Ok(true)
    }

    async fn security_result(&mut self, minor: u8) -> Result<()> {
        if u32::from_be_bytes(self.fixed::<4>().await?) != 0 && minor == 8 {
            self.string().await?;
        }
        Ok(())
    }

    /// One server message.
    async fn message(&mut self) -> Result<()> {
        // Whatever was passed on goes out before we may wait for the network again.
        if self.r.buffer().is_empty() {
            self.w.flush().await?;
        }
        let kind = self.r.read_u8().await?;
        match kind {
            0 => {
                self.w.write_all(&[kind]).await?;
                let head = self.fixed::<3>().await?;
                let rects = u16::from_be_bytes([head[1], head[2]]);
                for _ in 0..rects {
                    if !self.rectangle().await? {
                        break;
                    }
                }
            }
            1 => {
                // SetColourMapEntries.
                self.w.write_all(&[kind]).await?;
                let head = self.fixed::<5>().await?;
                let colours = u16::from_be_bytes([head[3], head[4]]);
                self.pass(u64::from(colours) * 6).await?;
            }
            2 => self.w.write_all(&[kind]).await?,
            3 => self.cut_text().await?,
            MESSAGE_TYPE => self.zos_message().await?,
            other => return Err(invalid(format!("server message type {other}"))),
        }
        Ok(())
    }

    /// One rectangle of a FramebufferUpdate; false after LastRect.
    async fn rectangle(&mut self) -> Result<bool> {
        let head = self.fixed::<12>().await?;
        let (w, h) = (
            u64::from(u16::from_be_bytes([head[4], head[5]])),
            u64::from(u16::from_be_bytes([head[6], head[7]])),
        );
        let encoding = i32::from_be_bytes([head[8], head[9], head[10], head[11]]);
        let bpp = u64::from(self.state.bytes_per_pixel.load(Ordering::Relaxed));
        trace!(w, h, encoding, "tap: rectangle");
        match encoding {
            0 => self.pass(w * h * bpp).await?,
            1 => self.pass(4).await?,
            -239 => self.pass(w * h * bpp + w.div_ceil(8) * h).await?,
            -223 => {}
            -308 => {
                let [screens, ..] = self.fixed::<4>().await?;
                self.pass(u64::from(screens) * 16).await?;
            }
            -224 => return Ok(false),
            16 => {
                let length = u32::from_be_bytes(self.fixed::<4>().await?);
                self.pass(u64::from(length)).await?;
            }
            7 => self.tight(w, h).await?,
            other => return Err(invalid(format!("rectangle encoding {other}"))),
        }
        Ok(true)
    }

    /// A Tight rectangle's length, found from its header (the data is passed on unread).
    async fn tight(&mut self, w: u64, h: u64) -> Result<()> {
        let tpixel = u64::from(self.state.tight_pixel.load(Ordering::Relaxed));
        let [control] = self.fixed::<1>().await?;
        let kind = control >> 4;
        match kind {
            8 => return self.pass(tpixel).await,
            9 => {
                let length = self.compact_length().await?;
                return self.pass(length).await;
            }
            k if k > 9 => return Err(invalid(format!("Tight compression {k}"))),
            _ => {}
        }
        let filter = if kind & 4 != 0 {
            self.fixed::<1>().await?[0]
        } else {
            0
        };
        let size = match filter {
            0 | 2 => w * h * tpixel,
            1 => {
                let [colours] = self.fixed::<1>().await?;
                let colours = u64::from(colours) + 1;
                self.pass(colours * tpixel).await?;
                if colours == 2 {
                    w.div_ceil(8) * h
                } else {
                    w * h
                }
            }
            other => return Err(invalid(format!("Tight filter {other}"))),
        };
        if size < 12 {
            self.pass(size).await
        } else {
            let length = self.compact_length().await?;
            self.pass(length).await
        }
    }

    /// Tight's compact length: 1–3 bytes, 7 bits each.
    async fn compact_length(&mut self) -> Result<u64> {
        let mut length = 0u64;
        for i in 0..3 {
            let [b] = self.fixed::<1>().await?;
            let bits = if i == 2 { b } else { b & 0x7f };
            length |= u64::from(bits) << (7 * i);
            if b & 0x80 == 0 || i == 2 {
                break;
            }
        }
        Ok(length)
    }

    /// ServerCutText: kept here, never passed on.
    async fn cut_text(&mut self) -> Result<()> {
        let mut head = [0u8; 7];
        self.r.read_exact(&mut head).await?;
        let length = i32::from_be_bytes([head[3], head[4], head[5], head[6]]);
        let size = length.unsigned_abs();
        if size > clipboard::MAX_WIRE {
            warn!(
                "tap: a {size}-byte clipboard message skipped (at most {})",
                clipboard::MAX_WIRE
            );
            return skip(&mut self.r, u64::from(size)).await;
        }
        let mut payload = vec![0u8; size as usize];
        self.r.read_exact(&mut payload).await?;
        if length >= 0 {
            self.received(clipboard::decode_plain(&payload));
            return Ok(());
        }
        match clipboard::decode_extended(&payload) {
            Ok(Extended::Caps { .. }) => {
                debug!("tap: the server offers the extended clipboard");
                self.state.extended_clipboard.store(true, Ordering::Relaxed);
                let caps = clipboard::encode_extended(CLIENT_CUT_TEXT, &clipboard::our_caps());
                self.tap.send(Outgoing::Message(caps));
            }
            Ok(Extended::Notify { formats }) if formats & FORMAT_TEXT != 0 => {
                let request = clipboard::encode_extended(
                    CLIENT_CUT_TEXT,
                    &Extended::Request {
                        formats: FORMAT_TEXT,
                    },
                );
                self.tap.send(Outgoing::Message(request));
            }
            Ok(Extended::Notify { .. }) => {}
            Ok(Extended::Request { formats }) if formats & FORMAT_TEXT != 0 => {
                let text = self.state.our_text();
                let provide = clipboard::encode_extended(CLIENT_CUT_TEXT, &Extended::Provide(text));
                self.tap.send(Outgoing::Message(provide));
            }
            Ok(Extended::Request { .. }) => {}
            Ok(Extended::Peek) => {
                let formats = if self.state.our_text().is_some() {
                    FORMAT_TEXT
                } else {
                    0
                };
                let notify =
                    clipboard::encode_extended(CLIENT_CUT_TEXT, &Extended::Notify { formats });
                self.tap.send(Outgoing::Message(notify));
            }
            Ok(Extended::Provide(Some(text))) => self.received(text),
            Ok(Extended::Provide(None)) => {}
            Err(e) => warn!("tap: {e} (skipped)"),
        }
        Ok(())
    }

    fn received(&mut self, text: String) {
        if !clipboard::fits(&text) {
            warn!("tap: a {}-byte clipboard text skipped", text.len());
            return;
        }
        debug!(bytes = text.len(), "tap: the server's clipboard");
        self.clipboard_serial += 1;
        self.sinks.clipboard.send_replace(RemoteClipboard {
            serial: self.clipboard_serial,
            text: text.into(),
        });
    }

    /// A ZOS server message: kept here.
    async fn zos_message(&mut self) -> Result<()> {
        let mut head = [0u8; 7];
        self.r.read_exact(&mut head).await?;
        let subtype = head[0];
        let length = u32::from_be_bytes([head[3], head[4], head[5], head[6]]);
        if subtype != wire::WINDOW_LIST || length > wire::MAX_SERVER_BODY {
            warn!(subtype, length, "tap: a ZOS message skipped");
            return skip(&mut self.r, u64::from(length)).await;
        }
        let mut body = vec![0u8; length as usize];
        self.r.read_exact(&mut body).await?;
        match wire::decode_list(&body, &mut self.icons) {
            Ok(list) => {
                trace!(windows = list.windows.len(), "tap: window list");
                self.state.seamless.store(true, Ordering::Relaxed);
                self.sinks.windows.send_replace(Some(Arc::new(list)));
            }
            Err(e) => warn!("tap: a bad window list skipped: {e}"),
        }
        Ok(())
    }
}

/// Copies exactly `n` bytes from `r` to `w` through `r`'s own buffer.
async fn pass_through<R, W>(r: &mut R, w: &mut W, n: u64) -> Result<()>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let copied = tokio::io::copy_buf(&mut r.take(n), w).await?;
    if copied < n {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

/// Reads and drops `n` bytes.
async fn skip<R: AsyncBufRead + Unpin>(r: &mut R, n: u64) -> Result<()> {
    pass_through(r, &mut tokio::io::sink(), n).await
}
