//! `zos bench input`: how long the master's input takes to reach the
//! zombie's ZOS session, and how many events a second go through without
//! loss or reordering — ZOS and Barrier 2.4 side by side, in one run, on the
//! same two-namespace LAN.
//!
//! Each system gets a master screen and a zombie screen (Xvfb, 1280x800);
//! ZOS's zombie opens its ZOS session (Xephyr, full screen) on its own.
//! Both are set up first and run together; key latencies are measured
//! taking turns (one key through ZOS, one through Barrier, …) so both see
//! the same moments of a shared machine's load; the motion flows, which
//! take seconds, one system after the other. Events are made on the
//! master's screen with XTest (as a keyboard or mouse would make them) and
//! stamped when a focused window on the far side receives them; the floor
//! is the same window getting XTest events made on its own display, so
//! "added" is what crossing to the other machine costs.

mod barrier;
mod lan;
mod ours;
mod probe;
mod report;

use std::any::Any;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use anyhow::{Context, Result};

use lan::Lan;
use probe::{Receiver, Sender, key_latencies_in_turn, motion_flow};
use report::Figures;
pub(super) use report::load_average;

/// One system set up: the probes, then (dropped after them) its processes
/// and screens.
struct Rig {
    sender: Sender,
    floor: Sender,
    receiver: Receiver,
    _running: Box<dyn Any>,
}

/// Runs the benchmark and prints its figures.
pub fn run(samples: usize, seconds: u64, rate: u32) -> Result<()> {
    let dir = BenchDir::new()?;
    let lan = Lan::new()?;
    println!(
        "zos bench input: master and zombie in two network namespaces joined by veth, Xvfb 1280x800 screens; \
         {samples} keys one at a time (ZOS and Barrier taking turns), then pointer motion at {rate}/s for {seconds} s, \
         then as fast as possible"
    );
    println!("machine load before: {}", load_average());
    let count = (u64::from(rate) * seconds) as usize;

    let ours = ours_rig(&lan, &dir).with_context(|| {
        format!(
            "setting up ZOS (logs: {})",
            dir.logs("master.log", "zombie.log")
        )
    })?;
    let barrier = barrier_rig(&lan, &dir)
        .map_err(|e| format!("{e:#} (logs: {})", dir.logs("barriers.log", "barrierc.log")));
    let mut rigs = vec![&ours];
    if let Ok(b) = &barrier {
        rigs.push(b);
    }
    let through: Vec<_> = rigs.iter().map(|r| (&r.sender, &r.receiver)).collect();
    let straight: Vec<_> = rigs.iter().map(|r| (&r.floor, &r.receiver)).collect();
    let mut keys = key_latencies_in_turn(&through, samples)
        .context("measuring key latency")?
        .into_iter();
    let mut floors = key_latencies_in_turn(&straight, samples)
        .context("measuring the floor")?
        .into_iter();
    let mut figures = |rig: &Rig| -> Result<Figures> {
        Ok(Figures {
            keys: keys.next().unwrap_or_default(),
            floor: floors.next().unwrap_or_default(),
            paced: motion_flow(&rig.sender, &rig.receiver, count, rate)?,
            burst: motion_flow(&rig.sender, &rig.receiver, count.min(5000), 0)?,
        })
    };
    let ours_figures = figures(&ours).with_context(|| {
        format!(
            "measuring ZOS (logs: {})",
            dir.logs("master.log", "zombie.log")
        )
    })?;
    report::print("ZOS (Noise session, Xephyr)", &ours_figures);
    let barrier_figures = match &barrier {
        Ok(rig) => match figures(rig) {
            Ok(f) => Some(f),
            Err(e) => {
                println!("Barrier 2.4: its motion flows failed: {e:#}");
                None
            }
        },
        Err(why) => {
            println!("Barrier 2.4: could not be measured here: {why}");
            None
        }
    };
    if let Some(b) = &barrier_figures {
        report::print("Barrier 2.4 (TLS, mutual certificates)", b);
        report::compare(&ours_figures, b);
    }
    report::goals(&ours_figures, barrier_figures.as_ref());
    println!("machine load after: {}", load_average());
    Ok(())
}

/// ZOS: both daemons, the zombie dominated and driven; the far window
/// inside its ZOS session.
fn ours_rig(lan: &Lan, dir: &BenchDir) -> Result<Rig> {
    let (m, z) = (lan.xvfb(&lan.m)?, lan.xvfb(&lan.z)?);
    let driven = ours::start(lan, &dir.0, &m.display, &z.display)?;
    let (display, cookie) = &driven.session;
    let receiver = Receiver::new(&lan.z, display, Some(cookie))?;
    let floor = Sender::new(&lan.z, display, Some(cookie))?;
    let sender = Sender::new(&lan.m, &m.display, None)?;
    // The walk starts well inside the session (screens are the same size).
    sender.motion(200, 400)?;
    Ok(Rig {
        sender,
        floor,
        receiver,
        _running: Box::new((driven, m, z)),
    })
}

/// Barrier: server and client connected, the pointer on the client's side.
fn barrier_rig(lan: &Lan, dir: &BenchDir) -> Result<Rig> {
    let (m, z) = (lan.xvfb(&lan.m)?, lan.xvfb(&lan.z)?);
    let running = barrier::start(lan, &dir.0, &m.display, &z.display)?;
    let receiver = Receiver::new(&lan.z, &z.display, None)?;
    let sender = Sender::new(&lan.m, &m.display, None)?;
    let floor = Sender::new(&lan.z, &z.display, None)?;
    barrier::switch_to_client(&sender, &receiver)?;
    Ok(Rig {
        sender,
        floor,
        receiver,
        _running: Box::new((running, m, z)),
    })
}

/// The bench's private directory (homes, logs, Barrier's certificates).
struct BenchDir(PathBuf);

impl BenchDir {
    fn new() -> Result<BenchDir> {
        let dir = std::env::temp_dir().join(format!("zos-bench-input-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        Ok(BenchDir(dir))
    }

    /// The last lines of two logs, for an error message.
    fn logs(&self, a: &str, b: &str) -> String {
        [a, b]
            .iter()
            .map(|name| {
                let text = std::fs::read_to_string(self.0.join(name)).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(8).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("\n--- {name} ---\n{}", tail.join("\n"))
            })
            .collect()
    }
}

impl Drop for BenchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
