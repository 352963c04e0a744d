//! Where input goes: the hotkeys' cycle, switching to a zombie, beginning
//! and stopping, and the notice the master's screen shows.

use std::time::Instant;

use tokio::sync::oneshot;
use zos_display::input::{Edge, Switch};

use super::{Controller, Pending};
use crate::input_link::InputMessage;
use crate::master::drive::DriveAnswer;

impl Controller {
    /// Hotkeys: master → each drivable zombie by name → master.
    pub(super) fn cycle(&mut self, switch: Switch) {
        let mut order: Vec<(String, u64)> = self
            .links
            .iter()
            .filter(|(_, l)| l.drivable())
            .map(|(&id, l)| (l.name.clone(), id))
            .collect();
        order.sort();
        let mut places: Vec<Option<u64>> = vec![None];
        places.extend(order.into_iter().map(|(_, id)| Some(id)));
        let current = self.pending.as_ref().map(|p| p.target).or(self.target);
        let at = places.iter().position(|p| *p == current).unwrap_or(0);
        let n = places.len();
        let next = match switch {
            Switch::Next => places[(at + 1) % n],
            Switch::Previous => places[(at + n - 1) % n],
        };
        match next {
            None => self.stop_driving(None),
            Some(id) => self.switch_to(id, None, None),
        }
    }

    /// Sends input to link `id`: at once if already grabbed, else after
    /// the grab.
    pub(super) fn switch_to(
        &mut self,
        id: u64,
        entered: Option<Edge>,
        reply: Option<oneshot::Sender<DriveAnswer>>,
    ) {
        if self.target == Some(id) {
            if let Some(reply) = reply {
                let _ = reply.send(Ok((self.target_name(), "already driving it".into())));
            }
            return;
        }
        if let Some(old) = self.target.take()
            && let Some(link) = self.links.get(&old)
        {
            *self.route.lock() = None;
            link.send(InputMessage::Drive(false));
            self.begin(id);
            if let Some(reply) = reply {
                let _ = reply.send(Ok((self.target_name(), "switched".into())));
            }
            return;
        }
        let Some(capture) = &self.capture else {
            if let Some(reply) = reply {
                let _ = reply.send(Err("no input capture on the master's display".into()));
            }
            return;
        };
        let name = &self.links[&id].name;
        capture.grab(&self.notice(name), entered);
        self.pending = Some(Pending { target: id, reply });
    }

    /// The grab is ours: input goes to `id` from now on.
    pub(super) fn begin(&mut self, id: u64) {
        let Some(link) = self.links.get(&id) else {
            return;
        };
        self.target = Some(id);
        self.last_heard = Instant::now();
        link.send(InputMessage::Drive(true));
        // Events queue behind Drive(true) from here on.
        *self.route.lock() = Some(link.out.clone());
        if let Some(capture) = &self.capture {
            capture.notice(&self.notice(&link.name));
        }
        if let Some(clipboard) = &self.clipboard {
            clipboard.report(true);
            clipboard.announce_current();
        }
        tracing::info!("input goes to {}", link.name);
        *self.driving.lock() = Some(link.name.clone());
    }

    /// Input back to the master, with `message` shown for a moment.
    pub(super) fn stop_driving(&mut self, message: Option<String>) {
        self.pending = None;
        if let Some(t) = self.target.take() {
            *self.route.lock() = None;
            if let Some(link) = self.links.get(&t) {
                link.send(InputMessage::Drive(false));
                tracing::info!("input back from {}", link.name);
            }
            self.release(message);
        } else if let Some(message) = message
            && let Some(capture) = &self.capture
        {
            capture.release(Some(message));
        }
    }

    pub(super) fn release(&mut self, message: Option<String>) {
        *self.route.lock() = None;
        if let Some(capture) = &self.capture {
            capture.release(message);
        }
        if let Some(clipboard) = &self.clipboard {
            clipboard.report(false);
        }
        *self.driving.lock() = None;
    }

    pub(super) fn watch(&self, edge: Option<Edge>) {
        if let Some(capture) = &self.capture {
            capture.watch_edge(edge);
        }
    }

    pub(super) fn target_name(&self) -> Option<String> {
        self.target
            .and_then(|t| self.links.get(&t))
            .map(|l| l.name.clone())
    }

    pub(super) fn notice(&self, name: &str) -> String {
        format!(
            "Input -> {name}   ({} / {} switches; zos drive --stop gives it back)",
            self.cfg.previous, self.cfg.next
        )
    }
}
