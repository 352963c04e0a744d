//! Polling with deadlines (never sleeps as assertions).

use std::time::{Duration, Instant};

/// How often pollers look again.
pub const POLL: Duration = Duration::from_millis(50);

/// A point in time after which a poll gives up.
#[derive(Clone, Copy, Debug)]
pub struct Deadline(Instant);

impl Deadline {
    /// `timeout` from now.
    pub fn after(timeout: Duration) -> Deadline {
        Deadline(Instant::now() + timeout)
    }

    /// Whether it has passed.
    pub fn passed(&self) -> bool {
        Instant::now() >= self.0
    }
}

/// Calls `probe` until it returns `Some`, or `None` once `timeout` passed.
/// Only a probe that started before the deadline counts.
pub fn until<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Deadline::after(timeout);
    while !deadline.passed() {
        if let Some(v) = probe() {
            return Some(v);
        }
        std::thread::sleep(POLL);
    }
    None
}

/// Seconds as a `Duration`.
pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}
