//! The `pty/<task>` channel: a migrant's terminal while it runs on a zombie.
//!
//! The zombie (which holds the pod's pty master) opens the channel on the dominating master's
//! session and sends [`PtyMessage::Hello`] with the task and its epoch; the master accepts it
//! only if the task is away on that very zombie (by key) at that epoch. Then the zombie sends
//! the task's output as it comes ([`PtyMessage::Output`]) and, if the task ends there,
//! [`PtyMessage::Exited`] last; the master sends what attached clients type
//! ([`PtyMessage::Input`]) and window sizes ([`PtyMessage::Resize`]). Postcard messages of at
//! most [`MAX_PTY_MESSAGE`] bytes; anything else resets the channel.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use zos_netproto::mux::{Channel, ChannelSender};

use super::registry::Migrants;
use super::terminal::SourceCmd;
use crate::domination::PairedZombie;

/// Labels of pty channels start with this.
pub const PTY_LABEL_PREFIX: &str = "pty/";
/// The largest message on a pty channel.
pub const MAX_PTY_MESSAGE: usize = 64 << 10;
/// The most output bytes in one [`PtyMessage::Output`].
pub const MAX_OUTPUT_CHUNK: usize = 16 << 10;
/// How long the master waits for the hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Commands queued towards the zombie before a typing client waits.
const COMMAND_QUEUE: usize = 64;

/// One message on a `pty/<task>` channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PtyMessage {
    /// Zombie → master, first: the task (the master's id) and the epoch it runs at.
    Hello {
        /// The master's task id.
        task: u64,
        /// Its epoch on this zombie.
        epoch: u64,
    },
    /// Zombie → master: what the task wrote (at most [`MAX_OUTPUT_CHUNK`] bytes).
    Output(Vec<u8>),
    /// Master → zombie: what a client typed.
    Input(Vec<u8>),
    /// Master → zombie: the window size; the foreground group redraws.
    Resize {
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// Zombie → master, last: the task ended on the zombie (exit status or 128 + signal).
    Exited {
        /// The code.
        code: i32,
    },
}

/// The label of task `task`'s pty channel.
pub fn pty_label(task: u64) -> String {
    format!("{PTY_LABEL_PREFIX}{task}")
}

/// The task id of a pty channel's label, if it is one.
pub fn parse_pty_label(label: &str) -> Option<u64> {
    label.strip_prefix(PTY_LABEL_PREFIX)?.parse().ok()
}

/// The master's side: checks the hello, then feeds the task's terminal from the channel and
/// sends it the clients' input, until the channel ends.
pub(super) fn serve_master_side(
    migrants: Arc<Migrants>,
    mut channel: Channel,
    zombie: PairedZombie,
) {
    tokio::spawn(async move {
        channel.set_max_message(MAX_PTY_MESSAGE);
        let labelled = parse_pty_label(channel.label());
        let hello = tokio::time::timeout(HELLO_TIMEOUT, channel.recv_msg::<PtyMessage>()).await;
        let (task, epoch) = match hello {
            Ok(Ok(Some(PtyMessage::Hello { task, epoch }))) if Some(task) == labelled => {
                (task, epoch)
            }
            _ => {
                tracing::warn!("{}: a pty channel without a proper hello", zombie.name);
                channel.reset("a pty channel starts with a hello naming its task");
                return;
            }
        };
        let terminal = match migrants.relay_target(task, &zombie, epoch) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!("{}: pty channel refused: {e}", zombie.name);
                channel.reset(&e.to_string());
                return;
            }
        };
        tracing::info!(
            "task {task}: terminal relayed from {} (epoch {epoch})",
            zombie.name
        );
        let (tx, commands) = mpsc::channel(COMMAND_QUEUE);
        let source = terminal.add_source(tx);
        let (sender, mut receiver) = channel.split();
        let forward = tokio::spawn(forward_commands(commands, sender));
        terminal.wait_turn(source).await;
        let mut exit = None;
        loop {
            match receiver.recv_msg::<PtyMessage>().await {
                Ok(Some(PtyMessage::Output(bytes))) if exit.is_none() => {
                    terminal.push_output(source, &bytes);
                }
                Ok(Some(PtyMessage::Exited { code })) if exit.is_none() => exit = Some(code),
                Ok(None) => break,
                Ok(Some(other)) => {
                    tracing::warn!("task {task}: unexpected {other:?} from {}", zombie.name);
                    receiver.reset("unexpected message on a pty channel");
                    break;
                }
                Err(e) => {
                    tracing::info!(
                        "task {task}: terminal relay from {} ended: {e}",
                        zombie.name
                    );
                    break;
                }
            }
        }
        forward.abort();
        terminal.source_ended(source);
        migrants.relay_closed(task);
        if let Some(code) = exit {
            migrants.ended_away(task, epoch, code);
        }
    });
}

/// Sends the terminal's commands to the zombie.
async fn forward_commands(mut commands: mpsc::Receiver<SourceCmd>, sender: ChannelSender) {
    while let Some(cmd) = commands.recv().await {
        let message = match cmd {
            SourceCmd::Input(bytes) => PtyMessage::Input(bytes.to_vec()),
            SourceCmd::Resize { cols, rows } => PtyMessage::Resize { cols, rows },
        };
        if sender.send_msg(&message).await.is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pty_labels_roundtrip_and_reject_others() {
        assert_eq!(parse_pty_label(&pty_label(7)), Some(7));
        assert_eq!(parse_pty_label("pty/"), None);
        assert_eq!(parse_pty_label("pty/-1"), None);
        assert_eq!(parse_pty_label("view/7"), None);
    }

    #[test]
    fn an_output_message_of_the_largest_chunk_fits_a_pty_message() {
        let m = PtyMessage::Output(vec![0xff; MAX_OUTPUT_CHUNK]);
        assert!(postcard::to_allocvec(&m).unwrap().len() <= MAX_PTY_MESSAGE);
    }
}
