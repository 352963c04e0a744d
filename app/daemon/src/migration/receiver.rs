//! The receiving side of a move, from an accepted offer to the image's end: the files it
//! asked for (checked by length and SHA-256 into the task's [`FileStore`]), the image chunks
//! (decoded on a thread of their own into memory, bounded by what this host can hold), and
//! the files the sender adds later (`More`).

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use zos_netproto::migration::{Codec, Executable, MoveMessage, check_executables};

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
    let (chunks_tx, chunks_rx) = mpsc::channel::<(Codec, u32, Bytes)>(8);
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
                if !in_image {
                    in_image = true;
                    progress.enter(Phase::SendImage, hint);
                }
                raw += raw_len as u64;
                progress.add(raw_len as u64);
                let tx = chunks_tx.as_ref().expect("open until the end");
                if tx.send((codec, raw_len, data)).await.is_err() {
                    break;
                }
                continue;
            }
            Frame::Message(m) => m,
        };
        match message {
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
                if raw_bytes != raw || !pending.is_empty() || current.is_some() {
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
    let image = image_rx
        .await
        .map_err(|_| DaemonError::User("the image decoder died".into()))?
        .map_err(DaemonError::User)?;
    if image.len() as u64 != raw {
        return Err(DaemonError::User("the image could not be decoded".into()));
    }
    Ok(Received {
        image,
        executables: all,
    })
}

fn decode_chunks(
    mut chunks: mpsc::Receiver<(Codec, u32, Bytes)>,
    reserve: usize,
    limit: u64,
) -> std::result::Result<Vec<u8>, String> {
    let mut dec = Decoder::new();
    let mut image = Vec::new();
    image
        .try_reserve_exact(reserve)
        .map_err(|_| format!("cannot reserve {reserve} bytes for the image"))?;
    while let Some((codec, raw_len, data)) = chunks.blocking_recv() {
        if image.len() as u64 + raw_len as u64 > limit {
            return Err(format!(
                "the image is larger than the {limit} bytes this host can take"
            ));
        }
        if image.capacity() - image.len() < raw_len as usize {
            image
                .try_reserve(image.len().max(raw_len as usize))
                .map_err(|_| "out of memory for the image".to_string())?;
        }
        dec.decode_into(codec, &data, raw_len, &mut image)?;
    }
    Ok(image)
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
