//! CRIU on the same workloads, in the same run, when `criu` is installed; otherwise the figures
//! measured earlier on this VM, labelled as a reference with their source.

use super::{RUNS, median, ms};
use crate::error::{Error, Result, SysContext, io_err};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const REFERENCE: &str = "CRIU: not installed here; reference (CRIU 4.2, measured 2026-11 on \
                         this VM, ../shared/CHECKPOINT-NOTES.md): 1 GiB dump 0.57 s, restore \
                         0.82 s, frozen 0.69 s; 4 MiB dump 0.06 s, restore 0.07 s, frozen 13.5 ms.";

fn installed() -> bool {
    Command::new("criu")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn criu(args: &[&str], dir: &Path, extra: &[&std::ffi::OsStr]) -> Result<Duration> {
    let t = Instant::now();
    let st = Command::new("criu")
        .args(args)
        .arg("-D")
        .arg(dir)
        .arg("--shell-job")
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .sys(|| format!("criu {}", args[0]))?;
    if !st.success() {
        return Err(Error::Restore(format!("criu {} failed: {st}", args[0])));
    }
    Ok(t.elapsed())
}

/// Dump and restore times of one workload of `bytes` with CRIU.
fn one(bytes: usize, dir: &Path) -> Result<(Duration, Duration)> {
    let pid = crate::sys::spawn::spawn_dirty(bytes, None).sys(|| "start workload".into())?;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let dump = criu(&["dump", "-t", &pid.to_string()], dir, &[]);
    if dump.is_err() {
        let _ = crate::sys::kill(pid, libc::SIGKILL);
    }
    let _ = crate::wait_child(pid, Duration::from_secs(10));
    let dump = dump?;
    let pidfile = dir.join("restored.pid");
    let restore = criu(
        &["restore", "--restore-detached"],
        dir,
        &["--pidfile".as_ref(), pidfile.as_os_str()],
    )?;
    let restored: i32 = std::fs::read_to_string(&pidfile)
        .map_err(io_err(&pidfile))?
        .trim()
        .parse()
        .map_err(|_| Error::Restore("criu wrote no PID".into()))?;
    let _ = crate::sys::kill(restored, libc::SIGKILL);
    let _ = crate::wait_child(restored, Duration::from_secs(10));
    let _ = std::fs::remove_dir_all(dir);
    Ok((dump, restore))
}

/// Print the CRIU line(s).
pub fn report(report: &mut dyn std::io::Write, dir: &Path) -> Result<()> {
    let mut w = |s: String| writeln!(report, "{s}").map_err(io_err("report"));
    if !installed() {
        return w(REFERENCE.into());
    }
    for (label, bytes) in [("1 GiB dirty", 1usize << 30), ("4 MiB dirty", 4 << 20)] {
        let runs: Result<Vec<_>> = (0..RUNS).map(|_| one(bytes, dir)).collect();
        match runs {
            Ok(s) => w(format!(
                "CRIU here (measured in this run, median of {RUNS}): {label}: dump {}, restore {}",
                ms(median(s.iter().map(|x| x.0).collect())),
                ms(median(s.iter().map(|x| x.1).collect())),
            ))?,
            Err(e) => w(format!("CRIU here: {label}: {e}"))?,
        }
    }
    Ok(())
}
