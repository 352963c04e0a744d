//! The same measurements through a real session: a master daemon and a
//! zombie daemon on this machine (mDNS on `lo`), paired, the zombie
//! dominated, the two apps run with `zos run --shared` on the master, and
//! every viewer on the zombie's side: its streams come from the zombie
//! daemon's `View` (zombie daemon → Noise session → master daemon → Xvnc),
//! its windows are `zos view TASK`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use anyhow::{Result, bail};
use zos_daemon::Paths;
use zos_netproto::control::{self, Reply, Request};

use super::{TempDir, measure::Target};
use crate::commands::ask;
use crate::demo::{Daemon, start_bench_pair};

/// The zombie's name in the bench.
const ZOMBIE: &str = "bench-zombie";

/// Two daemons, paired, the zombie dominated, the two apps shared.
pub struct SessionBench {
    /// The xterm, viewed from the zombie.
    pub xterm: Target,
    /// The animator (a 1280x800 window), viewed from the zombie.
    pub animated: Target,
    /// A small animator (a 200x200 window), viewed from the zombie.
    pub small: Target,
    // Dropped in this order: the daemons (they end the apps), their
    // runtime dirs, the homes.
    _zombie: Daemon,
    _master: Daemon,
    _runtimes: RuntimeDirs,
    _dir: TempDir,
}

impl SessionBench {
    /// Sets it all up under a fresh directory.
    pub fn start(exe: &Path) -> Result<SessionBench> {
        let dir = TempDir::new("session")?;
        let master_paths = Paths::resolve(Some(dir.0.join("master")))?;
        let zombie_paths = Paths::resolve(Some(dir.0.join("zombie")))?;
        let runtimes = RuntimeDirs(vec![
            master_paths.runtime.clone(),
            zombie_paths.runtime.clone(),
        ]);
        let (master, zombie) = start_bench_pair(&master_paths, &zombie_paths, ZOMBIE)?;
        let xterm = run_shared(&master_paths, &["xterm", "-e", "bash", "--norc"])?;
        let exe_text = exe.to_string_lossy();
        let animated = run_shared(&master_paths, &[&exe_text, "bench", "display", "--animate"])?;
        let small_size = format!("{}x{}", super::SMALL.0, super::SMALL.1);
        let small = run_shared(
            &master_paths,
            &[
                &exe_text,
                "bench",
                "display",
                "--animate",
                "--animate-size",
                &small_size,
            ],
        )?;
        match ask(
            &master_paths,
            &Request::Dominate {
                host: ZOMBIE.into(),
                level: zos_netproto::Level::Partial,
            },
        )? {
            Reply::Dominated { .. } => {}
            other => bail!("unexpected answer to dominate: {other:?}"),
        }
        // The serving side: the master's Xvnc servers (the idle ones cost
        // nothing) and both daemons.
        let mut server_pids = xvnc_pids(&master_paths.runtime);
        if server_pids.len() != 3 {
            bail!("expected the three apps' Xvnc, found {server_pids:?}");
        }
        server_pids.extend([master.pid(), zombie.pid()]);
        let target = |task: u64| -> Result<Target> {
            let socket = zombie_paths.socket();
            let home = zombie_paths.home.clone();
            let exe = exe.to_path_buf();
            let server_pids = server_pids.clone();
            Ok(Target {
                connect: Arc::new(move || {
                    control::open_stream(&socket, &Request::View { task })
                        .map_err(|e| std::io::Error::other(e.to_string()))
                }),
                spawn_window: Arc::new(move |screen: &str| {
                    let mut command = Command::new(&exe);
                    command
                        .arg("--home")
                        .arg(&home)
                        .args(["view", &task.to_string()]);
                    super::spawn_quiet_window(command, screen)
                }),
                server_pids,
            })
        };
        Ok(SessionBench {
            xterm: target(xterm)?,
            animated: target(animated)?,
            small: target(small)?,
            _zombie: zombie,
            _master: master,
            _runtimes: runtimes,
            _dir: dir,
        })
    }
}

/// Starts a shared app on the master; returns its task id.
fn run_shared(paths: &Paths, argv: &[&str]) -> Result<u64> {
    let request = Request::Run {
        shared: true,
        argv: argv.iter().map(|s| s.to_string()).collect(),
    };
    match ask(paths, &request)? {
        Reply::Started { task } => Ok(task.id),
        other => bail!("unexpected answer to run: {other:?}"),
    }
}

/// The Xvnc processes whose sockets are under `runtime`.
fn xvnc_pids(runtime: &Path) -> Vec<u32> {
    let needle = runtime.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "Xvnc")
                && std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&needle))
        })
        .collect()
}

/// The daemons' runtime dirs, removed on drop (the daemons remove their
/// own sockets; the directories stay otherwise).
struct RuntimeDirs(Vec<PathBuf>);

impl Drop for RuntimeDirs {
    fn drop(&mut self) {
        for dir in &self.0 {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
