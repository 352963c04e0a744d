//! Accept loops that neither spin nor flood the log.
//!
//! A failing `accept` (EMFILE, ENFILE, ENOBUFS …) leaves the connection in
//! the kernel's queue, so retrying at once fails again at once: the loop
//! pauses instead, [`limits::ACCEPT_BACKOFF_MIN`] doubling up to
//! [`limits::ACCEPT_BACKOFF_MAX`], and logs one warning per such period,
//! not one per error. Connections refused by a cap are logged the same way
//! ([`LogLimiter`]).

use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::limits;

/// Something connections are accepted from.
pub trait Listener: Send + Sync {
    /// A connection.
    type Stream: Send;
    /// The peer's address.
    type Addr: Send;
    /// Accepts the next connection.
    fn accept(&self) -> impl Future<Output = std::io::Result<(Self::Stream, Self::Addr)>> + Send;
}

impl Listener for TcpListener {
    type Stream = TcpStream;
    type Addr = std::net::SocketAddr;
    async fn accept(&self) -> std::io::Result<(TcpStream, std::net::SocketAddr)> {
        TcpListener::accept(self).await
    }
}

impl Listener for UnixListener {
    type Stream = UnixStream;
    type Addr = tokio::net::unix::SocketAddr;
    async fn accept(&self) -> std::io::Result<(UnixStream, tokio::net::unix::SocketAddr)> {
        UnixListener::accept(self).await
    }
}

/// Accepts connections from `listener` until `shutdown`, handing each to
/// `on_accept`; failures pause the loop (see the module documentation).
/// `what` names the listener in the log.
pub async fn accept_loop<L: Listener>(
    listener: &L,
    what: &str,
    shutdown: &CancellationToken,
    mut on_accept: impl FnMut(L::Stream, L::Addr),
) {
    let mut backoff = BackOff::default();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, addr)) => {
                if let Some(failures) = backoff.succeeded() {
                    tracing::info!("{what}: accepting again after {failures} failed accepts");
                }
                on_accept(stream, addr);
            }
            Err(e) => {
                let (pause, log) = backoff.failed(Instant::now());
                if let Some(failures) = log {
                    tracing::warn!(
                        "{what}: accept failed: {e} ({failures} in a row; pausing {} ms between tries)",
                        pause.as_millis()
                    );
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
}

/// The pauses after failed accepts, and when to say so.
#[derive(Default)]
pub struct BackOff {
    failures: u64,
    pause: Duration,
    logged_at: Option<Instant>,
}

impl BackOff {
    /// A failure at `now`: how long to pause, and `Some(failures in a row)`
    /// if it is time to log (the first failure, then once per
    /// [`limits::ACCEPT_BACKOFF_MAX`]).
    pub fn failed(&mut self, now: Instant) -> (Duration, Option<u64>) {
        self.failures += 1;
        self.pause = if self.pause.is_zero() {
            limits::ACCEPT_BACKOFF_MIN
        } else {
            (self.pause * 2).min(limits::ACCEPT_BACKOFF_MAX)
        };
        let log = match self.logged_at {
            Some(at) if now.duration_since(at) < limits::ACCEPT_BACKOFF_MAX => None,
            _ => {
                self.logged_at = Some(now);
                Some(self.failures)
            }
        };
        (self.pause, log)
    }

    /// A success: `Some(failures)` if it ends a run of failures.
    pub fn succeeded(&mut self) -> Option<u64> {
        let failures = std::mem::take(&mut self.failures);
        self.pause = Duration::ZERO;
        self.logged_at = None;
        (failures > 0).then_some(failures)
    }
}

/// Says when a repeated event may be logged again: at most once per
/// period, with the number of events not logged meanwhile.
pub struct LogLimiter {
    period: Duration,
    logged_at: Option<Instant>,
    suppressed: u64,
}

impl LogLimiter {
    /// At most one line per `period`.
    pub fn new(period: Duration) -> LogLimiter {
        LogLimiter {
            period,
            logged_at: None,
            suppressed: 0,
        }
    }

    /// An event at `now`: `Some(events not logged since the last line)` if
    /// this one may be logged.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        match self.logged_at {
            Some(at) if now.duration_since(at) < self.period => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.logged_at = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// A listener whose every accept fails with EMFILE.
    struct OutOfDescriptors {
        calls: Arc<AtomicU64>,
    }

    impl Listener for OutOfDescriptors {
        type Stream = ();
        type Addr = ();
        async fn accept(&self) -> std::io::Result<((), ())> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            Err(std::io::Error::from_raw_os_error(libc::EMFILE))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn emfile_pauses_the_loop_instead_of_spinning() {
        let calls = Arc::new(AtomicU64::new(0));
        let listener = OutOfDescriptors {
            calls: calls.clone(),
        };
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(10)).await;
            stop.cancel();
        });
        accept_loop(&listener, "test", &shutdown, |_, _| {}).await;
        // 10 ms doubling to 1 s: 8 tries in the first 1.3 s, then one a second.
        let n = calls.load(Ordering::Relaxed);
        assert!((10..=20).contains(&n), "{n} accepts in 10 s");
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_logged_once_per_backoff_period() {
        let mut b = BackOff::default();
        let start = Instant::now();
        let mut now = start;
        let mut logged = 0;
        while now.duration_since(start) < Duration::from_secs(10) {
            let (pause, log) = b.failed(now);
            assert!(pause <= limits::ACCEPT_BACKOFF_MAX);
            logged += u32::from(log.is_some());
            // Even failures with no pause at all log only once a period.
            now += pause / 100;
        }
        assert!((10..=11).contains(&logged), "{logged} lines in 10 s");
        assert!(b.succeeded().is_some());
        assert_eq!(b.failed(now).0, limits::ACCEPT_BACKOFF_MIN);
    }

    #[tokio::test(start_paused = true)]
    async fn refusals_are_logged_once_a_period_with_the_count_left_out() {
        let mut l = LogLimiter::new(Duration::from_secs(10));
        let start = Instant::now();
        assert_eq!(l.allow(start), Some(0));
        for i in 1..=99 {
            assert_eq!(l.allow(start + Duration::from_millis(i * 10)), None);
        }
        assert_eq!(l.allow(start + Duration::from_secs(10)), Some(99));
    }
}
