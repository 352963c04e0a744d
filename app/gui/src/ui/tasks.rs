//! The tasks panel: one tile per task of the master, with a View button for
//! shared apps (each new shared app also gets a viewer window by itself).
//! Later issues make each tile a drag source to drop on a zombie's tile.

use eframe::egui;
use egui::{CornerRadius, Frame, Margin, RichText, ScrollArea, Ui};
use zos_netproto::control::TaskInfo;

use crate::model::Model;

/// Shows the tasks panel's contents; View clicks go to the model.
pub fn tasks_panel(ui: &mut Ui, model: &mut Model) {
    ui.heading("Tasks");
    ui.separator();
    ui.add_space(4.0);
    if model.tasks.is_empty() {
        ui.label(RichText::new("No tasks yet").weak());
        ui.add_space(4.0);
        ui.label(
            RichText::new(
                "Start a shared app with `zos run --shared -- xterm`; it appears here and in a viewer window.",
            )
            .weak(),
        );
        return;
    }
    let mut view = None;
    ScrollArea::vertical().show(ui, |ui| {
        for task in &model.tasks {
            if task_tile(ui, task) {
                view = Some(task.id);
            }
            ui.add_space(6.0);
        }
    });
    if let Some(task) = view {
        model.view(task);
    }
}

/// One task; returns whether its View button was clicked.
fn task_tile(ui: &mut Ui, task: &TaskInfo) -> bool {
    let mut clicked = false;
    Frame::new()
        .fill(ui.visuals().faint_bg_color)
        .stroke(ui.visuals().widgets.noninteractive.bg_stroke)
        .corner_radius(CornerRadius::same(6))
        .inner_margin(Margin::same(6))
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            let program = task
                .command
                .first()
                .map(|p| p.rsplit('/').next().unwrap_or(p).to_owned())
                .unwrap_or_default();
            ui.label(RichText::new(program).strong());
            ui.label(RichText::new(task.command.join(" ")).small().weak());
            ui.horizontal(|ui| {
                let place = task.display.as_deref().unwrap_or("");
                ui.label(
                    RichText::new(format!("task {} · {} · {place}", task.id, task.kind)).small(),
                );
                if task.kind == "shared" && ui.small_button("View").clicked() {
                    clicked = true;
                }
            });
        });
    clicked
}
