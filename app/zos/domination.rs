//! `zos dominate` and `zos release`.

use std::process::ExitCode;

use anyhow::{Result, bail};
use zos_daemon::Paths;
use zos_netproto::Level;
use zos_netproto::control::{Reply, Request};

use crate::commands::ask;

/// Takes a zombie over and prints the set-up's breakdown.
pub fn dominate(paths: &Paths, host: String, level: Level) -> Result<ExitCode> {
    let Reply::Dominated {
        name,
        level: granted,
        timing,
    } = ask(paths, &Request::Dominate { host, level })?
    else {
        bail!("unexpected reply from the daemon")
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

/// Ends a domination.
pub fn release(paths: &Paths, host: String) -> Result<ExitCode> {
    let Reply::Released { name } = ask(paths, &Request::Release { host })? else {
        bail!("unexpected reply from the daemon")
    };
    println!("released {name}");
    Ok(ExitCode::SUCCESS)
}
