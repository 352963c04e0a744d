//! The bottom line: who this instance is, or why the daemon is out of reach;
//! above it, the latest move's outcome (its phase times, or its error in
//! full).

use eframe::egui;
use egui::{Color32, RichText, Ui};

use crate::model::Model;
use crate::moves;

const GOOD: Color32 = Color32::from_rgb(0x5C, 0xC0, 0x6C);
const BAD: Color32 = Color32::from_rgb(0xE8, 0x64, 0x54);

/// A small coloured disc, the daemon's health at a glance.
fn dot(ui: &mut Ui, color: Color32) {
    let (rect, _) = ui.allocate_exact_size(egui::vec2(12.0, 12.0), egui::Sense::hover());
    ui.painter().circle_filled(rect.center(), 5.0, color);
}

/// Shows the instance's name, role, fingerprint and sessions, or a clear
/// message when the daemon does not answer.
pub fn status_bar(ui: &mut Ui, model: &Model) {
    ui.horizontal(|ui| {
        if let Some(error) = &model.daemon_error {
            dot(ui, BAD);
            ui.label(RichText::new("daemon unreachable").strong().color(BAD));
            ui.add(egui::Label::new(error).wrap());
            return;
        }
        match &model.status {
            None => {
                ui.spinner();
                ui.label("connecting to the daemon…");
            }
            Some(status) => {
                dot(ui, GOOD);
                ui.label(RichText::new(&status.name).strong());
                ui.label(RichText::new(format!("{:?}", status.role).to_lowercase()).weak());
                ui.separator();
                ui.label("fingerprint");
                ui.label(RichText::new(&status.fingerprint).monospace());
                ui.separator();
                ui.label(format!(
                    "{} paired · {} session{}",
                    status.trusted,
                    status.sessions.len(),
                    if status.sessions.len() == 1 { "" } else { "s" }
                ));
            }
        }
    });
}

/// The latest move that ended: "task 3 moved to desk in 2.41 s: check
/// 3 ms · …", or its error, wrapped; nothing before the first.
pub fn last_move(ui: &mut Ui, model: &Model) {
    let text = match &model.moves.last {
        None => return,
        Some(Ok((task, outcome))) => {
            RichText::new(format!("task {task} {}", moves::describe(outcome))).color(GOOD)
        }
        Some(Err((task, message))) => RichText::new(format!("task {task}: {message}")).color(BAD),
    };
    ui.add(egui::Label::new(text).wrap());
}
