//! `zos bench migrate --live`: live moves of a task dirtying its memory at 0, 10 and
//! 100 MiB/s (checkpoint/tests/progs/dirtier.c, built here with gcc), there and back, on the
//! bench's master and zombie daemons. For each move: the total time, the final stop as the
//! migrator measured it (every phase from the freeze until the copy runs on the other side),
//! the stop as the task saw it (the longest gap between two of its 1 ms ticks that fell
//! within the move; the program prints every gap over 3 ms with its time) and how the
//! pre-copy went. Medians over `--runs`.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use zos_netproto::control::{Compression, Reply, Request};

use super::median;
use super::migrate::{Lan, Moved};
use crate::commands::ask;

const DIRTIER_C: &str = include_str!("../../../checkpoint/tests/progs/dirtier.c");
const COMMON_H: &str = include_str!("../../../checkpoint/tests/progs/common.h");

/// Wall-clock milliseconds since the epoch (the task stamps its stalls the same way).
fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1e3)
        .unwrap_or(0.0)
}

/// Builds the dirtier into `dir`; its path.
fn build(dir: &Path) -> Result<String> {
    std::fs::write(dir.join("dirtier.c"), DIRTIER_C)?;
    std::fs::write(dir.join("common.h"), COMMON_H)?;
    let out = dir.join("dirtier");
    let st = std::process::Command::new("gcc")
        .args(["-O2", "-o"])
        .arg(&out)
        .arg(dir.join("dirtier.c"))
        .status()
        .context("run gcc (package gcc)")?;
    if !st.success() {
        bail!("gcc could not build the dirtier");
    }
    Ok(out.display().to_string())
}

/// One move and the wall-clock window it took.
struct Timed {
    moved: Moved,
    from_ms: f64,
    to_ms: f64,
}

/// The longest stall the task printed within `[from, to]` (1 ms: none over 3 ms).
fn stall_within(log: &str, from: f64, to: f64) -> f64 {
    log.lines()
        .filter_map(|l| {
            let mut w = l.strip_prefix("STALL ")?.split_whitespace();
            let ms: f64 = w.next()?.parse().ok()?;
            let at: f64 = w.nth(1)?.parse().ok()?;
            (at >= from && at <= to + 50.0).then_some(ms)
        })
        .fold(1.0, f64::max)
}

/// Runs the benchmark (see the module docs) for a task of `mib` MiB.
pub fn run(runs: usize, mib: u32) -> Result<()> {
    println!(
        "zos bench migrate --live: {} cores, load {} (the machine may be shared), {mib} MiB task, median of {runs} run(s)",
        zos_daemon::sysinfo::cores(),
        super::input::load_average()
    );
    let lan = Lan::start().context("set up the daemons")?;
    lan.dominate()?;
    let prog = build(&lan.work)?;
    println!(
        "\n{:>9} {:<5} {:>9} {:>11} {:>10} {:>9}  pre-copy",
        "dirty", "move", "total ms", "stopped ms", "task gap", "image MiB"
    );
    for rate in [0u32, 10, 100] {
        let mut rows: Vec<(Timed, Timed, f64, f64)> = Vec::new();
        for run in 0..runs {
            let log = lan.work.join(format!("dirtier-{rate}-{run}.log"));
            // It ticks until both moves are done, then checks its memory.
            let stop = lan.work.join(format!("stop-dirtier-{rate}-{run}"));
            let script = format!(
                "exec {prog} {mib} {rate} 1000 {} > {}",
                stop.display(),
                log.display()
            );
            let request = Request::RunMigrant {
                argv: vec!["sh".into(), "-c".into(), script],
                cwd: lan.work.display().to_string(),
                env: vec!["PATH=/usr/bin:/bin".into(), "LANG=C.UTF-8".into()],
            };
            let Reply::Started { task } = ask(&lan.master, &request)? else {
                bail!("run --migrant: unexpected reply")
            };
            let task = task.id;
            wait_for(&log, "READY", Duration::from_secs(120))?;
            std::thread::sleep(Duration::from_millis(500));
            let timed = |there: bool| -> Result<Timed> {
                let from_ms = now_ms();
                let moved = lan.move_how(task, there, Compression::Auto, true)?;
                Ok(Timed {
                    moved,
                    from_ms,
                    to_ms: now_ms(),
                })
            };
            let there = timed(true)?;
            std::thread::sleep(Duration::from_millis(500));
            let back = timed(false)?;
            std::fs::write(&stop, "")?;
            wait_for(&log, "GAP ", Duration::from_secs(600))?;
            let text = std::fs::read_to_string(&log)?;
            if !text.contains("PASS") {
                bail!("the task's memory differs from an uninterrupted run: {text}");
            }
            let gap_there = stall_within(&text, there.from_ms, there.to_ms);
            let gap_back = stall_within(&text, back.from_ms, back.to_ms);
            rows.push((there, back, gap_there, gap_back));
        }
        for dir in ["there", "home"] {
            let pick = |r: &(Timed, Timed, f64, f64)| -> (f64, f64, f64, u64) {
                let (t, g) = if dir == "there" {
                    (&r.0, r.2)
                } else {
                    (&r.1, r.3)
                };
                (
                    t.moved.total_s() * 1e3,
                    t.moved.stopped_s() * 1e3,
                    g,
                    t.moved.image_bytes,
                )
            };
            let col = |f: &dyn Fn((f64, f64, f64, u64)) -> f64| {
                median(rows.iter().map(|r| f(pick(r))).collect())
            };
            let last = if dir == "there" {
                &rows[0].0
            } else {
                &rows[0].1
            };
            println!(
                "{:>5} MiB/s {:<5} {:>9.1} {:>11.1} {:>7.1} ms {:>9.1}  {}",
                rate,
                dir,
                col(&|p| p.0),
                col(&|p| p.1),
                col(&|p| p.2),
                col(&|p| p.3 as f64 / 1048576.0),
                last.moved
                    .precopy
                    .as_deref()
                    .unwrap_or("stop-and-copy (fallback)")
            );
            let split: Vec<String> = last
                .moved
                .phases
                .iter()
                .filter(|(p, us)| *us > 0 && p != "check" && p != "pre-copy")
                .map(|(p, us)| format!("{p} {:.1}", *us as f64 / 1e3))
                .collect();
            println!("{:>24} stop of the first run, ms: {}", "", split.join(", "));
        }
    }
    lan.release()?;
    println!(
        "(stopped: freeze + image + restore + commit as the daemons timed them; task gap: the longest pause between the task's own 1 ms ticks within the move, the stop it saw)"
    );
    Ok(())
}

fn wait_for(log: &Path, what: &str, limit: Duration) -> Result<()> {
    let t = Instant::now();
    while !std::fs::read_to_string(log).is_ok_and(|l| l.contains(what)) {
        if t.elapsed() > limit {
            bail!("the task never printed {what:?} (see {})", log.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}
