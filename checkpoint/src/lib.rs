//! ZOS checkpoint/restore engine: saves a running Linux process to an image and brings it
//! back, using only ptrace and `/proc` (no kernel module, no CRIU).
//!
//! # Use
//!
//! - [`check`] says whether a process can be checkpointed, with every reason if not.
//! - [`checkpoint`] freezes a process, writes its image to a directory, then ends it (or lets it
//!   run on with [`DumpOptions::leave_running`]). A refused, traced, vanishing process or an
//!   unwritable directory fails cleanly and leaves the process running. The directory is made
//!   0700 (an existing one must be the caller's, not a symbolic link, not writable by others)
//!   and the image is a 0600 file; the image of a process with credentials other than the
//!   caller's is signed with [`DumpOptions::key`] (HMAC-SHA256 with this machine's
//!   [`ImageKey`]).
//! - [`restore`] validates an image completely (every header and metadata field), checks that
//!   the caller may grant the credentials it names ([`creds`]: the caller's own, or root and a
//!   signature by this machine's key; or [`Credentials::Caller`] to ignore them) and that the
//!   original process no longer runs ([`RestoreOptions::force`] to start a second copy), then
//!   recreates the process — with the same PID when it is free — detached and running from
//!   where it stopped; returns its PID and notes on whatever differs from the original.
//! - [`bench::run`] measures checkpoint/restore figures.
//!
//! **Pods** (process trees, [`pod`]): [`pod::spawn`] starts a task in its own user, PID, mount
//! and IPC namespaces with our init (`zos-pod-init`) as PID 1 and one pty; [`check_tree`],
//! [`checkpoint_tree`] and [`restore_tree`] carry the whole tree with its PIDs unchanged inside
//! the pod (parents, waitpid relations, sessions and groups, defunct and stopped children,
//! threads, the pty, pipes and FIFOs with their bytes, shared files and shared anonymous
//! memory, unix socket pairs with their queues, eventfd, timerfd, signalfd, epoll, POSIX
//! timers, memfd, file locks, System V and POSIX shared memory, semaphores and message queues,
//! each thread's capabilities), as an ordinary user. See the `tree` module docs and
//! ARCHITECTURE.md.
//!
//! All ptrace calls of one operation must come from one thread (ptrace is per thread); the
//! functions are blocking. A restored process is an orphan: it is reparented to the nearest
//! child subreaper (see [`set_child_subreaper`]) or to PID 1.
//!
//! # What is saved
//!
//! Memory (anonymous private/shared, private file mappings with their written pages, shared
//! file mappings, heap and brk, stacks, guard pages, protections, vDSO/vvar position,
//! code/data/arg/env/auxv bounds and `/proc/PID/exe` via `PR_SET_MM_MAP`); every thread
//! (general registers, XSAVE area, fs/gs base, signal mask, pending signals, rseq, robust futex
//! list, clear-child-tid, name; interrupted system calls restart as the kernel would, sleeps for
//! the remaining time); files (regular files and directories by path with flags, offset and
//! close-on-exec, deleted-while-open files with their content, `/dev/null`, `/dev/zero`,
//! `/dev/urandom`, `/dev/random`; stdin/stdout/stderr on a terminal or pipe are reattached to
//! [`RestoreOptions`] files); process attributes (cwd, umask, rlimits, signal dispositions,
//! pending signals, interval timers, personality, credentials, no-new-privs). The restored
//! process starts a new session (`setsid`).
//!
//! Refused up front: sockets, pipes and terminals other than stdio, eventfd/epoll/other
//! anon-inode descriptors, memfd, file locks, System V shm, mappings of deleted files, POSIX
//! timers, seccomp, child processes, foreign namespaces, foreign tracers, stopped processes.
//!
//! # How it works
//!
//! **Checkpoint.** Every thread is stopped with `PTRACE_SEIZE` + `PTRACE_INTERRUPT` (all
//! signals blocked while we hold it). State that `/proc` and ptrace expose is read directly
//! (maps, pagemap, fdinfo, status, limits, registers, XSAVE area, rseq configuration, robust
//! list, pending signals); the rest (signal dispositions, interval timers, brk, clear-child-tid,
//! alternate signal stacks) comes from system calls injected into the process: its registers
//! are pointed at a `syscall` instruction in its vDSO with `orig_rax = -1` and stepped with
//! `PTRACE_SYSCALL`; results go to a scratch page mapped by an injected `mmap`. Memory is read
//! with `process_vm_readv` by a second thread that also checksums, while the first writes. The
//! image file is allocated before the freeze. The process is then killed, or (leave-running)
//! its registers and mask are put back — with the kernel's syscall-restart rules applied — and
//! it is detached.
//!
//! **Restore.** After the image is validated, a placeholder is forked (`clone3` with `set_tid`
//! for the saved PID), seized, and made to unregister its rseq area, map a scratch area with a
//! `syscall` instruction, and unmap everything else; then, by injected calls: vDSO/vvar at the
//! saved address (`ARCH_MAP_VDSO_64`), every mapping, page contents (`process_vm_writev`),
//! protections, `PR_SET_MM_MAP` (code/data/brk/stack/arg/env bounds, auxv, exe), descriptors,
//! cwd, umask, personality, dispositions, timers, `setsid`, rlimits; threads by injected
//! `clone3` (same TIDs), each given its clear-child-tid, robust list, rseq, alternate stack,
//! name; pending signals are queued again; credentials are set per thread last; the scratch
//! area is unmapped; finally each thread gets its registers (restart rules applied), XSAVE
//! state, signal mask, nice value and affinity, and is detached.
//!
//! # Limits
//!
//! - One process at a time outside a pod (process trees only as pods), same kernel vDSO
//!   layout (same machine or same kernel build), a CPU with at least the saved XSAVE
//!   features. Checkpointing a single process needs root; a pod needs only its owner.
//! - Restoring works without root for an image with the caller's own credentials, with two
//!   differences (noted in [`RestoreStats::notes`]): the process gets a new PID (`clone3`
//!   `set_tid` needs CAP_CHECKPOINT_RESTORE), and `/proc/PID/exe` stays the restorer's
//!   executable (`PR_SET_MM_MAP` with an exe descriptor needs it too). Capability sets are not
//!   saved: a restored process has those its credentials give it under the restorer.
//! - Files are reopened by path: they must exist (with the same content for file mappings) at
//!   restore. Deleted-while-open files are recreated under their name (or beside it when the
//!   name is taken), with their content, mode and owner, opened and unlinked again.
//! - New mappings in the restored process are placed relative to the restorer's mmap base (the
//!   kernel does not let us set it), so later `mmap` addresses differ from an uninterrupted run.
//! - Transparent huge pages and `madvise` flags are not carried over.
//!
//! # Image format
//!
//! A directory holding one stream file, `image.zckpt`; its bytes can equally be sent over a
//! socket. See [`image::format`] for the layout: a 16-byte header (magic `ZOSCKPT\0`, version
//! u32, flags u32) and CRC-32-checked frames: one postcard-encoded metadata frame
//! ([`image::model`]), then page frames (address + raw pages), then deleted-file contents, then
//! an END frame counting the frames, then (flag SIGNED) a MAC frame: HMAC-SHA256 of everything
//! before it. Restore refuses a foreign version, unknown flags, a bad checksum, a truncated
//! stream, any field out of range ([`image::validate`]) or an image from a CPU with XSAVE
//! features this one lacks, before creating anything.

pub mod bench;
mod check;
pub mod creds;
mod dump;
mod error;
mod fdclass;
mod freeze;
pub mod image;
mod imagedir;
mod inject;
mod objects;
mod phases;
pub mod pod;
mod proc;
mod procstate;
mod restart;
pub(crate) mod restore;
mod sys;
pub mod track;
mod tree;
mod vmas;

pub use check::{CheckReport, check};
pub use creds::Credentials;
pub use dump::{DumpOptions, DumpStats, checkpoint, checkpoint_to_writer};
pub use error::{Error, Result};
pub use image::key::ImageKey;
pub use restore::{RestoreOptions, RestoreStats, restore, restore_from_bytes};
pub use track::{DirtyTracker, PageBase, RoundStats, write_round};
pub use tree::{
    AfterDump, FrozenTree, RestoredTree, TreeDumpOptions, TreeDumpStats, TreeRestoreOptions,
    check_tree, checkpoint_tree, checkpoint_tree_delta, checkpoint_tree_tracked, restore_tree,
    restore_tree_with_base,
};

/// Make the calling process a child subreaper, so that processes restored by it are
/// reparented to it (and can be reaped by it) rather than to PID 1.
pub fn set_child_subreaper() -> Result<()> {
    use error::SysContext;
    sys::set_child_subreaper().sys(|| "PR_SET_CHILD_SUBREAPER".into())
}

/// Wait up to `timeout` for a child of ours (for example a process restored while we are its
/// subreaper) to exit, and reap it. Returns its exit code (128 + signal if killed), or `None`
/// if it is still running.
pub fn wait_child(pid: i32, timeout: std::time::Duration) -> Result<Option<i32>> {
    use error::SysContext;
    let st = sys::wait_exit(pid, timeout).sys(|| format!("waitpid {pid}"))?;
    Ok(st.map(|s| {
        if s & 0x7f == 0 {
            (s >> 8) & 0xff
        } else {
            128 + (s & 0x7f)
        }
    }))
}
