//! `zos stop [--force] [--keep-apps]`: stops the local daemon, saying what
//! ends with it. A master with tasks that would end answers what they are
//! and keeps running; the user is asked (on a terminal) or must say
//! `--force`.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Result, bail};
use zos_daemon::Paths;
use zos_netproto::control::{Reply, Request};

use crate::commands::ask;

/// Stops the daemon of `paths`.
pub fn stop(paths: &Paths, force: bool, keep_apps: bool) -> Result<ExitCode> {
    match ask(paths, &Request::Shutdown { force, keep_apps })? {
        Reply::Done => Ok(ExitCode::SUCCESS),
        Reply::Stopping { ends, stays } => {
            tell("stopped the daemon; ended", &ends, &stays);
            Ok(ExitCode::SUCCESS)
        }
        Reply::WouldEnd { ends, stays } => {
            tell("stopping the daemon would end", &ends, &stays);
            let hint = if keep_apps {
                ""
            } else {
                " (`zos stop --keep-apps` leaves the shared apps running)"
            };
            if !std::io::stdin().is_terminal() {
                bail!("the daemon runs on: `zos stop --force` ends them{hint}");
            }
            eprint!("Stop the daemon and end them? [y/N] ");
            let _ = std::io::stderr().flush();
            let mut answer = String::new();
            std::io::stdin().lock().read_line(&mut answer)?;
            if !matches!(answer.trim(), "y" | "Y" | "yes") {
                eprintln!("the daemon runs on{hint}");
                return Ok(ExitCode::from(1));
            }
            stop(paths, true, keep_apps)
        }
        other => bail!("unexpected reply from the daemon: {other:?}"),
    }
}

fn tell(heading: &str, ends: &[String], stays: &[String]) {
    if ends.is_empty() {
        eprintln!(
            "{}",
            heading
                .trim_end_matches("; ended")
                .trim_end_matches(" would end")
        );
    } else {
        eprintln!("{heading}:");
        for task in ends {
            eprintln!("  {task}");
        }
    }
    for task in stays {
        eprintln!("  {task}");
    }
}
