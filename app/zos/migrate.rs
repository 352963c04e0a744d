//! `zos migrate`, `zos home`, `zos checkpoint --task`, `zos release` and
//! `zos dominate --with-tasks`: moves with a live progress line (phase, bytes, rate, time
//! left) on a terminal, plain lines otherwise, and each phase's time at the end.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use zos_daemon::Paths;
use zos_netproto::Level;
use zos_netproto::control::{self, Compression, Reply, Request};

/// Prints the replies of a move as they come.
pub struct ProgressPrinter {
    tty: bool,
    phase: String,
    detail: Option<String>,
    last: Option<Instant>,
    line_open: bool,
}

impl ProgressPrinter {
    /// A printer for stdout (live line on a terminal, plain lines otherwise).
    pub fn new() -> ProgressPrinter {
        ProgressPrinter {
            tty: std::io::stdout().is_terminal(),
            phase: String::new(),
            detail: None,
            last: None,
            line_open: false,
        }
    }

    /// Shows one intermediate reply.
    pub fn show(&mut self, reply: &Reply) {
        let mut out = std::io::stdout().lock();
        match reply {
            Reply::MoveProgress {
                task,
                phase,
                bytes,
                total,
                rate_bps,
                eta_s,
                round,
                detail,
            } => {
                // A new detail (a pre-copy round's figures, why the rounds stopped) gets a
                // line of its own, once.
                if detail.is_some() && *detail != self.detail {
                    self.detail.clone_from(detail);
                    self.end_line(&mut out);
                    let _ = writeln!(out, "task {task}: {}", detail.as_deref().unwrap_or(""));
                }
                let phase = &match round {
                    Some(r) => format!("{phase} {r}"),
                    None => phase.clone(),
                };
                let changed = *phase != self.phase;
                let due = self
                    .last
                    .is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
                if !self.tty && !changed && !due {
                    return;
                }
                self.phase.clone_from(phase);
                self.last = Some(Instant::now());
                let amount = if *total > 0 {
                    format!("{} / {}", mib(*bytes), mib(*total))
                } else if *bytes > 0 {
                    mib(*bytes)
                } else {
                    String::new()
                };
                let rate = if *rate_bps > 0 {
                    format!("{:.1} MB/s", *rate_bps as f64 / 1e6)
                } else {
                    String::new()
                };
                let left = eta_s.map(|s| format!("{s} s left")).unwrap_or_default();
                let line = format!("task {task}: {phase:<10} {amount:>21} {rate:>12} {left:>10}");
                if self.tty {
                    let _ = write!(out, "\r\x1b[K{line}");
                    self.line_open = true;
                } else {
                    let _ = writeln!(out, "{}", line.trim_end());
                }
            }
            Reply::Progress { message } => {
                self.end_line(&mut out);
                let _ = writeln!(out, "{message}");
            }
            _ => {}
        }
        let _ = out.flush();
    }

    fn end_line(&mut self, out: &mut impl Write) {
        if self.line_open {
            let _ = writeln!(out);
            self.line_open = false;
        }
    }

    /// Ends the live line before the final output.
    pub fn done(&mut self) {
        let mut out = std::io::stdout().lock();
        self.end_line(&mut out);
    }
}

impl Default for ProgressPrinter {
    fn default() -> Self {
        ProgressPrinter::new()
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1048576.0)
}

/// Sends a move request and shows its progress; the final reply (an error as `Err`).
pub(crate) fn call_move(paths: &Paths, request: &Request) -> Result<Reply> {
    let mut printer = ProgressPrinter::new();
    let reply = control::call(&paths.socket(), request, |r| printer.show(r));
    printer.done();
    match reply? {
        Reply::Error { message } => Err(anyhow!(message)),
        other => Ok(other),
    }
}

/// Prints where the task runs now and each phase's time.
fn print_moved(reply: Reply) -> Result<ExitCode> {
    let Reply::Moved {
        task,
        to,
        phases,
        image_bytes,
        precopy,
    } = reply
    else {
        bail!("unexpected reply from the daemon: {reply:?}")
    };
    println!(
        "task {task} runs on {to} now ({:.1} MiB image)",
        image_bytes as f64 / 1048576.0
    );
    match precopy {
        Some(how) => println!("  live: {how}"),
        None => println!("  stop-and-copy: frozen for the whole transfer"),
    }
    let total: u64 = phases.iter().map(|(_, us)| us).sum();
    for (phase, us) in &phases {
        println!("  {phase:<10} {:>9.1} ms", *us as f64 / 1000.0);
    }
    println!("  {:<10} {:>9.1} ms", "total", total as f64 / 1000.0);
    Ok(ExitCode::SUCCESS)
}

/// `zos migrate TASK HOST [--compress C] [--stop-and-copy] [--image-every I]`.
pub fn migrate(
    paths: &Paths,
    task: u64,
    host: String,
    compress: Compression,
    stop_and_copy: bool,
    image_every_s: u32,
) -> Result<ExitCode> {
    print_moved(call_move(
        paths,
        &Request::Migrate {
            task,
            host,
            compress,
            stop_and_copy,
            image_every_s: Some(image_every_s),
        },
    )?)
}

/// `zos home TASK [--from-image] [--stop-and-copy]`.
pub fn home(paths: &Paths, task: u64, from_image: bool, stop_and_copy: bool) -> Result<ExitCode> {
    print_moved(call_move(
        paths,
        &Request::Home {
            task,
            from_image,
            stop_and_copy,
        },
    )?)
}

/// `zos checkpoint --task TASK --out DIR`.
pub fn checkpoint_task(paths: &Paths, task: u64, out: PathBuf) -> Result<ExitCode> {
    let out = std::path::absolute(&out)?;
    let Some(out) = out.to_str().map(str::to_owned) else {
        bail!("the image directory {out:?} is not UTF-8")
    };
    match crate::commands::ask(paths, &Request::CheckpointTask { task, out })? {
        Reply::Checkpointed {
            task,
            path,
            bytes,
            frozen_us,
        } => {
            println!(
                "checkpointed task {task} to {path}: {:.1} MiB, frozen {:.1} ms; it runs on",
                bytes as f64 / 1048576.0,
                frozen_us as f64 / 1000.0
            );
            Ok(ExitCode::SUCCESS)
        }
        other => bail!("unexpected reply from the daemon: {other:?}"),
    }
}

/// `zos release HOST [--force]`: its migrants come home first, with progress.
pub fn release(paths: &Paths, host: String, force: bool) -> Result<ExitCode> {
    let Reply::Released { name } = call_move(paths, &Request::Release { host, force })? else {
        bail!("unexpected reply from the daemon")
    };
    println!("released {name}");
    Ok(ExitCode::SUCCESS)
}

/// `zos dominate HOST --with-tasks T,…`: the domination's breakdown, then each task moved
/// there (its pt), and tm = zt + fs + xt + Σ pt.
pub fn dominate_with_tasks(
    paths: &Paths,
    host: String,
    level: Level,
    tasks: &[u64],
) -> Result<ExitCode> {
    let mut printer = ProgressPrinter::new();
    let reply = control::call(
        &paths.socket(),
        &Request::Dominate {
            host: host.clone(),
            level,
        },
        |r| printer.show(r),
    );
    printer.done();
    let (name, timing) = match reply? {
        Reply::Dominated { name, timing, .. } => (name, timing),
        Reply::Error { message } => return Err(anyhow!(message)),
        other => bail!("unexpected reply from the daemon: {other:?}"),
    };
    let mut parts: Vec<(String, u64)> = timing;
    for &task in tasks {
        let moved = call_move(
            paths,
            &Request::Migrate {
                task,
                host: name.clone(),
                compress: Compression::Auto,
                stop_and_copy: false,
                image_every_s: None,
            },
        )
        .map_err(|e| anyhow!("dominated {name}, but task {task} did not move: {e}"))?;
        let Reply::Moved { phases, .. } = moved else {
            bail!("unexpected reply from the daemon: {moved:?}")
        };
        parts.push((format!("pt{task}"), phases.iter().map(|(_, us)| us).sum()));
    }
    println!("dominating {name} with {} task(s) moved there", tasks.len());
    let total: u64 = parts.iter().map(|(_, us)| us).sum();
    for (what, us) in &parts {
        println!("  {what:<6} {:>8.1} ms", *us as f64 / 1000.0);
    }
    println!("  {:<6} {:>8.1} ms", "tm", total as f64 / 1000.0);
    Ok(ExitCode::SUCCESS)
}
