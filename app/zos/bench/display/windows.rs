//! (e) Seamless viewer windows (`zos view TASK` through the session), measured from the X
//! server of the viewer's screen: keys typed into the viewer window with XTest, its repaints
//! seen with XDamage and its pixels read back with GetImage. So the figures include the whole
//! local path: X input to the window, the viewer, the session, the app, and the window's
//! repaint on the screen.
//!
//! - key-to-pixel of the xterm's window one to one and scaled to 60 %;
//! - distinct animation frames per second the 1280×800 animation's window shows (its
//!   frame-number block read back), one to one and scaled;
//! - the window process's CPU for the 1280×800 app and for a 200×200 one.

use std::collections::HashSet;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use x11rb::connection::Connection;
use x11rb::protocol::Event;
use x11rb::protocol::damage::{ConnectionExt as _, Damage, ReportLevel};
use x11rb::protocol::xproto::{
    AtomEnum, ConfigureWindowAux, ConnectionExt as _, ImageFormat, InputFocus, KEY_PRESS_EVENT,
    KEY_RELEASE_EVENT, MOTION_NOTIFY_EVENT, MapState, Window,
};
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

use super::animator::{MARKER, marker_frame};
use super::measure::{CpuSpan, Latency, Target, Window as ViewerProcess};
use super::{KEYS, WINDOW_WARMUP, median};

/// How much the scaled windows are shrunk.
pub const SCALED: f64 = 0.6;

/// The figures of [`measure`], medians over the runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct WindowFigures {
    pub key_one: (f64, f64),
    pub key_scaled: (f64, f64),
    pub fps_one: f64,
    pub fps_scaled: f64,
    pub cpu_big: f64,
    pub cpu_big_scaled: f64,
    pub cpu_small: f64,
}

/// Runs the window measurements `runs` times on X display `screen` (no window manager).
pub fn measure(
    xterm: &Target,
    big: &Target,
    small: &Target,
    screen: &str,
    runs: usize,
    seconds: Duration,
) -> Result<WindowFigures> {
    let mut all = Vec::new();
    // One connection for all runs: an X server resets when its last client leaves, and a
    // connection made during the reset fails.
    let probe = Probe::connect(screen)?;
    for run in 1..=runs {
        let mut f = WindowFigures::default();
        {
            let view = ViewerProcess::start(xterm, screen, WINDOW_WARMUP)?;
            let window = probe.find(" xterm on ", view.pid())?;
            let l = probe.key_to_pixel(window, KEYS)?;
            f.key_one = (l.median, l.p95);
            probe.scale(window, SCALED)?;
            let l = probe.key_to_pixel(window, KEYS)?;
            f.key_scaled = (l.median, l.p95);
        }
        {
            let view = ViewerProcess::start(big, screen, WINDOW_WARMUP)?;
            let window = probe.find("zos bench animation 1280x800", view.pid())?;
            (f.fps_one, f.cpu_big) = probe.frames_shown(window, view.pid(), seconds)?;
            probe.scale(window, SCALED)?;
            std::thread::sleep(Duration::from_millis(500));
            (f.fps_scaled, f.cpu_big_scaled) = probe.frames_shown(window, view.pid(), seconds)?;
        }
        {
            let view = ViewerProcess::start(small, screen, WINDOW_WARMUP)?;
            let window = probe.find("zos bench animation 200x200", view.pid())?;
            (_, f.cpu_small) = probe.frames_shown(window, view.pid(), seconds)?;
        }
        println!(
            "  run {run}: window key-to-pixel {:.1} ms (scaled {:.1} ms), {:.1} frames/s (scaled {:.1}), window CPU {:.2} / {:.2} cores (1280x800 / 200x200 app)",
            f.key_one.0 * 1e3,
            f.key_scaled.0 * 1e3,
            f.fps_one,
            f.fps_scaled,
            f.cpu_big,
            f.cpu_small
        );
        all.push(f);
    }
    let m = |get: &dyn Fn(&WindowFigures) -> f64| median(all.iter().map(get).collect());
    Ok(WindowFigures {
        key_one: (m(&|f| f.key_one.0), m(&|f| f.key_one.1)),
        key_scaled: (m(&|f| f.key_scaled.0), m(&|f| f.key_scaled.1)),
        fps_one: m(&|f| f.fps_one),
        fps_scaled: m(&|f| f.fps_scaled),
        cpu_big: m(&|f| f.cpu_big),
        cpu_big_scaled: m(&|f| f.cpu_big_scaled),
        cpu_small: m(&|f| f.cpu_small),
    })
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

/// Prints the window figures against the goals.
pub fn print(f: &WindowFigures) {
    println!(
        "path: seamless viewer windows (`zos view` on the zombie's side, through the session)"
    );
    println!(
        "(e) key-to-pixel through the xterm's window (XTest key in, the echo read back from the screen): one to one median {:.1} ms (p95 {:.1}), scaled to {:.0} % median {:.1} ms (p95 {:.1})   [goal < 15 ms: {}]",
        f.key_one.0 * 1e3,
        f.key_one.1 * 1e3,
        SCALED * 100.0,
        f.key_scaled.0 * 1e3,
        f.key_scaled.1 * 1e3,
        verdict(f.key_one.0 < 0.015 && f.key_scaled.0 < 0.015)
    );
    println!(
        "(e) 1280x800 app window at {} fps: {:.1} frames/s shown one to one, {:.1} scaled   [goal >= 25: {}]",
        super::FPS,
        f.fps_one,
        f.fps_scaled,
        verdict(f.fps_one >= 25.0 && f.fps_scaled >= 25.0)
    );
    println!(
        "(e) viewer window CPU: 1280x800 app {:.2} cores (scaled {:.2}), 200x200 app {:.2} cores = {:.0} % of it   [goal: a small fraction (< 25 %): {}]",
        f.cpu_big,
        f.cpu_big_scaled,
        f.cpu_small,
        100.0 * f.cpu_small / f.cpu_big.max(1e-9),
        verdict(f.cpu_small < 0.25 * f.cpu_big)
    );
}

/// An X client of the viewers' screen that types and watches.
struct Probe {
    conn: RustConnection,
    root: Window,
    /// Keycodes of a–z and of Control_L.
    letters: Vec<u8>,
    control: u8,
}

impl Probe {
    fn connect(screen: &str) -> Result<Probe> {
        let (conn, n) = x11rb::connect(Some(screen)).context("connect to the viewers' screen")?;
        let root = conn.setup().roots[n].root;
        conn.damage_query_version(1, 1)?.reply()?;
        let (min, max) = (conn.setup().min_keycode, conn.setup().max_keycode);
        let map = conn.get_keyboard_mapping(min, max - min + 1)?.reply()?;
        let per = usize::from(map.keysyms_per_keycode);
        let code_of = |keysym: u32| -> Option<u8> {
            map.keysyms
                .chunks(per)
                .position(|syms| syms.first() == Some(&keysym))
                .map(|i| min + i as u8)
        };
        let letters = (b'a'..=b'z')
            .map(|c| code_of(u32::from(c)).context("no keycode for a letter"))
            .collect::<Result<Vec<_>>>()?;
        let control = code_of(0xffe3).context("no keycode for Control_L")?;
        Ok(Probe {
            conn,
            root,
            letters,
            control,
        })
    }

    /// The viewable window of process `pid`'s view whose title contains `title`.
    fn find(&self, title: &str, pid: u32) -> Result<Window> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            for w in self.conn.query_tree(self.root)?.reply()?.children {
                let viewable = self
                    .conn
                    .get_window_attributes(w)?
                    .reply()
                    .is_ok_and(|a| a.map_state == MapState::VIEWABLE);
                let name = self.title(w)?;
                if viewable && name.contains(title) {
                    return Ok(w);
                }
            }
            if Instant::now() > deadline {
                bail!("no window titled …{title}… of viewer {pid} on the screen");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Resizes `window` to `factor` of its size (no window manager: at once).
    fn scale(&self, window: Window, factor: f64) -> Result<()> {
        let g = self.conn.get_geometry(window)?.reply()?;
        let (w, h) = (
            (f64::from(g.width) * factor).round() as u32,
            (f64::from(g.height) * factor).round() as u32,
        );
        self.conn
            .configure_window(window, &ConfigureWindowAux::new().width(w).height(h))?;
        self.conn.flush()?;
        std::thread::sleep(Duration::from_millis(500));
        Ok(())
    }

    /// Events until `deadline`; true once a DamageNotify came.
    fn wait_damage(&self, deadline: Instant) -> Result<bool> {
        loop {
            while let Some(event) = self.conn.poll_for_event()? {
                if matches!(event, Event::DamageNotify(_)) {
                    return Ok(true);
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            let mut fd = libc::pollfd {
                fd: self.conn.stream().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd, for the duration of the call.
            unsafe { libc::poll(&mut fd, 1, left.as_millis().clamp(1, 1000) as i32) };
        }
    }

    /// A damage object on `window` reporting each non-empty repaint.
    fn watch(&self, window: Window) -> Result<Damage> {
        let damage = self.conn.generate_id()?;
        self.conn
            .damage_create(damage, window, ReportLevel::NON_EMPTY)?;
        self.conn.flush()?;
        Ok(damage)
    }

    /// Re-arms `damage` (the next repaint reports again) and drops what was reported.
    fn rearm(&self, damage: Damage) -> Result<()> {
        self.conn
            .damage_subtract(damage, x11rb::NONE, x11rb::NONE)?;
        self.conn.sync()?;
        while self.conn.poll_for_event()?.is_some() {}
        Ok(())
    }

    /// The pixels of `window`'s rectangle `(x, y, w, h)` as the screen shows them.
    fn pixels(&self, window: Window, (x, y, w, h): (i16, i16, u16, u16)) -> Result<Vec<u8>> {
        Ok(self
            .conn
            .get_image(ImageFormat::Z_PIXMAP, window, x, y, w, h, !0)?
            .reply()?
            .data)
    }

    fn fake(&self, kind: u8, code: u8) -> Result<()> {
        self.conn
            .xtest_fake_input(kind, code, x11rb::CURRENT_TIME, self.root, 0, 0, 0)?;
        Ok(())
    }

    fn key(&self, code: u8) -> Result<()> {
        self.fake(KEY_PRESS_EVENT, code)?;
        self.fake(KEY_RELEASE_EVENT, code)
    }

    /// (e) Keys typed into `window` (an xterm's) until their echo shows on the screen,
    /// `samples` times. A repaint alone is not the echo (the viewer also repaints on input):
    /// after each repaint the window's pixels are read back, and the time taken is when they
    /// first differ from before the key, read back included.
    fn key_to_pixel(&self, window: Window, samples: usize) -> Result<Latency> {
        let g = self.conn.get_geometry(window)?.reply()?;
        let all = (0, 0, g.width, g.height);
        let at = self
            .conn
            .translate_coordinates(window, self.root, 0, 0)?
            .reply()?;
        // The pointer in the window (its remote pointer too), the keyboard on it.
        self.conn.xtest_fake_input(
            MOTION_NOTIFY_EVENT,
            0,
            x11rb::CURRENT_TIME,
            self.root,
            at.dst_x + g.width as i16 / 2,
            at.dst_y + g.height as i16 / 2,
            0,
        )?;
        self.conn
            .set_input_focus(InputFocus::PARENT, window, x11rb::CURRENT_TIME)?;
        let damage = self.watch(window)?;
        std::thread::sleep(Duration::from_millis(500));
        let mut times = Vec::with_capacity(samples);
        for i in 0..samples {
            if i % 30 == 29 {
                // Ctrl+U: the line never wraps far.
                self.fake(KEY_PRESS_EVENT, self.control)?;
                self.key(self.letters[usize::from(b'u' - b'a')])?;
                self.fake(KEY_RELEASE_EVENT, self.control)?;
                self.conn.flush()?;
            }
            // Idle first, so that the echo needs a repaint of its own.
            std::thread::sleep(Duration::from_millis(150));
            self.rearm(damage)?;
            let before = self.pixels(window, all)?;
            let start = Instant::now();
            let deadline = start + Duration::from_secs(5);
            self.key(self.letters[i % 26])?;
            self.conn.flush()?;
            loop {
                if !self.wait_damage(deadline)? {
                    bail!("the window showed no echo within 5 s");
                }
                self.conn
                    .damage_subtract(damage, x11rb::NONE, x11rb::NONE)?;
                if self.pixels(window, all)? != before {
                    break;
                }
            }
            times.push(start.elapsed().as_secs_f64());
        }
        self.conn.damage_destroy(damage)?;
        self.conn.flush()?;
        times.sort_by(|a, b| a.total_cmp(b));
        Ok(Latency {
            median: times[times.len() / 2],
            p95: times[(times.len() * 95 / 100).min(times.len() - 1)],
        })
    }

    /// (e) Distinct animation frames `window` (an animator's) showed per second over
    /// `seconds` (its frame-number block read back after each repaint), and its process's
    /// CPU in cores.
    fn frames_shown(&self, window: Window, pid: u32, seconds: Duration) -> Result<(f64, f64)> {
        let g = self.conn.get_geometry(window)?.reply()?;
        // The middle of the frame-number block, wherever the window's scale puts it.
        let scale = f64::from(g.width) / f64::from(self.animation_width(window)?);
        let inside = ((f64::from(MARKER) / 2.0 * scale) as i16).max(0);
        let damage = self.watch(window)?;
        let cpu = CpuSpan::start(&[pid]);
        let start = Instant::now();
        let end = start + seconds;
        let mut seen = HashSet::new();
        while Instant::now() < end {
            if self.wait_damage(end)? {
                self.conn
                    .damage_subtract(damage, x11rb::NONE, x11rb::NONE)?;
                let p = self.pixels(window, (inside, inside, 1, 1))?;
                if let Some(frame) = p.get(..3).and_then(|p| marker_frame([p[2], p[1], p[0]])) {
                    seen.insert(frame);
                }
            }
        }
        let cores = cpu.cores();
        self.conn.damage_destroy(damage)?;
        self.conn.flush()?;
        if seen.is_empty() {
            bail!("the animation window showed no frame number");
        }
        Ok((seen.len() as f64 / start.elapsed().as_secs_f64(), cores))
    }

    /// The animation's own width, from the title of its viewer window.
    fn animation_width(&self, window: Window) -> Result<u16> {
        let name = self.title(window)?;
        let size = name
            .split("zos bench animation ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .with_context(|| format!("{name:?} is no animation window"))?;
        Ok(super::animator::parse_size(size)?.0)
    }

    fn title(&self, window: Window) -> Result<String> {
        Ok(self
            .conn
            .get_property(false, window, AtomEnum::WM_NAME, AtomEnum::ANY, 0, 256)?
            .reply()
            .map(|p| String::from_utf8_lossy(&p.value).into_owned())
            .unwrap_or_default())
    }
}
