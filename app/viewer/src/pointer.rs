//! egui pointer events → RFB pointer events: positions in remote pixels, buttons 1–3 as the
//! button mask, and the wheel as clicks of buttons 4–7.

use eframe::egui::{Event, MouseWheelUnit, PointerButton, Pos2, Rect, Vec2};
use zos_display::Wheel;

/// How many points of a smooth (pixel) scroll make one wheel click.
const POINTS_PER_CLICK: f32 = 50.0;
/// How many lines one page of scrolling counts as.
const LINES_PER_PAGE: f32 = 10.0;

/// One thing to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointerAction {
    /// The pointer is at (x, y) with this button mask.
    Move {
        /// Remote column.
        x: u16,
        /// Remote row.
        y: u16,
        /// RFB button mask (bit 0 left, 1 middle, 2 right).
        buttons: u8,
    },
    /// One wheel click at (x, y).
    Wheel {
        /// Remote column.
        x: u16,
        /// Remote row.
        y: u16,
        /// Buttons held meanwhile.
        buttons: u8,
        /// Which way.
        wheel: Wheel,
    },
}

/// Where a remote area is drawn: `rect` in points shows `area` of the remote screen (in
/// remote pixels), scaled or not; positions are clamped to the remote `screen`, not to the
/// area, so a drag that leaves a window (into the app's menu, say) goes on in the app.
#[derive(Debug, Clone, Copy)]
pub struct Mapping {
    /// Where the remote area is drawn in the window, in points.
    pub rect: Rect,
    /// The remote area drawn there, in remote pixels.
    pub area: Rect,
    /// Remote screen width and height in pixels.
    pub screen: (u16, u16),
}

impl Mapping {
    /// The whole remote screen of `size`, drawn in `rect`.
    pub fn screen(rect: Rect, size: (u16, u16)) -> Mapping {
        let area = Rect::from_min_size(Pos2::ZERO, Vec2::new(f32::from(size.0), f32::from(size.1)));
        Mapping {
            rect,
            area,
            screen: size,
        }
    }

    /// Remote pixels per point of the window.
    pub fn scale(&self) -> Vec2 {
        self.area.size() / self.rect.size().max(Vec2::splat(f32::EPSILON))
    }

    /// The remote pixel under `pos`, clamped to the remote screen.
    pub fn to_remote(&self, pos: Pos2) -> (u16, u16) {
        let p = self.area.min + (pos - self.rect.min) * self.scale();
        // A hair more before flooring, so that a pixel's own edge maps to it despite rounding.
        let clamp =
            |v: f32, size: u16| (v + 1e-3).floor().clamp(0.0, f32::from(size.max(1) - 1)) as u16;
        (clamp(p.x, self.screen.0), clamp(p.y, self.screen.1))
    }
}

/// The pointer state of one view.
#[derive(Debug, Default)]
pub struct Mouse {
    buttons: u8,
    last: Option<(u16, u16)>,
    /// Wheel movement not yet sent as whole clicks, in clicks.
    wheel: Vec2,
}

fn bit(button: PointerButton) -> Option<u8> {
    match button {
        PointerButton::Primary => Some(1),
        PointerButton::Middle => Some(2),
        PointerButton::Secondary => Some(4),
        _ => None,
    }
}

impl Mouse {
    /// Translates one egui event, appending what to send to `out`. A move to the pixel
    /// already sent sends nothing.
    pub fn on_event(&mut self, event: &Event, map: &Mapping, out: &mut Vec<PointerAction>) {
        match event {
            Event::PointerMoved(pos) => {
                let (x, y) = map.to_remote(*pos);
                if self.last == Some((x, y)) {
                    return;
                }
                self.last = Some((x, y));
                let action = PointerAction::Move {
                    x,
                    y,
                    buttons: self.buttons,
                };
                out.push(action);
            }
            Event::PointerButton {
                pos,
                button,
                pressed,
                ..
            } => {
                let Some(bit) = bit(*button) else { return };
                let (x, y) = map.to_remote(*pos);
                if *pressed {
                    self.buttons |= bit;
                } else {
                    self.buttons &= !bit;
                }
                self.last = Some((x, y));
                out.push(PointerAction::Move {
                    x,
                    y,
                    buttons: self.buttons,
                });
            }
            Event::MouseWheel { unit, delta, .. } => {
                let clicks = match unit {
                    MouseWheelUnit::Line => *delta,
                    MouseWheelUnit::Page => *delta * LINES_PER_PAGE,
                    MouseWheelUnit::Point => *delta / POINTS_PER_CLICK,
                };
                self.wheel += clicks;
                let Some((x, y)) = self.last else { return };
                let buttons = self.buttons;
                let mut push = |wheel| {
                    out.push(PointerAction::Wheel {
                        x,
                        y,
                        buttons,
                        wheel,
                    })
                };
                // Positive y shows what is above: the wheel turned up.
                while self.wheel.y >= 1.0 {
                    self.wheel.y -= 1.0;
                    push(Wheel::Up);
                }
                while self.wheel.y <= -1.0 {
                    self.wheel.y += 1.0;
                    push(Wheel::Down);
                }
                while self.wheel.x >= 1.0 {
                    self.wheel.x -= 1.0;
                    push(Wheel::Left);
                }
                while self.wheel.x <= -1.0 {
                    self.wheel.x += 1.0;
                    push(Wheel::Right);
                }
            }
            Event::WindowFocused(false) => self.release_all(out),
            _ => {}
        }
    }

    /// Releases every button held (the window lost the focus, or closes).
    pub fn release_all(&mut self, out: &mut Vec<PointerAction>) {
        if self.buttons != 0 {
            self.buttons = 0;
            if let Some((x, y)) = self.last {
                out.push(PointerAction::Move { x, y, buttons: 0 });
            }
        }
    }

    /// The last remote position sent, if any.
    pub fn position(&self) -> Option<(u16, u16)> {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eframe::egui::{Modifiers, MouseWheelSource, TouchPhase, pos2, vec2};

    fn map() -> Mapping {
        Mapping::screen(
            Rect::from_min_size(pos2(10.0, 20.0), vec2(100.0, 50.0)),
            (200, 100),
        )
    }

    fn button(x: f32, y: f32, button: PointerButton, pressed: bool) -> Event {
        Event::PointerButton {
            pos: pos2(x, y),
            button,
            pressed,
            modifiers: Modifiers::NONE,
        }
    }

    fn wheel(unit: MouseWheelUnit, x: f32, y: f32) -> Event {
        Event::MouseWheel {
            unit,
            delta: vec2(x, y),
            phase: TouchPhase::Move,
            source: MouseWheelSource::Unknown,
            modifiers: Modifiers::NONE,
        }
    }

    #[test]
    fn positions_map_to_remote_pixels_and_clamp() {
        let m = map();
        assert_eq!(m.to_remote(pos2(10.0, 20.0)), (0, 0));
        assert_eq!(m.to_remote(pos2(15.25, 21.0)), (10, 2));
        assert_eq!(m.to_remote(pos2(500.0, -3.0)), (199, 0));
    }

    #[test]
    fn a_window_area_maps_with_its_offset_and_scale_beyond_its_edges() {
        // A 300x200 window at (400, 100) of a 1280x800 screen, drawn at half size.
        let m = Mapping {
            rect: Rect::from_min_size(pos2(0.0, 0.0), vec2(150.0, 100.0)),
            area: Rect::from_min_size(pos2(400.0, 100.0), vec2(300.0, 200.0)),
            screen: (1280, 800),
        };
        assert_eq!(m.to_remote(pos2(0.0, 0.0)), (400, 100));
        assert_eq!(m.to_remote(pos2(75.0, 50.0)), (550, 200));
        // Past the window's edge (a drag into a menu): still the app's screen.
        assert_eq!(m.to_remote(pos2(200.0, 120.0)), (800, 340));
        assert_eq!(m.to_remote(pos2(-1000.0, 5000.0)), (0, 799));
        // One to one, every point is its own pixel.
        let one = Mapping {
            rect: Rect::from_min_size(pos2(0.0, 0.0), vec2(300.0, 200.0)),
            ..m
        };
        for x in 0..300 {
            assert_eq!(one.to_remote(pos2(x as f32, 0.0)).0, 400 + x);
        }
    }

    #[test]
    fn buttons_make_a_mask() {
        let mut mouse = Mouse::default();
        let mut out = Vec::new();
        let m = map();
        mouse.on_event(&Event::PointerMoved(pos2(12.0, 21.0)), &m, &mut out);
        // The same remote pixel again: nothing new to say.
        mouse.on_event(&Event::PointerMoved(pos2(12.2, 21.2)), &m, &mut out);
        mouse.on_event(
            &button(12.0, 21.0, PointerButton::Secondary, true),
            &m,
            &mut out,
        );
        mouse.on_event(
            &button(12.0, 21.0, PointerButton::Primary, true),
            &m,
            &mut out,
        );
        mouse.on_event(
            &button(12.0, 21.0, PointerButton::Secondary, false),
            &m,
            &mut out,
        );
        use PointerAction::Move;
        assert_eq!(
            out,
            vec![
                Move {
                    x: 4,
                    y: 2,
                    buttons: 0
                },
                Move {
                    x: 4,
                    y: 2,
                    buttons: 4
                },
                Move {
                    x: 4,
                    y: 2,
                    buttons: 5
                },
                Move {
                    x: 4,
                    y: 2,
                    buttons: 1
                },
            ]
        );
        out.clear();
        mouse.on_event(&Event::WindowFocused(false), &m, &mut out);
        assert_eq!(
            out,
            vec![Move {
                x: 4,
                y: 2,
                buttons: 0
            }]
        );
    }

    #[test]
    fn wheel_turns_into_clicks() {
        let mut mouse = Mouse::default();
        let mut out = Vec::new();
        let m = map();
        mouse.on_event(&Event::PointerMoved(pos2(10.0, 20.0)), &m, &mut out);
        out.clear();
        mouse.on_event(&wheel(MouseWheelUnit::Line, 0.0, 2.0), &m, &mut out);
        mouse.on_event(&wheel(MouseWheelUnit::Line, -1.0, -1.0), &m, &mut out);
        // Half a click now, half later: one click in all.
        mouse.on_event(&wheel(MouseWheelUnit::Point, 25.0, 0.0), &m, &mut out);
        mouse.on_event(&wheel(MouseWheelUnit::Point, 25.0, 0.0), &m, &mut out);
        let wheels: Vec<Wheel> = out
            .iter()
            .map(|a| match a {
                PointerAction::Wheel { wheel, .. } => *wheel,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            wheels,
            vec![Wheel::Up, Wheel::Up, Wheel::Down, Wheel::Right, Wheel::Left]
        );
    }
}
