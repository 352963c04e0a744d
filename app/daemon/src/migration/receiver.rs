//! The receiving side of a move, from an accepted offer to the image's end: the files it
//! asked for (checked by length and SHA-256 into the task's [`FileStore`]), the image chunks
//! (decoded on a thread of their own into memory, bounded by what this host can hold), and
//! the files the sender adds later (`More`). A live move's pre-copy rounds come first, as
//! `Image` chunks between `Round` and `RoundEnd`: the decoder thread takes each whole round
//! into a [`PageBase`] (checked in full), and the image that follows is then a delta over
//! it. Rounds, round and image bytes together stay within the host's limit.

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use zos_checkpoint::PageBase;
use zos_netproto::migration::{Codec, Executable, MAX_ROUNDS, MoveMessage, check_executables};

use super::codec::Decoder;
use super::files::{FileStore, IncomingFile};
use super::link::{Frame, MoveLink};
use super::progress::{Phase, Progress};
use super::sender::variant;
use crate::error::{DaemonError, Result};

/// How long the receiver waits for the sender's next message (its freeze and the first image
/// bytes of a large tree take a while).
pub const NEXT_TIMEOUT: Duration = Duration::from_secs(120);

/// The image and every file description the sender gave.
pub struct Received {
    /// The raw image.
    pub image: Vec<u8>,
    /// Files from the offer and any `More`.
    pub executables: Vec<Executable>,
    /// The pages of a live move's pre-copy rounds (the image is then a delta over them).
    pub base: Option<PageBase>,
}

/// What the decoder thread is given.
enum ToDecoder {
    /// An encoded chunk of a round or of the image.
    Chunk(Codec, u32, Bytes),
    /// The round whose chunks came since the previous one is complete.
    RoundEnd,
}

/// The size an image may have and the size its sender announced.
#[derive(Debug, Clone, Copy)]
pub struct ImageSize {
    /// The most raw bytes this host takes.
    pub limit: u64,
    /// The sender's estimate (`Offer::image_hint`), used to reserve memory up to `limit`.
    pub hint: u64,
}

/// Receives what follows an accepted offer (see the module docs). `need` is what the
/// receiver asked for; `decide_more` answers a `More`. `size.limit` bounds the image's raw
/// bytes.
pub async fn receive(
    link: &mut MoveLink,
    executables: Vec<Executable>,
    need: Vec<[u8; 32]>,
    store: &FileStore,
    size: ImageSize,
    mut decide_more: impl FnMut(&[Executable]) -> Vec<[u8; 32]>,
    progress: &Progress,
) -> Result<Received> {
    let ImageSize { limit, hint } = size;
    let mut all = executables;
    let mut pending: Vec<([u8; 32], u64)> = need
        .iter()
        .filter_map(|sha| {
            all.iter()
                .find(|x| &x.sha256 == sha)
                .map(|x| (*sha, x.size))
        })
        .collect();
    pending.dedup();
    let files_total: u64 = pending.iter().map(|p| p.1).sum();
    if files_total > 0 {
        progress.enter(Phase::SendFiles, files_total);
    }
    let mut current: Option<IncomingFile> = None;
    let (chunks_tx, chunks_rx) = mpsc::channel::<ToDecoder>(8);
    let (image_tx, image_rx) = oneshot::channel();
    let reserve = hint.min(limit) as usize;
    std::thread::Builder::new()
        .name("decode-image".into())
        .spawn(move || {
            let _ = image_tx.send(decode_chunks(chunks_rx, reserve, limit));
        })
        .map_err(|e| DaemonError::io("start a decoder thread", e))?;
    let mut chunks_tx = Some(chunks_tx);
    let mut raw = 0u64;
    let mut in_image = false;
    // Pre-copy: the next round expected and the one under way (with its raw bytes so far);
    // once the image has begun (`in_image`), no round may come.
    let mut next_round = 0u32;
    let mut round: Option<(u32, u64)> = None;
    loop {
        let message = match link
            .recv_frame(NEXT_TIMEOUT, "the next part of the task")
            .await?
        {
            Frame::Image(codec, raw_len, data) => {
                if current.is_some() {
                    return Err(DaemonError::User(format!(
                        "{} interrupted a file with the image",
                        link.peer
                    )));
                }
                if let Some((_, bytes)) = round.as_mut() {
                    *bytes += raw_len as u64;
                } else {
                    if !in_image {
                        in_image = true;
                        progress.enter(Phase::SendImage, if next_round > 0 { 0 } else { hint });
                    }
                    raw += raw_len as u64;
                }
                progress.add(raw_len as u64);
                let tx = chunks_tx.as_ref().expect("open until the end");
                if tx
                    .send(ToDecoder::Chunk(codec, raw_len, data))
                    .await
                    .is_err()
                {
                    break;
                }
                continue;
            }
            Frame::Message(m) => m,
        };
        match message {
            MoveMessage::Round { index } => {
                if index != next_round
                    || index >= MAX_ROUNDS
                    || round.is_some()
                    || in_image
                    || current.is_some()
                {
                    return Err(DaemonError::User(format!(
                        "{} sent pre-copy round {index} out of order",
                        link.peer
                    )));
                }
                round = Some((index, 0));
                progress.enter_round(index, if index == 0 { hint } else { 0 });
            }
            MoveMessage::RoundEnd {
                index,
                raw_bytes,
                dirty_bytes,
            } => {
                match round.take() {
                    Some((i, bytes)) if i == index && bytes == raw_bytes => {}
                    _ => {
                        return Err(DaemonError::User(format!(
                            "{} ended pre-copy round {index} wrongly",
                            link.peer
                        )));
                    }
                }
                next_round += 1;
                progress.set_detail(format!(
                    "round {index}: {:.1} MiB, {:.1} MiB written meanwhile",
                    raw_bytes as f64 / 1048576.0,
                    dirty_bytes as f64 / 1048576.0
                ));
                let tx = chunks_tx.as_ref().expect("open until the end");
                if tx.send(ToDecoder::RoundEnd).await.is_err() {
                    break;
                }
                link.send(&MoveMessage::RoundTaken { index }).await?;
            }
            MoveMessage::File { sha256, data, last } => {
                let Some(i) = pending.iter().position(|p| p.0 == sha256) else {
                    return Err(DaemonError::User(format!(
                        "{} sent a file that was not asked for",
                        link.peer
                    )));
                };
                if current.is_none() {
                    current = Some(store.incoming(sha256, pending[i].1)?);
                }
                let n = data.len() as u64;
                if let Some(f) = current.as_mut() {
                    f.write(&data)?;
                }
                if !in_image {
                    progress.add(n);
                }
                if last {
                    if let Some(f) = current.take() {
                        f.finish()?;
                    }
                    pending.remove(i);
                }
            }
            MoveMessage::More { executables } => {
                check_executables(&executables).map_err(DaemonError::User)?;
                if all.len() + executables.len() > 2 * zos_netproto::migration::MAX_EXECUTABLES {
                    return Err(DaemonError::User("too many files".into()));
                }
                let need = decide_more(&executables);
                for sha in &need {
                    if let Some(x) = executables.iter().find(|x| &x.sha256 == sha)
                        && !pending.iter().any(|p| p.0 == *sha)
                    {
                        pending.push((*sha, x.size));
                    }
                }
                all.extend(executables);
                link.send(&MoveMessage::Accept { need }).await?;
            }
            MoveMessage::ImageEnd { raw_bytes } => {
                if raw_bytes != raw || !pending.is_empty() || current.is_some() || round.is_some() {
                    return Err(DaemonError::User(format!(
                        "{} ended the image early ({raw} of {raw_bytes} bytes, {} file(s) missing)",
                        link.peer,
                        pending.len()
                    )));
                }
                break;
            }
            other => {
                return Err(DaemonError::User(format!(
                    "{} sent {} during the move",
                    link.peer,
                    variant(&other)
                )));
            }
        }
    }
    drop(chunks_tx.take());
    let (image, base) = image_rx
        .await
        .map_err(|_| DaemonError::User("the image decoder died".into()))?
        .map_err(DaemonError::User)?;
    if image.len() as u64 != raw {
        return Err(DaemonError::User("the image could not be decoded".into()));
    }
    Ok(Received {
        image,
        executables: all,
        base: (next_round > 0).then_some(base),
    })
}

/// Decodes chunks into the image; each complete pre-copy round (the bytes before a
/// `RoundEnd`) goes into the page base instead. Everything received counts against `limit`.
fn decode_chunks(
    mut chunks: mpsc::Receiver<ToDecoder>,
    reserve: usize,
    limit: u64,
) -> std::result::Result<(Vec<u8>, PageBase), String> {
    let mut dec = Decoder::new();
    let mut image = Vec::new();
    let mut base = PageBase::new();
    let mut taken = 0u64;
    image
        .try_reserve_exact(reserve)
        .map_err(|_| format!("cannot reserve {reserve} bytes for the image"))?;
    while let Some(item) = chunks.blocking_recv() {
        let (codec, raw_len, data) = match item {
            ToDecoder::Chunk(c, l, d) => (c, l, d),
            ToDecoder::RoundEnd => {
                let round = std::mem::take(&mut image);
                base.add_round(round)
                    .map_err(|e| format!("a pre-copy round is damaged: {e}"))?;
                continue;
            }
        };
        taken += raw_len as u64;
        if taken > limit {
            return Err(format!(
                "the task is larger than the {limit} bytes this host can take"
            ));
        }
        if image.capacity() - image.len() < raw_len as usize {
            image
                .try_reserve(image.len().max(raw_len as usize))
                .map_err(|_| "out of memory for the image".to_string())?;
        }
        dec.decode_into(codec, &data, raw_len, &mut image)?;
    }
    Ok((image, base))
}

/// Memory this host can give an image: `MemAvailable` less a quarter for everything else.
pub fn memory_for_images() -> u64 {
    let avail = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemAvailable:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024;
    avail / 4 * 3
}
