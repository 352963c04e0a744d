//! The metadata of a checkpoint: everything but the memory pages and saved file contents.

use crate::sys::Regs;
use serde::{Deserialize, Serialize};

/// One saved process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessImage {
    /// The PID it had.
    pub pid: i32,
    /// What identifies the original process beyond its PID.
    pub origin: Origin,
    /// XCR0 of the CPU it ran on (the restoring CPU must enable a superset).
    pub xcr0: u64,
    /// Memory layout bookkeeping for `PR_SET_MM_MAP`.
    pub mm: MmInfo,
    /// Every mapping except `[vsyscall]`, in address order.
    pub vmas: Vec<Vma>,
    /// Every thread; the first is the thread-group leader.
    pub threads: Vec<ThreadImage>,
    /// Open file descriptors.
    pub files: Vec<FdImage>,
    /// Process-wide attributes.
    pub attrs: ProcAttrs,
}

/// Identifies the process an image was taken from: with the PID, no other process on any
/// boot has the same values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// Its start time in clock ticks after boot (`/proc/PID/stat` field 22).
    pub start_time: u64,
    /// `/proc/sys/kernel/random/boot_id` of the boot it ran in.
    pub boot_id: String,
}

/// What `PR_SET_MM_MAP` needs, plus the executable's path.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct MmInfo {
    pub start_code: u64,
    pub end_code: u64,
    pub start_data: u64,
    pub end_data: u64,
    pub start_brk: u64,
    pub brk: u64,
    pub start_stack: u64,
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
    /// The auxiliary vector, as `/proc/PID/auxv` gives it.
    pub auxv: Vec<u64>,
    /// `/proc/PID/exe`.
    pub exe: String,
}

impl MmInfo {
    /// The eleven bounds in `struct prctl_mm_map` order: code, data, brk, stack, arg, env.
    pub fn bounds(&self) -> [u64; 11] {
        [
            self.start_code,
            self.end_code,
            self.start_data,
            self.end_data,
            self.start_brk,
            self.brk,
            self.start_stack,
            self.arg_start,
            self.arg_end,
            self.env_start,
            self.env_end,
        ]
    }
}

/// What backs a mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VmaKind {
    /// Anonymous memory (heap, stacks, `[anon:…]`); `shared` for `MAP_SHARED|MAP_ANONYMOUS`.
    Anon,
    /// A mapping of a regular file at `offset`.
    File {
        /// Path of the file.
        path: String,
        /// File offset of the mapping's start.
        offset: u64,
    },
    /// `[vdso]`.
    Vdso,
    /// `[vvar]` or `[vvar_vclock]` (recreated together with the vDSO).
    Vvar,
}

/// One mapping.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Vma {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// `PROT_*` bits.
    pub prot: u32,
    /// `MAP_SHARED` rather than private.
    pub shared: bool,
    /// Grows down (the main `[stack]`).
    pub growsdown: bool,
    /// Name given with `PR_SET_VMA_ANON_NAME` (`[anon:NAME]`).
    pub name: Option<String>,
    /// Backing.
    pub kind: VmaKind,
}

/// One thread.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThreadImage {
    /// Its TID.
    pub tid: i32,
    /// General registers as stopped (syscall restart not yet applied).
    pub regs: Regs,
    /// The XSAVE area (`NT_X86_XSTATE`).
    pub xstate: Vec<u8>,
    /// Blocked signals.
    pub sigmask: u64,
    /// Pending thread-directed signals (raw 128-byte `siginfo_t`).
    pub pending: Vec<Vec<u8>>,
    /// rseq registration: (area, length, signature).
    pub rseq: Option<(u64, u32, u32)>,
    /// Robust futex list: (head, length).
    pub robust_list: (u64, u64),
    /// `set_tid_address` pointer.
    pub clear_child_tid: u64,
    /// `comm`.
    pub comm: String,
    /// Alternate signal stack: (sp, flags, size).
    pub altstack: (u64, u32, u64),
    /// Nice value.
    pub nice: i32,
    /// CPU affinity mask (raw `cpu_set_t` bytes).
    pub affinity: Vec<u8>,
}

/// What an open descriptor refers to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum FdKind {
    /// A file or directory reopened by path.
    Path(String),
    /// A regular file deleted while open; its content is frame `FILE_DATA` number `index`.
    Deleted {
        /// The path it had (without " (deleted)").
        path: String,
        /// Which saved content.
        index: u32,
        /// Its permission bits.
        mode: u32,
        /// Its owner.
        uid: u32,
        /// Its group.
        gid: u32,
    },
    /// Standard stream that pointed at a terminal or pipe: reattached on restore.
    Stdio,
}

/// One open descriptor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FdImage {
    /// Its number.
    pub fd: i32,
    /// `O_*` status flags (from fdinfo, without `O_CLOEXEC`).
    pub flags: u32,
    /// Close-on-exec.
    pub cloexec: bool,
    /// File offset.
    pub pos: u64,
    /// What it refers to.
    pub kind: FdKind,
}

/// A signal disposition as the kernel keeps it (`struct kernel_sigaction`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct SigAction {
    pub sig: u32,
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

/// Credentials (real, effective, saved, filesystem).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Creds {
    pub uids: [u32; 4],
    pub gids: [u32; 4],
    pub groups: Vec<u32>,
}

/// Process-wide attributes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProcAttrs {
    /// Working directory.
    pub cwd: String,
    /// File creation mask.
    pub umask: u32,
    /// (resource, soft, hard) for every resource.
    pub rlimits: Vec<(u32, u64, u64)>,
    /// Non-default dispositions.
    pub sigactions: Vec<SigAction>,
    /// Pending process-directed signals (raw `siginfo_t`).
    pub shared_pending: Vec<Vec<u8>>,
    /// `getitimer` for REAL, VIRTUAL, PROF: [interval sec, usec, value sec, usec].
    pub itimers: [[i64; 4]; 3],
    /// `personality(0xffffffff)`.
    pub personality: u32,
    /// Credentials.
    pub creds: Creds,
    /// `PR_SET_NO_NEW_PRIVS` was set.
    pub no_new_privs: bool,
}
