//! The host glyph: a small monitor drawn with the egui painter, so the
//! window needs no image files.

use eframe::egui;
use egui::{Color32, CornerRadius, Painter, Pos2, Rect, Stroke, StrokeKind, Vec2, pos2, vec2};

/// The colour of a reachable zombie (`#3C8CDC`).
pub const ZOMBIE_BLUE: Color32 = Color32::from_rgb(0x3C, 0x8C, 0xDC);

/// The screen of the glyph: a dark version of the body colour.
const SCREEN: Color32 = Color32::from_rgb(0x14, 0x2C, 0x48);

/// The glyph's size at scale 1.
pub const GLYPH_SIZE: Vec2 = vec2(84.0, 70.0);

/// Paints a monitor in `color` filling `rect` (best with [`GLYPH_SIZE`]'s
/// aspect): a rounded bezel, a dark screen with a prompt on it, a neck and a
/// foot. `highlight` adds a light ring, for the selected host.
pub fn paint_monitor(painter: &Painter, rect: Rect, color: Color32, highlight: bool) {
    let w = rect.width();
    let h = rect.height();
    let bezel = Rect::from_min_size(rect.min, vec2(w, h * 0.74));
    let radius = CornerRadius::same((w * 0.08).round() as u8);
    painter.rect_filled(bezel, radius, color);
    if highlight {
        painter.rect_stroke(
            bezel.expand(3.0),
            radius,
            Stroke::new(2.0, Color32::from_rgb(0xF0, 0xC0, 0x40)),
            StrokeKind::Outside,
        );
    }

    let screen = bezel.shrink(w * 0.07);
    painter.rect_filled(screen, CornerRadius::same(3), SCREEN);

    // A prompt on the screen: ">_" in the body colour.
    let unit = screen.height() / 6.0;
    let stroke = Stroke::new((unit * 0.6).max(1.5), color);
    let tip = screen.left_top() + vec2(unit * 2.2, unit * 2.6);
    painter.line_segment([tip - vec2(unit, unit), tip], stroke);
    painter.line_segment([tip, tip + vec2(-unit, unit)], stroke);
    let base = tip.y + unit;
    painter.line_segment(
        [
            pos2(tip.x + unit * 0.6, base),
            pos2(tip.x + unit * 2.4, base),
        ],
        stroke,
    );

    // Neck and foot.
    let neck_top = bezel.bottom();
    let neck = Rect::from_min_max(
        Pos2::new(rect.center().x - w * 0.08, neck_top),
        Pos2::new(rect.center().x + w * 0.08, neck_top + h * 0.14),
    );
    painter.rect_filled(neck, CornerRadius::ZERO, color.gamma_multiply(0.8));
    let foot = Rect::from_min_max(
        Pos2::new(rect.center().x - w * 0.26, neck.bottom()),
        Pos2::new(rect.center().x + w * 0.26, rect.bottom()),
    );
    painter.rect_filled(foot, CornerRadius::same(3), color);
}
