//! What kind of thing an open descriptor refers to, and whether we can save it.

use crate::error::Result;
use crate::proc;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

/// Classification of one descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FdClass {
    /// Reopen by this path (regular file, directory, /dev/null, /dev/zero, /dev/urandom).
    Path(String),
    /// Regular file deleted while open: save its content (path it had).
    Deleted(String),
    /// Standard stream on a terminal or pipe: reattached on restore.
    Stdio,
    /// Not supported; the reason.
    Unsupported(String),
}

const DELETED: &str = " (deleted)";

/// Classify descriptor `fd` of `pid`.
pub fn classify(pid: i32, fd: i32) -> Result<FdClass> {
    let link = proc::link(pid, &format!("fd/{fd}"))?;
    if link.starts_with("anon_inode:") {
        return Ok(FdClass::Unsupported(format!(
            "fd {fd}: {link} is not supported"
        )));
    }
    let Ok(md) = std::fs::metadata(format!("/proc/{pid}/fd/{fd}")) else {
        return Ok(FdClass::Unsupported(format!("fd {fd}: cannot stat {link}")));
    };
    let ft = md.file_type();
    let stdio = fd <= 2;
    Ok(if ft.is_file() {
        if link.starts_with("/memfd:") {
            FdClass::Unsupported(format!("fd {fd}: memfd {link} is not supported"))
        } else if let Some(p) = link.strip_suffix(DELETED) {
            FdClass::Deleted(p.to_string())
        } else if link.starts_with('/') {
            FdClass::Path(link)
        } else {
            FdClass::Unsupported(format!("fd {fd}: {link} has no path"))
        }
    } else if ft.is_dir() {
        if link.ends_with(DELETED) {
            FdClass::Unsupported(format!("fd {fd}: deleted directory {link}"))
        } else {
            FdClass::Path(link)
        }
    } else if ft.is_char_device() {
        let rdev = md.rdev();
        let (major, minor) = (libc::major(rdev), libc::minor(rdev));
        match (major, minor) {
            (1, 3) | (1, 5) | (1, 8) | (1, 9) => FdClass::Path(link),
            (4, _) | (5, _) | (136..=143, _) if stdio => FdClass::Stdio,
            (4, _) | (5, _) | (136..=143, _) => {
                FdClass::Unsupported(format!("fd {fd}: terminal {link} (only stdin/out/err)"))
            }
            _ => FdClass::Unsupported(format!("fd {fd}: character device {link}")),
        }
    } else if ft.is_fifo() {
        if stdio {
            FdClass::Stdio
        } else {
            FdClass::Unsupported(format!("fd {fd}: pipe/FIFO {link} is not supported"))
        }
    } else if ft.is_socket() {
        FdClass::Unsupported(format!("fd {fd}: socket {link} is not supported"))
    } else {
        FdClass::Unsupported(format!("fd {fd}: {link} is not supported"))
    })
}
