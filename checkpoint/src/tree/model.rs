//! The TREE frame of a pod image: processes, the shared-object table, the pty, shared memory.

use crate::objects::Object;
use serde::{Deserialize, Serialize};

/// Everything about a pod besides each process's own META and pages.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TreeImage {
    /// The uid the pod's processes have inside (its uid map's first field).
    pub inside_uid: u32,
    /// The gid inside.
    pub inside_gid: u32,
    /// Every process, parents before children, init first. Live and stopped ones have a META
    /// frame, in this order; defunct ones have none.
    pub processes: Vec<ProcEntry>,
    /// Every open file description, referenced by [`FdRef::object`].
    pub objects: Vec<Object>,
    /// The pod's terminal, if its pty 0 existed.
    pub pty: Option<PtyState>,
    /// Shared anonymous memory regions (`MAP_SHARED|MAP_ANONYMOUS`), referenced by
    /// [`ShmUse::region`].
    pub shm: Vec<ShmRegion>,
    /// Locks of descriptions, memfds only mapped, `/dev/shm`, System V IPC.
    pub extra: crate::procstate::PodExtra,
    /// The pod's `ns_last_pid` (so new processes after a restore get the PIDs they would
    /// have got, not freed low ones).
    pub last_pid: i32,
}

/// One process of the tree (PIDs as seen inside the pod).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ProcEntry {
    /// PID in the pod.
    pub pid: i32,
    /// Parent's PID in the pod (0 for init).
    pub ppid: i32,
    /// Process group.
    pub pgid: i32,
    /// Session.
    pub sid: i32,
    /// `comm`.
    pub comm: String,
    /// Running, stopped or defunct.
    pub state: ProcState,
    /// It has the pod's pty as controlling terminal.
    pub has_ctty: bool,
    /// Its descriptors, in ascending order.
    pub fds: Vec<FdRef>,
    /// Capability sets.
    pub caps: Caps,
    /// Which of its mappings are shared anonymous memory.
    pub shm: Vec<ShmUse>,
    /// Per-thread capabilities, POSIX timers and locks, mappings of shared objects.
    pub extra: crate::procstate::ProcExtra,
}

/// Scheduling state at checkpoint time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum ProcState {
    /// Running or sleeping.
    Running,
    /// Stopped by a signal (job control): stopped again after restore.
    Stopped,
    /// Exited, not yet reaped by its parent: the wait status its parent will collect.
    Defunct {
        /// Wait status (as `waitpid` reports it).
        status: i32,
    },
}

/// A descriptor: its number and the object it refers to.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct FdRef {
    /// Descriptor number.
    pub fd: i32,
    /// Index in [`TreeImage::objects`].
    pub object: u32,
    /// Close-on-exec.
    pub cloexec: bool,
}

/// Capability sets (`/proc/PID/status` Cap* lines).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub(crate) struct Caps {
    pub inheritable: u64,
    pub permitted: u64,
    pub effective: u64,
    pub bounding: u64,
    pub ambient: u64,
}

/// One shared anonymous memory object: the address range it spans when every mapping of it
/// is at its offset (`start - offset` is the same everywhere it is mapped).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct ShmRegion {
    /// Address of offset 0.
    pub base: u64,
    /// Length spanned.
    pub len: u64,
}

/// A mapping of a shared region in one process.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct ShmUse {
    /// Start address of the mapping.
    pub start: u64,
    /// End address.
    pub end: u64,
    /// Index in [`TreeImage::shm`].
    pub region: u32,
}

/// The pod's pty: attributes of its slave and who owns it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PtyState {
    /// `c_iflag`, `c_oflag`, `c_cflag`, `c_lflag`.
    pub flags: [u32; 4],
    /// `c_line`.
    pub line: u8,
    /// `c_cc`.
    pub cc: Vec<u8>,
    /// Input and output speed.
    pub speed: [u32; 2],
    /// Rows, columns, x and y pixels.
    pub winsize: [u16; 4],
    /// Foreground process group (PID in the pod; 0 if none).
    pub foreground: i32,
}
