//! Where a node is now, checked on every use.
//!
//! The master's user may move a directory the zombie holds out of an export
//! or into a never-path; the node's descriptor follows the inode, so without
//! a check the zombie would keep reaching it. Every call therefore asks the
//! kernel where the descriptor's inode is now (`/proc/self/fd/N`, which
//! follows renames) and refuses a node that is no longer below its export's
//! root (`ESTALE`) or lies under a never-path (`ENOENT`, as never-paths are
//! hidden). Open handles are checked the same way on each call, so reads and
//! writes stop too; what the zombie's page cache already holds stays there.
//!
//! The answer is remembered with the descriptor for [`RECHECK_AFTER`]
//! (asking the kernel costs about as much as writing 32 KiB), so a move
//! takes effect on the zombie within that time.
//!
//! A file whose every name was removed (`nlink == 0`: an open temporary
//! file) is nowhere and stays usable. A descriptor whose name was removed
//! while the inode has other names shows as `PATH (deleted)`: that counts
//! only when `PATH` (a name that really ends so) is still this inode;
//! otherwise the node answers `ESTALE` and the zombie looks it up again.
//! Paths longer than the kernel shows (`PATH_MAX`) cannot be checked and are
//! refused with `ENAMETOOLONG`.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use crate::sys::{self, SysResult};

/// How long a checked place is trusted before the kernel is asked again.
pub const RECHECK_AFTER: Duration = Duration::from_millis(50);

/// Where a node is.
#[derive(Clone)]
pub enum Place {
    /// At this path on the master, inside its export.
    At(PathBuf),
    /// Nowhere: every name of it was removed.
    Unlinked,
}

impl Place {
    /// The path of a node that must have one (a directory to look up or
    /// create in): `ENOENT` for a removed one.
    pub fn path(self) -> SysResult<PathBuf> {
        match self {
            Place::At(path) => Ok(path),
            Place::Unlinked => Err(Errno::ENOENT),
        }
    }
}

/// The last place found for one descriptor, and when.
#[derive(Default)]
pub struct Checked(Mutex<Option<(Instant, Place)>>);

/// The export roots and never-paths as the kernel names them.
pub struct Places {
    proc_fds: OwnedFd,
    roots: Vec<PathBuf>,
    never: Vec<PathBuf>,
}

const DELETED: &[u8] = b" (deleted)";

impl Places {
    /// Places for `roots` (the export roots' real paths, by export index)
    /// and `never` (absolute never-paths).
    pub fn new(proc_fds: OwnedFd, roots: Vec<PathBuf>, never: Vec<PathBuf>) -> Places {
        Places {
            proc_fds,
            roots,
            never,
        }
    }

    /// `/proc/self/fd`, for reopening nodes.
    pub fn proc_fds(&self) -> BorrowedFd<'_> {
        self.proc_fds.as_fd()
    }

    /// [`Places::check`], answered from `checked` when that is younger than
    /// [`RECHECK_AFTER`].
    pub fn check_cached(
        &self,
        export: usize,
        fd: BorrowedFd<'_>,
        checked: &Checked,
    ) -> SysResult<Place> {
        let mut last = checked.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, place)) = &*last
            && at.elapsed() < RECHECK_AFTER
        {
            return Ok(place.clone());
        }
        let place = self.check(export, fd)?;
        *last = Some((Instant::now(), place.clone()));
        Ok(place)
    }

    /// Where the inode behind `fd` is now; refused outside export `export`
    /// (`ESTALE`) or under a never-path (`ENOENT`).
    pub fn check(&self, export: usize, fd: BorrowedFd<'_>) -> SysResult<Place> {
        let raw = sys::fd_path(self.proc_fds(), fd)?;
        if raw.ends_with(DELETED) {
            let st = sys::stat(fd)?;
            if st.st_nlink == 0 {
                return Ok(Place::Unlinked);
            }
            match sys::lstat_path(Path::new(OsStr::from_bytes(&raw))) {
                Ok(named) if (named.st_dev, named.st_ino) == (st.st_dev, st.st_ino) => {}
                _ => return Err(Errno::ESTALE),
            }
        }
        let path = PathBuf::from(OsStr::from_bytes(&raw));
        if !path.starts_with(&self.roots[export]) {
            return Err(Errno::ESTALE);
        }
        if self.is_never(&path) {
            return Err(Errno::ENOENT);
        }
        Ok(Place::At(path))
    }

    /// Whether `path` is a never-path or lies under one.
    pub fn is_never(&self, path: &Path) -> bool {
        self.never.iter().any(|n| path.starts_with(n))
    }

    /// Whether `dir/name` is a never-path (`dir` itself checked already).
    pub fn is_never_name(&self, dir: &Path, name: &[u8]) -> bool {
        !self.never.is_empty() && self.is_never(&dir.join(OsStr::from_bytes(name)))
    }

    /// Whether any never-path lies directly in `dir` (then a listing of
    /// `dir` must be filtered by name).
    pub fn has_never_in(&self, dir: &Path) -> bool {
        self.never.iter().any(|n| n.parent() == Some(dir))
    }
}
