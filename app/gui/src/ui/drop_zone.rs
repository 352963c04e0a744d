//! A framed area a task's tile can be dropped on (a host's icon, the
//! master's own): it lights up green while a task it accepts hovers over
//! it, red for one it refuses, and reports the drop.

use eframe::egui;
use egui::{Color32, Frame, Stroke, Ui};

use super::task_tile::TaskDrag;
use crate::drops::Verdict;

/// The ring of a zone that takes the task hovering over it.
pub const ACCEPT: Color32 = Color32::from_rgb(0x5C, 0xC0, 0x6C);
/// The ring of a zone that refuses it.
pub const REFUSE: Color32 = Color32::from_rgb(0xE8, 0x64, 0x54);

/// What happened on a zone this frame.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DropEvents {
    /// A task hovers over the zone, with what letting go would do.
    pub hovering: Option<(u64, Verdict)>,
    /// A task was let go on the zone.
    pub dropped: Option<u64>,
}

/// Shows `add_contents` in `frame`, as a drop zone for task tiles whose
/// verdict `verdict` gives; `name` names it in the layout log.
pub fn drop_zone<R>(
    ui: &mut Ui,
    name: &str,
    frame: Frame,
    verdict: impl Fn(u64) -> Verdict,
    add_contents: impl FnOnce(&mut Ui) -> R,
) -> (R, DropEvents) {
    let mut prepared = frame.begin(ui);
    let inner = add_contents(&mut prepared.content_ui);
    let response = prepared.allocate_space(ui);
    super::layout_log::note(ui.ctx(), name, response.rect);
    let mut events = DropEvents::default();
    if let Some(drag) = response.dnd_hover_payload::<TaskDrag>() {
        let verdict = verdict(drag.task);
        let color = if verdict.accepts() { ACCEPT } else { REFUSE };
        prepared.frame.stroke = Stroke::new(3.0, color);
        prepared.frame.fill = color.gamma_multiply(0.18);
        events.hovering = Some((drag.task, verdict));
    }
    prepared.paint(ui);
    if let Some(drag) = response.dnd_release_payload::<TaskDrag>() {
        events.dropped = Some(drag.task);
    }
    (inner, events)
}
