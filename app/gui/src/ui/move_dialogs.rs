//! The small dialogs of moving tasks: the confirmation a drop may need
//! ("Dominate desk at complete and move task 3 there?") and Checkpoint…
//! (which directory the image goes to).

use eframe::egui;
use egui::{Id, Key, Modal, TextEdit, Ui};

use crate::model::Model;
use crate::worker::Command;

/// Shows the open dialog, if any; returns the move to start.
pub fn move_dialogs(ui: &mut Ui, model: &mut Model) -> Option<Command> {
    if model.ask.is_some() {
        return confirmation(ui, model);
    }
    if model.checkpoint.is_some() {
        return checkpoint(ui, model);
    }
    None
}

/// Yes / Cancel on the question the drop raised.
fn confirmation(ui: &mut Ui, model: &mut Model) -> Option<Command> {
    let question = model.ask.clone()?;
    let mut answer = None;
    let modal = Modal::new(Id::unique("move-question")).show(ui.ctx(), |ui| {
        ui.set_width(380.0);
        ui.heading(format!("Move task {}", question.task));
        ui.add_space(4.0);
        ui.add(egui::Label::new(question.question.as_str()).wrap());
        ui.add_space(8.0);
        ui.horizontal(|ui| {
            if ui.button(&question.yes).clicked() {
                answer = Some(true);
            }
            if ui.button("Cancel").clicked() {
                answer = Some(false);
            }
        });
    });
    if modal.should_close() {
        answer = answer.or(Some(false));
    }
    answer.and_then(|yes| model.answer(yes))
}

/// The directory for a task's image.
fn checkpoint(ui: &mut Ui, model: &mut Model) -> Option<Command> {
    let mut save = false;
    let mut cancel = false;
    let modal = Modal::new(Id::unique("checkpoint-dialog")).show(ui.ctx(), |ui| {
        let Some(dialog) = model.checkpoint.as_mut() else {
            return;
        };
        ui.set_width(420.0);
        ui.heading(format!("Checkpoint task {}", dialog.task));
        ui.add_space(4.0);
        ui.label("The task's image goes into this directory; the task runs on.");
        ui.add_space(4.0);
        let edit = ui.add(
            TextEdit::singleline(&mut dialog.dir)
                .desired_width(f32::INFINITY)
                .font(egui::TextStyle::Monospace),
        );
        if edit.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter)) {
            save = true;
        }
        ui.add_space(8.0);
        ui.horizontal(|ui| {
            let ready = !dialog.dir.trim().is_empty();
            save |= ui.add_enabled(ready, egui::Button::new("Save")).clicked();
            cancel = ui.button("Cancel").clicked();
        });
    });
    if cancel || modal.should_close() {
        model.checkpoint = None;
        return None;
    }
    if save {
        return model.start_checkpoint();
    }
    None
}
