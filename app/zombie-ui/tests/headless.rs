//! The consent prompt and the status window drawn headless: a bare
//! `egui::Context`, synthetic clicks, and the painted texts read back.

use std::time::{Duration, Instant};

use eframe::egui::{self, Event, Modifiers, PointerButton, Pos2, RawInput, Rect, Shape};
use zos_netproto::Level;
use zos_netproto::control::{AskInfo, SessionInfo, StatusInfo, TaskInfo};
use zos_netproto::wire::Role;
use zos_zombie_ui::consent::{Consent, Stage};
use zos_zombie_ui::link::{Command, Event as LinkEvent};
use zos_zombie_ui::status::ZombieStatus;
use zos_zombie_ui::status_ui::Action;
use zos_zombie_ui::{consent_ui, status_ui};

/// Runs `draw` for a few frames with `events` in the first; what was
/// painted and what `draw` returned.
fn frames<T>(
    ctx: &egui::Context,
    size: (f32, f32),
    events: Vec<Event>,
    mut draw: impl FnMut(&mut egui::Ui) -> Vec<T>,
) -> (Vec<(String, Rect)>, Vec<T>) {
    let mut events = Some(events);
    let mut asked = Vec::new();
    let mut texts = Vec::new();
    for _ in 0..3 {
        let input = RawInput {
            screen_rect: Some(Rect::from_min_size(Pos2::ZERO, egui::vec2(size.0, size.1))),
            events: events.take().unwrap_or_default(),
            ..Default::default()
        };
        let mut output = ctx.run_ui(input, |ui| asked.extend(draw(ui)));
        texts.clear();
        for clipped in std::mem::take(&mut output.shapes) {
            collect(&clipped.shape, &mut texts);
        }
        output.drop_without_applying_deltas();
    }
    (texts, asked)
}

fn collect(shape: &Shape, out: &mut Vec<(String, Rect)>) {
    match shape {
        Shape::Text(t) => out.push((
            t.galley.text().to_owned(),
            t.galley.rect.translate(t.pos.to_vec2()),
        )),
        Shape::Vec(shapes) => shapes.iter().for_each(|s| collect(s, out)),
        _ => {}
    }
}

fn click_at(pos: Pos2) -> Vec<Vec<Event>> {
    let press = |pressed| Event::PointerButton {
        pos,
        button: PointerButton::Primary,
        pressed,
        modifiers: Modifiers::NONE,
    };
    vec![
        vec![Event::PointerMoved(pos)],
        vec![press(true)],
        vec![press(false)],
    ]
}

fn find(texts: &[(String, Rect)], text: &str) -> Rect {
    texts
        .iter()
        .find(|(t, _)| t == text)
        .map(|(_, r)| *r)
        .unwrap_or_else(|| panic!("{text:?} not on screen: {texts:?}"))
}

fn status(asking: Option<u64>, dominated: bool) -> StatusInfo {
    StatusInfo {
        role: Role::Zombie,
        name: "desk".into(),
        fingerprint: "ffff".into(),
        listen: None,
        trusted: 1,
        pairing: None,
        sessions: dominated
            .then(|| SessionInfo {
                peer: "laptop".into(),
                fingerprint: "1234-5678-9abc-def0-1234".into(),
                addr: "10.0.0.1:5000".into(),
                age_s: 65,
                dominating: Some(Level::Complete),
                mount: Some("/run/user/0/zos-x/anima".into()),
                driven: false,
            })
            .into_iter()
            .collect(),
        asking: asking.map(|left| AskInfo {
            master: "laptop".into(),
            fingerprint: "1234-5678-9abc-def0-1234".into(),
            level: Level::Partial,
            expires_in_s: left,
        }),
        session: None,
        pairing_attempts: Vec::new(),
    }
}

#[test]
fn the_consent_prompt_shows_who_asks_and_accepts_with_the_apps() {
    let ctx = egui::Context::default();
    let now = Instant::now();
    let mut model = Consent::default();
    model.apply(
        LinkEvent::Status(Ok(Box::new(status(Some(30), false)))),
        now,
    );
    let total = Duration::from_secs(45);
    let size = (500.0, 300.0);
    fn draw(
        model: &mut Consent,
        now: Instant,
        total: Duration,
    ) -> impl FnMut(&mut egui::Ui) -> Vec<Command> + '_ {
        move |ui| {
            consent_ui::draw(ui, model, now, total)
                .into_iter()
                .collect()
        }
    }
    let (texts, _) = frames(&ctx, size, vec![], draw(&mut model, now, total));
    for wanted in [
        "laptop asks to dominate desk",
        "1234-5678-9abc-def0-1234",
        "30 s left to answer, then it is refused",
        "It may mount its shared folders here; it runs no programs here.",
    ] {
        find(&texts, wanted);
    }
    let mut asked = Vec::new();
    let show = find(&texts, "Show the master's apps on this screen").center();
    for events in click_at(show) {
        asked.extend(frames(&ctx, size, events, draw(&mut model, now, total)).1);
    }
    assert!(model.show_apps);
    let accept = find(&texts, "Accept").center();
    for events in click_at(accept) {
        asked.extend(frames(&ctx, size, events, draw(&mut model, now, total)).1);
    }
    assert_eq!(
        asked,
        vec![Command::Answer {
            accept: true,
            show_apps: true
        }]
    );
    assert_eq!(model.stage, Stage::Sending { accept: true });
}

#[test]
fn the_status_window_shows_the_domination_and_release_asks_the_daemon() {
    let ctx = egui::Context::default();
    let mut model = ZombieStatus::default();
    model.apply(LinkEvent::Status(Ok(Box::new(status(None, true)))));
    model.apply(LinkEvent::Tasks(vec![TaskInfo {
        id: 3,
        kind: "shared".into(),
        command: vec!["/usr/bin/xclock".into()],
        state: "running".into(),
        ..TaskInfo::default()
    }]));
    let size = (500.0, 380.0);
    let (texts, _) = frames(&ctx, size, vec![], |ui| status_ui::draw(ui, &mut model));
    for wanted in [
        "ZOS zombie desk",
        "Dominated by laptop at level complete, for 65 s.",
        "xclock (task 3)",
        "Its shared folders are at /run/user/0/zos-x/anima",
    ] {
        find(&texts, wanted);
    }
    let mut actions = Vec::new();
    let view = find(&texts, "View").center();
    for events in click_at(view) {
        actions.extend(frames(&ctx, size, events, |ui| status_ui::draw(ui, &mut model)).1);
    }
    let release = find(&texts, "Release").center();
    for events in click_at(release) {
        actions.extend(frames(&ctx, size, events, |ui| status_ui::draw(ui, &mut model)).1);
    }
    assert_eq!(
        actions,
        vec![Action::View(3), Action::Daemon(Command::Release)]
    );
    // Free again: no Release to press.
    model.apply(LinkEvent::Status(Ok(Box::new(status(None, false)))));
    let (texts, _) = frames(&ctx, size, vec![], |ui| status_ui::draw(ui, &mut model));
    find(&texts, "Free: no master dominates this machine.");
    assert!(!texts.iter().any(|(t, _)| t == "Release"));
}
