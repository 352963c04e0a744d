//! The sending side of a move, up to the image's end: the offer, the files the receiver
//! lacks, for a live move the pre-copy rounds while the task runs (see [`precopy_done`] for
//! when they stop), the frozen tree's image straight into the channel, files mapped since
//! the offer.
//! Whatever fails here resumes the frozen tree (its [`Hold`] is dropped); on success the tree
//! is returned held, for the commit.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use zos_netproto::migration::{Executable, FILE_CHUNK, MAX_ROUNDS, MoveMessage, Offer};

use super::engine::{self, CodecChoice, DumpSummary, Hold, Piece, RoundCmd};
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
    /// Move it live (pre-copy rounds while it runs) rather than stop-and-copy.
    pub live: bool,
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
    /// Pre-copy rounds sent (0: stop-and-copy).
    pub rounds: u32,
}

/// How long the receiver may take to confirm a pre-copy round (it arrives at the link's
/// rate: a large round 0 on a slow link takes a while).
pub const ROUND_TIMEOUT: Duration = Duration::from_secs(300);

/// The longest a pre-copy may go on before the task is frozen anyway.
pub const PRECOPY_LIMIT: Duration = Duration::from_secs(60);

/// Whether the pre-copy stops after its latest round, and why. `rounds` are the raw bytes
/// of each round so far (round 0 carried all memory); `link_bps` the rate the link took them.
/// It stops when the latest round is small enough for a short final stop (what the link
/// carries in 10 ms, at least 1 MiB), when rounds stop shrinking (the task writes about as
/// fast as the link carries: chasing it longer gains nothing, and the final stop is then
/// longer but bounded by one round), at [`MAX_ROUNDS`], or after [`PRECOPY_LIMIT`].
pub fn precopy_done(rounds: &[u64], link_bps: f64, elapsed: Duration) -> Option<String> {
    let &last = rounds.last()?;
    let small = ((link_bps * 0.010) as u64).max(1 << 20);
    let mib = |b: u64| b as f64 / 1048576.0;
    if rounds.len() >= 2 && last <= small {
        return Some(format!(
            "the last round was {:.1} MiB: small enough to stop",
            mib(last)
        ));
    }
    if rounds.len() >= 3 && last * 10 > rounds[rounds.len() - 2] * 8 {
        return Some(format!(
            "rounds stopped shrinking ({:.1} → {:.1} MiB): the task writes about as fast as the link carries",
            mib(rounds[rounds.len() - 2]),
            mib(last)
        ));
    }
    if rounds.len() as u32 >= MAX_ROUNDS {
        return Some(format!("{MAX_ROUNDS} rounds, the most a move makes"));
    }
    if elapsed >= PRECOPY_LIMIT {
        return Some(format!("pre-copy ran {} s", elapsed.as_secs()));
    }
    None
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
        live,
    } = out;
    let task = offer.task;
    let hint = offer.image_hint;
    let offered: BTreeSet<String> = offer.executables.iter().map(|x| x.path.clone()).collect();
    let executables = offer.executables.clone();
    link.send(&MoveMessage::Offer(offer)).await?;
    let need = expect_accept(link).await?;
    send_files(link, root, &executables, &need, progress).await?;

    progress.enter(if live { Phase::PreCopy } else { Phase::Freeze }, 0);
    let mut dump = engine::start_dump(root, task, codec, image_file, live)?;
    if let Some(rounds) = &dump.rounds {
        let _ = rounds.send(RoundCmd::Next);
    }
    let precopy_start = Instant::now();
    let mut round_start = precopy_start;
    let mut round_sizes: Vec<u64> = Vec::new();
    let mut in_round = false;
    let mut sent_raw = 0u64;
    let mut busy = Duration::ZERO;
    let mut wire = 0u64;
    let mut first = true;
    loop {
        let piece = tokio::select! {
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
        let (raw_len, message) = match piece {
            None => break,
            Some(Piece::Chunk(raw_len, message)) => (raw_len, message),
            Some(Piece::Fallback(why)) => {
                progress.set_detail(why);
                progress.enter(Phase::Freeze, 0);
                continue;
            }
            Some(Piece::RoundStart(index)) => {
                round_start = Instant::now();
                link.send(&MoveMessage::Round { index }).await?;
                let estimate = round_sizes.last().map_or(hint, |_| 0);
                progress.enter_round(index, estimate);
                in_round = true;
                continue;
            }
            Some(Piece::RoundDone { index, raw, dirty }) => {
                in_round = false;
                round_sizes.push(raw);
                link.send(&MoveMessage::RoundEnd {
                    index,
                    raw_bytes: raw,
                    dirty_bytes: dirty,
                })
                .await?;
                // Only the receiver knows when the round has crossed the link (sends are
                // queued): its answer paces the rounds and measures the link.
                match link.recv(ROUND_TIMEOUT, "RoundTaken").await? {
                    MoveMessage::RoundTaken { index: i } if i == index => {}
                    other => {
                        return Err(DaemonError::User(format!(
                            "{} answered pre-copy round {index} with {}",
                            link.peer,
                            variant(&other)
                        )));
                    }
                }
                let took = round_start.elapsed().as_secs_f64();
                let bps = if took > 0.0 { raw as f64 / took } else { 0.0 };
                if bps > 0.0 {
                    dump.link_bps.store(bps as u64, Ordering::Relaxed);
                }
                let stop = precopy_done(&round_sizes, bps, precopy_start.elapsed());
                let last = stop.is_some();
                progress.set_detail(match &stop {
                    Some(why) => format!("pre-copy done after {} round(s): {why}", index + 1),
                    None => format!(
                        "round {index}: {:.1} MiB, {:.1} MiB written meanwhile",
                        raw as f64 / 1048576.0,
                        dirty as f64 / 1048576.0
                    ),
                });
                if let Some(why) = &stop {
                    tracing::info!("task {task}: {why}; freezing it");
                    progress.enter(Phase::Freeze, 0);
                }
                let cmd = if last {
                    RoundCmd::Freeze
                } else {
                    RoundCmd::Next
                };
                if let Some(rounds) = &dump.rounds {
                    let _ = rounds.send(cmd);
                }
                continue;
            }
        };
        if first && !in_round {
            first = false;
            let estimate = if round_sizes.is_empty() { hint } else { 0 };
            progress.enter(Phase::SendImage, estimate);
        }
        let t = Instant::now();
        link.send_encoded(&message).await?;
        busy += t.elapsed();
        wire += message.len() as u64;
        if !in_round {
            sent_raw += raw_len;
        }
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
    let link_bps = link_rate(wire, busy);
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
        rounds: round_sizes.len() as u32,
    })
}

/// Bytes per second the link took, once it was busy long enough to tell.
fn link_rate(wire: u64, busy: Duration) -> f64 {
    if busy > Duration::from_millis(1) {
        wire as f64 / busy.as_secs_f64()
    } else {
        0.0
    }
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
        MoveMessage::Round { .. } => "Round",
        MoveMessage::RoundEnd { .. } => "RoundEnd",
        MoveMessage::RoundTaken { .. } => "RoundTaken",
        MoveMessage::Snapshot { .. } => "Snapshot",
        MoveMessage::SnapshotKept { .. } => "SnapshotKept",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn precopy_stops_when_small_when_not_shrinking_or_at_the_limits() {
        let fast = 1e9; // 10 MB in 10 ms
        let t = Duration::from_secs(1);
        assert_eq!(
            precopy_done(&[1024 * MIB], fast, t),
            None,
            "never after round 0"
        );
        assert!(precopy_done(&[1024 * MIB, 9 * MIB], fast, t).is_some_and(|w| w.contains("small")));
        assert_eq!(precopy_done(&[1024 * MIB, 40 * MIB], fast, t), None);
        assert_eq!(
            precopy_done(&[1024 * MIB, 40 * MIB, 20 * MIB], fast, t),
            None
        );
        let why = precopy_done(&[1024 * MIB, 40 * MIB, 38 * MIB], fast, t).unwrap();
        assert!(why.contains("stopped shrinking"), "{why}");
        let many: Vec<u64> = (0..MAX_ROUNDS as u64)
            .map(|i| (1000 * MIB) >> i.min(3))
            .collect();
        assert!(precopy_done(&many, 0.0, t).is_some());
        assert!(precopy_done(&[1024 * MIB, 500 * MIB], 0.0, PRECOPY_LIMIT).is_some());
        // A slow link: 1 MiB is still the floor of "small".
        assert!(precopy_done(&[64 * MIB, MIB], 1e6, t).is_some());
    }
}
