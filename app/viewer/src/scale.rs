//! How a remote area is drawn in a window of another size: scaled uniformly to fit, centred,
//! exactly one to one when the sizes match (so pixels stay crisp).

use eframe::egui::{Pos2, Rect, Vec2};

/// Where `remote` (a size in remote pixels) is drawn inside `view` (a rectangle in points) at
/// `ppp` physical pixels per point, and at what scale (physical pixels per remote pixel).
pub fn fit(remote: (u16, u16), view: Rect, ppp: f32) -> (Rect, f32) {
    let size = Vec2::new(f32::from(remote.0.max(1)), f32::from(remote.1.max(1)));
    let physical = view.size() * ppp;
    let mut scale = (physical.x / size.x).min(physical.y / size.y);
    // Within half a pixel of the remote size: one to one.
    if ((scale - 1.0) * size.x.max(size.y)).abs() < 0.5 {
        scale = 1.0;
    }
    let drawn = size * scale / ppp;
    // Centred, on whole physical pixels.
    let offset = (((view.size() - drawn) * ppp / 2.0).max(Vec2::ZERO)).floor() / ppp;
    (Rect::from_min_size(view.min + offset, drawn), scale)
}

/// The rectangle of the texture, in texture coordinates, that holds remote `area` of a
/// `screen` of this size; inset by half a texel when `scaled` so linear filtering never
/// reaches the neighbouring pixels of another window.
pub fn uv(area: Rect, screen: (u16, u16), scaled: bool) -> Rect {
    let size = Vec2::new(f32::from(screen.0.max(1)), f32::from(screen.1.max(1)));
    let inset = if scaled { 0.5 } else { 0.0 };
    let area = area.shrink(inset);
    Rect::from_min_max(
        Pos2::new(area.min.x / size.x, area.min.y / size.y),
        Pos2::new(area.max.x / size.x, area.max.y / size.y),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use eframe::egui::pos2;

    fn view(w: f32, h: f32) -> Rect {
        Rect::from_min_size(pos2(0.0, 0.0), Vec2::new(w, h))
    }

    #[test]
    fn the_same_size_is_one_to_one() {
        let (r, s) = fit((200, 200), view(200.0, 200.0), 1.0);
        assert_eq!((r, s), (view(200.0, 200.0), 1.0));
        // On a 2x screen, 100 points hold 200 pixels one to one.
        let (r, s) = fit((200, 200), view(100.0, 100.0), 2.0);
        assert_eq!((r, s), (view(100.0, 100.0), 1.0));
    }

    #[test]
    fn other_sizes_scale_uniformly_and_centre() {
        let (r, s) = fit((200, 100), view(400.0, 400.0), 1.0);
        assert_eq!(s, 2.0);
        assert_eq!(
            r,
            Rect::from_min_size(pos2(0.0, 100.0), Vec2::new(400.0, 200.0))
        );
        let (r, s) = fit((1280, 800), view(640.0, 500.0), 1.0);
        assert_eq!(s, 0.5);
        assert_eq!(
            r,
            Rect::from_min_size(pos2(0.0, 50.0), Vec2::new(640.0, 400.0))
        );
    }

    #[test]
    fn a_window_part_of_the_texture() {
        let r = Rect::from_min_size(pos2(100.0, 0.0), Vec2::new(200.0, 400.0));
        assert_eq!(
            uv(r, (400, 400), false),
            Rect::from_min_max(pos2(0.25, 0.0), pos2(0.75, 1.0))
        );
        let inset = uv(r, (400, 400), true);
        assert!(inset.min.x > 0.25 && inset.max.y < 1.0);
    }
}
