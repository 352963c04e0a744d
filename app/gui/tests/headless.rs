//! The window's drawing driven headless: a bare `egui::Context`, synthetic
//! pointer and text input, and the painted shapes read back.

mod common;

use common::harness::Harness;
use eframe::egui::Event;
use zos_gui::ui::glyph::ZOMBIE_BLUE;
use zos_gui::worker::{Command, Event as WorkerEvent};
use zos_netproto::Level;
use zos_netproto::discovery::HostInfo;

fn host(name: &str, cores: u32, load1: f32, mem_free_mib: u64) -> HostInfo {
    HostInfo {
        instance: format!("{name}._zos._tcp.local."),
        name: name.into(),
        host: format!("{name}.local."),
        version: 1,
        fingerprint: format!("{name}-fingerprint"),
        addrs: vec![],
        port: 4000,
        cores,
        load1,
        mem_free_mib,
        levels: vec![Level::Partial, Level::Complete],
        dominated: None,
        revoked: false,
    }
}

#[test]
fn hosts_show_as_blue_monitors_with_their_resources() {
    let h = Harness::new(vec![host("z1", 8, 0.42, 3072), host("z2", 4, 1.5, 512)]);
    let texts: Vec<String> = h.texts().into_iter().map(|(t, _)| t).collect();
    for wanted in [
        "z1",
        "8 cores · load 0.42",
        "3.0 GiB free",
        "z2",
        "4 cores · load 1.50",
        "512 MiB free",
        "laptop",
        "7f3a91c2d4e5b608",
        "Tasks",
        "No tasks yet",
    ] {
        assert!(
            texts.iter().any(|t| t == wanted),
            "{wanted:?} not in {texts:?}"
        );
    }
    // Each monitor has a bezel and a foot in the zombie blue.
    assert_eq!(h.filled_rects(ZOMBIE_BLUE), 4);
}

#[test]
fn a_host_that_leaves_disappears() {
    let mut h = Harness::new(vec![host("z1", 8, 0.1, 2048), host("z2", 4, 0.1, 2048)]);
    h.model
        .apply(WorkerEvent::Hosts(Ok(vec![host("z1", 8, 0.1, 2048)])));
    h.frames(2, vec![]);
    let texts: Vec<String> = h.texts().into_iter().map(|(t, _)| t).collect();
    assert!(texts.iter().any(|t| t == "z1"));
    assert!(!texts.iter().any(|t| t == "z2"), "{texts:?}");
    assert_eq!(h.filled_rects(ZOMBIE_BLUE), 2);
}

#[test]
fn ping_button_asks_for_a_ping_and_shows_the_round_trip() {
    let mut h = Harness::new(vec![host("z1", 8, 0.1, 2048), host("z2", 4, 0.1, 2048)]);
    let z2 = h.text_rect("z2", 0.0).center().x;
    let ping = h.text_rect("Ping", z2).center();
    // A zombie not paired cannot be pinged: the button does nothing.
    h.click(ping);
    assert_eq!(h.commands, vec![]);
    h.model
        .paired
        .insert("z2-fingerprint".into(), Level::Complete);
    h.frames(2, vec![]);
    h.click(ping);
    assert_eq!(
        h.commands,
        vec![Command::Ping {
            host: "z2._zos._tcp.local.".into()
        }]
    );
    h.model.apply(WorkerEvent::Pinged {
        host: "z2._zos._tcp.local.".into(),
        result: Ok(std::time::Duration::from_micros(420)),
    });
    h.frames(2, vec![]);
    assert!(h.texts().iter().any(|(t, _)| t == "round trip 0.42 ms"));
}

#[test]
fn pairing_dialog_sends_the_code_and_shows_the_daemons_error() {
    let mut h = Harness::new(vec![host("z1", 8, 0.1, 2048)]);
    let pair = h.text_rect("Pair…", 0.0).center();
    h.click(pair);
    assert!(h.model.pair.open);
    // The code field has the focus: typing goes there, letters are dropped.
    h.frames(2, vec![Event::Text("12x3456".into())]);
    assert_eq!(h.model.pair.code, "123456");
    let button = h.text_rect("Pair", 0.0).center();
    h.click(button);
    assert_eq!(
        h.commands,
        vec![Command::Pair {
            host: "z1._zos._tcp.local.".into(),
            code: "123456".into()
        }]
    );
    h.model.apply(WorkerEvent::Paired {
        host: "z1._zos._tcp.local.".into(),
        result: Err("pairing failed: wrong code".into()),
    });
    h.frames(2, vec![]);
    assert!(
        h.texts()
            .iter()
            .any(|(t, _)| t == "Pairing failed: wrong code"),
        "{:?}",
        h.texts()
    );
}

#[test]
fn unreachable_daemon_is_said_plainly() {
    let mut h = Harness::new(vec![]);
    let message = "no daemon answers at /run/zos/control.sock".to_owned();
    h.model.apply(WorkerEvent::Status(Err(message.clone())));
    h.model.apply(WorkerEvent::Hosts(Err(message)));
    h.frames(2, vec![]);
    let texts: Vec<String> = h.texts().into_iter().map(|(t, _)| t).collect();
    assert!(texts.iter().any(|t| t == "daemon unreachable"), "{texts:?}");
    assert!(
        texts.iter().any(|t| t == "The daemon does not answer."),
        "{texts:?}"
    );
}

#[test]
fn a_shared_app_gets_a_tile_whose_view_button_opens_its_viewer() {
    let mut h = Harness::new(vec![host("z1", 8, 0.1, 2048)]);
    assert!(h.texts().iter().any(|(t, _)| t == "No tasks yet"));
    h.model.apply(WorkerEvent::Tasks(Ok(vec![
        zos_netproto::control::TaskInfo {
            id: 7,
            kind: "shared".into(),
            command: vec!["/usr/bin/xterm".into(), "-e".into(), "top".into()],
            display: Some(":5".into()),
            state: "running".into(),
            pid: Some(99),
            host: None,
            ..Default::default()
        },
    ])));
    h.frames(2, vec![]);
    assert_eq!(h.commands, vec![], "no viewer opens by itself");
    let texts: Vec<String> = h.texts().into_iter().map(|(t, _)| t).collect();
    for wanted in ["xterm", "/usr/bin/xterm -e top", "task 7 · shared · :5"] {
        assert!(
            texts.iter().any(|t| t == wanted),
            "{wanted:?} not in {texts:?}"
        );
    }
    h.commands.clear();
    let view = h.text_rect("View", 0.0).center();
    h.click(view);
    assert_eq!(
        h.commands,
        vec![Command::View { task: 7 }],
        "View opens one"
    );
}

#[test]
fn a_paired_free_zombie_can_be_dominated_and_then_released() {
    let mut h = Harness::new(vec![host("z1", 8, 0.1, 2048)]);
    let z1 = "z1._zos._tcp.local.".to_string();
    h.frames(1, vec![]);
    assert!(h.texts().iter().any(|(t, _)| t == "free"));
    // Not paired: nothing to click.
    let dominate = h.text_rect("Dominate", 0.0).center();
    h.click(dominate);
    assert_eq!(h.commands, vec![], "an unpaired zombie cannot be dominated");

    h.model
        .paired
        .insert("z1-fingerprint".into(), Level::Complete);
    h.frames(2, vec![]);
    h.click(dominate);
    assert_eq!(h.commands, vec![Command::Dominate { host: z1.clone() }]);
    assert!(
        h.texts()
            .iter()
            .any(|(t, _)| t == "waiting for the zombie…")
    );

    // The daemon now reports it ours.
    let mut held = host("z1", 8, 0.1, 2048);
    held.dominated = Some(zos_netproto::discovery::Domination {
        master: "laptop".into(),
        level: Level::Complete,
    });
    h.model.apply(WorkerEvent::Domination {
        host: z1.clone(),
        result: Ok("dominating z1 (complete)".into()),
    });
    h.model.apply(WorkerEvent::Hosts(Ok(vec![held.clone()])));
    h.frames(2, vec![]);
    assert!(h.texts().iter().any(|(t, _)| t == "yours · complete"));
    h.commands.clear();
    let release = h.text_rect("Release", 0.0).center();
    h.click(release);
    assert_eq!(h.commands, vec![Command::Release { host: z1.clone() }]);

    // Held by another master: shown, and not ours to release.
    held.dominated.as_mut().unwrap().master = "desk".into();
    h.model.apply(WorkerEvent::Domination {
        host: z1,
        result: Ok("released".into()),
    });
    h.model.apply(WorkerEvent::Hosts(Ok(vec![held])));
    h.frames(2, vec![]);
    assert!(h.texts().iter().any(|(t, _)| t == "held by desk"));
    assert!(!h.texts().iter().any(|(t, _)| t == "Release"));
}

#[test]
fn a_dominated_zombie_has_a_drive_button_that_turns_into_stop_driving() {
    let mut held = host("z1", 8, 0.1, 2048);
    held.dominated = Some(zos_netproto::discovery::Domination {
        master: "laptop".into(),
        level: Level::Complete,
    });
    let mut h = Harness::new(vec![held.clone()]);
    let z1 = "z1._zos._tcp.local.".to_string();
    let drive = h.text_rect("Drive", 0.0).center();
    h.click(drive);
    assert_eq!(
        h.commands,
        vec![Command::Drive {
            host: z1.clone(),
            fingerprint: "z1-fingerprint".into(),
            on: true
        }]
    );
    // The daemon reports it driven: the button gives input back.
    h.model.apply(WorkerEvent::Domination {
        host: z1.clone(),
        result: Ok("input goes to z1".into()),
    });
    let mut driven = common::migrants::status();
    driven.sessions = vec![zos_netproto::control::SessionInfo {
        peer: "z1".into(),
        fingerprint: "z1-fingerprint".into(),
        addr: "10.0.0.2:4000".into(),
        age_s: 3,
        dominating: Some(Level::Complete),
        mount: None,
        driven: true,
    }];
    h.model.apply(WorkerEvent::Status(Ok(driven)));
    h.frames(2, vec![]);
    h.commands.clear();
    let stop = h.text_rect("Stop driving", 0.0).center();
    h.click(stop);
    assert_eq!(
        h.commands,
        vec![Command::Drive {
            host: z1,
            fingerprint: "z1-fingerprint".into(),
            on: false
        }]
    );
    // A zombie that is not ours has none.
    held.dominated.as_mut().unwrap().master = "desk".into();
    h.model.apply(WorkerEvent::Hosts(Ok(vec![held])));
    h.frames(2, vec![]);
    assert!(
        !h.texts()
            .iter()
            .any(|(t, _)| t == "Drive" || t == "Stop driving")
    );
}
