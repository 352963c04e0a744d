//! Regular files, directories, `/dev/null`-like devices, and files deleted while open.

use super::{Claim, DumpCx, FdFacts, Kind, RestoreCx};
use crate::error::{Result, SysContext, io_err};
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
    /// A regular file deleted while open: recreated unlinked in its directory (or `/tmp`)
    /// with its content (blob `data`) and permission bits.
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
                let dir = std::path::Path::new(path)
                    .parent()
                    .and_then(|d| d.to_str())
                    .unwrap_or("/tmp");
                let tmp = cx
                    .open_in_pod(dir, libc::O_TMPFILE | libc::O_RDWR, *mode)
                    .or_else(|_| cx.open_in_pod("/tmp", libc::O_TMPFILE | libc::O_RDWR, *mode))?;
                let content = match data {
                    Some(i) => cx.data(*i)?,
                    None => &[],
                };
                std::fs::File::from(tmp.try_clone().sys(|| "dup".into())?)
                    .write_all(content)
                    .sys(|| format!("write the content of deleted {path}"))?;
                let again = format!("/proc/self/fd/{}", tmp.as_raw_fd());
                fds::open(&again, flags).sys(|| format!("reopen deleted {path}"))?
            }
        };
        if self.pos != 0 {
            fds::seek(&fd, self.pos).sys(|| "lseek".into())?;
        }
        Ok(fd)
    }
}
