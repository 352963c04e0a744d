//! How large a viewer window may open: the work area of the local screen (`_NET_WORKAREA`,
//! which a window manager sets to the screen less its panels), less room for a title bar
//! when a window manager runs; else the whole screen.

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{AtomEnum, ConnectionExt as _};

/// Room left for a window manager's title bar and borders, in physical pixels.
const DECORATIONS: (u32, u32) = (16, 48);

/// The largest inner size (physical pixels) a window may open at, if the screen can be read.
pub fn max_inner_size() -> Option<(u32, u32)> {
    let (conn, screen) = x11rb::connect(None).ok()?;
    let root = conn.setup().roots.get(screen)?;
    let atom = |name: &str| {
        conn.intern_atom(true, name.as_bytes())
            .ok()?
            .reply()
            .ok()
            .map(|r| r.atom)
            .filter(|&a| a != x11rb::NONE)
    };
    let whole = (
        u32::from(root.width_in_pixels),
        u32::from(root.height_in_pixels),
    );
    let managed = atom("_NET_SUPPORTING_WM_CHECK")
        .and_then(|a| {
            conn.get_property(false, root.root, a, AtomEnum::WINDOW, 0, 1)
                .ok()?
                .reply()
                .ok()
        })
        .is_some_and(|p| p.value_len > 0);
    if !managed {
        return Some(whole);
    }
    let area = atom("_NET_WORKAREA")
        .and_then(|a| {
            conn.get_property(false, root.root, a, AtomEnum::CARDINAL, 0, 4)
                .ok()?
                .reply()
                .ok()?
                .value32()
                .map(|v| v.collect::<Vec<u32>>())
        })
        .filter(|v| v.len() == 4 && v[2] > 0 && v[3] > 0)
        .map_or(whole, |v| (v[2], v[3]));
    Some((
        area.0.saturating_sub(DECORATIONS.0).max(64),
        area.1.saturating_sub(DECORATIONS.1).max(48),
    ))
}

/// `size` made to fit within `max`, scaled down uniformly (never up).
pub fn fit_within(size: (u32, u32), max: (u32, u32)) -> (u32, u32) {
    let scale = (f64::from(max.0) / f64::from(size.0.max(1)))
        .min(f64::from(max.1) / f64::from(size.1.max(1)))
        .min(1.0);
    (
        ((f64::from(size.0) * scale).floor() as u32).max(1),
        ((f64::from(size.1) * scale).floor() as u32).max(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_larger_than_the_area_shrink_keeping_their_shape() {
        assert_eq!(fit_within((200, 200), (1280, 752)), (200, 200));
        assert_eq!(fit_within((1280, 800), (1264, 752)), (1203, 752));
        assert_eq!(fit_within((4000, 1000), (1000, 1000)), (1000, 250));
    }
}
