//! What the consent prompt knows: the waiting request as the daemon last
//! described it, the countdown, the user's choice and what became of it.
//! The [`crate::link`]'s events update it; [`crate::consent_ui`] draws it.
//! No I/O, so tests drive it directly.

use std::time::{Duration, Instant};

use zos_netproto::control::AskInfo;

use crate::link::{Command, Event};

/// Where the prompt stands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Stage {
    /// Waiting for the user.
    #[default]
    Asking,
    /// The answer is on its way to the daemon.
    Sending {
        /// Accept (or refuse).
        accept: bool,
    },
    /// Answered (by us): the prompt closes.
    Answered {
        /// What was answered, in words.
        what: String,
    },
    /// The request went away (answered elsewhere, withdrawn by the master,
    /// expired): the prompt closes.
    Gone,
    /// The answer could not be given.
    Failed {
        /// The daemon's words.
        message: String,
    },
}

/// The consent prompt's state.
#[derive(Clone, Debug, Default)]
pub struct Consent {
    /// This zombie's name.
    pub zombie: String,
    /// The request, once seen.
    pub ask: Option<AskInfo>,
    /// When it expires (from the daemon's seconds left).
    pub deadline: Option<Instant>,
    /// "Show the master's apps on this screen".
    pub show_apps: bool,
    /// Where it stands.
    pub stage: Stage,
    /// Why the daemon cannot be reached, while it cannot.
    pub daemon_error: Option<String>,
}

impl Consent {
    /// Takes in one answer from the daemon, seen at `now`.
    pub fn apply(&mut self, event: Event, now: Instant) {
        match event {
            Event::Status(Ok(status)) => {
                let status = *status;
                self.daemon_error = None;
                self.zombie = status.name;
                match status.asking {
                    Some(ask) if ask.expires_in_s > 0 => {
                        let fresh = self.ask.as_ref().is_none_or(|a| {
                            a.master != ask.master || a.fingerprint != ask.fingerprint
                        });
                        if fresh || self.deadline.is_none() {
                            self.deadline = Some(now + Duration::from_secs(ask.expires_in_s));
                        }
                        self.ask = Some(ask);
                    }
                    _ if self.ask.is_some() && !matches!(self.stage, Stage::Answered { .. }) => {
                        self.stage = Stage::Gone;
                    }
                    _ => {}
                }
            }
            Event::Status(Err(message)) => self.daemon_error = Some(message),
            Event::Tasks(_) => {}
            Event::Done {
                command: Command::Answer { .. },
                result,
            } => {
                self.stage = match result {
                    Ok(what) => Stage::Answered { what },
                    Err(message) => Stage::Failed { message },
                };
            }
            Event::Done { .. } => {}
        }
    }

    /// Seconds left to answer.
    pub fn seconds_left(&self, now: Instant) -> u64 {
        self.deadline
            .map(|d| d.saturating_duration_since(now).as_secs())
            .unwrap_or(0)
    }

    /// The share of the answering time left, 0 to 1.
    pub fn share_left(&self, now: Instant, total: Duration) -> f32 {
        let left = self
            .deadline
            .map(|d| d.saturating_duration_since(now))
            .unwrap_or_default();
        (left.as_secs_f32() / total.as_secs_f32().max(1.0)).clamp(0.0, 1.0)
    }

    /// Whether the user may still answer.
    pub fn can_answer(&self) -> bool {
        self.ask.is_some() && matches!(self.stage, Stage::Asking | Stage::Failed { .. })
    }

    /// The command for Accept or Refuse, marking the answer as on its way.
    pub fn answer(&mut self, accept: bool) -> Option<Command> {
        if !self.can_answer() {
            return None;
        }
        self.stage = Stage::Sending { accept };
        Some(Command::Answer {
            accept,
            show_apps: accept && self.show_apps,
        })
    }

    /// Whether the prompt has nothing more to do.
    pub fn finished(&self) -> bool {
        matches!(self.stage, Stage::Answered { .. } | Stage::Gone)
    }

    /// The window's title.
    pub fn title(&self) -> String {
        match &self.ask {
            Some(a) => format!("ZOS: {} asks to dominate {}", a.master, self.zombie),
            None => "ZOS: domination request".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zos_netproto::Level;
    use zos_netproto::control::StatusInfo;
    use zos_netproto::wire::Role;

    pub(crate) fn status(asking: Option<u64>) -> StatusInfo {
        StatusInfo {
            role: Role::Zombie,
            name: "desk".into(),
            fingerprint: "aaaa".into(),
            listen: None,
            trusted: 1,
            pairing: None,
            sessions: Vec::new(),
            asking: asking.map(|left| AskInfo {
                master: "laptop".into(),
                fingerprint: "1234-5678-9abc-def0-1234".into(),
                level: Level::Complete,
                expires_in_s: left,
            }),
            pairing_attempts: Vec::new(),
            session: None,
        }
    }

    #[test]
    fn the_countdown_follows_the_daemon_and_an_answer_is_sent_once() {
        let now = Instant::now();
        let mut c = Consent::default();
        c.apply(Event::Status(Ok(Box::new(status(Some(45))))), now);
        assert_eq!(c.title(), "ZOS: laptop asks to dominate desk");
        assert_eq!(c.seconds_left(now + Duration::from_secs(5)), 40);
        c.show_apps = true;
        assert_eq!(
            c.answer(true),
            Some(Command::Answer {
                accept: true,
                show_apps: true
            })
        );
        assert_eq!(c.answer(false), None, "one answer");
        c.apply(
            Event::Done {
                command: Command::Answer {
                    accept: true,
                    show_apps: true,
                },
                result: Ok("accepted".into()),
            },
            now,
        );
        assert!(c.finished());
    }

    #[test]
    fn a_request_answered_elsewhere_or_withdrawn_closes_the_prompt() {
        let now = Instant::now();
        let mut c = Consent::default();
        c.apply(Event::Status(Ok(Box::new(status(Some(30))))), now);
        assert!(!c.finished());
        c.apply(Event::Status(Ok(Box::new(status(None)))), now);
        assert_eq!(c.stage, Stage::Gone);
        assert!(c.finished());
        assert!(!c.can_answer());
    }

    #[test]
    fn a_refusal_never_shows_the_apps() {
        let mut c = Consent::default();
        c.apply(
            Event::Status(Ok(Box::new(status(Some(30))))),
            Instant::now(),
        );
        c.show_apps = true;
        assert_eq!(
            c.answer(false),
            Some(Command::Answer {
                accept: false,
                show_apps: false
            })
        );
    }
}
