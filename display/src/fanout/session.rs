//! One downstream viewer of a [`Fanout`]: a reader that applies the viewer's messages (its
//! wishes, its input forwarded upstream) and a writer that sends it an update whenever it has
//! asked for one and something it has not seen is there.
//!
//! The viewer's pending changes are a [`Region`](crate::region::Region) in the fan-out's
//! framebuffer, so however long it takes to read, it costs one bounded region and the one
//! update being written; nothing queues, and nobody else waits for it.

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tracing::{debug, trace};

use crate::clipboard::Extended;
use crate::error::{DisplayError, Result};
use crate::fanout::extras::{ClipboardWishes, Extras, RequestLimit};
use crate::fanout::format::Converter;
use crate::fanout::messages::{self, ClientMessage, Encodings};
use crate::fanout::update::{SizeReason, Update};
use crate::fanout::{Fanout, ViewEnd};
use crate::framebuffer::RegionId;
use crate::source::ResizeStatus;

/// How long a viewer's SetDesktopSize waits for the app's answer (vnc-rs gives up at 5 s).
const RESIZE_WAIT: Duration = Duration::from_millis(4500);
/// ExtendedDesktopSize status codes.
const STATUS_OK: u16 = 0;
const STATUS_OUT_OF_RESOURCES: u16 = 2;
const STATUS_INVALID_LAYOUT: u16 = 3;
/// The most keys remembered as held (to release when the viewer goes).
const MAX_HELD_KEYS: usize = 64;

/// What the viewer has asked for: set by the reader, used by the writer.
#[derive(Debug)]
struct Wishes {
    conv: Converter,
    encodings: Encodings,
    /// ExtendedDesktopSize was just enabled: tell the layout once (the extension's handshake).
    announce_layout: bool,
    /// An update request is pending.
    requested: bool,
    /// A SetDesktopSize waiting for the app's answer.
    resize: Option<(u16, u16, Instant)>,
    /// The status to answer a SetDesktopSize with.
    reply: Option<u16>,
    /// What its Extended Clipboard messages asked for.
    clipboard: ClipboardWishes,
}

/// State shared by a viewer's reader and writer.
struct Viewer<'a> {
    fanout: &'a Fanout,
    id: RegionId,
    wishes: Mutex<Wishes>,
    wake: Notify,
}

impl Viewer<'_> {
    fn wishes(&self) -> MutexGuard<'_, Wishes> {
        self.wishes.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Serves one viewer whose handshake is done and whose region `id` exists, until it leaves or
/// the app's display ends.
pub(crate) async fn run<S>(fanout: &Fanout, id: RegionId, stream: S) -> Result<ViewEnd>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let viewer = Viewer {
        fanout,
        id,
        wishes: Mutex::new(Wishes {
            conv: Converter::Same,
            encodings: Encodings::default(),
            announce_layout: false,
            requested: false,
            resize: None,
            reply: None,
            clipboard: ClipboardWishes::default(),
        }),
        wake: Notify::new(),
    };
    let (reader, writer) = tokio::io::split(stream);
    let mut input = Input::default();
    let end = tokio::select! {
        r = read_loop(&viewer, reader, &mut input) => r,
        r = write_loop(&viewer, writer) => r,
    };
    input.release(fanout, id).await;
    end
}

/// What this viewer holds down upstream, to let go of when it leaves.
#[derive(Default)]
struct Input {
    keys: HashSet<u32>,
    pointer: (u16, u16),
}

impl Input {
    /// Releases the keys and buttons viewer `id` holds (best effort: the app may be gone).
    async fn release(&mut self, fanout: &Fanout, id: RegionId) {
        for keysym in self.keys.drain() {
            let _ = fanout.upstream.key(keysym, false).await;
        }
        if fanout.release_pointer(id) {
            let (x, y) = self.pointer;
            let _ = fanout.upstream.pointer(x, y, 0).await;
        }
    }
}

async fn read_loop<R: AsyncRead + Unpin>(
    viewer: &Viewer<'_>,
    mut reader: R,
    input: &mut Input,
) -> Result<ViewEnd> {
    let fanout = viewer.fanout;
    let upstream = &fanout.upstream;
    let forwarded = |r: Result<()>| match r {
        Err(DisplayError::ViewerClosed) => Err(ViewEnd::AppEnded),
        _ => Ok(()),
    };
    let mut window_requests = RequestLimit::default();
    loop {
        let Some(message) = messages::read(&mut reader).await? else {
            return Ok(ViewEnd::ViewerLeft);
        };
        trace!(?message, "from viewer");
        let sent = match message {
            ClientMessage::SetPixelFormat(bytes) => {
                let conv = Converter::for_format(bytes)?;
                debug!(?conv, "viewer pixel format");
                viewer.wishes().conv = conv;
                Ok(())
            }
            ClientMessage::SetEncodings(encodings) => {
                debug!(?encodings, "viewer encodings");
                let mut w = viewer.wishes();
                w.announce_layout |=
                    encodings.extended_desktop_size && !w.encodings.extended_desktop_size;
                w.clipboard.announce_caps |=
                    encodings.extended_clipboard && !w.encodings.extended_clipboard;
                w.encodings = encodings;
                drop(w);
                viewer.wake.notify_one();
                Ok(())
            }
            ClientMessage::UpdateRequest { incremental, area } => {
                if !incremental {
                    fanout.fb().mark_region(viewer.id, area);
                }
                viewer.wishes().requested = true;
                viewer.wake.notify_one();
                Ok(())
            }
            ClientMessage::Key { down, keysym } => {
                if down {
                    if input.keys.len() < MAX_HELD_KEYS {
                        input.keys.insert(keysym);
                    }
                } else {
                    input.keys.remove(&keysym);
                }
                forwarded(upstream.key(keysym, down).await)
            }
            ClientMessage::Pointer { buttons, x, y } => {
                input.pointer = (x, y);
                if fanout.may_point(viewer.id, buttons) {
                    forwarded(upstream.pointer(x, y, buttons).await)
                } else {
                    Ok(())
                }
            }
            ClientMessage::CutText(text) => {
                fanout.set_clipboard(text, viewer.id);
                Ok(())
            }
            ClientMessage::ExtendedCutText(message) => {
                let mut w = viewer.wishes();
                let wishes = &mut w.clipboard;
                match message {
                    Some(Extended::Caps { actions, text_max }) => {
                        wishes.caps = Some((actions, text_max));
                    }
                    Some(Extended::Notify { formats }) => {
                        wishes.request |= formats & crate::clipboard::FORMAT_TEXT != 0;
                    }
                    Some(Extended::Request { formats }) => {
                        wishes.provide |= formats & crate::clipboard::FORMAT_TEXT != 0;
                    }
                    Some(Extended::Peek) => wishes.notify = true,
                    Some(Extended::Provide(Some(text))) => {
                        drop(w);
                        fanout.set_clipboard(text, viewer.id);
                        continue;
                    }
                    Some(Extended::Provide(None)) | None => {}
                }
                drop(w);
                viewer.wake.notify_one();
                Ok(())
            }
            ClientMessage::Window(request) => {
                if !viewer.wishes().encodings.windows {
                    return Err(DisplayError::Protocol(
                        "a window request from a viewer that did not ask for windows".into(),
                    ));
                }
                match &fanout.windows {
                    Some(feed) if window_requests.allow() => {
                        if let Err(e) = feed.control.send(request) {
                            debug!("window request not delivered: {e}");
                        }
                    }
                    Some(_) => debug!(?request, "window request over the limit; dropped"),
                    None => debug!(?request, "no windows to ask"),
                }
                Ok(())
            }
            ClientMessage::SetDesktopSize {
                width,
                height,
                screens,
            } => {
                debug!(width, height, screens, "viewer asks for a desktop size");
                if width == 0 || height == 0 || width > 8192 || height > 8192 || screens == 0 {
                    viewer.wishes().reply = Some(STATUS_INVALID_LAYOUT);
                    viewer.wake.notify_one();
                    Ok(())
                } else {
                    viewer.wishes().resize = Some((width, height, Instant::now() + RESIZE_WAIT));
                    viewer.wake.notify_one();
                    forwarded(upstream.request_resize(width, height).await)
                }
            }
        };
        if let Err(end) = sent {
            return Ok(end);
        }
    }
}

/// Waits until the app's display has ended (the version channel closes).
async fn ended(versions: &mut watch::Receiver<u64>) {
    while versions.changed().await.is_ok() {}
}

async fn write_loop<W: AsyncWrite + Unpin>(viewer: &Viewer<'_>, mut writer: W) -> Result<ViewEnd> {
    let source = viewer.fanout.upstream.source();
    let mut frames = source.subscribe();
    let mut closed = source.subscribe();
    let mut cursors = source.subscribe_cursor();
    let mut resizes = source.shared.subscribe_resize();
    let mut sent_cursor = 0u64;
    let mut buf = Vec::new();
    let mut extras = Extras::new(viewer.fanout, viewer.id);
    let mut extra_buf = Vec::new();
    loop {
        extra_buf.clear();
        let extra = {
            let mut w = viewer.wishes();
            let w = &mut *w;
            extras.compose(&w.encodings, &mut w.clipboard, &mut extra_buf)
        };
        let update = compose(viewer, &resizes, &mut sent_cursor, &mut buf)?;
        if extra || update {
            tokio::select! {
                r = async {
                    writer.write_all(&extra_buf).await?;
                    if update {
                        writer.write_all(&buf).await?;
                    }
                    Ok::<_, std::io::Error>(())
                } => r?,
                _ = ended(&mut closed) => return Ok(ViewEnd::AppEnded),
            }
            writer.flush().await?;
            continue;
        }
        let deadline = viewer.wishes().resize.map(|(_, _, at)| at);
        tokio::select! {
            _ = viewer.wake.notified() => {}
            r = frames.changed() => if r.is_err() {
                return Ok(ViewEnd::AppEnded);
            },
            r = cursors.changed() => if r.is_err() {
                return Ok(ViewEnd::AppEnded);
            },
            _ = resizes.changed() => {}
            _ = extras.changed() => {}
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {}
        }
    }
}

/// Settles a pending SetDesktopSize once the app answered it (or the wait is over).
fn settle_resize(w: &mut Wishes, status: &ResizeStatus, size: (u16, u16)) {
    let Some((width, height, deadline)) = w.resize else {
        return;
    };
    let status = match *status {
        ResizeStatus::Done {
            width: dw,
            height: dh,
        } if (dw, dh) == (width, height) && size == (width, height) => STATUS_OK,
        ResizeStatus::Failed {
            width: fw,
            height: fh,
            ..
        } if (fw, fh) == (width, height) => STATUS_OUT_OF_RESOURCES,
        _ if Instant::now() >= deadline => {
            if size == (width, height) {
                STATUS_OK
            } else {
                STATUS_OUT_OF_RESOURCES
            }
        }
        _ => return,
    };
    w.resize = None;
    w.reply = Some(status);
}

/// Writes into `buf` the update the viewer should get now, if it asked and there is one.
fn compose(
    viewer: &Viewer<'_>,
    resizes: &watch::Receiver<ResizeStatus>,
    sent_cursor: &mut u64,
    buf: &mut Vec<u8>,
) -> Result<bool> {
    let mut w = viewer.wishes();
    if !w.requested && w.resize.is_none() {
        // Nothing to do; most wake-ups of a viewer that has not asked end here.
        return Ok(false);
    }
    let cursor = viewer.fanout.upstream.cursor();
    let mut fb = viewer.fanout.fb();
    let size = fb.size();
    settle_resize(&mut w, &resizes.borrow(), size);
    if !w.requested {
        return Ok(false);
    }
    let enc = w.encodings;
    let cursor = cursor.filter(|c| enc.cursor && c.version != *sent_cursor);
    let Some(region) = fb.region(viewer.id) else {
        return Ok(false);
    };
    let mut update = Update::begin(buf, w.conv);
    let mut copies = 0;
    let reply = w.reply.take().filter(|_| enc.extended_desktop_size);
    if let Some(status) = reply {
        // The answer carries the current layout; pixels follow on the next request (vnc-rs
        // wants no pixels in a message with ExtendedDesktopSize).
        region.take_resized();
        w.announce_layout = false;
        update.extended_desktop_size(SizeReason::ThisClient, status, size);
    } else if region.is_resized() || w.announce_layout {
        if enc.extended_desktop_size {
            update.extended_desktop_size(SizeReason::Server, STATUS_OK, size);
        } else if enc.desktop_size {
            update.desktop_size(size);
        } else {
            return Err(DisplayError::Protocol(
                "the app's screen was resized and the viewer supports no desktop resizing".into(),
            ));
        }
        region.take_resized();
        w.announce_layout = false;
    } else {
        let mut changes = region.take();
        if changes.copies.is_empty() && changes.dirty.is_empty() && cursor.is_none() {
            return Ok(false);
        }
        if enc.copy_rect {
            copies = changes.copies.len();
            for copy in &changes.copies {
                update.copy(*copy);
            }
        } else {
            changes.dirty.extend(changes.copies.iter().map(|c| c.dst));
        }
        for r in &changes.dirty {
            update.raw(&fb, *r);
        }
    }
    if let Some(shape) = &cursor {
        update.cursor(shape);
        *sent_cursor = shape.version;
    }
    trace!(rects = update.rects(), copies, "update for a viewer");
    update.finish();
    w.requested = false;
    Ok(true)
}
