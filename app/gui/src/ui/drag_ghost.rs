//! While a task's tile is dragged: a small card under the pointer naming
//! the task and what letting go where it is would do ("move to desk",
//! "dominate and move", or why not).

use eframe::egui;
use egui::{Area, Frame, Id, Margin, Order, RichText, Ui, vec2};

use super::drop_zone::{ACCEPT, REFUSE};
use super::task_tile::TaskDrag;
use crate::drops::Verdict;
use crate::migrant;
use crate::model::Model;

/// Draws the card if a task is being dragged; `hint` is the verdict of the
/// tile under the pointer, if any.
pub fn drag_ghost(ui: &Ui, model: &Model, hint: Option<Verdict>) {
    let ctx = ui.ctx();
    let Some(drag) = egui::DragAndDrop::payload::<TaskDrag>(ctx) else {
        return;
    };
    let Some(pointer) = ctx.pointer_interact_pos() else {
        return;
    };
    let name = model
        .task(drag.task)
        .map(migrant::program)
        .unwrap_or_default();
    Area::new(Id::unique("task-drag-ghost"))
        .order(Order::Tooltip)
        .interactable(false)
        .fixed_pos(pointer + vec2(14.0, 14.0))
        .show(ctx, |ui| {
            Frame::popup(ui.style())
                .inner_margin(Margin::same(6))
                .show(ui, |ui| {
                    ui.set_max_width(260.0);
                    ui.label(RichText::new(format!("task {} · {name}", drag.task)).strong());
                    match &hint {
                        Some(verdict) => {
                            let color = if verdict.accepts() { ACCEPT } else { REFUSE };
                            ui.add(
                                egui::Label::new(RichText::new(verdict.hint()).color(color)).wrap(),
                            );
                        }
                        None => {
                            ui.label(RichText::new("drop it on a host").weak());
                        }
                    }
                });
        });
}
