//! `zos dominate`, `zos release` (on a master and on a zombie), and on a
//! zombie `zos accept` / `zos refuse`.

use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use zos_daemon::Paths;
use zos_netproto::Level;
use zos_netproto::control::{self, Reply, Request};

use crate::commands::ask;

/// Takes a zombie over and prints the set-up's breakdown.
pub fn dominate(paths: &Paths, host: String, level: Level) -> Result<ExitCode> {
    let request = Request::Dominate { host, level };
    let reply = control::call(&paths.socket(), &request, |reply| match reply {
        Reply::Progress { message } => eprintln!("{message}"),
        Reply::Asking { zombie, timeout_s } => eprintln!(
            "zombie {zombie} is asking its user to accept (up to {timeout_s} s; Ctrl-C withdraws the request)…"
        ),
        _ => {}
    })?;
    let (name, granted, timing) = match reply {
        Reply::Dominated {
            name,
            level,
            timing,
        } => (name, level, timing),
        Reply::Error { message } => return Err(anyhow!(message)),
        other => bail!("unexpected reply from the daemon: {other:?}"),
    };
    println!("dominating {name} at level {granted}");
    if granted < level {
        println!("  (asked for {level}; {name}'s trust store allows only {granted})");
    }
    let total: u64 = timing.iter().map(|(_, us)| us).sum();
    for (what, us) in &timing {
        println!("  {what:<6} {:>8.1} ms", *us as f64 / 1000.0);
    }
    println!("  {:<6} {:>8.1} ms", "total", total as f64 / 1000.0);
    Ok(ExitCode::SUCCESS)
}

/// Answers the domination request waiting on this zombie.
pub fn answer(paths: &Paths, accept: bool) -> Result<ExitCode> {
    let request = Request::Answer {
        accept,
        show_apps: false,
    };
    let Reply::Done = ask(paths, &request)? else {
        bail!("unexpected reply from the daemon")
    };
    println!("{}", if accept { "accepted" } else { "refused" });
    Ok(ExitCode::SUCCESS)
}
