//! `zos checkpoint` and `zos restore`: the checkpoint engine from the command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use zos_checkpoint::{DumpOptions, RestoreOptions};

/// `zos checkpoint PID --out DIR [--leave-running]` and `zos checkpoint --check PID`.
pub fn checkpoint(
    pid: i32,
    out: Option<PathBuf>,
    leave_running: bool,
    check: bool,
) -> Result<ExitCode> {
    if check {
        let report =
            zos_checkpoint::check(pid).with_context(|| format!("checking process {pid}"))?;
        if report.ok() {
            println!("process {pid} can be checkpointed");
            return Ok(ExitCode::SUCCESS);
        }
        println!("process {pid} cannot be checkpointed:");
        for reason in &report.reasons {
            println!("  - {reason}");
        }
        return Ok(ExitCode::from(2));
    }
    let Some(out) = out else {
        bail!("--out DIR is required")
    };
    let stats = zos_checkpoint::checkpoint(pid, &out, &DumpOptions { leave_running })
        .with_context(|| format!("checkpoint of process {pid} failed; it was left running"))?;
    println!(
        "checkpointed process {pid} to {}: {} pages, {:.1} MiB image, frozen {:.1} ms, total {:.1} ms{}",
        out.display(),
        stats.pages,
        stats.bytes_written as f64 / (1 << 20) as f64,
        stats.frozen.as_secs_f64() * 1e3,
        stats.total.as_secs_f64() * 1e3,
        if leave_running { " (left running)" } else { "" }
    );
    Ok(ExitCode::SUCCESS)
}

/// `zos restore DIR [--stdin F] [--stdout F] [--stderr F]`: prints the PID.
pub fn restore(
    dir: &Path,
    stdin: Option<PathBuf>,
    stdout: Option<PathBuf>,
    stderr: Option<PathBuf>,
) -> Result<ExitCode> {
    let stats = zos_checkpoint::restore(
        dir,
        &RestoreOptions {
            stdin,
            stdout,
            stderr,
        },
    )
    .with_context(|| format!("restore from {}", dir.display()))?;
    println!("{}", stats.pid);
    eprintln!(
        "restored as PID {} in {:.1} ms",
        stats.pid,
        stats.elapsed.as_secs_f64() * 1e3
    );
    Ok(ExitCode::SUCCESS)
}
