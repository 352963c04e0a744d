//! Where a task may go: the verdict for dropping a task's tile on a host's
//! icon or on the master's own ("home"), and the places its menu offers.
//! A suspended task dropped on the master's icon is resumed there; dropped
//! on a zombie's, resumed and moved there (where a running one could go).
//!
//! Migrants go only to a zombie this master dominates at `complete` (a
//! zombie refuses them at `partial`). A free zombie paired at `complete` is
//! dominated first, after the user confirms. Everything else is refused
//! with the reason, shown while the tile hovers and on the tile after a drop.

use zos_netproto::Level;
use zos_netproto::control::TaskInfo;
use zos_netproto::discovery::HostInfo;

use crate::migrant;
use crate::model::Model;
use crate::units;
use crate::worker::Command;

/// Where a task is dropped.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// A zombie's icon.
    Host(&'a HostInfo),
    /// The master's own icon.
    Home,
}

/// What dropping a task there does.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Send this at once.
    Go(Command),
    /// Ask the user this first, then send the command.
    Ask {
        /// The question, e.g. "Dominate desk at complete and move task 3 there?".
        question: String,
        /// The button that says yes.
        yes: String,
        /// What yes sends.
        command: Command,
    },
    /// Nothing to do there, and why.
    Refuse(String),
}

impl Verdict {
    /// Whether the drop does something (for the drop zone's highlight).
    pub fn accepts(&self) -> bool {
        !matches!(self, Verdict::Refuse(_))
    }

    /// A short line for the dragged tile: what letting go here does.
    pub fn hint(&self) -> String {
        match self {
            Verdict::Go(Command::Migrate { host, .. }) => format!("move to {host}"),
            Verdict::Go(Command::Home { .. }) => "bring home".to_owned(),
            Verdict::Go(Command::Resume { on: None, .. }) => "resume here".to_owned(),
            Verdict::Go(Command::Resume { on: Some(host), .. }) => format!("resume on {host}"),
            Verdict::Go(_) => String::new(),
            Verdict::Ask { yes, .. } => yes.to_lowercase(),
            Verdict::Refuse(why) => why.clone(),
        }
    }
}

impl Model {
    /// The name the daemon knows `host` by: the name it was paired under
    /// (what `zos hosts` shows and `zos migrate` takes), else its own.
    pub fn host_name(&self, host: &HostInfo) -> String {
        self.paired_names
            .get(&host.fingerprint)
            .cloned()
            .unwrap_or_else(|| host.name.clone())
    }

    /// The master's own name ("home"), once the daemon said it.
    pub fn master_name(&self) -> &str {
        self.status.as_ref().map_or("", |s| s.name.as_str())
    }

    /// Looks a task up by id.
    pub fn task(&self, id: u64) -> Option<&TaskInfo> {
        self.tasks.iter().find(|t| t.id == id)
    }

    /// What dropping task `id` on `target` does.
    pub fn verdict(&self, id: u64, target: Target<'_>) -> Verdict {
        let Some(task) = self.task(id) else {
            return Verdict::Refuse(format!("task {id} is gone"));
        };
        if !migrant::is_migrant(task) {
            return Verdict::Refuse(format!("task {id} is a {}: only migrants move", task.kind));
        }
        if migrant::is_exited(task) {
            return Verdict::Refuse(format!("task {id} has ended"));
        }
        if self.moves.is_running(id) || migrant::is_moving(task) {
            return Verdict::Refuse(format!("task {id} is moving already"));
        }
        if migrant::is_suspended(task) {
            return self.resume_verdict(task, target);
        }
        match target {
            Target::Home => self.home_verdict(task),
            Target::Host(host) => self.host_verdict(task, host),
        }
    }

    /// A suspended task: resumed on the master, or resumed and moved where a
    /// running one could go.
    fn resume_verdict(&self, task: &TaskInfo, target: Target<'_>) -> Verdict {
        let id = task.id;
        let host = match target {
            Target::Home => {
                return Verdict::Go(Command::Resume {
                    task: id,
                    on: None,
                    dominate_first: false,
                });
            }
            Target::Host(host) => host,
        };
        let resume = |command: Command| match command {
            Command::Migrate {
                host,
                dominate_first,
                ..
            } => Command::Resume {
                task: id,
                on: Some(host),
                dominate_first,
            },
            other => other,
        };
        match self.host_verdict(task, host) {
            Verdict::Go(command) => Verdict::Go(resume(command)),
            Verdict::Ask { command, .. } => {
                let name = self.host_name(host);
                Verdict::Ask {
                    question: format!("Dominate {name} at complete and resume task {id} there?"),
                    yes: "Dominate and resume".to_owned(),
                    command: resume(command),
                }
            }
            refuse => refuse,
        }
    }

    fn home_verdict(&self, task: &TaskInfo) -> Verdict {
        let id = task.id;
        if migrant::is_home(task, self.master_name()) {
            return Verdict::Refuse(format!("task {id} is home already"));
        }
        if migrant::is_lost(task) {
            let Some(age) = migrant::image_age_s(task) else {
                return Verdict::Refuse(format!(
                    "task {id} is lost on {} and the master holds no image of it",
                    migrant::where_(task)
                ));
            };
            return Verdict::Ask {
                question: format!(
                    "Task {id} is lost on {}. Bring it home from its last image ({} old)? \
                     What it did since then is lost.",
                    migrant::where_(task),
                    units::coarse(age)
                ),
                yes: "Bring home from the image".to_owned(),
                command: Command::Home {
                    task: id,
                    from_image: true,
                },
            };
        }
        Verdict::Go(Command::Home {
            task: id,
            from_image: false,
        })
    }

    fn host_verdict(&self, task: &TaskInfo, host: &HostInfo) -> Verdict {
        let id = task.id;
        let name = self.host_name(host);
        if migrant::where_(task) == name {
            return Verdict::Refuse(format!("task {id} runs on {name} already"));
        }
        let migrate = |dominate_first| Command::Migrate {
            task: id,
            host: name.clone(),
            dominate_first,
        };
        match (&host.dominated, self.dominated_by_us(host)) {
            (Some(d), true) if d.level == Level::Complete => Verdict::Go(migrate(false)),
            (Some(d), true) => Verdict::Refuse(format!(
                "{name} is dominated at {}: migrants need complete (release it, then dominate it at complete)",
                d.level
            )),
            (Some(d), false) => Verdict::Refuse(format!("{name} is held by {}", d.master)),
            (None, _) => match self.paired_level(host) {
                Some(Level::Complete) => Verdict::Ask {
                    question: format!("Dominate {name} at complete and move task {id} there?"),
                    yes: "Dominate and move".to_owned(),
                    command: migrate(true),
                },
                Some(level) => Verdict::Refuse(format!(
                    "{name} is paired at {level}: migrants need complete (pair again with a complete code)"
                )),
                None => Verdict::Refuse(format!("pair with {name} first")),
            },
        }
    }

    /// The menu's "Migrate to ▸" entries for task `id`: each host the task
    /// can go to, with the label and the command (dominated hosts first,
    /// then "NAME (dominate and migrate)" for free ones paired at complete).
    pub fn migrate_targets(&self, id: u64) -> Vec<(String, Command)> {
        let mut now = Vec::new();
        let mut after = Vec::new();
        for host in &self.hosts {
            match self.verdict(id, Target::Host(host)) {
                Verdict::Go(command) => now.push((self.host_name(host), command)),
                Verdict::Ask { command, .. } => {
                    let verb = match command {
                        Command::Resume { .. } => "resume",
                        _ => "migrate",
                    };
                    let label = format!("{} (dominate and {verb})", self.host_name(host));
                    after.push((label, command));
                }
                Verdict::Refuse(_) => {}
            }
        }
        now.extend(after);
        now
    }

    /// Carries out a drop (or a menu choice) of task `id` on `target`: the
    /// command to send now, if any. A question opens the confirmation; a
    /// refusal shows on the task's tile.
    pub fn drop_task(&mut self, id: u64, target: Target<'_>) -> Option<Command> {
        match self.verdict(id, target) {
            Verdict::Go(command) => Some(self.begin(command)),
            Verdict::Ask {
                question,
                yes,
                command,
            } => {
                tracing::info!("task {id}: asking: {question}");
                self.ask = Some(crate::move_requests::Question {
                    task: id,
                    question,
                    yes,
                    command,
                });
                None
            }
            Verdict::Refuse(why) => {
                self.moves.fail(id, why);
                None
            }
        }
    }
}
