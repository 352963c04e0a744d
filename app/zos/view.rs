//! `zos view TASK`: a viewer for a shared app, through the local daemon —
//! each of the app's windows as a window of its own, or with `--desktop` its
//! whole display; scaled when resized, or with `--resize-remote` resizing the
//! app's window.
//!
//! The daemon turns the control connection into the app's RFB stream (on a
//! zombie, through the session with the dominating master), so the viewer
//! is the same on every side.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use zos_daemon::Paths;
use zos_display::ViewerConnection;
use zos_netproto::control::{self, Request};

/// How long a snapshot waits for the first complete screen.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(15);
/// The screen counts as complete once no update came for this long.
const SETTLE: Duration = Duration::from_millis(300);

/// How `zos view` shows a task.
#[derive(Debug, Default)]
pub struct ViewOptions {
    /// Save one frame of the whole display here instead of opening a window.
    pub snapshot: Option<PathBuf>,
    /// One window with the whole display.
    pub desktop: bool,
    /// Resized windows resize the app's window (or display) instead of scaling.
    pub resize_remote: bool,
}

/// Opens a viewer for `task`, or saves one frame of it to `options.snapshot`.
pub fn view(paths: &Paths, task: u64, options: ViewOptions) -> Result<ExitCode> {
    match options.snapshot {
        Some(png) => {
            save_snapshot(paths, task, &png)?;
            println!("saved task {task}'s screen to {}", png.display());
            Ok(ExitCode::SUCCESS)
        }
        None => {
            let title = title_of(paths, task);
            let socket = paths.socket();
            let mut window =
                zos_viewer::ViewerWindowOptions::new(title, move || open_view(&socket, task));
            window.desktop = options.desktop;
            window.resize_remote = options.resize_remote;
            zos_viewer::run(window)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// "PROGRAM on MASTER (task N)" from the daemon's task list, or "task N":
/// the master as it is named (its `--name` on the master itself, the name
/// it was paired under on a zombie), not the machine's host name.
fn title_of(paths: &Paths, task: u64) -> String {
    let tasks = match control::request(&paths.socket(), &Request::Tasks) {
        Ok(control::Reply::Tasks { tasks }) => tasks,
        _ => Vec::new(),
    };
    let Some(t) = tasks.into_iter().find(|t| t.id == task) else {
        return format!("task {task}");
    };
    let program = t
        .command
        .first()
        .map(|p| p.rsplit('/').next().unwrap_or(p).to_owned())
        .unwrap_or_default();
    let host = Some(t.r#where)
        .filter(|w| !w.is_empty())
        .or(t.host)
        .unwrap_or_else(zos_daemon::sysinfo::hostname);
    format!("{program} on {host} (task {task})")
}

/// Starts `zos --home HOME view TASK` as a process of its own (a viewer
/// window that lives until the view ends) and reaps it when it exits.
pub fn spawn_viewer(home: &Path, task: u64) -> std::io::Result<()> {
    let exe = std::env::current_exe()?;
    let mut child = std::process::Command::new(exe)
        .arg("--home")
        .arg(home)
        .args(["view", &task.to_string()])
        .stdin(std::process::Stdio::null())
        .spawn()?;
    std::thread::Builder::new()
        .name(format!("viewer-{task}"))
        .spawn(move || match child.wait() {
            Ok(status) if !status.success() => {
                tracing::warn!("the viewer of task {task} ended with {status}")
            }
            _ => {}
        })?;
    Ok(())
}

/// Connects to the local daemon's view of `task`: a unix stream carrying RFB.
pub fn open_view(socket: &Path, task: u64) -> std::io::Result<std::os::unix::net::UnixStream> {
    control::open_stream(socket, &Request::View { task })
        .map_err(|e| std::io::Error::other(e.to_string()))
}

fn save_snapshot(paths: &Paths, task: u64, png: &Path) -> Result<()> {
    let stream = open_view(&paths.socket(), task).with_context(|| format!("view task {task}"))?;
    stream.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let frame = runtime.block_on(async {
        let stream = tokio::net::UnixStream::from_std(stream)?;
        let viewer = ViewerConnection::connect(stream).await?;
        let mut versions = viewer.subscribe();
        let deadline = Instant::now() + SNAPSHOT_TIMEOUT;
        loop {
            let changed = tokio::time::timeout(SETTLE, versions.changed()).await;
            match changed {
                Ok(Ok(())) => {}
                Ok(Err(_)) => bail!("the view ended before a frame arrived"),
                Err(_) if viewer.size().0 > 0 && *versions.borrow() > 1 => break,
                Err(_) => {}
            }
            if Instant::now() > deadline {
                bail!("no complete frame within {} s", SNAPSHOT_TIMEOUT.as_secs());
            }
        }
        let frame = viewer.frame();
        let _ = viewer.close().await;
        Ok::<_, anyhow::Error>(frame)
    })?;
    image::save_buffer(
        png,
        &frame.rgba,
        u32::from(frame.width),
        u32::from(frame.height),
        image::ExtendedColorType::Rgba8,
    )
    .with_context(|| format!("write {}", png.display()))?;
    Ok(())
}
