//! The pod figures of `zos bench checkpoint`: a pod whose task (python3) holds 64 MiB of dirty
//! memory, checkpointed to tmpfs and restored, five times; medians are reported.

use super::{MountPlan, Pod, PodSpec, default_init_path, spawn};
use crate::error::{Error, Result, SysContext, io_err};
use crate::sys::mem::FileMap;
use crate::{AfterDump, TreeDumpOptions, TreeRestoreOptions, checkpoint_tree, restore_tree};
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

const RUNS: usize = 5;
const TASK: &str = "import sys\nb = bytearray(b'\\x01') * (64 << 20)\n\
                    print('READY', flush=True)\nsys.stdin.readline()\n";

#[derive(Default, Clone, Copy)]
struct Sample {
    ckpt: Duration,
    frozen: Duration,
    frozen_live: Duration,
    restore: Duration,
    image: u64,
}

/// Start the workload pod and wait until its task is ready.
fn workload() -> Result<Pod> {
    let spec = PodSpec {
        init: default_init_path(),
        argv: vec!["python3".into(), "-c".into(), TASK.into()],
        cwd: "/".into(),
        env: vec!["PATH=/usr/local/bin:/usr/bin:/bin".into()],
        inside_uid: crate::sys::euid(),
        inside_gid: crate::sys::egid(),
        mounts: MountPlan::default(),
    };
    let mut pod = spawn(&spec)?;
    let master = pod
        .pty_master()
        .ok_or_else(|| Error::Restore("no pty".into()))?
        .try_clone_to_owned()
        .sys(|| "dup".into())?;
    let mut f = std::fs::File::from(master);
    let mut seen = Vec::new();
    let t = Instant::now();
    while !String::from_utf8_lossy(&seen).contains("READY") {
        let mut buf = [0u8; 256];
        let n = f.read(&mut buf).unwrap_or(0);
        if n == 0 || t.elapsed() > Duration::from_secs(30) {
            let _ = pod.kill();
            return Err(Error::Restore(format!(
                "benchmark pod did not start: {}",
                String::from_utf8_lossy(&seen)
            )));
        }
        seen.extend_from_slice(&buf[..n]);
    }
    Ok(pod)
}

fn one(file: &Path) -> Result<Sample> {
    let mut pod = workload()?;
    let ckpt = |after| -> Result<crate::TreeDumpStats> {
        let f = std::fs::File::create(file).map_err(io_err(file))?;
        checkpoint_tree(pod.pid(), &TreeDumpOptions { after }, f)
    };
    let live = ckpt(AfterDump::LeaveRunning);
    let d = match live.and_then(|l| ckpt(AfterDump::Kill).map(|d| (l, d))) {
        Ok(v) => v,
        Err(e) => {
            let _ = pod.kill();
            return Err(e);
        }
    };
    pod.wait()?;
    let t = Instant::now();
    let map =
        FileMap::new(&std::fs::File::open(file).map_err(io_err(file))?).map_err(io_err(file))?;
    let mut restored = restore_tree(map.bytes(), &TreeRestoreOptions::default())?.resume()?;
    let restore = t.elapsed();
    let alive = restored.wait_timeout(Duration::from_millis(50))?.is_none();
    // The restored task goes on reading its line: give it one, and it ends with code 0.
    let ended = match restored.take_pty_master() {
        Some(m) if alive => {
            // Keep the master open until the end: closing it hangs the terminal up (SIGHUP).
            let mut master = std::fs::File::from(m);
            let _ = master.write_all(b"\n");
            restored.wait_timeout(Duration::from_secs(10))?
        }
        _ => None,
    };
    if ended != Some(0) {
        let _ = restored.kill();
        return Err(Error::Restore(format!(
            "benchmark pod after restore: alive {alive}, ended with {ended:?}"
        )));
    }
    Ok(Sample {
        ckpt: d.1.total,
        frozen: d.1.frozen,
        frozen_live: d.0.frozen,
        restore,
        image: d.1.bytes_written,
    })
}

fn median<T: Copy + Ord>(mut v: Vec<T>) -> T {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// Run the pod benchmark and print its table to `report`; images go to `dir` (tmpfs).
pub fn run(report: &mut dyn std::io::Write, dir: &Path) -> Result<()> {
    let w = |r: &mut dyn std::io::Write, s: String| writeln!(r, "{s}").map_err(io_err("report"));
    let file = dir.join("pod.zckpt");
    let mut s = Vec::new();
    for _ in 0..RUNS {
        s.push(one(&file));
    }
    let _ = std::fs::remove_file(&file);
    let s: Vec<Sample> = s.into_iter().collect::<Result<_>>()?;
    w(
        report,
        format!("pod: zos-pod-init + python3 holding 64 MiB, median of {RUNS} runs"),
    )?;
    w(
        report,
        "| pod | checkpoint | frozen | frozen (leave-running) | restore (to running) | image size |"
            .into(),
    )?;
    w(report, "|---|---|---|---|---|---|".into())?;
    w(
        report,
        format!(
            "| 2 processes, 64 MiB dirty | {} | {} | {} | {} | {:.1} MiB |",
            ms(median(s.iter().map(|x| x.ckpt).collect())),
            ms(median(s.iter().map(|x| x.frozen).collect())),
            ms(median(s.iter().map(|x| x.frozen_live).collect())),
            ms(median(s.iter().map(|x| x.restore).collect())),
            median(s.iter().map(|x| x.image).collect()) as f64 / (1 << 20) as f64,
        ),
    )
}
