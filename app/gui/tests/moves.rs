//! Moving tasks in the window, headless: a migrant's tile dragged onto a
//! host's icon (or the master's own) with synthetic pointer input, the
//! drop zones' highlight, the confirmation before dominating, refusals with
//! their reason, the tile menu, and the progress bar and phase times drawn
//! from the daemon's replies.

mod common;

use std::time::{Duration, Instant};

use common::harness::Harness;
use common::migrants::{self, MASTER, dominated, host, migrant};
use eframe::egui::{PointerButton, Pos2, Rect};
use zos_gui::moves::{MoveOutcome, Progress, RESULT_SHOWN};
use zos_gui::ui::drop_zone::{ACCEPT, REFUSE};
use zos_gui::ui::move_progress::MOVING;
use zos_gui::worker::{Command, Event};
use zos_netproto::Level;
use zos_netproto::control::TaskInfo;
use zos_netproto::trust::PeerEntry;

/// desk: ours at complete; lab: free, paired at complete; attic: free,
/// paired at partial. Task 3 is home, 4 runs on desk, 5 is lost on a
/// zombie that vanished.
fn window() -> Harness {
    let mut h = Harness::new(vec![
        dominated(host("desk", 2), Level::Complete),
        host("lab", 3),
        host("attic", 4),
    ]);
    let paired = [
        ("desk", 2, Level::Complete),
        ("lab", 3, Level::Complete),
        ("attic", 4, Level::Partial),
    ];
    h.model.apply(Event::Trust(Ok(paired
        .iter()
        .map(|(name, byte, level)| PeerEntry {
            key: migrants::key(*byte).to_hex(),
            name: (*name).into(),
            level: *level,
            added: 0,
        })
        .collect())));
    let mut lost = migrant(5, &["python3", "sim.py"], "gone");
    lost.state = "lost".into();
    let tasks: Vec<TaskInfo> = vec![
        migrant(3, &["/bin/sleep", "1000"], MASTER),
        migrant(4, &["make", "-j2"], "desk"),
        lost,
    ];
    h.model.apply(Event::Tasks(Ok(tasks)));
    h.frames(3, vec![]);
    h
}

/// Where to grab a task's tile: its program's name.
fn grab(h: &Harness, program: &str) -> Pos2 {
    h.text_rect(program, 0.0).center()
}

/// The centre of a host's glyph: just above its name.
fn icon(h: &Harness, name: &str) -> Pos2 {
    let label = h.text_rect(name, 2000.0);
    label.center_top() - eframe::egui::vec2(0.0, 30.0)
}

fn migrate(task: u64, host: &str, dominate_first: bool) -> Command {
    Command::Migrate {
        task,
        host: host.into(),
        dominate_first,
    }
}

fn bring_home(task: u64, from_image: bool) -> Command {
    Command::Home { task, from_image }
}

#[test]
fn dragging_a_migrant_onto_a_dominated_host_asks_the_daemon_to_migrate_it_there() {
    let mut h = window();
    let (from, to) = (grab(&h, "sleep"), icon(&h, "desk"));
    h.drag_to(from, to, 12);
    let rings = h.rects_stroked(ACCEPT, 3.0);
    assert!(
        rings.iter().any(|r| r.contains(to)),
        "desk lights up green while the task hovers: {rings:?}"
    );
    assert!(
        h.shows("move to desk"),
        "the dragged card says what a drop does"
    );
    assert!(h.commands.is_empty(), "nothing before the drop");
    h.release(to);
    assert_eq!(h.commands, vec![migrate(3, "desk", false)]);
    assert!(h.shows("moving to desk"), "{:?}", h.texts());
    assert!(
        h.rects_stroked(ACCEPT, 3.0).is_empty(),
        "the highlight goes"
    );
}

#[test]
fn dropping_onto_a_free_zombie_asks_to_dominate_it_first() {
    let mut h = window();
    let (from, to) = (grab(&h, "sleep"), icon(&h, "lab"));
    h.drag_to(from, to, 12);
    assert!(h.rects_stroked(ACCEPT, 3.0).iter().any(|r| r.contains(to)));
    h.release(to);
    assert!(h.commands.is_empty(), "asks first");
    assert!(h.shows("Dominate lab at complete and move task 3 there?"));
    let cancel = h.text_rect("Cancel", 0.0).center();
    h.click(cancel);
    assert!(
        h.commands.is_empty() && h.model.ask.is_none(),
        "Cancel sends nothing"
    );

    h.drag_to(from, to, 12);
    h.release(to);
    let yes = h.text_rect("Dominate and move", 0.0).center();
    h.click(yes);
    assert_eq!(h.commands, vec![migrate(3, "lab", true)]);
}

#[test]
fn a_zombie_paired_only_at_partial_refuses_the_drop_and_says_why() {
    let mut h = window();
    let (from, to) = (grab(&h, "sleep"), icon(&h, "attic"));
    h.drag_to(from, to, 12);
    assert!(
        h.rects_stroked(REFUSE, 3.0).iter().any(|r| r.contains(to)),
        "attic lights up red"
    );
    let why =
        "attic is paired at partial: migrants need complete (pair again with a complete code)";
    assert!(h.shows(why), "the dragged card says why: {:?}", h.texts());
    h.release(to);
    assert!(h.commands.is_empty());
    assert!(h.shows(why), "and the tile keeps it");
    let dismiss = h.text_rect("Dismiss", 0.0).center();
    h.click(dismiss);
    assert!(!h.shows(why));
}

#[test]
fn the_masters_own_icon_brings_a_task_home_and_a_lost_one_from_its_image() {
    let mut h = window();
    let home = icon(&h, MASTER);
    assert!(h.shows("home"));
    let from = grab(&h, "make");
    h.drag_to(from, home, 12);
    assert!(h.shows("bring home"));
    h.release(home);
    assert_eq!(h.commands, vec![bring_home(4, false)]);

    h.commands.clear();
    let from = grab(&h, "python3");
    h.drag_to(from, home, 12);
    h.release(home);
    assert!(h.commands.is_empty(), "a lost task asks first");
    assert!(
        h.shows(
            "Task 5 is lost on gone. Bring it home from its last image (12 min old)? \
             What it did since then is lost."
        ),
        "{:?}",
        h.texts()
    );
    let yes = h.text_rect("Bring home from the image", 0.0).center();
    h.click(yes);
    assert_eq!(h.commands, vec![bring_home(5, true)]);

    // A task at home already: nothing to do.
    h.commands.clear();
    let from = grab(&h, "sleep");
    h.drag_to(from, home, 12);
    assert!(
        h.rects_stroked(REFUSE, 3.0)
            .iter()
            .any(|r| r.contains(home))
    );
    h.release(home);
    assert!(h.commands.is_empty());
}

#[test]
fn the_tile_menu_checkpoints_migrates_and_brings_home() {
    let mut h = window();
    let sleep = grab(&h, "sleep");
    let dots = menu_button(&h, sleep);
    h.click(dots);
    for item in ["Checkpoint…", "Migrate to", "Bring home"] {
        assert!(h.shows(item), "{item:?} in the menu: {:?}", h.texts());
    }
    let submenu = h.text_rect("Migrate to", 0.0).center();
    h.hover(submenu);
    assert!(h.shows("desk"));
    assert!(h.shows("lab (dominate and migrate)"));
    let choices: Vec<String> = h
        .model
        .migrate_targets(3)
        .into_iter()
        .map(|(l, _)| l)
        .collect();
    assert_eq!(
        choices,
        ["desk", "lab (dominate and migrate)"],
        "attic is not offered"
    );
    let lab = h.text_rect("lab (dominate and migrate)", 0.0).center();
    h.hover(Pos2::new(lab.x, submenu.y));
    h.click(lab);
    assert_eq!(h.commands, vec![migrate(3, "lab", true)]);

    // A right click opens the same menu; a lost task also comes from its image.
    h.commands.clear();
    let python = grab(&h, "python3");
    h.click_with(python, PointerButton::Secondary);
    let item = "Bring home from last image (12 min old)";
    assert!(h.shows(item), "{:?}", h.texts());
    let from_image = h.text_rect(item, 0.0).center();
    h.click(from_image);
    assert_eq!(h.commands, vec![bring_home(5, true)]);

    // Checkpoint… asks for a directory under the home directory.
    h.commands.clear();
    let make = grab(&h, "make");
    h.click_with(make, PointerButton::Secondary);
    let checkpoint = h.text_rect("Checkpoint…", 0.0).center();
    h.click(checkpoint);
    let dialog = h.model.checkpoint.clone().expect("the dialog opens");
    assert!(
        dialog.dir.ends_with("/zos-checkpoints/make-4"),
        "{}",
        dialog.dir
    );
    assert!(h.shows("Checkpoint task 4"));
    let save = h.text_rect("Save", 0.0).center();
    h.click(save);
    assert_eq!(
        h.commands,
        vec![Command::Checkpoint {
            task: 4,
            out: dialog.dir
        }]
    );
}

#[test]
fn a_moving_task_shows_a_progress_bar_with_phase_bytes_rate_and_time_left() {
    let mut h = window();
    h.model.begin(migrate(3, "desk", false));
    h.model.apply(Event::MoveProgress {
        task: 3,
        progress: Progress {
            phase: "send image".into(),
            bytes: 108 << 20,
            total: 256 << 20,
            rate_bps: 85 << 20,
            eta: Some(Duration::from_secs(2)),
        },
    });
    h.frames(2, vec![]);
    let tile = tile_of(&h, "sleep");
    assert!(h.shows("send image 42 %"), "{:?}", h.texts());
    assert!(h.shows("108.0 MiB of 256.0 MiB · 85.0 MiB/s · 2 s left"));
    let bars: Vec<Rect> = h
        .rects_filled(MOVING)
        .into_iter()
        .filter(|r| tile.contains_rect(*r))
        .collect();
    assert_eq!(bars.len(), 1, "one bar in the tile {tile:?}: {bars:?}");
    let track = h
        .rects()
        .into_iter()
        .map(|(r, _)| r)
        .find(|r| r.min == bars[0].min && r.width() > bars[0].width())
        .expect("the bar's track");
    let full = bars[0].width() / track.width();
    assert!(
        (full - 108.0 / 256.0).abs() < 0.01,
        "the bar is 42 % full: {full}"
    );
    assert!(
        track.width() > 0.8 * tile.width(),
        "as wide as the tile: {track:?} in {tile:?}"
    );
    // Moving: another drop is refused.
    let to = icon(&h, "lab");
    h.drag_to(grab(&h, "sleep"), to, 8);
    assert!(h.shows("task 3 is moving already"));
    h.release(to);
    assert!(h.commands.is_empty());

    let phases = migrants::PHASES
        .iter()
        .map(|(n, us)| (n.replace('-', " "), Duration::from_micros(*us)))
        .collect();
    h.model.apply(Event::MoveEnded {
        task: 3,
        result: Ok(MoveOutcome {
            summary: "moved to desk".into(),
            phases,
        }),
    });
    h.frames(2, vec![]);
    assert!(h.rects_filled(MOVING).is_empty(), "the bar goes");
    assert!(h.shows("moved to desk in 2.33 s"), "{:?}", h.texts());
    for (phase, time) in [
        ("check", "3 ms"),
        ("freeze", "12 ms"),
        ("send files", "850 µs"),
        ("send image", "2.10 s"),
        ("restore", "208 ms"),
        ("commit", "4 ms"),
    ] {
        assert!(h.shows(phase) && h.shows(time), "{phase} {time}");
    }
    let status = "task 3 moved to desk in 2.33 s: check 3 ms · freeze 12 ms · send files 850 µs · \
                  send image 2.10 s · restore 208 ms · commit 4 ms";
    assert!(
        h.shows(status),
        "the status bar says it too: {:?}",
        h.texts()
    );

    // A few seconds later the tile is back to normal; the status bar keeps it.
    h.model
        .moves
        .expire(Instant::now() + RESULT_SHOWN + Duration::from_secs(1));
    h.frames(2, vec![]);
    assert!(!h.shows("moved to desk in 2.33 s"));
    assert!(h.shows(status));
}

#[test]
fn a_failed_move_shows_its_whole_error_wrapped_inside_the_tile() {
    let mut h = window();
    h.model.begin(migrate(3, "desk", false));
    let message = "desk refused the task: the pod maps /usr/lib/x86_64-linux-gnu/libfoo.so.3, \
                   which differs on desk and could not be sent (no space left on device in \
                   /run/user/1000/zos-1a2b/migrants/3/files); the task runs on at home, as it was"
        .to_owned();
    h.model.apply(Event::MoveEnded {
        task: 3,
        result: Err(message.clone()),
    });
    h.frames(2, vec![]);
    let tile = tile_of(&h, "sleep");
    let shown: Vec<Rect> = h
        .texts()
        .into_iter()
        .filter(|(t, _)| *t == message)
        .map(|(_, r)| r)
        .collect();
    assert_eq!(shown.len(), 1, "in the tile: {:?}", h.texts());
    assert!(
        tile.contains_rect(shown[0]),
        "inside the tile: {:?} in {tile:?}",
        shown[0]
    );
    assert!(
        shown[0].height() > 60.0,
        "wrapped over lines: {:?}",
        shown[0]
    );
    assert!(
        h.shows(&format!("task 3: {message}")),
        "and in the status bar"
    );
    let dismiss = h.text_rect("Dismiss", 0.0).center();
    h.click(dismiss);
    assert!(!h.texts().iter().any(|(t, _)| *t == message), "dismissed");
}

/// The menu button (three dots) of the tile whose name is at `name`.
fn menu_button(h: &Harness, name: Pos2) -> Pos2 {
    h.circles(zos_gui::ui::task_tile::DOT_RADIUS)
        .into_iter()
        .filter(|c| (c.y - name.y).abs() < 2.0)
        .min_by(|a, b| a.distance(name).total_cmp(&b.distance(name)))
        .expect("the middle dot of the tile's menu button")
}

/// The rectangle of the tile whose program is `program`: the tasks panel's
/// width, from the program's name down to the next tile or the panel's end.
fn tile_of(h: &Harness, program: &str) -> Rect {
    let name = h.text_rect(program, 0.0);
    let panel_right = zos_gui::ui::TASKS_WIDTH + 8.0;
    let below = h
        .texts()
        .into_iter()
        .filter(|(t, r)| {
            ["make", "python3", "sleep"].contains(&t.as_str()) && r.top() > name.bottom()
        })
        .map(|(_, r)| r.top())
        .fold(600.0_f32, f32::min);
    Rect::from_min_max(
        Pos2::new(0.0, name.top() - 8.0),
        Pos2::new(panel_right, below),
    )
}

fn resume(task: u64, on: Option<&str>, dominate_first: bool) -> Command {
    Command::Resume {
        task,
        on: on.map(str::to_owned),
        dominate_first,
    }
}

/// `window()` with task 6 suspended.
fn window_with_a_suspended_task() -> Harness {
    let mut h = window();
    let mut tasks = h.model.tasks.clone();
    let mut suspended = migrant(6, &["python3", "suspended.py"], MASTER);
    suspended.state = "suspended".into();
    tasks.push(suspended);
    h.model.apply(Event::Tasks(Ok(tasks)));
    h.frames(3, vec![]);
    h
}

#[test]
fn a_suspended_task_dropped_home_or_on_a_zombie_resumes_there() {
    let mut h = window_with_a_suspended_task();
    assert!(h.shows("task 6 · suspended for 4 min"), "{:?}", h.texts());
    assert!(h.shows("1 migrant here"), "{:?}", h.texts());
    assert!(h.shows("2 away · 1 suspended"), "{:?}", h.texts());
    assert!(
        h.shows("drop it on a host to resume it there"),
        "{:?}",
        h.texts()
    );
    let from = grab(&h, "python3 suspended.py");
    let home = icon(&h, MASTER);
    h.drag_to(from, home, 12);
    assert!(h.shows("resume here"), "{:?}", h.texts());
    h.release(home);
    assert_eq!(h.commands, vec![resume(6, None, false)]);
    assert!(h.shows("resuming"), "{:?}", h.texts());

    let mut h = window_with_a_suspended_task();
    let from = grab(&h, "python3 suspended.py");
    let desk = icon(&h, "desk");
    h.drag_to(from, desk, 12);
    assert!(h.shows("resume on desk"), "{:?}", h.texts());
    h.release(desk);
    assert_eq!(h.commands, vec![resume(6, Some("desk"), false)]);
    assert!(h.shows("resuming on desk"), "{:?}", h.texts());

    let mut h = window_with_a_suspended_task();
    let from = grab(&h, "python3 suspended.py");
    let lab = icon(&h, "lab");
    h.drag_to(from, lab, 12);
    h.release(lab);
    assert!(h.commands.is_empty(), "asks first");
    assert!(h.shows("Dominate lab at complete and resume task 6 there?"));
    let yes = h.text_rect("Dominate and resume", 0.0).center();
    h.click(yes);
    assert_eq!(h.commands, vec![resume(6, Some("lab"), true)]);

    let mut h = window_with_a_suspended_task();
    let from = grab(&h, "python3 suspended.py");
    let attic = icon(&h, "attic");
    h.drag_to(from, attic, 12);
    h.release(attic);
    assert!(h.commands.is_empty(), "attic is paired at partial: refused");
}

#[test]
fn a_suspended_tasks_menu_resumes_it_here_or_on_a_zombie() {
    let mut h = window_with_a_suspended_task();
    // The tile's name row (task 5's tile says "python3" too): just above its command line.
    let command = h.text_rect("python3 suspended.py", 0.0);
    let name = h
        .texts()
        .into_iter()
        .find(|(t, r)| t == "python3" && r.max.y <= command.min.y && command.min.y - r.max.y < 10.0)
        .map(|(_, r)| r.center())
        .expect("the suspended task's name");
    let dots = menu_button(&h, name);
    h.click(dots);
    for item in ["Resume here", "Resume on"] {
        assert!(h.shows(item), "{item:?} in the menu: {:?}", h.texts());
    }
    assert!(!h.shows("Checkpoint…"), "nothing runs to checkpoint");
    let submenu = h.text_rect("Resume on", 0.0).center();
    h.hover(submenu);
    assert!(h.shows("desk"));
    assert!(h.shows("lab (dominate and resume)"), "{:?}", h.texts());
    let desk = h.text_rect("desk", 0.0).center();
    h.click(desk);
    assert_eq!(h.commands, vec![resume(6, Some("desk"), false)]);
}
