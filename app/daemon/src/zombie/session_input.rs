//! The zombie's end of the `input` channel: the master's events played into
//! the ZOS session only (never the zombie's own screen), its liveness
//! echoed, the clipboard exchanged while it drives, and the user's consent
//! kept: input refused (tray, `zos input refuse`, `allow_input = false`)
//! is dropped, and every key and button held is released whenever driving
//! stops — by the master, by a refusal, or because the link ended — and
//! when a driving master has been silent for [`LINK_TIMEOUT`] (a cut
//! cable: the master takes its keyboard back after as long, and nothing
//! stays held, or auto-repeats, in the session meanwhile).

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use zos_display::input::{ClipboardAgent, ClipboardChange, Injector, decode_events};
use zos_netproto::mux::{Channel, ChannelSender};

use crate::input_link::{InputMessage, LINK_TIMEOUT, MAX_INPUT_MESSAGE, selection_of};

/// Whether the master's input drives the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InputState {
    /// It may, but does not now.
    Off,
    /// It does.
    On,
    /// The zombie's user refuses it.
    Refused,
}

impl fmt::Display for InputState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InputState::Off => "off",
            InputState::On => "on",
            InputState::Refused => "refused",
        })
    }
}

/// The panel's text for the session of `master` in `state`.
pub(crate) fn panel_text(master: &str, state: InputState) -> String {
    match state {
        InputState::Off => format!("ZOS session of {master} - input: this machine's"),
        InputState::On => format!("ZOS session of {master} - input: from {master} (driving)"),
        InputState::Refused => {
            format!("ZOS session of {master} - input from {master}: refused by this machine's user")
        }
    }
}

/// What the link needs besides its channel.
pub(crate) struct LinkParts {
    pub master: String,
    pub injector: Injector,
    pub clipboard: ClipboardAgent,
    pub clipboard_changes: mpsc::UnboundedReceiver<ClipboardChange>,
    pub panel: std::sync::mpsc::Sender<String>,
    pub allowed: watch::Receiver<bool>,
    pub state: Arc<Mutex<InputState>>,
    pub stop: CancellationToken,
}

/// Serves the `input` channel until it ends or `parts.stop` is cancelled.
pub(crate) async fn serve(mut channel: Channel, mut parts: LinkParts) {
    channel.set_max_message(MAX_INPUT_MESSAGE);
    let (tx, mut rx) = channel.split();
    let mut allowed = *parts.allowed.borrow_and_update();
    let mut driven = false;
    parts.set_state(allowed, driven);
    let (width, height) = parts.injector.size();
    if let Err(e) = tx
        .send_msg(&InputMessage::Session {
            width,
            height,
            allowed,
        })
        .await
    {
        tracing::info!("input channel: {e}");
        return;
    }
    // When the master was last heard from (it sends `Alive` while driving).
    let mut last_heard = Instant::now();
    let why = loop {
        let holding = driven && parts.injector.held() != (0, 0);
        let silence_ends = tokio::time::Instant::from_std(last_heard + LINK_TIMEOUT);
        tokio::select! {
            _ = parts.stop.cancelled() => break "the domination ended".to_string(),
            _ = tokio::time::sleep_until(silence_ends), if holding => {
                tracing::warn!(
                    "{} said nothing for {LINK_TIMEOUT:?} while driving; keys and buttons released",
                    parts.master
                );
                parts.release_held();
            }
            changed = parts.allowed.changed() => {
                if changed.is_err() {
                    break "the daemon is stopping".into();
                }
                allowed = *parts.allowed.borrow_and_update();
                if !allowed && driven {
                    driven = false;
                    parts.stop_driving();
                }
                parts.set_state(allowed, driven);
                if send(&tx, &InputMessage::Allowed(allowed)).await.is_err() {
                    break "the channel closed".into();
                }
            }
            change = parts.clipboard_changes.recv() => {
                if let Some(change) = change
                    && driven
                    && send(&tx, &InputMessage::clipboard(change.selection, change.text)).await.is_err()
                {
                    break "the channel closed".into();
                }
            }
            message = rx.recv_msg::<InputMessage>() => {
                let message = match message {
                    Ok(Some(m)) => m,
                    Ok(None) => break "the master closed the channel".into(),
                    Err(e) => break format!("the channel failed: {e}"),
                };
                last_heard = Instant::now();
                match message {
                    InputMessage::Drive(on) => {
                        if on && !allowed {
                            if send(&tx, &InputMessage::Allowed(false)).await.is_err() {
                                break "the channel closed".into();
                            }
                            continue;
                        }
                        if on != driven {
                            driven = on;
                            if on {
                                parts.clipboard.report(true);
                                tracing::info!("{} drives the ZOS session", parts.master);
                            } else {
                                parts.stop_driving();
                                tracing::info!("{} stopped driving the ZOS session", parts.master);
                            }
                            parts.set_state(allowed, driven);
                        }
                    }
                    InputMessage::Events(bytes) if driven => match decode_events(&bytes) {
                        Ok(events) => {
                            if let Err(e) = parts.injector.inject(&events) {
                                break format!("the ZOS session's display failed: {e}");
                            }
                        }
                        Err(e) => {
                            rx.reset(&format!("bad input events: {e}"));
                            break format!("the master sent bad input events: {e}");
                        }
                    },
                    // In flight when driving stopped or input was refused.
                    InputMessage::Events(_) => {}
                    InputMessage::Alive(seq) => {
                        if send(&tx, &InputMessage::Alive(seq)).await.is_err() {
                            break "the channel closed".into();
                        }
                    }
                    InputMessage::Clipboard { primary, text } => {
                        if driven {
                            parts.clipboard.set(selection_of(primary), text);
                        }
                    }
                    InputMessage::Session { .. } | InputMessage::Allowed(_) => {
                        rx.reset("unexpected message from the master");
                        break "the master sent a zombie's message".into();
                    }
                }
            }
        }
    };
    parts.stop_driving();
    tracing::info!("input link with {} ended: {why}", parts.master);
}

async fn send(tx: &ChannelSender, message: &InputMessage) -> zos_netproto::Result<()> {
    tx.send_msg(message).await
}

impl LinkParts {
    /// Releases everything held and stops the clipboard's reports.
    fn stop_driving(&mut self) {
        self.clipboard.report(false);
        self.release_held();
    }

    /// Releases every key and button held in the session.
    fn release_held(&mut self) {
        if let Err(e) = self.injector.release_all() {
            tracing::debug!("releasing keys in the ZOS session: {e}");
        }
    }

    fn set_state(&self, allowed: bool, driven: bool) {
        let state = match (allowed, driven) {
            (false, _) => InputState::Refused,
            (true, true) => InputState::On,
            (true, false) => InputState::Off,
        };
        let mut current = self.state.lock();
        if *current != state || state == InputState::Off {
            *current = state;
            let _ = self.panel.send(panel_text(&self.master, state));
        }
    }
}
