//! Drag and drop in the real master window on a real (virtual) X display:
//! `zos_gui::run` under Xvfb with Mesa's software GL, fed by the fake
//! master of `common::migrants`. xdotool drags task 3's tile onto desk's
//! icon with a stepped mouse move; the fake daemon must receive
//! `Migrate{task: 3, host: desk}`; while it reports progress (held at 40 %
//! of the image) a screenshot must show the progress bar's colour inside
//! the task's tile and nowhere else; when the move ends the bar goes and
//! the phase times are logged. Run bare and under a window manager
//! (openbox); both screenshots are kept for a person to look at, in the
//! target directory's `tmp/` (their paths are printed).
//!
//! winit wants the main thread, so this test has its own `main` (no libtest
//! harness; libtest-mimic reads libtest's arguments). It re-runs itself
//! inside the display. Xvfb, xdotool, xprop, ImageMagick and openbox are
//! required: a missing one fails the test naming its package.

mod common;
#[path = "../../../tests/common/tools.rs"]
mod tools;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::migrants::{FakeMaster, MASTER, State, dominated, host, migrant};
use common::xdisplay::{Screen, count_color, spawn_window, wait_for, wait_until};
use libtest_mimic::{Arguments, Trial};
use zos_netproto::Level;

/// Set in the child: the directory it shares with the test.
const INNER: &str = "ZOS_GUI_MOVE_WINDOW_DIR";
/// The progress bar's colour, as ImageMagick writes it.
const BAR: &str = "#8E5CD8";
/// The ring of a drop zone that takes the task.
const RING: &str = "#5CC06C";

fn main() {
    if let Some(dir) = std::env::var_os(INNER) {
        return inner(PathBuf::from(dir));
    }
    let trials = vec![
        Trial::test(
            "dragging_a_task_onto_a_host_migrates_it_with_a_progress_bar",
            || {
                drag_and_watch(None);
                Ok(())
            },
        ),
        Trial::test(
            "dragging_a_task_onto_a_host_migrates_it_with_a_progress_bar_under_openbox",
            || {
                drag_and_watch(Some("openbox"));
                Ok(())
            },
        ),
    ];
    libtest_mimic::run(&Arguments::from_args(), trials).exit();
}

/// A rectangle from a `layout:` line: x, y, w, h in window pixels.
type Area = (i32, i32, i32, i32);

/// Reads `layout: NAME at x=… y=… w=… h=…` lines into `areas`.
fn note_layout(line: &str, areas: &Mutex<HashMap<String, Area>>) {
    let Some((_, rest)) = line.split_once("layout: ") else {
        return;
    };
    let Some((name, coords)) = rest.split_once(" at ") else {
        return;
    };
    let numbers: Vec<i32> = coords
        .split_whitespace()
        .filter_map(|kv| kv.split_once('=')?.1.parse().ok())
        .collect();
    if let [x, y, w, h] = numbers[..] {
        areas.lock().unwrap().insert(name.to_owned(), (x, y, w, h));
    }
}

fn drag_and_watch(wm: Option<&str>) {
    let mut needed = vec!["Xvfb", "xdotool", "xprop", "import", "convert"];
    needed.extend(wm);
    tools::require_all(&needed);
    let label = wm.unwrap_or("bare");
    let mut screen = Screen::start("1024x768x24");
    if let Some(wm) = wm {
        screen = screen.with_window_manager(wm);
    }
    let dir = std::env::temp_dir().join(format!(
        "zos-gui-move-window-{}-{label}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let _clean = Cleanup(dir.clone());
    let (window, raw_lines) = spawn_window(&screen.display, &[(INNER, dir.to_str().unwrap())]);

    // Keep every layout line, pass the rest on.
    let areas = Arc::new(Mutex::new(HashMap::new()));
    let (tx, lines) = std::sync::mpsc::channel();
    let noted = areas.clone();
    std::thread::spawn(move || {
        for line in raw_lines {
            note_layout(&line, &noted);
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let area = |name: &str| -> Area {
        *areas
            .lock()
            .unwrap()
            .get(name)
            .unwrap_or_else(|| panic!("the window never logged where {name} is"))
    };

    wait_for(&lines, "window shows 2 hosts: desk, lab");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while ["task 3", "host desk"]
        .iter()
        .any(|name| !areas.lock().unwrap().contains_key(*name))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the window never logged where task 3 and desk are: {:?}",
            areas.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let (wx, wy) = screen.window_origin("ZOS master");
    let (tx_, ty, tw, _) = area("task 3");
    let (hx, hy, hw, hh) = area("host desk");
    let grab = (wx + tx_ + tw / 3, wy + ty + 12);
    let drop_at = (wx + hx + hw / 2, wy + hy + hh / 4);
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let hover = shots.join(format!("zos-gui-move-hover-{label}.png"));
    let desk = (wx + hx, wy + hy, hw, hh);
    // desk's ring: 3 pixels wide around the tile, the middle line of it in
    // the exact colour (at least 2 × (w + h) pixels, less the corners).
    let perimeter = 2 * (hw + hh) as u64;
    screen.drag_and(grab, drop_at, 24, || {
        screen.screenshot_until(&hover, |shot| {
            count_color(shot, RING, Some(desk)) > perimeter * 3 / 4
        });
    });
    println!("screenshot while hovering: {}", hover.display());
    let ring = count_color(&hover, RING, Some(desk));
    assert!(
        ring > perimeter * 3 / 4,
        "desk lights up while the task hovers: {ring} ring pixels ({})",
        hover.display()
    );
    // Out of the window, so no tooltip covers the screenshots.
    screen.run("xdotool", &["mousemove", "1010", "760"]);

    let got = wait_until(&lines, |l| l.contains("fake daemon got: Migrate"))
        .expect("the fake daemon never got a Migrate request");
    assert!(
        got.ends_with(r#"Migrate { task: 3, host: "desk", compress: Auto, stop_and_copy: false, image_every_s: None }"#),
        "{got}"
    );
    // The fake daemon stops at 40 % and the window took that reply in (two
    // writers: in either order).
    let (mut held, mut shown) = (false, false);
    wait_until(&lines, |l| {
        held |= l.ends_with("fake daemon holds at send image 40 %");
        shown |= l.contains("task 3 progress: send image 107374182 of");
        held && shown
    })
    .expect("the move held at 40 % with the window told");

    let moving = shots.join(format!("zos-gui-move-progress-{label}.png"));
    let tile = || {
        let (tx_, ty, tw, th) = area("task 3");
        (wx + tx_, wy + ty, tw, th)
    };
    screen.screenshot_until(&moving, |shot| count_color(shot, BAR, Some(tile())) > 800);
    println!("screenshot while moving: {}", moving.display());
    let tile = tile();
    let in_tile = count_color(&moving, BAR, Some(tile));
    let everywhere = count_color(&moving, BAR, None);
    // 40 % of a bar about 220 × 16 pixels, less its rounded ends.
    assert!(
        in_tile > 800,
        "the progress bar's colour in task 3's tile {tile:?}: {in_tile} pixels ({})",
        moving.display()
    );
    assert_eq!(in_tile, everywhere, "the bar's colour only in the tile");

    std::fs::write(dir.join("release"), b"go").unwrap();
    wait_for(
        &lines,
        "task 3 moved to desk in 2.33 s: check 3 ms · freeze 12 ms · send files 850 µs · \
         send image 2.10 s · restore 208 ms · commit 4 ms",
    );
    let done = shots.join(format!("zos-gui-move-done-{label}.png"));
    screen.screenshot_until(&done, |shot| {
        count_color(shot, BAR, None) == 0 && count_color(shot, RING, Some(desk)) < ring / 3
    });
    println!("screenshot after the move: {}", done.display());
    assert_eq!(count_color(&done, BAR, None), 0, "the bar is gone");
    let after = count_color(&done, RING, Some(desk));
    assert!(after < ring / 3, "the ring went: {after} pixels left");

    // Task 4 onto lab, which is free: the window asks first and sends
    // nothing; Escape says no.
    let (tx_, ty, tw, _) = area("task 4");
    let (hx, hy, hw, hh) = area("host lab");
    screen.drag(
        (wx + tx_ + tw / 3, wy + ty + 12),
        (wx + hx + hw / 2, wy + hy + hh / 4),
        24,
    );
    screen.run("xdotool", &["mousemove", "1010", "760"]);
    wait_for(
        &lines,
        "task 4: asking: Dominate lab at complete and move task 4 there?",
    );
    std::thread::sleep(Duration::from_millis(700));
    let question = shots.join(format!("zos-gui-move-question-{label}.png"));
    screen.screenshot(&question);
    println!("screenshot of the question: {}", question.display());
    let id = screen.run("xdotool", &["search", "--name", "ZOS master"]);
    let id = id.lines().next().unwrap().trim().to_owned();
    screen.run("xdotool", &["windowfocus", "--sync", &id]);
    screen.run("xdotool", &["key", "Escape"]);
    wait_for(&lines, "task 4: not moved (cancelled)");

    // The menu of task 3, now away: a right click on its tile.
    let (tx_, ty, tw, _) = area("task 3");
    let at = (wx + tx_ + tw / 3, wy + ty + 12);
    screen.run(
        "xdotool",
        &["mousemove", "--sync", &at.0.to_string(), &at.1.to_string()],
    );
    std::thread::sleep(Duration::from_millis(200));
    screen.run("xdotool", &["click", "3"]);
    std::thread::sleep(Duration::from_millis(700));
    let menu = shots.join(format!("zos-gui-move-menu-{label}.png"));
    screen.screenshot(&menu);
    println!("screenshot of the tile menu: {}", menu.display());
    let requests: Vec<String> = std::iter::from_fn(|| lines.try_recv().ok())
        .filter(|l| l.contains("fake daemon got:"))
        .collect();
    assert_eq!(
        requests,
        Vec::<String>::new(),
        "nothing sent after the first move"
    );

    // The window is killed, so its fake daemon cannot tidy up after itself.
    let pid = window.0.id();
    drop(window);
    let _ =
        std::fs::remove_dir_all(std::env::temp_dir().join(format!("zos-gui-move-window-{pid}")));
}

/// Removes the directory shared with the window.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The window itself, in the child process, with the fake master holding
/// its first move at 40 % of the image until `dir/release` exists.
fn inner(dir: PathBuf) {
    let _ = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_env_filter("zos_gui=debug")
        .try_init();
    let state = State {
        hosts: vec![dominated(host("desk", 2), Level::Complete), host("lab", 3)],
        paired: vec![
            ("desk".into(), 2, Level::Complete),
            ("lab".into(), 3, Level::Complete),
        ],
        tasks: vec![
            migrant(3, &["/usr/bin/sleep", "1000"], MASTER),
            migrant(4, &["make", "-j2"], "desk"),
        ],
        hold: true,
        ..State::default()
    };
    let fake = FakeMaster::start("gui-move-window", state, Duration::from_millis(150));
    let shared = fake.state.clone();
    std::thread::spawn(move || {
        let mut told = 0;
        let mut held = false;
        loop {
            std::thread::sleep(Duration::from_millis(50));
            let (lock, wake) = &*shared;
            let mut state = lock.lock().unwrap();
            for request in &state.requests[told..] {
                println!("fake daemon got: {request:?}");
            }
            told = state.requests.len();
            if state.hold && state.progress_sent == 7 && !held {
                println!("fake daemon holds at send image 40 %");
                held = true;
            }
            if state.hold && dir.join("release").exists() {
                state.hold = false;
                wake.notify_all();
            }
        }
    });
    zos_gui::run(fake.daemon.socket().to_path_buf(), Box::new(|_| Ok(())))
        .expect("the window runs");
}
