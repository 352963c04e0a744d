//! The measurements of `zos bench display`, each against a [`Target`]: the viewer streams come
//! from its `connect` closure and the viewer windows from its `spawn_window` closure, so the
//! same code measures a viewer on Xvnc's socket and one through a real session.

use std::collections::HashSet;
use std::io;
use std::os::unix::net::UnixStream;
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use zos_display::{ViewerConnection, ViewerStats};

use super::animator::{MARKER, marker_frame};
use crate::bench::cpu;

/// Opens one more RFB stream to the app's display (one per viewer).
pub type Connect = Arc<dyn Fn() -> io::Result<UnixStream> + Send + Sync>;
/// Starts a viewer window process of the app on the X display named by the argument.
pub type SpawnWindow = Arc<dyn Fn(&str) -> io::Result<Child> + Send + Sync>;

/// Where the viewers of one app come from.
#[derive(Clone)]
pub struct Target {
    /// Opens a stream carrying raw RFB from its first byte.
    pub connect: Connect,
    /// Starts a real viewer window (its process's CPU is measured).
    pub spawn_window: SpawnWindow,
    /// The processes that serve the view (Xvnc, and any daemon on the way): their CPU is the
    /// server side's.
    pub server_pids: Vec<u32>,
}

/// Key-to-pixel latency of one run, in seconds.
pub struct Latency {
    pub median: f64,
    pub p95: f64,
}

fn connect_viewer(
    runtime: &tokio::runtime::Runtime,
    connect: &Connect,
) -> Result<ViewerConnection> {
    let stream = connect().context("open a view")?;
    stream.set_nonblocking(true)?;
    runtime.block_on(async {
        let stream = tokio::net::UnixStream::from_std(stream)?;
        Ok(ViewerConnection::connect(stream).await?)
    })
}

/// (a) A key sent by a viewer until the changed pixels of its echo arrive at that viewer;
/// the target's app is an xterm running bash at (0, 0).
pub fn key_to_pixel(target: &Target, samples: usize) -> Result<Latency> {
    const XK_CONTROL_L: u32 = 0xffe3;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let viewer = connect_viewer(&runtime, &target.connect)?;
    runtime.block_on(async {
        // (A current-thread runtime runs the viewer only inside `block_on`.)
        let deadline = Instant::now() + Duration::from_secs(15);
        while viewer.stats().pixel_bytes == 0 {
            if Instant::now() > deadline {
                bail!("no screen from the xterm's display");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Without a window manager the focus follows the pointer: put it on the xterm.
        viewer.pointer(100, 60, 0).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut versions = viewer.subscribe();
        let mut times = Vec::with_capacity(samples);
        for i in 0..samples {
            if i % 30 == 29 {
                // Clear the line (Ctrl+U) so it never wraps far.
                for (k, d) in [(XK_CONTROL_L, true), (0x75, true), (0x75, false)] {
                    viewer.key(k, d).await?;
                }
                viewer.key(XK_CONTROL_L, false).await?;
            }
            // Let the screen go idle so the echo needs a fresh update.
            tokio::time::sleep(Duration::from_millis(120)).await;
            versions.borrow_and_update();
            let c = u32::from(b'a' + (i % 26) as u8);
            let start = Instant::now();
            viewer.key(c, true).await?;
            viewer.key(c, false).await?;
            tokio::time::timeout(Duration::from_secs(5), versions.changed())
                .await
                .context("no echo within 5 s")??;
            times.push(start.elapsed().as_secs_f64());
        }
        times.sort_by(|a, b| a.total_cmp(b));
        let _ = viewer.close().await;
        Ok(Latency {
            median: times[times.len() / 2],
            p95: times[(times.len() * 95 / 100).min(times.len() - 1)],
        })
    })
}

/// What one decode-only viewer measured.
#[derive(Debug, Clone, Copy)]
pub struct Decoded {
    /// Distinct animator frames seen per second.
    pub frames_per_s: f64,
    /// Pixels received per second, in whole screens.
    pub screens_per_s: f64,
    /// Wire bytes per animator frame seen.
    pub bytes_per_frame: f64,
    /// CPU of the viewer (its thread: decoding and the framebuffer), in cores.
    pub cores: f64,
}

/// A viewer without a window on a thread of its own (a current-thread runtime, so vnc-rs'
/// tasks run there too and the thread's CPU is the whole viewer's), measuring from when
/// `start` is set until `stop` is.
pub struct DecodeViewer {
    thread: std::thread::JoinHandle<Result<Decoded>>,
    stop: Arc<AtomicBool>,
}

impl DecodeViewer {
    /// Connects and waits for the first screen.
    pub fn start(target: &Target) -> Result<DecodeViewer> {
        let connect = Arc::clone(&target.connect);
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let stop_flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("bench-decode".into())
            .spawn(move || decode_thread(connect, ready_tx, stop_flag))?;
        match ready.recv_timeout(Duration::from_secs(20)) {
            Ok(Ok(())) => Ok(DecodeViewer { thread, stop }),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                stop.store(true, Ordering::Relaxed);
                match thread.join() {
                    Ok(Err(e)) => Err(e),
                    _ => bail!("the decode viewer did not start"),
                }
            }
        }
    }

    /// Ends the measurement and returns it.
    pub fn finish(self) -> Result<Decoded> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("the decode viewer panicked"))?
    }
}

fn decode_thread(
    connect: Connect,
    ready: std::sync::mpsc::Sender<Result<()>>,
    stop: Arc<AtomicBool>,
) -> Result<Decoded> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let viewer = match connect_viewer(&runtime, &connect) {
        Ok(v) => v,
        Err(e) => {
            let _ = ready.send(Err(anyhow::anyhow!("{e:#}")));
            return Err(e);
        }
    };
    let source = viewer.source();
    let tid = cpu::thread_id();
    runtime.block_on(async {
        let mut versions = source.subscribe();
        let mut seen = HashSet::new();
        let marker = |s: &zos_display::FrameSource| {
            s.pixel(MARKER / 2, MARKER / 2)
                .and_then(|p| marker_frame([p[0], p[1], p[2]]))
        };
        // Wait for the animation.
        let deadline = Instant::now() + Duration::from_secs(15);
        while marker(&source).is_none() {
            if Instant::now() > deadline {
                bail!("no animator frame arrived");
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), versions.changed()).await;
        }
        let _ = ready.send(Ok(()));
        let (w, h) = source.size();
        let screen_bytes = f64::from(w) * f64::from(h) * 4.0;
        let (t0, cpu0, s0): (Instant, f64, ViewerStats) =
            (Instant::now(), cpu::thread_seconds(tid), source.stats());
        while !stop.load(Ordering::Relaxed) {
            if tokio::time::timeout(Duration::from_millis(50), versions.changed())
                .await
                .is_ok_and(|r| r.is_err())
            {
                bail!("the view ended during the measurement");
            }
            if let Some(n) = marker(&source) {
                seen.insert(n);
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        let cpu = cpu::thread_seconds(tid) - cpu0;
        let s = source.stats();
        let frames = seen.len().max(1) as f64;
        let _ = viewer.close().await;
        Ok(Decoded {
            frames_per_s: frames / secs,
            screens_per_s: (s.pixel_bytes - s0.pixel_bytes) as f64 / screen_bytes / secs,
            bytes_per_frame: (s.wire_bytes - s0.wire_bytes) as f64 / frames,
            cores: cpu / secs,
        })
    })
}

/// CPU of a set of processes over a time span, in cores.
pub struct CpuSpan {
    pids: Vec<u32>,
    start: f64,
    t0: Instant,
}

impl CpuSpan {
    pub fn start(pids: &[u32]) -> CpuSpan {
        CpuSpan {
            pids: pids.to_vec(),
            start: pids.iter().map(|p| cpu::seconds_of(*p)).sum(),
            t0: Instant::now(),
        }
    }

    pub fn cores(&self) -> f64 {
        let now: f64 = self.pids.iter().map(|p| cpu::seconds_of(*p)).sum();
        (now - self.start) / self.t0.elapsed().as_secs_f64()
    }
}

/// A viewer window process, killed on drop.
pub struct Window(pub Child);

impl Window {
    /// Starts one on `screen` and gives it `warmup` to open and settle.
    pub fn start(target: &Target, screen: &str, warmup: Duration) -> Result<Window> {
        let child = (target.spawn_window)(screen).context("start a viewer window")?;
        let mut w = Window(child);
        std::thread::sleep(warmup);
        if let Some(status) = w.0.try_wait()? {
            bail!("the viewer window exited at once: {status}");
        }
        Ok(w)
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
