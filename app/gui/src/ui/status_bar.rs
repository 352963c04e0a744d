//! The bottom line: who this instance is, or why the daemon is out of reach.

use eframe::egui;
use egui::{Color32, RichText, Ui};

use crate::model::Model;

/// Shows the instance's name, role, fingerprint and sessions, or a clear
/// message when the daemon does not answer.
pub fn status_bar(ui: &mut Ui, model: &Model) {
    ui.horizontal(|ui| {
        if let Some(error) = &model.daemon_error {
            ui.label(
                RichText::new("● daemon unreachable")
                    .strong()
                    .color(Color32::from_rgb(0xE8, 0x64, 0x54)),
            );
            ui.label(error);
            return;
        }
        match &model.status {
            None => {
                ui.spinner();
                ui.label("connecting to the daemon…");
            }
            Some(status) => {
                ui.label(
                    RichText::new("●")
                        .strong()
                        .color(Color32::from_rgb(0x5C, 0xC0, 0x6C)),
                );
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
