//! Drawing the consent prompt: who asks (name and fingerprint), what the
//! level lets it do, the time left as words and a bar, "show the master's
//! apps", and Refuse / Accept. Returns the user's [`Command`]; no I/O, so
//! tests run it on a bare `egui::Context`.
//!
//! The buttons' places are logged (`layout: consent Accept at …`, debug
//! level) so a test driving the real window with xdotool knows where to
//! click.

use std::time::{Duration, Instant};

use eframe::egui::{self, Color32, RichText, Ui};
use zos_gui::ui::layout_log;
use zos_netproto::Level;

use crate::consent::{Consent, Stage};
use crate::link::Command;

/// The colour of errors.
pub const BAD: Color32 = Color32::from_rgb(0xE8, 0x64, 0x54);
/// The height of the bar the buttons sit in.
pub const BUTTON_BAR: f32 = 46.0;
/// The countdown bar's colour.
pub const COUNTDOWN: Color32 = Color32::from_rgb(0xF0, 0xB0, 0x30);

/// What a level lets the master do here, in words.
pub fn level_words(level: Level) -> &'static str {
    match level {
        Level::Complete => {
            "It may run its programs on this machine (in a sandbox, without your files, your \
             screen or root) and mount its shared folders here."
        }
        Level::Partial => "It may mount its shared folders here; it runs no programs here.",
    }
}

/// Draws the prompt; returns the command the user asked for. `total` is
/// the whole answering time (for the bar).
pub fn draw(ui: &mut Ui, model: &mut Consent, now: Instant, total: Duration) -> Option<Command> {
    let mut command = None;
    egui::Panel::bottom("consent-buttons")
        .resizable(false)
        .exact_size(BUTTON_BAR)
        .show(ui, |ui| {
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                let enabled = model.can_answer();
                let accept = ui.add_enabled(
                    enabled,
                    egui::Button::new(RichText::new("Accept").strong())
                        .min_size(egui::vec2(90.0, 30.0)),
                );
                layout_log::note(ui.ctx(), "consent Accept", accept.rect);
                let refuse = ui.add_enabled(
                    enabled,
                    egui::Button::new("Refuse").min_size(egui::vec2(90.0, 30.0)),
                );
                layout_log::note(ui.ctx(), "consent Refuse", refuse.rect);
                if accept.clicked() {
                    command = model.answer(true);
                } else if refuse.clicked() {
                    command = model.answer(false);
                }
            });
        });
    egui::CentralPanel::default().show(ui, |ui| {
        ui.spacing_mut().item_spacing.y = 6.0;
        let Some(ask) = model.ask.clone() else {
            ui.heading("Domination request");
            ui.label(match &model.daemon_error {
                Some(e) => format!("The daemon does not answer: {e}"),
                None => "Waiting for the daemon…".to_owned(),
            });
            return;
        };
        ui.heading(format!("{} asks to dominate {}", ask.master, model.zombie));
        ui.add(
            egui::Label::new(format!(
                "The ZOS master {} wants to take this machine over at level {}.",
                ask.master, ask.level
            ))
            .wrap(),
        );
        ui.horizontal(|ui| {
            ui.label("Fingerprint");
            ui.label(RichText::new(&ask.fingerprint).monospace().strong());
        });
        ui.add(egui::Label::new(RichText::new(level_words(ask.level)).weak()).wrap());
        let r = ui.checkbox(
            &mut model.show_apps,
            "Show the master's apps on this screen",
        );
        layout_log::note(ui.ctx(), "consent show apps", r.rect);

        let left = model.seconds_left(now);
        let bar = egui::ProgressBar::new(model.share_left(now, total))
            .fill(COUNTDOWN)
            .text(format!("{left} s left to answer, then it is refused"));
        ui.add(bar);

        match &model.stage {
            Stage::Sending { accept } => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label(if *accept {
                        "accepting…"
                    } else {
                        "refusing…"
                    });
                });
            }
            Stage::Failed { message } => {
                ui.add(egui::Label::new(RichText::new(message).color(BAD)).wrap());
            }
            Stage::Answered { what } => {
                ui.label(format!("{what}."));
            }
            Stage::Gone => {
                ui.label("The request is no longer waiting.");
            }
            Stage::Asking => {}
        }
    });
    command
}
