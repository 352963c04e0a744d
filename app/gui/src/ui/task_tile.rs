//! One task's tile. A migrant's tile shows its command, where it runs, its
//! state and since when, and the age of its last image; the whole tile is a
//! drag source (drop it on a host's icon to move the task there) and has a
//! menu (right click, or ⋮); while it moves, a progress bar. A shared app's
//! tile keeps its View button.

use eframe::egui;
use egui::{
    Align, CornerRadius, Frame, Layout, Margin, Popup, Response, RichText, Sense, StrokeKind, Ui,
    UiBuilder, vec2,
};
use zos_netproto::control::TaskInfo;

use super::move_progress::move_state;
use super::task_menu::{MenuChoice, task_menu};
use crate::migrant;
use crate::model::Model;
use crate::units;

/// What a dragged task tile carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskDrag {
    /// The task id.
    pub task: u64,
}

/// What the user did on a tile.
#[derive(Clone, Debug, PartialEq)]
pub enum TileAction {
    /// A shared app's View button.
    View,
    /// A choice in a migrant's menu.
    Menu(MenuChoice),
    /// The error of its last move was dismissed.
    Dismiss,
}

/// The tile's frame.
fn frame(ui: &Ui) -> Frame {
    Frame::new()
        .fill(ui.visuals().faint_bg_color)
        .stroke(ui.visuals().widgets.noninteractive.bg_stroke)
        .corner_radius(CornerRadius::same(6))
        .inner_margin(Margin::same(6))
}

/// Shows `task`'s tile; returns what the user did on it.
pub fn task_tile(ui: &mut Ui, model: &Model, task: &TaskInfo) -> Option<TileAction> {
    if migrant::is_migrant(task) {
        migrant_tile(ui, model, task)
    } else {
        shared_tile(ui, task).then_some(TileAction::View)
    }
}

/// A shared app: program, command, View.
fn shared_tile(ui: &mut Ui, task: &TaskInfo) -> bool {
    let mut clicked = false;
    frame(ui).show(ui, |ui| {
        ui.set_width(ui.available_width());
        ui.label(RichText::new(migrant::program(task)).strong());
        ui.label(RichText::new(task.command.join(" ")).small().weak());
        ui.horizontal(|ui| {
            let place = task.display.as_deref().unwrap_or("");
            ui.label(RichText::new(format!("task {} · {} · {place}", task.id, task.kind)).small());
            if task.kind == "shared" && ui.small_button("View").clicked() {
                clicked = true;
            }
        });
    });
    clicked
}

/// A migrant: a drag source with a menu and its move's state.
fn migrant_tile(ui: &mut Ui, model: &Model, task: &TaskInfo) -> Option<TileAction> {
    let mut action = None;
    let builder = UiBuilder::new()
        .id_salt(("task-tile", task.id))
        .sense(Sense::click_and_drag());
    let scope = ui.scope_builder(builder, |ui| {
        // Selectable labels would take the press for selecting text: the
        // tile's words belong to the drag.
        ui.style_mut().interaction.selectable_labels = false;
        frame(ui).show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.horizontal(|ui| {
                ui.label(RichText::new(migrant::program(task)).strong());
                ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
                    let dots = dots_button(ui).on_hover_text("Checkpoint, migrate, bring home");
                    let menu = Popup::menu(&dots).show(|ui| task_menu(ui, model, task));
                    if let Some(choice) = menu.and_then(|m| m.inner) {
                        action = Some(TileAction::Menu(choice));
                    }
                });
            });
            ui.add(
                egui::Label::new(RichText::new(task.command.join(" ")).small().weak()).truncate(),
            );
            ui.add(egui::Label::new(RichText::new(place_line(model, task)).small()).wrap());
            let image = match migrant::image_age_s(task) {
                _ if migrant::is_suspended(task) => {
                    "drop it on a host to resume it there".to_owned()
                }
                Some(age) => format!("last image {} old", units::coarse(age)),
                None => "no image yet".to_owned(),
            };
            ui.label(RichText::new(image).small().weak());
            if let Some(state) = model.moves.get(task.id) {
                ui.separator();
                if move_state(ui, state) {
                    action = Some(TileAction::Dismiss);
                }
            }
        });
    });
    super::layout_log::note(ui.ctx(), &format!("task {}", task.id), scope.response.rect);
    let response = scope.response.on_hover_text(format!(
        "{}\nDrag onto a host to move it there; right click for more",
        task.command.join(" ")
    ));
    response.dnd_set_drag_payload(TaskDrag { task: task.id });
    response.context_menu(|ui| {
        if let Some(choice) = task_menu(ui, model, task) {
            action = Some(TileAction::Menu(choice));
        }
    });
    action
}

/// The radius of the menu button's dots.
pub const DOT_RADIUS: f32 = 1.8;

/// The menu button: three dots stacked (the default fonts have no "⋮").
fn dots_button(ui: &mut Ui) -> Response {
    let (rect, response) = ui.allocate_exact_size(vec2(22.0, 20.0), Sense::click());
    let look = ui.style().interact(&response);
    let painter = ui.painter();
    painter.rect(
        rect,
        look.corner_radius,
        look.weak_bg_fill,
        look.bg_stroke,
        StrokeKind::Inside,
    );
    for step in [-1.0, 0.0, 1.0] {
        let centre = rect.center() + vec2(0.0, step * 4.5);
        painter.circle_filled(centre, DOT_RADIUS, look.fg_stroke.color);
    }
    response
}

/// "task 3 · running on desk for 4 min", "task 5 · exited 0 (3 min ago)".
fn place_line(model: &Model, task: &TaskInfo) -> String {
    let place = migrant::place(task, model.master_name());
    let since = match migrant::since_s(task, migrant::now_unix()) {
        None => String::new(),
        Some(s) if migrant::is_exited(task) => format!(" ({} ago)", units::coarse(s)),
        Some(s) => format!(" for {}", units::coarse(s)),
    };
    format!("task {} · {place}{since}", task.id)
}
