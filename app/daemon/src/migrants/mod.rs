//! Migrant tasks: pods that run on the master and can move to a zombie and back.
//!
//! A migrant is a **pod** (`zos_checkpoint::pod`): its own user, PID, mount and IPC
//! namespaces, `zos-pod-init` as PID 1 (found next to the `zos` binary), one pty. The master
//! keeps a [`Migrants`] registry; a zombie keeps the pods it runs for its master in
//! [`HostedPods`].
//!
//! | module | concept |
//! |---|---|
//! | `mod` | the shared vocabulary: [`Placement`], [`ImageRecord`], [`MigrantInfo`] |
//! | `registry` | [`Migrants`]: the master's migrants, `zos run --migrant`, the list, each one's info |
//! | `moves` | the state changes the mover drives: `begin_move`/`begin_home`, lost and found, last image, which relay may feed a terminal |
//! | `replace` | the task's pod replaced in place (rollback), stopped (suspend), brought back (resume) |
//! | `ticket` | [`MoveTicket`]: one move in progress (the mover's handle), committed or failed |
//! | `supervisor` | the thread that keeps one local pod: spawn, watch (pidfd), reap, stop with the daemon |
//! | `terminal` | [`Terminal`]: a task's terminal across moves: log, replay tail, attached clients, input, size |
//! | `log` | the bounded log file of a terminal (two 8 MiB segments, 0600) |
//! | `local_pty` | a pty master on this host as a terminal's source (a reader and a writer thread) |
//! | `relay` | the `pty/<task>` channel: [`PtyMessage`]; the master's relay source, the zombie's relay |
//! | `hosted` | [`HostedPods`]: the zombie's pods for its master |
//! | `hosted_relay` | the zombie's side of a pod's `pty/<task>` relay: lossless across link changes |
//! | `streams` | `zos attach` and `zos logs` on a control connection |
//! | `sys` | the few raw calls: window size, foreground group, pidfd |
//!
//! # States and epochs
//!
//! Every migrant has an **epoch** (u64, 1 at start, bumped by the mover at every move and at
//! `--from-image`) and a [`Placement`]: `Home` (its pod runs here), `Moving { to }` (a
//! [`MoveTicket`] is out), `Away { host }` (it runs on that zombie, whose pty relay feeds the
//! terminal), `Lost { host }` (that zombie vanished while holding it), `Exited { code }` or
//! `Suspended` (`zos suspend` stopped it; its last snapshot is all there is of it).
//! `zos tasks` shows them as `home`, `moving`, `running`, `lost`, `exited`, `suspended`
//! ([`zos_netproto::control::task_state`]).
//!
//! # The mover's path (master → zombie)
//!
//! ```text
//! let ticket = migrants.begin_move(id, &zombie.name)?;        // Home → Moving{to}
//! let pid = ticket.local_init_pid().unwrap();                 // root for check_tree/checkpoint_tree
//! … checkpoint_tree(pid, KeepFrozen) → image → zombie restores, answers Restored{epoch} …
//! ticket.committed_away(&zombie, ticket.next_epoch());        // Away{host}; the pod's end is expected
//! frozen.kill();  send Commit{epoch}                          // the local pty drains, then the relay feeds the log
//! // any failure before: drop(ticket) or ticket.failed(why)   // back to Home, same epoch
//! ```
//!
//! Home (zombie → master): `begin_home(id)` (Away/Lost → Moving{to: master}), restore here
//! (held stopped), then after the zombie's `Commit`: `ticket.adopt_restored(tree, epoch)` (or
//! `adopt_pod(pod, epoch)` with an already resumed one) — the task is `Home` with its new pod;
//! the log and attached clients go on seamlessly (the old relay's last output first).

mod hosted;
mod hosted_relay;
mod local_pty;
mod log;
mod moves;
mod registry;
mod relay;
mod replace;
mod streams;
mod supervisor;
mod sys;
mod terminal;
mod ticket;

pub use hosted::{HostedInfo, HostedPods};
pub use registry::{Migrants, MoveHook};
pub use relay::{PTY_LABEL_PREFIX, PtyMessage, parse_pty_label, pty_label};
pub use replace::{end_local_pod, not_here};
pub use streams::{serve_attach, serve_logs};
pub use sys::window_size;
pub use terminal::Terminal;
pub use ticket::MoveTicket;

use std::path::PathBuf;
use std::time::SystemTime;

use zos_netproto::control::task_state;

/// Where a migrant is, as the master knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Its pod runs on the master.
    Home,
    /// A move is in progress (a [`MoveTicket`] is out); it still runs where it was.
    Moving {
        /// Where it goes (a zombie's paired name, or the master's own name when coming home).
        to: String,
    },
    /// It runs on a zombie.
    Away {
        /// The zombie's paired name.
        host: String,
    },
    /// The zombie holding it vanished.
    Lost {
        /// The zombie's paired name.
        host: String,
    },
    /// `zos suspend` stopped it: it is its last snapshot until `zos resume`.
    Suspended,
    /// It ended.
    Exited {
        /// The task's exit status, or 128 + signal.
        code: i32,
    },
}

impl Placement {
    /// The word `zos tasks` shows ([`task_state`]).
    pub fn state_word(&self) -> &'static str {
        match self {
            Placement::Home => task_state::HOME,
            Placement::Moving { .. } => task_state::MOVING,
            Placement::Away { .. } => task_state::RUNNING,
            Placement::Lost { .. } => task_state::LOST,
            Placement::Exited { .. } => task_state::EXITED,
            Placement::Suspended => task_state::SUSPENDED,
        }
    }
}

/// The last image of a migrant the master holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRecord {
    /// The image file (under the master's runtime dir or home).
    pub path: PathBuf,
    /// When it was taken.
    pub at: SystemTime,
    /// The epoch the task had in it.
    pub epoch: u64,
}

/// A snapshot of one migrant's registry entry.
#[derive(Clone, Debug)]
pub struct MigrantInfo {
    /// Task id.
    pub id: u64,
    /// The command line.
    pub command: Vec<String>,
    /// Its working directory at start.
    pub cwd: String,
    /// Where it is.
    pub placement: Placement,
    /// When the placement last changed.
    pub since: SystemTime,
    /// The ownership epoch.
    pub epoch: u64,
    /// The last image the master holds.
    pub last_image: Option<ImageRecord>,
    /// Host PID of the local pod's init (at home, or still here while moving away).
    pub init_pid: Option<i32>,
    /// The zombie's key while away or lost there.
    pub zombie_key: Option<zos_netproto::PublicKey>,
}

/// Seconds since the Unix epoch.
pub fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
