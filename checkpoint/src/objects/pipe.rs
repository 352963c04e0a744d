//! Pipes and FIFOs, with the bytes buffered in them.
//!
//! The bytes are read without consuming them: the pipe is reopened through
//! `/proc/PID/fd/N` and `tee(2)` copies what it holds into a scratch pipe. At restore an
//! anonymous pipe is created once (both ends), its capacity set and its bytes written back; a
//! FIFO is opened read-write in the pod (created with its mode if it is missing there), filled,
//! and each end opened by path. Both ends of one pipe carry the same buffer description.

use super::{Claim, DumpCx, FdFacts, Kind, RestoreCx};
use crate::error::{Error, Result, SysContext};
use crate::sys::fds;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;

/// What a pipe held at checkpoint time.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct Buffer {
    /// `F_GETPIPE_SZ`.
    capacity: u32,
    /// Blob index of the buffered bytes.
    data: u32,
}

/// One end (open file description) of a pipe or FIFO.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PipeEnd {
    /// Inode number of the pipe (identifies the pipe within the image).
    ino: u64,
    /// Status flags (access mode, `O_NONBLOCK`, …).
    flags: u32,
    /// The FIFO's path in the pod; `None` for an anonymous pipe.
    fifo: Option<String>,
    /// Permission bits of the FIFO.
    mode: u32,
    /// The buffered bytes (set by `capture`).
    buffer: Option<Buffer>,
}

/// Dump state: pipes already captured.
#[derive(Default)]
struct Captured(HashMap<u64, Buffer>);

/// Restore state: pipes already made (anonymous: both ends; FIFO: a read-write holder).
#[derive(Default)]
struct Made(HashMap<u64, (OwnedFd, Option<OwnedFd>)>);

impl Kind for PipeEnd {
    const NAME: &'static str = "pipe";

    fn inspect(f: &FdFacts<'_>) -> Claim<Self> {
        if f.file_type() != libc::S_IFIFO {
            return Claim::NotMine;
        }
        let fifo = if f.link.starts_with("pipe:[") {
            None
        } else if f.link.starts_with('/') && !f.link.ends_with(" (deleted)") {
            Some(f.link.clone())
        } else {
            return Claim::Refused(format!("FIFO {} has no path in the pod", f.link));
        };
        Claim::Mine(PipeEnd {
            ino: f.ino,
            flags: f.flags,
            fifo,
            mode: f.mode & 0o7777,
            buffer: None,
        })
    }

    fn capture(&mut self, f: &FdFacts<'_>, cx: &mut DumpCx) -> Result<()> {
        if let Some(b) = cx.state.get::<Captured>().0.get(&self.ino) {
            self.buffer = Some(*b);
            return Ok(());
        }
        let (capacity, bytes) = peek(&f.proc_path())?;
        let b = Buffer {
            capacity,
            data: cx.data.add(bytes),
        };
        cx.state.get::<Captured>().0.insert(self.ino, b);
        self.buffer = Some(b);
        Ok(())
    }

    fn create(&self, cx: &mut RestoreCx<'_>) -> Result<OwnedFd> {
        let (capacity, data) = match self.buffer {
            Some(b) => (b.capacity, cx.data(b.data)?.to_vec()),
            None => (0, Vec::new()),
        };
        let write = self.flags as i32 & libc::O_ACCMODE != libc::O_RDONLY;
        let end = match &self.fifo {
            None => {
                if let std::collections::hash_map::Entry::Vacant(v) =
                    cx.state.get::<Made>().0.entry(self.ino)
                {
                    let (r, w) = fds::pipe(libc::O_NONBLOCK).sys(|| "pipe2".into())?;
                    fill(&w, capacity, &data)?;
                    v.insert((r, Some(w)));
                }
                let (r, w) = &cx.state.get::<Made>().0[&self.ino];
                let fd = if write { w.as_ref().unwrap_or(r) } else { r };
                // One description per end: a second description of the same end (reopened
                // through /proc) is a new open of the pipe.
                fd.try_clone().sys(|| "dup".into())?
            }
            Some(path) => {
                if !cx.state.get::<Made>().0.contains_key(&self.ino) {
                    let holder = open_fifo(cx, path, self.mode)?;
                    fill(&holder, capacity, &data)?;
                    cx.state.get::<Made>().0.insert(self.ino, (holder, None));
                }
                let acc = self.flags as i32 & libc::O_ACCMODE;
                cx.open_in_pod(path, acc | libc::O_NONBLOCK, 0)?
            }
        };
        // Anonymous ends are shared by every description of that end; set the saved flags.
        fds::fcntl(&end, libc::F_SETFL, self.flags as i32).sys(|| "F_SETFL".into())?;
        Ok(end)
    }
}

/// (capacity, buffered bytes) of the pipe behind `/proc/PID/fd/N`, without consuming them.
fn peek(proc_path: &str) -> Result<(u32, Vec<u8>)> {
    let src = fds::open(proc_path, libc::O_RDONLY | libc::O_NONBLOCK)
        .sys(|| format!("reopen {proc_path}"))?;
    let capacity = fds::fcntl(&src, libc::F_GETPIPE_SZ, 0).sys(|| "F_GETPIPE_SZ".into())?;
    let (r, w) = fds::pipe(libc::O_NONBLOCK).sys(|| "pipe2".into())?;
    // The scratch pipe must hold everything; without the privilege to go past the system's
    // limit, tee stops at the scratch pipe's capacity and we say so below.
    let _ = fds::fcntl(&w, libc::F_SETPIPE_SZ, capacity);
    let mut out = Vec::new();
    let n = match fds::tee(&src, &w, capacity as usize) {
        Ok(n) => n,
        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => 0,
        Err(e) => return Err(e).sys(|| format!("tee {proc_path}")),
    };
    drop(w);
    std::fs::File::from(r)
        .read_to_end(&mut out)
        .sys(|| "read the scratch pipe".into())?;
    if out.len() != n {
        return Err(Error::Restore(format!(
            "pipe {proc_path}: read {} of {n} bytes",
            out.len()
        )));
    }
    let total = fds::ioctl_int(std::os::fd::AsRawFd::as_raw_fd(&src), libc::FIONREAD, 0)
        .sys(|| "FIONREAD".into())?;
    if total as usize != out.len() {
        return Err(Error::Restore(format!(
            "pipe {proc_path} holds {total} bytes, only {} could be copied",
            out.len()
        )));
    }
    Ok((capacity as u32, out))
}

/// Size the pipe for `data` and write it (the pipe is empty and non-blocking).
fn fill(w: &OwnedFd, capacity: u32, data: &[u8]) -> Result<()> {
    let want = (capacity as usize).max(data.len());
    if want > 0 {
        fds::fcntl(w, libc::F_SETPIPE_SZ, want as i32).sys(|| format!("F_SETPIPE_SZ {want}"))?;
    }
    std::fs::File::from(w.try_clone().sys(|| "dup".into())?)
        .write_all(data)
        .sys(|| format!("write {} buffered bytes back", data.len()))
}

/// A read-write description of the FIFO at `path` in the pod, creating it if missing.
fn open_fifo(cx: &mut RestoreCx<'_>, path: &str, mode: u32) -> Result<OwnedFd> {
    let flags = libc::O_RDWR | libc::O_NONBLOCK;
    match cx.open_in_pod(path, flags, 0) {
        Err(Error::Sys { source, .. }) if source.raw_os_error() == Some(libc::ENOENT) => {
            cx.mknod_fifo_in_pod(path, mode)?;
            cx.open_in_pod(path, flags, 0)
        }
        r => r,
    }
}
