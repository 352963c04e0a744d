//! The window's link to its daemon: a background thread that polls the
//! control socket and runs the user's requests, so that no blocking I/O ever
//! happens on the UI thread.
//!
//! The worker polls `Hosts` every [`POLL_INTERVAL`] (and `Status` and
//! `Tasks` with it),
//! runs each pairing, ping or move on a thread of its own (they may take
//! seconds or minutes; a move's progress replies come back as they arrive),
//! and sends every answer back as an [`Event`]. After each event it calls the
//! `notify` callback, which the window uses to ask egui for a repaint.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use zos_netproto::Level;
use zos_netproto::control::{self, Reply, Request, StatusInfo, TaskInfo};
use zos_netproto::discovery::HostInfo;
use zos_netproto::trust::PeerEntry;

use crate::moves::{MoveOutcome, Progress};

mod domination;
mod moves;

pub(crate) use domination::dominate;
use domination::{Waiting, dominate_cancellable};

/// How often the host list and the daemon's status are fetched.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// The list of paired zombies is fetched every this many polls (and after
/// each pairing).
const TRUST_EVERY: u32 = 4;

/// Something the user asked for.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Pair with a zombie using the code it shows.
    Pair {
        /// The zombie, as the control protocol names it (its instance).
        host: String,
        /// The 6-digit code.
        code: String,
    },
    /// One round trip to a zombie.
    Ping {
        /// The zombie, as the control protocol names it (its instance).
        host: String,
    },
    /// Take a paired zombie over (the zombie's user may have to accept).
    Dominate {
        /// The zombie, as the control protocol names it (its instance).
        host: String,
    },
    /// Withdraw a domination request that waits for the zombie's user
    /// (the connection carrying it is closed, so the daemon sees its client
    /// leave).
    CancelDomination {
        /// The zombie, as in its `Dominate`.
        host: String,
    },
    /// End the domination of a zombie.
    Release {
        /// The zombie, as the control protocol names it (its instance).
        host: String,
    },
    /// Move a migrant to a zombie (`Migrate`), dominating it at `complete`
    /// first if asked.
    Migrate {
        /// The task id.
        task: u64,
        /// The zombie, by the name the daemon knows it (its paired name).
        host: String,
        /// Send `Dominate{host, complete}` first.
        dominate_first: bool,
    },
    /// Bring a suspended migrant back from its snapshot (`Resume`), on the
    /// master or (`on`) moved live to a zombie after, dominated at
    /// `complete` first if asked.
    Resume {
        /// The task id.
        task: u64,
        /// The zombie to run it on, by the name the daemon knows it (its
        /// paired name); `None`: the master.
        on: Option<String>,
        /// Send `Dominate{on, complete}` first.
        dominate_first: bool,
    },
    /// Bring a migrant home (`Home`).
    Home {
        /// The task id.
        task: u64,
        /// From the last image the master holds (the zombie is lost).
        from_image: bool,
    },
    /// Save a migrant's image into a directory (`CheckpointTask`).
    Checkpoint {
        /// The task id.
        task: u64,
        /// The directory.
        out: String,
    },
    /// Send this master's keyboard and mouse to a dominated zombie's ZOS
    /// session (`on`), or give them back.
    Drive {
        /// The zombie, as the window knows it (its instance).
        host: String,
        /// Its key fingerprint: the daemon finds the zombie's input link by it.
        fingerprint: String,
        /// Drive it (or stop).
        on: bool,
    },
    /// Open a viewer window for a shared app. The window carries this out
    /// itself (it starts a viewer process); the worker ignores it.
    View {
        /// The task id.
        task: u64,
    },
}

/// An answer from the daemon, for the window's model.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The zombies the daemon sees, or why they could not be fetched.
    Hosts(Result<Vec<HostInfo>, String>),
    /// The daemon's own state, or why it could not be fetched.
    Status(Result<StatusInfo, String>),
    /// The zombies this master is paired with, or why they are unknown.
    Trust(Result<Vec<PeerEntry>, String>),
    /// The master's tasks, or why they could not be fetched.
    Tasks(Result<Vec<TaskInfo>, String>),
    /// The outcome of a [`Command::Pair`].
    Paired {
        /// The host as given in the command.
        host: String,
        /// The zombie's name and the level granted, or the daemon's error.
        result: Result<(String, Level), String>,
    },
    /// The outcome of a [`Command::Dominate`], [`Command::Release`] or
    /// [`Command::Drive`].
    Domination {
        /// The host as given in the command.
        host: String,
        /// What happened, in words, or the daemon's error.
        result: Result<String, String>,
    },
    /// The zombie of a [`Command::Dominate`] asks its user, who has
    /// `timeout` to answer.
    DominationAsking {
        /// The host as given in the command.
        host: String,
        /// How long its user has.
        timeout: Duration,
    },
    /// A step before a move itself (dominating the zombie first).
    MoveStep {
        /// The task id.
        task: u64,
        /// What happens, in words.
        step: String,
    },
    /// A move's progress reply.
    MoveProgress {
        /// The task id.
        task: u64,
        /// The phase and its numbers.
        progress: Progress,
    },
    /// The outcome of a [`Command::Migrate`], [`Command::Home`] or
    /// [`Command::Checkpoint`].
    MoveEnded {
        /// The task id.
        task: u64,
        /// What happened with the phase times, or why it did not.
        result: Result<MoveOutcome, String>,
    },
    /// The outcome of a [`Command::Ping`].
    Pinged {
        /// The host as given in the command.
        host: String,
        /// The round trip, or the daemon's error.
        result: Result<Duration, String>,
    },
}

pub(crate) type Notify = Arc<dyn Fn() + Send + Sync>;

/// The UI thread's end of the worker.
pub struct Worker {
    commands: Sender<Command>,
    events: Receiver<Event>,
}

impl Worker {
    /// Starts the worker thread for the daemon at `socket`. `notify` is
    /// called (from worker threads) after each event is sent.
    pub fn spawn(socket: PathBuf, notify: impl Fn() + Send + Sync + 'static) -> Worker {
        let (command_tx, command_rx) = mpsc::channel();
        let (event_tx, event_rx) = mpsc::channel();
        let notify: Notify = Arc::new(notify);
        thread::Builder::new()
            .name("zos-gui-worker".into())
            .spawn(move || poll_loop(&socket, &command_rx, &event_tx, &notify))
            .expect("spawn the worker thread");
        Worker {
            commands: command_tx,
            events: event_rx,
        }
    }

    /// Queues a command; its answer arrives later as an [`Event`].
    pub fn send(&self, command: Command) {
        // The worker only stops when this end is dropped.
        let _ = self.commands.send(command);
    }

    /// The events that arrived since the last call, oldest first.
    pub fn drain(&self) -> Vec<Event> {
        self.events.try_iter().collect()
    }
}

/// Polls until the UI end goes away, running commands in between.
fn poll_loop(socket: &Path, commands: &Receiver<Command>, events: &Sender<Event>, notify: &Notify) {
    let mut next_poll = Instant::now();
    let mut polls = 0u32;
    let waiting: Waiting = Arc::default();
    loop {
        let now = Instant::now();
        if now >= next_poll {
            let mut batch = vec![
                Event::Hosts(fetch_hosts(socket)),
                Event::Status(fetch_status(socket)),
                Event::Tasks(fetch_tasks(socket)),
            ];
            if polls % TRUST_EVERY == 0 {
                batch.push(Event::Trust(fetch_trust(socket)));
            }
            polls = polls.wrapping_add(1);
            if batch.into_iter().any(|e| events.send(e).is_err()) {
                return;
            }
            notify();
            next_poll = now + POLL_INTERVAL;
            continue;
        }
        match commands.recv_timeout(next_poll - now) {
            Ok(Command::View { .. }) => {}
            Ok(Command::CancelDomination { host }) => {
                let stream = waiting
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&host);
                if let Some(stream) = stream {
                    tracing::info!(%host, "withdrawing the domination request");
                    let _ = stream.shutdown(std::net::Shutdown::Both);
                }
            }
            Ok(command) => run_command(socket, command, events, notify, &waiting),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Runs one command on a thread of its own, so polling goes on meanwhile.
fn run_command(
    socket: &Path,
    command: Command,
    events: &Sender<Event>,
    notify: &Notify,
    waiting: &Waiting,
) {
    let socket = socket.to_path_buf();
    let events = events.clone();
    let notify = notify.clone();
    let waiting = waiting.clone();
    let spawned = thread::Builder::new()
        .name("zos-gui-command".into())
        .spawn(move || {
            let event = match command {
                Command::Pair { host, code } => {
                    tracing::info!(%host, "pairing");
                    let result = pair(&socket, &host, &code);
                    if result.is_ok() {
                        let _ = events.send(Event::Trust(fetch_trust(&socket)));
                    }
                    Event::Paired { host, result }
                }
                Command::Ping { host } => {
                    let result = ping(&socket, &host);
                    Event::Pinged { host, result }
                }
                Command::Dominate { host } => {
                    let result = dominate_cancellable(&socket, &host, &events, &notify, &waiting);
                    Event::Domination { host, result }
                }
                Command::Release { host } => {
                    let result = match control::request(
                        &socket,
                        &Request::Release {
                            host: host.clone(),
                            force: false,
                        },
                    ) {
                        Ok(Reply::Released { name }) => Ok(format!("released {name}")),
                        other => Err(failure(other)),
                    };
                    Event::Domination { host, result }
                }
                Command::Migrate { .. }
                | Command::Resume { .. }
                | Command::Home { .. }
                | Command::Checkpoint { .. } => moves::run(&socket, command, &events, &notify),
                Command::Drive {
                    host,
                    fingerprint,
                    on,
                } => {
                    let result = drive(&socket, on.then_some(fingerprint));
                    Event::Domination { host, result }
                }
                Command::View { .. } | Command::CancelDomination { .. } => return,
            };
            if events.send(event).is_ok() {
                notify();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start a thread for a command: {e}");
    }
}

fn fetch_hosts(socket: &Path) -> Result<Vec<HostInfo>, String> {
    match control::request(socket, &Request::Hosts) {
        Ok(Reply::Hosts { hosts }) => Ok(hosts),
        other => Err(failure(other)),
    }
}

fn fetch_status(socket: &Path) -> Result<StatusInfo, String> {
    match control::request(socket, &Request::Status) {
        Ok(Reply::Status(status)) => Ok(status),
        other => Err(failure(other)),
    }
}

fn fetch_tasks(socket: &Path) -> Result<Vec<TaskInfo>, String> {
    match control::request(socket, &Request::Tasks) {
        Ok(Reply::Tasks { tasks }) => Ok(tasks),
        other => Err(failure(other)),
    }
}

fn fetch_trust(socket: &Path) -> Result<Vec<PeerEntry>, String> {
    match control::request(socket, &Request::TrustList) {
        Ok(Reply::Trust { entries }) => Ok(entries),
        other => Err(failure(other)),
    }
}

fn pair(socket: &Path, host: &str, code: &str) -> Result<(String, Level), String> {
    let request = Request::Pair {
        host: host.to_owned(),
        code: code.to_owned(),
    };
    match control::request(socket, &request) {
        Ok(Reply::Paired { name, level, .. }) => Ok((name, level)),
        other => Err(failure(other)),
    }
}

/// `zos drive`: the window's own display is the one to capture if the
/// daemon has none.
fn drive(socket: &Path, host: Option<String>) -> Result<String, String> {
    let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
    let request = Request::Drive {
        host,
        edge: None,
        display: var("DISPLAY"),
        xauthority: var("XAUTHORITY"),
    };
    match control::request(socket, &request) {
        Ok(Reply::Driving { message, .. }) => Ok(message),
        other => Err(failure(other)),
    }
}

fn ping(socket: &Path, host: &str) -> Result<Duration, String> {
    let request = Request::Ping {
        host: host.to_owned(),
        count: 1,
        interval_ms: 0,
    };
    let mut rtt = None;
    let last = control::call(socket, &request, |reply| {
        if let Reply::Pong { rtt_us, .. } = reply {
            rtt = Some(Duration::from_micros(*rtt_us));
        }
    });
    match (last, rtt) {
        (Ok(Reply::Done), Some(rtt)) => Ok(rtt),
        (Ok(Reply::Done), None) => Err("the daemon sent no answer to the ping".into()),
        (other, _) => Err(failure(other)),
    }
}

/// The message for a failed or unexpected exchange.
pub fn failure(outcome: zos_netproto::Result<Reply>) -> String {
    match outcome {
        Ok(Reply::Error { message }) => message,
        Ok(other) => format!("unexpected reply from the daemon: {other:?}"),
        Err(e) => e.to_string(),
    }
}
