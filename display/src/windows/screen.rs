//! Sizing the virtual screen with RANDR, the way `xrandr --fb WxH --output O --mode WxH`
//! does: a mode of the new size (created if Xvnc has none), then screen and CRTC in the order
//! that keeps the CRTC inside the screen. The one output keeps covering the whole screen, so
//! toolkits that place menus within a monitor's area see the whole screen as that monitor.

use x11rb::connection::Connection;
use x11rb::protocol::randr::{self, ConnectionExt as _, ModeFlag, ModeInfo};
use x11rb::protocol::xproto::Window;
use x11rb::rust_connection::RustConnection;

/// Dots per inch reported for the new size (the millimetres RANDR wants).
const DPI: f64 = 96.0;

/// Resizes the screen of `root` from `current` to `wanted`.
pub(crate) fn resize(
    conn: &RustConnection,
    root: Window,
    current: (u16, u16),
    wanted: (u16, u16),
) -> Result<(), String> {
    let err = |what: &str, e: &dyn std::fmt::Display| format!("{what}: {e}");
    let res = conn
        .randr_get_screen_resources_current(root)
        .map_err(|e| err("screen resources", &e))?
        .reply()
        .map_err(|e| err("screen resources", &e))?;
    let (Some(&output), Some(&crtc)) = (res.outputs.first(), res.crtcs.first()) else {
        // No output to keep in step: the screen alone.
        return set_screen_size(conn, root, wanted);
    };
    let mode = mode_of(conn, root, &res, wanted)?;
    conn.randr_add_output_mode(output, mode)
        .map_err(|e| err("add output mode", &e))?
        .check()
        .ok(); // BadMatch when the output has the mode already.
    let set_crtc = || -> Result<(), String> {
        conn.randr_set_crtc_config(
            crtc,
            x11rb::CURRENT_TIME,
            res.config_timestamp,
            0,
            0,
            mode,
            randr::Rotation::ROTATE0,
            &[output],
        )
        .map_err(|e| err("set CRTC", &e))?
        .reply()
        .map_err(|e| err("set CRTC", &e))?;
        Ok(())
    };
    // The CRTC must lie within the screen at every step: grow the screen to hold both sizes,
    // move the CRTC to the new mode, then shrink the screen to it.
    let both = (current.0.max(wanted.0), current.1.max(wanted.1));
    if both != current {
        set_screen_size(conn, root, both)?;
    }
    set_crtc()?;
    if wanted != both {
        set_screen_size(conn, root, wanted)?;
    }
    Ok(())
}

fn set_screen_size(conn: &RustConnection, root: Window, (w, h): (u16, u16)) -> Result<(), String> {
    let mm = |px: u16| ((f64::from(px) * 25.4 / DPI).round() as u32).max(1);
    conn.randr_set_screen_size(root, w, h, mm(w), mm(h))
        .map_err(|e| format!("set screen size: {e}"))?
        .check()
        .map_err(|e| format!("set screen size {w}x{h}: {e}"))?;
    conn.flush().map_err(|e| format!("X flush: {e}"))
}

/// A mode of exactly `size`, existing or created.
fn mode_of(
    conn: &RustConnection,
    root: Window,
    res: &randr::GetScreenResourcesCurrentReply,
    (width, height): (u16, u16),
) -> Result<randr::Mode, String> {
    if let Some(m) = res
        .modes
        .iter()
        .find(|m| m.width == width && m.height == height)
    {
        return Ok(m.id);
    }
    let name = format!("{width}x{height}");
    let (htotal, vtotal) = (width.saturating_add(1), height.saturating_add(1));
    let info = ModeInfo {
        id: 0,
        width,
        height,
        dot_clock: 60 * u32::from(htotal) * u32::from(vtotal),
        hsync_start: width,
        hsync_end: width,
        htotal,
        hskew: 0,
        vsync_start: height,
        vsync_end: height,
        vtotal,
        name_len: name.len() as u16,
        mode_flags: ModeFlag::default(),
    };
    Ok(conn
        .randr_create_mode(root, info, name.as_bytes())
        .map_err(|e| format!("create mode {name}: {e}"))?
        .reply()
        .map_err(|e| format!("create mode {name}: {e}"))?
        .mode)
}
