//! `Dominate` from the window: on a connection of its own that Cancel can
//! close (the daemon then sees its client leave and withdraws the request),
//! with the zombie's `Asking` passed on as an event for the countdown.

use std::collections::HashMap;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zos_netproto::Level;
use zos_netproto::control::{self, Reply, Request};

use super::{Event, Notify, failure};

/// The connections of dominations in progress, by host, so Cancel can
/// close them.
pub(super) type Waiting = Arc<Mutex<HashMap<String, UnixStream>>>;

pub(crate) fn dominate(socket: &Path, host: &str) -> Result<String, String> {
    let request = Request::Dominate {
        host: host.to_owned(),
        level: Level::Complete,
    };
    match control::call(socket, &request, |_| {}) {
        Ok(Reply::Dominated { name, level, .. }) => Ok(format!("dominating {name} ({level})")),
        other => Err(failure(other)),
    }
}

/// `Dominate` on a connection Cancel can close; the zombie's `Asking` is
/// passed on as it comes.
pub(super) fn dominate_cancellable(
    socket: &Path,
    host: &str,
    events: &Sender<Event>,
    notify: &Notify,
    waiting: &Waiting,
) -> Result<String, String> {
    let stream = UnixStream::connect(socket).map_err(|e| e.to_string())?;
    if let Ok(clone) = stream.try_clone() {
        waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(host.to_owned(), clone);
    }
    let request = Request::Dominate {
        host: host.to_owned(),
        level: Level::Complete,
    };
    let outcome = control::call_on(stream, &request, |reply| {
        if let Reply::Asking { timeout_s, .. } = reply {
            let _ = events.send(Event::DominationAsking {
                host: host.to_owned(),
                timeout: Duration::from_secs(*timeout_s),
            });
            notify();
        }
    });
    waiting
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(host);
    match outcome {
        Ok(Reply::Dominated { name, level, .. }) => Ok(format!("dominating {name} ({level})")),
        other => Err(failure(other)),
    }
}
