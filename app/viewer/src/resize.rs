//! When the window's size settles at a new value, ask the server for a desktop of that size.
//!
//! A window being dragged larger changes size every frame; only once it has stayed the same
//! for [`DEBOUNCE`] is one request sent. A size is asked for once: if the server refuses, or
//! another viewer resizes the desktop later, this view does not fight it until the user
//! resizes the window again.

use std::time::{Duration, Instant};

/// How long the view's size must stay unchanged before a request goes out.
pub const DEBOUNCE: Duration = Duration::from_millis(250);

/// The debouncer's state.
#[derive(Debug, Default)]
pub struct ResizeDebounce {
    /// The view size last seen and since when.
    seen: Option<((u16, u16), Instant)>,
    /// The size last dealt with (asked for, or already the remote size).
    settled: Option<(u16, u16)>,
}

/// What to do after looking at the view's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing.
    Idle,
    /// Look again after this long (the size is still settling).
    Wait(Duration),
    /// Ask the server for this size.
    Request(u16, u16),
}

impl ResizeDebounce {
    /// Looks at the view's size in pixels, `view`, while the remote screen is `remote`.
    pub fn poll(&mut self, view: (u16, u16), remote: (u16, u16), now: Instant) -> Decision {
        if view.0 == 0 || view.1 == 0 {
            return Decision::Idle;
        }
        let since = match self.seen {
            Some((size, since)) if size == view => since,
            _ => {
                self.seen = Some((view, now));
                now
            }
        };
        if self.settled == Some(view) {
            return Decision::Idle;
        }
        let waited = now.saturating_duration_since(since);
        if waited < DEBOUNCE {
            return Decision::Wait(DEBOUNCE - waited);
        }
        self.settled = Some(view);
        if view == remote {
            Decision::Idle
        } else {
            Decision::Request(view.0, view.1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_once_after_the_size_settles() {
        let mut d = ResizeDebounce::default();
        let t0 = Instant::now();
        // The window opens at the remote size: nothing to ask.
        assert!(matches!(
            d.poll((640, 480), (640, 480), t0),
            Decision::Wait(_)
        ));
        assert_eq!(
            d.poll((640, 480), (640, 480), t0 + DEBOUNCE),
            Decision::Idle
        );
        // Dragged bigger over several frames.
        let t1 = t0 + Duration::from_secs(1);
        assert!(matches!(
            d.poll((700, 500), (640, 480), t1),
            Decision::Wait(_)
        ));
        let t2 = t1 + Duration::from_millis(100);
        assert!(matches!(
            d.poll((800, 600), (640, 480), t2),
            Decision::Wait(_)
        ));
        assert!(matches!(
            d.poll((800, 600), (640, 480), t2 + DEBOUNCE / 2),
            Decision::Wait(_)
        ));
        assert_eq!(
            d.poll((800, 600), (640, 480), t2 + DEBOUNCE),
            Decision::Request(800, 600)
        );
        // Refused (the remote stays 640×480): not asked again.
        assert_eq!(
            d.poll((800, 600), (640, 480), t2 + DEBOUNCE * 4),
            Decision::Idle
        );
        // Another viewer resized the desktop: this one does not fight it.
        assert_eq!(
            d.poll((800, 600), (1024, 768), t2 + DEBOUNCE * 8),
            Decision::Idle
        );
    }
}
