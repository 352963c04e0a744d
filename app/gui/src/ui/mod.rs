//! Drawing the master window from a [`Model`]. Nothing here does I/O: the
//! drawing returns the [`Command`]s the user asked for, so tests can drive
//! it with a bare `egui::Context`.
//!
//! Layout: a header, the tasks panel on the left (a column of task tiles;
//! later each a drag source), the zombies as tiles in the centre (later drop
//! zones), a status bar at the bottom, and the pairing dialog on top.

use eframe::egui;
pub mod glyph;
pub mod host_tile;
pub mod pair_dialog;
pub mod status_bar;
pub mod tasks;

use egui::{CentralPanel, Panel, RichText, ScrollArea, Ui};

use crate::model::Model;
use crate::worker::Command;

/// Draws the whole window into `ui` and returns what the user asked for.
pub fn draw(ui: &mut Ui, model: &mut Model) -> Vec<Command> {
    let mut commands = Vec::new();

    Panel::top("header").show(ui, |ui| {
        ui.add_space(4.0);
        ui.horizontal(|ui| {
            ui.heading("ZOS master");
            ui.separator();
            ui.label(hosts_summary(model));
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                let enabled = !model.hosts.is_empty();
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
        status_bar::status_bar(ui, model);
        ui.add_space(2.0);
    });

    Panel::left("tasks")
        .default_size(220.0)
        .resizable(true)
        .show(ui, |ui| tasks::tasks_panel(ui, model));

    CentralPanel::default().show(ui, |ui| {
        hosts_area(ui, model, &mut commands);
    });

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

/// The zombies as tiles, or why there are none.
fn hosts_area(ui: &mut Ui, model: &mut Model, commands: &mut Vec<Command>) {
    if model.hosts.is_empty() {
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
        return;
    }
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
        for row in model.hosts.chunks(columns) {
            ui.horizontal(|ui| {
                ui.spacing_mut().item_spacing.x = gap;
                for host in row {
                    let selected = model.selected.as_deref() == Some(host.instance.as_str());
                    let state = host_tile::TileState {
                        paired: model.paired_level(host),
                        ours: model.dominated_by_us(host),
                        driven: model.driven(host),
                        domination: model.dominations.get(&host.instance),
                        ping: model.pings.get(&host.instance),
                    };
                    let actions = host_tile::host_tile(ui, host, selected, state);
                    if actions.dominate || actions.release {
                        dominations.push((host.instance.clone(), actions.release));
                    }
                    if let Some(on) = actions.drive {
                        drives.push((host.clone(), on));
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
        if select.is_some() {
            model.selected = select;
        }
        for host in pings {
            commands.push(model.start_ping(&host));
        }
        for (host, release) in dominations {
            commands.push(model.start_domination(&host, release));
        }
        for (host, on) in drives {
            commands.push(model.start_drive(&host, on));
        }
        if let Some(host) = pair {
            model.open_pairing(Some(host));
        }
    });
}
