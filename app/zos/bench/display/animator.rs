//! A test app for the display benchmark: an X11 client (x11rb) that covers the whole screen
//! with a window and repaints all of it with a moving pattern at a fixed frame rate, with
//! PutImage. Its top-left block carries the frame number, so a viewer can count the frames it
//! really got.
//!
//! It is `zos bench display --animate`, run with `DISPLAY` (and `XAUTHORITY`) of the display
//! to animate, so it can also be started as a shared app (`zos run --shared -- zos bench
//! display --animate`) to measure through a session.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use x11rb::COPY_DEPTH_FROM_PARENT;
use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::xproto::{
    ConnectionExt as _, CreateGCAux, CreateWindowAux, ImageFormat, ImageOrder, WindowClass,
};

/// Side of the square in the top-left corner that carries the frame number.
pub const MARKER: u16 = 16;
/// The blue of the marker, to tell it from the pattern.
pub const MARKER_BLUE: u8 = 0x80;

/// The frame number a marker pixel (red, green, blue) carries, if it is one.
pub fn marker_frame(rgb: [u8; 3]) -> Option<u16> {
    (rgb[2] == MARKER_BLUE).then(|| u16::from(rgb[0]) | (u16::from(rgb[1]) << 8))
}

/// Animates the display named by `DISPLAY` at `fps` frames per second until killed.
pub fn run(fps: u32) -> Result<()> {
    let (conn, screen_num) = x11rb::connect(None).context("connect to the X display")?;
    let setup = conn.setup();
    if setup.image_byte_order != ImageOrder::LSB_FIRST {
        bail!("the animator only speaks little-endian 32-bit pixels");
    }
    let screen = &setup.roots[screen_num];
    let (w, h) = (screen.width_in_pixels, screen.height_in_pixels);
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
        &CreateWindowAux::new()
            .background_pixel(screen.black_pixel)
            .override_redirect(1),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_round_trip() {
        assert_eq!(marker_frame([0x34, 0x12, MARKER_BLUE]), Some(0x1234));
        assert_eq!(marker_frame([0x34, 0x12, 0x81]), None);
    }
}
