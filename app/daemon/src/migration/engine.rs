//! The checkpoint engine's side of a move, on threads of their own (the engine's handles hold
//! a tree under ptrace and must stay on the thread that made them).
//!
//! - [`start_dump`]: one thread freezes and dumps the pod (`checkpoint_tree` with
//!   `KeepFrozen`) into 1 MiB raw chunks; a second compresses each (codec fixed or `auto`)
//!   into an encoded `Image` message for the channel, and a third (optional) writes the raw
//!   image to a file. The frozen tree is then held until a [`Decision`]: `Commit` ends it (the
//!   task lives on elsewhere), `Abort` — or the decision's sender dropped — resumes it.
//!   A **live** dump first starts a dirty-page tracker on the running pod and writes one
//!   pre-copy round per [`RoundCmd::Next`] (round 0: all memory; then what the task wrote
//!   since), each between a `RoundStart` and a `RoundDone` piece; [`RoundCmd::Freeze`] then
//!   freezes the pod and dumps a delta image. Nothing is frozen before that: a move that
//!   fails during the rounds just drops the tracker. A pod the tracker cannot follow (an old
//!   kernel) is dumped at once, after a `Fallback` piece saying why. The image file then holds
//!   the rounds and the delta as one live container ([`LIVE_MAGIC`]).
//! - [`start_restore`]: one thread restores an image (`restore_tree`, held stopped), then
//!   waits: `Commit` runs the adoption (resume, hand to the registry), `Abort` — or the
//!   sender dropped — kills the restored tree.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use zos_checkpoint::{
    AfterDump, DirtyTracker, PageBase, RestoredTree, TreeDumpOptions, TreeRestoreOptions,
};
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

/// The last 8 bytes of a kept image file that holds a live move: pre-copy rounds (each
/// followed by its length, u64 LE), then the delta image, its length (u64 LE) and this.
pub const LIVE_MAGIC: &[u8; 8] = b"ZOSLIVE1";

/// What a live dump is told to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoundCmd {
    /// Write the next pre-copy round.
    Next,
    /// Freeze and dump the (delta) image.
    Freeze,
}

/// What comes out of a dump, in order.
#[derive(Debug)]
pub enum Piece {
    /// An encoded `Image` message and its raw length.
    Chunk(u64, Vec<u8>),
    /// Pre-copy round `index` begins (its chunks follow).
    RoundStart(u32),
    /// Pre-copy round `index` is complete.
    RoundDone {
        /// The round.
        index: u32,
        /// Its raw bytes.
        raw: u64,
        /// Bytes the task wrote since the previous round.
        dirty: u64,
    },
    /// A live dump could not track the pod and dumps it stop-and-copy instead.
    Fallback(String),
}

/// A dump in progress.
pub struct Dump {
    /// What the dump produces, in order; ends after the image's last chunk.
    pub messages: mpsc::Receiver<Piece>,
    /// Live dumps: tells the dump thread to write another round or to freeze.
    pub rounds: Option<std_mpsc::Sender<RoundCmd>>,
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
    live: bool,
) -> Result<Dump> {
    let (raw_tx, raw_rx) = std_mpsc::sync_channel::<Raw>(4);
    let (msg_tx, messages) = mpsc::channel::<Piece>(8);
    let (round_tx, round_rx) = std_mpsc::channel::<RoundCmd>();
    let (done_tx, done) = oneshot::channel();
    let (decide, decisions) = std_mpsc::channel();
    let (outcome_tx, outcome) = oneshot::channel();
    let link_bps = Arc::new(AtomicU64::new(match codec {
        CodecChoice::Auto(bps) => bps as u64,
        CodecChoice::Fixed(_) => 0,
    }));
    let (file_tx, file_thread) = match image_file {
        Some(file) => {
            let (tx, rx) = std_mpsc::sync_channel::<Raw>(16);
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
        let mut tracker = None;
        if live {
            match precopy(root, &mut writer, &round_rx) {
                Precopy::Freeze(t) => tracker = t,
                Precopy::Stop(e) => {
                    drop(writer);
                    let _ = done_tx.send(Err(e));
                    let _ = outcome_tx.send(());
                    return;
                }
            }
        }
        writer.total = 0;
        let result = match tracker.as_mut() {
            Some(t) => zos_checkpoint::checkpoint_tree_delta(root, &opts, t, &mut writer),
            None => zos_checkpoint::checkpoint_tree(root, &opts, &mut writer),
        }
        .map_err(|e| match e {
            // Checked up front already, but a live move freezes later: the tree may have
            // changed meanwhile (a process between vfork and exec). It runs on, as then.
            zos_checkpoint::Error::Refused { .. } => DaemonError::User(format!(
                "task {task} cannot move now (it runs on where it was): {e}"
            )),
            e => DaemonError::User(format!("checkpoint: {e}")),
        })
        .and_then(|stats| writer.finish().map(|()| stats));
        let image_bytes = writer.total;
        if live && result.is_ok() {
            let _ = writer.out.send(Raw::ImageEnd(image_bytes));
        }
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
        // The tracker goes now (it would be unregistered from a dead pod on commit, or it
        // would slow the resumed task on abort).
        drop(tracker);
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
                Decision::Commit => {
                    // Doomed at once (it can never run again), collected after the mover
                    // went on: freeing a large task's memory takes a while.
                    frozen.doom();
                    let _ = outcome_tx.send(());
                    frozen.kill();
                    return;
                }
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
        rounds: live.then_some(round_tx),
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

/// What the dump thread hands the compressor (and the image file).
enum Raw {
    /// Raw image (or round) bytes.
    Chunk(Arc<Vec<u8>>),
    /// A round begins.
    RoundStart(u32),
    /// A round ended.
    RoundDone { index: u32, raw: u64, dirty: u64 },
    /// A live dump tracks nothing and goes stop-and-copy.
    Fallback(String),
    /// A live dump's image is complete (its raw length), for the live container.
    ImageEnd(u64),
}

/// How the pre-copy ended.
enum Precopy {
    /// Freeze now (with the tracker, or without one: the fallback).
    Freeze(Option<DirtyTracker>),
    /// The move stopped (its sender went away) or a round failed: dump nothing.
    Stop(DaemonError),
}

/// The pre-copy rounds of a live dump, one per [`RoundCmd::Next`], until `Freeze`.
fn precopy(root: i32, writer: &mut ChunkWriter, cmds: &std_mpsc::Receiver<RoundCmd>) -> Precopy {
    let mut tracker = match DirtyTracker::start(root) {
        Ok(t) => t,
        Err(e) => {
            let why = format!("the task's memory cannot be tracked ({e}): stop-and-copy");
            tracing::warn!(root, "{why}");
            let _ = writer.out.send(Raw::Fallback(why));
            return Precopy::Freeze(None);
        }
    };
    let mut index = 0u32;
    loop {
        match cmds.recv() {
            Ok(RoundCmd::Next) => {}
            Ok(RoundCmd::Freeze) => return Precopy::Freeze(Some(tracker)),
            Err(_) => return Precopy::Stop(DaemonError::User("the move stopped".into())),
        }
        if writer.out.send(Raw::RoundStart(index)).is_err() {
            return Precopy::Stop(DaemonError::User("the move's channel is gone".into()));
        }
        writer.total = 0;
        let stats = match zos_checkpoint::write_round(&mut tracker, index == 0, &mut *writer)
            .map_err(|e| DaemonError::User(format!("pre-copy round {index}: {e}")))
            .and_then(|st| writer.finish().map(|()| st))
        {
            Ok(st) => st,
            Err(e) => return Precopy::Stop(e),
        };
        let done = Raw::RoundDone {
            index,
            raw: writer.total,
            dirty: stats.dirty_bytes,
        };
        if writer.out.send(done).is_err() {
            return Precopy::Stop(DaemonError::User("the move's channel is gone".into()));
        }
        index += 1;
    }
}

/// Cuts the engine's stream into raw chunks of [`IMAGE_CHUNK`] bytes.
struct ChunkWriter {
    buf: Vec<u8>,
    out: std_mpsc::SyncSender<Raw>,
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
            .send(Raw::Chunk(Arc::new(chunk)))
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
    raw: std_mpsc::Receiver<Raw>,
    out: mpsc::Sender<Piece>,
    file: Option<std_mpsc::SyncSender<Raw>>,
    codec: CodecChoice,
    link_bps: Arc<AtomicU64>,
    stalls: Arc<Stalls>,
) {
    let mut enc = Encoder::new();
    let mut auto = match codec {
        CodecChoice::Auto(bps) => Some(AutoCodec::new(bps)),
        CodecChoice::Fixed(_) => None,
    };
    while let Ok(item) = raw.recv() {
        let chunk = match item {
            Raw::Chunk(c) => c,
            marker => {
                let piece = match &marker {
                    Raw::RoundStart(i) => Some(Piece::RoundStart(*i)),
                    Raw::RoundDone { index, raw, dirty } => Some(Piece::RoundDone {
                        index: *index,
                        raw: *raw,
                        dirty: *dirty,
                    }),
                    Raw::Fallback(why) => Some(Piece::Fallback(why.clone())),
                    _ => None,
                };
                if let Some(f) = &file
                    && f.send(marker).is_err()
                {
                    return;
                }
                if let Some(p) = piece
                    && out.blocking_send(p).is_err()
                {
                    return;
                }
                continue;
            }
        };
        if let Some(f) = &file {
            let t = Instant::now();
            if f.send(Raw::Chunk(chunk.clone())).is_err() {
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
        if out
            .blocking_send(Piece::Chunk(chunk.len() as u64, message))
            .is_err()
        {
            return;
        }
        stalls
            .link
            .fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
    }
}

/// Writes the raw image to the master's kept file; for a live dump, the live container
/// (see [`LIVE_MAGIC`]): each round followed by its length, then the image, its length and
/// the magic.
fn write_file(file: std::fs::File, chunks: std_mpsc::Receiver<Raw>) -> Result<()> {
    let mut file = std::io::BufWriter::with_capacity(1 << 20, file);
    let io = |e| DaemonError::io("keep the task's image", e);
    while let Ok(item) = chunks.recv() {
        match item {
            Raw::Chunk(c) => file.write_all(&c).map_err(io)?,
            Raw::RoundDone { raw, .. } => file.write_all(&raw.to_le_bytes()).map_err(io)?,
            Raw::ImageEnd(len) => {
                file.write_all(&len.to_le_bytes()).map_err(io)?;
                file.write_all(LIVE_MAGIC).map_err(io)?;
            }
            Raw::RoundStart(_) | Raw::Fallback(_) => {}
        }
    }
    file.flush().map_err(io)
}

/// A kept image file's bytes as a whole image: a live container is flattened (its rounds
/// merged under its delta image); anything else is returned as it is.
pub fn unpack_kept(bytes: Vec<u8>) -> std::result::Result<Vec<u8>, String> {
    if !bytes.ends_with(LIVE_MAGIC) {
        return Ok(bytes);
    }
    let bad = || "the kept image of a live move is damaged".to_string();
    let mut end = bytes.len() - LIVE_MAGIC.len();
    let take = |end: &mut usize| -> std::result::Result<(usize, usize), String> {
        let at = end.checked_sub(8).ok_or_else(bad)?;
        let len = u64::from_le_bytes(bytes[at..*end].try_into().unwrap()) as usize;
        let start = at.checked_sub(len).ok_or_else(bad)?;
        *end = start;
        Ok((start, at))
    };
    let (img_start, img_end) = take(&mut end)?;
    let mut rounds = Vec::new();
    while end > 0 {
        rounds.push(take(&mut end)?);
    }
    let mut base = PageBase::new();
    for &(s, e) in rounds.iter().rev() {
        base.add_round(bytes[s..e].to_vec())
            .map_err(|e| format!("a pre-copy round of the kept image: {e}"))?;
    }
    zos_checkpoint::track::flatten(&bytes[img_start..img_end], &base)
        .map_err(|e| format!("the kept image: {e}"))
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
    base: Option<PageBase>,
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
        let restored = match &base {
            Some(base) => zos_checkpoint::restore_tree_with_base(&image, base, &opts),
            None => zos_checkpoint::restore_tree(&image, &opts),
        };
        let tree = match restored {
            Ok(t) => t,
            Err(e) => {
                let _ = done_tx.send(Err(DaemonError::User(format!("restore: {e}"))));
                let _ = outcome_tx.send(Ok(0));
                return;
            }
        };
        drop(image);
        drop(base);
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
