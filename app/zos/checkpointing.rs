//! `zos checkpoint` and `zos restore`: the checkpoint engine from the command line.
//!
//! Root signs the images of other users' processes with this machine's image key
//! (`HOME/image.key`, 32 random bytes, 0600, made on first use) and needs that signature to
//! restore them under their owners' credentials; anyone restores images of their own.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use zos_checkpoint::{DumpOptions, Error, ImageKey, RestoreOptions};

/// The image key in the instance home, for root (others cannot restore other credentials, so
/// they need none). A key that cannot be had is reported and left out.
fn image_key(home: Option<PathBuf>) -> Option<ImageKey> {
    // SAFETY: geteuid has no arguments and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let key = zos_daemon::Paths::resolve(home)
        .map_err(anyhow::Error::from)
        .and_then(|p| Ok(ImageKey::load_or_create(&p.home.join("image.key"))?));
    match key {
        Ok(k) => Some(k),
        Err(e) => {
            eprintln!(
                "warning: no image key ({e:#}): images of other users cannot be signed or restored"
            );
            None
        }
    }
}

/// `zos checkpoint PID --out DIR [--leave-running]` and `zos checkpoint --check PID`.
pub fn checkpoint(
    home: Option<PathBuf>,
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
    let opts = DumpOptions {
        leave_running,
        key: image_key(home),
    };
    let stats = zos_checkpoint::checkpoint(pid, &out, &opts)
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

/// Where `zos restore` sends the restored process's standard streams.
pub struct Streams {
    /// Standard input.
    pub stdin: Option<PathBuf>,
    /// Standard output.
    pub stdout: Option<PathBuf>,
    /// Standard error.
    pub stderr: Option<PathBuf>,
}

/// `zos restore DIR [--stdin F] [--stdout F] [--stderr F] [--force]`: prints the PID.
pub fn restore(
    home: Option<PathBuf>,
    dir: &Path,
    streams: Streams,
    force: bool,
) -> Result<ExitCode> {
    let opts = RestoreOptions {
        stdin: streams.stdin,
        stdout: streams.stdout,
        stderr: streams.stderr,
        force,
        key: image_key(home),
        ..Default::default()
    };
    let stats = match zos_checkpoint::restore(dir, &opts) {
        Err(Error::OriginalRunning(pid)) => bail!(
            "restore from {}: the original process still runs as PID {pid}; stop it first, \
             or start a second copy with --force",
            dir.display()
        ),
        r => r.with_context(|| format!("restore from {}", dir.display()))?,
    };
    println!("{}", stats.pid);
    for note in &stats.notes {
        eprintln!("note: {note}");
    }
    eprintln!(
        "restored as PID {} in {:.1} ms",
        stats.pid,
        stats.elapsed.as_secs_f64() * 1e3
    );
    Ok(ExitCode::SUCCESS)
}
