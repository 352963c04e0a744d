//! The single task that owns a `vnc-rs` client.
//!
//! It selects over the client's events and an input channel, so `vnc-rs`' internal lock is
//! never awaited from two places (DISPLAY-NOTES trap 1); it drains every queued event as soon
//! as one arrives (trap 2); and it asks for an incremental refresh after each batch, in
//! particular after a desktop-size update, which with ExtendedDesktopSize carries no pixels
//! (trap 3). A desktop resize request runs in a task of its own on a clone of the client —
//! `resize_desktop` waits for the server's answer, which only comes while this task keeps
//! draining events — and reports back here. While its owner wants no updates (a fan-out with
//! no viewers), it stops asking for them, so the server encodes nothing for it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, trace, warn};
use vnc::{DesktopLayout, ResizeError, VncClient, VncError, VncEvent, X11Event};

use crate::error::{DisplayError, Result};
use crate::source::{Publisher, ResizeStatus, Shared};

/// With nothing else happening, an incremental refresh is requested this often, so that a
/// lost request can never stall the view.
const REFRESH_FALLBACK: Duration = Duration::from_millis(500);

/// What the connection's owner asks the driver to do.
#[derive(Debug)]
pub(crate) enum Command {
    /// Send this to the server.
    Input(X11Event),
    /// Ask the server to resize the desktop to width × height.
    Resize(u16, u16),
}

/// What a batch of events did.
#[derive(Default)]
struct Batch {
    events: usize,
    rects: usize,
    resized: bool,
}

/// Desktop resize requests: at most one in flight (vnc-rs allows no more); the latest wish
/// waits behind it.
struct Resizes {
    in_flight: Option<(u16, u16)>,
    wanted: Option<(u16, u16)>,
    done_tx: mpsc::Sender<((u16, u16), Result<DesktopLayout, ResizeError>)>,
}

impl Resizes {
    fn want(&mut self, size: (u16, u16), client: &VncClient, shared: &Shared) {
        self.wanted = Some(size);
        self.start_next(client, shared);
    }

    fn start_next(&mut self, client: &VncClient, shared: &Shared) {
        if self.in_flight.is_some() {
            return;
        }
        let Some((width, height)) = self.wanted.take() else {
            return;
        };
        debug!(width, height, "asking the server to resize the desktop");
        shared.set_resize(ResizeStatus::Pending { width, height });
        self.in_flight = Some((width, height));
        let client = client.clone();
        let done = self.done_tx.clone();
        tokio::spawn(async move {
            let result = client.resize_desktop(width, height).await;
            let _ = done.send(((width, height), result)).await;
        });
    }

    fn finished(
        &mut self,
        (width, height): (u16, u16),
        result: Result<DesktopLayout, ResizeError>,
        client: &VncClient,
        shared: &Shared,
    ) {
        self.in_flight = None;
        let status = match result {
            Ok(layout) => {
                info!(
                    width = layout.width,
                    height = layout.height,
                    "desktop resized"
                );
                ResizeStatus::Done {
                    width: layout.width,
                    height: layout.height,
                }
            }
            Err(e) => {
                warn!(width, height, "desktop resize failed: {e}");
                ResizeStatus::Failed {
                    width,
                    height,
                    reason: e.to_string(),
                }
            }
        };
        shared.set_resize(status);
        if self.wanted == Some((width, height)) {
            self.wanted = None;
        }
        self.start_next(client, shared);
    }
}

/// Runs the connection until the server goes away, the owner stops it, or an error.
pub(crate) async fn drive(
    client: VncClient,
    mut input: mpsc::Receiver<Command>,
    mut stop: oneshot::Receiver<()>,
    mut wanted: watch::Receiver<bool>,
    shared: Arc<Shared>,
    publisher: Publisher,
) -> Result<()> {
    let mut tick = tokio::time::interval(REFRESH_FALLBACK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (done_tx, mut resize_done) = mpsc::channel(1);
    let mut resizes = Resizes {
        in_flight: None,
        wanted: None,
        done_tx,
    };
    let mut largest_batch = 0;
    let result = loop {
        tokio::select! {
            event = client.recv_event() => {
                let mut batch = Batch::default();
                let mut next = event;
                // Consume everything queued now, not one event per wake-up (trap 2).
                let outcome = loop {
                    match next {
                        Ok(e) => {
                            if let Err(e) = apply(e, &shared, &publisher, &mut batch) {
                                break Err(e);
                            }
                        }
                        Err(e) => break Err(e.into()),
                    }
                    next = match client.poll_event().await {
                        Ok(Some(e)) => Ok(e),
                        Ok(None) => break Ok(()),
                        Err(e) => Err(e),
                    };
                };
                if batch.events > largest_batch {
                    largest_batch = batch.events;
                    debug!(largest_batch, "VNC event batch");
                }
                if batch.rects > 0 {
                    shared.counters.add_update();
                }
                shared.publish_frame(&publisher);
                if let Err(e) = outcome {
                    break Err(e);
                }
                if batch.resized {
                    trace!("desktop size changed; asking for pixels (trap 3)");
                }
                // Ask for the next update: the server only sends after a request.
                if *wanted.borrow() {
                    if let Err(e) = client.input(X11Event::Refresh).await {
                        break Err(e.into());
                    }
                }
                tick.reset();
            }
            command = input.recv() => match command {
                Some(Command::Input(event)) => {
                    if let Err(e) = client.input(event).await {
                        break Err(e.into());
                    }
                }
                Some(Command::Resize(width, height)) => {
                    resizes.want((width, height), &client, &shared);
                }
                None => break Ok(()),
            },
            Some((size, result)) = resize_done.recv() => {
                resizes.finished(size, result, &client, &shared);
            }
            Ok(()) = wanted.changed() => {
                let now = *wanted.borrow_and_update();
                debug!(wanted = now, "updates wanted");
                if now {
                    if let Err(e) = client.input(X11Event::Refresh).await {
                        break Err(e.into());
                    }
                }
            }
            _ = &mut stop => break Ok(()),
            _ = tick.tick() => {
                if *wanted.borrow() {
                    if let Err(e) = client.input(X11Event::Refresh).await {
                        break Err(e.into());
                    }
                }
            }
        }
    };
    match &result {
        Ok(()) => info!("VNC viewer closed"),
        Err(e) => warn!("VNC viewer ended: {e}"),
    }
    let _ = client.close().await;
    result
}

/// Applies one event to the shared state.
fn apply(event: VncEvent, shared: &Shared, publisher: &Publisher, batch: &mut Batch) -> Result<()> {
    batch.events += 1;
    if let VncEvent::SetCursor(rect, data) = event {
        trace!(?rect, "pointer shape");
        shared.set_cursor(publisher, rect, data);
        return Ok(());
    }
    let mut fb = shared.fb();
    match event {
        VncEvent::SetResolution(screen) => {
            batch.resized |= fb.resize(screen.width, screen.height);
        }
        VncEvent::DesktopUpdate(update) => {
            trace!(?update, "desktop update");
            if let Some(layout) = update.layout {
                batch.resized |= fb.resize(layout.width, layout.height);
            }
        }
        VncEvent::RawImage(rect, data) => {
            batch.rects += 1;
            shared.counters.add_rect(data.len());
            fb.put(rect.into(), &data);
        }
        VncEvent::Copy(dst, src) => {
            batch.rects += 1;
            shared.counters.add_rect(0);
            fb.copy(dst.into(), src.into());
        }
        VncEvent::SetPixelFormat(pf) => trace!(?pf, "server pixel format"),
        VncEvent::JpegImage(rect, _) => warn!(?rect, "unexpected JPEG rectangle ignored"),
        VncEvent::Bell | VncEvent::Text(_) => {}
        VncEvent::Error(e) => return Err(DisplayError::Vnc(VncError::General(e))),
        other => trace!(?other, "VNC event ignored"),
    }
    Ok(())
}
