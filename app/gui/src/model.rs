//! What the window knows: the daemon's latest answers and the state of the
//! user's dialogs. The worker's [`Event`]s update it; the drawing code reads
//! it and returns [`Command`]s. It holds no I/O, so tests drive it directly.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use zos_netproto::Level;
use zos_netproto::control::{StatusInfo, TaskInfo};
use zos_netproto::discovery::HostInfo;

use crate::dominating::Pending;
use crate::move_requests::{CheckpointDialog, Question};
use crate::moves::Moves;
use crate::worker::{Command, Event};

/// The length of a pairing code.
pub const CODE_LEN: usize = 6;

/// Everything the window shows.
#[derive(Debug, Default)]
pub struct Model {
    /// Zombies seen by the daemon, sorted by name.
    pub hosts: Vec<HostInfo>,
    /// Why the host list could not be fetched while the daemon answers.
    pub hosts_error: Option<String>,
    /// The daemon's own state, once known.
    pub status: Option<StatusInfo>,
    /// Why the daemon cannot be reached, while it cannot.
    pub daemon_error: Option<String>,
    /// The zombies this master is paired with: fingerprint → level held.
    pub paired: HashMap<String, Level>,
    /// The names they were paired under: fingerprint → name.
    pub paired_names: HashMap<String, String>,
    /// The pairing dialog.
    pub pair: PairDialog,
    /// The last ping to each host, by instance.
    pub pings: HashMap<String, PingState>,
    /// A domination or release in progress, or its failure, by instance.
    pub dominations: HashMap<String, Pending>,
    /// The host whose icon was clicked last, by instance.
    pub selected: Option<String>,
    /// Whether the daemon has answered (or failed to) at least once.
    pub polled: bool,
    /// The master's tasks, by id.
    pub tasks: Vec<TaskInfo>,
    /// The moves the window asked for, their progress and outcome.
    pub moves: Moves,
    /// A move waiting for the user's yes (dominate first, or restore from
    /// an old image).
    pub ask: Option<Question>,
    /// The Checkpoint… dialog, while open.
    pub checkpoint: Option<CheckpointDialog>,
    /// Viewers to open on the next frame (each asked for by the user: none
    /// opens by itself).
    pending_views: Vec<u64>,
    /// The host set last reported in the log, by instance.
    logged: Option<Vec<String>>,
}

/// The pairing dialog's state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PairDialog {
    /// Whether it is open.
    pub open: bool,
    /// The chosen host, by instance.
    pub host: Option<String>,
    /// The code typed so far (digits only).
    pub code: String,
    /// Progress of the last attempt.
    pub state: PairState,
    /// Whether the code field should take the keyboard focus.
    pub focus_code: bool,
}

/// Progress of a pairing attempt.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum PairState {
    /// Nothing sent yet.
    #[default]
    Idle,
    /// Waiting for the daemon.
    Busy,
    /// Paired: the zombie's name and the level granted.
    Paired(String, Level),
    /// The daemon's error.
    Failed(String),
}

/// The last ping to a host.
#[derive(Clone, Debug, PartialEq)]
pub enum PingState {
    /// Waiting for the answer.
    Busy,
    /// The round trip.
    Rtt(Duration),
    /// Why it failed.
    Failed(String),
}

impl Model {
    /// Takes in one answer from the worker.
    pub fn apply(&mut self, event: Event) {
        match event {
            Event::Hosts(Ok(mut hosts)) => {
                hosts.sort_by(|a, b| a.name.cmp(&b.name).then(a.instance.cmp(&b.instance)));
                self.hosts = hosts;
                self.hosts_error = None;
                self.polled = true;
                self.forget_departed();
            }
            Event::Hosts(Err(message)) => {
                self.hosts.clear();
                self.hosts_error = Some(message);
                self.polled = true;
                self.forget_departed();
            }
            Event::Status(Ok(status)) => {
                self.status = Some(status);
                self.daemon_error = None;
            }
            Event::Status(Err(message)) => {
                self.daemon_error = Some(message);
            }
            Event::Trust(Ok(entries)) => {
                let known: Vec<_> = entries
                    .iter()
                    .filter_map(|e| Some((e.public_key().ok()?.fingerprint().0, e)))
                    .collect();
                self.paired = known.iter().map(|(fp, e)| (fp.clone(), e.level)).collect();
                self.paired_names = known
                    .into_iter()
                    .map(|(fp, e)| (fp, e.name.clone()))
                    .collect();
            }
            Event::Tasks(Ok(tasks)) => {
                self.tasks = tasks;
                let tasks = &self.tasks;
                self.moves
                    .retain_tasks(|id| tasks.iter().any(|t| t.id == id));
            }
            Event::Tasks(Err(message)) => {
                // The daemon is down: what it listed is not known to run.
                tracing::debug!("tasks unknown: {message}");
                self.tasks.clear();
            }
            Event::Trust(Err(message)) => {
                tracing::debug!("paired zombies unknown: {message}");
            }
            Event::Paired { host, result } => {
                if self.pair.host.as_deref() == Some(host.as_str()) {
                    self.pair.state = match result {
                        Ok((name, level)) => PairState::Paired(name, level),
                        Err(message) => PairState::Failed(message),
                    };
                }
            }
            Event::Domination { host, result } => match result {
                Ok(what) => {
                    tracing::info!("{what}");
                    self.dominations.remove(&host);
                }
                // Withdrawn on the user's request: nothing to report.
                Err(_) if self.dominations.get(&host) == Some(&Pending::Cancelling) => {
                    self.dominations.remove(&host);
                }
                Err(message) => {
                    self.dominations.insert(host, Pending::Failed(message));
                }
            },
            Event::DominationAsking { host, timeout } => {
                if self.dominations.get(&host) == Some(&Pending::Busy) {
                    let since = Instant::now();
                    self.dominations
                        .insert(host, Pending::Asking { since, timeout });
                }
            }
            Event::MoveStep { task, step } => self.moves.step(task, step),
            Event::MoveProgress { task, progress } => self.moves.progress(task, progress),
            Event::MoveEnded { task, result } => self.moves.end(task, result, Instant::now()),
            Event::Pinged { host, result } => {
                let state = match result {
                    Ok(rtt) => PingState::Rtt(rtt),
                    Err(message) => PingState::Failed(message),
                };
                self.pings.insert(host, state);
            }
        }
    }

    /// Drops what belongs to hosts that left the list.
    fn forget_departed(&mut self) {
        let hosts = &self.hosts;
        let present = |instance: &str| hosts.iter().any(|h| h.instance == instance);
        self.pings.retain(|instance, _| present(instance));
        self.dominations.retain(|instance, _| present(instance));
        if self.selected.as_deref().is_some_and(|s| !present(s)) {
            self.selected = None;
        }
    }

    /// Looks a host up by instance.
    pub fn host(&self, instance: &str) -> Option<&HostInfo> {
        self.hosts.iter().find(|h| h.instance == instance)
    }

    /// The level this master holds on `host`, if paired with it.
    pub fn paired_level(&self, host: &HostInfo) -> Option<Level> {
        self.paired.get(&host.fingerprint).copied()
    }

    /// Opens the pairing dialog, preselecting `host` (an instance) if given.
    pub fn open_pairing(&mut self, host: Option<String>) {
        self.pair = PairDialog {
            open: true,
            host: host.or_else(|| self.hosts.first().map(|h| h.instance.clone())),
            code: String::new(),
            state: PairState::Idle,
            focus_code: true,
        };
    }

    /// Keeps only digits in the typed code, at most [`CODE_LEN`] of them.
    pub fn clean_code(&mut self) {
        self.pair.code.retain(|c| c.is_ascii_digit());
        self.pair.code.truncate(CODE_LEN);
    }

    /// Whether the dialog holds everything a pairing needs.
    pub fn can_pair(&self) -> bool {
        self.pair.code.len() == CODE_LEN
            && matches!(self.pair.state, PairState::Idle | PairState::Failed(_))
            && self
                .pair
                .host
                .as_deref()
                .is_some_and(|h| self.host(h).is_some())
    }

    /// The command for the dialog's Pair button, marking the attempt busy.
    pub fn start_pairing(&mut self) -> Option<Command> {
        if !self.can_pair() {
            return None;
        }
        self.pair.state = PairState::Busy;
        Some(Command::Pair {
            host: self.pair.host.clone()?,
            code: self.pair.code.clone(),
        })
    }

    /// Whether this master dominates `host`.
    pub fn dominated_by_us(&self, host: &HostInfo) -> bool {
        let ours = self.status.as_ref().map(|s| s.name.as_str());
        host.dominated
            .as_ref()
            .is_some_and(|d| Some(d.master.as_str()) == ours)
    }

    /// The command for a host's Dominate or Release button.
    pub fn start_domination(&mut self, instance: &str, release: bool) -> Command {
        self.dominations.insert(instance.to_owned(), Pending::Busy);
        let host = instance.to_owned();
        if release {
            Command::Release { host }
        } else {
            Command::Dominate { host }
        }
    }

    /// The command for the Cancel button of a domination waiting for the
    /// zombie's user: the request is withdrawn.
    pub fn cancel_domination(&mut self, instance: &str) -> Option<Command> {
        let pending = self.dominations.get_mut(instance)?;
        if !matches!(pending, Pending::Busy | Pending::Asking { .. }) {
            return None;
        }
        *pending = Pending::Cancelling;
        Some(Command::CancelDomination {
            host: instance.to_owned(),
        })
    }

    /// Whether the zombie `host` no longer trusts this master (its user
    /// revoked it): it must be paired again.
    pub fn revoked(&self, host: &HostInfo) -> bool {
        host.revoked
    }

    /// Whether this master's keyboard and mouse drive `host` now.
    pub fn driven(&self, host: &HostInfo) -> bool {
        self.status.as_ref().is_some_and(|s| {
            s.sessions
                .iter()
                .any(|session| session.driven && session.fingerprint == host.fingerprint)
        })
    }

    /// The command for a host's Drive (or Stop driving) button.
    pub fn start_drive(&mut self, host: &HostInfo, on: bool) -> Command {
        self.dominations
            .insert(host.instance.clone(), Pending::Busy);
        Command::Drive {
            host: host.instance.clone(),
            fingerprint: host.fingerprint.clone(),
            on,
        }
    }

    /// The command for a host's Ping button, marking the ping busy.
    pub fn start_ping(&mut self, instance: &str) -> Command {
        self.pings.insert(instance.to_owned(), PingState::Busy);
        Command::Ping {
            host: instance.to_owned(),
        }
    }

    /// The viewers to open now: every one the user asked for since the
    /// last frame (a shared app gets none by itself; the tasks panel lists
    /// it with a View button).
    pub fn take_views(&mut self) -> Vec<Command> {
        self.pending_views
            .drain(..)
            .map(|task| Command::View { task })
            .collect()
    }

    /// Asks for a viewer of `task` (its View button).
    pub fn view(&mut self, task: u64) {
        self.pending_views.push(task);
    }

    /// Logs `window shows N hosts: a, b` when the set of hosts on screen
    /// differs from the one logged last. Returns whether it logged.
    pub fn log_shown_hosts(&mut self) -> bool {
        if !self.polled {
            return false;
        }
        let mut shown: Vec<String> = self.hosts.iter().map(|h| h.instance.clone()).collect();
        shown.sort();
        if self.logged.as_ref() == Some(&shown) {
            return false;
        }
        let names: Vec<&str> = self.hosts.iter().map(|h| h.name.as_str()).collect();
        tracing::info!("window shows {} hosts: {}", names.len(), names.join(", "));
        self.logged = Some(shown);
        true
    }
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
