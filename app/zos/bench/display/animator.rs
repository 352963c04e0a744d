//! A test app for the display benchmark: an X11 client (x11rb) with one window — the size of
//! the screen, or a size given — that it repaints all over with a moving pattern at a fixed
//! frame rate, with PutImage. Its top-left block carries the frame number, so a viewer can
//! count the frames it really got.
//!
//! It is `zos bench display --animate [--animate-size WxH]`, run with `DISPLAY` (and
//! `XAUTHORITY`) of the display to animate, so it can also be started as a shared app
//! (`zos run --shared -- zos bench display --animate`) to measure through a session. Its
//! window is an ordinary top-level window at (0, 0) (the first a display's window manager
//! places goes there), titled `zos bench animation WxH`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use x11rb::COPY_DEPTH_FROM_PARENT;
use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::xproto::{
    AtomEnum, ConnectionExt as _, CreateGCAux, CreateWindowAux, ImageFormat, ImageOrder, PropMode,
    WindowClass,
};
use x11rb::wrapper::ConnectionExt as _;

/// Side of the square in the top-left corner that carries the frame number.
pub const MARKER: u16 = 16;
/// The blue of the marker, to tell it from the pattern.
pub const MARKER_BLUE: u8 = 0x80;

/// The frame number a marker pixel (red, green, blue) carries, if it is one.
pub fn marker_frame(rgb: [u8; 3]) -> Option<u16> {
    (rgb[2] == MARKER_BLUE).then(|| u16::from(rgb[0]) | (u16::from(rgb[1]) << 8))
}

/// The title of an animation window of this size.
pub fn title((w, h): (u16, u16)) -> String {
    format!("zos bench animation {w}x{h}")
}

/// Animates a window of `size` (the screen's by default) on the display named by `DISPLAY`
/// at `fps` frames per second until killed.
pub fn run(fps: u32, size: Option<(u16, u16)>) -> Result<()> {
    let (conn, screen_num) = x11rb::connect(None).context("connect to the X display")?;
    let setup = conn.setup();
    if setup.image_byte_order != ImageOrder::LSB_FIRST {
        bail!("the animator only speaks little-endian 32-bit pixels");
    }
    let screen = &setup.roots[screen_num];
    let (w, h) = size.unwrap_or((screen.width_in_pixels, screen.height_in_pixels));
    let window = conn.generate_id()?;
    conn.create_window(
        COPY_DEPTH_FROM_PARENT,
        window,
        screen.root,
        0,
        0,
        w,
        h,
        0,
        WindowClass::INPUT_OUTPUT,
        0,
        &CreateWindowAux::new().background_pixel(screen.black_pixel),
    )?;
    conn.change_property8(
        PropMode::REPLACE,
        window,
        AtomEnum::WM_NAME,
        AtomEnum::STRING,
        title((w, h)).as_bytes(),
    )?;
    conn.map_window(window)?;
    let gc = conn.generate_id()?;
    conn.create_gc(gc, window, &CreateGCAux::new())?;
    conn.flush()?;

    let width = usize::from(w);
    // One long row of the pattern; each screen row is a window into it, shifted per row and
    // per frame, so every pixel changes every frame.
    let line: Vec<u8> = (0..width + 256)
        .flat_map(|i| {
            let v = (i % 256) as u8;
            // Bytes of a 32-bit pixel, little-endian: blue, green, red, pad.
            [v, v.wrapping_mul(3), 255 - v, 0]
        })
        .collect();
    let max_bytes = conn.maximum_request_bytes().saturating_sub(64);
    let rows_per_put = (max_bytes / (width * 4)).clamp(1, usize::from(h));
    let mut buf = vec![0u8; rows_per_put * width * 4];
    let period = Duration::from_secs(1) / fps.max(1);
    let mut next = Instant::now();
    for frame in 0u32.. {
        let shift = (frame as usize * 3) % 256;
        let mut y0 = 0;
        while y0 < usize::from(h) {
            let rows = rows_per_put.min(usize::from(h) - y0);
            for r in 0..rows {
                let start = ((y0 + r + shift) % 256) * 4;
                buf[r * width * 4..(r + 1) * width * 4]
                    .copy_from_slice(&line[start..start + width * 4]);
            }
            if y0 == 0 {
                let n = frame as u16;
                let pixel = [MARKER_BLUE, (n >> 8) as u8, n as u8, 0];
                for r in 0..usize::from(MARKER).min(rows) {
                    for x in 0..usize::from(MARKER).min(width) {
                        let i = (r * width + x) * 4;
                        buf[i..i + 4].copy_from_slice(&pixel);
                    }
                }
            }
            conn.put_image(
                ImageFormat::Z_PIXMAP,
                window,
                gc,
                w,
                rows as u16,
                0,
                y0 as i16,
                0,
                screen.root_depth,
                &buf[..rows * width * 4],
            )?;
            y0 += rows;
        }
        // A round trip: never run ahead of the server.
        conn.get_input_focus()?.reply()?;
        next += period;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now;
        }
    }
    Ok(())
}

/// `WxH` as a size.
pub fn parse_size(text: &str) -> Result<(u16, u16)> {
    let (w, h) = text
        .split_once('x')
        .with_context(|| format!("{text:?} is not WIDTHxHEIGHT"))?;
    let (w, h): (u16, u16) = (w.parse()?, h.parse()?);
    if w == 0 || h == 0 {
        bail!("{text:?}: an empty window");
    }
    Ok((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("200x150").unwrap(), (200, 150));
        assert!(parse_size("200").is_err());
        assert!(parse_size("0x5").is_err());
    }

    #[test]
    fn marker_round_trip() {
        assert_eq!(marker_frame([0x34, 0x12, MARKER_BLUE]), Some(0x1234));
        assert_eq!(marker_frame([0x34, 0x12, 0x81]), None);
    }
}
