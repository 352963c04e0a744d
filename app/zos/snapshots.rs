//! `zos snapshot`, `zos snapshots`, `zos rollback`, `zos suspend`, `zos resume`.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Result, anyhow, bail};
use zos_daemon::Paths;
use zos_netproto::control::{Reply, Request, SnapshotInfo};

use crate::commands::ask;

/// `zos snapshot TASK [--name N]` or `--every D [--keep N]`.
pub fn snapshot(
    paths: &Paths,
    task: u64,
    name: Option<String>,
    every: Option<String>,
    keep: u32,
) -> Result<ExitCode> {
    if let Some(every) = every {
        let every_s = parse_every(&every)?;
        let reply = ask(
            paths,
            &Request::SnapshotEvery {
                task,
                every_s,
                keep,
            },
        )?;
        let Reply::SnapshotSchedule { every_s, keep, .. } = reply else {
            bail!("unexpected reply from the daemon: {reply:?}")
        };
        match every_s {
            Some(s) => println!(
                "task {task}: a snapshot every {}, the newest {keep} kept restorable",
                duration(s)
            ),
            None => println!("task {task}: no more scheduled snapshots"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let reply = ask(paths, &Request::Snapshot { task, name })?;
    let Reply::SnapshotTaken { snapshot: s, .. } = reply else {
        bail!("unexpected reply from the daemon: {reply:?}")
    };
    let stopped = match &s.on {
        Some(host) => format!("taken on {host}, where the task runs on"),
        None => format!("task stopped {:.1} ms", s.frozen_us as f64 / 1000.0),
    };
    println!(
        "task {task}: snapshot {}{} ({}), {} written, {stopped}",
        s.id,
        s.name
            .as_deref()
            .map(|n| format!(" \"{n}\""))
            .unwrap_or_default(),
        if s.kind == "whole" {
            "whole".to_string()
        } else {
            format!("incremental over {}", s.parent.unwrap_or(0))
        },
        bytes(s.bytes),
    );
    Ok(ExitCode::SUCCESS)
}

/// `zos snapshots TASK [--json]` or `--prune`.
pub fn snapshots(paths: &Paths, task: Option<u64>, json: bool, prune: bool) -> Result<ExitCode> {
    if prune {
        let reply = ask(paths, &Request::PruneSnapshots)?;
        let Reply::Pruned {
            tasks,
            bytes: freed,
        } = reply
        else {
            bail!("unexpected reply from the daemon: {reply:?}")
        };
        if json {
            println!("{}", serde_json::json!({ "tasks": tasks, "bytes": freed }));
        } else if tasks.is_empty() {
            println!("no snapshots of tasks that are gone");
        } else {
            let ids: Vec<String> = tasks.iter().map(u64::to_string).collect();
            println!(
                "removed the snapshots of task(s) {}: {} freed",
                ids.join(", "),
                bytes(freed)
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let task = task.ok_or_else(|| anyhow!("say which task"))?;
    let reply = ask(paths, &Request::Snapshots { task })?;
    let Reply::Snapshots {
        dir,
        snapshots,
        every_s,
        keep,
        ..
    } = reply
    else {
        bail!("unexpected reply from the daemon: {reply:?}")
    };
    if json {
        println!("{}", serde_json::to_string(&snapshots)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("task {task}'s snapshots, in {dir}:");
    if let (Some(s), Some(k)) = (every_s, keep) {
        println!("(a snapshot every {}, the newest {k} kept)", duration(s));
    }
    println!(
        "{:>5} {:<20} {:>6} {:>10} {:>10} {:<12} {:>9}",
        "ID", "NAME", "AGE", "SIZE", "DELTA", "KIND", "STOPPED"
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for s in &snapshots {
        println!("{}", row(s, now));
    }
    if snapshots.is_empty() {
        println!("(none)");
    }
    Ok(ExitCode::SUCCESS)
}

fn row(s: &SnapshotInfo, now: u64) -> String {
    let kind = match (s.kind.as_str(), s.parent) {
        ("whole", _) => "whole".to_string(),
        (_, Some(p)) => format!("delta of {p}"),
        (k, None) => k.to_string(),
    };
    let name = match (&s.name, s.auto) {
        (Some(n), _) => n.clone(),
        (None, true) => "(every)".into(),
        (None, false) => "-".into(),
    };
    format!(
        "{:>5} {:<20} {:>6} {:>10} {:>10} {:<12} {:>9}",
        s.id,
        name,
        crate::tasks::age(now, s.at),
        bytes(s.chain_bytes),
        if s.kind == "whole" {
            "-".to_string()
        } else {
            bytes(s.bytes)
        },
        kind,
        match &s.on {
            Some(host) => format!("on {host}"),
            None => format!("{:.1}ms", s.frozen_us as f64 / 1000.0),
        }
    )
}

/// `zos rollback TASK SNAP`.
pub fn rollback(paths: &Paths, task: u64, snapshot: String) -> Result<ExitCode> {
    let reply = ask(paths, &Request::Rollback { task, snapshot })?;
    let Reply::RolledBack {
        snapshot: s,
        restore_us,
        ..
    } = reply
    else {
        bail!("unexpected reply from the daemon: {reply:?}")
    };
    println!(
        "task {task} runs from snapshot {}{} now (restored in {:.2} s); its files were not rolled back",
        s.id,
        s.name
            .as_deref()
            .map(|n| format!(" \"{n}\""))
            .unwrap_or_default(),
        restore_us as f64 / 1e6
    );
    Ok(ExitCode::SUCCESS)
}

/// `zos suspend`.
pub fn suspend(paths: &Paths) -> Result<ExitCode> {
    // Tasks away come home first: show those moves as they go.
    let mut printer = crate::migrate::ProgressPrinter::new();
    let reply =
        zos_netproto::control::call(&paths.socket(), &Request::Suspend, |r| printer.show(r));
    printer.done();
    let reply = reply?;
    let Reply::Suspended { tasks, failed } = reply else {
        bail!("unexpected reply from the daemon: {reply:?}")
    };
    report("suspended", &tasks, &failed)
}

/// `zos resume [TASK…] [--on HOST]`: restored here, then (`--on`) each moved live to HOST.
pub fn resume(paths: &Paths, tasks: Vec<u64>, on: Option<String>) -> Result<ExitCode> {
    let reply = ask(paths, &Request::Resume { tasks })?;
    let Reply::Resumed { tasks, failed } = reply else {
        bail!("unexpected reply from the daemon: {reply:?}")
    };
    let code = report("resumed", &tasks, &failed)?;
    let Some(host) = on else {
        return Ok(code);
    };
    let mut moved_all = true;
    for &task in &tasks {
        println!("moving task {task} to {host}");
        let request = Request::Migrate {
            task,
            host: host.clone(),
            compress: zos_netproto::control::Compression::Auto,
            stop_and_copy: false,
            image_every_s: None,
        };
        match crate::migrate::call_move(paths, &request) {
            Ok(Reply::Moved { to, .. }) => println!("task {task} runs on {to}"),
            Ok(other) => {
                moved_all = false;
                eprintln!("task {task} runs here: unexpected reply from the daemon: {other:?}");
            }
            Err(e) => {
                moved_all = false;
                eprintln!("task {task} runs here: it did not move to {host}: {e}");
            }
        }
    }
    Ok(if moved_all { code } else { ExitCode::FAILURE })
}

fn report(what: &str, tasks: &[u64], failed: &[String]) -> Result<ExitCode> {
    if tasks.is_empty() {
        println!("no task {what}");
    } else {
        let ids: Vec<String> = tasks.iter().map(u64::to_string).collect();
        println!("{what}: task(s) {}", ids.join(", "));
    }
    for f in failed {
        eprintln!("not {what}: {f}");
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `off` → `None`; `90`, `30s`, `10m`, `2h`, `1d` → seconds.
fn parse_every(text: &str) -> Result<Option<u64>> {
    if text == "off" {
        return Ok(None);
    }
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| anyhow!("{text:?} is not a duration (30s, 10m, 2h, 1d or off)"))?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => bail!("{text:?} is not a duration (30s, 10m, 2h, 1d or off)"),
    };
    Ok(Some(n.saturating_mul(unit)))
}

/// "10m", "90s", "2h".
fn duration(s: u64) -> String {
    match s {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// "1.0 GiB", "12.0 MiB", "640 KiB".
pub fn bytes(n: u64) -> String {
    let f = n as f64;
    if f >= (1u64 << 30) as f64 {
        format!("{:.1} GiB", f / (1u64 << 30) as f64)
    } else if f >= (1u64 << 20) as f64 {
        format!("{:.1} MiB", f / (1u64 << 20) as f64)
    } else {
        format!("{:.0} KiB", f / 1024.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_their_units() {
        assert_eq!(parse_every("off").unwrap(), None);
        assert_eq!(parse_every("90").unwrap(), Some(90));
        assert_eq!(parse_every("10m").unwrap(), Some(600));
        assert_eq!(parse_every("2h").unwrap(), Some(7200));
        assert_eq!(parse_every("1d").unwrap(), Some(86_400));
        assert!(parse_every("10x").is_err());
        assert!(parse_every("m").is_err());
        assert_eq!(duration(600), "10m");
        assert_eq!(duration(90), "90s");
    }
}
