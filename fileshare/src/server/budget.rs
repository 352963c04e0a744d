//! What the master holds for one zombie, capped: descriptors and the
//! directory listings of its open directories.
//!
//! Every descriptor the server keeps between calls for a zombie — a node's
//! cached `O_PATH` descriptor, an open file, an open directory handle —
//! holds one [`Charge`] on that zombie's [`Budget`]; at
//! [`MAX_DESCRIPTORS`](super::MAX_DESCRIPTORS) no more are given and the
//! call that wanted one fails with `EMFILE` on the zombie. The entries of
//! listings kept for open directories hold a [`Listing`] the same way, up to
//! [`MAX_LISTED_ENTRIES`](super::MAX_LISTED_ENTRIES) (`ENOMEM` beyond).
//! Servers for the same zombie (the policy names its key) share one budget,
//! so opening more channels buys nothing. Refusals are logged at most once
//! per [`REPORT_EVERY`], with how many there were.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use zos_netproto::Fingerprint;

/// How often refusals are reported in the log at most.
pub const REPORT_EVERY: Duration = Duration::from_secs(10);

/// One zombie's budget.
pub struct Budget {
    held: AtomicUsize,
    cap: usize,
    listed: AtomicUsize,
    listed_cap: usize,
    /// Who it is for, in log lines.
    holder: String,
    refused: AtomicU64,
    last_report: Mutex<Option<Instant>>,
}

/// One descriptor's worth of a [`Budget`], given back on drop.
pub struct Charge(Arc<Budget>);

impl Drop for Charge {
    fn drop(&mut self) {
        self.0.held.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Listed directory entries of a [`Budget`], given back on drop.
pub struct Listing(Arc<Budget>, usize);

impl Drop for Listing {
    fn drop(&mut self) {
        self.0.listed.fetch_sub(self.1, Ordering::AcqRel);
    }
}

/// Takes `n` of `counter` unless that passes `cap`.
fn take(counter: &AtomicUsize, n: usize, cap: usize) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
            held.checked_add(n).filter(|&sum| sum <= cap)
        })
        .is_ok()
}

impl Budget {
    /// A budget of `cap` descriptors and `listed_cap` listed entries for
    /// `holder` (used in log lines).
    pub fn new(cap: usize, listed_cap: usize, holder: String) -> Arc<Budget> {
        Arc::new(Budget {
            held: AtomicUsize::new(0),
            cap,
            listed: AtomicUsize::new(0),
            listed_cap,
            holder,
            refused: AtomicU64::new(0),
            last_report: Mutex::new(None),
        })
    }

    /// The budget every server for `zombie` shares while any of them runs
    /// (with the crate's caps); a budget of its own when the policy names no
    /// zombie.
    pub fn for_zombie(zombie: Option<&Fingerprint>) -> Arc<Budget> {
        static SHARED: OnceLock<Mutex<HashMap<Fingerprint, Weak<Budget>>>> = OnceLock::new();
        let fresh =
            |holder: String| Budget::new(super::MAX_DESCRIPTORS, super::MAX_LISTED_ENTRIES, holder);
        let Some(zombie) = zombie else {
            return fresh("a zombie".into());
        };
        let mut shared = SHARED
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        shared.retain(|_, b| b.strong_count() > 0);
        if let Some(budget) = shared.get(zombie).and_then(Weak::upgrade) {
            return budget;
        }
        let budget = fresh(format!("zombie {}", zombie.0));
        shared.insert(zombie.clone(), Arc::downgrade(&budget));
        budget
    }

    /// One more descriptor, unless the cap is reached.
    pub fn try_charge(self: &Arc<Self>) -> Option<Charge> {
        take(&self.held, 1, self.cap).then(|| Charge(self.clone()))
    }

    /// `n` more listed entries, unless that passes the cap.
    pub fn try_list(self: &Arc<Self>, n: usize) -> Option<Listing> {
        take(&self.listed, n, self.listed_cap).then(|| Listing(self.clone(), n))
    }

    /// One more descriptor even beyond the cap (the export roots, which a
    /// server cannot do without).
    pub fn force_charge(self: &Arc<Self>) -> Charge {
        self.held.fetch_add(1, Ordering::AcqRel);
        Charge(self.clone())
    }

    /// Descriptors charged now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    /// Notes a call refused for want of `what` ("descriptors", "listed
    /// entries"); logs one line per [`REPORT_EVERY`] at most.
    pub fn refused(&self, what: &str) {
        let count = self.refused.fetch_add(1, Ordering::AcqRel) + 1;
        let mut last = self.last_report.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < REPORT_EVERY) {
            return;
        }
        *last = Some(now);
        self.refused.fetch_sub(count, Ordering::AcqRel);
        tracing::warn!(
            "{} reached its cap of {what} on this master ({} of {} descriptors, {} of {} listed entries held): {count} call(s) refused",
            self.holder,
            self.held(),
            self.cap,
            self.listed.load(Ordering::Acquire),
            self.listed_cap,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_stop_at_the_cap_and_come_back_on_drop() {
        let b = Budget::new(3, 10, "test".into());
        let charges: Vec<_> = (0..3).map(|_| b.try_charge().unwrap()).collect();
        assert!(b.try_charge().is_none());
        assert_eq!(b.held(), 3);
        let root = b.force_charge();
        assert_eq!(b.held(), 4);
        drop(charges);
        drop(root);
        assert_eq!(b.held(), 0);
        assert!(b.try_charge().is_some());
        let listing = b.try_list(8).unwrap();
        assert!(b.try_list(3).is_none());
        let small = b.try_list(2).unwrap();
        drop((listing, small));
        assert!(b.try_list(10).is_some());
    }

    #[test]
    fn servers_for_one_zombie_share_a_budget() {
        let fp = Fingerprint("aaaa-bbbb-cccc-dddd-eeee".into());
        let a = Budget::for_zombie(Some(&fp));
        let b = Budget::for_zombie(Some(&fp));
        let held: Vec<_> = (0..super::super::MAX_DESCRIPTORS)
            .map(|i| if i % 2 == 0 { &a } else { &b }.try_charge().unwrap())
            .collect();
        assert!(a.try_charge().is_none() && b.try_charge().is_none());
        let other = Budget::for_zombie(None);
        assert!(other.try_charge().is_some());
        drop(held);
        assert_eq!(a.held(), 0);
    }
}
