//! The master's own icon, first among the hosts: "home". A migrant's tile
//! dropped on it comes home (`Home`), a suspended one resumes here; it shows
//! how many migrants run here, how many are away and how many suspended.

use eframe::egui;
use egui::{Align, Color32, Layout, RichText, Sense, Ui};

use super::drop_zone::{DropEvents, drop_zone};
use super::glyph::{self, GLYPH_SIZE};
use super::host_tile::{TILE_SIZE, tile_frame};
use crate::drops::Verdict;
use crate::migrant;
use crate::model::Model;

/// The colour of the master's own monitor (`#4CAF7D`).
pub const HOME_GREEN: Color32 = Color32::from_rgb(0x4C, 0xAF, 0x7D);

/// Shows the master's tile; returns a task hovering over it or dropped on it.
pub fn home_tile(ui: &mut Ui, model: &Model, verdict: impl Fn(u64) -> Verdict) -> DropEvents {
    let master = model.master_name();
    let migrants: Vec<_> = model
        .tasks
        .iter()
        .filter(|t| migrant::is_migrant(t))
        .collect();
    let suspended = migrants.iter().filter(|t| migrant::is_suspended(t)).count();
    let home = migrants
        .iter()
        .filter(|t| migrant::is_home(t, master) && !migrant::is_suspended(t))
        .count();
    let away = migrants.len() - home - suspended;
    let frame = tile_frame(ui);
    let ((), events) = drop_zone(ui, "home", frame, verdict, |ui| {
        ui.allocate_ui_with_layout(TILE_SIZE, Layout::top_down(Align::Center), |ui| {
            ui.set_min_size(TILE_SIZE);
            ui.spacing_mut().item_spacing.y = 3.0;
            let (rect, response) = ui.allocate_exact_size(GLYPH_SIZE, Sense::hover());
            glyph::paint_monitor(ui.painter(), rect, HOME_GREEN, false);
            response.on_hover_text("This master. Drop a task here to bring it home.");
            let name = if master.is_empty() {
                "this master"
            } else {
                master
            };
            ui.label(RichText::new(name).strong().size(16.0));
            ui.label(RichText::new("home").color(HOME_GREEN));
            ui.label(format!("{home} migrant{} here", plural(home)));
            let elsewhere: Vec<String> = [(away, "away"), (suspended, "suspended")]
                .into_iter()
                .filter(|(n, _)| *n > 0)
                .map(|(n, what)| format!("{n} {what}"))
                .collect();
            if !elsewhere.is_empty() {
                ui.label(elsewhere.join(" · "));
            }
            ui.add_space(6.0);
            ui.add(
                egui::Label::new(
                    RichText::new("Drop a task here to bring it home.")
                        .small()
                        .weak(),
                )
                .wrap(),
            );
        });
    });
    events
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
