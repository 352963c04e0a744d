//! What a viewer of a fan-out gets besides pixels: the app's window list (seamless viewers),
//! the app's clipboard texts, and the answers the Extended Clipboard asks for.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::clipboard::{
    self, ACTION_NOTIFY, ACTION_PROVIDE, Extended, FORMAT_TEXT, SERVER_CUT_TEXT,
};
use crate::fanout::messages::Encodings;
use crate::fanout::{Fanout, SharedClipboard};
use crate::framebuffer::RegionId;
use crate::seamless::{WindowList, wire};

/// Window requests one viewer may make per second (more are dropped): each may make the
/// window keeper lay out the windows and resize the screen.
const WINDOW_REQUESTS_PER_SECOND: f64 = 30.0;

/// What the viewer's Extended Clipboard messages asked of us (set by the reader).
#[derive(Debug, Default)]
pub(crate) struct ClipboardWishes {
    /// The viewer just enabled the extension: tell it our capabilities.
    pub(crate) announce_caps: bool,
    /// Its capabilities: actions, and the most text it takes unasked.
    pub(crate) caps: Option<(u32, Option<u32>)>,
    /// It notified a new clipboard: ask for the text.
    pub(crate) request: bool,
    /// It asked for the app's text.
    pub(crate) provide: bool,
    /// It asked which formats the app's clipboard has.
    pub(crate) notify: bool,
}

/// The writer's side: what this viewer has been sent.
pub(crate) struct Extras {
    windows: Option<watch::Receiver<Arc<WindowList>>>,
    sent_list: Option<Arc<WindowList>>,
    icons_sent: HashMap<u32, u32>,
    clipboard: watch::Receiver<SharedClipboard>,
    sent_clipboard: u64,
    id: RegionId,
}

impl Extras {
    /// For viewer `id`, which has seen no window list and no clipboard text yet (the
    /// clipboard of the moment is not pushed at a viewer that just joined).
    pub(crate) fn new(fanout: &Fanout, id: RegionId) -> Extras {
        let clipboard = fanout.clipboard.subscribe();
        let sent_clipboard = clipboard.borrow().serial;
        Extras {
            windows: fanout.windows.as_ref().map(|f| f.list.clone()),
            sent_list: None,
            icons_sent: HashMap::new(),
            clipboard,
            sent_clipboard,
            id,
        }
    }

    /// Resolves when the window list or the clipboard changed (never if neither can).
    pub(crate) async fn changed(&mut self) {
        let windows = async {
            match &mut self.windows {
                Some(w) => {
                    if w.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = windows => {}
            r = self.clipboard.changed() => if r.is_err() {
                std::future::pending::<()>().await;
            },
        }
    }

    /// Appends to `out` what the viewer should be sent now; true if anything.
    pub(crate) fn compose(
        &mut self,
        encodings: &Encodings,
        wishes: &mut ClipboardWishes,
        out: &mut Vec<u8>,
    ) -> bool {
        let start = out.len();
        if encodings.windows
            && let Some(windows) = &mut self.windows
        {
            let list = Arc::clone(&windows.borrow_and_update());
            if self
                .sent_list
                .as_ref()
                .is_none_or(|s| !Arc::ptr_eq(s, &list))
            {
                wire::encode_list(&list, &mut self.icons_sent, out);
                self.sent_list = Some(list);
            }
        }
        let current = self.clipboard.borrow_and_update().clone();
        let extended = encodings.extended_clipboard;
        if extended && std::mem::take(&mut wishes.announce_caps) {
            out.extend(clipboard::encode_extended(
                SERVER_CUT_TEXT,
                &clipboard::our_caps(),
            ));
        }
        if extended && std::mem::take(&mut wishes.request) {
            let request = Extended::Request {
                formats: FORMAT_TEXT,
            };
            out.extend(clipboard::encode_extended(SERVER_CUT_TEXT, &request));
        }
        if extended && std::mem::take(&mut wishes.provide) {
            let text = current.text.as_deref().map(str::to_owned);
            out.extend(clipboard::encode_extended(
                SERVER_CUT_TEXT,
                &Extended::Provide(text),
            ));
        }
        if extended && std::mem::take(&mut wishes.notify) {
            let formats = if current.text.is_some() {
                FORMAT_TEXT
            } else {
                0
            };
            out.extend(clipboard::encode_extended(
                SERVER_CUT_TEXT,
                &Extended::Notify { formats },
            ));
        }
        if current.serial != self.sent_clipboard {
            self.sent_clipboard = current.serial;
            if let Some(text) = current.text.filter(|_| current.origin != Some(self.id)) {
                out.extend(clipboard_message(extended, wishes.caps, &text));
            }
        }
        out.len() > start
    }
}

/// The message giving a viewer the app's clipboard `text`: the text itself where it takes
/// that unasked, a notification where it only takes those, else plain Latin-1.
fn clipboard_message(extended: bool, caps: Option<(u32, Option<u32>)>, text: &str) -> Vec<u8> {
    match caps.filter(|_| extended) {
        Some((actions, max))
            if actions & ACTION_PROVIDE != 0 && max.is_some_and(|m| text.len() < m as usize) =>
        {
            clipboard::encode_extended(SERVER_CUT_TEXT, &Extended::Provide(Some(text.to_owned())))
        }
        Some((actions, _)) if actions & ACTION_NOTIFY != 0 => clipboard::encode_extended(
            SERVER_CUT_TEXT,
            &Extended::Notify {
                formats: FORMAT_TEXT,
            },
        ),
        _ => clipboard::encode_plain(SERVER_CUT_TEXT, text),
    }
}

/// A token bucket for one viewer's window requests.
pub(crate) struct RequestLimit {
    tokens: f64,
    last: Instant,
}

impl Default for RequestLimit {
    fn default() -> Self {
        RequestLimit {
            tokens: WINDOW_REQUESTS_PER_SECOND,
            last: Instant::now(),
        }
    }
}

impl RequestLimit {
    /// Whether one more request may go now.
    pub(crate) fn allow(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens =
            (self.tokens + refill * WINDOW_REQUESTS_PER_SECOND).min(WINDOW_REQUESTS_PER_SECOND);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How long a burst of window requests takes to be allowed again.
    const REFILL: tokio::time::Duration = tokio::time::Duration::from_secs(1);

    #[tokio::test(start_paused = true)]
    async fn window_requests_are_limited_per_second() {
        let mut limit = RequestLimit::default();
        let allowed = (0..100).filter(|_| limit.allow()).count();
        assert_eq!(allowed, WINDOW_REQUESTS_PER_SECOND as usize);
        tokio::time::advance(REFILL).await;
        assert!(limit.allow());
    }

    #[test]
    fn clipboard_goes_in_the_form_the_viewer_takes() {
        let provide = clipboard_message(true, Some((ACTION_PROVIDE, Some(100))), "ü");
        assert!(i32::from_be_bytes(provide[4..8].try_into().unwrap()) < 0);
        let notify = clipboard_message(true, Some((ACTION_NOTIFY | ACTION_PROVIDE, Some(0))), "ü");
        assert_eq!(notify.len(), 12);
        let plain = clipboard_message(false, Some((ACTION_PROVIDE, Some(100))), "ü");
        assert_eq!(plain, vec![3, 0, 0, 0, 0, 0, 0, 1, 0xfc]);
    }
}
