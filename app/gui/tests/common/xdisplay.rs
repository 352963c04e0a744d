//! A real X display for the window tests: Xvfb (optionally with a window
//! manager), the window run as a child process of the test binary with its
//! log read line by line, screenshots and colour counts with ImageMagick,
//! and pointer drags with xdotool. Every process is killed and reaped when
//! its guard drops, also when the test fails.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// Kills and reaps a child process when dropped.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An Xvfb display, and the window manager on it if one was asked for.
pub struct Screen {
    /// `:N`.
    pub display: String,
    _wm: Option<Reaped>,
    _xvfb: Reaped,
}

impl Screen {
    /// Starts Xvfb with one screen of `geometry` (e.g. `1024x768x24`).
    pub fn start(geometry: &str) -> Screen {
        let xvfb = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                geometry,
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut xvfb = Reaped(xvfb.unwrap_or_else(|e| panic!("cannot start Xvfb: {e}")));
        let mut number = String::new();
        BufReader::new(xvfb.0.stdout.take().unwrap())
            .read_line(&mut number)
            .expect("Xvfb's display number");
        Screen {
            display: format!(":{}", number.trim()),
            _wm: None,
            _xvfb: xvfb,
        }
    }

    /// Starts `wm` (e.g. `openbox`) on the display and waits until it
    /// announces itself (`_NET_SUPPORTING_WM_CHECK` on the root window).
    pub fn with_window_manager(mut self, wm: &str) -> Screen {
        let child = Command::new(wm)
            .env("DISPLAY", &self.display)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {wm}: {e}"));
        self._wm = Some(Reaped(child));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = self.run("xprop", &["-root", "_NET_SUPPORTING_WM_CHECK"]);
            if out.contains("window id") {
                return self;
            }
            assert!(Instant::now() < deadline, "{wm} did not start: {out}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs an X client on the display; its standard output.
    pub fn run(&self, program: &str, args: &[&str]) -> String {
        let out = Command::new(program)
            .args(args)
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

    /// The top-left corner of the window titled `title`, in screen pixels.
    pub fn window_origin(&self, title: &str) -> (i32, i32) {
        let id = self.run("xdotool", &["search", "--sync", "--name", title]);
        let id = id.lines().next().expect("a window id").trim().to_owned();
        let geometry = self.run("xdotool", &["getwindowgeometry", "--shell", &id]);
        let field = |name: &str| -> i32 {
            geometry
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {name} in {geometry}"))
        };
        (field("X"), field("Y"))
    }

    /// Drags with the left button from `from` to `to` (screen pixels) in
    /// `steps` steps of 30 ms, as a hand would: egui sees a press, a run
    /// of moves and a release.
    pub fn drag(&self, from: (i32, i32), to: (i32, i32), steps: i32) {
        self.drag_and(from, to, steps, || {});
    }

    /// [`Screen::drag`], running `hovering` at `to` before letting go.
    pub fn drag_and(&self, from: (i32, i32), to: (i32, i32), steps: i32, hovering: impl FnOnce()) {
        let at = |(x, y): (i32, i32)| [x.to_string(), y.to_string()];
        let [x, y] = at(from);
        self.run("xdotool", &["mousemove", "--sync", &x, &y]);
        std::thread::sleep(Duration::from_millis(100));
        self.run("xdotool", &["mousedown", "1"]);
        for i in 1..=steps {
            let p = (
                from.0 + (to.0 - from.0) * i / steps,
                from.1 + (to.1 - from.1) * i / steps,
            );
            let [x, y] = at(p);
            self.run("xdotool", &["mousemove", &x, &y]);
            std::thread::sleep(Duration::from_millis(30));
        }
        std::thread::sleep(Duration::from_millis(200));
        hovering();
        self.run("xdotool", &["mouseup", "1"]);
    }

    /// Saves the whole screen as a PNG at `path`.
    pub fn screenshot(&self, path: &Path) {
        let out = Command::new("import")
            .args(["-display", &self.display, "-window", "root"])
            .arg(path)
            .output()
            .expect("run ImageMagick's import");
        assert!(
            out.status.success(),
            "import: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Takes screenshots into `path` until `done` holds for one (a loaded
    /// machine may take a while to paint), for at most 15 s; the last one
    /// stays at `path` either way.
    pub fn screenshot_until(&self, path: &Path, mut done: impl FnMut(&Path) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            std::thread::sleep(Duration::from_millis(300));
            self.screenshot(path);
            if done(path) || Instant::now() > deadline {
                return;
            }
        }
    }
}

/// How many pixels of `color` (`#RRGGBB`) `png` has, in the rectangle
/// `(x, y, w, h)` if given.
pub fn count_color(png: &Path, color: &str, area: Option<(i32, i32, i32, i32)>) -> u64 {
    let mut convert = Command::new("convert");
    convert.arg(png);
    if let Some((x, y, w, h)) = area {
        convert.args(["-crop", &format!("{w}x{h}+{x}+{y}"), "+repage"]);
    }
    let out = convert
        .args(["-format", "%c", "histogram:info:-"])
        .output()
        .expect("run ImageMagick's convert");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "convert: {text}");
    text.lines()
        .filter(|l| l.contains(color))
        .filter_map(|l| l.trim().split(':').next()?.trim().parse::<u64>().ok())
        .sum()
}

/// The window, run as a child of the test binary on `display` with the
/// environment `env`; its log lines, each echoed to the test's output.
pub fn spawn_window(display: &str, env: &[(&str, &str)]) -> (Reaped, Receiver<String>) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .env("DISPLAY", display)
        .env_remove("WAYLAND_DISPLAY")
        .stdout(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut window = Reaped(command.spawn().expect("run the window"));
    let (lines_tx, lines) = mpsc::channel();
    let stdout = window.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("window: {line}");
            let _ = lines_tx.send(line);
        }
    });
    (window, lines)
}

/// Waits for a line ending with `wanted`; returns it.
pub fn wait_for(lines: &Receiver<String>, wanted: &str) -> String {
    wait_until(lines, |l| l.ends_with(wanted))
        .unwrap_or_else(|e| panic!("no {wanted:?} from the window: {e}"))
}

/// Waits for a line that `pred` accepts, for at most 60 s.
pub fn wait_until(
    lines: &Receiver<String>,
    mut pred: impl FnMut(&str) -> bool,
) -> Result<String, mpsc::RecvTimeoutError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines.recv_timeout(left)?;
        if pred(&line) {
            return Ok(line);
        }
    }
}
