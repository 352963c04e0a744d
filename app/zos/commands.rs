//! Carrying out each subcommand.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use zos_daemon::master::settings::MasterSettings;
use zos_daemon::master::{DriveConfig, MasterConfig};
use zos_daemon::settings::{ZombieSettings, parse_size};
use zos_daemon::zombie::{Desktop, SessionConfig, ZombieConfig};
use zos_daemon::{CancellationToken, Paths};
use zos_netproto::Identity;
use zos_netproto::control::{self, Reply, Request};
use zos_netproto::discovery::Interfaces;

use crate::cli::{Cli, Command, TrustAction};

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    // Commands that need no instance home.
    let command = match cli.command {
        Command::Checkpoint {
            task: Some(task),
            out,
            ..
        } => {
            let paths = Paths::resolve(cli.home.clone())?;
            let out = out.ok_or_else(|| anyhow!("--out DIR is required"))?;
            return crate::migrate::checkpoint_task(&paths, task, out);
        }
        Command::Checkpoint {
            pid,
            out,
            leave_running,
            check,
            task: None,
        } => {
            let pid = pid.ok_or_else(|| anyhow!("say which process (PID) or --task"))?;
            return crate::checkpointing::checkpoint(cli.home, pid, out, leave_running, check);
        }
        Command::Restore {
            dir,
            stdin,
            stdout,
            stderr,
            force,
        } => {
            let streams = crate::checkpointing::Streams {
                stdin,
                stdout,
                stderr,
            };
            return crate::checkpointing::restore(cli.home, &dir, streams, force);
        }
        Command::Bench { which } => return crate::bench::run(which),
        Command::SuperviseApp => return Ok(zos_daemon::apps::supervise_main()),
        other => other,
    };
    let paths = Paths::resolve(cli.home.clone())?;
    match command {
        Command::Master { name, interfaces } => {
            let settings = MasterSettings::load(&paths.master_settings())?;
            let (next, previous) = settings
                .hotkeys()
                .map_err(|e| anyhow!("{}: {e}", paths.master_settings().display()))?;
            let cfg = MasterConfig {
                paths,
                name: name.unwrap_or_else(zos_daemon::sysinfo::hostname),
                interfaces: interfaces_of(interfaces),
                drive: DriveConfig {
                    display: env_path("DISPLAY").map(|d| d.to_string_lossy().into_owned()),
                    xauthority: env_path("XAUTHORITY").map(Into::into),
                    next,
                    previous,
                },
            };
            run_daemon(|token| zos_daemon::master::run(cfg, token))
        }
        Command::Zombie {
            name,
            port,
            interfaces,
            levels,
            auto_accept,
            no_viewers,
            no_session,
            windowed,
        } => {
            let settings = ZombieSettings::load(&paths.zombie_settings())?;
            let desktop = Desktop::from_env(settings.status_window);
            let display = env_path("DISPLAY").map(|d| d.to_string_lossy().into_owned());
            let session = SessionConfig {
                screen: display.filter(|_| !no_session && settings.zos_session),
                xauthority: env_path("XAUTHORITY").map(Into::into),
                windowed: if windowed || settings.windowed {
                    Some(parse_size(&settings.window_size).map_err(|e| anyhow!(e))?)
                } else {
                    None
                },
                at_partial: settings.session_at_partial,
                allow_input: settings.allow_input,
            };
            let cfg = ZombieConfig {
                paths,
                name,
                port,
                interfaces: interfaces_of(interfaces),
                levels,
                auto_accept: auto_accept || settings.auto_accept,
                open_viewers: !no_viewers && settings.viewers && desktop.display,
                migrant_grace: Duration::from_secs(settings.migrant_grace),
                desktop,
                session,
            };
            run_daemon(|token| zos_daemon::zombie::run(cfg, token))
        }
        Command::Id => {
            let id = Identity::load_or_create(&paths.identity())?;
            println!("{}", id.public().fingerprint());
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { json } => status(&paths, json),
        Command::Hosts { json, watch } => hosts(&paths, json, watch),
        Command::PairCode { level } => match ask(&paths, &Request::PairCode { level })? {
            Reply::PairCode(info) => {
                println!("{}", info.code);
                eprintln!(
                    "Type this code on the master: zos pair <this zombie> --code {} (level {}, valid {} s, {} tries)",
                    info.code, info.level, info.expires_in_s, info.attempts_left
                );
                Ok(ExitCode::SUCCESS)
            }
            other => unexpected(other),
        },
        Command::Pair { host, code } => match ask(&paths, &Request::Pair { host, code })? {
            Reply::Paired {
                name,
                fingerprint,
                level,
            } => {
                println!("paired with zombie {name} ({fingerprint}), control level {level}");
                Ok(ExitCode::SUCCESS)
            }
            other => unexpected(other),
        },
        Command::Trust { action } => trust(&paths, action),
        Command::Ping {
            host,
            count,
            interval,
        } => ping(&paths, host, count, interval),
        Command::Stop { force, keep_apps } => crate::stop::stop(&paths, force, keep_apps),
        Command::Run {
            migrant: true,
            argv,
            ..
        } => crate::tasks::run_migrant(&paths, argv),
        Command::Run { shared, argv, .. } => match ask(&paths, &Request::Run { shared, argv })? {
            Reply::Started { task } => {
                println!(
                    "task {} started: {} on display {}",
                    task.id,
                    task.command.join(" "),
                    task.display.unwrap_or_default()
                );
                Ok(ExitCode::SUCCESS)
            }
            other => unexpected(other),
        },
        Command::Tasks { json } => crate::tasks::tasks(&paths, json),
        Command::Attach { task } => crate::attach::attach(&paths, task),
        Command::Logs { task, follow } => crate::tasks::logs(&paths, task, follow),
        Command::Dominate {
            host,
            level,
            with_tasks,
        } if !with_tasks.is_empty() => {
            crate::migrate::dominate_with_tasks(&paths, host, level, &with_tasks)
        }
        Command::Dominate { host, level, .. } => crate::domination::dominate(&paths, host, level),
        Command::Release { host, force } => {
            crate::migrate::release(&paths, host.unwrap_or_default(), force)
        }
        Command::Migrate {
            task,
            host,
            compress,
            stop_and_copy,
            image_every,
        } => crate::migrate::migrate(&paths, task, host, compress, stop_and_copy, image_every),
        Command::Home {
            task,
            from_image,
            stop_and_copy,
        } => crate::migrate::home(&paths, task, from_image, stop_and_copy),
        Command::Export {
            path,
            to,
            read_only,
            never,
        } => crate::exports::export(&paths, &path, to.as_deref(), read_only, never),
        Command::Exports { json } => crate::exports::list(&paths, json),
        Command::Unexport { path, to } => crate::exports::unexport(&paths, &path, to.as_deref()),
        Command::Drive { host, stop, edge } => {
            crate::drive::drive(&paths, host.filter(|_| !stop), edge)
        }
        Command::Input { choice } => crate::drive::input(&paths, choice),
        Command::Accept => crate::domination::answer(&paths, true),
        Command::Refuse => crate::domination::answer(&paths, false),
        Command::View {
            task,
            snapshot,
            desktop,
            resize_remote,
        } => crate::view::view(
            &paths,
            task,
            crate::view::ViewOptions {
                snapshot,
                desktop,
                resize_remote,
            },
        ),
        Command::Gui => {
            let home = paths.home.clone();
            zos_gui::run(
                paths.socket(),
                Box::new(move |task| crate::view::spawn_viewer(&home, task)),
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::ZombieWindow => {
            let home = paths.home.clone();
            zos_zombie_ui::status_window(
                paths.socket(),
                Box::new(move |task| crate::view::spawn_viewer(&home, task)),
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::ConsentPrompt => {
            zos_zombie_ui::consent_prompt(paths.socket())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Tray => {
            let home = paths.home.clone();
            zos_tray::run(
                paths.socket(),
                Box::new(move |task| crate::view::spawn_viewer(&home, task)),
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo {
            interfaces,
            headless,
        } => crate::demo::run(&paths, interfaces, headless),
        Command::Snapshot {
            task,
            name,
            every,
            keep,
        } => crate::snapshots::snapshot(&paths, task, name, every, keep),
        Command::Snapshots { task, json, prune } => {
            crate::snapshots::snapshots(&paths, task, json, prune)
        }
        Command::Rollback { task, snapshot } => crate::snapshots::rollback(&paths, task, snapshot),
        Command::Suspend => crate::snapshots::suspend(&paths),
        Command::Resume { tasks, on } => crate::snapshots::resume(&paths, tasks, on),
        Command::Checkpoint { .. }
        | Command::Restore { .. }
        | Command::Bench { .. }
        | Command::SuperviseApp => {
            unreachable!("handled before the home is resolved")
        }
    }
}

/// A non-empty environment variable.
fn env_path(name: &str) -> Option<std::ffi::OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

fn interfaces_of(names: Vec<String>) -> Interfaces {
    if names.is_empty() {
        Interfaces::All
    } else {
        Interfaces::Only(names)
    }
}

fn run_daemon<F, Fut>(daemon: F) -> Result<ExitCode>
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: Future<Output = zos_daemon::error::Result<()>>,
{
    let runtime = tokio::runtime::Runtime::new().context("start async runtime")?;
    runtime.block_on(async {
        let token = CancellationToken::new();
        zos_daemon::cancel_on_signals(token.clone());
        daemon(token).await
    })?;
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(ExitCode::SUCCESS)
}

/// Sends one request to the local daemon; a daemon-side error becomes ours.
pub fn ask(paths: &Paths, request: &Request) -> Result<Reply> {
    match control::request(&paths.socket(), request)? {
        Reply::Error { message } => Err(anyhow!(message)),
        reply => Ok(reply),
    }
}

fn unexpected(reply: Reply) -> Result<ExitCode> {
    bail!("unexpected reply from the daemon: {reply:?}")
}

fn status(paths: &Paths, json: bool) -> Result<ExitCode> {
    let Reply::Status(s) = ask(paths, &Request::Status)? else {
        bail!("unexpected reply")
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:?} {}  fingerprint {}", s.role, s.name, s.fingerprint);
    if let Some(listen) = &s.listen {
        println!("sessions on {listen}");
    }
    println!("trust entries: {}", s.trusted);
    if let Some(p) = &s.pairing {
        println!(
            "pairing code {} (level {}, {} s left, {} tries left)",
            p.code, p.level, p.expires_in_s, p.attempts_left
        );
    }
    if let Some(a) = &s.asking {
        println!(
            "master {} ({}) asks to dominate at level {}: `zos accept` or `zos refuse` ({} s left)",
            a.master, a.fingerprint, a.level, a.expires_in_s
        );
    }
    if !s.pairing_attempts.is_empty() {
        println!("failed or refused pairing attempts (newest first):");
        for a in &s.pairing_attempts {
            let times = if a.count > 1 {
                format!(" ({} times)", a.count)
            } else {
                String::new()
            };
            println!(
                "  {} s ago from {} key {}: {}{times}",
                a.age_s, a.addr, a.fingerprint, a.why
            );
        }
    }
    if let Some(z) = &s.session {
        println!(
            "ZOS session of {} on display {} (XAUTHORITY={}), input {}",
            z.master, z.display, z.xauthority, z.input
        );
    }
    for sess in &s.sessions {
        let dominating = match (s.role, sess.dominating) {
            (_, None) => String::new(),
            (zos_netproto::wire::Role::Master, Some(l)) => format!(", dominated at level {l}"),
            (zos_netproto::wire::Role::Zombie, Some(l)) => format!(", dominating at level {l}"),
        };
        println!(
            "session with {} ({}) at {}, {} s{dominating}",
            sess.peer, sess.fingerprint, sess.addr, sess.age_s
        );
        if s.role == zos_netproto::wire::Role::Zombie && sess.dominating.is_some() {
            println!("  `zos release` ends the domination");
        }
        if let Some(at) = &sess.mount {
            println!("  its shared folders are at {at}");
        }
        if sess.driven {
            println!("  this master's keyboard and mouse drive it (`zos drive --stop` to return)");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn hosts(paths: &Paths, json: bool, watch: bool) -> Result<ExitCode> {
    loop {
        let Reply::Hosts { hosts } = ask(paths, &Request::Hosts)? else {
            bail!("unexpected reply")
        };
        if json {
            println!("{}", serde_json::to_string(&hosts)?);
        } else {
            if watch {
                print!("\x1b[2J\x1b[H");
            }
            println!(
                "{:<16} {:<24} {:>5} {:>6} {:>9}  {:<22} {:<18} STATE",
                "NAME", "FINGERPRINT", "CORES", "LOAD", "FREE MiB", "ADDRESS", "LEVELS"
            );
            for h in &hosts {
                let addr = zos_daemon::hosts::best_address(&h.addrs)
                    .map(|ip| std::net::SocketAddr::new(ip, h.port).to_string())
                    .unwrap_or_default();
                let levels: Vec<String> = h.levels.iter().map(|l| l.to_string()).collect();
                let mut state = match &h.dominated {
                    None => "free".to_string(),
                    Some(d) => format!("dominated by {} ({})", d.master, d.level),
                };
                if h.revoked {
                    state.push_str(", no longer trusts this master: pair again");
                }
                println!(
                    "{:<16} {:<24} {:>5} {:>6.2} {:>9}  {:<22} {:<18} {state}",
                    h.name,
                    h.fingerprint,
                    h.cores,
                    h.load1,
                    h.mem_free_mib,
                    addr,
                    levels.join(",")
                );
            }
            if hosts.is_empty() {
                println!("(no zombie seen yet)");
            }
        }
        if !watch {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn trust(paths: &Paths, action: TrustAction) -> Result<ExitCode> {
    match action {
        TrustAction::List { json } => {
            let Reply::Trust { entries } = ask(paths, &Request::TrustList)? else {
                bail!("unexpected reply")
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&entries)?);
            } else {
                println!("{:<16} {:<24} {:<9} KEY", "NAME", "FINGERPRINT", "LEVEL");
                for e in &entries {
                    let fp = e
                        .public_key()
                        .map(|k| k.fingerprint().0)
                        .unwrap_or_default();
                    println!("{:<16} {:<24} {:<9} {}", e.name, fp, e.level, e.key);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        TrustAction::Revoke { what } => {
            let Reply::Revoked {
                entries,
                sessions_ended,
            } = ask(paths, &Request::TrustRevoke { what })?
            else {
                bail!("unexpected reply")
            };
            for e in &entries {
                println!("revoked {} ({})", e.name, e.key);
            }
            if sessions_ended > 0 {
                println!("ended {sessions_ended} live session(s)");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn ping(paths: &Paths, host: String, count: u32, interval: f64) -> Result<ExitCode> {
    if !(0.0..=3600.0).contains(&interval) {
        bail!("--interval must be between 0 and 3600 seconds");
    }
    let request = Request::Ping {
        host,
        count,
        interval_ms: (interval * 1000.0) as u64,
    };
    let mut rtts = Vec::new();
    let last = control::call(&paths.socket(), &request, |reply| {
        if let Reply::Pong { seq, rtt_us, peer } = reply {
            println!(
                "reply from {peer}: seq={seq} rtt={:.3} ms",
                *rtt_us as f64 / 1000.0
            );
            rtts.push(*rtt_us);
        }
    })?;
    match last {
        Reply::Done => {
            if rtts.len() > 1 {
                rtts.sort_unstable();
                println!(
                    "{} round trips: min {:.3} ms, median {:.3} ms, max {:.3} ms",
                    rtts.len(),
                    rtts[0] as f64 / 1000.0,
                    rtts[rtts.len() / 2] as f64 / 1000.0,
                    rtts[rtts.len() - 1] as f64 / 1000.0
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Reply::Error { message } => Err(anyhow!(message)),
        other => unexpected(other),
    }
}
