//! Reopening file descriptors at their numbers, flags and offsets.
//!
//! Files deleted while open are recreated as unnamed `O_TMPFILE` files in the directory they
//! were in (or `/tmp`) holding the saved content; the child opens them through
//! `/proc/<restorer>/fd/N`, so they are open-but-deleted again. Standard streams that pointed
//! at a terminal or pipe are reattached to the files given in [`RestoreOptions`].

use super::RestoreOptions;
use super::child::Child;
use crate::error::{Result, io_err};
use crate::image::model::{FdImage, FdKind};
use crate::sys::nr;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

fn tmpfile(path: &str, data: &[u8]) -> Result<File> {
    let dir = Path::new(path)
        .parent()
        .filter(|d| d.is_dir())
        .unwrap_or(Path::new("/tmp"));
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .mode(0o600)
        .open(dir)
        .map_err(io_err(dir))?;
    f.write_all(data).map_err(io_err(dir))?;
    Ok(f)
}

/// Open every descriptor of `files` in the child.
pub fn restore_files(
    child: &mut Child,
    files: &[FdImage],
    contents: &[&[u8]],
    opts: &RestoreOptions,
) -> Result<()> {
    let me = std::process::id();
    let dropped = libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC | libc::O_NOCTTY;
    for f in files {
        let mut keep = None;
        let (path, mut flags, mode, seek) = match &f.kind {
            FdKind::Path(p) => (p.clone(), f.flags as i32 & !dropped, 0, true),
            FdKind::Deleted { path, index } => {
                let tmp = tmpfile(path, contents.get(*index as usize).copied().unwrap_or(&[]))?;
                let p = format!("/proc/{me}/fd/{}", tmp.as_raw_fd());
                keep = Some(tmp);
                (p, f.flags as i32 & !dropped, 0, true)
            }
            FdKind::Stdio => {
                let given = match f.fd {
                    0 => &opts.stdin,
                    1 => &opts.stdout,
                    _ => &opts.stderr,
                };
                let p = given
                    .as_ref()
                    .map(|p| std::path::absolute(p).unwrap_or(p.clone()))
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "/dev/null".into());
                let fl = if f.fd == 0 {
                    libc::O_RDONLY
                } else {
                    libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND
                };
                (p, fl, 0o644, false)
            }
        };
        if f.cloexec {
            flags |= libc::O_CLOEXEC;
        }
        let tmp = child.open(&path, flags, mode)?;
        if tmp != f.fd {
            let cl = if f.cloexec { libc::O_CLOEXEC as u64 } else { 0 };
            child
                .main
                .call("dup3", nr::DUP3, &[tmp as u64, f.fd as u64, cl])?;
            child.main.call("close", nr::CLOSE, &[tmp as u64])?;
        }
        if seek && f.pos != 0 {
            child.main.call(
                "lseek",
                nr::LSEEK,
                &[f.fd as u64, f.pos, libc::SEEK_SET as u64],
            )?;
        }
        drop(keep);
    }
    Ok(())
}
