//! The tray icon, drawn in code as ARGB32 pixmaps: a small monitor in the
//! zombie blue, grey while the daemon is out of reach, with an amber dot
//! while a pairing code is on offer.

/// The body colour of a reachable zombie (`#3C8CDC`).
pub const BLUE: [u8; 3] = [0x3C, 0x8C, 0xDC];
/// The body colour while the daemon is unreachable.
pub const GREY: [u8; 3] = [0x80, 0x80, 0x88];
/// The badge colour for a pairing code on offer.
pub const AMBER: [u8; 3] = [0xF0, 0xB0, 0x30];
const SCREEN: [u8; 3] = [0x14, 0x2C, 0x48];

/// The sizes offered to the tray host.
pub const SIZES: [i32; 3] = [22, 32, 48];

/// How the icon should look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Look {
    /// Body colour.
    pub body: [u8; 3],
    /// Whether to draw the pairing badge.
    pub badge: bool,
}

/// One square ARGB32 pixmap of `size` pixels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pixmap {
    /// Width and height.
    pub size: i32,
    /// ARGB32, network byte order, row-major.
    pub data: Vec<u8>,
}

impl Pixmap {
    fn new(size: i32) -> Pixmap {
        Pixmap {
            size,
            data: vec![0; (size * size * 4) as usize],
        }
    }

    /// The ARGB bytes at (x, y).
    pub fn pixel(&self, x: i32, y: i32) -> [u8; 4] {
        let i = ((y * self.size + x) * 4) as usize;
        [
            self.data[i],
            self.data[i + 1],
            self.data[i + 2],
            self.data[i + 3],
        ]
    }

    fn put(&mut self, x: i32, y: i32, rgb: [u8; 3]) {
        if (0..self.size).contains(&x) && (0..self.size).contains(&y) {
            let i = ((y * self.size + x) * 4) as usize;
            self.data[i..i + 4].copy_from_slice(&[0xFF, rgb[0], rgb[1], rgb[2]]);
        }
    }

    /// Fills the rectangle [x0, x1) × [y0, y1), cutting `r` pixels off each
    /// corner diagonally for a rounded look.
    fn fill(&mut self, (x0, y0, x1, y1): (i32, i32, i32, i32), r: i32, rgb: [u8; 3]) {
        for y in y0..y1 {
            for x in x0..x1 {
                let dx = (x0 + r - 1 - x).max(x - (x1 - r)).max(0);
                let dy = (y0 + r - 1 - y).max(y - (y1 - r)).max(0);
                if dx + dy < r.max(1) {
                    self.put(x, y, rgb);
                }
            }
        }
    }

    fn disc(&mut self, cx: f32, cy: f32, radius: f32, rgb: [u8; 3]) {
        for y in 0..self.size {
            for x in 0..self.size {
                let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
                if dx * dx + dy * dy <= radius * radius {
                    self.put(x, y, rgb);
                }
            }
        }
    }
}

/// Draws the icon at `size` pixels.
pub fn draw(size: i32, look: Look) -> Pixmap {
    let mut p = Pixmap::new(size);
    let u = |f: f32| (f * size as f32).round() as i32;
    // Bezel, screen, neck, foot.
    p.fill((u(0.03), u(0.10), u(0.97), u(0.72)), u(0.08), look.body);
    p.fill((u(0.12), u(0.19), u(0.88), u(0.63)), 0, SCREEN);
    p.fill((u(0.43), u(0.72), u(0.57), u(0.82)), 0, look.body);
    p.fill((u(0.25), u(0.82), u(0.75), u(0.92)), u(0.03), look.body);
    // A prompt on the screen.
    let (x, y, s) = (u(0.22), u(0.28), u(0.08).max(1));
    for i in 0..=s * 2 {
        let dx = if i <= s { i } else { 2 * s - i };
        p.fill((x + dx, y + i, x + dx + s.max(2), y + i + 1), 0, look.body);
    }
    p.fill(
        (u(0.42), y + 2 * s - 1, u(0.62), y + 2 * s + 1),
        0,
        look.body,
    );
    if look.badge {
        let r = size as f32 * 0.17;
        p.disc(size as f32 - r, r, r, AMBER);
    }
    p
}

/// The icon at every size in [`SIZES`].
pub fn icons(look: Look) -> Vec<ksni::Icon> {
    SIZES
        .iter()
        .map(|&size| {
            let p = draw(size, look);
            ksni::Icon {
                width: p.size,
                height: p.size,
                data: p.data,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_blue_and_corners_transparent() {
        let p = draw(
            32,
            Look {
                body: BLUE,
                badge: false,
            },
        );
        assert_eq!(p.data.len(), 32 * 32 * 4);
        assert_eq!(p.pixel(0, 0), [0, 0, 0, 0]);
        assert_eq!(p.pixel(2, 12), [0xFF, 0x3C, 0x8C, 0xDC]);
        assert_eq!(p.pixel(20, 16), [0xFF, SCREEN[0], SCREEN[1], SCREEN[2]]);
    }

    #[test]
    fn badge_marks_the_top_right() {
        let p = draw(
            32,
            Look {
                body: BLUE,
                badge: true,
            },
        );
        assert_eq!(p.pixel(26, 6), [0xFF, AMBER[0], AMBER[1], AMBER[2]]);
    }
}
