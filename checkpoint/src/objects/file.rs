//! Regular files, directories, `/dev/null`-like devices, and files deleted while open.

use super::{Claim, DumpCx, FdFacts, Kind, RestoreCx};
use crate::error::{Error, Result, SysContext, io_err};
use crate::sys::fds;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};

const DELETED: &str = " (deleted)";

/// What the description refers to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Target {
    /// Reopened by this path in the pod.
    Path(String),
    /// A regular file deleted while open: recreated under its name (or a hidden name beside
    /// it when that is taken) with its content (blob `data`) and permission bits (without
    /// set-user/group-ID), opened, and unlinked again, so it shows "PATH (deleted)" as before.
    Deleted {
        /// The path it had.
        path: String,
        /// Permission bits.
        mode: u32,
        /// Blob index of the content (set by `capture`).
        data: Option<u32>,
    },
}

/// An open regular file, directory or harmless character device.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OpenFile {
    target: Target,
    flags: u32,
    pos: u64,
}

impl Kind for OpenFile {
    const NAME: &'static str = "file";

    fn inspect(f: &FdFacts<'_>) -> Claim<Self> {
        let target = match f.file_type() {
            libc::S_IFREG if f.link.starts_with("/memfd:") => return Claim::NotMine,
            libc::S_IFREG => match f.link.strip_suffix(DELETED) {
                Some(path) => Target::Deleted {
                    path: path.to_string(),
                    mode: f.mode & 0o7777,
                    data: None,
                },
                None if f.link.starts_with('/') => Target::Path(f.link.clone()),
                None => return Claim::Refused(format!("{} has no path", f.link)),
            },
            libc::S_IFDIR if f.link.ends_with(DELETED) => {
                return Claim::Refused(format!("deleted directory {}", f.link));
            }
            libc::S_IFDIR => Target::Path(f.link.clone()),
            libc::S_IFCHR => {
                let (major, minor) = (libc::major(f.rdev), libc::minor(f.rdev));
                if !matches!((major, minor), (1, 3) | (1, 5) | (1, 8) | (1, 9)) {
                    return Claim::NotMine;
                }
                Target::Path(f.link.clone())
            }
            _ => return Claim::NotMine,
        };
        Claim::Mine(OpenFile {
            target,
            flags: f.flags,
            pos: f.pos,
        })
    }

    fn capture(&mut self, f: &FdFacts<'_>, cx: &mut DumpCx) -> Result<()> {
        if let Target::Deleted { data, .. } = &mut self.target {
            let src = f.proc_path();
            let bytes = std::fs::read(&src).map_err(io_err(src))?;
            *data = Some(cx.data.add(bytes));
        }
        Ok(())
    }

    fn create(&self, cx: &mut RestoreCx<'_>) -> Result<OwnedFd> {
        let dropped = libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC | libc::O_NOCTTY;
        let flags = self.flags as i32 & !dropped;
        let fd = match &self.target {
            Target::Path(p) => cx.open_in_pod(p, flags, 0)?,
            Target::Deleted { path, mode, data } => {
                let content = match data {
                    Some(i) => cx.data(*i)?.to_vec(),
                    None => Vec::new(),
                };
                recreate(cx, path, *mode, &content, flags)?
            }
        };
        if self.pos != 0 {
            fds::seek(&fd, self.pos).sys(|| "lseek".into())?;
        }
        Ok(fd)
    }
}

/// Create a deleted file again in the pod (by its root placeholder, so the pod's user owns it)
/// under `path` or a hidden name beside it, fill it, open it with `flags`, and remove the name.
fn recreate(
    cx: &mut RestoreCx<'_>,
    path: &str,
    mode: u32,
    content: &[u8],
    flags: i32,
) -> Result<OwnedFd> {
    let p = std::path::Path::new(path);
    let (Some(dir), Some(base)) = (
        p.parent().and_then(|d| d.to_str()),
        p.file_name().and_then(|n| n.to_str()),
    ) else {
        return Err(Error::Restore(format!(
            "deleted file {path}: no directory and name"
        )));
    };
    let create = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
    let mut name = path.to_string();
    let mut n = 0;
    let file = loop {
        match cx.open_in_pod(&name, create, 0o600) {
            Ok(f) => break f,
            Err(Error::Sys { source, .. })
                if source.raw_os_error() == Some(libc::EEXIST) && n < 100 =>
            {
                n += 1;
                name = format!("{dir}/.{base}.zckpt-{}-{n}", std::process::id());
            }
            Err(e) => return Err(Error::Restore(format!("deleted file {path}: {e}"))),
        }
    };
    if n > 0 {
        tracing::warn!("deleted file {path} comes back as {name} (deleted): its name is taken");
    }
    let made = (|| -> Result<OwnedFd> {
        std::fs::File::from(file.try_clone().sys(|| "dup".into())?)
            .write_all(content)
            .sys(|| format!("write the content of deleted {path}"))?;
        fds::fchmod(&file, mode & 0o1777).sys(|| format!("chmod deleted {path}"))?;
        let again = format!("/proc/self/fd/{}", file.as_raw_fd());
        fds::open(&again, flags).sys(|| format!("reopen deleted {path}"))
    })();
    cx.unlink_in_pod(&name)?;
    made
}
