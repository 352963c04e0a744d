//! `zos bench input`: how long the master's input takes to reach the
//! zombie's ZOS session, and how many events a second go through without
//! loss or reordering — ZOS and Barrier 2.4 side by side, in one run, on the
//! same two-namespace LAN.
//!
//! Each system gets a master screen and a zombie screen (Xvfb, 1280x800);
//! ZOS's zombie opens its ZOS session (Xephyr, full screen) on its own.
//! Events are made on the master's screen with XTest (as a keyboard or
//! mouse would make them) and stamped when a focused window on the far side
//! receives them; the floor is the same window getting XTest events made on
//! its own display, so "added" is what crossing to the other machine costs.

mod barrier;
mod lan;
mod ours;
mod probe;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

use lan::Lan;
use probe::{Flow, Receiver, Sender, key_latencies, motion_flow, percentile};

/// What one system gave.
struct Figures {
    keys: Vec<Duration>,
    floor: Vec<Duration>,
    paced: Flow,
    burst: Flow,
}

/// Runs the benchmark and prints its figures.
pub fn run(samples: usize, seconds: u64, rate: u32) -> Result<()> {
    let dir = BenchDir::new()?;
    let lan = Lan::new()?;
    println!(
        "zos bench input: master and zombie in two network namespaces joined by veth, Xvfb 1280x800 screens; \
         {samples} keys one at a time, then pointer motion at {rate}/s for {seconds} s, then as fast as possible"
    );
    let count = (u64::from(rate) * seconds) as usize;

    let ours = {
        let (m, z) = (lan.xvfb(&lan.m)?, lan.xvfb(&lan.z)?);
        let driven = ours::start(&lan, &dir.0, &m.display, &z.display).with_context(|| {
            format!(
                "setting up ZOS (logs: {})",
                dir.logs("master.log", "zombie.log")
            )
        })?;
        let (display, cookie) = &driven.session;
        let receiver = Receiver::new(&lan.z, display, Some(cookie))?;
        let floor = Sender::new(&lan.z, display, Some(cookie))?;
        let sender = Sender::new(&lan.m, &m.display, None)?;
        // The walk starts well inside the session (screens are the same size).
        sender.motion(200, 400)?;
        let figures =
            measure(&sender, &floor, &receiver, samples, count, rate).with_context(|| {
                format!(
                    "measuring ZOS (logs: {})",
                    dir.logs("master.log", "zombie.log")
                )
            })?;
        drop(driven);
        figures
    };
    print("ZOS (Noise session, Xephyr)", &ours);

    let barrier = (|| -> Result<Figures> {
        let (m, z) = (lan.xvfb(&lan.m)?, lan.xvfb(&lan.z)?);
        let running = barrier::start(&lan, &dir.0, &m.display, &z.display)?;
        let receiver = Receiver::new(&lan.z, &z.display, None)?;
        let sender = Sender::new(&lan.m, &m.display, None)?;
        let floor = Sender::new(&lan.z, &z.display, None)?;
        barrier::switch_to_client(&sender, &receiver)?;
        let figures = measure(&sender, &floor, &receiver, samples, count, rate)?;
        drop(running);
        Ok(figures)
    })();
    match barrier {
        Ok(figures) => {
            print("Barrier 2.4 (TLS, mutual certificates)", &figures);
            let (a, b) = (percentile(&ours.keys, 0.5), percentile(&figures.keys, 0.5));
            println!(
                "median key latency: ZOS {:.3} ms, Barrier {:.3} ms (ZOS {:.1}x {})",
                ms(a),
                ms(b),
                if a < b { ms(b) / ms(a) } else { ms(a) / ms(b) },
                if a < b { "faster" } else { "slower" }
            );
        }
        Err(e) => println!(
            "Barrier 2.4: could not be measured here: {e:#} (logs: {})",
            dir.logs("barriers.log", "barrierc.log")
        ),
    }
    Ok(())
}

/// Key latencies (through the system and straight into the far display),
/// a paced flow and a burst.
fn measure(
    sender: &Sender,
    floor: &Sender,
    receiver: &Receiver,
    samples: usize,
    count: usize,
    rate: u32,
) -> Result<Figures> {
    let keys = key_latencies(sender, receiver, samples)?;
    let floor = key_latencies(floor, receiver, samples)?;
    let paced = motion_flow(sender, receiver, count, rate)?;
    let burst = motion_flow(sender, receiver, count.min(5000), 0)?;
    Ok(Figures {
        keys,
        floor,
        paced,
        burst,
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn print(name: &str, f: &Figures) {
    let (k50, k99) = (percentile(&f.keys, 0.5), percentile(&f.keys, 0.99));
    let (f50, f99) = (percentile(&f.floor, 0.5), percentile(&f.floor, 0.99));
    println!("{name}:");
    println!(
        "  key, master's display -> far window: median {:.3} ms, p99 {:.3} ms (n={})",
        ms(k50),
        ms(k99),
        f.keys.len()
    );
    println!(
        "  floor, XTest on the far display itself: median {:.3} ms, p99 {:.3} ms; added by the crossing: median {:.3} ms, p99 {:.3} ms",
        ms(f50),
        ms(f99),
        ms(k50.saturating_sub(f50)),
        ms(k99.saturating_sub(f99))
    );
    for (what, flow) in [("paced", &f.paced), ("burst", &f.burst)] {
        println!(
            "  motion {what}: sent {} at {:.0}/s, received {} at {:.0}/s, complete and in order: {}; lag after the last event {:.3} ms",
            flow.sent,
            flow.sent_rate,
            flow.received,
            flow.received_rate,
            if flow.in_order { "yes" } else { "NO" },
            ms(flow.tail),
        );
        if flow.in_order {
            println!(
                "    latency median of the first tenth {:.3} ms, of the last tenth {:.3} ms (drift {:+.3} ms), p99 {:.3} ms",
                ms(flow.first_tenth),
                ms(flow.last_tenth),
                ms(flow.last_tenth) - ms(flow.first_tenth),
                ms(flow.p99)
            );
        }
    }
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
