//! The migration protocol: how a migrant task (a pod) moves between a master and a zombie it
//! dominates at level `complete`, in the manner of cloud-hypervisor's
//! `vm-migration/src/protocol.rs`. Version [`MIGRATION_VERSION`]; postcard messages; every
//! field bounded ([`Offer::check`], the `MAX_*` constants).
//!
//! # Channels
//!
//! - `migrants` ([`MIGRANTS_LABEL`]): opened by the master right after it dominated a zombie at
//!   `complete`, kept for the whole domination. The master asks, the zombie answers, one
//!   request at a time ([`MigrantsRequest`] → [`MigrantsReply`]): which migrants it holds
//!   (with their epochs), resume or discard one (after a partition), recall one (bring it
//!   home: the zombie then opens `home/<task>`).
//! - `migrate/<task>` ([`migrate_label`]): opened by the master; it sends the task.
//! - `home/<task>` ([`home_label`]): opened by the zombie when the master recalled the task;
//!   the zombie sends it.
//! - `image/<task>` ([`image_label`]): opened by the zombie every [`Offer::image_every_s`]
//!   while it runs the task: a snapshot of it goes home, so that `zos home --from-image`
//!   after the zombie's death loses at most that much work:
//!   `Snapshot{epoch, seq, delta}`, `Image…`, `ImageEnd{raw_bytes}` (Z → M), then
//!   `SnapshotKept{seq}` or `Abort{reason}` (M → Z). The first snapshot (seq 0, or after any
//!   failure) is a whole pod image; the next ones are delta images over the previous one
//!   the master kept (the master refuses a delta whose `seq` does not follow its last).
//!
//! # One move (on `migrate/<task>` or `home/<task>`; S = sender, R = receiver)
//!
//! ```text
//! S → R  Offer{version, task, epoch, command, image_hint, executables, exports}
//! R → S  Accept{need} | Refuse{reason}                  (nothing touched yet on either side)
//! S → R  File{sha256, data, last}…   for each needed file (before the task is frozen)
//!        — live moves only: pre-copy, while the task RUNS (at most MAX_ROUNDS rounds) —
//! S → R  Round{index}, Image{…}… (a rounds stream: the pages written since the previous
//!        round, all of them in round 0), RoundEnd{index, raw_bytes, dirty_bytes}
//! R → S  RoundTaken{index}            (the round arrived: the sender measures the link and
//!                                      decides on another round or the freeze)
//!        — S freezes the tree and dumps it straight into the channel (after rounds: a
//!          delta image, whose pages not written since the last round are the rounds') —
//! S → R  Image{codec, raw_len, data}… chunks of ≤ IMAGE_CHUNK raw bytes, each compressed alone
//! S → R  More{executables}           files mapped since the offer (only if any)
//! R → S  Accept{need}                 … and S sends those Files
//! S → R  ImageEnd{raw_bytes}
//!        — R restores the tree and holds it stopped —
//! R → S  Restored{epoch}
//! commit point (below) …
//! ```
//!
//! The **master** decides every move (its task registry is the one truth; the epoch is bumped
//! by each move):
//!
//! - master → zombie: on `Restored{epoch}` the master records the task as running on the
//!   zombie at `epoch`, ends its frozen copy, keeps the image as the task's last image and
//!   sends `Commit{epoch}`; the zombie resumes the task and answers `Running{epoch}`.
//! - zombie → master: once the master has restored the tree (held stopped) it records the
//!   task as home at `epoch`, lets it run and sends `Commit{epoch}` (no `Restored`: the master
//!   is the one that decides); the zombie ends its frozen copy and answers `Running{epoch}`.
//!
//! Before the commit point either side may send `Abort{reason}`; any failure there (refusal,
//! link drop, restore error, a peer's death, a timeout on any step) resumes the sender's
//! frozen copy, so the task runs where it was. A receiver that said `Restored` and then lost
//! the channel holds its copy stopped, and a zombie that sent a whole image and lost the
//! channel holds its frozen copy: neither knows whether the master committed, so both wait
//! for the master's word on the `migrants` channel (`Resume`/`Discard` with the epoch, after a
//! re-domination) or for the zombie's grace period to end (then the copy is killed: the
//! master has the task, or its last image). A zombie never runs a copy whose epoch the master
//! has not confirmed.

use serde::{Deserialize, Serialize};

/// This protocol's version; an [`Offer`] of another version is refused. Version 2 added
/// pre-copy rounds (`Round`, `RoundEnd`) and `Recall::live`.
pub const MIGRATION_VERSION: u16 = 2;
/// The most pre-copy rounds of one move.
pub const MAX_ROUNDS: u32 = 16;
/// The label of the per-domination request channel.
pub const MIGRANTS_LABEL: &str = "migrants";
/// Labels of master → zombie moves start with this.
pub const MIGRATE_LABEL_PREFIX: &str = "migrate/";
/// Labels of zombie → master moves start with this.
pub const HOME_LABEL_PREFIX: &str = "home/";
/// Labels of the zombie's periodic snapshots of a task start with this.
pub const IMAGE_LABEL_PREFIX: &str = "image/";
/// How often a zombie sends a task's snapshot home unless the move says otherwise.
pub const DEFAULT_IMAGE_EVERY_S: u32 = 60;
/// The shortest interval between a task's snapshots.
pub const MIN_IMAGE_EVERY_S: u32 = 1;
/// Raw image bytes per [`MoveMessage::Image`] chunk (before compression).
pub const IMAGE_CHUNK: usize = 1 << 20;
/// File bytes per [`MoveMessage::File`] message.
pub const FILE_CHUNK: usize = 1 << 20;
/// The largest message on a move channel: a chunk that did not compress, plus framing.
pub const MAX_MOVE_MESSAGE: usize = IMAGE_CHUNK + (64 << 10);
/// The largest message on the `migrants` channel.
pub const MAX_MIGRANTS_MESSAGE: usize = 256 << 10;
/// The most executables an offer (or a `More`) may list.
pub const MAX_EXECUTABLES: usize = 4096;
/// The most exports an offer may name.
pub const MAX_EXPORTS: usize = 256;
/// The longest path in an offer.
pub const MAX_PATH: usize = 4096;
/// The most command-line bytes an offer may carry.
pub const MAX_COMMAND_BYTES: usize = 64 << 10;
/// The largest single file that may travel.
pub const MAX_FILE_BYTES: u64 = 2 << 30;
/// The largest image a receiver accepts at all (it also checks its free memory).
pub const MAX_IMAGE_BYTES: u64 = 256 << 30;
/// The most migrants a `Held` answer lists.
pub const MAX_HELD: usize = 4096;

/// How an image chunk is compressed (each chunk alone and tagged with its codec, so a receiver
/// decodes as they come and a sender may change its mind during a move).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Codec {
    /// Raw bytes.
    None,
    /// LZ4 block format (`lz4_flex`).
    Lz4,
    /// Zstandard, level 1.
    Zstd,
}

impl Codec {
    /// Every codec, in the order the benchmark shows them.
    pub const ALL: [Codec; 3] = [Codec::None, Codec::Lz4, Codec::Zstd];

    /// Its name on the command line (`none`, `lz4`, `zstd`).
    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        }
    }
}

/// A file the task maps (an executable or a library), as the sender sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Executable {
    /// Its path as the image names it (in the pod's view on the sender).
    pub path: String,
    /// Where it came from, when it is a copy that travelled earlier (the zombie's
    /// `RUNTIME/migrants/<task>/files/<sha256>` for the master's `/opt/tool`): the receiver
    /// looks for its own file there.
    #[serde(default)]
    pub original: Option<String>,
    /// SHA-256 of its content.
    pub sha256: [u8; 32],
    /// Its size.
    pub size: u64,
}

/// One export of the domination: its name in the zombie's mount of the master's folders, and
/// the path it has on the master (where the pod sees it on the zombie).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportPath {
    /// The export's name (a directory of the zombie's `RUNTIME/anima`).
    pub name: String,
    /// Its path on the master.
    pub path: String,
}

/// The sender's first message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// [`MIGRATION_VERSION`] of the sender.
    pub version: u16,
    /// The master's task id.
    pub task: u64,
    /// The epoch the task will have once moved.
    pub epoch: u64,
    /// Its command line (for logs and the zombie's task list).
    pub command: Vec<String>,
    /// About how many raw image bytes will come (the pod's resident memory), so the receiver
    /// can refuse what it cannot hold and reserve room.
    pub image_hint: u64,
    /// Files the task maps, outside the exports.
    pub executables: Vec<Executable>,
    /// The exports to bind into the pod at their master paths (master → zombie only).
    pub exports: Vec<ExportPath>,
    /// Master → zombie: send a snapshot home every this many seconds (0: never).
    pub image_every_s: u32,
}

impl Offer {
    /// Checks every bound; the reason if one is broken.
    pub fn check(&self) -> Result<(), String> {
        if self.version != MIGRATION_VERSION {
            return Err(format!(
                "migration protocol version {} offered, {MIGRATION_VERSION} spoken here",
                self.version
            ));
        }
        if self.command.iter().map(|a| a.len() + 1).sum::<usize>() > MAX_COMMAND_BYTES {
            return Err("the command line is too long".into());
        }
        if self.image_hint > MAX_IMAGE_BYTES {
            return Err(format!(
                "an image of {} bytes is too large",
                self.image_hint
            ));
        }
        check_executables(&self.executables)?;
        if self.exports.len() > MAX_EXPORTS {
            return Err(format!("{} exports are too many", self.exports.len()));
        }
        for e in &self.exports {
            check_path(&e.path)?;
            if e.name.is_empty()
                || e.name.len() > 255
                || e.name.contains('/')
                || e.name == "."
                || e.name == ".."
            {
                return Err(format!("{:?} is not an export name", e.name));
            }
        }
        Ok(())
    }
}

/// Checks a list of executables: count, paths, sizes.
pub fn check_executables(list: &[Executable]) -> Result<(), String> {
    if list.len() > MAX_EXECUTABLES {
        return Err(format!("{} executables are too many", list.len()));
    }
    for x in list {
        check_path(&x.path)?;
        if let Some(o) = &x.original {
            check_path(o)?;
        }
        if x.size > MAX_FILE_BYTES {
            return Err(format!("{} is too large to travel", x.path));
        }
    }
    Ok(())
}

/// An absolute, clean path of bounded length (no `.`/`..` components, no NUL).
pub fn check_path(path: &str) -> Result<(), String> {
    let clean = path.starts_with('/')
        && path.len() <= MAX_PATH
        && !path.contains('\0')
        && path.split('/').all(|c| c != "." && c != "..");
    if clean {
        Ok(())
    } else {
        Err(format!("{path:?} is not an absolute, clean path"))
    }
}

/// A message on a `migrate/<task>` or `home/<task>` channel (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MoveMessage {
    /// S → R: what comes.
    Offer(Offer),
    /// R → S: the files (by SHA-256) it needs to have sent.
    Accept {
        /// SHA-256 of each needed file.
        need: Vec<[u8; 32]>,
    },
    /// R → S: no (nothing was touched).
    Refuse {
        /// Why, for the user.
        reason: String,
    },
    /// S → R: a piece of a needed file.
    File {
        /// Which file.
        sha256: [u8; 32],
        /// At most [`FILE_CHUNK`] bytes.
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        /// The file's last piece.
        last: bool,
    },
    /// S → R: a chunk of the image.
    Image {
        /// How `data` is compressed.
        codec: Codec,
        /// Its length before compression (at most [`IMAGE_CHUNK`]).
        raw_len: u32,
        /// The chunk, compressed with the offer's codec.
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// S → R: files mapped since the offer; answered with `Accept`.
    More {
        /// Those files.
        executables: Vec<Executable>,
    },
    /// S → R: the image is complete.
    ImageEnd {
        /// Its raw length.
        raw_bytes: u64,
    },
    /// Zombie → master (master → zombie moves): the restored copy is held stopped.
    Restored {
        /// The task's new epoch.
        epoch: u64,
    },
    /// The master committed the move at `epoch`.
    Commit {
        /// The task's new epoch.
        epoch: u64,
    },
    /// The zombie did its part of the commit (resumed its copy, or ended its old one).
    Running {
        /// The epoch.
        epoch: u64,
    },
    /// Either side gives up before the commit.
    Abort {
        /// Why, for the user.
        reason: String,
    },
    /// S → R: pre-copy round `index` (0, 1, … < [`MAX_ROUNDS`]) follows as `Image` chunks;
    /// the task runs meanwhile.
    Round {
        /// The round's number.
        index: u32,
    },
    /// S → R: pre-copy round `index` is complete.
    RoundEnd {
        /// The round's number.
        index: u32,
        /// Its raw length (the `Image` chunks' `raw_len` summed).
        raw_bytes: u64,
        /// Bytes the task had written since the previous round (for progress).
        dirty_bytes: u64,
    },
    /// R → S: pre-copy round `index` arrived whole. Next comes another `Round` or the image.
    RoundTaken {
        /// The round's number.
        index: u32,
    },
    /// Zombie → master on `image/<task>`: a snapshot of the task at `epoch` follows as
    /// `Image` chunks and `ImageEnd`.
    Snapshot {
        /// The task's epoch (the master refuses another).
        epoch: u64,
        /// Its number in this zombie's chain for the task.
        seq: u64,
        /// A delta over snapshot `seq - 1` (else a whole pod image).
        delta: bool,
    },
    /// Master → zombie: snapshot `seq` is the task's last image now.
    SnapshotKept {
        /// The snapshot.
        seq: u64,
    },
}

/// How a migrant the zombie holds is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HeldState {
    /// It runs (or runs for a master that is here).
    Running,
    /// Stopped with SIGSTOP: its master went away.
    Frozen,
    /// Restored and held stopped, waiting for a commit that never came.
    Uncommitted,
    /// Its frozen copy is held after its whole image went home, waiting for the master's word.
    Sent,
}

/// One migrant a zombie holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldTask {
    /// The master's task id.
    pub task: u64,
    /// The epoch of this copy.
    pub epoch: u64,
    /// How it is.
    pub state: HeldState,
}

/// Master → zombie on the `migrants` channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MigrantsRequest {
    /// Which migrants of this master does the zombie hold?
    List,
    /// Let the copy of `task` at `epoch` run (it is the task's current one).
    Resume {
        /// The task.
        task: u64,
        /// Its epoch.
        epoch: u64,
    },
    /// End the copy of `task` at `epoch` (stale, or its move failed).
    Discard {
        /// The task.
        task: u64,
        /// Its epoch.
        epoch: u64,
    },
    /// Send `task` (at `epoch`) home: the zombie opens `home/<task>` and sends it there.
    Recall {
        /// The task.
        task: u64,
        /// Its epoch now (the move gives it `epoch + 1`).
        epoch: u64,
        /// How to compress the image (`None`: the zombie picks, as for `--compress auto`).
        codec: Option<Codec>,
        /// Move it live (pre-copy while it runs) rather than stop-and-copy.
        live: bool,
    },
    /// Send a snapshot of `task` (at `epoch`) home now, on `image/<task>` as the periodic
    /// ones go (whole, or a delta over the last one the master kept): `zos snapshot` of a
    /// task away. `Done` once it is under way; the master then waits for the image.
    SendImage {
        /// The task.
        task: u64,
        /// Its epoch.
        epoch: u64,
    },
}

/// Zombie → master on the `migrants` channel, one per request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MigrantsReply {
    /// For `List`.
    Held {
        /// At most [`MAX_HELD`].
        tasks: Vec<HeldTask>,
    },
    /// Done (for `Resume`, `Discard`, `Recall`: the `home/<task>` channel is being opened).
    Done,
    /// Not done, and why.
    Refused {
        /// Why, for the user.
        reason: String,
    },
}

/// The label of the channel that moves `task` to a zombie.
pub fn migrate_label(task: u64) -> String {
    format!("{MIGRATE_LABEL_PREFIX}{task}")
}

/// The label of the channel that brings `task` home.
pub fn home_label(task: u64) -> String {
    format!("{HOME_LABEL_PREFIX}{task}")
}

/// The label of the channel a zombie sends `task`'s snapshots home on.
pub fn image_label(task: u64) -> String {
    format!("{IMAGE_LABEL_PREFIX}{task}")
}

/// The task of an `image/<task>` label.
pub fn parse_image_label(label: &str) -> Option<u64> {
    parse_task(label.strip_prefix(IMAGE_LABEL_PREFIX)?)
}

/// The task of a `migrate/<task>` label.
pub fn parse_migrate_label(label: &str) -> Option<u64> {
    parse_task(label.strip_prefix(MIGRATE_LABEL_PREFIX)?)
}

/// The task of a `home/<task>` label.
pub fn parse_home_label(label: &str) -> Option<u64> {
    parse_task(label.strip_prefix(HOME_LABEL_PREFIX)?)
}

fn parse_task(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The SHA-256 as 64 hex digits (file names, logs).
pub fn sha_hex(sha: &[u8; 32]) -> String {
    sha.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer() -> Offer {
        Offer {
            version: MIGRATION_VERSION,
            task: 3,
            epoch: 2,
            command: vec!["sh".into(), "-c".into(), "true".into()],
            image_hint: 1 << 20,
            executables: vec![Executable {
                path: "/usr/bin/sh".into(),
                original: None,
                sha256: [7; 32],
                size: 100,
            }],
            exports: vec![ExportPath {
                name: "work".into(),
                path: "/home/u/work".into(),
            }],
            image_every_s: 60,
        }
    }

    #[test]
    fn labels_roundtrip_and_reject_others() {
        assert_eq!(parse_migrate_label(&migrate_label(12)), Some(12));
        assert_eq!(parse_home_label(&home_label(12)), Some(12));
        assert_eq!(parse_migrate_label(&home_label(12)), None);
        for bad in [
            "migrate/",
            "migrate/-1",
            "migrate/+1",
            "migrate/1x",
            "home/ 1",
        ] {
            assert_eq!(parse_migrate_label(bad), None, "{bad}");
            assert_eq!(parse_home_label(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_full_image_chunk_that_did_not_compress_fits_a_message() {
        let m = MoveMessage::Image {
            codec: Codec::Lz4,
            raw_len: IMAGE_CHUNK as u32,
            data: vec![0xa5; IMAGE_CHUNK + IMAGE_CHUNK / 255 + 16],
        };
        assert!(postcard::to_stdvec(&m).unwrap().len() <= MAX_MOVE_MESSAGE);
        let f = MoveMessage::File {
            sha256: [0; 32],
            data: vec![1; FILE_CHUNK],
            last: true,
        };
        assert!(postcard::to_stdvec(&f).unwrap().len() <= MAX_MOVE_MESSAGE);
    }

    #[test]
    fn messages_roundtrip() {
        for m in [
            MoveMessage::Offer(offer()),
            MoveMessage::Accept {
                need: vec![[1; 32]],
            },
            MoveMessage::Restored { epoch: 9 },
            MoveMessage::Commit { epoch: 9 },
            MoveMessage::Abort {
                reason: "no".into(),
            },
            MoveMessage::Round { index: 3 },
            MoveMessage::RoundEnd {
                index: 3,
                raw_bytes: 1 << 20,
                dirty_bytes: 5 << 20,
            },
            MoveMessage::RoundTaken { index: 3 },
            MoveMessage::Snapshot {
                epoch: 4,
                seq: 2,
                delta: true,
            },
            MoveMessage::SnapshotKept { seq: 2 },
        ] {
            let bytes = postcard::to_stdvec(&m).unwrap();
            assert_eq!(postcard::from_bytes::<MoveMessage>(&bytes).unwrap(), m);
        }
    }

    #[test]
    fn offers_out_of_bounds_are_refused_naming_why() {
        assert_eq!(offer().check(), Ok(()));
        let mut o = offer();
        o.version = 99;
        assert!(o.check().unwrap_err().contains("version 99"));
        let mut o = offer();
        o.executables[0].path = "/usr/../etc/shadow".into();
        assert!(o.check().unwrap_err().contains("clean path"));
        let mut o = offer();
        o.executables[0].path = "relative".into();
        assert!(o.check().is_err());
        let mut o = offer();
        o.exports[0].name = "..".into();
        assert!(o.check().unwrap_err().contains("export name"));
        let mut o = offer();
        o.exports[0].name = "a/b".into();
        assert!(o.check().is_err());
        let mut o = offer();
        o.executables[0].size = MAX_FILE_BYTES + 1;
        assert!(o.check().unwrap_err().contains("too large"));
        let mut o = offer();
        o.executables = vec![o.executables[0].clone(); MAX_EXECUTABLES + 1];
        assert!(o.check().unwrap_err().contains("too many"));
        let mut o = offer();
        o.image_hint = MAX_IMAGE_BYTES + 1;
        assert!(o.check().is_err());
    }

    #[test]
    fn sha_hex_is_64_lowercase_digits() {
        let h = sha_hex(&[0xab; 32]);
        assert_eq!(h.len(), 64);
        assert!(h.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')));
    }
}
