//! The seamless extension's messages on the wire.
//!
//! Both directions use one frame: message type [`MESSAGE_TYPE`] (u8), a subtype (u8), two
//! bytes of padding, the body's length (u32, big-endian like all RFB numbers) and the body.
//! A reader that does not know a subtype can skip it.
//!
//! Server → viewer, subtype 1, the window list (sent whole on every change):
//!
//! ```text
//! u16 count, then per window, bottom to top:
//!   u32 id | u8 kind (0 normal, 1 dialog, 2 menu, 3 tooltip) | u8 flags (bit 0 focused)
//!   u16 title length | u32 parent (0: none) | i16 x | i16 y | u16 width | u16 height
//!   u32 icon serial | u8 icon (0 none, 1 unchanged since the last list, 2 follows)
//!   [icon 2: u16 width | u16 height | width*height*4 bytes RGBA]
//!   title (UTF-8)
//! ```
//!
//! Viewer → server, subtype 2, a window request (12 bytes):
//! `u8 op (1 resize, 2 activate) | 3 padding | u32 id | u16 width | u16 height`.

use std::collections::HashMap;
use std::sync::Arc;

use super::{
    AppWindow, MAX_ICON_SIDE, MAX_TITLE, MAX_WINDOWS, MESSAGE_TYPE, WindowIcon, WindowKind,
    WindowList, WindowRect, WindowRequest,
};

/// Subtype of the window list.
pub(crate) const WINDOW_LIST: u8 = 1;
/// Subtype of a window request.
pub(crate) const WINDOW_REQUEST: u8 = 2;
/// The largest body a server message may have: every window with a full title and icon.
pub(crate) const MAX_SERVER_BODY: u32 = 2 + MAX_WINDOWS as u32
    * (33 + MAX_TITLE as u32 + MAX_ICON_SIDE as u32 * MAX_ICON_SIDE as u32 * 4);
/// The largest body a client message may have.
pub(crate) const MAX_CLIENT_BODY: u32 = 64;
/// The length of a window request's body.
const REQUEST_BODY: usize = 12;
const RESIZE: u8 = 1;
const ACTIVATE: u8 = 2;
const FOCUSED: u8 = 1;
const ICON_NONE: u8 = 0;
const ICON_SAME: u8 = 1;
const ICON_DATA: u8 = 2;

/// Appends the frame header of a message with this subtype and body length.
fn header(out: &mut Vec<u8>, subtype: u8, length: usize) {
    out.extend_from_slice(&[MESSAGE_TYPE, subtype, 0, 0]);
    out.extend_from_slice(&(length as u32).to_be_bytes());
}

/// Appends the window-list message for `list` to `out`. `sent` is what this viewer holds:
/// the icon serial of each window it has been sent; icons it holds go as "unchanged".
pub(crate) fn encode_list(list: &WindowList, sent: &mut HashMap<u32, u32>, out: &mut Vec<u8>) {
    let start = out.len();
    header(out, WINDOW_LIST, 0);
    let windows = &list.windows[list.windows.len().saturating_sub(MAX_WINDOWS)..];
    out.extend_from_slice(&(windows.len() as u16).to_be_bytes());
    let mut held = HashMap::with_capacity(windows.len());
    for w in windows {
        let title = cut(&w.title, MAX_TITLE);
        out.extend_from_slice(&w.id.to_be_bytes());
        out.push(w.kind.code());
        out.push(if w.focused { FOCUSED } else { 0 });
        out.extend_from_slice(&(title.len() as u16).to_be_bytes());
        out.extend_from_slice(&w.parent.unwrap_or(0).to_be_bytes());
        for v in [w.rect.x.to_be_bytes(), w.rect.y.to_be_bytes()] {
            out.extend_from_slice(&v);
        }
        out.extend_from_slice(&w.rect.width.to_be_bytes());
        out.extend_from_slice(&w.rect.height.to_be_bytes());
        out.extend_from_slice(&w.icon_serial.to_be_bytes());
        match &w.icon {
            Some(icon) if icon.width <= MAX_ICON_SIDE && icon.height <= MAX_ICON_SIDE => {
                if sent.get(&w.id) == Some(&w.icon_serial) {
                    out.push(ICON_SAME);
                } else {
                    out.push(ICON_DATA);
                    out.extend_from_slice(&icon.width.to_be_bytes());
                    out.extend_from_slice(&icon.height.to_be_bytes());
                    out.extend_from_slice(&icon.rgba);
                }
                held.insert(w.id, w.icon_serial);
            }
            _ => out.push(ICON_NONE),
        }
        out.extend_from_slice(title.as_bytes());
    }
    *sent = held;
    let length = (out.len() - start - 8) as u32;
    out[start + 4..start + 8].copy_from_slice(&length.to_be_bytes());
}

/// `text` cut to at most `max` bytes at a character boundary.
fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// What the viewer side keeps between lists: each window's icon and its serial.
pub(crate) type IconCache = HashMap<u32, (u32, Arc<WindowIcon>)>;

/// A cursor over a message body.
struct Body<'a>(&'a [u8]);

impl<'a> Body<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err(format!("window list cut short ({n} bytes wanted)"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_be_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    fn i16(&mut self) -> Result<i16, String> {
        Ok(i16::from_be_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
}

/// Decodes a window list's body; `cache` supplies the icons marked unchanged and learns the
/// new ones. Every count and size is checked against the limits before anything is taken.
pub(crate) fn decode_list(body: &[u8], cache: &mut IconCache) -> Result<WindowList, String> {
    let mut b = Body(body);
    let count = usize::from(b.u16()?);
    if count > MAX_WINDOWS {
        return Err(format!("{count} windows listed (at most {MAX_WINDOWS})"));
    }
    let mut windows = Vec::with_capacity(count);
    let mut held = IconCache::with_capacity(count);
    for _ in 0..count {
        let id = b.u32()?;
        let kind_code = b.u8()?;
        let kind =
            WindowKind::from_code(kind_code).ok_or_else(|| format!("window kind {kind_code}"))?;
        let focused = b.u8()? & FOCUSED != 0;
        let title_len = usize::from(b.u16()?);
        if title_len > MAX_TITLE {
            return Err(format!("a {title_len}-byte window title"));
        }
        let parent = Some(b.u32()?).filter(|&p| p != 0);
        let rect = WindowRect::new(b.i16()?, b.i16()?, b.u16()?, b.u16()?);
        let icon_serial = b.u32()?;
        let icon = match b.u8()? {
            ICON_NONE => None,
            ICON_SAME => match cache.get(&id) {
                Some((serial, icon)) if *serial == icon_serial => Some(Arc::clone(icon)),
                _ => return Err(format!("window {id:#x}: an unchanged icon never sent")),
            },
            ICON_DATA => {
                let (width, height) = (b.u16()?, b.u16()?);
                if width == 0 || height == 0 || width > MAX_ICON_SIDE || height > MAX_ICON_SIDE {
                    return Err(format!("a {width}x{height} icon"));
                }
                let rgba = b
                    .take(usize::from(width) * usize::from(height) * 4)?
                    .to_vec();
                Some(Arc::new(WindowIcon {
                    width,
                    height,
                    rgba,
                }))
            }
            other => return Err(format!("icon state {other}")),
        };
        if let Some(icon) = &icon {
            held.insert(id, (icon_serial, Arc::clone(icon)));
        }
        let title = String::from_utf8_lossy(b.take(title_len)?).into_owned();
        windows.push(AppWindow {
            id,
            kind,
            parent,
            rect,
            title,
            icon,
            icon_serial,
            focused,
        });
    }
    if !b.0.is_empty() {
        return Err(format!("{} bytes after the window list", b.0.len()));
    }
    *cache = held;
    Ok(WindowList { windows })
}

/// The whole client message carrying `request`.
pub(crate) fn encode_request(request: &WindowRequest) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + REQUEST_BODY);
    header(&mut out, WINDOW_REQUEST, REQUEST_BODY);
    let (op, id, width, height) = match *request {
        WindowRequest::Resize { id, width, height } => (RESIZE, id, width, height),
        WindowRequest::Activate { id } => (ACTIVATE, id, 0, 0),
    };
    out.extend_from_slice(&[op, 0, 0, 0]);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&width.to_be_bytes());
    out.extend_from_slice(&height.to_be_bytes());
    out
}

/// Decodes a client message's body of this subtype.
pub(crate) fn decode_request(subtype: u8, body: &[u8]) -> Result<WindowRequest, String> {
    if subtype != WINDOW_REQUEST {
        return Err(format!("unknown ZOS message subtype {subtype}"));
    }
    if body.len() != REQUEST_BODY {
        return Err(format!("a {}-byte window request", body.len()));
    }
    let mut b = Body(body);
    let op = b.u8()?;
    b.take(3)?;
    let id = b.u32()?;
    let (width, height) = (b.u16()?, b.u16()?);
    match op {
        RESIZE if width > 0 && height > 0 => Ok(WindowRequest::Resize { id, width, height }),
        RESIZE => Err(format!("a {width}x{height} window asked for")),
        ACTIVATE => Ok(WindowRequest::Activate { id }),
        other => Err(format!("window request op {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(id: u32, kind: WindowKind, icon: Option<WindowIcon>) -> AppWindow {
        AppWindow {
            id,
            kind,
            parent: (kind != WindowKind::Normal).then_some(7),
            rect: WindowRect::new(-3, 10, 200, 150),
            title: format!("window é {id}"),
            icon: icon.map(Arc::new),
            icon_serial: 1,
            focused: id == 2,
        }
    }

    fn icon() -> WindowIcon {
        WindowIcon {
            width: 2,
            height: 3,
            rgba: (0..24).collect(),
        }
    }

    fn body(message: &[u8]) -> &[u8] {
        assert_eq!(message[0], MESSAGE_TYPE);
        let length = u32::from_be_bytes(message[4..8].try_into().unwrap()) as usize;
        assert_eq!(message.len(), 8 + length);
        &message[8..]
    }

    #[test]
    fn a_list_round_trips_and_icons_go_once() {
        let list = WindowList {
            windows: vec![
                window(7, WindowKind::Normal, Some(icon())),
                window(2, WindowKind::Dialog, None),
                window(9, WindowKind::Menu, None),
            ],
        };
        let (mut sent, mut cache) = (HashMap::new(), IconCache::new());
        let mut first = Vec::new();
        encode_list(&list, &mut sent, &mut first);
        assert_eq!(decode_list(body(&first), &mut cache).unwrap(), list);
        let mut second = Vec::new();
        encode_list(&list, &mut sent, &mut second);
        assert_eq!(first.len() - second.len(), 4 + 24, "the icon went again");
        assert_eq!(decode_list(body(&second), &mut cache).unwrap(), list);
        // A new serial sends the icon again.
        let mut changed = list.clone();
        changed.windows[0].icon_serial = 2;
        let mut third = Vec::new();
        encode_list(&changed, &mut sent, &mut third);
        assert_eq!(third.len(), first.len());
    }

    #[test]
    fn hostile_lists_are_refused() {
        let mut cache = IconCache::new();
        // Too many windows.
        assert!(decode_list(&[0xff, 0xff], &mut cache).is_err());
        // An "unchanged" icon that was never sent.
        let list = WindowList {
            windows: vec![window(7, WindowKind::Normal, Some(icon()))],
        };
        let mut sent = HashMap::from([(7, 1)]);
        let mut m = Vec::new();
        encode_list(&list, &mut sent, &mut m);
        assert!(decode_list(body(&m), &mut cache).is_err());
        // Cut short anywhere.
        let mut sent = HashMap::new();
        let mut m = Vec::new();
        encode_list(&list, &mut sent, &mut m);
        for n in 0..body(&m).len() {
            assert!(
                decode_list(&body(&m)[..n], &mut cache).is_err(),
                "cut at {n}"
            );
        }
        // A huge icon.
        let mut b = body(&m).to_vec();
        let at = 2 + 4 + 1 + 1 + 2 + 4 + 8 + 4 + 1;
        b[at..at + 2].copy_from_slice(&1000u16.to_be_bytes());
        assert!(decode_list(&b, &mut cache).is_err());
    }

    #[test]
    fn titles_are_cut_at_a_character_boundary() {
        let mut w = window(1, WindowKind::Normal, None);
        w.title = "é".repeat(MAX_TITLE);
        let list = WindowList { windows: vec![w] };
        let mut m = Vec::new();
        encode_list(&list, &mut HashMap::new(), &mut m);
        let got = decode_list(body(&m), &mut IconCache::new()).unwrap();
        assert_eq!(got.windows[0].title.len(), MAX_TITLE);
    }

    #[test]
    fn requests_round_trip_and_bad_ones_are_refused() {
        for r in [
            WindowRequest::Resize {
                id: 0x40_0001,
                width: 300,
                height: 200,
            },
            WindowRequest::Activate { id: 5 },
        ] {
            let m = encode_request(&r);
            assert_eq!(decode_request(m[1], body(&m)), Ok(r));
        }
        let m = encode_request(&WindowRequest::Resize {
            id: 1,
            width: 0,
            height: 5,
        });
        assert!(decode_request(m[1], body(&m)).is_err());
        assert!(decode_request(WINDOW_LIST, &[0; 12]).is_err());
        assert!(decode_request(WINDOW_REQUEST, &[0; 11]).is_err());
        assert!(decode_request(WINDOW_REQUEST, &[9; 12]).is_err());
    }
}
