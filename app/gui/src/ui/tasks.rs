//! The tasks panel. Tasks are not registered yet, so it only says so; later
//! issues put one tile per task here, each a drag source that can be dropped
//! on a zombie's tile to migrate it.

use eframe::egui;
use egui::{RichText, Ui};

/// Shows the tasks panel's contents.
pub fn tasks_panel(ui: &mut Ui) {
    ui.heading("Tasks");
    ui.separator();
    ui.add_space(8.0);
    ui.label(RichText::new("No tasks yet").weak());
    ui.add_space(4.0);
    ui.label(
        RichText::new(
            "Tasks started with `zos run` appear here; drag one onto a zombie to move it.",
        )
        .weak(),
    );
}
