//! Checkpoint/restore figures: a process with 1 GiB and one with 4 MiB of dirty anonymous
//! memory, checkpointed to tmpfs and restored, five times each; medians are reported.
//! "frozen" is for a checkpoint that ends the process (until SIGKILL); "frozen (leave-running)"
//! is how long a checkpoint that lets the process go on stops it. A third row is the 1 GiB
//! process of another user (nobody), whose image root signs and checks (HMAC-SHA256). CRIU is
//! measured in the same run when it is installed.

mod criu;

use crate::error::{Error, Result, SysContext, io_err};
use crate::{DumpOptions, ImageKey, RestoreOptions, checkpoint, restore};
use std::path::PathBuf;
use std::time::Duration;

const RUNS: usize = 5;

#[derive(Default, Clone, Copy)]
struct Sample {
    ckpt: Duration,
    frozen: Duration,
    frozen_live: Duration,
    restore: Duration,
    image: u64,
    memory: u64,
    peak_ckpt: u64,
    peak_restore: u64,
}

/// Reset this process's peak RSS (`/proc/self/clear_refs` 5) and return a reader of it.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// One workload: its size and whose it is (`Some(uid)`: another user's, so signed).
#[derive(Clone, Copy)]
struct Workload {
    label: &'static str,
    bytes: usize,
    uid: Option<u32>,
}

fn one(w: Workload, dir: &PathBuf, key: &ImageKey) -> Result<Sample> {
    let pid = crate::sys::spawn::spawn_dirty(w.bytes, w.uid).sys(|| "start workload".into())?;
    let _ = std::fs::remove_dir_all(dir);
    let memory = crate::dump::resident_memory(pid);
    let dump = DumpOptions {
        key: Some(key.clone()),
        ..Default::default()
    };
    let live = checkpoint(
        pid,
        dir,
        &DumpOptions {
            leave_running: true,
            ..dump.clone()
        },
    );
    let live_frozen = live.as_ref().map(|s| s.frozen).unwrap_or_default();
    let _ = std::fs::remove_dir_all(dir);
    reset_peak();
    let d = match live.and_then(|_| checkpoint(pid, dir, &dump)) {
        Ok(d) => d,
        Err(e) => {
            let _ = crate::sys::kill(pid, libc::SIGKILL);
            let _ = crate::wait_child(pid, Duration::from_secs(5));
            return Err(e);
        }
    };
    let peak_ckpt = peak_kib();
    // The checkpoint ended it; as its parent we reap it.
    let _ = crate::wait_child(pid, Duration::from_secs(10));
    reset_peak();
    let opts = RestoreOptions {
        key: Some(key.clone()),
        ..Default::default()
    };
    let r = restore(dir, &opts)?;
    let peak_restore = peak_kib();
    let alive = crate::wait_child(r.pid, Duration::from_millis(20))?.is_none();
    let _ = crate::sys::kill(r.pid, libc::SIGKILL);
    crate::wait_child(r.pid, Duration::from_secs(10))?;
    if !alive {
        return Err(Error::Restore(
            "benchmark workload died after restore".into(),
        ));
    }
    let _ = std::fs::remove_dir_all(dir);
    Ok(Sample {
        ckpt: d.total,
        frozen: d.frozen,
        frozen_live: live_frozen,
        restore: r.elapsed,
        image: d.bytes_written,
        memory,
        peak_ckpt,
        peak_restore,
    })
}

fn median<T: Copy + Ord>(mut v: Vec<T>) -> T {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// Run the benchmark and print the figures table to `report`.
pub fn run(report: &mut dyn std::io::Write) -> Result<()> {
    crate::set_child_subreaper()?;
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        "/dev/shm"
    } else {
        "/tmp"
    };
    let dir = PathBuf::from(format!("{base}/zos-bench-{}", std::process::id()));
    let w = |r: &mut dyn std::io::Write, s: String| writeln!(r, "{s}").map_err(io_err("report"));
    w(
        report,
        format!("checkpoint/restore to {base} (tmpfs), median of {RUNS} runs"),
    )?;
    w(
        report,
        "| process | checkpoint | frozen | frozen (leave-running) | restore | image size | image / memory | peak RSS checkpoint | peak RSS restore |".into(),
    )?;
    w(report, "|---|---|---|---|---|---|---|---|---|".into())?;
    let key = ImageKey::generate()?;
    let workloads = [
        Workload {
            label: "1 GiB dirty",
            bytes: 1 << 30,
            uid: None,
        },
        Workload {
            label: "4 MiB dirty",
            bytes: 4 << 20,
            uid: None,
        },
        Workload {
            label: "1 GiB dirty, nobody's: signed",
            bytes: 1 << 30,
            uid: Some(65534),
        },
    ];
    for wl in workloads {
        let mut s = Vec::new();
        for _ in 0..RUNS {
            s.push(one(wl, &dir, &key)?);
        }
        let label = wl.label;
        let image = median(s.iter().map(|x| x.image).collect());
        let memory = median(s.iter().map(|x| x.memory).collect());
        w(
            report,
            format!(
                "| {label} ({:.1} MiB resident) | {} | {} | {} | {} | {:.1} MiB | {:.4} | {} MiB | {} MiB |",
                memory as f64 / (1 << 20) as f64,
                ms(median(s.iter().map(|x| x.ckpt).collect())),
                ms(median(s.iter().map(|x| x.frozen).collect())),
                ms(median(s.iter().map(|x| x.frozen_live).collect())),
                ms(median(s.iter().map(|x| x.restore).collect())),
                image as f64 / (1 << 20) as f64,
                image as f64 / memory.max(1) as f64,
                median(s.iter().map(|x| x.peak_ckpt).collect()) / 1024,
                median(s.iter().map(|x| x.peak_restore).collect()) / 1024,
            ),
        )?;
    }
    criu::report(report, &dir)?;
    crate::pod::bench::run(report, &std::path::PathBuf::from(base))?;
    w(report, "Goals: 1 GiB checkpoint and restore < 0.4 s each, 4 MiB frozen < 10 ms, image <= memory + 1 %.".into())?;
    Ok(())
}
