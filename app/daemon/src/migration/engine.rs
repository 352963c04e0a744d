//! The checkpoint engine's side of a move, on threads of their own (the engine's handles hold
//! a tree under ptrace and must stay on the thread that made them).
//!
//! - [`start_dump`]: one thread freezes and dumps the pod (`checkpoint_tree` with
//!   `KeepFrozen`) into 1 MiB raw chunks; a second compresses each (codec fixed or `auto`)
//!   into an encoded `Image` message for the channel, and a third (optional) writes the raw
//!   image to a file. The frozen tree is then held until a [`Decision`]: `Commit` ends it (the
//!   task lives on elsewhere), `Abort` — or the decision's sender dropped — resumes it.
//! - [`start_restore`]: one thread restores an image (`restore_tree`, held stopped), then
//!   waits: `Commit` runs the adoption (resume, hand to the registry), `Abort` — or the
//!   sender dropped — kills the restored tree.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use zos_checkpoint::{AfterDump, RestoredTree, TreeDumpOptions, TreeRestoreOptions};
use zos_netproto::migration::{Codec, IMAGE_CHUNK};

use super::codec::{AutoCodec, Encoder};
use crate::error::{DaemonError, Result};

/// What the holder of a copy is told to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The move committed (sender: end the frozen copy; receiver: let the copy run).
    Commit,
    /// The move failed (sender: resume; receiver: kill).
    Abort,
}

/// A copy held by an engine thread until told what to do.
pub struct Hold<R> {
    decide: std_mpsc::Sender<Decision>,
    outcome: oneshot::Receiver<R>,
}

impl<R> Hold<R> {
    /// Tells the thread, and waits for what it did.
    pub async fn decide(self, decision: Decision) -> Option<R> {
        let _ = self.decide.send(decision);
        self.outcome.await.ok()
    }
}

/// What a dump produced.
#[derive(Debug, Clone)]
pub struct DumpSummary {
    /// Raw image bytes.
    pub bytes: u64,
    /// Files the tree maps (the pod's view).
    pub mapped_files: Vec<String>,
    /// Processes saved.
    pub processes: usize,
    /// Typed input the task had not read (stays behind).
    pub pty_input_lost: usize,
}

/// How the chunks are compressed.
#[derive(Clone, Copy, Debug)]
pub enum CodecChoice {
    /// Always this one.
    Fixed(Codec),
    /// Per [`AutoCodec`], starting from this link rate (bytes/s).
    Auto(f64),
}

/// A dump in progress.
pub struct Dump {
    /// Encoded `Image` messages with their raw lengths, in order; ends after the last.
    pub messages: mpsc::Receiver<(u64, Vec<u8>)>,
    /// The dump's outcome (after its last chunk); the tree is then held frozen.
    pub done: oneshot::Receiver<Result<DumpSummary>>,
    /// The frozen tree's holder (decide once `done` said Ok).
    pub hold: Hold<()>,
    /// The link rate the sender measures (bytes/s), for `auto`.
    pub link_bps: Arc<AtomicU64>,
    /// Where the threads waited.
    pub stalls: Arc<Stalls>,
}

/// Starts dumping the pod whose init has host PID `root` (see the module docs). `image_file`
/// receives the raw image as well.
pub fn start_dump(
    root: i32,
    task: u64,
    codec: CodecChoice,
    image_file: Option<std::fs::File>,
) -> Result<Dump> {
    let (raw_tx, raw_rx) = std_mpsc::sync_channel::<Arc<Vec<u8>>>(4);
    let (msg_tx, messages) = mpsc::channel::<(u64, Vec<u8>)>(8);
    let (done_tx, done) = oneshot::channel();
    let (decide, decisions) = std_mpsc::channel();
    let (outcome_tx, outcome) = oneshot::channel();
    let link_bps = Arc::new(AtomicU64::new(match codec {
        CodecChoice::Auto(bps) => bps as u64,
        CodecChoice::Fixed(_) => 0,
    }));
    let (file_tx, file_thread) = match image_file {
        Some(file) => {
            let (tx, rx) = std_mpsc::sync_channel::<Arc<Vec<u8>>>(16);
            let t = spawn(format!("image-file-{task}"), move || write_file(file, rx))?;
            (Some(tx), Some(t))
        }
        None => (None, None),
    };
    let rate = link_bps.clone();
    let stalls = Arc::new(Stalls::default());
    let compressor_stalls = stalls.clone();
    spawn(format!("compress-{task}"), move || {
        compress_chunks(raw_rx, msg_tx, file_tx, codec, rate, compressor_stalls)
    })?;
    let writer_stalls = stalls.clone();
    spawn(format!("dump-{task}"), move || {
        let mut writer = ChunkWriter {
            buf: Vec::with_capacity(IMAGE_CHUNK),
            out: raw_tx,
            total: 0,
            stalls: writer_stalls,
        };
        let opts = TreeDumpOptions {
            after: AfterDump::KeepFrozen,
        };
        let result = zos_checkpoint::checkpoint_tree(root, &opts, &mut writer)
            .map_err(|e| DaemonError::User(format!("checkpoint: {e}")))
            .and_then(|stats| writer.finish().map(|()| stats));
        drop(writer);
        let file_ok = match file_thread.map(|t| t.join()) {
            Some(Ok(Err(e))) => Err(e),
            Some(Err(_)) => Err(DaemonError::User("the image writer died".into())),
            _ => Ok(()),
        };
        let mut stats = match result.and_then(|s| file_ok.map(|()| s)) {
            Ok(s) => s,
            Err(e) => {
                // The engine resumed the tree (or the held one resumes on drop below).
                let _ = done_tx.send(Err(e));
                let _ = outcome_tx.send(());
                return;
            }
        };
        let held = stats.held.take();
        let _ = done_tx.send(Ok(DumpSummary {
            bytes: stats.bytes_written,
            mapped_files: stats.mapped_files,
            processes: stats.processes,
            pty_input_lost: stats.pty_input_lost,
        }));
        let decision = decisions.recv().unwrap_or(Decision::Abort);
        if let Some(frozen) = held {
            match decision {
                Decision::Commit => frozen.kill(),
                Decision::Abort => {
                    if let Err(e) = frozen.resume() {
                        tracing::error!("task {task}: resuming its frozen copy failed: {e}");
                    }
                }
            }
        }
        let _ = outcome_tx.send(());
    })?;
    Ok(Dump {
        messages,
        done,
        hold: Hold { decide, outcome },
        link_bps,
        stalls,
    })
}

/// Where a dump's threads waited, µs: the dump for the compressor, the compressor for the
/// image file and for the channel (the link) — which of them held the move back.
#[derive(Debug, Default)]
pub struct Stalls {
    /// The engine waited for the compressor.
    pub dump: AtomicU64,
    /// The compressor waited for the image file.
    pub file: AtomicU64,
    /// The compressor waited for the channel.
    pub link: AtomicU64,
}

impl Stalls {
    /// One line for the log.
    pub fn describe(&self) -> String {
        let ms = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64 / 1e3;
        format!(
            "the dump waited {:.0} ms for the compressor, which waited {:.0} ms for the image file and {:.0} ms for the link",
            ms(&self.dump),
            ms(&self.file),
            ms(&self.link)
        )
    }
}

/// Cuts the engine's stream into raw chunks of [`IMAGE_CHUNK`] bytes.
struct ChunkWriter {
    buf: Vec<u8>,
    out: std_mpsc::SyncSender<Arc<Vec<u8>>>,
    total: u64,
    stalls: Arc<Stalls>,
}

impl ChunkWriter {
    fn flush_chunk(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(IMAGE_CHUNK));
        let t = Instant::now();
        let sent = self
            .out
            .send(Arc::new(chunk))
            .map_err(|_| std::io::Error::other("the move's channel is gone"));
        self.stalls
            .dump
            .fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
        sent
    }

    fn finish(&mut self) -> Result<()> {
        self.flush_chunk()
            .map_err(|e| DaemonError::User(format!("sending the image: {e}")))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(IMAGE_CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        self.total += n as u64;
        if self.buf.len() == IMAGE_CHUNK {
            self.flush_chunk()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn compress_chunks(
    raw: std_mpsc::Receiver<Arc<Vec<u8>>>,
    out: mpsc::Sender<(u64, Vec<u8>)>,
    file: Option<std_mpsc::SyncSender<Arc<Vec<u8>>>>,
    codec: CodecChoice,
    link_bps: Arc<AtomicU64>,
    stalls: Arc<Stalls>,
) {
    let mut enc = Encoder::new();
    let mut auto = match codec {
        CodecChoice::Auto(bps) => Some(AutoCodec::new(bps)),
        CodecChoice::Fixed(_) => None,
    };
    while let Ok(chunk) = raw.recv() {
        if let Some(f) = &file {
            let t = Instant::now();
            if f.send(chunk.clone()).is_err() {
                return;
            }
            stalls
                .file
                .fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
        }
        let (_, message) = match (&mut auto, codec) {
            (Some(auto), _) => {
                auto.set_link_rate(link_bps.load(Ordering::Relaxed) as f64);
                auto.encode_message(&mut enc, &chunk)
            }
            (None, CodecChoice::Fixed(c)) => enc.encode_message(c, &chunk),
            (None, CodecChoice::Auto(_)) => enc.encode_message(Codec::None, &chunk),
        };
        let t = Instant::now();
        if out.blocking_send((chunk.len() as u64, message)).is_err() {
            return;
        }
        stalls
            .link
            .fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
    }
}

fn write_file(mut file: std::fs::File, chunks: std_mpsc::Receiver<Arc<Vec<u8>>>) -> Result<()> {
    while let Ok(chunk) = chunks.recv() {
        file.write_all(&chunk)
            .map_err(|e| DaemonError::io("keep the task's image", e))?;
    }
    Ok(())
}

/// What the receiver learns once the tree is restored and held.
#[derive(Debug, Clone)]
pub struct Restored {
    /// Host PID of the restored init.
    pub pid: i32,
    /// Processes restored.
    pub processes: usize,
}

/// The adoption run on the restorer's thread after `Commit`: resume the tree and hand it to
/// its registry; the init's host PID.
pub type Adopt = Box<dyn FnOnce(RestoredTree) -> Result<i32> + Send>;

/// How a restore started by [`start_restore`] went, and the hold of the restored tree.
pub type RestoreStarted = (oneshot::Receiver<Result<Restored>>, Hold<Result<i32>>);

/// Restores `image` on a thread of its own and holds it (see the module docs). The first
/// receiver says how the restore went; the hold's outcome is the adoption's result (or
/// `Ok(0)` when killed).
pub fn start_restore(
    task: u64,
    image: Vec<u8>,
    opts: TreeRestoreOptions,
    adopt: Adopt,
) -> Result<RestoreStarted> {
    let (done_tx, done) = oneshot::channel();
    let (decide, decisions) = std_mpsc::channel();
    let (outcome_tx, outcome) = oneshot::channel();
    // The adoption starts the task's terminal relay, a task on the daemon's runtime.
    let runtime = tokio::runtime::Handle::current();
    spawn(format!("restore-{task}"), move || {
        let _runtime = runtime.enter();
        let tree = match zos_checkpoint::restore_tree(&image, &opts) {
            Ok(t) => t,
            Err(e) => {
                let _ = done_tx.send(Err(DaemonError::User(format!("restore: {e}"))));
                let _ = outcome_tx.send(Ok(0));
                return;
            }
        };
        drop(image);
        let _ = done_tx.send(Ok(Restored {
            pid: tree.pid(),
            processes: tree.pids().len(),
        }));
        match decisions.recv().unwrap_or(Decision::Abort) {
            Decision::Commit => {
                let _ = outcome_tx.send(adopt(tree));
            }
            Decision::Abort => {
                tree.kill();
                let _ = outcome_tx.send(Ok(0));
            }
        }
    })?;
    Ok((done, Hold { decide, outcome }))
}

fn spawn<T: Send + 'static>(
    name: String,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<std::thread::JoinHandle<T>> {
    std::thread::Builder::new()
        .name(name)
        .spawn(f)
        .map_err(|e| DaemonError::io("start a mover thread", e))
}

/// How long the engine may take to restore or dump before a move gives up waiting.
pub const ENGINE_LIMIT: Duration = Duration::from_secs(300);
