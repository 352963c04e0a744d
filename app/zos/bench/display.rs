//! `zos bench display`: what a virtually shared app's view costs and how fast it is.
//!
//! Figures, each the median of several runs:
//! - (a) key-to-pixel latency: a key sent by a viewer until the changed pixels of xterm's
//!   echo arrive back at that viewer (median and p95);
//! - (b) frames per second and bytes per frame while an app ([`animator`]) repaints the whole
//!   1280×800 screen at 30 fps;
//! - (c) CPU per viewer at that rate: a real viewer window process (`zos_viewer::run` under
//!   Xvfb and Mesa's llvmpipe) and a decode-only viewer;
//! - (d) what a second viewer adds: serving CPU (Xvnc, plus the fan-out where there is one)
//!   and viewer CPU with none, one and two viewers;
//! - (e) through the session only, seamless viewer windows ([`windows`]): key-to-pixel and
//!   repaints per second seen on the viewer's screen, one to one and scaled, and the window's
//!   CPU for a 1280×800 app and a 200×200 one.
//!
//! Everything is measured twice: with each viewer its own client of Xvnc (how views worked
//! before the fan-out), and through a [`Fanout`](zos_display::Fanout) in a helper process
//! ([`fanout`]), the one client of Xvnc, as the master daemon serves views now.
//!
//! # Measuring through a session
//!
//! [`measure`] takes two [`Target`]s, one whose app is an xterm running bash at (0, 0) and
//! one whose app is `zos bench display --animate` on a 1280×800 screen. A target says where
//! the viewers come from: `connect` opens one RFB stream (here: Xvnc's unix socket; through a
//! session: the daemon's `View` reply on the control socket), `spawn_window` starts a viewer
//! window process on a given X display (here: `zos bench display --viewer-socket`; through a
//! session: `zos view TASK` with `DISPLAY` set), and `server_pids` lists the processes whose
//! CPU is the serving side's (here Xvnc; through a session add both daemons). Build those
//! targets from two `zos run --shared` tasks and pass them to [`measure`] and [`print`] for a
//! second set of figures.

mod animator;
mod fanout;
mod measure;
mod session;
mod setup;
mod windows;

use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

pub use measure::Target;
use measure::{CpuSpan, DecodeViewer, Window};
use setup::{Bench, Xvfb};
pub(crate) use setup::{TempDir, spawn_quiet_window};

use super::median;

/// The animator's frame rate.
pub const FPS: u32 = 30;
/// The animated screen.
pub const ANIMATED: (u16, u16) = (1280, 800);
/// The small animated window (seamless figures).
pub const SMALL: (u16, u16) = (200, 200);
/// Key presses per latency run.
const KEYS: usize = 40;
/// How long a viewer window gets to open and settle before it is measured.
const WINDOW_WARMUP: Duration = Duration::from_secs(4);

/// Which helper process of the benchmark to be, if any.
#[derive(Debug, Default)]
pub struct Helpers {
    /// Be a viewer window of this RFB socket.
    pub viewer_socket: Option<PathBuf>,
    /// Be the animated test app on `$DISPLAY`, with this window size (`WxH`; the screen's if
    /// none).
    pub animate: Option<Option<String>>,
    /// Be a fan-out of this RFB socket, serving viewers on the second path.
    pub fanout: Option<(PathBuf, PathBuf)>,
}

/// `zos bench display` (with `windows_only`, only its part (e)), or one of its helper
/// processes.
pub fn run(runs: usize, seconds: u64, windows_only: bool, helpers: Helpers) -> Result<()> {
    let Helpers {
        viewer_socket,
        animate,
        fanout,
    } = helpers;
    if let Some(size) = animate {
        let size = size.as_deref().map(animator::parse_size).transpose()?;
        return animator::run(FPS, size);
    }
    if let Some((rfb_socket, listen)) = fanout {
        return fanout::serve(&rfb_socket, &listen);
    }
    if let Some(socket) = viewer_socket {
        let options = zos_viewer::ViewerWindowOptions::new("zos bench display", move || {
            UnixStream::connect(socket)
        });
        return zos_viewer::run(options);
    }
    let seconds = Duration::from_secs(seconds.max(1));
    let runs = runs.max(1);
    if windows_only {
        return seamless_windows(runs, seconds);
    }
    println!(
        "zos bench display: TigerVNC Xvnc on a unix socket, Raw encoding, median of {runs} runs, {} s per rate",
        seconds.as_secs()
    );
    let bench = Bench::start()?;
    let direct = measure(&bench.xterm, &bench.animated, runs, seconds, &bench.screens)?;
    print(
        "direct (each viewer its own client of Xvnc)",
        "Xvnc",
        &direct,
    );
    let fanned = measure(
        &bench.fanout_xterm,
        &bench.fanout_animated,
        runs,
        seconds,
        &bench.screens,
    )?;
    print(
        "fan-out (one client of Xvnc, our RFB server in a helper process)",
        "Xvnc+fan-out",
        &fanned,
    );
    let share = |f: &Figures| {
        let first = f.decode[0].server - f.server_alone;
        let second = f.decode[1].server - f.decode[0].server;
        100.0 * second / first.max(1e-9)
    };
    println!(
        "(d) summary: a second decode-only viewer costs the serving side {:.0} % of the first directly, {:.0} % through the fan-out",
        share(&direct),
        share(&fanned)
    );
    let screens = bench.screens.clone();
    drop((bench._apps, bench._displays));
    let exe = std::env::current_exe()?;
    let session = session::SessionBench::start(&exe).context("the session set-up")?;
    let through = measure(&session.xterm, &session.animated, runs, seconds, &screens)?;
    print(
        "through a session (zombie daemon → Noise session → master daemon's fan-out → Xvnc)",
        "Xvnc+daemons",
        &through,
    );
    println!(
        "(d) through the session, a second decode-only viewer costs the serving side {:.0} % of the first",
        share(&through)
    );
    let seamless = windows::measure(
        &session.xterm,
        &session.animated,
        &session.small,
        &screens[0],
        runs,
        seconds,
    )?;
    windows::print(&seamless);
    drop(session);
    drop(bench._xvfbs);
    Ok(())
}

/// Part (e) alone: a session, one Xvfb screen for the viewer windows.
fn seamless_windows(runs: usize, seconds: Duration) -> Result<()> {
    println!(
        "zos bench display --windows-only: median of {runs} runs, {} s per rate",
        seconds.as_secs()
    );
    let xvfb = Xvfb::start()?;
    let exe = std::env::current_exe()?;
    let session = session::SessionBench::start(&exe).context("the session set-up")?;
    let seamless = windows::measure(
        &session.xterm,
        &session.animated,
        &session.small,
        &xvfb.display,
        runs,
        seconds,
    )?;
    windows::print(&seamless);
    drop(session);
    Ok(())
}

/// CPU with some viewers attached, in cores.
#[derive(Debug, Clone, Copy, Default)]
pub struct Load {
    /// The serving side (`Target::server_pids`).
    pub server: f64,
    /// The viewers themselves.
    pub viewers: f64,
}

/// The figures of [`measure`], medians over the runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Figures {
    pub latency_median: f64,
    pub latency_p95: f64,
    pub frames_per_s: f64,
    pub screens_per_s: f64,
    pub bytes_per_frame: f64,
    pub decode_cores: f64,
    pub window_cores: f64,
    /// Server CPU with the animation running and no viewer.
    pub server_alone: f64,
    /// With one and two decode-only viewers.
    pub decode: [Load; 2],
    /// With one and two viewer windows.
    pub windows: [Load; 2],
}

/// Runs every measurement `runs` times against the two targets; viewer windows go to the X
/// displays in `screens` (one per window).
pub fn measure(
    xterm: &Target,
    animated: &Target,
    runs: usize,
    seconds: Duration,
    screens: &[String; 2],
) -> Result<Figures> {
    let mut all = Vec::new();
    for run in 1..=runs {
        let mut f = Figures::default();
        let latency = measure::key_to_pixel(xterm, KEYS).context("key-to-pixel")?;
        f.latency_median = latency.median;
        f.latency_p95 = latency.p95;

        let server = &animated.server_pids;
        let span = CpuSpan::start(server);
        std::thread::sleep(seconds);
        f.server_alone = span.cores();

        let one = DecodeViewer::start(animated).context("decode-only viewer")?;
        let span = CpuSpan::start(server);
        std::thread::sleep(seconds);
        let server_cores = span.cores();
        let d = one.finish()?;
        f.frames_per_s = d.frames_per_s;
        f.screens_per_s = d.screens_per_s;
        f.bytes_per_frame = d.bytes_per_frame;
        f.decode_cores = d.cores;
        f.decode[0] = Load {
            server: server_cores,
            viewers: d.cores,
        };

        let (a, b) = (
            DecodeViewer::start(animated)?,
            DecodeViewer::start(animated)?,
        );
        let span = CpuSpan::start(server);
        std::thread::sleep(seconds);
        let server_cores = span.cores();
        f.decode[1] = Load {
            server: server_cores,
            viewers: a.finish()?.cores + b.finish()?.cores,
        };

        let first = Window::start(animated, &screens[0], WINDOW_WARMUP)?;
        let span = CpuSpan::start(server);
        let window = CpuSpan::start(&[first.pid()]);
        std::thread::sleep(seconds);
        f.window_cores = window.cores();
        f.windows[0] = Load {
            server: span.cores(),
            viewers: f.window_cores,
        };

        let second = Window::start(animated, &screens[1], WINDOW_WARMUP)?;
        let span = CpuSpan::start(server);
        let windows = CpuSpan::start(&[first.pid(), second.pid()]);
        std::thread::sleep(seconds);
        f.windows[1] = Load {
            server: span.cores(),
            viewers: windows.cores(),
        };
        drop((first, second));
        println!(
            "  run {run}: {:.1} ms key-to-pixel, {:.1} frames/s, window {:.2} cores, decode {:.2} cores",
            f.latency_median * 1e3,
            f.frames_per_s,
            f.window_cores,
            f.decode_cores
        );
        all.push(f);
    }
    let m = |get: &dyn Fn(&Figures) -> f64| median(all.iter().map(get).collect());
    let load = |get: &dyn Fn(&Figures) -> Load| Load {
        server: m(&|f| get(f).server),
        viewers: m(&|f| get(f).viewers),
    };
    Ok(Figures {
        latency_median: m(&|f| f.latency_median),
        latency_p95: m(&|f| f.latency_p95),
        frames_per_s: m(&|f| f.frames_per_s),
        screens_per_s: m(&|f| f.screens_per_s),
        bytes_per_frame: m(&|f| f.bytes_per_frame),
        decode_cores: m(&|f| f.decode_cores),
        window_cores: m(&|f| f.window_cores),
        server_alone: m(&|f| f.server_alone),
        decode: [load(&|f| f.decode[0]), load(&|f| f.decode[1])],
        windows: [load(&|f| f.windows[0]), load(&|f| f.windows[1])],
    })
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

/// Prints one set of figures, labelled with the path the viewers took and what the serving
/// side is, against the goals.
pub fn print(path: &str, serving: &str, f: &Figures) {
    println!("path: {path}");
    println!(
        "(a) key-to-pixel (xterm echo): median {:.1} ms, p95 {:.1} ms   [goal < 15 ms: {}]",
        f.latency_median * 1e3,
        f.latency_p95 * 1e3,
        verdict(f.latency_median < 0.015)
    );
    println!(
        "(b) {}x{} app at {FPS} fps: {:.1} frames/s seen, {:.1} full screens/s of pixels, {:.2} MB per frame   [goal >= 25 frames/s: {}]",
        ANIMATED.0,
        ANIMATED.1,
        f.frames_per_s,
        f.screens_per_s,
        f.bytes_per_frame / 1e6,
        verdict(f.frames_per_s >= 25.0)
    );
    println!(
        "(c) CPU per viewer: window {:.2} cores (under Xvfb, llvmpipe), decode only {:.2} cores   [goal < 0.5: {}]",
        f.window_cores,
        f.decode_cores,
        verdict(f.window_cores < 0.5)
    );
    println!(
        "(d) a second viewer, {serving} alone {:.2} cores; added by viewer 1 and viewer 2:",
        f.server_alone
    );
    let row = |what: &str, loads: &[Load; 2]| {
        let server = (
            loads[0].server - f.server_alone,
            loads[1].server - loads[0].server,
        );
        let all = (
            server.0 + loads[0].viewers,
            server.1 + loads[1].viewers - loads[0].viewers,
        );
        let pct = |(a, b): (f64, f64)| 100.0 * b / a.max(1e-9);
        println!(
            "    {what:<13} {serving} +{:.2} then +{:.2} ({:.0} %)   [goal < 50 %: {}];   with the viewers' own CPU +{:.2} then +{:.2} ({:.0} %)",
            server.0,
            server.1,
            pct(server),
            verdict(server.1 < 0.5 * server.0),
            all.0,
            all.1,
            pct(all)
        );
    };
    row("windows:", &f.windows);
    row("decode only:", &f.decode);
}
