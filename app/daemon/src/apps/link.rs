//! The daemon's side of a supervisor: starting one, and asking it over its
//! socket what runs ([`info`]), to be told when the app ends ([`watch`]),
//! or to end it ([`stop`]).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use super::record::{
    self, AppRecord, MAX_LINE, SupervisorEvent, SupervisorRequest, SupervisorSpec,
};
use crate::error::{DaemonError, Result};

/// The hidden subcommand of the `zos` binary that runs a supervisor.
pub const SUPERVISE_COMMAND: &str = "supervise-app";

/// How long a supervisor may take to start the display and the app.
const START_TIMEOUT: Duration = Duration::from_secs(40);
/// How long a supervisor may take to answer a request.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// A running shared app under its supervisor.
#[derive(Debug)]
pub struct Supervised {
    /// What runs.
    pub record: AppRecord,
    /// The supervisor's socket.
    pub socket: PathBuf,
    /// The supervisor process, when this daemon started it (to reap it).
    pub child: Option<Child>,
}

/// Starts a supervisor (`PROGRAM supervise-app`) for task `id` running
/// `argv`, and waits until the app runs (or says why it does not). Blocks.
pub fn start(program: &Path, runtime: &Path, id: u64, argv: &[String]) -> Result<Supervised> {
    let dir = record::apps_dir(runtime);
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {}
        Err(e) => return Err(DaemonError::io(format!("create {}", dir.display()), e)),
    }
    let spec = SupervisorSpec {
        runtime: runtime.to_path_buf(),
        id,
        argv: argv.to_vec(),
    };
    // Not tied to the daemon (no PR_SET_PDEATHSIG): the app outlives a
    // daemon that dies. It leaves our session itself.
    let mut child = Command::new(program)
        .arg(SUPERVISE_COMMAND)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| DaemonError::io(format!("start {}", program.display()), e))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut line = serde_json::to_string(&spec).expect("specs serialise");
    line.push('\n');
    let sent = stdin.write_all(line.as_bytes());
    drop(stdin);
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(format!("task-{id}-start"))
        .spawn(move || {
            let mut line = String::new();
            let read = BufReader::new(stdout.take(MAX_LINE as u64)).read_line(&mut line);
            let _ = tx.send(read.map(|_| line));
        })
        .map_err(|e| DaemonError::io("start a thread", e))?;
    let report = match (sent, rx.recv_timeout(START_TIMEOUT)) {
        (Ok(()), Ok(Ok(line))) if !line.is_empty() => {
            serde_json::from_str::<std::result::Result<AppRecord, String>>(&line)
                .map_err(|e| format!("the supervisor said {line:?}: {e}"))
        }
        (Err(e), _) => Err(format!("the supervisor took no spec: {e}")),
        (_, Ok(_)) => Err("the supervisor ended before the app ran".into()),
        (_, Err(_)) => Err(format!(
            "the app did not start within {} s",
            START_TIMEOUT.as_secs()
        )),
    };
    match report.and_then(|r| r) {
        Ok(record) if record.id == id && record.files_are_in(runtime) => Ok(Supervised {
            socket: record::socket_path(runtime, id),
            record,
            child: Some(child),
        }),
        Ok(_) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(DaemonError::User(
                "the supervisor described another app".into(),
            ))
        }
        Err(reason) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(DaemonError::User(reason))
        }
    }
}

/// Sends `request` and reads the first answer.
async fn ask(socket: &Path, request: SupervisorRequest) -> Result<(SupervisorEvent, Lines)> {
    let exchange = async {
        let mut stream = UnixStream::connect(socket)
            .await
            .map_err(|e| DaemonError::io(format!("connect to {}", socket.display()), e))?;
        let mut line = serde_json::to_string(&request).expect("requests serialise");
        line.push('\n');
        stream
            .write_all(line.as_bytes())
            .await
            .map_err(|e| DaemonError::io("ask the supervisor", e))?;
        let mut lines = Lines::new(stream);
        let first = lines.next().await?.ok_or_else(|| {
            DaemonError::User(format!("{} closed without an answer", socket.display()))
        })?;
        Ok((first, lines))
    };
    tokio::time::timeout(ANSWER_TIMEOUT, exchange)
        .await
        .map_err(|_| {
            DaemonError::User(format!(
                "the supervisor at {} did not answer within {} s",
                socket.display(),
                ANSWER_TIMEOUT.as_secs()
            ))
        })?
}

/// Events from a supervisor, one JSON line each.
struct Lines {
    reader: tokio::io::BufReader<tokio::io::Take<UnixStream>>,
}

impl Lines {
    fn new(stream: UnixStream) -> Lines {
        Lines {
            reader: tokio::io::BufReader::new(stream.take(4 * MAX_LINE as u64)),
        }
    }

    async fn next(&mut self) -> Result<Option<SupervisorEvent>> {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .await
            .map_err(|e| DaemonError::io("read from the supervisor", e))?;
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_str(&line)
            .map(Some)
            .map_err(|e| DaemonError::User(format!("the supervisor said {line:?}: {e}")))
    }
}

fn running(event: SupervisorEvent, socket: &Path) -> Result<AppRecord> {
    match event {
        SupervisorEvent::Running(record) => Ok(record),
        other => Err(DaemonError::User(format!(
            "{} answered {other:?}",
            socket.display()
        ))),
    }
}

/// What the supervisor at `socket` runs.
pub async fn info(socket: &Path) -> Result<AppRecord> {
    let (first, _) = ask(socket, SupervisorRequest::Info).await?;
    running(first, socket)
}

/// A watch on a supervisor: ends when its app has ended and its display is gone.
pub struct Watch {
    lines: Lines,
}

impl Watch {
    /// Waits for the end; how the app ended, in words.
    pub async fn ended(mut self) -> String {
        loop {
            match self.lines.next().await {
                Ok(Some(SupervisorEvent::Ended { status })) => return status,
                Ok(Some(_)) => continue,
                Ok(None) => return "its supervisor ended".into(),
                Err(e) => return format!("its supervisor was lost ({e})"),
            }
        }
    }
}

/// Watches the supervisor at `socket`: what it runs, and its end.
pub async fn watch(socket: &Path) -> Result<(AppRecord, Watch)> {
    let (first, lines) = ask(socket, SupervisorRequest::Watch).await?;
    Ok((running(first, socket)?, Watch { lines }))
}

/// Asks the supervisor at `socket` to end its app.
pub async fn stop(socket: &Path) -> Result<()> {
    match ask(socket, SupervisorRequest::Stop).await?.0 {
        SupervisorEvent::Stopping => Ok(()),
        other => Err(DaemonError::User(format!(
            "{} answered {other:?} to stop",
            socket.display()
        ))),
    }
}
