//! A move on its task's tile: a progress bar with the phase, bytes, rate
//! and time left while it runs; the time of each phase when it ended; the
//! error in full (wrapped, scrollable when long) when it failed.

use eframe::egui;
use egui::{Color32, Grid, ProgressBar, RichText, ScrollArea, Ui};

use crate::moves::{MoveOutcome, MoveState, Progress};
use crate::units;

/// The colour of a move's progress bar (`#8E5CD8`), found nowhere else in
/// the window.
pub const MOVING: Color32 = Color32::from_rgb(0x8E, 0x5C, 0xD8);
/// The colour of a move that ended well.
const GOOD: Color32 = Color32::from_rgb(0x5C, 0xC0, 0x6C);
/// The colour of a move that failed.
const BAD: Color32 = Color32::from_rgb(0xE8, 0x64, 0x54);

/// The bar's height.
const BAR_HEIGHT: f32 = 16.0;

/// Shows `state`; returns whether the user dismissed an error.
pub fn move_state(ui: &mut Ui, state: &MoveState) -> bool {
    match state {
        MoveState::Running {
            kind,
            step,
            progress,
        } => {
            ui.label(RichText::new(kind.doing()).strong());
            match (step, progress) {
                (Some(step), _) => waiting(ui, step),
                (None, Some(progress)) => bar(ui, progress),
                (None, None) => waiting(ui, "waiting for the daemon…"),
            }
            false
        }
        MoveState::Done { outcome, .. } => {
            done(ui, outcome);
            false
        }
        MoveState::Failed { message } => failed(ui, message),
    }
}

fn waiting(ui: &mut Ui, text: &str) {
    ui.horizontal_wrapped(|ui| {
        ui.spinner();
        ui.label(text);
    });
}

/// The bar and the numbers under it.
fn bar(ui: &mut Ui, progress: &Progress) {
    let text = match progress.fraction() {
        Some(f) => format!("{} {:.0} %", progress.phase, f * 100.0),
        None => progress.phase.clone(),
    };
    ui.add(
        ProgressBar::new(progress.fraction().unwrap_or(0.0))
            .fill(MOVING)
            .desired_height(BAR_HEIGHT)
            .animate(progress.fraction().is_none())
            .text(RichText::new(text).color(Color32::WHITE)),
    );
    let mut parts = Vec::new();
    match progress.total {
        0 if progress.bytes > 0 => parts.push(units::bytes(progress.bytes)),
        0 => {}
        total => parts.push(format!(
            "{} of {}",
            units::bytes(progress.bytes),
            units::bytes(total)
        )),
    }
    if progress.rate_bps > 0 {
        parts.push(units::rate(progress.rate_bps));
    }
    if let Some(eta) = progress.eta {
        parts.push(format!("{} left", units::coarse(eta.as_secs())));
    }
    if !parts.is_empty() {
        ui.add(egui::Label::new(RichText::new(parts.join(" · ")).small()).wrap());
    }
}

/// The summary and each phase's time.
fn done(ui: &mut Ui, outcome: &MoveOutcome) {
    let summary = if outcome.phases.is_empty() {
        outcome.summary.clone()
    } else {
        format!(
            "{} in {}",
            outcome.summary,
            units::duration(outcome.total())
        )
    };
    ui.add(egui::Label::new(RichText::new(summary).color(GOOD).strong()).wrap());
    if outcome.phases.is_empty() {
        return;
    }
    Grid::new(ui.scope_id().with("phases"))
        .num_columns(2)
        .spacing([12.0, 1.0])
        .show(ui, |ui| {
            for (name, time) in &outcome.phases {
                ui.label(RichText::new(name).small());
                ui.label(RichText::new(units::duration(*time)).small());
                ui.end_row();
            }
        });
}

/// The error, all of it; returns whether Dismiss was clicked.
fn failed(ui: &mut Ui, message: &str) -> bool {
    ScrollArea::vertical()
        .id_salt(ui.scope_id().with("error"))
        .max_height(140.0)
        .show(ui, |ui| {
            ui.add(egui::Label::new(RichText::new(message).color(BAD)).wrap());
        });
    ui.small_button("Dismiss").clicked()
}
