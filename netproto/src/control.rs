//! The local control protocol between a daemon and its clients (the `zos`
//! commands, the master window, the tray helper).
//!
//! Transport: a Unix stream socket, mode 0600, in the instance's runtime
//! directory. Each connection carries one [`Request`] as a JSON line; the
//! daemon answers with one or more [`Reply`] lines, the last of which is
//! final ([`Reply::is_final`]). Streaming requests (ping with a count) send
//! intermediate replies before the final one.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::discovery::HostInfo;
use crate::error::{Error, Result};
use crate::trust::{Level, PeerEntry};
use crate::wire::Role;

/// A client's request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    /// The daemon's own state.
    Status,
    /// Zombies discovered on the LAN (master).
    Hosts,
    /// Issue a one-time pairing code (zombie).
    PairCode {
        /// Level the code grants.
        level: Level,
    },
    /// Pair with a zombie using its code (master).
    Pair {
        /// Zombie name, instance, fingerprint prefix or `ip:port`.
        host: String,
        /// The 6-digit code shown on the zombie.
        code: String,
    },
    /// Round trips to a zombie over one session (master).
    Ping {
        /// As for `Pair`.
        host: String,
        /// How many pings.
        count: u32,
        /// Pause between pings, milliseconds.
        interval_ms: u64,
    },
    /// The trust store (zombie) or paired zombies (master).
    TrustList,
    /// Remove a trust entry; its live sessions end at once.
    TrustRevoke {
        /// Key, fingerprint prefix or name.
        what: String,
    },
    /// Start a task on the master (`zos run`).
    Run {
        /// Run it as a virtually shared app: in its own virtual display.
        shared: bool,
        /// The command and its arguments.
        argv: Vec<String>,
    },
    /// The master's registered tasks; on a zombie, the tasks of the master
    /// dominating it.
    Tasks,
    /// Take a paired zombie over (master).
    Dominate {
        /// As for `Pair`.
        host: String,
        /// The level asked for; the zombie may grant less.
        level: Level,
    },
    /// End a domination. On a master: of the zombie `host`; every migrant
    /// running there comes home first (with progress replies); if one
    /// cannot, the zombie is not released unless `force` (such a task is
    /// then `lost`, its last image kept for `zos home TASK --from-image`).
    /// On a zombie: its own (`host` empty or the dominating master's name);
    /// the master is told that the zombie's user ended it and runs its
    /// release (its migrants come home first), and the zombie lets go by
    /// itself if the master does not within [`USER_RELEASE_WAIT_S`].
    Release {
        /// As for `Pair` (on a zombie: empty, or the master's name).
        #[serde(default)]
        host: String,
        /// Release even if a migrant cannot come home.
        #[serde(default)]
        force: bool,
    },
    /// Answer the domination request waiting on this zombie (zombie).
    Answer {
        /// Accept it (or refuse it).
        accept: bool,
        /// Also open a viewer for each of the master's shared apps (now and
        /// as they come) for this domination.
        #[serde(default)]
        show_apps: bool,
    },
    /// Open a viewer window on this zombie's display for each shared app of
    /// the dominating master, now and as they come, until the domination
    /// ends (zombie). Answered `Done` with nothing shown when the zombie
    /// has no display.
    ShowMasterApps,
    /// View a shared app: after the final [`Reply::Stream`], the connection
    /// carries the app's RFB stream (the client must not send before it).
    View {
        /// The task id (on a zombie: the dominating master's task).
        task: u64,
    },
    /// Stop the daemon. A master with tasks that would end answers
    /// [`Reply::WouldEnd`] and runs on, unless `force`; otherwise it answers
    /// [`Reply::Stopping`] (a zombie: `Done`) and stops.
    Shutdown {
        /// Stop even though tasks end.
        #[serde(default)]
        force: bool,
        /// Leave the shared apps running under their supervisors; the next
        /// daemon adopts them (migrants still end).
        #[serde(default)]
        keep_apps: bool,
    },
    /// Start a migrant task on the master (`zos run --migrant`): a pod (its
    /// own user, PID, mount and IPC namespaces, `zos-pod-init` as PID 1, one
    /// pty) running `argv` in `cwd` with exactly `env`. Answered with
    /// [`Reply::Started`] once the pod runs.
    RunMigrant {
        /// The command and its arguments (`argv[0]` looked up in the `PATH` of `env`).
        argv: Vec<String>,
        /// The caller's working directory (absolute).
        cwd: String,
        /// The caller's environment, `KEY=VALUE` each.
        env: Vec<String>,
    },
    /// Attach to a migrant's terminal: after the final [`Reply::Stream`],
    /// the daemon sends the recent output (at most
    /// [`ATTACH_REPLAY_BYTES`]) and then everything the task writes, raw;
    /// every byte the client sends is typed into the task's terminal. The
    /// stream ends when the task ends (after its last output) or when the
    /// client closes. The window size goes by [`Request::Resize`] on a
    /// connection of its own.
    Attach {
        /// The task id.
        task: u64,
    },
    /// Set the window size of a migrant's terminal (wherever it runs); the
    /// task's foreground process group gets `SIGWINCH` even when the size
    /// is unchanged, so a full-screen program redraws. Answered `Done`.
    Resize {
        /// The task id.
        task: u64,
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// What a migrant wrote to its terminal: after the final
    /// [`Reply::Stream`], the daemon sends its log (the last 8–16 MiB), raw,
    /// and closes; with `follow`, it goes on with new output until the task
    /// ends or the client closes. The client sends nothing.
    Logs {
        /// The task id.
        task: u64,
        /// Keep streaming new output.
        follow: bool,
    },
    /// Move a migrant to a zombie dominated at level `complete` (`zos
    /// migrate`). Intermediate [`Reply::MoveProgress`], final
    /// [`Reply::Moved`] or [`Reply::Error`] (the task then runs where it was).
    Migrate {
        /// The task id.
        task: u64,
        /// The zombie: its paired name or fingerprint prefix.
        host: String,
        /// Compression of the image on the link.
        #[serde(default)]
        compress: Compression,
        /// Freeze the task for the whole transfer instead of moving it live (pre-copy
        /// while it runs, then a short stop).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        stop_and_copy: bool,
        /// How often the zombie sends the task's snapshot home, seconds (0: never;
        /// absent: every 60 s).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        image_every_s: Option<u32>,
    },
    /// Bring a migrant home (`zos home`). Progress and final replies as for
    /// [`Request::Migrate`].
    Home {
        /// The task id.
        task: u64,
        /// Restore the last image the master holds (a task `lost` with its
        /// zombie), bumping the epoch.
        #[serde(default)]
        from_image: bool,
        /// Freeze the task for the whole transfer instead of moving it live.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        stop_and_copy: bool,
    },
    /// Checkpoint a migrant to an image directory on the master, leaving it
    /// running (a snapshot). Final [`Reply::Checkpointed`].
    CheckpointTask {
        /// The task id.
        task: u64,
        /// The image directory (created 0700 if missing).
        out: String,
    },
    /// Snapshot a migrant at home while it runs on (`zos snapshot`): the first of a chain is
    /// whole, later ones hold only the pages written since the previous one. Final
    /// [`Reply::SnapshotTaken`].
    Snapshot {
        /// The task id.
        task: u64,
        /// A name to roll back to it by (not all digits; unique for the task).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// Snapshot a migrant every `every_s` seconds, keeping a rolling set of `keep`
    /// (`zos snapshot --every`); `every_s: None` stops it. Final [`Reply::SnapshotSchedule`].
    SnapshotEvery {
        /// The task id.
        task: u64,
        /// Seconds between snapshots; `None`: off.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        every_s: Option<u64>,
        /// How many of these snapshots stay restorable.
        keep: u32,
    },
    /// A task's snapshots (`zos snapshots TASK`). Final [`Reply::Snapshots`].
    Snapshots {
        /// The task id.
        task: u64,
    },
    /// Remove the snapshots of tasks this master no longer has, neither running nor
    /// suspended (`zos snapshots --prune`). Final [`Reply::Pruned`].
    PruneSnapshots,
    /// Bring a migrant back to one of its snapshots (`zos rollback`): the chain up to it is
    /// restored first; only then the running copy ends and the restored one takes its place.
    /// Final [`Reply::RolledBack`].
    Rollback {
        /// The task id.
        task: u64,
        /// The snapshot: its id or its name.
        snapshot: String,
    },
    /// Snapshot every migrant at home and stop it, keeping it listed as `suspended` (`zos
    /// suspend`). Final [`Reply::Suspended`].
    Suspend,
    /// Restore suspended migrants from their last snapshot (`zos resume`); none named: all.
    /// Final [`Reply::Resumed`].
    Resume {
        /// The tasks (empty: every suspended one).
        #[serde(default)]
        tasks: Vec<u64>,
    },
    /// Send this master's keyboard and mouse to a dominated zombie's ZOS
    /// session (master), or give them back (`host: None`).
    Drive {
        /// The zombie (its paired name or fingerprint); `None` stops driving.
        host: Option<String>,
        /// Instead of driving at once, switch when the pointer leaves this
        /// edge of the master's screen (`left`, `right`, `top`, `bottom`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        edge: Option<String>,
        /// The master's X display to capture, when the daemon has none of
        /// its own (the caller's `DISPLAY`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        display: Option<String>,
        /// The caller's `XAUTHORITY` for that display.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        xauthority: Option<String>,
    },
    /// Allow or refuse the dominating master's input in the ZOS session
    /// (zombie; the tray's item).
    AllowInput {
        /// Allow it (or refuse it).
        allow: bool,
    },
}

/// How a migrant's image is compressed on the link (`--compress`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Compression {
    /// The fastest measured on this link.
    #[default]
    Auto,
    /// None.
    None,
    /// LZ4.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Compression::Auto => "auto",
            Compression::None => "none",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        })
    }
}

impl std::str::FromStr for Compression {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(Compression::Auto),
            "none" => Ok(Compression::None),
            "lz4" => Ok(Compression::Lz4),
            "zstd" => Ok(Compression::Zstd),
            other => Err(format!(
                "unknown compression {other:?} (auto, none, lz4 or zstd)"
            )),
        }
    }
}

/// How long a zombie whose user ended its domination (`zos release` there)
/// waits for its master to release it before letting go by itself.
pub const USER_RELEASE_WAIT_S: u64 = 60;

/// How much recent output an [`Request::Attach`] replays first.
pub const ATTACH_REPLAY_BYTES: usize = 64 << 10;

/// The values of [`TaskInfo::state`].
pub mod task_state {
    /// A shared app (on the master); a migrant running on a zombie (`where`
    /// names it).
    pub const RUNNING: &str = "running";
    /// A migrant running in its pod on the master (`where` is the master's
    /// own name).
    pub const HOME: &str = "home";
    /// A migrant being moved (`where`: where it still runs; `to`: where it goes).
    pub const MOVING: &str = "moving";
    /// A migrant whose zombie vanished while holding it (`where` names the
    /// zombie); `zos home TASK --from-image` restores the last image.
    pub const LOST: &str = "lost";
    /// A migrant that ended (`exit` has its code: the task's exit status,
    /// or 128 + signal); listed for [`super::EXITED_LISTED_S`] seconds.
    pub const EXITED: &str = "exited";
    /// A migrant stopped by `zos suspend`, kept as its last snapshot (also across a
    /// restart of the master daemon); `zos resume` brings it back.
    pub const SUSPENDED: &str = "suspended";
}

/// How long an ended migrant stays in the task list (with its log).
pub const EXITED_LISTED_S: u64 = 600;

/// The phases of a move, in order, as [`Reply::MoveProgress`] and
/// [`Reply::Moved`] name them.
pub const MOVE_PHASES: [&str; 7] = [
    "check",
    "pre-copy",
    "freeze",
    "send-files",
    "send-image",
    "restore",
    "commit",
];

/// A task as the master reports it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskInfo {
    /// Task id, unique within the daemon's life.
    pub id: u64,
    /// `shared` (virtually shared app) or `migrant` (a pod that can move).
    pub kind: String,
    /// The command line.
    pub command: Vec<String>,
    /// Its X display on the master (e.g. `:12`).
    pub display: Option<String>,
    /// One of [`task_state`]: `running`, `home`, `moving`, `lost`, `exited`, `suspended`.
    pub state: String,
    /// The app's process id (migrants at home: the host PID of the pod's
    /// init).
    pub pid: Option<u32>,
    /// Where the task runs when that is not this daemon's machine (on a
    /// zombie: the dominating master's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The name of the host it runs on (the master's own name when home).
    #[serde(default)]
    pub r#where: String,
    /// When its state last changed, seconds since the Unix epoch.
    #[serde(default)]
    pub since: u64,
    /// Migrants: the ownership epoch (bumped at every move and at
    /// `--from-image`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    /// Migrants: age in seconds of the last image the master holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_age_s: Option<u64>,
    /// Migrants being moved: where to (state `moving`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Ended migrants: the exit code (state `exited`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<i32>,
}

/// A live session as the daemon reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Peer's name.
    pub peer: String,
    /// Peer's fingerprint.
    pub fingerprint: String,
    /// Peer's address.
    pub addr: String,
    /// Seconds since it started.
    pub age_s: u64,
    /// The level, when this session dominates (zombie) or is dominated by
    /// us (master).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dominating: Option<Level>,
    /// Where the master's shared folders are mounted (zombie, while
    /// dominated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount: Option<String>,
    /// Whether this master's keyboard and mouse drive that zombie's ZOS
    /// session now (master).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub driven: bool,
}

/// The daemon's state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusInfo {
    /// Master or zombie.
    pub role: Role,
    /// Instance name.
    pub name: String,
    /// Key fingerprint.
    pub fingerprint: String,
    /// Session listener (zombie), e.g. `10.0.0.2:40123`.
    pub listen: Option<String>,
    /// Trust entries.
    pub trusted: usize,
    /// The pairing code on offer (zombie), with level and seconds left.
    pub pairing: Option<PairCodeInfo>,
    /// Live sessions.
    pub sessions: Vec<SessionInfo>,
    /// A domination request waiting for this zombie's user to answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asking: Option<AskInfo>,
    /// Recent pairing attempts that failed or were refused (zombie), the
    /// newest first.
    #[serde(default)]
    pub pairing_attempts: Vec<PairAttemptInfo>,
    /// The ZOS session open for the dominating master (zombie).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<Box<ZosSessionInfo>>,
}

/// A zombie's ZOS session: the nested X display where the dominating
/// master's user works.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZosSessionInfo {
    /// Its X display, for `DISPLAY` (e.g. `:3`).
    pub display: String,
    /// Its authority file (mode 0600), for `XAUTHORITY`.
    pub xauthority: String,
    /// The master it belongs to.
    pub master: String,
    /// The master's input: `off`, `on` (driving it now) or `refused` (by
    /// this zombie's user).
    pub input: String,
}

/// A pairing attempt that failed or was refused, as a zombie shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairAttemptInfo {
    /// The peer's address (IP).
    pub addr: String,
    /// The fingerprint of the key it used (the last one, if repeated).
    pub fingerprint: String,
    /// When (the last time), seconds since the Unix epoch.
    pub at_unix: u64,
    /// Seconds ago.
    pub age_s: u64,
    /// Why it failed or was refused.
    pub why: String,
    /// How many such attempts in a row from this address.
    pub count: u32,
}

/// A master asking to dominate a zombie, waiting for the zombie's user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AskInfo {
    /// The master's name.
    pub master: String,
    /// Its key fingerprint.
    pub fingerprint: String,
    /// The level it would get.
    pub level: Level,
    /// Seconds left to answer.
    pub expires_in_s: u64,
}

/// A pairing code on offer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairCodeInfo {
    /// The 6 digits.
    pub code: String,
    /// Level it grants.
    pub level: Level,
    /// Seconds until it expires.
    pub expires_in_s: u64,
    /// Attempts left.
    pub attempts_left: u32,
}

/// A daemon's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "kebab-case")]
pub enum Reply {
    /// For `Status`.
    Status(StatusInfo),
    /// For `Hosts`.
    Hosts {
        /// Zombies currently seen.
        hosts: Vec<HostInfo>,
    },
    /// For `PairCode`.
    PairCode(PairCodeInfo),
    /// For `Pair`: success.
    Paired {
        /// Zombie's name.
        name: String,
        /// Zombie's fingerprint.
        fingerprint: String,
        /// Level granted.
        level: Level,
    },
    /// For `Ping`: one round trip (not final).
    Pong {
        /// Sequence number.
        seq: u64,
        /// Round trip, microseconds.
        rtt_us: u64,
        /// Zombie's name.
        peer: String,
    },
    /// For `TrustList`.
    Trust {
        /// Entries.
        entries: Vec<PeerEntry>,
    },
    /// For `TrustRevoke`.
    Revoked {
        /// Entries removed.
        entries: Vec<PeerEntry>,
        /// Live sessions ended.
        sessions_ended: usize,
    },
    /// For `Run`: the task started.
    Started {
        /// The new task.
        task: TaskInfo,
    },
    /// For `Tasks`.
    Tasks {
        /// Every registered task.
        tasks: Vec<TaskInfo>,
    },
    /// For `Dominate`: the zombie is ours.
    Dominated {
        /// Zombie's name.
        name: String,
        /// Level granted.
        level: Level,
        /// How long each part of the set-up took, in order (the paper's zt,
        /// file-system mount, xt …), microseconds.
        timing: Vec<(String, u64)>,
    },
    /// For `Release`: the zombie let go of everything.
    Released {
        /// Zombie's name.
        name: String,
    },
    /// For `View`: from the next byte on, the connection carries the stream.
    Stream,
    /// For `Dominate` (not final): the zombie asks its user, who has
    /// `timeout_s` seconds to answer; closing the connection withdraws the
    /// request.
    Asking {
        /// The zombie's name (as paired).
        zombie: String,
        /// Seconds its user has.
        timeout_s: u64,
    },
    /// For `Shutdown` without `force`: the daemon runs on, since stopping
    /// it would end tasks.
    WouldEnd {
        /// What would end, one task a line.
        ends: Vec<String>,
        /// What would go on.
        stays: Vec<String>,
    },
    /// For `Shutdown`: the daemon stops now.
    Stopping {
        /// What ends with it, one task a line.
        ends: Vec<String>,
        /// What goes on.
        stays: Vec<String>,
    },
    /// For `Drive`: where input goes now.
    Driving {
        /// The zombie driven, if any.
        target: Option<String>,
        /// What happened, in words for the user.
        message: String,
    },
    /// Progress of a long request (not final), in words for the user.
    Progress {
        /// What is happening.
        message: String,
    },
    /// A request finished with nothing more to say.
    Done,
    /// A request failed.
    Error {
        /// What went wrong, for the user.
        message: String,
    },
    /// Progress of a move (not final): phase (one of [`MOVE_PHASES`]),
    /// bytes done of `total` in this phase, rate and time left.
    MoveProgress {
        /// The task.
        task: u64,
        /// The phase.
        phase: String,
        /// Bytes done in this phase.
        bytes: u64,
        /// Bytes this phase moves (0 when unknown).
        total: u64,
        /// Bytes per second lately.
        rate_bps: u64,
        /// Seconds left, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        eta_s: Option<u64>,
        /// In phase `pre-copy`: the round (0 carries all memory, later ones what the task
        /// wrote meanwhile).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        round: Option<u32>,
        /// What the move is doing, in words (the last pre-copy round's size and how much
        /// the task wrote meanwhile; why the rounds stopped; a fallback to stop-and-copy).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// For `Migrate` and `Home`: the task runs at `to` now.
    Moved {
        /// The task.
        task: u64,
        /// Where it runs now (a zombie's paired name, or the master's own).
        to: String,
        /// How long each phase took, in order, microseconds.
        phases: Vec<(String, u64)>,
        /// The image's size (raw, before compression on the link).
        #[serde(default)]
        image_bytes: u64,
        /// A live move: how its pre-copy went (rounds, why they stopped).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        precopy: Option<String>,
    },
    /// For `CheckpointTask`: the image is written; the task runs on.
    Checkpointed {
        /// The task.
        task: u64,
        /// The image file.
        path: String,
        /// Its size.
        bytes: u64,
        /// How long the task was frozen, microseconds.
        frozen_us: u64,
    },
    /// For `Snapshot`: the snapshot is on disk; the task runs on.
    SnapshotTaken {
        /// The task.
        task: u64,
        /// The snapshot.
        snapshot: SnapshotInfo,
    },
    /// For `SnapshotEvery`: the schedule now (`every_s: None`: none).
    SnapshotSchedule {
        /// The task.
        task: u64,
        /// Seconds between snapshots.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        every_s: Option<u64>,
        /// How many stay restorable.
        keep: u32,
    },
    /// For `Snapshots`: a task's snapshots, oldest first.
    Snapshots {
        /// The task.
        task: u64,
        /// Where they are (the task's snapshot directory).
        dir: String,
        /// The snapshots.
        snapshots: Vec<SnapshotInfo>,
        /// The schedule, if any: seconds between snapshots.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        every_s: Option<u64>,
        /// The schedule's rolling set.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        keep: Option<u32>,
    },
    /// For `PruneSnapshots`: the tasks whose snapshots were removed, and the bytes freed.
    Pruned {
        /// The tasks.
        tasks: Vec<u64>,
        /// Bytes freed.
        bytes: u64,
    },
    /// For `Rollback`: the task runs from that snapshot now.
    RolledBack {
        /// The task.
        task: u64,
        /// The snapshot it runs from.
        snapshot: SnapshotInfo,
        /// Time to read and restore the chain, microseconds.
        restore_us: u64,
    },
    /// For `Suspend`: the tasks suspended, and one line for each that could not be.
    Suspended {
        /// Suspended (stopped, kept as a snapshot).
        tasks: Vec<u64>,
        /// "task N: why", each still running.
        failed: Vec<String>,
    },
    /// For `Resume`: the tasks running again, and one line for each that is not.
    Resumed {
        /// Running again.
        tasks: Vec<u64>,
        /// "task N: why", each still suspended.
        failed: Vec<String>,
    },
}

/// One snapshot of a migrant, as `zos snapshots` lists it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// Its number within the task (1, 2, …).
    pub id: u32,
    /// Its name, if it was given one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// When it was taken, seconds since the Unix epoch.
    pub at: u64,
    /// `whole` or `delta` (only the pages written since `parent`).
    pub kind: String,
    /// The snapshot a delta builds on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<u32>,
    /// Its own file's size.
    pub bytes: u64,
    /// What restoring it reads: its file and those of the chain it builds on.
    pub chain_bytes: u64,
    /// How long the task was stopped for it, microseconds.
    pub frozen_us: u64,
    /// Taken by `--every` (removed by the rolling set), not by the user.
    #[serde(default)]
    pub auto: bool,
    /// The zombie the task ran on when it was taken (it sent the snapshot home); `frozen_us`
    /// is then not known here (0). `None`: taken on the master.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<String>,
}

impl Reply {
    /// Whether this reply ends the exchange.
    pub fn is_final(&self) -> bool {
        !matches!(
            self,
            Reply::Pong { .. }
                | Reply::Progress { .. }
                | Reply::MoveProgress { .. }
                | Reply::Asking { .. }
        )
    }
}

/// How long a client waits for a reply (pairing waits on the network and
/// the other user, so this is generous).
pub const REPLY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Sends `request` to the daemon at `socket` and hands each reply to
/// `on_reply`, until the final one, which is returned.
pub fn call(socket: &Path, request: &Request, on_reply: impl FnMut(&Reply)) -> Result<Reply> {
    let stream = UnixStream::connect(socket).map_err(|e| {
        Error::io(
            format!(
                "no daemon answers at {} (start one with `zos master` or `zos zombie`)",
                socket.display()
            ),
            e,
        )
    })?;
    call_on(stream, request, on_reply)
}

/// Like [`call`] on a connection the caller opened (and may shut down from
/// another thread to give up: the daemon then sees the client leave, which
/// withdraws a `Dominate` waiting for the zombie's user).
pub fn call_on(
    stream: UnixStream,
    request: &Request,
    mut on_reply: impl FnMut(&Reply),
) -> Result<Reply> {
    // A daemon that accepts but never answers must not hang its clients.
    // Pings stream at the user's interval and moves report progress only
    // between phases, and a release waits for the migrants to come home,
    // so they get no read deadline.
    if !matches!(
        request,
        Request::Ping { .. }
            | Request::Migrate { .. }
            | Request::Home { .. }
            | Request::Release { .. }
            | Request::Rollback { .. }
            | Request::Suspend
            | Request::Resume { .. }
    ) {
        stream
            .set_read_timeout(Some(REPLY_TIMEOUT))
            .map_err(|e| Error::io("control socket", e))?;
    }
    let mut writer = stream
        .try_clone()
        .map_err(|e| Error::io("control socket", e))?;
    let mut line = serde_json::to_string(request).expect("requests serialise");
    line.push('\n');
    writer
        .write_all(line.as_bytes())
        .map_err(|e| Error::io("send request", e))?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut buf = String::new();
        let n = reader
            .read_line(&mut buf)
            .map_err(|e| Error::io("read reply", e))?;
        if n == 0 {
            return Err(Error::Closed(
                "daemon closed the control connection without a reply".into(),
            ));
        }
        let reply: Reply = serde_json::from_str(&buf)
            .map_err(|e| Error::Malformed(format!("daemon reply {buf:?}: {e}")))?;
        if reply.is_final() {
            return Ok(reply);
        }
        on_reply(&reply);
    }
}

/// Sends a request expecting a single reply.
pub fn request(socket: &Path, request: &Request) -> Result<Reply> {
    call(socket, request, |_| {})
}

/// Whether a request turns its connection into a byte stream after a final
/// [`Reply::Stream`] (so the daemon must not read past the request line).
pub fn is_stream_request(request: &Request) -> bool {
    matches!(
        request,
        Request::View { .. } | Request::Attach { .. } | Request::Logs { .. }
    )
}

/// Sends a request that turns the connection into a byte stream (`View`, `Attach`, `Logs`)
/// and returns the connection once the daemon said [`Reply::Stream`]. Reads
/// the reply byte by byte, so not one byte of the stream is taken from it.
pub fn open_stream(socket: &Path, request: &Request) -> Result<UnixStream> {
    let mut stream = UnixStream::connect(socket).map_err(|e| {
        Error::io(
            format!(
                "no daemon answers at {} (start one with `zos master` or `zos zombie`)",
                socket.display()
            ),
            e,
        )
    })?;
    stream
        .set_read_timeout(Some(REPLY_TIMEOUT))
        .map_err(|e| Error::io("control socket", e))?;
    let mut line = serde_json::to_string(request).expect("requests serialise");
    line.push('\n');
    stream
        .write_all(line.as_bytes())
        .map_err(|e| Error::io("send request", e))?;
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match std::io::Read::read(&mut stream, &mut byte) {
            Ok(0) => {
                return Err(Error::Closed(
                    "daemon closed the control connection without a reply".into(),
                ));
            }
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) if reply.len() >= MAX_REPLY_LINE => {
                return Err(Error::Malformed("daemon reply line too long".into()));
            }
            Ok(_) => reply.push(byte[0]),
            Err(e) => return Err(Error::io("read reply", e)),
        }
    }
    match serde_json::from_slice::<Reply>(&reply) {
        Ok(Reply::Stream) => {
            stream
                .set_read_timeout(None)
                .map_err(|e| Error::io("control socket", e))?;
            Ok(stream)
        }
        Ok(Reply::Error { message }) => Err(Error::Refused(message)),
        Ok(other) => Err(Error::Malformed(format!(
            "daemon answered {other:?} instead of a stream"
        ))),
        Err(e) => Err(Error::Malformed(format!(
            "daemon reply {:?}: {e}",
            String::from_utf8_lossy(&reply)
        ))),
    }
}

/// The longest reply line [`open_stream`] reads.
const MAX_REPLY_LINE: usize = 64 << 10;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_is_stable() {
        let r = Request::Pair {
            host: "z1".into(),
            code: "123456".into(),
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"op":"pair","host":"z1","code":"123456"}"#
        );
        let back: Request = serde_json::from_str(r#"{"op":"status"}"#).unwrap();
        assert_eq!(back, Request::Status);
        // Fields added later may be left out by older clients.
        let back: Request = serde_json::from_str(r#"{"op":"shutdown"}"#).unwrap();
        assert_eq!(
            back,
            Request::Shutdown {
                force: false,
                keep_apps: false
            }
        );
        let back: Request = serde_json::from_str(r#"{"op":"release"}"#).unwrap();
        assert_eq!(
            back,
            Request::Release {
                host: "".into(),
                force: false
            }
        );
        let back: Request = serde_json::from_str(r#"{"op":"answer","accept":true}"#).unwrap();
        assert_eq!(
            back,
            Request::Answer {
                accept: true,
                show_apps: false
            }
        );
        assert!(
            !Reply::Asking {
                zombie: "z".into(),
                timeout_s: 45
            }
            .is_final()
        );
        assert!(
            !Reply::Pong {
                seq: 1,
                rtt_us: 2,
                peer: "z".into()
            }
            .is_final()
        );
        assert!(Reply::Done.is_final());
    }

    #[test]
    fn migrant_requests_have_documented_json_shapes() {
        let cases = [
            (
                Request::RunMigrant {
                    argv: vec!["sh".into()],
                    cwd: "/w".into(),
                    env: vec!["A=1".into()],
                },
                r#"{"op":"run-migrant","argv":["sh"],"cwd":"/w","env":["A=1"]}"#,
            ),
            (Request::Attach { task: 3 }, r#"{"op":"attach","task":3}"#),
            (
                Request::Resize {
                    task: 3,
                    cols: 80,
                    rows: 24,
                },
                r#"{"op":"resize","task":3,"cols":80,"rows":24}"#,
            ),
            (
                Request::Logs {
                    task: 3,
                    follow: true,
                },
                r#"{"op":"logs","task":3,"follow":true}"#,
            ),
            (
                Request::Migrate {
                    task: 3,
                    host: "z1".into(),
                    compress: Compression::Zstd,
                    stop_and_copy: false,
                    image_every_s: None,
                },
                r#"{"op":"migrate","task":3,"host":"z1","compress":"zstd"}"#,
            ),
            (
                Request::Home {
                    task: 3,
                    from_image: false,
                    stop_and_copy: false,
                },
                r#"{"op":"home","task":3,"from_image":false}"#,
            ),
            (
                Request::CheckpointTask {
                    task: 3,
                    out: "/img".into(),
                },
                r#"{"op":"checkpoint-task","task":3,"out":"/img"}"#,
            ),
            (
                Request::Snapshot {
                    task: 3,
                    name: Some("before".into()),
                },
                r#"{"op":"snapshot","task":3,"name":"before"}"#,
            ),
            (
                Request::SnapshotEvery {
                    task: 3,
                    every_s: None,
                    keep: 10,
                },
                r#"{"op":"snapshot-every","task":3,"keep":10}"#,
            ),
            (
                Request::Rollback {
                    task: 3,
                    snapshot: "2".into(),
                },
                r#"{"op":"rollback","task":3,"snapshot":"2"}"#,
            ),
            (Request::Suspend, r#"{"op":"suspend"}"#),
            (
                Request::Resume { tasks: vec![3] },
                r#"{"op":"resume","tasks":[3]}"#,
            ),
        ];
        for (request, json) in cases {
            assert_eq!(serde_json::to_string(&request).unwrap(), json);
            assert_eq!(serde_json::from_str::<Request>(json).unwrap(), request);
        }
        // Optional fields may be left out.
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"op":"migrate","task":1,"host":"z"}"#).unwrap(),
            Request::Migrate {
                task: 1,
                host: "z".into(),
                compress: Compression::Auto,
                stop_and_copy: false,
                image_every_s: None,
            }
        );
        assert_eq!(
            serde_json::from_str::<Request>(
                r#"{"op":"home","task":1,"from_image":false,"stop_and_copy":true}"#
            )
            .unwrap(),
            Request::Home {
                task: 1,
                from_image: false,
                stop_and_copy: true,
            }
        );
        assert!(is_stream_request(&Request::Attach { task: 1 }));
        assert!(!is_stream_request(&Request::Tasks));
    }

    #[test]
    fn move_replies_have_documented_json_shapes() {
        let progress = Reply::MoveProgress {
            task: 3,
            phase: "send-image".into(),
            bytes: 10,
            total: 100,
            rate_bps: 5,
            eta_s: Some(18),
            round: None,
            detail: None,
        };
        assert!(!progress.is_final());
        assert_eq!(
            serde_json::to_string(&progress).unwrap(),
            r#"{"reply":"move-progress","task":3,"phase":"send-image","bytes":10,"total":100,"rate_bps":5,"eta_s":18}"#
        );
        let moved = Reply::Moved {
            task: 3,
            to: "z1".into(),
            phases: vec![("check".into(), 12)],
            image_bytes: 4096,
            precopy: None,
        };
        assert!(moved.is_final());
        assert_eq!(
            serde_json::to_string(&moved).unwrap(),
            r#"{"reply":"moved","task":3,"to":"z1","phases":[["check",12]],"image_bytes":4096}"#
        );
        assert_eq!("lz4".parse::<Compression>(), Ok(Compression::Lz4));
        assert!("gzip".parse::<Compression>().is_err());
    }

    #[test]
    fn task_info_names_its_place_where_and_old_json_still_parses() {
        let old = r#"{"id":1,"kind":"shared","command":["xterm"],"display":":3","state":"running","pid":7}"#;
        let t: TaskInfo = serde_json::from_str(old).unwrap();
        assert_eq!(t.r#where, "");
        let t = TaskInfo {
            r#where: "laptop".into(),
            epoch: Some(2),
            state: task_state::HOME.into(),
            ..t
        };
        let json = serde_json::to_string(&t).unwrap();
        assert!(json.contains(r#""where":"laptop""#), "{json}");
        assert!(json.contains(r#""epoch":2"#), "{json}");
        assert!(!json.contains("image_age_s"), "{json}");
    }
}
