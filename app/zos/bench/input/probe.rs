//! Both ends of a measurement: a [`Sender`] that makes events on the
//! master's display with XTest (as a keyboard or mouse would), and a
//! [`Receiver`] — a focused window covering the far display — that stamps
//! each event as it arrives. Both stamp with this process's monotonic clock
//! (the same clock in every namespace), so a latency is arrival minus the
//! moment just before the event was written.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use x11rb::connection::Connection;
use x11rb::protocol::Event;
use x11rb::protocol::xproto::{
    ConfigureWindowAux, ConnectionExt as _, CreateWindowAux, EventMask, InputFocus, StackMode,
    Window, WindowClass,
};
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::rust_connection::RustConnection;

use super::lan::in_ns;

/// What arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum What {
    /// A key went down.
    KeyPress,
    /// A key went up.
    KeyRelease,
    /// The pointer moved to this root position.
    Motion(i16, i16),
}

/// An arrival and when.
#[derive(Clone, Copy, Debug)]
pub struct Seen {
    pub what: What,
    pub at: Instant,
}

/// Makes events on one display.
pub struct Sender {
    conn: RustConnection,
    root: Window,
    key: u8,
}

fn connect(
    ns: &str,
    display: &str,
    xauthority: Option<&std::path::Path>,
) -> Result<(RustConnection, usize)> {
    let display = display.to_string();
    let xauthority = xauthority.map(|p| p.to_path_buf());
    in_ns(ns, move || {
        zos_display::connect_display(&display, xauthority.as_deref())
    })?
    .with_context(|| "connect to the X display".to_string())
}

impl Sender {
    /// An XTest sender on `display` (authority file `xauthority`) of
    /// namespace `ns`.
    pub fn new(ns: &str, display: &str, xauthority: Option<&std::path::Path>) -> Result<Sender> {
        let (conn, screen) = connect(ns, display, xauthority)?;
        let root = conn.setup().roots[screen].root;
        let setup = conn.setup();
        let (min, max) = (setup.min_keycode, setup.max_keycode);
        let map = conn.get_keyboard_mapping(min, max - min + 1)?.reply()?;
        let keymap = zos_display::input::Keymap::new(min, map.keysyms_per_keycode, map.keysyms);
        let (key, _) = keymap
            .find(0x61)
            .context("no key for 'a' on the master's display")?;
        Ok(Sender { conn, root, key })
    }

    /// Presses (or releases) the key; returns when it was written.
    pub fn key(&self, down: bool) -> Result<Instant> {
        let kind = if down { 2 } else { 3 };
        let at = Instant::now();
        self.conn
            .xtest_fake_input(kind, self.key, x11rb::CURRENT_TIME, self.root, 0, 0, 0)?;
        self.conn.flush()?;
        Ok(at)
    }

    /// Moves the pointer by (dx, dy), as a mouse reports it; returns when
    /// it was written.
    pub fn nudge(&self, dx: i16, dy: i16) -> Result<Instant> {
        self.pointer(true, dx, dy)
    }

    /// Moves the pointer to (x, y); returns when it was written.
    pub fn motion(&self, x: i16, y: i16) -> Result<Instant> {
        self.pointer(false, x, y)
    }

    /// An XTest MotionNotify, relative or absolute.
    fn pointer(&self, relative: bool, x: i16, y: i16) -> Result<Instant> {
        let at = Instant::now();
        self.conn.xtest_fake_input(
            6,
            u8::from(relative),
            x11rb::CURRENT_TIME,
            self.root,
            x,
            y,
            0,
        )?;
        self.conn.flush()?;
        Ok(at)
    }
}

/// A window on the far display that takes the keyboard focus and records
/// every key and motion event reaching it.
pub struct Receiver {
    seen: mpsc::Receiver<Seen>,
}

impl Receiver {
    /// Opens it on `display` (authority file `xauthority`) in namespace
    /// `ns`, below a 30-pixel band left free for a panel.
    pub fn new(ns: &str, display: &str, xauthority: Option<&std::path::Path>) -> Result<Receiver> {
        let (conn, screen) = connect(ns, display, xauthority)?;
        let s = &conn.setup().roots[screen];
        let (root, w, h) = (s.root, s.width_in_pixels, s.height_in_pixels);
        let window = conn.generate_id()?;
        let aux = CreateWindowAux::new()
            .background_pixel(0x10_3010)
            .override_redirect(1)
            .event_mask(EventMask::KEY_PRESS | EventMask::KEY_RELEASE | EventMask::POINTER_MOTION);
        conn.create_window(
            x11rb::COPY_DEPTH_FROM_PARENT,
            window,
            root,
            0,
            30,
            w,
            h - 30,
            0,
            WindowClass::INPUT_OUTPUT,
            x11rb::COPY_FROM_PARENT,
            &aux,
        )?;
        conn.map_window(window)?;
        conn.configure_window(
            window,
            &ConfigureWindowAux::new().stack_mode(StackMode::ABOVE),
        )?;
        conn.set_input_focus(InputFocus::PARENT, window, x11rb::CURRENT_TIME)?;
        conn.get_input_focus()?.reply()?;
        let (tx, seen) = mpsc::channel();
        std::thread::Builder::new()
            .name("bench-receiver".into())
            .spawn(move || {
                while let Ok(event) = conn.wait_for_event() {
                    let at = Instant::now();
                    let what = match event {
                        Event::KeyPress(_) => What::KeyPress,
                        Event::KeyRelease(_) => What::KeyRelease,
                        Event::MotionNotify(m) => What::Motion(m.root_x, m.root_y),
                        _ => continue,
                    };
                    if tx.send(Seen { what, at }).is_err() {
                        return;
                    }
                }
            })?;
        Ok(Receiver { seen })
    }

    /// Forgets what arrived so far.
    pub fn drain(&self) {
        while self.seen.try_recv().is_ok() {}
    }

    /// The next arrival matching `want`, within `timeout`.
    pub fn next(&self, timeout: Duration, want: impl Fn(What) -> bool) -> Option<Seen> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.seen.recv_timeout(left) {
                Ok(seen) if want(seen.what) => return Some(seen),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// Every arrival within `quiet` of the previous one.
    pub fn collect(&self, quiet: Duration) -> Vec<Seen> {
        let mut all = Vec::new();
        while let Ok(seen) = self.seen.recv_timeout(quiet) {
            all.push(seen);
        }
        all
    }
}

/// Keys pressed and released before the measured ones.
pub const WARM_UP_KEYS: usize = 20;

/// Key latencies, one event at a time, taking turns: round `i` sends one
/// key event (a press when `i` is even, else a release) through each of
/// `paths` (sender, receiver) in order, so every path sees the same
/// moments of the machine's load. After [`WARM_UP_KEYS`] rounds, `samples`
/// latencies per path.
pub fn key_latencies_in_turn(
    paths: &[(&Sender, &Receiver)],
    samples: usize,
) -> Result<Vec<Vec<Duration>>> {
    for (_, receiver) in paths {
        receiver.drain();
    }
    let mut out = vec![Vec::with_capacity(samples); paths.len()];
    for i in 0..samples + WARM_UP_KEYS {
        let down = i % 2 == 0;
        let want = if down {
            What::KeyPress
        } else {
            What::KeyRelease
        };
        for (n, (sender, receiver)) in paths.iter().enumerate() {
            let sent = sender.key(down)?;
            let Some(seen) = receiver.next(Duration::from_secs(2), |w| w == want) else {
                bail!("event {i} ({want:?}) on path {n} did not arrive within 2 s");
            };
            if i >= WARM_UP_KEYS {
                out[n].push(seen.at.duration_since(sent));
            }
            // Space them like keystrokes, not a flood.
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    Ok(out)
}

/// What a run of pointer motions gave.
pub struct Flow {
    /// Events written.
    pub sent: usize,
    /// Motions that arrived.
    pub received: usize,
    /// Whether they arrived complete and in the order written.
    pub in_order: bool,
    /// Achieved send rate, events per second.
    pub sent_rate: f64,
    /// Arrival rate over the run, events per second.
    pub received_rate: f64,
    /// Median latency of the first and the last tenth (drift shows here).
    pub first_tenth: Duration,
    /// See `first_tenth`.
    pub last_tenth: Duration,
    /// The 99th percentile over the run.
    pub p99: Duration,
    /// From the last event written to the last arrival: the lag left at
    /// the end (meaningful even when events were lost or merged).
    pub tail: Duration,
}

/// The back-and-forth walk of the flows: 0, 1, …, 399, 398, …, 0, 1, …
/// (consecutive positions always differ, so every event is a motion).
pub fn walk(i: usize) -> i16 {
    let t = (i % 798) as i16;
    if t < 400 { t } else { 798 - t }
}

/// Moves the pointer along [`walk`] by one-pixel steps, as a mouse reports
/// them, `count` times at `rate` per second (no pacing when 0), and checks
/// that every motion arrives, in order.
pub fn motion_flow(sender: &Sender, receiver: &Receiver, count: usize, rate: u32) -> Result<Flow> {
    receiver.drain();
    let steps: Vec<i16> = (0..count).map(|i| walk(i + 1) - walk(i)).collect();
    let expected: Vec<i16> = (0..count).map(|i| walk(i + 1)).collect();
    let period = (rate > 0).then(|| Duration::from_secs_f64(1.0 / f64::from(rate)));
    let mut sent_at = Vec::with_capacity(count);
    let start = Instant::now();
    for (i, &dx) in steps.iter().enumerate() {
        if let Some(period) = period {
            let due = start + period * i as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        sent_at.push(sender.nudge(dx, 0)?);
    }
    let sending = start.elapsed();
    let seen = receiver.collect(Duration::from_secs(2));
    let got: Vec<(i16, Instant)> = seen
        .iter()
        .filter_map(|s| match s.what {
            What::Motion(x, _) => Some((x, s.at)),
            _ => None,
        })
        .collect();
    let in_order = got.len() == expected.len()
        && got
            .iter()
            .zip(&expected)
            .all(|((gx, _), ex)| gx - got[0].0 == ex - expected[0]);
    let latencies: Vec<Duration> = got
        .iter()
        .zip(&sent_at)
        .map(|((_, at), sent)| at.saturating_duration_since(*sent))
        .collect();
    let tenth = (latencies.len() / 10).max(1);
    let received_span = match (got.first(), got.last()) {
        (Some(a), Some(b)) => b.1.duration_since(a.1).max(Duration::from_micros(1)),
        _ => Duration::from_secs(1),
    };
    Ok(Flow {
        sent: count,
        received: got.len(),
        in_order,
        sent_rate: count as f64 / sending.as_secs_f64(),
        received_rate: got.len().saturating_sub(1) as f64 / received_span.as_secs_f64(),
        first_tenth: percentile(&latencies[..tenth.min(latencies.len())], 0.5),
        last_tenth: percentile(&latencies[latencies.len().saturating_sub(tenth)..], 0.5),
        p99: percentile(&latencies, 0.99),
        tail: match (got.last(), sent_at.last()) {
            (Some((_, at)), Some(sent)) => at.saturating_duration_since(*sent),
            _ => Duration::ZERO,
        },
    })
}

/// The `q` quantile of `samples` (zero if empty).
pub fn percentile(samples: &[Duration], q: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut v = samples.to_vec();
    v.sort();
    v[((v.len() - 1) as f64 * q).round() as usize]
}
