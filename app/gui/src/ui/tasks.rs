//! The tasks panel: one tile per task of the master ([`super::task_tile`]):
//! migrants to drag onto a host, shared apps with a View button (each new
//! shared app also gets a viewer window by itself).

use eframe::egui;
use egui::{RichText, ScrollArea, Ui};

use super::task_menu::MenuChoice;
use super::task_tile::{TileAction, task_tile};
use crate::model::Model;
use crate::worker::Command;

/// Shows the tasks panel's contents; returns the moves the user asked for
/// (View clicks and dialogs go to the model).
pub fn tasks_panel(ui: &mut Ui, model: &mut Model) -> Vec<Command> {
    ui.heading("Tasks");
    ui.separator();
    ui.add_space(4.0);
    if model.tasks.is_empty() {
        ui.label(RichText::new("No tasks yet").weak());
        ui.add_space(4.0);
        ui.label(
            RichText::new(
                "Start a shared app with `zos run --shared -- xterm`, or a task that can move with `zos run --migrant -- CMD`; it appears here.",
            )
            .weak(),
        );
        return Vec::new();
    }
    let mut actions = Vec::new();
    ScrollArea::vertical().show(ui, |ui| {
        for task in &model.tasks {
            if let Some(action) = task_tile(ui, model, task) {
                actions.push((task.id, action));
            }
            ui.add_space(6.0);
        }
    });
    let mut commands = Vec::new();
    for (task, action) in actions {
        match action {
            TileAction::View => model.view(task),
            TileAction::Dismiss => model.moves.dismiss(task),
            TileAction::Menu(MenuChoice::Checkpoint) => {
                let home = std::env::var_os("HOME").unwrap_or_else(|| "/".into());
                model.open_checkpoint(task, std::path::Path::new(&home));
            }
            TileAction::Menu(MenuChoice::Move(command)) => commands.push(model.begin(command)),
        }
    }
    commands
}
