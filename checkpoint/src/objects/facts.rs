//! What the framework hands to a kind: the facts about one descriptor at dump time, the place
//! for captured bytes, and the restore-time context.

use crate::error::{Error, Result};
use crate::restore::child::Child;
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::os::fd::OwnedFd;

/// A kind's verdict on a descriptor.
#[derive(Debug)]
pub(crate) enum Claim<T> {
    /// Another kind's business.
    NotMine,
    /// This kind's, but it cannot be saved: the reason (without the process and fd, which
    /// the framework adds).
    Refused(String),
    /// This kind's: its description.
    Mine(T),
}

/// One descriptor of one process of the tree, as `/proc` shows it.
#[derive(Debug, Clone)]
pub(crate) struct FdFacts<'a> {
    /// Host PID of the holder.
    pub pid: i32,
    /// The descriptor's number.
    pub fd: i32,
    /// `readlink /proc/PID/fd/FD` (paths as the pod sees them).
    pub link: String,
    /// `st_mode` of the open file.
    pub mode: u32,
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
    /// `st_rdev` (device files).
    pub rdev: u64,
    /// File offset (fdinfo `pos`).
    pub pos: u64,
    /// Status flags without `O_CLOEXEC` (fdinfo `flags`).
    pub flags: u32,
    /// The pod the tree lives in.
    pub pod: &'a PodView,
}

impl FdFacts<'_> {
    /// `/proc/PID/fd/FD`: reopening it gives a new description of the same file (for pipes
    /// and ptys a way in without a path).
    pub fn proc_path(&self) -> String {
        format!("/proc/{}/fd/{}", self.pid, self.fd)
    }

    /// The file type bits of [`FdFacts::mode`].
    pub fn file_type(&self) -> u32 {
        self.mode & libc::S_IFMT
    }
}

/// What every kind may need to know about the pod.
#[derive(Debug, Clone)]
pub(crate) struct PodView {
    /// Host PID of the pod's init; `/proc/ROOT/root` is the pod's file system.
    pub root: i32,
    /// `st_dev` of the pod's own devpts instance (`/dev/pts` inside), if mounted.
    pub devpts: Option<u64>,
}

/// Per-kind shared state, one value per type (for example the pipes already captured).
#[derive(Default)]
pub(crate) struct TypeMap(HashMap<TypeId, Box<dyn Any>>);

impl TypeMap {
    /// The value of type `T`, created with `Default` on first use.
    pub fn get<T: Default + 'static>(&mut self) -> &mut T {
        self.0
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Box::new(T::default()))
            .downcast_mut()
            .expect("TypeMap entry of its own type")
    }
}

/// Blobs stored beside the metadata (OBJECT_DATA frames), by index.
#[derive(Default)]
pub(crate) struct DataSink {
    /// The blobs, in index order.
    pub blobs: Vec<Vec<u8>>,
}

impl DataSink {
    /// Keep `bytes`; returns their index.
    pub fn add(&mut self, bytes: Vec<u8>) -> u32 {
        self.blobs.push(bytes);
        (self.blobs.len() - 1) as u32
    }
}

/// Dump-time context of [`Kind::capture`](super::Kind::capture).
#[derive(Default)]
pub(crate) struct DumpCx {
    /// Captured bytes.
    pub data: DataSink,
    /// Per-kind state.
    pub state: TypeMap,
}

/// Restore-time context of [`Kind::create`](super::Kind::create).
pub(crate) struct RestoreCx<'a> {
    /// The image's OBJECT_DATA blobs.
    pub data: &'a [&'a [u8]],
    /// Per-kind state (for example the two ends of a pipe created together).
    pub state: TypeMap,
    /// The pod's root placeholder: files are opened there, in the pod's view and with the
    /// pod's credentials.
    pub root: &'a mut Child,
    /// A pidfd of the root placeholder, to take descriptors out of it.
    pub root_pidfd: &'a OwnedFd,
}

impl RestoreCx<'_> {
    /// Saved blob `index`.
    pub fn data(&self, index: u32) -> Result<&[u8]> {
        self.data
            .get(index as usize)
            .copied()
            .ok_or_else(|| Error::BadImage(format!("object data {index} missing")))
    }

    /// `openat(AT_FDCWD, path, flags, mode)` inside the pod (its mount namespace, its
    /// credentials); the new description, now held by the restorer.
    pub fn open_in_pod(&mut self, path: &str, flags: i32, mode: u32) -> Result<OwnedFd> {
        let fd = self.root.open_here(path, flags | libc::O_CLOEXEC, mode)?;
        self.take_from_root(fd)
    }

    /// Create a FIFO at `path` in the pod with permission bits `mode`.
    pub fn mknod_fifo_in_pod(&mut self, path: &str, mode: u32) -> Result<()> {
        let p = self.root.put_str(0, path)?;
        self.root.main.call(
            &format!("mkfifo {path}"),
            crate::sys::nr::MKNODAT,
            &[libc::AT_FDCWD as u64, p, u64::from(libc::S_IFIFO | mode), 0],
        )?;
        Ok(())
    }

    /// Remove the name `path` in the pod.
    pub fn unlink_in_pod(&mut self, path: &str) -> Result<()> {
        let p = self.root.put_str(0, path)?;
        self.root.main.call(
            &format!("unlink {path}"),
            crate::sys::nr::UNLINKAT,
            &[libc::AT_FDCWD as u64, p, 0],
        )?;
        Ok(())
    }

    /// Take descriptor `fd` out of the root placeholder (which closes its copy).
    pub fn take_from_root(&mut self, fd: i32) -> Result<OwnedFd> {
        use crate::error::SysContext;
        let got = crate::sys::fds::pidfd_getfd(self.root_pidfd, fd)
            .sys(|| format!("pidfd_getfd {fd} of the pod's root"));
        self.root
            .main
            .call("close", crate::sys::nr::CLOSE, &[fd as u64])?;
        got
    }
}

/// Injected system calls into one restored process (for [`Kind::install`](super::Kind::install)).
pub(crate) struct Installer<'a> {
    /// The process.
    pub child: &'a mut Child,
}

#[allow(dead_code)] // the extension point for kinds with per-holder state (epoll, locks, …)
impl Installer<'_> {
    /// Run system call `nr` in the process; an error names `what`.
    pub fn call(&mut self, what: &str, nr: u64, args: &[u64]) -> Result<u64> {
        self.child.main.call(what, nr, args)
    }

    /// Copy `bytes` into the process's scratch argument area at `off`; their address there.
    pub fn put(&mut self, off: u64, bytes: &[u8]) -> Result<u64> {
        self.child.put(off, bytes)
    }
}
