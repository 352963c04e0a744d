//! `zos bench migrate`: a master and a zombie daemon on this machine (mDNS on `lo`), paired,
//! the zombie dominated at level complete and a work folder exported.
//!
//! 1. The session's own encrypted throughput (one channel, in this process), then for each
//!    size (4 MiB, 256 MiB, 1 GiB of task memory: per MiB half SHA-256 output, half text, so
//!    codecs have something to do but not everything) and codec (none, lz4, zstd, auto):
//!    the task moved to the zombie and back, `--runs` times; medians of the total time, the
//!    time the task is stopped (every phase but the check: from the freeze until the copy
//!    runs on the other side) and the image's transfer rate (raw image bytes over the
//!    send-image phase) as a fraction of the session's throughput.
//! 2. The paper's experiment: the time to dominate the zombie with 1, 2, 4, 8 and 16 tasks,
//!    half shared apps (`xeyes` in its own Xvnc) and half migrants of 64 MiB moved there
//!    right after (`zos dominate --with-tasks`): tm = zt + fs + xt + Σ pt, a table and a PNG
//!    plot. The zombie opens no viewer windows (no display here), so xt is the task list
//!    being shown.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use zos_daemon::Paths;
use zos_netproto::Level;
use zos_netproto::control::{self, Compression, Reply, Request};

use super::median;
use crate::commands::ask;
use crate::demo::{Daemon, start_bench_pair};

/// The zombie's name in the bench.
const ZOMBIE: &str = "bench-zombie";

/// A migrant holding `MIB` MiB until `STOP` exists.
const HOLDER: &str = r#"
import hashlib, os, sys, time
mib, stop = int(sys.argv[1]), sys.argv[2]
half = b''.join(hashlib.sha256(i.to_bytes(4, 'little')).digest() for i in range(1 << 14))
text = (b'the migrant keeps its memory across hosts ' * 13000)[:1 << 19]
data = bytearray(mib << 20)
for off in range(0, len(data), 1 << 20):
    data[off:off + (1 << 19)] = half
    data[off + (1 << 19):off + (1 << 20)] = text
    data[off] = (off >> 20) & 0xff
print('ready', flush=True)
while not os.path.exists(stop):
    time.sleep(0.05)
"#;

/// Two daemons, paired, the zombie dominated.
pub(super) struct Lan {
    pub(super) master: Paths,
    pub(super) work: PathBuf,
    python: String,
    next_holder: u32,
    _zombie: Daemon,
    _master: Daemon,
    dir: PathBuf,
}

impl Drop for Lan {
    fn drop(&mut self) {
        let _ = std::fs::write(self.work.join("stop"), "");
        let _ = ask(
            &self.master,
            &Request::Release {
                host: ZOMBIE.into(),
                force: true,
            },
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Lan {
    pub(super) fn start() -> Result<Lan> {
        let dir = std::env::temp_dir().join(format!("zos-bench-migrate-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let master_paths = Paths::resolve(Some(dir.join("master")))?;
        let zombie_paths = Paths::resolve(Some(dir.join("zombie")))?;
        let work = dir.join("work");
        std::fs::create_dir_all(&work)?;
        let mut store = zos_fileshare::ExportStore::load(&master_paths.exports())?;
        store.add(&work, zos_fileshare::Access::ReadWrite, None)?;
        let (master, zombie) = start_bench_pair(&master_paths, &zombie_paths, ZOMBIE)?;
        let python = ["/usr/bin/python3", "/usr/local/bin/python3"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("python3")
            .to_string();
        std::fs::write(work.join("holder.py"), HOLDER)?;
        Ok(Lan {
            master: master_paths,
            work,
            python,
            next_holder: 0,
            _zombie: zombie,
            _master: master,
            dir,
        })
    }

    pub(super) fn dominate(&self) -> Result<Vec<(String, u64)>> {
        match control::call(
            &self.master.socket(),
            &Request::Dominate {
                host: ZOMBIE.into(),
                level: Level::Complete,
            },
            |_| {},
        )? {
            Reply::Dominated { timing, .. } => Ok(timing),
            other => bail!("dominate: {other:?}"),
        }
    }

    pub(super) fn release(&self) -> Result<()> {
        let request = Request::Release {
            host: ZOMBIE.into(),
            force: false,
        };
        match control::call(&self.master.socket(), &request, |_| {})? {
            Reply::Released { .. } => Ok(()),
            other => bail!("release: {other:?}"),
        }
    }

    /// A migrant holding `mib` MiB, ready; its id.
    fn holder(&mut self, mib: u32) -> Result<u64> {
        self.next_holder += 1;
        let stop = self.work.join(format!("stop-{}", self.next_holder));
        let log = self.work.join(format!("holder-{}.log", self.next_holder));
        let script = format!(
            "{} {} {mib} {} > {}",
            self.python,
            self.work.join("holder.py").display(),
            stop.display(),
            log.display()
        );
        let request = Request::RunMigrant {
            argv: vec!["sh".into(), "-c".into(), format!("exec {script}")],
            cwd: self.work.display().to_string(),
            env: vec!["PATH=/usr/bin:/bin".into(), "LANG=C.UTF-8".into()],
        };
        let Reply::Started { task } = ask(&self.master, &request)? else {
            bail!("run --migrant: unexpected reply")
        };
        let t = Instant::now();
        while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("ready")) {
            if t.elapsed().as_secs() > 120 {
                bail!("the task of {mib} MiB did not get ready");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Ok(task.id)
    }

    fn shared(&self) -> Result<u64> {
        let request = Request::Run {
            shared: true,
            argv: vec!["xeyes".into()],
        };
        match ask(&self.master, &request)? {
            Reply::Started { task } => Ok(task.id),
            other => bail!("run --shared: {other:?}"),
        }
    }

    /// Moves `task` there (`to` = the zombie) or home, stop-and-copy; (phases, image bytes).
    fn move_task(&self, task: u64, there: bool, compress: Compression) -> Result<Moved> {
        self.move_how(task, there, compress, false)
    }

    /// Moves `task` there or home, live or stop-and-copy.
    pub(super) fn move_how(
        &self,
        task: u64,
        there: bool,
        compress: Compression,
        live: bool,
    ) -> Result<Moved> {
        let request = if there {
            Request::Migrate {
                task,
                host: ZOMBIE.into(),
                compress,
                stop_and_copy: !live,
                image_every_s: None,
            }
        } else {
            Request::Home {
                task,
                from_image: false,
                stop_and_copy: !live,
            }
        };
        match control::call(&self.master.socket(), &request, |_| {})? {
            Reply::Moved {
                phases,
                image_bytes,
                precopy,
                ..
            } => Ok(Moved {
                phases,
                image_bytes,
                precopy,
            }),
            Reply::Error { message } => bail!("task {task}: {message}"),
            other => bail!("task {task}: {other:?}"),
        }
    }
}

/// One move's figures.
pub(super) struct Moved {
    pub(super) phases: Vec<(String, u64)>,
    pub(super) image_bytes: u64,
    /// How a live move's pre-copy went.
    pub(super) precopy: Option<String>,
}

impl Moved {
    pub(super) fn total_s(&self) -> f64 {
        self.phases.iter().map(|(_, us)| *us as f64).sum::<f64>() / 1e6
    }

    pub(super) fn stopped_s(&self) -> f64 {
        self.phases
            .iter()
            .filter(|(p, _)| p != "check" && p != "pre-copy")
            .map(|(_, us)| *us as f64)
            .sum::<f64>()
            / 1e6
    }

    fn rate(&self) -> f64 {
        let us = self
            .phases
            .iter()
            .find(|(p, _)| p == "send-image")
            .map(|(_, us)| *us)
            .unwrap_or(0);
        self.image_bytes as f64 / (us.max(1) as f64 / 1e6)
    }
}

/// Runs the benchmark (see the module docs); the plot goes to `png`.
pub fn run(runs: usize, sizes: &[u32], png: &Path) -> Result<()> {
    println!(
        "zos bench migrate: {} cores, load {} (the machine may be shared), median of {runs} run(s)",
        zos_daemon::sysinfo::cores(),
        super::input::load_average()
    );
    let rt = tokio::runtime::Runtime::new()?;
    let session = rt.block_on(super::session_throughput(1 << 30))?.rate;
    println!(
        "session throughput (one encrypted channel, loopback): {:.1} MB/s",
        session / 1e6
    );
    let mut lan = Lan::start().context("set up the daemons")?;
    lan.dominate()?;
    println!(
        "\n{:>8} {:<5} {:<5} {:>9} {:>9} {:>10} {:>10} {:>8}",
        "memory", "codec", "move", "image MiB", "total ms", "stopped ms", "rate MB/s", "session"
    );
    for &mib in sizes {
        let task = lan.holder(mib)?;
        for (codec, name) in [
            (Compression::None, "none"),
            (Compression::Lz4, "lz4"),
            (Compression::Zstd, "zstd"),
            (Compression::Auto, "auto"),
        ] {
            let mut there = Vec::new();
            let mut back = Vec::new();
            for _ in 0..runs {
                there.push(lan.move_task(task, true, codec)?);
                back.push(lan.move_task(task, false, codec)?);
            }
            for (dir, moves) in [("there", &there), ("home", &back)] {
                let rate = median(moves.iter().map(Moved::rate).collect());
                println!(
                    "{:>5} MiB {:<5} {:<5} {:>9.1} {:>9.1} {:>10.1} {:>10.1} {:>7.0}%",
                    mib,
                    name,
                    dir,
                    moves[0].image_bytes as f64 / 1048576.0,
                    median(moves.iter().map(|m| m.total_s() * 1e3).collect()),
                    median(moves.iter().map(|m| m.stopped_s() * 1e3).collect()),
                    rate / 1e6,
                    100.0 * rate / session
                );
            }
        }
        std::fs::write(lan.work.join(format!("stop-{}", lan.next_holder)), "")?;
    }
    lan.release()?;
    println!(
        "(`home` with lz4/zstd/auto: the zombie compresses by the codec the master asks; `auto` picks per chunk by the link's measured rate and each codec's measured speed)"
    );
    let rows = domination(&mut lan, runs)?;
    super::migrate_plot::draw(&rows, png)?;
    println!("plot: {}", png.display());
    Ok(())
}

/// One row of the paper's experiment.
pub struct DomRow {
    /// Tasks in all.
    pub tasks: usize,
    /// zt, fs, xt and Σ pt, seconds.
    pub zt: f64,
    /// The shared folders' mount.
    pub fs: f64,
    /// The display set-up.
    pub xt: f64,
    /// The migrants' moves.
    pub pt: f64,
}

impl DomRow {
    /// tm = zt + fs + xt + Σ pt.
    pub fn tm(&self) -> f64 {
        self.zt + self.fs + self.xt + self.pt
    }
}

fn domination(lan: &mut Lan, runs: usize) -> Result<Vec<DomRow>> {
    println!(
        "\ndominating with n tasks (half shared apps, half migrants of 64 MiB moved at once), median of {runs}:"
    );
    println!(
        "{:>3} {:>6} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}",
        "n", "shared", "migrant", "zt ms", "fs ms", "xt ms", "Σpt ms", "tm ms"
    );
    let (mut shared, mut migrants) = (Vec::new(), Vec::new());
    let mut rows = Vec::new();
    for n in [1usize, 2, 4, 8, 16] {
        let (want_s, want_m) = (n / 2, n - n / 2);
        while shared.len() < want_s {
            shared.push(lan.shared()?);
        }
        while migrants.len() < want_m {
            migrants.push(lan.holder(64)?);
        }
        let mut samples: Vec<DomRow> = Vec::new();
        for _ in 0..runs {
            let timing = lan.dominate()?;
            let part = |name: &str| {
                timing
                    .iter()
                    .find(|(p, _)| p == name)
                    .map(|(_, us)| *us as f64 / 1e6)
                    .unwrap_or(0.0)
            };
            let mut pt = 0.0;
            for &task in &migrants {
                pt += lan.move_task(task, true, Compression::Auto)?.total_s();
            }
            samples.push(DomRow {
                tasks: n,
                zt: part("zt"),
                fs: part("fs"),
                xt: part("xt"),
                pt,
            });
            lan.release()?;
        }
        let m = |f: &dyn Fn(&DomRow) -> f64| median(samples.iter().map(f).collect());
        let row = DomRow {
            tasks: n,
            zt: m(&|r| r.zt),
            fs: m(&|r| r.fs),
            xt: m(&|r| r.xt),
            pt: m(&|r| r.pt),
        };
        println!(
            "{:>3} {:>6} {:>8} {:>8.1} {:>8.1} {:>8.1} {:>9.1} {:>9.1}",
            n,
            want_s,
            want_m,
            row.zt * 1e3,
            row.fs * 1e3,
            row.xt * 1e3,
            row.pt * 1e3,
            row.tm() * 1e3
        );
        rows.push(row);
    }
    for i in 1..=lan.next_holder {
        let _ = std::fs::write(lan.work.join(format!("stop-{i}")), "");
    }
    Ok(rows)
}
