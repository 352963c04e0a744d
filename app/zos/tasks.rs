//! `zos tasks`, `zos run --migrant` and `zos logs`.

use std::io::Write;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use zos_daemon::Paths;
use zos_netproto::control::{self, Reply, Request, TaskInfo, task_state};

use crate::commands::ask;

/// `zos tasks [--json]`.
pub fn tasks(paths: &Paths, json: bool) -> Result<ExitCode> {
    let Reply::Tasks { tasks } = ask(paths, &Request::Tasks)? else {
        bail!("unexpected reply")
    };
    if json {
        println!("{}", serde_json::to_string(&tasks)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:>4} {:<8} {:<16} {:<10} {:>8} COMMAND",
        "ID", "KIND", "WHERE", "STATE", "SINCE"
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for t in &tasks {
        println!(
            "{:>4} {:<8} {:<16} {:<10} {:>8} {}",
            t.id,
            t.kind,
            place(t),
            state(t),
            age(now, t.since),
            t.command.join(" ")
        );
    }
    if tasks.is_empty() {
        println!("(no tasks)");
    }
    Ok(ExitCode::SUCCESS)
}

fn place(t: &TaskInfo) -> String {
    let here = if t.r#where.is_empty() {
        t.host.clone().unwrap_or_else(|| "here".into())
    } else {
        t.r#where.clone()
    };
    match (&t.to, &t.display) {
        (Some(to), _) => format!("{here}→{to}"),
        (None, Some(display)) => format!("{here} {display}"),
        (None, None) => here,
    }
}

fn state(t: &TaskInfo) -> String {
    match t.exit {
        Some(code) if t.state == task_state::EXITED => format!("exited {code}"),
        _ => t.state.clone(),
    }
}

/// How long ago `since` was: "42s", "5m", "3h", "2d" ("-" when unknown).
pub(crate) fn age(now: u64, since: u64) -> String {
    if since == 0 {
        return "-".into();
    }
    match now.saturating_sub(since) {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// `zos run --migrant -- CMD…`: sends the command with this process's directory and
/// environment (variables that are not UTF-8 cannot travel in the request and are left out,
/// with a warning).
pub fn run_migrant(paths: &Paths, argv: Vec<String>) -> Result<ExitCode> {
    let cwd = std::env::current_dir().context("the current directory")?;
    let Some(cwd) = cwd.to_str().map(str::to_owned) else {
        bail!("the current directory {cwd:?} is not UTF-8; start the task from another one");
    };
    let mut env = Vec::new();
    for (k, v) in std::env::vars_os() {
        match (k.to_str(), v.to_str()) {
            (Some(k), Some(v)) => env.push(format!("{k}={v}")),
            _ => eprintln!("zos: leaving out the environment variable {k:?} (not UTF-8)"),
        }
    }
    match ask(paths, &Request::RunMigrant { argv, cwd, env })? {
        Reply::Started { task } => {
            println!(
                "task {} started: {} (migrant; `zos attach {}` shows its terminal)",
                task.id,
                task.command.join(" "),
                task.id
            );
            Ok(ExitCode::SUCCESS)
        }
        other => bail!("unexpected reply from the daemon: {other:?}"),
    }
}

/// Opens a stream request (`Attach`, `Logs`); the daemon's refusal is the error, in its words.
pub fn open_stream(paths: &Paths, request: &Request) -> Result<std::os::unix::net::UnixStream> {
    control::open_stream(&paths.socket(), request).map_err(|e| match e {
        zos_netproto::Error::Refused(message) => anyhow::anyhow!(message),
        e => e.into(),
    })
}

/// `zos logs TASK [-f]`: copies the daemon's stream to stdout.
pub fn logs(paths: &Paths, task: u64, follow: bool) -> Result<ExitCode> {
    let mut stream = open_stream(paths, &Request::Logs { task, follow })?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = std::io::Read::read(&mut stream, &mut buf).context("read the log")?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).context("write to stdout")?;
        if follow {
            out.flush().context("write to stdout")?;
        }
    }
    out.flush().context("write to stdout")?;
    Ok(ExitCode::SUCCESS)
}
