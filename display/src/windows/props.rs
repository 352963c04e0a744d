//! What AppWindows reads of a window: title, icon, transient-for, window type.

use x11rb::protocol::xproto::{Atom, AtomEnum, ConnectionExt, Window};
use x11rb::rust_connection::RustConnection;

use crate::seamless::{MAX_ICON_SIDE, MAX_TITLE, WindowIcon};

/// The atoms AppWindows uses, interned once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Atoms {
    pub(crate) net_wm_name: Atom,
    pub(crate) utf8_string: Atom,
    pub(crate) net_wm_icon: Atom,
    pub(crate) net_wm_window_type: Atom,
    pub(crate) net_wm_window_type_tooltip: Atom,
    /// The type of the client messages that carry viewers' requests to the keeper.
    pub(crate) zos_request: Atom,
}

impl Atoms {
    pub(crate) fn intern(conn: &RustConnection) -> Result<Atoms, String> {
        let names: [&[u8]; 6] = [
            b"_NET_WM_NAME",
            b"UTF8_STRING",
            b"_NET_WM_ICON",
            b"_NET_WM_WINDOW_TYPE",
            b"_NET_WM_WINDOW_TYPE_TOOLTIP",
            b"_ZOS_WINDOW_REQUEST",
        ];
        let cookies = names
            .iter()
            .map(|n| conn.intern_atom(false, n))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let mut atoms = Vec::with_capacity(cookies.len());
        for c in cookies {
            atoms.push(c.reply().map_err(|e| e.to_string())?.atom);
        }
        Ok(Atoms {
            net_wm_name: atoms[0],
            utf8_string: atoms[1],
            net_wm_icon: atoms[2],
            net_wm_window_type: atoms[3],
            net_wm_window_type_tooltip: atoms[4],
            zos_request: atoms[5],
        })
    }
}

/// The longest `_NET_WM_ICON` read, in 32-bit items (icons of up to 512×512 and some).
const MAX_ICON_ITEMS: u32 = 512 * 512 + 64 * 64 + 16;

/// `window`'s title: `_NET_WM_NAME` (UTF-8), else `WM_NAME` (Latin-1); empty if neither.
pub(crate) fn title(conn: &RustConnection, atoms: &Atoms, window: Window) -> String {
    let long_length = (MAX_TITLE as u32).div_ceil(4) * 4;
    let read = |property: Atom, kind: Atom| {
        conn.get_property(false, window, property, kind, 0, long_length)
            .ok()?
            .reply()
            .ok()
            .filter(|p| p.format == 8 && !p.value.is_empty())
            .map(|p| p.value)
    };
    if let Some(bytes) = read(atoms.net_wm_name, atoms.utf8_string) {
        return String::from_utf8_lossy(&bytes).into_owned();
    }
    read(AtomEnum::WM_NAME.into(), AtomEnum::ANY.into())
        .map(|bytes| bytes.iter().map(|&b| char::from(b)).collect())
        .unwrap_or_default()
}

/// `window`'s `WM_TRANSIENT_FOR`, if set.
pub(crate) fn transient_for(conn: &RustConnection, window: Window) -> Option<Window> {
    conn.get_property(
        false,
        window,
        AtomEnum::WM_TRANSIENT_FOR,
        AtomEnum::WINDOW,
        0,
        1,
    )
    .ok()?
    .reply()
    .ok()?
    .value32()?
    .next()
    .filter(|&w| w != 0)
}

/// Whether `window`'s `_NET_WM_WINDOW_TYPE` says tooltip.
pub(crate) fn is_tooltip(conn: &RustConnection, atoms: &Atoms, window: Window) -> bool {
    conn.get_property(
        false,
        window,
        atoms.net_wm_window_type,
        AtomEnum::ATOM,
        0,
        16,
    )
    .ok()
    .and_then(|c| c.reply().ok())
    .and_then(|p| {
        p.value32()
            .map(|mut v| v.any(|a| a == atoms.net_wm_window_type_tooltip))
    })
    .unwrap_or(false)
}

/// `window`'s icon from `_NET_WM_ICON`: of the sizes it offers, the smallest at least
/// [`MAX_ICON_SIDE`] on its longer side (scaled down to it), else the largest.
pub(crate) fn icon(conn: &RustConnection, atoms: &Atoms, window: Window) -> Option<WindowIcon> {
    let reply = conn
        .get_property(
            false,
            window,
            atoms.net_wm_icon,
            AtomEnum::CARDINAL,
            0,
            MAX_ICON_ITEMS,
        )
        .ok()?
        .reply()
        .ok()?;
    let items: Vec<u32> = reply.value32()?.collect();
    pick_icon(&items)
}

/// Chooses and converts one icon of a `_NET_WM_ICON` value (width, height, ARGB pixels, …).
pub(crate) fn pick_icon(items: &[u32]) -> Option<WindowIcon> {
    let mut offered = Vec::new();
    let mut at = 0usize;
    while at + 2 <= items.len() {
        let (w, h) = (items[at] as usize, items[at + 1] as usize);
        let n = w.checked_mul(h)?;
        if w == 0 || h == 0 || w > 4096 || h > 4096 || at + 2 + n > items.len() {
            break;
        }
        offered.push((w, h, &items[at + 2..at + 2 + n]));
        at += 2 + n;
    }
    let side = usize::from(MAX_ICON_SIDE);
    let best = offered
        .iter()
        .filter(|(w, h, _)| (*w).max(*h) >= side)
        .min_by_key(|(w, h, _)| w * h)
        .or_else(|| offered.iter().max_by_key(|(w, h, _)| w * h))?;
    let (w, h, argb) = *best;
    // Nearest-neighbour scaling down to MAX_ICON_SIDE on the longer side.
    let scale = (w.max(h) as f64 / side as f64).max(1.0);
    let (tw, th) = (
        ((w as f64 / scale).round() as usize).clamp(1, side),
        ((h as f64 / scale).round() as usize).clamp(1, side),
    );
    let mut rgba = Vec::with_capacity(tw * th * 4);
    for y in 0..th {
        let sy = (y * h / th).min(h - 1);
        for x in 0..tw {
            let sx = (x * w / tw).min(w - 1);
            let p = argb[sy * w + sx];
            rgba.extend_from_slice(&[(p >> 16) as u8, (p >> 8) as u8, p as u8, (p >> 24) as u8]);
        }
    }
    Some(WindowIcon {
        width: tw as u16,
        height: th as u16,
        rgba,
    })
}

/// The focused window, if it is a window (not None or PointerRoot).
pub(crate) fn focus(conn: &RustConnection) -> Option<Window> {
    let focus = conn.get_input_focus().ok()?.reply().ok()?.focus;
    (focus > 1).then_some(focus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_icon_nearest_the_size_is_picked_and_converted() {
        // A 2×1 icon and a 64×64 one, then garbage that is ignored.
        let mut items = vec![2, 1, 0xff10_2030, 0x8040_5060];
        items.extend([64, 64]);
        items.extend(std::iter::repeat_n(0xff00_ff00, 64 * 64));
        items.extend([9999, 9999, 1]);
        let icon = pick_icon(&items).unwrap();
        assert_eq!((icon.width, icon.height), (64, 64));
        assert_eq!(&icon.rgba[..4], &[0, 255, 0, 255]);
        let small = pick_icon(&items[..4]).unwrap();
        assert_eq!(
            small.rgba,
            vec![0x10, 0x20, 0x30, 0xff, 0x40, 0x50, 0x60, 0x80]
        );
    }

    #[test]
    fn large_icons_are_scaled_down_and_bad_ones_refused() {
        let mut items = vec![256, 128];
        items.extend(std::iter::repeat_n(0xffff_ffff, 256 * 128));
        let icon = pick_icon(&items).unwrap();
        assert_eq!((icon.width, icon.height), (64, 32));
        assert_eq!(icon.rgba.len(), 64 * 32 * 4);
        assert!(pick_icon(&[]).is_none());
        assert!(pick_icon(&[5, 5, 1, 2]).is_none(), "cut short");
        assert!(pick_icon(&[0, 5]).is_none());
    }
}
