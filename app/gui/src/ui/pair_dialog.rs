//! The pairing dialog: pick a zombie, type the code it shows, pair, and see
//! the daemon's verdict.

use eframe::egui;
use egui::{Color32, ComboBox, FontId, Id, Key, Modal, RichText, TextEdit, Ui};

use crate::model::{Model, PairState};
use crate::worker::Command;

/// The colour of success messages.
const GOOD: Color32 = Color32::from_rgb(0x5C, 0xC0, 0x6C);
/// The colour of error messages.
const BAD: Color32 = Color32::from_rgb(0xE8, 0x64, 0x54);

/// Shows the dialog if it is open; returns the pairing to start, if any.
pub fn pair_dialog(ui: &mut Ui, model: &mut Model) -> Option<Command> {
    if !model.pair.open {
        return None;
    }
    let modal = Modal::new(Id::unique("pair-dialog")).show(ui.ctx(), |ui| contents(ui, model));
    if modal.should_close() || modal.inner.close {
        model.pair.open = false;
    }
    modal.inner.command
}

/// What the dialog's contents asked for.
struct Outcome {
    command: Option<Command>,
    close: bool,
}

fn contents(ui: &mut Ui, model: &mut Model) -> Outcome {
    ui.set_width(360.0);
    ui.heading("Pair with a zombie");
    ui.add_space(4.0);
    ui.label("Ask the zombie for a code (tray menu or `zos pair-code`), then type it here.");
    ui.add_space(6.0);

    let chosen = model.pair.host.as_deref().and_then(|h| model.host(h));
    let chosen_text = chosen.map_or("choose a zombie".to_owned(), |h| h.name.clone());
    let chosen_fp = chosen.map(|h| h.fingerprint.clone());
    let mut host = model.pair.host.clone();
    ui.horizontal(|ui| {
        ui.label("Zombie");
        ComboBox::from_id_salt("pair-host")
            .selected_text(chosen_text)
            .width(200.0)
            .show_ui(ui, |ui| {
                for h in &model.hosts {
                    ui.selectable_value(&mut host, Some(h.instance.clone()), &h.name);
                }
            });
    });
    if host != model.pair.host {
        model.pair.host = host;
        model.pair.state = PairState::Idle;
    }
    if let Some(fp) = chosen_fp {
        ui.label(RichText::new(format!("fingerprint {fp}")).weak());
    }

    let mut submit = false;
    ui.horizontal(|ui| {
        ui.label("Code");
        let edit = TextEdit::singleline(&mut model.pair.code)
            .hint_text("6 digits")
            .desired_width(110.0)
            .font(FontId::monospace(20.0));
        let response = ui.add(edit);
        if std::mem::take(&mut model.pair.focus_code) {
            response.request_focus();
        }
        if response.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter)) {
            submit = true;
        }
        if response.changed() && model.pair.state != PairState::Busy {
            model.pair.state = PairState::Idle;
        }
    });
    model.clean_code();

    let mut command = None;
    let mut close = false;
    ui.add_space(4.0);
    ui.horizontal(|ui| {
        let clicked = ui
            .add_enabled(model.can_pair(), egui::Button::new("Pair"))
            .clicked();
        if clicked || submit {
            command = model.start_pairing();
        }
        if model.pair.state == PairState::Busy {
            ui.spinner();
            ui.label("pairing…");
        }
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            close = ui.button("Close").clicked();
        });
    });

    match &model.pair.state {
        PairState::Paired(name, level) => {
            ui.colored_label(GOOD, format!("Paired with {name} ({level} control)."));
        }
        PairState::Failed(message) => {
            ui.colored_label(BAD, format!("Pairing failed: {}", reason(message)));
        }
        PairState::Idle | PairState::Busy => {}
    }
    Outcome { command, close }
}

/// The daemon's message without a leading "pairing failed:", which the
/// dialog already says.
fn reason(message: &str) -> &str {
    const PREFIX: &str = "pairing failed:";
    match message.get(..PREFIX.len()) {
        Some(head) if head.eq_ignore_ascii_case(PREFIX) => message[PREFIX.len()..].trim_start(),
        _ => message,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reason_drops_the_repeated_prefix() {
        assert_eq!(super::reason("pairing failed: wrong code"), "wrong code");
        assert_eq!(super::reason("no such zombie"), "no such zombie");
    }
}
