//! `zos bench snapshot`: a master daemon alone (mDNS on `lo`) runs a Python migrant holding
//! `--mib` MiB (every page written); the bench takes its first snapshot (whole), then
//! `--runs` times has it write `--changed-mib` MiB of fresh bytes and takes an incremental
//! snapshot; finally it rolls the task back to the last one. It prints what the daemon
//! measured: the time the task was stopped for each snapshot, the bytes written, the restore
//! time of the rollback.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use zos_daemon::Paths;
use zos_netproto::control::{Reply, Request, SnapshotInfo};

use super::median;
use crate::commands::ask;
use crate::demo::{Daemon, spawn, wait_for_socket};
use crate::snapshots::bytes;

/// The migrant: holds `MIB` MiB, and on each `go-N` file writes `CHANGED` MiB afresh.
const DIRTIER: &str = r#"
import os, sys, time
mib, changed, work = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
data = bytearray(mib << 20)
for off in range(0, len(data), 4096):
    data[off] = (off >> 12) & 0xff
open(os.path.join(work, 'ready'), 'w').close()
n, pos, step = 0, 0, changed << 20
while not os.path.exists(os.path.join(work, 'stop')):
    if os.path.exists(os.path.join(work, 'go-%d' % n)):
        if pos + step > len(data):
            pos = 0
        data[pos:pos + step] = os.urandom(step)
        pos += step
        open(os.path.join(work, 'done-%d' % n), 'w').close()
        n += 1
    time.sleep(0.01)
"#;

/// The bench's master and its work folder, removed when dropped.
struct Setup {
    paths: Paths,
    work: PathBuf,
    dir: PathBuf,
    _master: Daemon,
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::write(self.work.join("stop"), "");
        std::thread::sleep(Duration::from_millis(100));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs the bench (see the module docs).
pub fn run(mib: u32, changed_mib: u32, runs: usize) -> Result<()> {
    if changed_mib > mib {
        bail!("--changed-mib must not exceed --mib");
    }
    let dir = std::env::temp_dir().join(format!("zos-bench-snapshot-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let paths = Paths::resolve(Some(dir.join("master")))?;
    let work = dir.join("work");
    std::fs::create_dir_all(&work)?;
    let master = spawn(
        &paths.home,
        &["master", "--name", "bench-master", "--interface", "lo"],
        "bench master",
    )?;
    wait_for_socket(&paths, "the bench master")?;
    let setup = Setup {
        paths,
        work,
        dir,
        _master: master,
    };
    std::fs::write(setup.work.join("dirtier.py"), DIRTIER)?;
    let python = ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("python3");
    let work = setup.work.to_string_lossy().into_owned();
    let reply = ask(
        &setup.paths,
        &Request::RunMigrant {
            argv: vec![
                python.into(),
                format!("{work}/dirtier.py"),
                mib.to_string(),
                changed_mib.to_string(),
                work.clone(),
            ],
            cwd: work.clone(),
            env: vec!["PATH=/usr/local/bin:/usr/bin:/bin".into()],
        },
    )?;
    let Reply::Started { task } = reply else {
        bail!("the migrant did not start: {reply:?}")
    };
    let task = task.id;
    wait_file(&setup.work.join("ready"), Duration::from_secs(300))?;
    println!(
        "snapshots of a {mib} MiB migrant (python, every page written), {changed_mib} MiB changed between two"
    );
    let first = snapshot(&setup.paths, task)?;
    println!(
        "  first (whole):     task stopped {:>8.1} ms, {} written",
        first.frozen_us as f64 / 1e3,
        bytes(first.bytes)
    );
    let mut stops = Vec::new();
    let mut sizes = Vec::new();
    let mut last = first.clone();
    for n in 0..runs {
        std::fs::write(setup.work.join(format!("go-{n}")), "")?;
        wait_file(
            &setup.work.join(format!("done-{n}")),
            Duration::from_secs(60),
        )?;
        last = snapshot(&setup.paths, task)?;
        if last.kind != "delta" {
            bail!("snapshot {} was {}, not incremental", last.id, last.kind);
        }
        stops.push(last.frozen_us as f64 / 1e3);
        sizes.push(last.bytes as f64);
    }
    if !stops.is_empty() {
        let (lo, hi) = (
            stops.iter().cloned().fold(f64::MAX, f64::min),
            stops.iter().cloned().fold(0.0, f64::max),
        );
        println!(
            "  incremental:       task stopped {:>8.1} ms (median of {}, {lo:.1}–{hi:.1}), {} written (median)",
            median(stops.clone()),
            stops.len(),
            bytes(median(sizes) as u64)
        );
    }
    let t = Instant::now();
    let reply = ask(
        &setup.paths,
        &Request::Rollback {
            task,
            snapshot: last.id.to_string(),
        },
    )?;
    let Reply::RolledBack { restore_us, .. } = reply else {
        bail!("rollback: {reply:?}")
    };
    println!(
        "  rollback to {} (chain of {}): restored in {:.2} s ({:.2} s for the request)",
        last.id,
        bytes(last.chain_bytes),
        restore_us as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    drop(setup);
    Ok(())
}

fn snapshot(paths: &Paths, task: u64) -> Result<SnapshotInfo> {
    match ask(paths, &Request::Snapshot { task, name: None })? {
        Reply::SnapshotTaken { snapshot, .. } => Ok(snapshot),
        other => bail!("snapshot: {other:?}"),
    }
}

fn wait_file(path: &Path, limit: Duration) -> Result<()> {
    let start = Instant::now();
    while !path.exists() {
        if start.elapsed() > limit {
            bail!("{} did not appear within {limit:?}", path.display());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}
