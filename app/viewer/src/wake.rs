//! When to wake the window for new pixels.
//!
//! A full-screen update reaches the framebuffer as a dozen or more rectangles, each of which
//! bumps its version; waking the window for each made it draw 80 frames a second for a 30 fps
//! app, and under llvmpipe every frame costs a full-window pass. So a change wakes the window
//! once the framebuffer has been quiet for [`QUIET`] (the rest of the update is in), or at the
//! latest [`LATEST`] after the first unshown change (a never-ending stream still shows).

use std::time::{Duration, Instant};

/// No further change for this long: the update is complete.
pub const QUIET: Duration = Duration::from_millis(2);
/// The longest a change waits to be shown.
pub const LATEST: Duration = Duration::from_millis(12);

/// Changes not yet shown.
#[derive(Debug, Default)]
pub struct Coalescer {
    /// The first unshown change and the wake deadline.
    pending: Option<(Instant, Instant)>,
}

impl Coalescer {
    /// Notes a change at `now`.
    pub fn changed(&mut self, now: Instant) {
        let first = self.pending.map_or(now, |(first, _)| first);
        self.pending = Some((first, (now + QUIET).min(first + LATEST)));
    }

    /// When to wake the window, if something is unshown.
    pub fn deadline(&self) -> Option<Instant> {
        self.pending.map(|(_, deadline)| deadline)
    }

    /// The window was woken.
    pub fn woken(&mut self) {
        self.pending = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_quiet_but_not_forever() {
        let mut c = Coalescer::default();
        assert_eq!(c.deadline(), None);
        let t0 = Instant::now();
        c.changed(t0);
        assert_eq!(c.deadline(), Some(t0 + QUIET));
        // Changes keep coming every millisecond: the deadline moves, up to LATEST.
        for ms in 1..30 {
            c.changed(t0 + Duration::from_millis(ms));
        }
        assert_eq!(c.deadline(), Some(t0 + LATEST));
        c.woken();
        assert_eq!(c.deadline(), None);
    }
}
