//! Issue 10, the master window on real daemons: a user drags a migrant's tile
//! onto the zombie's icon in `zos gui` (under Xvfb and openbox, in the
//! master's namespace), and the task really moves — it runs in the zombie's
//! namespace afterwards, the tile shows the progress bar while it moves (seen
//! in a screenshot) — then dragged onto the master's own icon ("home") it
//! comes back, and it finishes with the result of an uninterrupted run.
//!
//! The window finds its tiles by its `layout:` debug lines; xdotool does the
//! dragging as a hand would. Screenshots are kept in
//! `target/e2e-screenshots/migrate-window-*.png` for a person to look at.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::Host;
use common::migrate::{MoveLan, Worker, ZOMBIE, s};
use common::screen::screenshot_dir;

/// The progress bar's colour.
const BAR: &str = "#8E5CD8";

/// A rectangle in window pixels: x, y, w, h.
type Area = (i32, i32, i32, i32);

/// The last `layout: NAME at x=… y=… w=… h=…` line for each name in `log`.
fn layouts(log: &str) -> HashMap<String, Area> {
    let mut areas = HashMap::new();
    for line in log.lines() {
        let Some((_, rest)) = line.split_once("layout: ") else {
            continue;
        };
        let Some((name, coords)) = rest.split_once(" at ") else {
            continue;
        };
        let n: Vec<i32> = coords
            .split_whitespace()
            .filter_map(|kv| kv.split_once('=')?.1.parse().ok())
            .collect();
        if let [x, y, w, h] = n[..] {
            areas.insert(name.to_owned(), (x, y, w, h));
        }
    }
    areas
}

/// The master's screen: its Xvfb, in its namespace.
struct Screen<'a> {
    host: &'a Host,
    display: String,
}

impl Screen<'_> {
    /// Runs an X client in the master's namespace (where Xvfb listens, on
    /// its abstract socket too); its stdout.
    fn x(&self, program: &str, args: &[&str]) -> String {
        let out = self
            .host
            .command(program, args)
            .env("DISPLAY", &self.display)
            .output()
            .unwrap_or_else(|e| panic!("run {program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Where the window titled `title` is on the screen.
    fn window_origin(&self, title: &str) -> (i32, i32) {
        let id = self.x("xdotool", &["search", "--sync", "--name", title]);
        let id = id.lines().next().expect("a window id").trim().to_owned();
        let geometry = self.x("xdotool", &["getwindowgeometry", "--shell", &id]);
        let field = |name: &str| -> i32 {
            geometry
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {name} in {geometry}"))
        };
        (field("X"), field("Y"))
    }

    /// A left-button drag from `from` to `to` in 24 steps of 30 ms.
    fn drag(&self, from: (i32, i32), to: (i32, i32)) {
        let at = |(a, b): (i32, i32)| [a.to_string(), b.to_string()];
        let [a, b] = at(from);
        self.x("xdotool", &["mousemove", "--sync", &a, &b]);
        std::thread::sleep(Duration::from_millis(100));
        self.x("xdotool", &["mousedown", "1"]);
        let steps = 24;
        for i in 1..=steps {
            let p = (
                from.0 + (to.0 - from.0) * i / steps,
                from.1 + (to.1 - from.1) * i / steps,
            );
            let [a, b] = at(p);
            self.x("xdotool", &["mousemove", &a, &b]);
            std::thread::sleep(Duration::from_millis(30));
        }
        std::thread::sleep(Duration::from_millis(300));
        self.x("xdotool", &["mouseup", "1"]);
        // Out of the way, so no tooltip covers the screenshots.
        self.x("xdotool", &["mousemove", "1270", "790"]);
    }

    fn screenshot(&self, png: &Path) {
        self.x("import", &["-window", "root", png.to_str().unwrap()]);
    }
}

/// Pixels of `color` in `png`, within `area` if given.
fn count_color(png: &Path, color: &str, area: Option<Area>) -> u64 {
    let mut convert = Command::new("convert");
    convert.arg(png);
    if let Some((a, b, w, h)) = area {
        convert.args(["-crop", &format!("{w}x{h}+{a}+{b}"), "+repage"]);
    }
    let out = convert
        .args(["-format", "%c", "histogram:info:-"])
        .output()
        .expect("run ImageMagick's convert");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter(|l| l.to_ascii_uppercase().contains(color))
        .filter_map(|l| l.trim().split(':').next()?.trim().parse::<u64>().ok())
        .sum()
}

/// Waits until the window's log has a layout line for every name in `names`.
fn wait_layout(gui: &common::Proc, names: &[&str]) -> HashMap<String, Area> {
    let deadline = Instant::now() + s(60);
    loop {
        let areas = layouts(&gui.log());
        if names.iter().all(|n| areas.contains_key(*n)) {
            return areas;
        }
        assert!(!gui.exited(), "the window exited:\n{}", gui.log());
        assert!(
            Instant::now() < deadline,
            "the window never showed {names:?}:\n{}",
            gui.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until `zos tasks --json` shows task `id` in `state` on `place`.
fn wait_task(lan: &MoveLan, id: u64, place: &str, state: &str, gui: &common::Proc) {
    let done = common::poll::until(s(120), || {
        let t = lan.task(id);
        (t["where"] == place && t["state"] == state).then_some(())
    });
    assert!(
        done.is_some(),
        "task {id} never was {state} on {place}: {}\nwindow log:\n{}",
        lan.task(id),
        gui.log()
    );
}

/// The master's window on `lan`: its Xvfb, openbox, and `zos gui` started once `prepare`
/// (given the screen) is done; waits until the window shows task `task`, the zombie and home.
struct Window<'a> {
    screen: Screen<'a>,
    gui: common::Proc,
    _wm: common::Proc,
    _xvfb: common::xvfb::Xvfb,
}

impl<'a> Window<'a> {
    fn open(lan: &'a MoveLan, task: u64, prepare: impl FnOnce()) -> Window<'a> {
        common::tools::require_all(&["Xvfb", "openbox", "xdotool", "import", "convert"]);
        let m = lan.m();
        let xvfb = m.xvfb();
        let display = xvfb.display.clone();
        let wm = m.spawn_program("openbox", &[], &[("DISPLAY", &display)]);
        prepare();
        let gui = m.spawn_env(
            &["gui"],
            &[
                ("DISPLAY", &display),
                ("LIBGL_ALWAYS_SOFTWARE", "1"),
                ("RUST_LOG", "info,zos_gui=debug"),
            ],
        );
        let names = [format!("task {task}"), format!("host {ZOMBIE}")];
        wait_layout(&gui, &[&names[0], &names[1], "home"]);
        // Let the first frames settle before anyone reads the layout.
        std::thread::sleep(Duration::from_millis(500));
        Window {
            screen: Screen { host: m, display },
            gui,
            _wm: wm,
            _xvfb: xvfb,
        }
    }

    /// Drags task `task`'s tile onto the icon named `target` (`host NAME` or `home`).
    fn drag_task(&self, task: u64, target: &str) {
        let areas = wait_layout(&self.gui, &[&format!("task {task}"), target]);
        let (wx, wy) = self.screen.window_origin("ZOS master");
        let (tx, ty, tw, _) = areas[&format!("task {task}")];
        let (hx, hy, hw, hh) = areas[target];
        self.screen.drag(
            (wx + tx + tw / 3, wy + ty + 12),
            (wx + hx + hw / 2, wy + hy + hh / 4),
        );
    }
}

#[test]
fn dragging_a_task_onto_a_zombie_moves_it_there_and_onto_home_brings_it_back() {
    let lan = MoveLan::new();
    let m = lan.m();
    // 768 MiB: a move long enough (seconds) for the bar to be seen.
    let worker = Worker::start(&lan, "dragged", 768);
    worker.step(&lan, 1);
    let window = Window::open(&lan, worker.id, || {});
    let (screen, gui) = (&window.screen, &window.gui);
    let task = format!("task {}", worker.id);
    let zombie = format!("host {ZOMBIE}");
    let (wx, wy) = screen.window_origin("ZOS master");
    let dir = screenshot_dir();
    window.drag_task(worker.id, &zombie);
    // The bar, in the task's tile, while it moves.
    let moving = dir.join("migrate-window-progress.png");
    let deadline = Instant::now() + s(60);
    let mut bar = 0;
    while Instant::now() < deadline && bar < 200 {
        screen.screenshot(&moving);
        let (tx, ty, tw, th) = layouts(&gui.log())[&task];
        bar = count_color(&moving, BAR, Some((wx + tx, wy + ty, tw, th)));
        if lan.task(worker.id)["where"] == ZOMBIE {
            break;
        }
    }
    assert!(
        bar >= 200,
        "no progress bar seen in the tile while it moved ({bar} pixels; {}):\n{}",
        moving.display(),
        gui.log()
    );
    wait_task(&lan, worker.id, ZOMBIE, "running", gui);
    // The window tells the move's phase times.
    gui.wait_log(&format!("task {} moved to {ZOMBIE} in", worker.id), s(30));
    assert!(
        !worker.processes_on(lan.z()).is_empty() && worker.processes_on(m).is_empty(),
        "the task runs in the zombie's namespace only after the drop"
    );
    worker.step(&lan, 2);
    let away = dir.join("migrate-window-away.png");
    std::thread::sleep(Duration::from_millis(700));
    screen.screenshot(&away);

    // And home: onto the master's own icon.
    window.drag_task(worker.id, "home");
    wait_task(&lan, worker.id, common::migrate::MASTER, "home", gui);
    assert!(
        !worker.processes_on(m).is_empty() && worker.processes_on(lan.z()).is_empty(),
        "the task runs in the master's namespace only after coming home"
    );
    let home = dir.join("migrate-window-home.png");
    std::thread::sleep(Duration::from_millis(700));
    screen.screenshot(&home);
    println!(
        "screenshots: {}, {}, {}",
        moving.display(),
        away.display(),
        home.display()
    );
    worker.finish(&lan, 3);
}

#[test]
fn a_suspended_task_dragged_onto_a_zombie_resumes_there() {
    let lan = MoveLan::new();
    let m = lan.m();
    let worker = Worker::start(&lan, "resumed", 64);
    worker.step(&lan, 1);
    let window = Window::open(&lan, worker.id, || {
        let out = m.run(&["suspend"]);
        assert!(out.status.success(), "{}", common::zos::text(&out));
    });
    let (screen, gui) = (&window.screen, &window.gui);
    std::thread::sleep(Duration::from_millis(200));
    let dir = screenshot_dir();
    let suspended = dir.join("migrate-window-suspended.png");
    screen.screenshot(&suspended);
    window.drag_task(worker.id, &format!("host {ZOMBIE}"));
    wait_task(&lan, worker.id, ZOMBIE, "running", gui);
    assert!(
        !worker.processes_on(lan.z()).is_empty() && worker.processes_on(m).is_empty(),
        "the resumed task runs in the zombie's namespace only"
    );
    // The window says it resumed and moved.
    gui.wait_log(
        &format!("task {} resumed, moved to {ZOMBIE}", worker.id),
        s(30),
    );
    let resumed = dir.join("migrate-window-resumed.png");
    std::thread::sleep(Duration::from_millis(700));
    screen.screenshot(&resumed);
    println!(
        "screenshots: {}, {}",
        suspended.display(),
        resumed.display()
    );
    // It goes on from stage 1, done before the suspend.
    worker.finish(&lan, 2);
    let log = lan.logs(worker.id);
    assert_eq!(log.matches("stage 1 done").count(), 1, "{log}");
}
