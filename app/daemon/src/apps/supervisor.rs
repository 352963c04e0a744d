//! The supervisor of one shared app: `zos supervise-app`, a process of its
//! own that the daemon starts and that outlives it.
//!
//! It leaves the daemon's session (`setsid`: no terminal signal reaches it),
//! starts the app's Xvnc (which dies with the supervisor: `PR_SET_PDEATHSIG`
//! on its main thread), keeps the app's windows ([`AppWindows`]), launches the
//! app, and serves its socket (`apps/ID.sock`, see [`super::record`]). It
//! reports the [`AppRecord`] (or why it could not start) on the descriptor
//! that was its stdout, then points its stdout at its stderr, so the app
//! writes to the daemon's log and never to a pipe nobody reads.
//!
//! It ends when the app ends, or on [`SupervisorRequest::Stop`] or SIGTERM
//! (the app gets SIGTERM, SIGKILL 2 s later): it removes its socket and
//! record, stops Xvnc (whose files go with it), and only then tells its
//! watchers [`SupervisorEvent::Ended`], so a daemon that saw the end knows
//! nothing of the app is left.

use std::fs::File;
use std::io::{BufRead, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::sys::signal::{Signal, kill};
use nix::sys::stat::{Mode, umask};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::process::Child;
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;
use zos_display::{AppWindows, VirtualDisplay, launch_app};

use super::record::{
    self, AppRecord, MAX_LINE, SupervisorEvent, SupervisorRequest, SupervisorSpec,
};
use crate::tasks::DEFAULT_GEOMETRY;

/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Clients served at once; more are closed at once.
const MAX_CLIENTS: usize = 16;
/// How long the app has to exit after SIGTERM before it gets SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// How long watchers get to read the end before the supervisor exits.
const LINGER: Duration = Duration::from_secs(2);

/// The `zos supervise-app` command: reads the [`SupervisorSpec`] line on
/// stdin and supervises the app until it ends.
pub fn main() -> ExitCode {
    // Sockets, records and the display's files are ours alone.
    umask(Mode::from_bits_truncate(0o077));
    let spec = match read_spec() {
        Ok(spec) => spec,
        Err(e) => {
            eprintln!("zos supervise-app: {e}");
            return ExitCode::from(2);
        }
    };
    let ready = match take_stdout() {
        Ok(fd) => File::from(fd),
        Err(e) => {
            eprintln!("zos supervise-app: {e}");
            return ExitCode::from(2);
        }
    };
    // Out of the daemon's session and process group: a terminal's SIGINT
    // or SIGHUP for the daemon does not reach the app.
    if let Err(e) = nix::unistd::setsid() {
        tracing::warn!("setsid: {e}");
    }
    match run(&spec, ready) {
        Ok(()) => ExitCode::SUCCESS,
        Err(()) => ExitCode::from(1),
    }
}

fn read_spec() -> Result<SupervisorSpec, String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .take(MAX_LINE as u64)
        .read_line(&mut line)
        .map_err(|e| format!("read the spec: {e}"))?;
    serde_json::from_str(&line).map_err(|e| format!("bad spec {line:?}: {e}"))
}

/// Moves our stdout (the daemon's pipe) to a close-on-exec descriptor and
/// points stdout at stderr.
fn take_stdout() -> Result<OwnedFd, String> {
    // No other thread runs yet, so nothing can fork between the dup and the flag.
    let fd = nix::unistd::dup(std::io::stdout().as_fd())
        .map_err(|e| format!("keep the report pipe: {e}"))?;
    fcntl(fd.as_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
        .map_err(|e| format!("keep the report pipe: {e}"))?;
    nix::unistd::dup2_stdout(std::io::stderr().as_fd())
        .map_err(|e| format!("point stdout at stderr: {e}"))?;
    Ok(fd)
}

/// Tells the daemon how the start went (one JSON line), then closes.
fn report(mut ready: File, outcome: Result<&AppRecord, String>) {
    let line = serde_json::to_string(&outcome).expect("reports serialise");
    let _ = writeln!(ready, "{line}");
}

fn run(spec: &SupervisorSpec, ready: File) -> Result<(), ()> {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            report(ready, Err(format!("cannot start a runtime: {e}")));
            return Err(());
        }
    };
    // On this (the main) thread: Xvnc dies with it.
    let display = match VirtualDisplay::start(&spec.runtime, DEFAULT_GEOMETRY) {
        Ok(d) => d,
        Err(e) => {
            report(ready, Err(format!("cannot start a virtual display: {e}")));
            return Err(());
        }
    };
    // The app's windows fill the display and get the keyboard; if that
    // fails the app still runs, in its corner.
    let windows = AppWindows::start(&display)
        .inspect_err(|e| tracing::warn!("task {}: cannot manage its windows: {e}", spec.id))
        .ok();
    runtime.block_on(supervise(spec, display, windows, ready))
}

async fn supervise(
    spec: &SupervisorSpec,
    display: VirtualDisplay,
    windows: Option<AppWindows>,
    ready: File,
) -> Result<(), ()> {
    let id = spec.id;
    let mut child = match launch_app(&display, &spec.argv) {
        Ok(c) => c,
        Err(e) => {
            let program = spec.argv.first().cloned().unwrap_or_default();
            report(ready, Err(format!("cannot start {program:?}: {e}")));
            return Err(());
        }
    };
    let record = AppRecord {
        id,
        argv: spec.argv.clone(),
        since: crate::migrants::unix_seconds(SystemTime::now()),
        supervisor_pid: std::process::id(),
        app_pid: child.id().unwrap_or(0),
        display_number: display.number(),
        xvnc_pid: display.pid(),
        rfb_socket: display.rfb_socket().to_path_buf(),
        xauthority: display.xauthority().to_path_buf(),
    };
    let socket = record::socket_path(&spec.runtime, id);
    let listener = match bind(&socket) {
        Ok(l) => l,
        Err(e) => {
            report(ready, Err(e));
            let _ = child.kill().await;
            return Err(());
        }
    };
    if let Err(e) = record::write_record(&spec.runtime, &record) {
        report(ready, Err(e.to_string()));
        let _ = std::fs::remove_file(&socket);
        let _ = child.kill().await;
        return Err(());
    }
    report(ready, Ok(&record));
    tracing::info!(
        "task {id}: supervising {:?} (pid {}) on display {} (Xvnc pid {})",
        spec.argv,
        record.app_pid,
        record.display(),
        record.xvnc_pid
    );

    let (ended_tx, ended) = watch::channel(None::<String>);
    let stop = CancellationToken::new();
    let clients = tokio::spawn(accept(listener, record.clone(), ended, stop.clone()));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let status = tokio::select! {
        status = child.wait() => describe(status),
        _ = stop.cancelled() => terminate(id, &mut child).await,
        _ = async { match term.as_mut() { Some(t) => t.recv().await, None => std::future::pending().await } } => {
            tracing::info!("task {id}: SIGTERM");
            terminate(id, &mut child).await
        }
    };
    tracing::info!("task {id} ended: {status}");
    // No new clients; then the display goes, then the watchers hear of it.
    let _ = std::fs::remove_file(&socket);
    let _ = std::fs::remove_file(record::record_path(&spec.runtime, id));
    drop(windows);
    drop(display);
    let _ = ended_tx.send(Some(status));
    let _ = tokio::time::timeout(LINGER, clients).await;
    Ok(())
}

/// Binds the supervisor's socket (0600, in the 0700 runtime dir),
/// replacing a dead one's.
fn bind(socket: &Path) -> Result<UnixListener, String> {
    if std::os::unix::net::UnixStream::connect(socket).is_ok() {
        return Err(format!(
            "another supervisor serves {} already",
            socket.display()
        ));
    }
    let _ = std::fs::remove_file(socket);
    let listener =
        UnixListener::bind(socket).map_err(|e| format!("bind {}: {e}", socket.display()))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("chmod {}: {e}", socket.display()))?;
    Ok(listener)
}

/// SIGTERM to the app, SIGKILL after [`STOP_GRACE`]; how it ended.
async fn terminate(id: u64, child: &mut Child) -> String {
    if let Some(pid) = child.id() {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
    }
    match tokio::time::timeout(STOP_GRACE, child.wait()).await {
        Ok(status) => describe(status),
        Err(_) => {
            tracing::warn!("task {id}: the app ignored SIGTERM; killing it");
            let _ = child.kill().await;
            describe(child.wait().await)
        }
    }
}

fn describe(status: std::io::Result<std::process::ExitStatus>) -> String {
    match status {
        Ok(s) => s.to_string(),
        Err(e) => format!("unknown ({e})"),
    }
}

/// Serves clients until the supervisor ends (the task is aborted or the
/// end is announced and every client has been told).
async fn accept(
    listener: UnixListener,
    record: AppRecord,
    ended: watch::Receiver<Option<String>>,
    stop: CancellationToken,
) {
    let places = Arc::new(Semaphore::new(MAX_CLIENTS));
    let mut clients = tokio::task::JoinSet::new();
    let mut end = ended.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let Ok(place) = places.clone().try_acquire_owned() else {
                    tracing::warn!("task {}: refused a client, {MAX_CLIENTS} are served", record.id);
                    continue;
                };
                let (record, ended, stop) = (record.clone(), ended.clone(), stop.clone());
                clients.spawn(async move {
                    serve_client(stream, &record, ended, &stop).await;
                    drop(place);
                });
            }
            _ = async { let _ = end.wait_for(Option::is_some).await; } => break,
        }
    }
    drop(listener);
    while clients.join_next().await.is_some() {}
}

async fn serve_client(
    stream: UnixStream,
    record: &AppRecord,
    mut ended: watch::Receiver<Option<String>>,
    stop: &CancellationToken,
) {
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader).take(MAX_LINE as u64);
    let mut line = String::new();
    let request = match tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line)).await {
        Ok(Ok(n)) if n > 0 => serde_json::from_str::<SupervisorRequest>(&line)
            .map_err(|e| format!("bad request: {e}")),
        _ => return,
    };
    let answer = match &request {
        Ok(SupervisorRequest::Info | SupervisorRequest::Watch) => {
            SupervisorEvent::Running(record.clone())
        }
        Ok(SupervisorRequest::Stop) => SupervisorEvent::Stopping,
        Err(message) => SupervisorEvent::Error {
            message: message.clone(),
        },
    };
    if send(&mut writer, &answer).await.is_err() {
        return;
    }
    match request {
        Ok(SupervisorRequest::Watch) => {
            let status = match ended.wait_for(Option::is_some).await {
                Ok(status) => status.clone().unwrap_or_default(),
                Err(_) => String::from("the supervisor ended"),
            };
            let _ = send(&mut writer, &SupervisorEvent::Ended { status }).await;
        }
        Ok(SupervisorRequest::Stop) => {
            tracing::info!("task {}: stop asked for", record.id);
            stop.cancel();
        }
        _ => {}
    }
}

async fn send(
    writer: &mut tokio::net::unix::OwnedWriteHalf,
    event: &SupervisorEvent,
) -> std::io::Result<()> {
    let mut line = serde_json::to_string(event).expect("events serialise");
    line.push('\n');
    writer.write_all(line.as_bytes()).await
}
