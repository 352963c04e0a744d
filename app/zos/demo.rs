//! `zos demo`: a master and a local demo zombie on one machine, paired, with
//! the master window.
//!
//! The demo zombie keeps its own home under the master's
//! (`HOME/demo-zombie`), so the demo never touches another instance. Both
//! daemons are child processes of this command and end with it.

use std::path::Path;
use std::process::{Child, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use zos_daemon::Paths;
use zos_netproto::Level;
use zos_netproto::control::{Reply, Request};

use crate::commands::ask;

/// Kills a child daemon when dropped.
pub(crate) struct Daemon(Child, &'static str);

impl Daemon {
    /// The daemon's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Ask politely (SIGTERM lets the zombie say goodbye over mDNS).
        let _ = std::process::Command::new("kill")
            .arg(self.0.id().to_string())
            .status();
        // A master ends its shared apps' supervisors before it exits; give
        // it the time (a SIGKILL would leave the apps running, adopted by
        // the next master of this home).
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        tracing::warn!("{} did not stop; killing it", self.1);
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `zos --home HOME ARGS…` as a daemon that ends with us.
pub(crate) fn spawn(home: &Path, args: &[&str], what: &'static str) -> Result<Daemon> {
    let exe = std::env::current_exe().context("find own executable")?;
    let mut command = std::process::Command::new(exe);
    // The daemons end (gracefully, by SIGTERM) if the demo dies.
    zos_display::die_with_parent(&mut command, libc::SIGTERM);
    let child = command
        .arg("--home")
        .arg(home)
        .args(args)
        .spawn()
        .with_context(|| format!("start {what}"))?;
    Ok(Daemon(child, what))
}

/// Waits until the daemon of `paths` answers on its control socket.
pub(crate) fn wait_for_socket(paths: &Paths, what: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if ask(paths, &Request::Status).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("{what} did not start within 10 s (see its log above)")
}

/// A bench's two daemons on this machine (mDNS on `lo`): a master named
/// `bench-master` and a zombie `zombie_name` that accepts every domination
/// and opens no viewer, paired at level complete. Both end when dropped.
pub(crate) fn start_bench_pair(
    master: &Paths,
    zombie: &Paths,
    zombie_name: &str,
) -> Result<(Daemon, Daemon)> {
    let master_daemon = spawn(
        &master.home,
        &["master", "--name", "bench-master", "--interface", "lo"],
        "bench master",
    )?;
    wait_for_socket(master, "the bench master")?;
    let zombie_daemon = spawn(
        &zombie.home,
        &[
            "zombie",
            "--name",
            zombie_name,
            "--interface",
            "lo",
            "--auto-accept",
            "--no-viewers",
        ],
        "bench zombie",
    )?;
    wait_for_socket(zombie, "the bench zombie")?;
    pair_local(master, zombie, zombie_name)?;
    Ok((master_daemon, zombie_daemon))
}

/// Waits until the master of `paths` sees the zombie `name` (of
/// `zombie_paths`, on this machine) over mDNS, then pairs them at level
/// complete with a code the zombie issues.
pub(crate) fn pair_local(paths: &Paths, zombie_paths: &Paths, name: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Reply::Hosts { hosts } = ask(paths, &Request::Hosts)?
            && hosts.iter().any(|h| h.name == name)
        {
            break;
        }
        if Instant::now() > deadline {
            bail!("the master did not discover {name} within 15 s over mDNS");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let Reply::PairCode(code) = ask(
        zombie_paths,
        &Request::PairCode {
            level: Level::Complete,
        },
    )?
    else {
        bail!("{name} gave no pairing code")
    };
    ask(
        paths,
        &Request::Pair {
            host: name.into(),
            code: code.code,
        },
    )?;
    Ok(())
}

/// Runs the demo until the window closes (or, headless, until interrupted).
pub fn run(paths: &Paths, interfaces: Vec<String>, headless: bool) -> Result<ExitCode> {
    let zombie_home = paths.home.join("demo-zombie");
    let zombie_paths = Paths::resolve(Some(zombie_home.clone()))?;
    let mut iface_args: Vec<String> = Vec::new();
    for i in &interfaces {
        iface_args.push("--interface".into());
        iface_args.push(i.clone());
    }
    let iface_refs: Vec<&str> = iface_args.iter().map(String::as_str).collect();

    let mut master_args = vec!["master"];
    master_args.extend(&iface_refs);
    let _master = spawn(&paths.home, &master_args, "master daemon")?;
    wait_for_socket(paths, "the master daemon")?;

    // The demo zombie is this machine: it needs no one to accept.
    let mut zombie_args = vec!["zombie", "--name", "demo-zombie", "--auto-accept"];
    zombie_args.extend(&iface_refs);
    let _zombie = spawn(&zombie_home, &zombie_args, "demo zombie")?;
    wait_for_socket(&zombie_paths, "the demo zombie")?;

    pair_local(paths, &zombie_paths, "demo-zombie")?;
    println!("demo: master and demo-zombie are running and paired.");
    println!("      try: zos --home {} hosts", paths.home.display());
    println!(
        "           zos --home {} ping demo-zombie --count 3",
        paths.home.display()
    );

    if headless {
        let runtime = tokio::runtime::Runtime::new()?;
        runtime.block_on(async {
            let token = zos_daemon::CancellationToken::new();
            zos_daemon::cancel_on_signals(token.clone());
            token.cancelled().await;
        });
    } else {
        let home = paths.home.clone();
        zos_gui::run(
            paths.socket(),
            Box::new(move |task| crate::view::spawn_viewer(&home, task)),
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
