//! A task's terminal as the master keeps it, across moves: the bounded log, the tail replayed
//! to a new attach, the attached clients (a broadcast of output), their input and the window
//! size.
//!
//! Output comes from **sources**, one after another: the local pod's pty master
//! (`local_pty`), or while the task runs on a zombie the `pty/<task>` relay (`relay`). A move
//! adds the next source while the previous one still drains (a killed pod's pty holds its last
//! output until read); sources take turns in the order they were added, so the log stays in
//! order: a source waits until every older one has ended, or at most [`DRAIN_LIMIT`] (the
//! older ones are then abandoned and whatever they still bring is dropped). Input and window
//! sizes go to the newest source.

use std::collections::{BTreeSet, VecDeque};
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::{broadcast, mpsc, watch};
use zos_netproto::control::ATTACH_REPLAY_BYTES;

use super::log::{LogSnapshot, TermLog};

/// How long a new source waits for older ones to drain.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(3);
/// Output chunks a slow client may fall behind before it misses some.
const BROADCAST_CHUNKS: usize = 1024;

/// What a terminal asks of its source.
#[derive(Debug)]
pub enum SourceCmd {
    /// Type these bytes.
    Input(Bytes),
    /// Set the window size and make the foreground group redraw.
    Resize {
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
}

/// One task's terminal.
pub struct Terminal {
    inner: Mutex<Inner>,
    output: broadcast::Sender<Bytes>,
    ended: watch::Sender<bool>,
}

struct Inner {
    log: Option<TermLog>,
    tail: VecDeque<u8>,
    next_source: u64,
    /// Sources not yet ended nor abandoned; the smallest one's output is taken.
    live: BTreeSet<u64>,
    /// The newest source's commands.
    commands: Option<(u64, mpsc::Sender<SourceCmd>)>,
    size: Option<(u16, u16)>,
    /// The task ended: no more sources will come.
    finishing: bool,
}

impl Terminal {
    /// A terminal whose log lives in `dir` (private, existing). Without a log (the file could
    /// not be made) the terminal still works for attached clients.
    pub fn new(dir: &Path) -> Terminal {
        let log = TermLog::create(dir)
            .inspect_err(|e| tracing::warn!("terminal log in {}: {e}", dir.display()))
            .ok();
        Terminal {
            inner: Mutex::new(Inner {
                log,
                tail: VecDeque::new(),
                next_source: 1,
                live: BTreeSet::new(),
                commands: None,
                size: None,
                finishing: false,
            }),
            output: broadcast::channel(BROADCAST_CHUNKS).0,
            ended: watch::channel(false).0,
        }
    }

    /// Registers the next source, whose commands go to `commands`; returns its number (for
    /// [`Terminal::push_output`] and [`Terminal::source_ended`]). It is sent the last window
    /// size a client asked for.
    pub fn add_source(&self, commands: mpsc::Sender<SourceCmd>) -> u64 {
        let mut inner = self.inner.lock();
        let id = inner.next_source;
        inner.next_source += 1;
        inner.live.insert(id);
        if let Some((cols, rows)) = inner.size {
            let _ = commands.try_send(SourceCmd::Resize { cols, rows });
        }
        inner.commands = Some((id, commands));
        id
    }

    fn is_turn_of(&self, source: u64) -> Option<bool> {
        let inner = self.inner.lock();
        if !inner.live.contains(&source) {
            return None;
        }
        Some(inner.live.first() == Some(&source))
    }

    fn abandon_older(&self, source: u64) {
        let mut inner = self.inner.lock();
        let older: Vec<u64> = inner.live.range(..source).copied().collect();
        for s in older {
            tracing::warn!(
                "terminal source {s} did not drain in time; its further output is dropped"
            );
            inner.live.remove(&s);
        }
    }

    /// Blocks until every older source has ended (or [`DRAIN_LIMIT`] passed: they are
    /// abandoned). For sources read by a thread.
    pub fn wait_turn_blocking(&self, source: u64) {
        let start = Instant::now();
        while self.is_turn_of(source) == Some(false) {
            if start.elapsed() >= DRAIN_LIMIT {
                self.abandon_older(source);
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// [`Terminal::wait_turn_blocking`] for sources read by a task.
    pub async fn wait_turn(&self, source: u64) {
        let start = tokio::time::Instant::now();
        while self.is_turn_of(source) == Some(false) {
            if start.elapsed() >= DRAIN_LIMIT {
                self.abandon_older(source);
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Output from `source`: logged, kept in the tail, sent to every attached client. Dropped
    /// (false) when it is not this source's turn (it was abandoned).
    pub fn push_output(&self, source: u64, bytes: &[u8]) -> bool {
        let mut inner = self.inner.lock();
        if inner.live.first() != Some(&source) {
            return false;
        }
        if let Some(log) = inner.log.as_mut()
            && let Err(e) = log.append(bytes)
        {
            tracing::warn!("terminal log: {e}; logging stops");
            inner.log = None;
        }
        inner.tail.extend(bytes);
        let excess = inner.tail.len().saturating_sub(ATTACH_REPLAY_BYTES);
        inner.tail.drain(..excess);
        // No receiver is fine.
        let _ = self.output.send(Bytes::copy_from_slice(bytes));
        true
    }

    /// `source` has ended (its pty or channel is closed and drained).
    pub fn source_ended(&self, source: u64) {
        let mut inner = self.inner.lock();
        inner.live.remove(&source);
        if inner.commands.as_ref().is_some_and(|(id, _)| *id == source) {
            inner.commands = None;
        }
        self.check_ended(&inner);
    }

    /// The task ended: once its sources have drained, attached clients and followers are told.
    pub fn finish(&self) {
        let mut inner = self.inner.lock();
        inner.finishing = true;
        self.check_ended(&inner);
    }

    fn check_ended(&self, inner: &Inner) {
        if inner.finishing && inner.live.is_empty() {
            self.ended.send_replace(true);
        }
    }

    /// Whether the task ended and all its output is in.
    pub fn ended(&self) -> watch::Receiver<bool> {
        self.ended.subscribe()
    }

    /// Types `bytes` into the task's terminal (waits while its source is busy).
    pub async fn input(&self, bytes: Bytes) -> io::Result<()> {
        let commands = self.inner.lock().commands.as_ref().map(|(_, c)| c.clone());
        let Some(commands) = commands else {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the task's terminal is not connected (it is moving or ended)",
            ));
        };
        commands
            .send(SourceCmd::Input(bytes))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the task's terminal closed"))
    }

    /// Input goes nowhere until the next source (the task left this host; its old terminal
    /// only drains).
    pub fn drop_input(&self) {
        self.inner.lock().commands = None;
    }

    /// Whether typed input has somewhere to go now.
    pub fn has_input(&self) -> bool {
        self.inner.lock().commands.is_some()
    }

    /// Sets the window size (remembered for later sources) and makes the task redraw.
    pub fn resize(&self, cols: u16, rows: u16) -> io::Result<()> {
        let mut inner = self.inner.lock();
        inner.size = Some((cols, rows));
        match inner.commands.as_ref() {
            Some((_, c)) => c
                .try_send(SourceCmd::Resize { cols, rows })
                .map_err(|_| io::Error::new(io::ErrorKind::WouldBlock, "the terminal is busy")),
            None => Ok(()),
        }
    }

    /// The recent output (at most [`ATTACH_REPLAY_BYTES`]) and a receiver of everything after
    /// it, taken together (nothing lost or repeated between them).
    pub fn subscribe_with_tail(&self) -> (Vec<u8>, broadcast::Receiver<Bytes>) {
        let inner = self.inner.lock();
        let tail = inner.tail.iter().copied().collect();
        (tail, self.output.subscribe())
    }

    /// The log as it is now and a receiver of everything after it.
    pub fn log_and_subscribe(&self) -> io::Result<(LogSnapshot, broadcast::Receiver<Bytes>)> {
        let inner = self.inner.lock();
        let snapshot = match inner.log.as_ref() {
            Some(log) => log.snapshot()?,
            None => {
                return Err(io::Error::other(
                    "this task's log could not be written (see the daemon's log)",
                ));
            }
        };
        Ok((snapshot, self.output.subscribe()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terminal() -> (Terminal, std::path::PathBuf) {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "zos-term-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        (Terminal::new(&dir), dir)
    }

    #[tokio::test]
    async fn a_new_source_waits_for_the_old_one_to_drain_so_output_stays_in_order() {
        let (term, dir) = terminal();
        let (tx1, _rx1) = mpsc::channel(4);
        let old = term.add_source(tx1);
        let (tx2, mut rx2) = mpsc::channel(4);
        let new = term.add_source(tx2);
        assert!(!term.push_output(new, b"too early"));
        assert!(term.push_output(old, b"old "));
        let (_, mut live) = term.subscribe_with_tail();
        term.source_ended(old);
        term.wait_turn(new).await;
        assert!(term.push_output(new, b"new"));
        assert_eq!(live.recv().await.unwrap(), Bytes::from_static(b"new"));
        let (tail, _) = term.subscribe_with_tail();
        assert_eq!(tail, b"old new");
        // Input goes to the newest source.
        term.input(Bytes::from_static(b"x")).await.unwrap();
        assert!(matches!(rx2.recv().await, Some(SourceCmd::Input(b)) if b == "x"));
        // The end is announced once the task finished and its sources drained.
        term.finish();
        assert!(!*term.ended().borrow());
        term.source_ended(new);
        assert!(*term.ended().borrow());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test(start_paused = true)]
    async fn an_old_source_that_never_drains_is_abandoned_after_the_limit() {
        let (term, dir) = terminal();
        let (tx1, _rx1) = mpsc::channel(4);
        let old = term.add_source(tx1);
        let (tx2, _rx2) = mpsc::channel(4);
        let new = term.add_source(tx2);
        term.wait_turn(new).await;
        assert!(term.push_output(new, b"new"));
        assert!(!term.push_output(old, b"stale"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_replayed_tail_is_bounded() {
        let (term, dir) = terminal();
        let (tx, _rx) = mpsc::channel(4);
        let s = term.add_source(tx);
        for _ in 0..3 {
            term.push_output(s, &vec![b'x'; ATTACH_REPLAY_BYTES]);
        }
        term.push_output(s, b"end");
        let (tail, _) = term.subscribe_with_tail();
        assert_eq!(tail.len(), ATTACH_REPLAY_BYTES);
        assert!(tail.ends_with(b"end"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
