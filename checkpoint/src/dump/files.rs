//! Saving open file descriptors.

use crate::error::{Error, Result, io_err};
use crate::fdclass::{FdClass, classify};
use crate::image::model::{FdImage, FdKind};
use crate::proc;
use std::os::unix::fs::MetadataExt;

/// Describe every descriptor of `pid`; returns them and the contents of deleted files.
pub fn collect_files(pid: i32) -> Result<(Vec<FdImage>, Vec<Vec<u8>>)> {
    let mut files = Vec::new();
    let mut contents = Vec::new();
    let mut reasons = Vec::new();
    for fd in proc::fds(pid)? {
        let (pos, flags, _) = proc::fdinfo(pid, fd)?;
        let cloexec = flags & libc::O_CLOEXEC as u32 != 0;
        let flags = flags & !(libc::O_CLOEXEC as u32);
        let kind = match classify(pid, fd)? {
            FdClass::Path(p) => FdKind::Path(p),
            FdClass::Stdio => FdKind::Stdio,
            FdClass::Deleted(path) => {
                let src = format!("/proc/{pid}/fd/{fd}");
                let md = std::fs::metadata(&src).map_err(io_err(&src))?;
                let data = std::fs::read(&src).map_err(io_err(src))?;
                contents.push(data);
                FdKind::Deleted {
                    path,
                    index: (contents.len() - 1) as u32,
                    mode: md.mode() & 0o7777,
                    uid: md.uid(),
                    gid: md.gid(),
                }
            }
            FdClass::Unsupported(r) => {
                reasons.push(r);
                continue;
            }
        };
        files.push(FdImage {
            fd,
            flags,
            cloexec,
            pos,
            kind,
        });
    }
    if reasons.is_empty() {
        Ok((files, contents))
    } else {
        Err(Error::Refused { pid, reasons })
    }
}
