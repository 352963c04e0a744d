//! The drive controller's state and rules (see [`super::drive`]): one task,
//! so every switch happens in one order — requests, capture events, the
//! master's clipboard, the zombies' messages and the liveness tick.
//! Switching itself is in `switching`.

mod switching;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use zos_display::input::{
    Capture, CaptureEvent, CaptureOptions, ClipboardAgent, ClipboardChange, Edge, InputSink,
    encode_events,
};

use super::drive::{DriveAnswer, DriveConfig, DriveRequest, Event};
use super::drive_link::{self, Link};
use crate::input_link::{ALIVE_INTERVAL, InputMessage, LINK_TIMEOUT, selection_of};

/// A switch waiting for the grab.
struct Pending {
    target: u64,
    reply: Option<oneshot::Sender<DriveAnswer>>,
}

/// Where the capture's thread sends events while driving: the target's
/// link queue, set and cleared by the controller.
type Route = Arc<Mutex<Option<mpsc::Sender<InputMessage>>>>;

pub(crate) struct Controller {
    cfg: DriveConfig,
    route: Route,
    events: mpsc::UnboundedSender<Event>,
    capture: Option<Capture>,
    clipboard: Option<ClipboardAgent>,
    capture_tx: mpsc::UnboundedSender<CaptureEvent>,
    clipboard_tx: mpsc::UnboundedSender<ClipboardChange>,
    links: BTreeMap<u64, Link>,
    next_id: u64,
    target: Option<u64>,
    pending: Option<Pending>,
    edge: Option<(Edge, u64)>,
    last_heard: Instant,
    alive: u32,
    driving: Arc<Mutex<Option<String>>>,
}

impl Controller {
    pub(crate) fn new(
        cfg: DriveConfig,
        events: mpsc::UnboundedSender<Event>,
        driving: Arc<Mutex<Option<String>>>,
    ) -> (
        Controller,
        mpsc::UnboundedReceiver<CaptureEvent>,
        mpsc::UnboundedReceiver<ClipboardChange>,
    ) {
        let (capture_tx, capture_rx) = mpsc::unbounded_channel();
        let (clipboard_tx, clipboard_rx) = mpsc::unbounded_channel();
        let controller = Controller {
            cfg,
            route: Arc::new(Mutex::new(None)),
            events,
            capture: None,
            clipboard: None,
            capture_tx,
            clipboard_tx,
            links: BTreeMap::new(),
            next_id: 1,
            target: None,
            pending: None,
            edge: None,
            last_heard: Instant::now(),
            alive: 0,
            driving,
        };
        (controller, capture_rx, clipboard_rx)
    }

    pub(crate) async fn run(
        mut self,
        mut events: mpsc::UnboundedReceiver<Event>,
        mut captured: mpsc::UnboundedReceiver<CaptureEvent>,
        mut copied: mpsc::UnboundedReceiver<ClipboardChange>,
        shutdown: CancellationToken,
    ) {
        if self.cfg.display.is_some()
            && let Err(e) = self.ensure_capture(None, None)
        {
            tracing::warn!("no input capture yet: {e}");
        }
        let mut tick = tokio::time::interval(ALIVE_INTERVAL);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(event) = events.recv() => self.on_event(event),
                Some(event) = captured.recv() => self.on_capture(event),
                Some(change) = copied.recv() => {
                    if let Some(link) = self.target.and_then(|t| self.links.get(&t)) {
                        link.send(InputMessage::clipboard(change.selection, change.text));
                    }
                }
                _ = tick.tick() => self.on_tick(),
            }
        }
        self.stop_driving(None);
        // Dropping the capture ungrabs and ends its thread.
        drop(self.capture.take());
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Request(request, reply) => self.on_request(request, reply),
            Event::Attach {
                name,
                key,
                mut channel,
            } => {
                if self.links.values().any(|l| l.key == key) {
                    tracing::warn!("{name} opened a second input channel; reset");
                    channel.reset("one input channel per domination");
                    return;
                }
                let id = self.next_id;
                self.next_id += 1;
                tracing::info!("{name} opened its input channel");
                let link = drive_link::start(id, name, key, channel, self.events.clone());
                self.links.insert(id, link);
            }
            Event::Link { id, message } => self.on_link(id, message),
            Event::LinkClosed { id, why } => {
                let Some(link) = self.links.remove(&id) else {
                    return;
                };
                tracing::info!("input link with {} closed: {why}", link.name);
                if self.edge.is_some_and(|(_, t)| t == id) {
                    self.edge = None;
                    self.watch(None);
                }
                if self.target == Some(id) {
                    self.target = None;
                    self.release(Some(format!("{} is gone: input is back", link.name)));
                }
            }
        }
    }

    fn on_request(&mut self, request: DriveRequest, reply: oneshot::Sender<DriveAnswer>) {
        match request {
            DriveRequest::Stop => {
                self.edge = None;
                self.watch(None);
                self.stop_driving(None);
                let _ = reply.send(Ok((None, "input is back on the master".into())));
            }
            DriveRequest::Start {
                host,
                edge,
                display,
                xauthority,
            } => {
                let id = match self.find(&host) {
                    Ok(id) => id,
                    Err(e) => {
                        let _ = reply.send(Err(e));
                        return;
                    }
                };
                if let Err(e) = self.ensure_capture(display, xauthority) {
                    let _ = reply.send(Err(e));
                    return;
                }
                let name = self.links[&id].name.clone();
                match edge {
                    Some(edge) => {
                        self.edge = Some((edge, id));
                        self.watch(Some(edge));
                        let _ = reply.send(Ok((
                            self.target_name(),
                            format!("move the pointer off the {edge} edge of this screen to drive {name}; back over its opposite edge, `{}` or `zos drive --stop` to return", self.cfg.previous),
                        )));
                    }
                    None => self.switch_to(id, None, Some(reply)),
                }
            }
        }
    }

    /// The link of `host` (paired name or fingerprint), if it can be driven.
    fn find(&self, host: &str) -> Result<u64, String> {
        let found = self.links.iter().find(|(_, l)| l.name == host).or_else(|| {
            self.links
                .iter()
                .find(|(_, l)| l.key.fingerprint().matches(host))
        });
        let Some((&id, link)) = found else {
            return Err(format!(
                "{host} has no ZOS session to drive: it must be dominated by this master (at level complete, or partial if it allows that) and have a display"
            ));
        };
        if link.size.is_none() {
            return Err(format!("{}'s ZOS session is not ready yet", link.name));
        }
        if !link.allowed {
            return Err(format!(
                "{}'s user refuses input redirection (the tray, or `zos input allow` there)",
                link.name
            ));
        }
        Ok(id)
    }

    fn ensure_capture(
        &mut self,
        display: Option<String>,
        xauthority: Option<std::path::PathBuf>,
    ) -> Result<(), String> {
        if self.capture.as_ref().is_some_and(Capture::is_running) {
            return Ok(());
        }
        let (screen, xauthority) = match (&self.cfg.display, display) {
            (Some(own), _) => (own.clone(), self.cfg.xauthority.clone()),
            (None, Some(theirs)) => (theirs, xauthority),
            (None, None) => {
                return Err("the master daemon has no X display to take input from: start `zos master` with DISPLAY set, or run `zos drive` in the desktop session".into());
            }
        };
        let options = CaptureOptions {
            display: screen.clone(),
            xauthority: xauthority.clone(),
            next: self.cfg.next,
            previous: self.cfg.previous,
        };
        let route = self.route.clone();
        let sink: InputSink = Box::new(move |events| match route.lock().as_ref() {
            Some(out) => out
                .try_send(InputMessage::Events(encode_events(&events)))
                .is_ok(),
            None => true,
        });
        let capture = Capture::start_with_sink(options, self.capture_tx.clone(), Some(sink))
            .map_err(|e| format!("cannot take input from display {screen}: {e}"))?;
        self.clipboard =
            ClipboardAgent::start(&screen, xauthority.as_deref(), self.clipboard_tx.clone())
                .map_err(|e| tracing::warn!("no clipboard on {screen}: {e}"))
                .ok();
        if let Some((edge, _)) = self.edge {
            capture.watch_edge(Some(edge));
        }
        self.capture = Some(capture);
        Ok(())
    }

    fn on_capture(&mut self, event: CaptureEvent) {
        match event {
            CaptureEvent::Grabbed => {
                let Some(pending) = self.pending.take() else {
                    // Nothing asked for it any more.
                    self.release(None);
                    return;
                };
                if !self.links.contains_key(&pending.target) {
                    self.release(None);
                    if let Some(reply) = pending.reply {
                        let _ = reply.send(Err("the zombie went away".into()));
                    }
                    return;
                }
                self.begin(pending.target);
                if let Some(reply) = pending.reply {
                    let name = self.target_name();
                    let _ = reply.send(Ok((
                        name.clone(),
                        format!(
                            "input goes to {}; `{}` or `zos drive --stop` gives it back",
                            name.unwrap_or_default(),
                            self.cfg.previous
                        ),
                    )));
                }
            }
            CaptureEvent::GrabFailed(why) => {
                if let Some(Pending {
                    reply: Some(reply), ..
                }) = self.pending.take()
                {
                    let _ = reply.send(Err(why));
                }
            }
            CaptureEvent::Input(events) => {
                let Some(t) = self.target else { return };
                let Some(link) = self.links.get(&t) else {
                    return;
                };
                if !link.send(InputMessage::Events(encode_events(&events))) {
                    self.on_capture(CaptureEvent::SinkRefused);
                }
            }
            CaptureEvent::SinkRefused => {
                if let Some(name) = self.target_name() {
                    self.stop_driving(Some(format!("{name} is not taking input: it is back")));
                }
            }
            CaptureEvent::Hotkey(switch) => self.cycle(switch),
            CaptureEvent::EdgeReached(edge) => {
                if let Some((armed, id)) = self.edge
                    && armed == edge
                    && self.target.is_none()
                    && self.links.get(&id).is_some_and(Link::drivable)
                {
                    self.switch_to(id, Some(edge), None);
                }
            }
            CaptureEvent::CrossedBack => self.stop_driving(None),
            CaptureEvent::Failed(why) => {
                tracing::warn!("input capture failed: {why}");
                self.capture = None;
                self.clipboard = None;
                *self.route.lock() = None;
                if let Some(t) = self.target.take()
                    && let Some(link) = self.links.get(&t)
                {
                    link.send(InputMessage::Drive(false));
                }
                *self.driving.lock() = None;
            }
        }
    }

    fn on_link(&mut self, id: u64, message: InputMessage) {
        if self.target == Some(id) {
            self.last_heard = Instant::now();
        }
        let Some(link) = self.links.get_mut(&id) else {
            return;
        };
        match message {
            InputMessage::Session {
                width,
                height,
                allowed,
            } => {
                tracing::info!(
                    "{}'s ZOS session is open ({width}x{height}); input {}",
                    link.name,
                    if allowed {
                        "allowed"
                    } else {
                        "refused by its user"
                    }
                );
                link.size = Some((width, height));
                link.allowed = allowed;
            }
            InputMessage::Allowed(allowed) => {
                link.allowed = allowed;
                let name = link.name.clone();
                tracing::info!(
                    "{name}'s user {} input",
                    if allowed { "allows" } else { "refuses" }
                );
                if !allowed && self.target == Some(id) {
                    self.stop_driving(Some(format!("{name}'s user refused input: it is back")));
                }
            }
            InputMessage::Alive(_) => {}
            InputMessage::Clipboard { primary, text } => {
                if self.target == Some(id)
                    && let Some(clipboard) = &self.clipboard
                {
                    clipboard.set(selection_of(primary), text);
                }
            }
            InputMessage::Drive(_) | InputMessage::Events(_) => {
                tracing::warn!(
                    "{} sent a master's message on its input channel; ignored",
                    link.name
                );
            }
        }
    }

    fn on_tick(&mut self) {
        let Some(t) = self.target else { return };
        let Some(link) = self.links.get(&t) else {
            return;
        };
        if self.last_heard.elapsed() > LINK_TIMEOUT {
            let name = link.name.clone();
            tracing::warn!("{name} said nothing for {LINK_TIMEOUT:?} while driven; input is back");
            self.stop_driving(Some(format!("{name} does not answer: input is back")));
            return;
        }
        self.alive = self.alive.wrapping_add(1);
        link.send(InputMessage::Alive(self.alive));
    }
}
