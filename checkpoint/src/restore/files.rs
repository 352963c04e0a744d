//! Reopening file descriptors at their numbers, flags and offsets.
//!
//! A file deleted while open is recreated under its original name when that name is free
//! (else under a hidden name beside it, which is noted), with the saved content, mode and
//! owner (the owner only when the caller may give it: root, or the caller's own uid; set-user
//! and set-group-ID bits are not restored). The child opens it through
//! `/proc/<restorer>/fd/N` and the name is then removed, so `/proc/PID/fd/N` shows
//! "PATH (deleted)" as before. A deleted file whose directory is gone is refused. Standard
//! streams that pointed at a terminal or pipe are reattached to the files given in
//! [`RestoreOptions`].

use super::RestoreOptions;
use super::child::Child;
use crate::error::{Error, Result};
use crate::image::model::{FdImage, FdKind};
use crate::sys::nr;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{Mode, fchmod, fstat, fstatat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, unlinkat};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

/// Who owns recreated deleted files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The saved owner, where the caller may give it.
    Saved,
    /// The caller (a process restored under the caller's credentials).
    Caller,
}

/// A deleted file recreated under a name; the name is removed on drop (once the child has
/// the file open, or when the restore fails).
struct Recreated {
    file: File,
    dir: OwnedFd,
    name: String,
}

impl Drop for Recreated {
    /// Remove the name, if it still names our file.
    fn drop(&mut self) {
        let ours = fstat(&self.file).ok().map(|s| (s.st_dev, s.st_ino));
        let there = fstatat(&self.dir, self.name.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
            .ok()
            .map(|s| (s.st_dev, s.st_ino));
        if ours.is_some() && ours == there {
            let _ = unlinkat(&self.dir, self.name.as_str(), UnlinkatFlags::NoRemoveDir);
        }
    }
}

fn fail(fd: i32, path: &str, what: impl std::fmt::Display) -> Error {
    Error::Restore(format!("fd {fd}: deleted file {path}: {what}"))
}

/// Recreate deleted file `f` (with `data`) under its name or a free one beside it.
fn recreate(f: &FdImage, data: &[u8], owner: Owner, notes: &mut Vec<String>) -> Result<Recreated> {
    let FdKind::Deleted {
        path,
        mode,
        uid,
        gid,
        ..
    } = &f.kind
    else {
        unreachable!("only deleted files are recreated")
    };
    let p = Path::new(path);
    let (Some(parent), Some(base)) = (p.parent(), p.file_name().and_then(|n| n.to_str())) else {
        return Err(fail(f.fd, path, "no directory and name"));
    };
    let dflags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let dir = openat(nix::fcntl::AT_FDCWD, parent, dflags, Mode::empty())
        .map_err(|e| fail(f.fd, path, format!("its directory: {e}")))?;
    let fflags =
        OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let private = Mode::from_bits_truncate(0o600);
    let mut name = base.to_string();
    let mut n = 0;
    let fd = loop {
        match openat(&dir, name.as_str(), fflags, private) {
            Ok(fd) => break fd,
            Err(Errno::EEXIST) if n < 100 => {
                n += 1;
                name = format!(".{base}.zckpt-{}-{n}", std::process::id());
            }
            Err(e) => return Err(fail(f.fd, path, e)),
        }
    };
    if n > 0 {
        notes.push(format!(
            "fd {}: deleted file {path} comes back as {}/{name} (deleted): its name is taken",
            f.fd,
            parent.display()
        ));
    }
    let mut file = File::from(fd);
    file.write_all(data).map_err(|e| fail(f.fd, path, e))?;
    let me = crate::sys::euid();
    if owner == Owner::Saved && (me == 0 || *uid == me) {
        let g = fchown(&file, Some(Uid::from_raw(*uid)), Some(Gid::from_raw(*gid)));
        if let Err(e) = g {
            notes.push(format!(
                "fd {}: deleted file {path}: group {gid} not kept: {e}",
                f.fd
            ));
        }
    } else if owner == Owner::Saved && *uid != me {
        notes.push(format!(
            "fd {}: deleted file {path} is owned by you, not uid {uid}",
            f.fd
        ));
    }
    if mode & 0o6000 != 0 {
        notes.push(format!(
            "fd {}: deleted file {path}: set-user/group-ID bits not restored",
            f.fd
        ));
    }
    fchmod(&file, Mode::from_bits_truncate(mode & 0o1777)).map_err(|e| fail(f.fd, path, e))?;
    Ok(Recreated { file, dir, name })
}

/// Open every descriptor of `files` in the child.
pub fn restore_files(
    child: &mut Child,
    files: &[FdImage],
    contents: &[&[u8]],
    opts: &RestoreOptions,
    owner: Owner,
    notes: &mut Vec<String>,
) -> Result<()> {
    let me = std::process::id();
    let dropped = libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC | libc::O_NOCTTY;
    // Reopening a deleted file must not make a new temporary file.
    let tmpfile_bits = libc::O_TMPFILE | libc::O_DIRECTORY;
    for f in files {
        let mut keep = None;
        let (path, mut flags, mode, seek) = match &f.kind {
            FdKind::Path(p) => (p.clone(), f.flags as i32 & !dropped, 0, true),
            FdKind::Deleted { index, .. } => {
                let data = contents.get(*index as usize).copied().unwrap_or(&[]);
                let r = recreate(f, data, owner, notes)?;
                let p = format!("/proc/{me}/fd/{}", r.file.as_raw_fd());
                keep = Some(r);
                (p, f.flags as i32 & !(dropped | tmpfile_bits), 0, true)
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
