//! Drawing the zombie's status window: the domination (master, fingerprint,
//! level, since when, the mount), the master's shared apps with View
//! buttons, "Show all its apps", and Release; or "free" when nobody
//! dominates. Returns what the user asked for; no I/O.
//!
//! The buttons' places are logged (`layout: status Release at …`, debug
//! level) for tests that click them with xdotool.

use eframe::egui::{self, Color32, RichText, Ui};
use zos_gui::ui::layout_log;

use crate::consent_ui::{BAD, BUTTON_BAR, level_words};
use crate::link::Command;
use crate::status::{ZombieStatus, age};

/// The colour of "free" and of good news.
pub const GOOD: Color32 = Color32::from_rgb(0x5C, 0xC0, 0x6C);
/// The Release button's fill.
pub const RELEASE: Color32 = Color32::from_rgb(0xB0, 0x40, 0x38);

/// What the user asked for in the status window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// A request to the daemon.
    Daemon(Command),
    /// Open a viewer for the master's task.
    View(u64),
}

/// Draws the window; returns what the user asked for.
pub fn draw(ui: &mut Ui, model: &mut ZombieStatus) -> Vec<Action> {
    let mut actions = Vec::new();
    let apps: Vec<(u64, String)> = model
        .apps()
        .map(|t| {
            let program = t
                .command
                .first()
                .map(|p| p.rsplit('/').next().unwrap_or(p).to_owned())
                .unwrap_or_default();
            (t.id, program)
        })
        .collect();
    if model.domination().is_some() && model.daemon_error.is_none() {
        egui::Panel::bottom("status-buttons")
            .resizable(false)
            .exact_size(BUTTON_BAR)
            .show(ui, |ui| {
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    let busy = model.busy.is_some();
                    let release = ui.add_enabled(
                        !busy,
                        egui::Button::new(RichText::new("Release").color(Color32::WHITE).strong())
                            .fill(RELEASE)
                            .min_size(egui::vec2(90.0, 30.0)),
                    );
                    layout_log::note(ui.ctx(), "status Release", release.rect);
                    let show = ui.add_enabled(
                        !busy && !apps.is_empty(),
                        egui::Button::new("Show all its apps").min_size(egui::vec2(0.0, 30.0)),
                    );
                    layout_log::note(ui.ctx(), "status Show all", show.rect);
                    if busy {
                        ui.spinner();
                    }
                    let asked = if release.clicked() {
                        Some(Command::Release)
                    } else if show.clicked() {
                        Some(Command::ShowMasterApps)
                    } else {
                        None
                    };
                    if let Some(command) = asked.and_then(|c| model.start(c)) {
                        actions.push(Action::Daemon(command));
                    }
                });
            });
    }
    egui::CentralPanel::default().show(ui, |ui| {
        ui.spacing_mut().item_spacing.y = 6.0;
        ui.heading(format!("ZOS zombie {}", model.zombie()));
        if let Some(error) = &model.daemon_error {
            ui.add(
                egui::Label::new(
                    RichText::new(format!("The daemon does not answer: {error}")).color(BAD),
                )
                .wrap(),
            );
            return;
        }
        let Some(d) = model.domination() else {
            ui.label(RichText::new("Free: no master dominates this machine.").color(GOOD));
            outcome(ui, model);
            return;
        };
        ui.add(
            egui::Label::new(
                RichText::new(format!(
                    "Dominated by {} at level {}, for {}.",
                    d.master,
                    d.level,
                    age(d.age_s)
                ))
                .strong(),
            )
            .wrap(),
        );
        ui.horizontal(|ui| {
            ui.label("Fingerprint");
            ui.label(RichText::new(&d.fingerprint).monospace());
        });
        ui.add(egui::Label::new(RichText::new(level_words(d.level)).weak()).wrap());
        if let Some(mount) = &d.mount {
            ui.add(egui::Label::new(format!("Its shared folders are at {mount}")).wrap());
        }
        ui.separator();
        if apps.is_empty() {
            ui.label(RichText::new("It shares no apps.").weak());
        } else {
            ui.label(format!("Its shared apps ({}):", apps.len()));
            egui::ScrollArea::vertical()
                .max_height(90.0)
                .show(ui, |ui| {
                    for (id, program) in &apps {
                        ui.horizontal(|ui| {
                            if ui.button("View").clicked() {
                                actions.push(Action::View(*id));
                            }
                            ui.label(format!("{program} (task {id})"));
                        });
                    }
                });
        }
        outcome(ui, model);
    });
    actions
}

fn outcome(ui: &mut Ui, model: &ZombieStatus) {
    match &model.outcome {
        Some(Ok(what)) => {
            ui.label(RichText::new(format!("Done: {what}.")).color(GOOD));
        }
        Some(Err(message)) => {
            ui.add(egui::Label::new(RichText::new(message).color(BAD)).wrap());
        }
        None => {}
    }
}
