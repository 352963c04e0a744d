//! [`Banner`]: one line of text in a small window of our own, drawn with the
//! server's built-in `fixed` font — the master's notice of where its input
//! goes, and the ZOS session's panel. Override-redirect, so no window
//! manager moves or decorates it, and it never takes the focus.

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    ConfigureWindowAux, ConnectionExt, CreateGCAux, CreateWindowAux, EventMask, Gcontext,
    StackMode, Window, WindowClass,
};
use x11rb::rust_connection::RustConnection;

use crate::error::Result;
use crate::xconn::x_error;

/// Height of a banner, pixels.
pub const BANNER_HEIGHT: u16 = 22;
/// Width of one character of `fixed` (6x13), pixels.
const CHAR_WIDTH: u16 = 6;
/// Longest text drawn (ImageText8's limit).
const MAX_CHARS: usize = 255;

/// Where a banner sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Centred at the top, as wide as its text.
    TopCentre,
    /// Across the whole top of the screen.
    TopBar,
}

/// A one-line text window.
#[derive(Debug)]
pub struct Banner {
    window: Window,
    gc: Gcontext,
    screen_width: u16,
    placement: Placement,
    text: Vec<u8>,
    shown: bool,
}

impl Banner {
    /// Creates the (unmapped) window on `screen` of `conn`, with colours
    /// `background` and `foreground` (0xRRGGBB on a true-colour screen).
    pub fn create(
        conn: &RustConnection,
        screen: usize,
        placement: Placement,
        background: u32,
        foreground: u32,
    ) -> Result<Banner> {
        let s = &conn.setup().roots[screen];
        let (root, screen_width) = (s.root, s.width_in_pixels);
        let window = conn.generate_id().map_err(|e| x_error("X id", e))?;
        let aux = CreateWindowAux::new()
            .background_pixel(background)
            .override_redirect(1)
            .event_mask(EventMask::EXPOSURE);
        conn.create_window(
            x11rb::COPY_DEPTH_FROM_PARENT,
            window,
            root,
            0,
            0,
            screen_width,
            BANNER_HEIGHT,
            0,
            WindowClass::INPUT_OUTPUT,
            x11rb::COPY_FROM_PARENT,
            &aux,
        )
        .map_err(|e| x_error("create the banner window", e))?;
        let font = conn.generate_id().map_err(|e| x_error("X id", e))?;
        conn.open_font(font, b"fixed")
            .map_err(|e| x_error("open the fixed font", e))?;
        let gc = conn.generate_id().map_err(|e| x_error("X id", e))?;
        let gc_aux = CreateGCAux::new()
            .foreground(foreground)
            .background(background)
            .font(font);
        conn.create_gc(gc, window, &gc_aux)
            .map_err(|e| x_error("create the banner's graphics context", e))?;
        conn.close_font(font)
            .map_err(|e| x_error("close the fixed font", e))?;
        Ok(Banner {
            window,
            gc,
            screen_width,
            placement,
            text: Vec::new(),
            shown: false,
        })
    }

    /// The window, to match its `Expose` events.
    pub fn window(&self) -> Window {
        self.window
    }

    /// Whether it is shown.
    pub fn is_shown(&self) -> bool {
        self.shown
    }

    /// Shows `text` (Latin-1; other characters become `?`), on top.
    pub fn show(&mut self, conn: &RustConnection, text: &str) -> Result<()> {
        self.text = latin1(text);
        let width = match self.placement {
            Placement::TopBar => self.screen_width,
            Placement::TopCentre => {
                (self.text.len() as u16 * CHAR_WIDTH + 24).clamp(40, self.screen_width.max(40))
            }
        };
        let x = match self.placement {
            Placement::TopBar => 0,
            Placement::TopCentre => (self.screen_width.saturating_sub(width) / 2) as i32,
        };
        let aux = ConfigureWindowAux::new()
            .x(x)
            .y(0)
            .width(u32::from(width))
            .height(u32::from(BANNER_HEIGHT))
            .stack_mode(StackMode::ABOVE);
        conn.configure_window(self.window, &aux)
            .map_err(|e| x_error("place the banner", e))?;
        if !self.shown {
            conn.map_window(self.window)
                .map_err(|e| x_error("map the banner", e))?;
            self.shown = true;
        }
        conn.clear_area(false, self.window, 0, 0, 0, 0)
            .map_err(|e| x_error("clear the banner", e))?;
        self.draw(conn)
    }

    /// Hides it.
    pub fn hide(&mut self, conn: &RustConnection) -> Result<()> {
        if self.shown {
            conn.unmap_window(self.window)
                .map_err(|e| x_error("unmap the banner", e))?;
            self.shown = false;
        }
        Ok(())
    }

    /// Draws the text (on `Expose`, and after each change).
    pub fn draw(&self, conn: &RustConnection) -> Result<()> {
        if self.shown {
            conn.image_text8(self.window, self.gc, 12, 15, &self.text)
                .map_err(|e| x_error("draw the banner", e))?;
        }
        Ok(())
    }
}

/// `text` as Latin-1 bytes, at most [`MAX_CHARS`] of them.
fn latin1(text: &str) -> Vec<u8> {
    text.chars()
        .take(MAX_CHARS)
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn text_is_latin1_and_bounded() {
        assert_eq!(super::latin1("z1 → é"), b"z1 ? \xe9".to_vec());
        assert_eq!(super::latin1(&"x".repeat(999)).len(), 255);
    }
}
