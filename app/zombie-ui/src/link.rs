//! The windows' link to their daemon: a background thread that polls the
//! control socket and carries out the user's requests, so the window never
//! waits on I/O. Each answer comes back as an [`Event`]; after each one the
//! `notify` callback asks the window to repaint.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use zos_gui::worker::failure;
use zos_netproto::control::{self, Reply, Request, StatusInfo, TaskInfo};

/// Something the user asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Answer the waiting domination request.
    Answer {
        /// Yes or no.
        accept: bool,
        /// Show the master's apps too.
        show_apps: bool,
    },
    /// End the domination.
    Release,
    /// Open a viewer for each of the master's apps, now and as they come.
    ShowMasterApps,
}

/// An answer from the daemon.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The daemon's state, or why it could not be had.
    Status(Result<Box<StatusInfo>, String>),
    /// The dominating master's tasks.
    Tasks(Vec<TaskInfo>),
    /// How a [`Command`] went: what happened, or the daemon's error.
    Done {
        /// The command.
        command: Command,
        /// What happened, in words, or why not.
        result: Result<String, String>,
    },
}

/// The window's end of the link.
pub struct Link {
    commands: Sender<Command>,
    events: Receiver<Event>,
}

impl Link {
    /// Starts polling the daemon at `socket` every `every` (its tasks too,
    /// with `tasks`); `notify` is called after each event.
    pub fn spawn(
        socket: PathBuf,
        every: Duration,
        tasks: bool,
        notify: impl Fn() + Send + 'static,
    ) -> Link {
        let (command_tx, command_rx) = mpsc::channel();
        let (event_tx, event_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("zos-zombie-ui-link".into())
            .spawn(move || poll(&socket, every, tasks, &command_rx, &event_tx, &notify))
            .expect("spawn the link thread");
        Link {
            commands: command_tx,
            events: event_rx,
        }
    }

    /// Queues a command.
    pub fn send(&self, command: Command) {
        let _ = self.commands.send(command);
    }

    /// The events since the last call, oldest first.
    pub fn drain(&self) -> Vec<Event> {
        self.events.try_iter().collect()
    }
}

fn poll(
    socket: &Path,
    every: Duration,
    tasks: bool,
    commands: &Receiver<Command>,
    events: &Sender<Event>,
    notify: &dyn Fn(),
) {
    let mut next = Instant::now();
    loop {
        let now = Instant::now();
        if now >= next {
            let status = status(socket);
            let dominated = status
                .as_ref()
                .is_ok_and(|s| s.sessions.iter().any(|s| s.dominating.is_some()));
            if events.send(Event::Status(status.map(Box::new))).is_err() {
                return;
            }
            if tasks {
                let list = if dominated {
                    master_tasks(socket)
                } else {
                    Vec::new()
                };
                if events.send(Event::Tasks(list)).is_err() {
                    return;
                }
            }
            notify();
            next = now + every;
            continue;
        }
        match commands.recv_timeout(next - now) {
            Ok(command) => {
                // A release waits for the master; the others are quick.
                let result = carry_out(socket, &command);
                if events.send(Event::Done { command, result }).is_err() {
                    return;
                }
                notify();
                next = Instant::now();
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// The daemon's status.
pub fn status(socket: &Path) -> Result<StatusInfo, String> {
    match control::request(socket, &Request::Status) {
        Ok(Reply::Status(s)) => Ok(s),
        other => Err(failure(other)),
    }
}

fn master_tasks(socket: &Path) -> Vec<TaskInfo> {
    match control::request(socket, &Request::Tasks) {
        Ok(Reply::Tasks { tasks }) => tasks,
        _ => Vec::new(),
    }
}

/// Sends `command` to the daemon at `socket`; what happened, in words.
pub fn carry_out(socket: &Path, command: &Command) -> Result<String, String> {
    let request = match *command {
        Command::Answer { accept, show_apps } => Request::Answer { accept, show_apps },
        Command::Release => Request::Release {
            host: String::new(),
            force: false,
        },
        Command::ShowMasterApps => Request::ShowMasterApps,
    };
    match control::request(socket, &request) {
        Ok(Reply::Done) => Ok(match command {
            Command::Answer { accept: true, .. } => "accepted".into(),
            Command::Answer { accept: false, .. } => "refused".into(),
            Command::Release => "released".into(),
            Command::ShowMasterApps => "showing the master's apps".into(),
        }),
        Ok(Reply::Released { name }) => Ok(format!("released from {name}")),
        other => Err(failure(other)),
    }
}
