//! A domination or release the window asked for, per host: waiting for the
//! daemon, waiting for the zombie's user (a countdown the tile shows with a
//! Cancel button), being withdrawn, or its error (shown in full).

use std::time::{Duration, Instant};

/// Where a host's domination (or release) stands.
#[derive(Clone, Debug, PartialEq)]
pub enum Pending {
    /// Sent; waiting for the daemon.
    Busy,
    /// The zombie asks its user, who has until `since + timeout`.
    Asking {
        /// When the zombie said so.
        since: Instant,
        /// How long its user has.
        timeout: Duration,
    },
    /// Cancel was clicked; the request is being withdrawn.
    Cancelling,
    /// Why it failed, in the daemon's words.
    Failed(String),
}

impl Pending {
    /// Whether the host's buttons wait for it.
    pub fn busy(&self) -> bool {
        matches!(
            self,
            Pending::Busy | Pending::Asking { .. } | Pending::Cancelling
        )
    }

    /// Seconds left for the zombie's user, while it asks.
    pub fn seconds_left(&self, now: Instant) -> Option<u64> {
        match self {
            Pending::Asking { since, timeout } => {
                Some((*since + *timeout).saturating_duration_since(now).as_secs())
            }
            _ => None,
        }
    }

    /// The share of the user's time left, 0 to 1, while it asks.
    pub fn share_left(&self, now: Instant) -> Option<f32> {
        match self {
            Pending::Asking { since, timeout } => {
                let left = (*since + *timeout).saturating_duration_since(now);
                Some((left.as_secs_f32() / timeout.as_secs_f32().max(1.0)).clamp(0.0, 1.0))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_countdown_runs_down_to_zero() {
        let since = Instant::now();
        let p = Pending::Asking {
            since,
            timeout: Duration::from_secs(45),
        };
        assert_eq!(p.seconds_left(since + Duration::from_secs(5)), Some(40));
        assert_eq!(p.seconds_left(since + Duration::from_secs(50)), Some(0));
        assert!(p.busy());
        assert_eq!(Pending::Failed("no".into()).seconds_left(since), None);
    }
}
