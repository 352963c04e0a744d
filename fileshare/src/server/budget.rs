//! The descriptors the master holds for one zombie, capped.
//!
//! Every descriptor the server keeps between calls for a zombie — a node's
//! cached `O_PATH` descriptor, an open file, an open directory handle —
//! holds one [`Charge`] on that zombie's [`Budget`]; at
//! [`MAX_DESCRIPTORS`](super::MAX_DESCRIPTORS) no more are given and the
//! call that wanted one fails with `EMFILE` on the zombie. Servers for the
//! same zombie (the policy names its key) share one budget, so opening more
//! channels buys nothing. Refusals are logged at most once per
//! [`REPORT_EVERY`], with how many there were.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use zos_netproto::Fingerprint;

/// How often refusals are reported in the log at most.
pub const REPORT_EVERY: Duration = Duration::from_secs(10);

/// One zombie's descriptor budget.
pub struct Budget {
    held: AtomicUsize,
    cap: usize,
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

impl Budget {
    /// A budget of `cap` descriptors for `holder` (used in log lines).
    pub fn new(cap: usize, holder: String) -> Arc<Budget> {
        Arc::new(Budget {
            held: AtomicUsize::new(0),
            cap,
            holder,
            refused: AtomicU64::new(0),
            last_report: Mutex::new(None),
        })
    }

    /// The budget every server for `zombie` shares while any of them runs;
    /// a budget of its own when the policy names no zombie.
    pub fn for_zombie(zombie: Option<&Fingerprint>, cap: usize) -> Arc<Budget> {
        static SHARED: OnceLock<Mutex<HashMap<Fingerprint, Weak<Budget>>>> = OnceLock::new();
        let Some(zombie) = zombie else {
            return Budget::new(cap, "a zombie".into());
        };
        let mut shared = SHARED
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        shared.retain(|_, b| b.strong_count() > 0);
        if let Some(budget) = shared.get(zombie).and_then(Weak::upgrade) {
            return budget;
        }
        let budget = Budget::new(cap, format!("zombie {}", zombie.0));
        shared.insert(zombie.clone(), Arc::downgrade(&budget));
        budget
    }

    /// One more descriptor, unless the cap is reached.
    pub fn try_charge(self: &Arc<Self>) -> Option<Charge> {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held < self.cap).then_some(held + 1)
            })
            .ok()
            .map(|_| Charge(self.clone()))
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

    /// Notes a call refused for want of descriptors; logs one line per
    /// [`REPORT_EVERY`] at most.
    pub fn refused(&self) {
        let count = self.refused.fetch_add(1, Ordering::AcqRel) + 1;
        let mut last = self.last_report.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < REPORT_EVERY) {
            return;
        }
        *last = Some(now);
        self.refused.fetch_sub(count, Ordering::AcqRel);
        tracing::warn!(
            "{} holds {} of its {} descriptors on this master: {count} open call(s) refused with EMFILE",
            self.holder,
            self.held(),
            self.cap
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_stop_at_the_cap_and_come_back_on_drop() {
        let b = Budget::new(3, "test".into());
        let charges: Vec<_> = (0..3).map(|_| b.try_charge().unwrap()).collect();
        assert!(b.try_charge().is_none());
        assert_eq!(b.held(), 3);
        let root = b.force_charge();
        assert_eq!(b.held(), 4);
        drop(charges);
        drop(root);
        assert_eq!(b.held(), 0);
        assert!(b.try_charge().is_some());
    }

    #[test]
    fn servers_for_one_zombie_share_a_budget() {
        let fp = Fingerprint("aaaa-bbbb-cccc-dddd-eeee".into());
        let a = Budget::for_zombie(Some(&fp), 2);
        let b = Budget::for_zombie(Some(&fp), 2);
        let _one = a.try_charge().unwrap();
        let _two = b.try_charge().unwrap();
        assert!(a.try_charge().is_none() && b.try_charge().is_none());
        let other = Budget::for_zombie(None, 2);
        assert!(other.try_charge().is_some());
    }
}
