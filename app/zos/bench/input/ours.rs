//! ZOS's side of the comparison: a master daemon on the master's screen,
//! a zombie daemon on the zombie's screen (each in its namespace, talking
//! over the veth pair), paired by address, the zombie dominated at
//! `complete` so it opens its ZOS session, and the master driving it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use zos_daemon::Paths;
use zos_netproto::Level;
use zos_netproto::control::{Reply, Request};

use super::lan::{Guard, Lan, ZOMBIE_ADDR};
use crate::commands::ask;

/// The zombie's session port.
const ZOMBIE_PORT: u16 = 7411;

/// Two daemons, the zombie dominated and driven.
pub struct Driven {
    /// The ZOS session's display and cookie.
    pub session: (String, PathBuf),
    daemons: Vec<Guard>,
    runtimes: Vec<PathBuf>,
}

impl Drop for Driven {
    fn drop(&mut self) {
        // The daemons first: their runtime directories go after them.
        self.daemons.clear();
        for dir in &self.runtimes {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Sets it up; `dir` holds the homes and logs.
pub fn start(lan: &Lan, dir: &Path, master_screen: &str, zombie_screen: &str) -> Result<Driven> {
    let exe = std::env::current_exe()?;
    let master_home = dir.join("master");
    let zombie_home = dir.join("zombie");
    let master_paths = Paths::resolve(Some(master_home.clone()))?;
    let zombie_paths = Paths::resolve(Some(zombie_home.clone()))?;
    let home = |p: &Path| p.to_string_lossy().into_owned();
    let port = ZOMBIE_PORT.to_string();
    let mut zombie_cmd = lan.command(
        &lan.z,
        &exe,
        &[
            "--home",
            &home(&zombie_home),
            "zombie",
            "--name",
            "bench-z",
            "--port",
            &port,
            "--interface",
            "lo",
            "--auto-accept",
            "--no-viewers",
        ],
    );
    zombie_cmd
        .env("DISPLAY", zombie_screen)
        .env_remove("XAUTHORITY");
    let zombie = lan.spawn(zombie_cmd, &dir.join("zombie.log"))?;
    let mut master_cmd = lan.command(
        &lan.m,
        &exe,
        &[
            "--home",
            &home(&master_home),
            "master",
            "--name",
            "bench-m",
            "--interface",
            "lo",
        ],
    );
    master_cmd
        .env("DISPLAY", master_screen)
        .env_remove("XAUTHORITY");
    let master = lan.spawn(master_cmd, &dir.join("master.log"))?;
    crate::demo::wait_for_socket(&master_paths, "the bench master")?;
    crate::demo::wait_for_socket(&zombie_paths, "the bench zombie")?;

    let Reply::PairCode(code) = ask(
        &zombie_paths,
        &Request::PairCode {
            level: Level::Complete,
        },
    )?
    else {
        bail!("the zombie gave no pairing code")
    };
    let address = format!("{ZOMBIE_ADDR}:{ZOMBIE_PORT}");
    ask(
        &master_paths,
        &Request::Pair {
            host: address.clone(),
            code: code.code,
        },
    )?;
    match ask(
        &master_paths,
        &Request::Dominate {
            host: address,
            level: Level::Complete,
        },
    )? {
        Reply::Dominated { .. } => {}
        other => bail!("unexpected answer to dominate: {other:?}"),
    }
    let session = wait_session(&zombie_paths)?;
    // The master hears the session's input channel a moment later.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let request = Request::Drive {
            host: Some("bench-z".into()),
            edge: None,
            display: None,
            xauthority: None,
        };
        match ask(&master_paths, &request) {
            Ok(Reply::Driving { .. }) => break,
            Ok(other) => bail!("unexpected answer to drive: {other:?}"),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    Ok(Driven {
        session,
        daemons: vec![zombie, master],
        runtimes: vec![master_paths.runtime.clone(), zombie_paths.runtime.clone()],
    })
}

/// The ZOS session's display and cookie, once the zombie reports it.
fn wait_session(zombie: &Paths) -> Result<(String, PathBuf)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Reply::Status(status) = ask(zombie, &Request::Status)?
            && let Some(s) = status.session
        {
            return Ok((s.display, PathBuf::from(s.xauthority)));
        }
        if Instant::now() > deadline {
            bail!("the zombie opened no ZOS session within 20 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
