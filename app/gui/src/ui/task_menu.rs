//! A migrant tile's menu (right click, or its ⋮ button): Checkpoint…,
//! Migrate to ▸ (the hosts it can go to), Bring home (when away or lost;
//! for a lost task also from the last image, saying how old it is). A
//! suspended task's: Resume here, Resume on ▸ (the hosts it can go to).

use eframe::egui;
use egui::{Button, Ui};
use zos_netproto::control::TaskInfo;

use crate::migrant;
use crate::model::Model;
use crate::units;
use crate::worker::Command;

/// What the user chose in the menu.
#[derive(Clone, Debug, PartialEq)]
pub enum MenuChoice {
    /// Open the Checkpoint… dialog.
    Checkpoint,
    /// Send this move (a migration or a trip home).
    Move(Command),
}

/// The menu's entries for `task`.
pub fn task_menu(ui: &mut Ui, model: &Model, task: &TaskInfo) -> Option<MenuChoice> {
    let id = task.id;
    let moving = model.moves.is_running(id) || migrant::is_moving(task);
    if migrant::is_exited(task) {
        ui.label("It has ended.");
        return None;
    }
    if migrant::is_suspended(task) {
        return suspended_menu(ui, model, id, moving);
    }
    let mut choice = None;
    let lost = migrant::is_lost(task);
    let checkpoint = ui
        .add_enabled(!moving && !lost, Button::new("Checkpoint…"))
        .on_hover_text("Save an image of the task into a directory; it runs on")
        .on_disabled_hover_text("Not while it moves or is lost");
    if checkpoint.clicked() {
        choice = Some(MenuChoice::Checkpoint);
    }

    let targets = if moving {
        Vec::new()
    } else {
        model.migrate_targets(id)
    };
    if targets.is_empty() {
        ui.add_enabled(false, Button::new("Migrate to"))
            .on_disabled_hover_text(if moving {
                "It is moving now"
            } else {
                "No zombie to go to: dominate one at complete, or pair one at complete"
            });
    } else {
        ui.menu_button("Migrate to", |ui| {
            for (label, command) in targets {
                if ui.button(label).clicked() {
                    choice = Some(MenuChoice::Move(command));
                }
            }
        });
    }

    let away = lost || !migrant::is_home(task, model.master_name());
    if ui
        .add_enabled(away && !moving, Button::new("Bring home"))
        .clicked()
    {
        choice = Some(MenuChoice::Move(Command::Home {
            task: id,
            from_image: false,
        }));
    }
    if let Some(age) = migrant::image_age_s(task).filter(|_| lost) {
        let label = format!("Bring home from last image ({} old)", units::coarse(age));
        if ui.add_enabled(!moving, Button::new(label)).clicked() {
            choice = Some(MenuChoice::Move(Command::Home {
                task: id,
                from_image: true,
            }));
        }
    }
    if choice.is_some() {
        ui.close();
    }
    choice
}

/// The menu of a suspended task: back from its snapshot here, or on a zombie.
fn suspended_menu(ui: &mut Ui, model: &Model, id: u64, moving: bool) -> Option<MenuChoice> {
    let mut choice = None;
    if ui
        .add_enabled(!moving, Button::new("Resume here"))
        .on_hover_text("Bring it back from the snapshot taken when it was suspended")
        .clicked()
    {
        choice = Some(MenuChoice::Move(Command::Resume {
            task: id,
            on: None,
            dominate_first: false,
        }));
    }
    let targets = if moving {
        Vec::new()
    } else {
        model.migrate_targets(id)
    };
    if targets.is_empty() {
        ui.add_enabled(false, Button::new("Resume on"))
            .on_disabled_hover_text(
                "No zombie to go to: dominate one at complete, or pair one at complete",
            );
    } else {
        ui.menu_button("Resume on", |ui| {
            for (label, command) in targets {
                if ui.button(label).clicked() {
                    choice = Some(MenuChoice::Move(command));
                }
            }
        });
    }
    if choice.is_some() {
        ui.close();
    }
    choice
}
