//! What the zombie's status window knows: who dominates this machine (at
//! what level, since when, where its folders are mounted), the master's
//! shared apps, and how the user's last request went. The
//! [`crate::link`]'s events update it; [`crate::status_ui`] draws it.

use zos_netproto::Level;
use zos_netproto::control::{SessionInfo, StatusInfo, TaskInfo};

use crate::link::{Command, Event};

/// The status window's state.
#[derive(Clone, Debug, Default)]
pub struct ZombieStatus {
    /// The daemon's latest status.
    pub status: Option<StatusInfo>,
    /// Why the daemon cannot be reached, while it cannot.
    pub daemon_error: Option<String>,
    /// The dominating master's tasks.
    pub tasks: Vec<TaskInfo>,
    /// A command on its way.
    pub busy: Option<Command>,
    /// How the last command went.
    pub outcome: Option<Result<String, String>>,
}

/// The domination as the window shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Domination {
    /// The master's name.
    pub master: String,
    /// Its fingerprint.
    pub fingerprint: String,
    /// The level.
    pub level: Level,
    /// For how long, in seconds.
    pub age_s: u64,
    /// Where its shared folders are mounted.
    pub mount: Option<String>,
}

impl ZombieStatus {
    /// Takes in one answer from the daemon.
    pub fn apply(&mut self, event: Event) {
        match event {
            Event::Status(Ok(status)) => {
                self.status = Some(*status);
                self.daemon_error = None;
            }
            Event::Status(Err(message)) => {
                self.daemon_error = Some(message);
                self.tasks.clear();
            }
            Event::Tasks(tasks) => self.tasks = tasks,
            Event::Done { command, result } => {
                if self.busy.as_ref() == Some(&command) {
                    self.busy = None;
                }
                self.outcome = Some(result);
            }
        }
    }

    /// The zombie's name.
    pub fn zombie(&self) -> &str {
        self.status
            .as_ref()
            .map_or("this zombie", |s| s.name.as_str())
    }

    /// The domination, if there is one.
    pub fn domination(&self) -> Option<Domination> {
        let status = self.status.as_ref()?;
        let s: &SessionInfo = status.sessions.iter().find(|s| s.dominating.is_some())?;
        Some(Domination {
            master: s.peer.clone(),
            fingerprint: s.fingerprint.clone(),
            level: s.dominating?,
            age_s: s.age_s,
            mount: s.mount.clone(),
        })
    }

    /// The shared apps among the master's tasks.
    pub fn apps(&self) -> impl Iterator<Item = &TaskInfo> {
        self.tasks.iter().filter(|t| t.kind == "shared")
    }

    /// Starts `command` unless one is on its way.
    pub fn start(&mut self, command: Command) -> Option<Command> {
        if self.busy.is_some() {
            return None;
        }
        self.busy = Some(command.clone());
        self.outcome = None;
        Some(command)
    }
}

/// "3 min", "2 h", "40 s".
pub fn age(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s => format!("{} h", s / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zos_netproto::wire::Role;

    fn dominated() -> StatusInfo {
        StatusInfo {
            role: Role::Zombie,
            name: "desk".into(),
            fingerprint: "ffff".into(),
            listen: None,
            trusted: 1,
            pairing: None,
            sessions: vec![SessionInfo {
                peer: "laptop".into(),
                fingerprint: "1234-5678".into(),
                addr: "10.0.0.1:5000".into(),
                age_s: 200,
                dominating: Some(Level::Partial),
                mount: Some("/run/anima".into()),
                driven: false,
            }],
            asking: None,
            pairing_attempts: Vec::new(),
            session: None,
        }
    }

    #[test]
    fn the_domination_is_read_from_the_dominating_session() {
        let mut s = ZombieStatus::default();
        assert_eq!(s.domination(), None);
        s.apply(Event::Status(Ok(Box::new(dominated()))));
        let d = s.domination().unwrap();
        assert_eq!((d.master.as_str(), d.level), ("laptop", Level::Partial));
        assert_eq!(age(d.age_s), "3 min");
    }

    #[test]
    fn one_command_at_a_time_and_its_outcome_is_kept() {
        let mut s = ZombieStatus::default();
        assert_eq!(s.start(Command::Release), Some(Command::Release));
        assert_eq!(s.start(Command::ShowMasterApps), None);
        s.apply(Event::Done {
            command: Command::Release,
            result: Err("the domination by laptop did not end".into()),
        });
        assert!(s.busy.is_none());
        assert!(matches!(s.outcome, Some(Err(_))));
    }
}
