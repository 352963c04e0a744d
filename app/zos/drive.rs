//! `zos drive` (master) and `zos input` (zombie).

use std::process::ExitCode;

use anyhow::{Result, bail};
use zos_daemon::Paths;
use zos_netproto::control::{Reply, Request};

use crate::cli::InputChoice;
use crate::commands::ask;

/// Sends input to `host`'s ZOS session (or back, for `None`).
pub fn drive(paths: &Paths, host: Option<String>, edge: Option<String>) -> Result<ExitCode> {
    let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
    let request = Request::Drive {
        host,
        edge,
        display: var("DISPLAY"),
        xauthority: var("XAUTHORITY"),
    };
    let Reply::Driving { target, message } = ask(paths, &request)? else {
        bail!("unexpected reply from the daemon")
    };
    match target {
        Some(target) => println!("driving {target}: {message}"),
        None => println!("{message}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Allows or refuses the master's input on this zombie.
pub fn input(paths: &Paths, choice: InputChoice) -> Result<ExitCode> {
    let allow = choice == InputChoice::Allow;
    let Reply::Done = ask(paths, &Request::AllowInput { allow })? else {
        bail!("unexpected reply from the daemon")
    };
    println!(
        "{}",
        if allow {
            "the dominating master's keyboard and mouse may drive the ZOS session"
        } else {
            "input from the master is refused"
        }
    );
    Ok(ExitCode::SUCCESS)
}
