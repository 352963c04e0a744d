//! Image directories, safe against other local users: created 0700 without following a
//! symbolic link at any component we create; an existing one is used only if it is a real
//! directory that no one else could have planted files in. Files inside are reached relative
//! to the directory's descriptor, never through a symbolic link, and created 0600.

use crate::error::{Error, Result, io_err};
use nix::errno::Errno;
use nix::fcntl::{OFlag, openat, renameat};
use nix::sys::stat::{Mode, SFlag, fstat, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};
use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

/// An open image directory.
pub struct ImageDir {
    fd: OwnedFd,
    path: PathBuf,
}

fn denied(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::Denied(format!("image directory {}: {why}", path.display()))
}

/// Wrap a failed system call on `path` as [`Error::Io`].
fn errno(path: &Path) -> impl FnOnce(Errno) -> Error {
    let wrap = io_err(path);
    move |e| wrap(e.into())
}

/// Why a file or directory of `uid`/`mode` is not to be trusted by the caller, if it is not.
/// `root_ok`: owned by root is fine too (reading an image root wrote for us).
fn untrusted(uid: u32, mode: u32, root_ok: bool) -> Option<String> {
    let me = crate::sys::euid();
    if uid != me && !(root_ok && uid == 0) {
        return Some(format!(
            "it belongs to uid {uid}, not to you (uid {me}); refusing to reuse someone else's"
        ));
    }
    if mode & 0o022 != 0 {
        return Some(format!(
            "mode {:o} lets others write in it; it must not be group- or world-writable",
            mode & 0o7777
        ));
    }
    None
}

fn is_symlink_error(e: Errno) -> bool {
    matches!(e, Errno::ELOOP | Errno::ENOTDIR)
}

impl ImageDir {
    /// The directory to write an image into: created (with missing parents) mode 0700, or an
    /// existing real directory owned by the caller that group and others cannot write.
    pub fn create(path: &Path) -> Result<ImageDir> {
        let abs = std::path::absolute(path).map_err(io_err(path))?;
        let names: Vec<&std::ffi::OsStr> = abs
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n),
                Component::ParentDir => Some("..".as_ref()),
                _ => None,
            })
            .collect();
        let root = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let mut fd = openat(nix::fcntl::AT_FDCWD, "/", root, Mode::empty()).map_err(errno(&abs))?;
        for (i, name) in names.iter().enumerate() {
            let last = i + 1 == names.len();
            let created = match mkdirat(&fd, *name, Mode::from_bits_truncate(0o700)) {
                Ok(()) => true,
                Err(Errno::EEXIST) => false,
                Err(e) => return Err(errno(&abs)(e)),
            };
            let mut flags = if last {
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC
            } else {
                root
            };
            // A directory we just made, or the image directory itself, is never reached
            // through a symbolic link (someone may have swapped one in).
            if created || last {
                flags |= OFlag::O_NOFOLLOW;
            }
            fd = match openat(&fd, *name, flags, Mode::empty()) {
                Ok(f) => f,
                Err(e) if (created || last) && is_symlink_error(e) => {
                    return Err(denied(&abs, "it is a symbolic link, not a directory"));
                }
                Err(e) => return Err(errno(&abs)(e)),
            };
        }
        let st = fstat(&fd).map_err(errno(&abs))?;
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFDIR {
            return Err(denied(&abs, "not a directory"));
        }
        if let Some(why) = untrusted(st.st_uid, st.st_mode, false) {
            return Err(denied(&abs, why));
        }
        Ok(ImageDir { fd, path: abs })
    }

    /// The directory to read an image from: a real directory (not a symbolic link) owned by
    /// the caller or root that group and others cannot write.
    pub fn open(path: &Path) -> Result<ImageDir> {
        let abs = std::path::absolute(path).map_err(io_err(path))?;
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = match openat(nix::fcntl::AT_FDCWD, &abs, flags, Mode::empty()) {
            Ok(f) => f,
            Err(e) if is_symlink_error(e) && abs.is_symlink() => {
                return Err(denied(&abs, "it is a symbolic link, not a directory"));
            }
            Err(e) => return Err(errno(&abs)(e)),
        };
        let st = fstat(&fd).map_err(errno(&abs))?;
        if let Some(why) = untrusted(st.st_uid, st.st_mode, true) {
            return Err(denied(&abs, why));
        }
        Ok(ImageDir { fd, path: abs })
    }

    /// The directory's path (absolute).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Create `name` afresh, mode 0600, never through a symbolic link; a leftover of an
    /// earlier attempt (ours: no one else can write here) is removed first.
    pub fn create_file(&self, name: &str) -> Result<File> {
        let path = self.path.join(name);
        match unlinkat(&self.fd, name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(errno(&path)(e)),
        }
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd =
            openat(&self.fd, name, flags, Mode::from_bits_truncate(0o600)).map_err(errno(&path))?;
        Ok(File::from(fd))
    }

    /// Open `name` for reading, never through a symbolic link; it must be a regular file
    /// owned by the caller or root that group and others cannot write.
    pub fn open_file(&self, name: &str) -> Result<File> {
        let path = self.path.join(name);
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = match openat(&self.fd, name, flags, Mode::empty()) {
            Ok(f) => f,
            Err(Errno::ELOOP) => {
                return Err(denied(&self.path, format!("{name} is a symbolic link")));
            }
            Err(e) => return Err(errno(&path)(e)),
        };
        let st = fstat(&fd).map_err(errno(&path))?;
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
            return Err(denied(&self.path, format!("{name} is not a regular file")));
        }
        if let Some(why) = untrusted(st.st_uid, st.st_mode, true) {
            return Err(denied(&self.path, format!("{name}: {why}")));
        }
        Ok(File::from(fd))
    }

    /// Rename `from` to `to` inside the directory (replacing `to`).
    pub fn rename(&self, from: &str, to: &str) -> Result<()> {
        renameat(&self.fd, from, &self.fd, to).map_err(errno(&self.path.join(to)))
    }

    /// Remove `name` (best effort).
    pub fn remove(&self, name: &str) {
        let _ = unlinkat(&self.fd, name, UnlinkatFlags::NoRemoveDir);
    }
}
