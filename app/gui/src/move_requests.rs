//! The user's move requests on the model: a move sent (recorded as
//! running), the question a drop may raise and its answer, and the
//! Checkpoint… dialog with its default directory.

use std::path::Path;

use crate::migrant;
use crate::model::Model;
use crate::moves::MoveKind;
use crate::worker::Command;

/// A move that waits for the user's confirmation.
#[derive(Clone, Debug, PartialEq)]
pub struct Question {
    /// The task it moves.
    pub task: u64,
    /// What the user is asked.
    pub question: String,
    /// The label of the button that says yes.
    pub yes: String,
    /// What yes sends.
    pub command: Command,
}

/// The Checkpoint… dialog: which task, and the directory typed so far.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointDialog {
    /// The task.
    pub task: u64,
    /// The directory the image goes to.
    pub dir: String,
}

impl Model {
    /// Records that `command` (a move) is on its way and returns it.
    pub fn begin(&mut self, command: Command) -> Command {
        let (task, kind) = match &command {
            Command::Migrate { task, host, .. } => (*task, MoveKind::Migrate { to: host.clone() }),
            Command::Resume { task, on, .. } => (*task, MoveKind::Resume { on: on.clone() }),
            Command::Home { task, from_image } => (
                *task,
                MoveKind::Home {
                    from_image: *from_image,
                },
            ),
            Command::Checkpoint { task, out } => (*task, MoveKind::Checkpoint { out: out.clone() }),
            _ => return command,
        };
        tracing::info!("task {task}: {}", kind.doing());
        self.moves.start(task, kind);
        command
    }

    /// The user's answer to the open question: the command to send on yes.
    pub fn answer(&mut self, yes: bool) -> Option<Command> {
        let question = self.ask.take()?;
        if !yes {
            tracing::info!("task {}: not moved (cancelled)", question.task);
        }
        yes.then(|| self.begin(question.command))
    }

    /// Opens the Checkpoint… dialog for `task`, proposing a directory under
    /// `home`: `zos-checkpoints/PROGRAM-TASK`.
    pub fn open_checkpoint(&mut self, task: u64, home: &Path) {
        let program = self.task(task).map(migrant::program).unwrap_or_default();
        let dir = home
            .join("zos-checkpoints")
            .join(format!("{program}-{task}"));
        self.checkpoint = Some(CheckpointDialog {
            task,
            dir: dir.display().to_string(),
        });
    }

    /// The dialog's Save: the command, if a directory is given.
    pub fn start_checkpoint(&mut self) -> Option<Command> {
        let dialog = self.checkpoint.take()?;
        let out = dialog.dir.trim().to_owned();
        if out.is_empty() {
            self.checkpoint = Some(dialog);
            return None;
        }
        Some(self.begin(Command::Checkpoint {
            task: dialog.task,
            out,
        }))
    }
}
