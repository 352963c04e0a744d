//! Drawing the master window from a [`Model`]. Nothing here does I/O: the
//! drawing returns the [`Command`]s the user asked for, so tests can drive
//! it with a bare `egui::Context`.
//!
//! Layout: a header, the tasks panel on the left (a column of task tiles,
//! each migrant's a drag source), the master's own icon ("home") and the
//! zombies as tiles in the centre (drop zones), a status bar at the bottom,
//! and the dialogs on top.

use eframe::egui;
pub mod drag_ghost;
pub mod drop_zone;
pub mod glyph;
pub mod home_tile;
pub mod host_tile;
pub mod layout_log;
pub mod move_dialogs;
pub mod move_progress;
pub mod pair_dialog;
pub mod status_bar;
pub mod task_menu;
pub mod task_tile;
pub mod tasks;

use std::time::Instant;

use egui::{CentralPanel, Panel, RichText, ScrollArea, Ui};

use crate::drops::{Target, Verdict};
use crate::model::Model;
use crate::worker::Command;

/// The tasks panel's width at first.
pub const TASKS_WIDTH: f32 = 250.0;

/// Draws the whole window into `ui` and returns what the user asked for.
pub fn draw(ui: &mut Ui, model: &mut Model) -> Vec<Command> {
    let mut commands = Vec::new();
    if let Some(next) = model.moves.expire(Instant::now()) {
        ui.ctx().request_repaint_after(next);
    }

    Panel::top("header").show(ui, |ui| {
        ui.add_space(4.0);
        ui.horizontal(|ui| {
            ui.heading("ZOS master");
            ui.separator();
            ui.label(hosts_summary(model));
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                // Only zombies not paired (or no longer trusting us) need it.
                let enabled = model
                    .hosts
                    .iter()
                    .any(|h| model.paired_level(h).is_none() || model.revoked(h));
                if ui
                    .add_enabled(enabled, egui::Button::new("Pair with a zombie…"))
                    .clicked()
                {
                    model.open_pairing(model.selected.clone());
                }
            });
        });
        ui.add_space(2.0);
    });

    Panel::bottom("status").show(ui, |ui| {
        ui.add_space(2.0);
        status_bar::last_move(ui, model);
        status_bar::status_bar(ui, model);
        ui.add_space(2.0);
    });

    let panel = Panel::left("tasks")
        .default_size(TASKS_WIDTH)
        .resizable(true)
        .show(ui, |ui| tasks::tasks_panel(ui, model));
    commands.extend(panel.inner);

    let mut hint = None;
    CentralPanel::default().show(ui, |ui| {
        hint = hosts_area(ui, model, &mut commands);
    });

    drag_ghost::drag_ghost(ui, model, hint);
    commands.extend(move_dialogs::move_dialogs(ui, model));
    commands.extend(pair_dialog::pair_dialog(ui, model));
    commands.extend(model.take_views());
    model.log_shown_hosts();
    commands
}

fn hosts_summary(model: &Model) -> String {
    match model.hosts.len() {
        _ if model.daemon_error.is_some() => "daemon unreachable".to_owned(),
        _ if !model.polled => "looking for zombies…".to_owned(),
        0 => "no zombies".to_owned(),
        1 => "1 zombie".to_owned(),
        n => format!("{n} zombies"),
    }
}

/// Where a task was dropped this frame.
enum Dropped {
    Home,
    Host(String),
}

/// The master's own tile and the zombies as tiles, or why there are none.
/// Returns what letting go of a dragged task here would do, while one
/// hovers over a tile.
fn hosts_area(ui: &mut Ui, model: &mut Model, commands: &mut Vec<Command>) -> Option<Verdict> {
    if model.hosts.is_empty() && !model.tasks.iter().any(crate::migrant::is_migrant) {
        ui.add_space(40.0);
        ui.vertical_centered(|ui| {
            let (title, detail) = if let Some(error) = &model.daemon_error {
                ("The daemon does not answer.", error.clone())
            } else if let Some(error) = &model.hosts_error {
                ("The daemon cannot list zombies.", error.clone())
            } else {
                (
                    "No zombies seen yet.",
                    "Start `zos zombie` on a machine on this network.".to_owned(),
                )
            };
            ui.label(RichText::new(title).size(18.0));
            ui.label(RichText::new(detail).weak());
        });
        return None;
    }
    let mut hint = None;
    let mut dropped = Vec::new();
    ScrollArea::vertical().show(ui, |ui| {
        ui.add_space(8.0);
        // Rows of as many tiles as fit; egui's wrapping layouts do not wrap
        // framed blocks of fixed size.
        let gap = 12.0;
        let width = host_tile::OUTER_SIZE.x;
        let columns = (((ui.available_width() + gap) / (width + gap)).floor() as usize).max(1);
        let mut pair = None;
        let mut select = None;
        let mut pings = Vec::new();
        let mut dominations = Vec::new();
        let mut drives = Vec::new();
        let mut cancels = Vec::new();
        let tiles: Vec<Option<&_>> = std::iter::once(None)
            .chain(model.hosts.iter().map(Some))
            .collect();
        for row in tiles.chunks(columns) {
            ui.horizontal(|ui| {
                ui.spacing_mut().item_spacing.x = gap;
                for tile in row {
                    let Some(host) = tile else {
                        let events = home_tile::home_tile(ui, model, |task| {
                            model.verdict(task, Target::Home)
                        });
                        if let Some((_, verdict)) = events.hovering {
                            hint = Some(verdict);
                        }
                        if let Some(task) = events.dropped {
                            dropped.push((task, Dropped::Home));
                        }
                        continue;
                    };
                    let selected = model.selected.as_deref() == Some(host.instance.as_str());
                    let state = host_tile::TileState {
                        paired: model.paired_level(host),
                        ours: model.dominated_by_us(host),
                        driven: model.driven(host),
                        domination: model.dominations.get(&host.instance),
                        ping: model.pings.get(&host.instance),
                        revoked: model.revoked(host),
                    };
                    let actions = host_tile::host_tile(ui, host, selected, state, |task| {
                        model.verdict(task, Target::Host(host))
                    });
                    if let Some((_, verdict)) = actions.drop.hovering {
                        hint = Some(verdict);
                    }
                    if let Some(task) = actions.drop.dropped {
                        dropped.push((task, Dropped::Host(host.instance.clone())));
                    }
                    if actions.dominate || actions.release {
                        dominations.push((host.instance.clone(), actions.release));
                    }
                    if actions.cancel {
                        cancels.push(host.instance.clone());
                    }
                    if let Some(on) = actions.drive {
                        drives.push(((*host).clone(), on));
                    }
                    if actions.selected {
                        select = Some(host.instance.clone());
                    }
                    if actions.ping {
                        pings.push(host.instance.clone());
                    }
                    if actions.pair {
                        pair = Some(host.instance.clone());
                    }
                }
            });
            ui.add_space(gap - ui.spacing().item_spacing.y);
        }
        if model.hosts.is_empty() {
            ui.label(RichText::new("No zombies seen yet: a task can only come home.").weak());
        }
        if select.is_some() {
            model.selected = select;
        }
        for host in pings {
            commands.push(model.start_ping(&host));
        }
        for (host, release) in dominations {
            commands.push(model.start_domination(&host, release));
        }
        for host in cancels {
            commands.extend(model.cancel_domination(&host));
        }
        for (host, on) in drives {
            commands.push(model.start_drive(&host, on));
        }
        if let Some(host) = pair {
            model.open_pairing(Some(host));
        }
    });
    for (task, place) in dropped {
        let command = match place {
            Dropped::Home => model.drop_task(task, Target::Home),
            Dropped::Host(instance) => match model.host(&instance).cloned() {
                Some(host) => model.drop_task(task, Target::Host(&host)),
                None => None,
            },
        };
        commands.extend(command);
    }
    hint
}
