//! The sending side of a move, up to the image's end: the offer, the files the receiver
//! lacks, the frozen tree's image straight into the channel, files mapped since the offer.
//! Whatever fails here resumes the frozen tree (its [`Hold`] is dropped); on success the tree
//! is returned held, for the commit.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use zos_netproto::migration::{Executable, FILE_CHUNK, MoveMessage, Offer};

use super::engine::{self, CodecChoice, DumpSummary, Hold};
use super::files::{self, HashCache};
use super::link::MoveLink;
use super::progress::{Phase, Progress};
use crate::error::{DaemonError, Result};

/// How long a receiver may take to answer an offer (it hashes its own files).
pub const OFFER_TIMEOUT: Duration = Duration::from_secs(60);

/// What the sender needs besides the channel.
pub struct Outgoing {
    /// Host PID of the pod's init.
    pub root: i32,
    /// The offer (its executables are those mapped now).
    pub offer: Offer,
    /// How to compress.
    pub codec: CodecChoice,
    /// Where the raw image goes as well (the master's last image).
    pub image_file: Option<std::fs::File>,
    /// Paths not to describe (the exports).
    pub skip: Vec<String>,
    /// Where travelled files came from.
    pub originals: HashMap<String, String>,
}

/// The result of a successful send: the tree held frozen, what the dump said, and the link's
/// rate measured (bytes/s).
pub struct Sent {
    /// The frozen tree.
    pub hold: Hold<()>,
    /// The dump's figures.
    pub summary: DumpSummary,
    /// The rate the link took the image at.
    pub link_bps: f64,
}

/// Sends the task (see the module docs).
pub async fn send_task(
    link: &mut MoveLink,
    out: Outgoing,
    progress: &Progress,
    cache: Arc<HashCache>,
) -> Result<Sent> {
    let Outgoing {
        root,
        offer,
        codec,
        image_file,
        skip,
        originals,
    } = out;
    let task = offer.task;
    let hint = offer.image_hint;
    let offered: BTreeSet<String> = offer.executables.iter().map(|x| x.path.clone()).collect();
    let executables = offer.executables.clone();
    link.send(&MoveMessage::Offer(offer)).await?;
    let need = expect_accept(link).await?;
    send_files(link, root, &executables, &need, progress).await?;

    progress.enter(Phase::Freeze, 0);
    let mut dump = engine::start_dump(root, task, codec, image_file)?;
    let mut sent_raw = 0u64;
    let mut busy = Duration::ZERO;
    let mut wire = 0u64;
    let mut first = true;
    loop {
        let message = tokio::select! {
            m = dump.messages.recv() => m,
            incoming = link.recv_any() => {
                return Err(match incoming {
                    Ok(MoveMessage::Abort { reason }) => DaemonError::User(format!(
                        "{} gave up: {}", link.peer, super::link::bounded(&reason)
                    )),
                    Ok(other) => DaemonError::User(format!(
                        "{} sent {} in the middle of the image", link.peer, variant(&other)
                    )),
                    Err(e) => e,
                });
            }
        };
        let Some((raw_len, message)) = message else {
            break;
        };
        if first {
            first = false;
            progress.enter(Phase::SendImage, hint);
        }
        let t = Instant::now();
        link.send_encoded(&message).await?;
        busy += t.elapsed();
        wire += message.len() as u64;
        sent_raw += raw_len;
        progress.add(raw_len);
        if busy > Duration::from_millis(1) {
            dump.link_bps
                .store((wire as f64 / busy.as_secs_f64()) as u64, Ordering::Relaxed);
        }
    }
    let summary = match tokio::time::timeout(engine::ENGINE_LIMIT, &mut dump.done).await {
        Ok(Ok(Ok(s))) => s,
        Ok(Ok(Err(e))) => return Err(e),
        Ok(Err(_)) => return Err(DaemonError::User("the dump's thread died".into())),
        Err(_) => return Err(DaemonError::User("the dump did not finish".into())),
    };
    if summary.bytes != sent_raw {
        return Err(DaemonError::User(format!(
            "the image has {} bytes but {sent_raw} were sent",
            summary.bytes
        )));
    }
    // Files mapped since the offer (a process exec'd meanwhile): offer them too.
    let new: BTreeSet<String> = summary
        .mapped_files
        .iter()
        .filter(|p| !offered.contains(*p))
        .cloned()
        .collect();
    if !new.is_empty() {
        let more = {
            let cache = cache.clone();
            tokio::task::spawn_blocking(move || {
                files::describe(root, &new, &skip, &originals, &cache)
            })
            .await
            .map_err(|_| DaemonError::User("describing files failed".into()))?
        };
        link.send(&MoveMessage::More {
            executables: more.clone(),
        })
        .await?;
        let need = expect_accept(link).await?;
        send_files(link, root, &more, &need, progress).await?;
    }
    link.send(&MoveMessage::ImageEnd {
        raw_bytes: sent_raw,
    })
    .await?;
    let link_bps = if busy > Duration::from_millis(1) {
        wire as f64 / busy.as_secs_f64()
    } else {
        0.0
    };
    tracing::info!(
        "task {task}: image of {:.1} MiB sent as {:.1} MiB in {:.0} ms ({:.0} ms in send); {}",
        sent_raw as f64 / 1048576.0,
        wire as f64 / 1048576.0,
        progress.spent(Phase::SendImage) as f64 / 1e3,
        busy.as_secs_f64() * 1e3,
        dump.stalls.describe()
    );
    Ok(Sent {
        hold: dump.hold,
        summary,
        link_bps,
    })
}

async fn expect_accept(link: &mut MoveLink) -> Result<Vec<[u8; 32]>> {
    match link.recv(OFFER_TIMEOUT, "an answer to the offer").await? {
        MoveMessage::Accept { need } => Ok(need),
        MoveMessage::Refuse { reason } => Err(DaemonError::User(format!(
            "{} refused: {}",
            link.peer,
            super::link::bounded(&reason)
        ))),
        other => Err(DaemonError::User(format!(
            "{} answered the offer with {}",
            link.peer,
            variant(&other)
        ))),
    }
}

/// Sends each file of `list` whose SHA-256 is in `need` (each at most once).
async fn send_files(
    link: &MoveLink,
    root: i32,
    list: &[Executable],
    need: &[[u8; 32]],
    progress: &Progress,
) -> Result<()> {
    let mut wanted: Vec<&Executable> = Vec::new();
    for sha in need {
        match list.iter().find(|x| &x.sha256 == sha) {
            Some(x) if !wanted.iter().any(|w| w.sha256 == x.sha256) => wanted.push(x),
            Some(_) => {}
            None => {
                return Err(DaemonError::User(format!(
                    "{} asked for a file that was not offered",
                    link.peer
                )));
            }
        }
    }
    let total: u64 = wanted.iter().map(|x| x.size).sum();
    let resume_phase = progress.phase();
    progress.enter(Phase::SendFiles, total);
    for x in wanted {
        let (tx, mut rx) = mpsc::channel::<(Vec<u8>, bool)>(4);
        let (path, sha) = (x.path.clone(), x.sha256);
        let reader = tokio::task::spawn_blocking(move || {
            files::read_pieces(root, &path, &sha, FILE_CHUNK, |data, last| {
                tx.blocking_send((data, last))
                    .map_err(|_| DaemonError::User("the move stopped".into()))
            })
        });
        while let Some((data, last)) = rx.recv().await {
            let n = data.len() as u64;
            link.send(&MoveMessage::File {
                sha256: x.sha256,
                data,
                last,
            })
            .await?;
            progress.add(n);
        }
        reader
            .await
            .map_err(|_| DaemonError::User("reading a file failed".into()))??;
    }
    if resume_phase > Phase::SendFiles {
        progress.enter(resume_phase, 0);
    }
    Ok(())
}

/// A message's kind, for errors.
pub fn variant(m: &MoveMessage) -> &'static str {
    match m {
        MoveMessage::Offer(_) => "Offer",
        MoveMessage::Accept { .. } => "Accept",
        MoveMessage::Refuse { .. } => "Refuse",
        MoveMessage::File { .. } => "File",
        MoveMessage::Image { .. } => "Image",
        MoveMessage::More { .. } => "More",
        MoveMessage::ImageEnd { .. } => "ImageEnd",
        MoveMessage::Restored { .. } => "Restored",
        MoveMessage::Commit { .. } => "Commit",
        MoveMessage::Running { .. } => "Running",
        MoveMessage::Abort { .. } => "Abort",
    }
}
