//! The tray's link to its daemon: polls `Status` (and, while dominated, the
//! master's `Tasks`) every [`POLL_INTERVAL`], carries out menu [`Action`]s,
//! and pushes each change into the item.

use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use ksni::blocking::Handle;
use zos_netproto::Level;
use zos_netproto::control::{self, PairCodeInfo, Reply, Request, StatusInfo, TaskInfo};

use crate::OpenView;
use crate::item::{Action, ZosTray};

/// How often the daemon's status is fetched.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Polls the daemon at `socket` and serves `actions` until Quit is chosen
/// or the item goes away.
pub fn poll(
    socket: &Path,
    tray: &Handle<ZosTray>,
    actions: &Receiver<Action>,
    open_view: &OpenView,
) {
    let mut next_poll = Instant::now();
    let mut reachable = None;
    loop {
        let now = Instant::now();
        if now >= next_poll {
            let status = fetch_status(socket);
            if reachable != Some(status.is_ok()) {
                match &status {
                    Ok(s) => tracing::info!(name = %s.name, "daemon answers"),
                    Err(e) => tracing::warn!("daemon unreachable: {e}"),
                }
                reachable = Some(status.is_ok());
            }
            let dominated = status
                .as_ref()
                .is_ok_and(|s| s.sessions.iter().any(|s| s.dominating.is_some()));
            let tasks = if dominated {
                fetch_tasks(socket)
            } else {
                Ok(Vec::new())
            };
            let updated = tray.update(|t| {
                match status {
                    Ok(s) => {
                        t.view.status = Some(s);
                        t.view.error = None;
                    }
                    Err(e) => t.view.error = Some(e),
                }
                if let Ok(tasks) = tasks {
                    t.view.tasks = tasks;
                }
            });
            if updated.is_none() {
                return;
            }
            next_poll = now + POLL_INTERVAL;
            continue;
        }
        match actions.recv_timeout(next_poll - now) {
            Ok(Action::Quit) => {
                tracing::info!("quit chosen from the tray menu");
                return;
            }
            Ok(Action::NewCode(level)) => {
                let outcome = new_code(socket, level);
                tray.update(|t| match outcome {
                    Ok(code) => {
                        t.view.notice = None;
                        if let Some(s) = t.view.status.as_mut() {
                            s.pairing = Some(code);
                        }
                    }
                    Err(e) => t.view.notice = Some(format!("No new code: {e}")),
                });
            }
            Ok(Action::View(task)) => {
                tracing::info!("opening a viewer for task {task}");
                if let Err(e) = open_view(task) {
                    tracing::warn!("cannot open a viewer for task {task}: {e}");
                    tray.update(|t| t.view.notice = Some(format!("No viewer: {e}")));
                }
            }
            Ok(Action::Answer { accept, show_apps }) => {
                let outcome = answer(socket, accept, show_apps);
                tray.update(|t| {
                    t.view.notice = outcome.err().map(|e| format!("No answer sent: {e}"));
                    if let Some(s) = t.view.status.as_mut() {
                        s.asking = None;
                    }
                });
            }
            Ok(Action::Release) => {
                tracing::info!("release chosen from the tray");
                let outcome = simple(
                    socket,
                    &Request::Release {
                        host: String::new(),
                        force: false,
                    },
                );
                tray.update(|t| {
                    t.view.notice = Some(match outcome {
                        Ok(()) => "Released".to_owned(),
                        Err(e) => format!("Not released: {e}"),
                    })
                });
                next_poll = Instant::now();
            }
            Ok(Action::ShowMasterApps) => {
                let outcome = simple(socket, &Request::ShowMasterApps);
                tray.update(|t| {
                    t.view.notice = outcome.err().map(|e| format!("Nothing shown: {e}"))
                });
            }
            Ok(Action::AllowInput(allow)) => {
                let outcome = allow_input(socket, allow);
                tray.update(|t| {
                    t.view.notice = outcome.err().map(|e| format!("Input not changed: {e}"));
                });
                // Show the new state at once.
                next_poll = Instant::now();
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

fn fetch_status(socket: &Path) -> Result<StatusInfo, String> {
    match control::request(socket, &Request::Status) {
        Ok(Reply::Status(status)) => Ok(status),
        other => Err(failure(other)),
    }
}

fn answer(socket: &Path, accept: bool, show_apps: bool) -> Result<(), String> {
    match control::request(socket, &Request::Answer { accept, show_apps }) {
        Ok(Reply::Done) => {
            tracing::info!(
                "domination {} from the tray",
                if accept { "accepted" } else { "refused" }
            );
            Ok(())
        }
        other => Err(failure(other)),
    }
}

/// Sends a request whose success is all there is to know.
fn simple(socket: &Path, request: &Request) -> Result<(), String> {
    match control::request(socket, request) {
        Ok(Reply::Done | Reply::Released { .. }) => Ok(()),
        other => Err(failure(other)),
    }
}

fn allow_input(socket: &Path, allow: bool) -> Result<(), String> {
    match control::request(socket, &Request::AllowInput { allow }) {
        Ok(Reply::Done) => {
            tracing::info!(
                "input from the master {} from the tray",
                if allow { "allowed" } else { "refused" }
            );
            Ok(())
        }
        other => Err(failure(other)),
    }
}

fn fetch_tasks(socket: &Path) -> Result<Vec<TaskInfo>, String> {
    match control::request(socket, &Request::Tasks) {
        Ok(Reply::Tasks { tasks }) => Ok(tasks),
        other => Err(failure(other)),
    }
}

fn new_code(socket: &Path, level: Level) -> Result<PairCodeInfo, String> {
    match control::request(socket, &Request::PairCode { level }) {
        Ok(Reply::PairCode(info)) => {
            tracing::info!(
                "pairing code {} offered ({}, {} s)",
                info.code,
                info.level,
                info.expires_in_s
            );
            Ok(info)
        }
        other => {
            let message = failure(other);
            tracing::warn!("no pairing code: {message}");
            Err(message)
        }
    }
}

/// The message for a failed or unexpected exchange.
fn failure(outcome: zos_netproto::Result<Reply>) -> String {
    match outcome {
        Ok(Reply::Error { message }) => message,
        Ok(other) => format!("unexpected reply from the daemon: {other:?}"),
        Err(e) => e.to_string(),
    }
}
