//! The moves on the worker's side: `Migrate` (after `Dominate` when asked),
//! `Resume` (then `Migrate` when on a zombie), `Home` and `CheckpointTask` on
//! the control socket, each progress reply passed on to the window as it
//! arrives.

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
    run_with(socket, command, &send)
}

/// [`run`], each event before the last handed to `send`.
fn run_with(socket: &Path, command: Command, send: &dyn Fn(Event)) -> Event {
    let (task, request) = match command {
        Command::Resume {
            task,
            on,
            dominate_first,
        } => return resume(socket, task, on, dominate_first, send),
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

/// A suspended task back from its snapshot (`Resume`), then (`on`) moved live to a zombie,
/// dominated at complete first if asked; each step shown on the tile.
fn resume(
    socket: &Path,
    task: u64,
    on: Option<String>,
    dominate_first: bool,
    send: &dyn Fn(Event),
) -> Event {
    let ended = |result| Event::MoveEnded { task, result };
    if let (Some(host), true) = (&on, dominate_first) {
        send(Event::MoveStep {
            task,
            step: format!("dominating {host} at complete…"),
        });
        if let Err(e) = dominate(socket, host) {
            return ended(Err(format!("cannot dominate {host}: {e}")));
        }
    }
    send(Event::MoveStep {
        task,
        step: "restoring it from its snapshot…".to_owned(),
    });
    let request = Request::Resume { tasks: vec![task] };
    tracing::info!("asking the daemon: {request:?}");
    match control::request(socket, &request) {
        Ok(Reply::Resumed { failed, .. }) if failed.is_empty() => {}
        Ok(Reply::Resumed { failed, .. }) => return ended(Err(failed.join("; "))),
        other => return ended(Err(failure(other))),
    }
    let Some(host) = on else {
        return ended(Ok(MoveOutcome {
            summary: "resumed from its snapshot".to_owned(),
            phases: Vec::new(),
        }));
    };
    let moved = run_with(
        socket,
        Command::Migrate {
            task,
            host: host.clone(),
            dominate_first: false,
        },
        send,
    );
    match moved {
        Event::MoveEnded {
            result: Err(why), ..
        } => ended(Err(format!(
            "resumed here, but it did not move to {host}: {why}"
        ))),
        Event::MoveEnded {
            result: Ok(outcome),
            ..
        } => ended(Ok(MoveOutcome {
            summary: format!("resumed, {}", outcome.summary),
            phases: outcome.phases,
        })),
        other => other,
    }
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
