//! A headless window for tests: a bare `egui::Context` running the real
//! drawing on a [`Model`], synthetic pointer and text input, and the painted
//! shapes read back.
#![allow(dead_code)]

use eframe::egui::{self, Color32, Event, Modifiers, PointerButton, Pos2, RawInput, Rect, Shape};
use zos_gui::model::Model;
use zos_gui::ui;
use zos_gui::worker::{Command, Event as WorkerEvent};
use zos_netproto::discovery::HostInfo;

/// A headless window: a context, a model, and what the last frame painted.
pub struct Harness {
    pub ctx: egui::Context,
    pub model: Model,
    pub shapes: Vec<Shape>,
    pub commands: Vec<Command>,
}

impl Harness {
    pub fn new(hosts: Vec<HostInfo>) -> Harness {
        let mut model = Model::default();
        model.apply(WorkerEvent::Hosts(Ok(hosts)));
        model.apply(WorkerEvent::Status(Ok(super::migrants::status())));
        let mut h = Harness {
            ctx: egui::Context::default(),
            model,
            shapes: Vec::new(),
            commands: Vec::new(),
        };
        h.frames(3, vec![]);
        h
    }

    /// Runs `n` frames, the first with `events`; keeps the commands asked.
    pub fn frames(&mut self, n: usize, events: Vec<Event>) {
        let mut events = Some(events);
        for _ in 0..n {
            let input = RawInput {
                screen_rect: Some(Rect::from_min_size(Pos2::ZERO, egui::vec2(900.0, 600.0))),
                events: events.take().unwrap_or_default(),
                ..Default::default()
            };
            let model = &mut self.model;
            let mut asked = Vec::new();
            let mut output = self
                .ctx
                .run_ui(input, |ui| asked.extend(ui::draw(ui, model)));
            self.commands.extend(asked);
            self.shapes = std::mem::take(&mut output.shapes)
                .into_iter()
                .map(|c| c.shape)
                .collect();
            // Nothing renders here, so the font atlas updates go nowhere.
            output.drop_without_applying_deltas();
        }
    }

    /// Every painted text with its screen rectangle.
    pub fn texts(&self) -> Vec<(String, Rect)> {
        let mut out = Vec::new();
        visit(&self.shapes, &mut |shape| {
            if let Shape::Text(t) = shape {
                out.push((
                    t.galley.text().to_owned(),
                    t.galley.rect.translate(t.pos.to_vec2()),
                ));
            }
        });
        out
    }

    pub fn text_rect(&self, text: &str, near_x: f32) -> Rect {
        self.texts()
            .into_iter()
            .filter(|(t, _)| t == text)
            .map(|(_, r)| r)
            .min_by(|a, b| {
                (a.center().x - near_x)
                    .abs()
                    .total_cmp(&(b.center().x - near_x).abs())
            })
            .unwrap_or_else(|| panic!("no {text:?} on screen: {:?}", self.texts()))
    }

    pub fn click(&mut self, pos: Pos2) {
        self.click_with(pos, PointerButton::Primary);
    }

    /// A click of `button` at `pos`.
    pub fn click_with(&mut self, pos: Pos2, button: PointerButton) {
        let press = |pressed| Event::PointerButton {
            pos,
            button,
            pressed,
            modifiers: Modifiers::NONE,
        };
        self.frames(1, vec![Event::PointerMoved(pos)]);
        self.frames(1, vec![press(true)]);
        self.frames(2, vec![press(false)]);
    }

    /// Moves the pointer to `pos` (a frame or two to settle).
    pub fn hover(&mut self, pos: Pos2) {
        self.frames(2, vec![Event::PointerMoved(pos)]);
    }

    /// Presses at `from`, moves in `steps` steps to `to` (a frame each),
    /// and stays there pressed: a drag in progress.
    pub fn drag_to(&mut self, from: Pos2, to: Pos2, steps: usize) {
        self.frames(1, vec![Event::PointerMoved(from)]);
        self.frames(
            1,
            vec![Event::PointerButton {
                pos: from,
                button: PointerButton::Primary,
                pressed: true,
                modifiers: Modifiers::NONE,
            }],
        );
        for i in 1..=steps {
            let t = i as f32 / steps as f32;
            self.frames(1, vec![Event::PointerMoved(from + (to - from) * t)]);
        }
        self.frames(1, vec![]);
    }

    /// Lets go of the button at `at`.
    pub fn release(&mut self, at: Pos2) {
        self.frames(
            1,
            vec![Event::PointerButton {
                pos: at,
                button: PointerButton::Primary,
                pressed: false,
                modifiers: Modifiers::NONE,
            }],
        );
        self.frames(2, vec![]);
    }

    /// The centres of the circles of radius `radius`.
    pub fn circles(&self, radius: f32) -> Vec<Pos2> {
        let mut out = Vec::new();
        visit(&self.shapes, &mut |shape| {
            if let Shape::Circle(c) = shape
                && c.radius == radius
            {
                out.push(c.center);
            }
        });
        out
    }

    /// Whether `text` is on screen.
    pub fn shows(&self, text: &str) -> bool {
        self.texts().iter().any(|(t, _)| t == text)
    }

    /// The texts on screen that contain `part`.
    pub fn texts_containing(&self, part: &str) -> Vec<(String, Rect)> {
        self.texts()
            .into_iter()
            .filter(|(t, _)| t.contains(part))
            .collect()
    }

    /// Every rectangle painted, with its fill.
    pub fn rects(&self) -> Vec<(Rect, Color32)> {
        let mut out = Vec::new();
        visit(&self.shapes, &mut |shape| {
            if let Shape::Rect(r) = shape {
                out.push((r.rect, r.fill));
            }
        });
        out
    }

    /// The rectangles filled with `color`.
    pub fn rects_filled(&self, color: Color32) -> Vec<Rect> {
        let mut out = Vec::new();
        visit(&self.shapes, &mut |shape| {
            if let Shape::Rect(r) = shape
                && r.fill == color
            {
                out.push(r.rect);
            }
        });
        out
    }

    /// The rectangles outlined in `color`, `width` wide.
    pub fn rects_stroked(&self, color: Color32, width: f32) -> Vec<Rect> {
        let mut out = Vec::new();
        visit(&self.shapes, &mut |shape| {
            if let Shape::Rect(r) = shape
                && r.stroke.color == color
                && r.stroke.width == width
            {
                out.push(r.rect);
            }
        });
        out
    }

    pub fn filled_rects(&self, color: Color32) -> usize {
        let mut n = 0;
        visit(&self.shapes, &mut |shape| {
            if matches!(shape, Shape::Rect(r) if r.fill == color) {
                n += 1;
            }
        });
        n
    }
}

pub fn visit(shapes: &[Shape], f: &mut impl FnMut(&Shape)) {
    for shape in shapes {
        if let Shape::Vec(inner) = shape {
            visit(inner, f);
        } else {
            f(shape);
        }
    }
}
