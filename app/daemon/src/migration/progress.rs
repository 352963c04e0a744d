//! A move's progress: its phase (one of [`MOVE_PHASES`]), bytes done of the phase's total,
//! the rate over the last second and the time left; the time each phase took. The mover's
//! threads update it lock-free; [`forward`] sends a `move-progress` reply at least every
//! [`PROGRESS_EVERY`] (and at each phase change) until the move ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use zos_netproto::control::{MOVE_PHASES, Reply};

/// How often a progress reply goes out.
pub const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// One phase of a move (an index into [`MOVE_PHASES`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// `check_tree`, the files' hashes, the offer and its answer.
    Check = 0,
    /// Live moves: memory copied round after round while the task runs.
    PreCopy = 1,
    /// Freezing the tree, until its first image bytes.
    Freeze = 2,
    /// Executables and libraries the other side lacks.
    SendFiles = 3,
    /// The image.
    SendImage = 4,
    /// The receiver restores the tree (held stopped).
    Restore = 5,
    /// Ending the old copy, the commit, the new copy running.
    Commit = 6,
}

/// Number of phases.
const PHASES: usize = MOVE_PHASES.len();

impl Phase {
    /// Its name in replies.
    pub fn name(self) -> &'static str {
        MOVE_PHASES[self as usize]
    }
}

/// A move's progress, shared between the mover and the reply loop.
#[derive(Clone)]
pub struct Progress {
    inner: Arc<Inner>,
}

struct Inner {
    task: u64,
    phase: AtomicUsize,
    bytes: AtomicU64,
    total: AtomicU64,
    /// The pre-copy round under way (1-based; 0: none).
    round: AtomicU32,
    /// What the move is doing, in words.
    detail: Mutex<Option<String>>,
    /// Each phase's duration in µs, and when the current one began.
    times: Mutex<([u64; PHASES], Instant)>,
}

impl Progress {
    /// A move of `task`, starting in [`Phase::Check`].
    pub fn new(task: u64) -> Progress {
        Progress {
            inner: Arc::new(Inner {
                task,
                phase: AtomicUsize::new(0),
                bytes: AtomicU64::new(0),
                total: AtomicU64::new(0),
                round: AtomicU32::new(0),
                detail: Mutex::new(None),
                times: Mutex::new(([0; PHASES], Instant::now())),
            }),
        }
    }

    /// Enters `phase` (ending the current one); bytes start at 0 of `total`.
    pub fn enter(&self, phase: Phase, total: u64) {
        let mut times = self.inner.times.lock();
        let now = Instant::now();
        let current = self.inner.phase.load(Ordering::Acquire);
        times.0[current] += now.duration_since(times.1).as_micros() as u64;
        times.1 = now;
        self.inner.bytes.store(0, Ordering::Release);
        self.inner.total.store(total, Ordering::Release);
        self.inner.phase.store(phase as usize, Ordering::Release);
    }

    /// Pre-copy round `index` begins (`total`: the bytes it is expected to carry).
    pub fn enter_round(&self, index: u32, total: u64) {
        self.enter(Phase::PreCopy, total);
        self.inner.round.store(index + 1, Ordering::Release);
    }

    /// Says what the move is doing (shown with the progress until replaced).
    pub fn set_detail(&self, detail: String) {
        *self.inner.detail.lock() = Some(detail);
    }

    /// A live move's summary for the final reply: the rounds and the last word on them.
    pub fn precopy_summary(&self) -> Option<String> {
        let rounds = self.rounds();
        let detail = self.inner.detail.lock().clone().unwrap_or_default();
        (rounds > 0).then(|| {
            if detail.starts_with("pre-copy done") {
                detail
            } else {
                format!("{rounds} pre-copy round(s); the last: {detail}")
            }
        })
    }

    /// Pre-copy rounds so far.
    pub fn rounds(&self) -> u32 {
        self.inner.round.load(Ordering::Acquire)
    }

    /// The current phase's total changed (more files, a better estimate).
    pub fn set_total(&self, total: u64) {
        self.inner.total.store(total, Ordering::Release);
    }

    /// `n` more bytes done in the current phase.
    pub fn add(&self, n: u64) {
        self.inner.bytes.fetch_add(n, Ordering::AcqRel);
    }

    /// The phase now.
    pub fn phase(&self) -> Phase {
        match self.inner.phase.load(Ordering::Acquire) {
            0 => Phase::Check,
            1 => Phase::PreCopy,
            2 => Phase::Freeze,
            3 => Phase::SendFiles,
            4 => Phase::SendImage,
            5 => Phase::Restore,
            _ => Phase::Commit,
        }
    }

    /// Ends the current phase; each phase's name and µs, in order.
    pub fn finish(&self) -> Vec<(String, u64)> {
        let mut times = self.inner.times.lock();
        let now = Instant::now();
        let current = self.inner.phase.load(Ordering::Acquire);
        times.0[current] += now.duration_since(times.1).as_micros() as u64;
        times.1 = now;
        MOVE_PHASES
            .iter()
            .zip(times.0)
            .map(|(name, us)| (name.to_string(), us))
            .collect()
    }

    /// µs spent in `phase` so far (the current one up to now).
    pub fn spent(&self, phase: Phase) -> u64 {
        let times = self.inner.times.lock();
        let mut us = times.0[phase as usize];
        if self.inner.phase.load(Ordering::Acquire) == phase as usize {
            us += times.1.elapsed().as_micros() as u64;
        }
        us
    }
}

/// Turns progress into replies: rate over the last second, time left.
pub struct Reporter {
    progress: Progress,
    samples: std::collections::VecDeque<(Instant, u64)>,
    last_phase: usize,
}

impl Reporter {
    /// Reports on `progress`.
    pub fn new(progress: Progress) -> Reporter {
        Reporter {
            progress,
            samples: Default::default(),
            last_phase: usize::MAX,
        }
    }

    /// The reply to send now.
    pub fn reply(&mut self) -> Reply {
        let inner = &self.progress.inner;
        let phase = inner.phase.load(Ordering::Acquire);
        let bytes = inner.bytes.load(Ordering::Acquire);
        let total = inner.total.load(Ordering::Acquire);
        let now = Instant::now();
        if phase != self.last_phase {
            self.samples.clear();
            self.last_phase = phase;
        }
        self.samples.push_back((now, bytes));
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > Duration::from_secs(1))
            && self.samples.len() > 2
        {
            self.samples.pop_front();
        }
        let (t0, b0) = self.samples.front().copied().unwrap_or((now, bytes));
        let dt = now.duration_since(t0).as_secs_f64();
        let rate = if dt > 0.05 {
            (bytes.saturating_sub(b0) as f64 / dt) as u64
        } else {
            0
        };
        let eta_s = (rate > 0 && total > bytes).then(|| (total - bytes).div_ceil(rate));
        let round = inner.round.load(Ordering::Acquire);
        Reply::MoveProgress {
            task: inner.task,
            phase: MOVE_PHASES[phase.min(PHASES - 1)].to_string(),
            bytes,
            total,
            rate_bps: rate,
            eta_s,
            round: (phase == Phase::PreCopy as usize && round > 0).then(|| round - 1),
            detail: inner.detail.lock().clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_are_timed_in_order_and_progress_has_rate_and_time_left() {
        let p = Progress::new(4);
        let mut r = Reporter::new(p.clone());
        p.enter(Phase::SendImage, 1000);
        r.reply();
        std::thread::sleep(Duration::from_millis(120));
        p.add(100);
        let Reply::MoveProgress {
            task,
            phase,
            bytes,
            total,
            rate_bps,
            eta_s,
            ..
        } = r.reply()
        else {
            panic!("not a progress reply")
        };
        assert_eq!(
            (task, phase.as_str(), bytes, total),
            (4, "send-image", 100, 1000)
        );
        assert!(rate_bps > 100 && rate_bps < 1000, "{rate_bps}");
        assert!(eta_s.is_some_and(|s| s >= 1), "{eta_s:?}");
        p.enter(Phase::Commit, 0);
        let phases = p.finish();
        let names: Vec<&str> = phases.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, MOVE_PHASES);
        assert!(phases[Phase::SendImage as usize].1 >= 100_000, "{phases:?}");
        assert_eq!(phases[Phase::Freeze as usize].1, 0);
    }
}
