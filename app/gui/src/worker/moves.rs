//! The moves on the worker's side: `Migrate` (after `Dominate` when asked),
//! `Home` and `CheckpointTask` on the control socket, each progress reply
//! passed on to the window as it arrives.

use std::path::Path;
use std::sync::mpsc::Sender;
use std::time::Duration;

use zos_netproto::control::{self, Compression, Reply, Request};

use super::{Command, Event, Notify, dominate, failure};
use crate::moves::{MoveOutcome, Progress};
use crate::units;

/// Runs a move command to its end; returns the final event.
pub(super) fn run(
    socket: &Path,
    command: Command,
    events: &Sender<Event>,
    notify: &Notify,
) -> Event {
    let send = |event| {
        if events.send(event).is_ok() {
            notify();
        }
    };
    let (task, request) = match command {
        Command::Migrate {
            task,
            host,
            dominate_first,
        } => {
            if dominate_first {
                send(Event::MoveStep {
                    task,
                    step: format!("dominating {host} at complete…"),
                });
                if let Err(e) = dominate(socket, &host) {
                    return Event::MoveEnded {
                        task,
                        result: Err(format!("cannot dominate {host}: {e}")),
                    };
                }
            }
            let request = Request::Migrate {
                task,
                host,
                // The daemon measures the link and picks the fastest.
                compress: Compression::Auto,
                // Live: the task keeps running while its memory moves.
                stop_and_copy: false,
                image_every_s: None,
            };
            (task, request)
        }
        Command::Home { task, from_image } => (
            task,
            Request::Home {
                task,
                from_image,
                stop_and_copy: false,
            },
        ),
        Command::Checkpoint { task, out } => (task, Request::CheckpointTask { task, out }),
        other => {
            return Event::MoveEnded {
                task: 0,
                result: Err(format!("not a move: {other:?}")),
            };
        }
    };
    tracing::info!("asking the daemon: {request:?}");
    let last = control::call(socket, &request, |reply| {
        if let Some(progress) = progress_of(reply) {
            send(Event::MoveProgress { task, progress });
        }
    });
    let result = match (&command_out(&request), last) {
        (_, Ok(Reply::Moved { to, phases, .. })) => Ok(MoveOutcome {
            summary: match request {
                Request::Home { .. } => "came home".to_owned(),
                _ => format!("moved to {to}"),
            },
            phases: phases
                .into_iter()
                .map(|(name, micros)| (words(&name), Duration::from_micros(micros)))
                .collect(),
        }),
        (
            Some(_),
            Ok(Reply::Checkpointed {
                path,
                bytes,
                frozen_us,
                ..
            }),
        ) => Ok(MoveOutcome {
            summary: format!(
                "checkpoint saved: {path} ({}, frozen {})",
                units::bytes(bytes),
                units::duration(Duration::from_micros(frozen_us))
            ),
            phases: Vec::new(),
        }),
        (_, other) => Err(failure(other)),
    };
    Event::MoveEnded { task, result }
}

/// The directory of a `CheckpointTask` request.
fn command_out(request: &Request) -> Option<String> {
    match request {
        Request::CheckpointTask { out, .. } => Some(out.clone()),
        _ => None,
    }
}

/// A phase's name as people write it: `send-image` → "send image".
fn words(phase: &str) -> String {
    phase.replace('-', " ")
}

/// The window's view of a `MoveProgress` reply.
fn progress_of(reply: &Reply) -> Option<Progress> {
    match reply {
        Reply::MoveProgress {
            phase,
            bytes,
            total,
            rate_bps,
            eta_s,
            round,
            ..
        } => Some(Progress {
            phase: match round {
                Some(r) => format!("{}, round {r}", words(phase)),
                None => words(phase),
            },
            bytes: *bytes,
            total: *total,
            rate_bps: *rate_bps,
            eta: eta_s.map(Duration::from_secs),
        }),
        _ => None,
    }
}
