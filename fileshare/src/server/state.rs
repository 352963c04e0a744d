//! The server's state and the policy checks every call goes through.
//!
//! - **Resolution.** A name is resolved one component at a time relative to
//!   its parent node's descriptor (`openat(parent, name, O_PATH|O_NOFOLLOW)`);
//!   names with `/`, `.` and `..` are refused (`EINVAL`), so nothing above an
//!   export root is reachable. The server never follows a symlink, neither
//!   while resolving nor while operating: `readlink` returns the link's text
//!   and the zombie's kernel resolves it in the zombie's own namespace.
//! - **Never-paths** are hidden inside exports: lookup gives `ENOENT`,
//!   readdir omits them, and nothing can be created, renamed or linked onto
//!   them (`EACCES`). Inodes also reachable under a never-path are hidden the
//!   same way (see `never`).
//! - **Read-only exports** refuse every modification, and opening for write,
//!   with `EROFS`.
//! - **Across exports**: rename and link give `EXDEV`; link needs a
//!   writable export.
//! - **Special files**: only regular files and directories are ever opened
//!   on the master; device nodes cannot be created (`EPERM`).
//! - **Owners**: when the server runs as root, new nodes get the caller's
//!   uid and gid (numerically; one user on both machines), else the server's.

use std::collections::HashMap;
use std::ffi::{CStr, OsStr};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use nix::errno::Errno;
use nix::sys::stat::FileStat;

use super::never::NeverIndex;
use super::nodes::{Node, NodeTable};
use crate::policy::ExportPolicy;
use crate::proto::{Attr, Entry, ExportInfo, Op, Owner, Time};
use crate::sys::{self, SysResult};

/// One export being served.
pub struct Root {
    pub(super) name: String,
    pub(super) read_only: bool,
    /// Never-paths inside it, relative to its root.
    pub(super) never: Vec<PathBuf>,
    pub(super) node: u64,
}

/// An open file.
pub(super) struct OpenFile {
    pub file: Arc<File>,
    /// The node it was opened from.
    pub node: u64,
}

/// An open directory: its node and the entries read at open.
pub(super) struct DirHandle {
    pub fd: Arc<OwnedFd>,
    pub entries: Arc<Vec<crate::proto::DirEntry>>,
}

/// The state of one [`serve`](super::serve).
pub struct Server {
    pub(super) roots: Vec<Root>,
    nodes: Mutex<NodeTable>,
    pub(super) files: Mutex<HashMap<u64, OpenFile>>,
    pub(super) dirs: Mutex<HashMap<u64, DirHandle>>,
    next_handle: AtomicU64,
    pub(super) never: NeverIndex,
    pub(super) proc_fds: OwnedFd,
    pub(super) as_root: bool,
}

/// Locks, ignoring poisoning (the tables stay consistent under each lock).
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Server {
    /// Opens the export roots and indexes the never-paths. Exports that
    /// cannot be opened are left out with a warning.
    pub fn new(policy: &ExportPolicy) -> Server {
        sys::raise_fd_limit();
        let policy = ExportPolicy::new(policy.exports.clone(), policy.never.clone());
        let proc_fds = sys::open_proc_fds().expect("/proc is mounted");
        let mut nodes = NodeTable::default();
        let mut roots = Vec::new();
        for (export, name) in policy.exports.iter().zip(policy.names()) {
            let opened =
                sys::open_root(&export.path).and_then(|fd| Ok((sys::stat(fd.as_fd())?, fd)));
            let (st, fd) = match opened {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("export {} left out: {e}", export.path.display());
                    continue;
                }
            };
            let never = policy
                .never
                .iter()
                .filter_map(|n| n.strip_prefix(&export.path).ok())
                .filter(|rel| !rel.as_os_str().is_empty())
                .map(Path::to_path_buf)
                .collect();
            let node = nodes.looked_up(roots.len(), fd, &st, Some(PathBuf::new()), true);
            roots.push(Root {
                name,
                read_only: export.read_only,
                never,
                node,
            });
        }
        Server {
            roots,
            nodes: Mutex::new(nodes),
            files: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
            never: NeverIndex::build(policy.never.clone()),
            proc_fds,
            as_root: sys::is_root(),
        }
    }

    /// The exports as the zombie sees them.
    pub fn export_infos(&self) -> Vec<ExportInfo> {
        self.roots
            .iter()
            .map(|r| ExportInfo {
                name: r.name.clone(),
                node: r.node,
                read_only: r.read_only,
            })
            .collect()
    }

    /// Runs one call.
    pub fn handle(&self, op: Op) -> SysResult<crate::proto::Answer> {
        match op {
            Op::Lookup { parent, name } => self.lookup(parent, &name).map(Into::into),
            Op::GetAttr { node } => self.getattr(node),
            Op::SetAttr { node, fh, set } => self.setattr(node, fh, &set),
            Op::ReadLink { node } => self.readlink(node),
            Op::Mknod {
                parent,
                name,
                mode,
                rdev,
                owner,
            } => self.mknod(parent, &name, mode, rdev, owner),
            Op::Mkdir {
                parent,
                name,
                mode,
                owner,
            } => self.mkdir(parent, &name, mode, owner),
            Op::Symlink {
                parent,
                name,
                target,
                owner,
            } => self.symlink(parent, &name, &target, owner),
            Op::Link { node, parent, name } => self.link(node, parent, &name),
            Op::Unlink { parent, name } => self.unlink(parent, &name, false),
            Op::Rmdir { parent, name } => self.unlink(parent, &name, true),
            Op::Rename {
                parent,
                name,
                new_parent,
                new_name,
                flags,
            } => self.rename(parent, &name, new_parent, &new_name, flags),
            Op::Open { node, flags } => self.open(node, flags),
            Op::Create {
                parent,
                name,
                mode,
                flags,
                owner,
            } => self.create(parent, &name, mode, flags, owner),
            Op::Read { fh, offset, size } => self.read(fh, offset, size),
            Op::Write { fh, offset, data } => self.write(fh, offset, &data),
            Op::Release { fh } => self.release(fh),
            Op::Fsync { fh, datasync } => self.fsync(fh, datasync),
            Op::OpenDir { node } => self.opendir(node),
            Op::ReadDir { fh, offset } => self.readdir(fh, offset),
            Op::ReleaseDir { fh } => self.releasedir(fh),
            Op::FsyncDir { fh, datasync } => self.fsyncdir(fh, datasync),
            Op::StatFs { node } => self.statfs(node),
            Op::Fallocate {
                fh,
                offset,
                length,
                mode,
            } => self.fallocate(fh, offset, length, mode),
            Op::Lseek { fh, offset, whence } => self.lseek(fh, offset, whence),
        }
    }

    /// Drops lookups the zombie's kernel forgot.
    pub fn forget(&self, nodes: &[(u64, u64)]) {
        let mut table = lock(&self.nodes);
        for &(id, count) in nodes {
            table.forget(id, count);
        }
    }

    /// How many nodes the zombie holds (for tests and logs).
    pub fn node_count(&self) -> usize {
        lock(&self.nodes).len()
    }

    pub(super) fn next_handle(&self) -> u64 {
        self.next_handle.fetch_add(1, Ordering::Relaxed)
    }

    /// A node the zombie holds; `ESTALE` for ids it was never given.
    pub(super) fn node(&self, id: u64) -> SysResult<Node> {
        lock(&self.nodes).get(id).ok_or(Errno::ESTALE)
    }

    /// A directory node.
    pub(super) fn dir(&self, id: u64) -> SysResult<Node> {
        let node = self.node(id)?;
        if node.is_dir() {
            Ok(node)
        } else {
            Err(Errno::ENOTDIR)
        }
    }

    /// `EROFS` for a read-only export.
    pub(super) fn writable(&self, export: usize) -> SysResult<()> {
        if self.roots[export].read_only {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }

    /// Whether `parent/name` is a never-path of the parent's export.
    pub(super) fn is_never_name(&self, parent: &Node, name: &CStr) -> bool {
        let never = &self.roots[parent.export].never;
        !never.is_empty()
            && parent.rel.as_ref().is_some_and(|rel| {
                let path = rel.join(OsStr::from_bytes(name.to_bytes()));
                never.contains(&path)
            })
    }

    /// Whether the entry `parent/name` with attributes `st` is hidden.
    pub(super) fn hidden(&self, parent: &Node, name: &CStr, st: &FileStat) -> bool {
        self.is_never_name(parent, name) || self.never.hides(st)
    }

    /// The attributes of the existing, visible entry `parent/name`.
    pub(super) fn stat_visible(&self, parent: &Node, name: &CStr) -> SysResult<FileStat> {
        let st = sys::stat_at(parent.fd.as_fd(), name)?;
        if self.hidden(parent, name, &st) {
            return Err(Errno::ENOENT);
        }
        Ok(st)
    }

    /// The attributes of a node, `ENOENT` once it is hidden.
    pub(super) fn stat_node(&self, node: &Node) -> SysResult<FileStat> {
        let st = sys::stat(node.fd.as_fd())?;
        if self.never.hides(&st) {
            return Err(Errno::ENOENT);
        }
        Ok(st)
    }

    /// Resolves `parent/name` and records the lookup.
    pub(super) fn lookup_name(&self, parent: &Node, name: &CStr) -> SysResult<Entry> {
        if self.is_never_name(parent, name) {
            return Err(Errno::ENOENT);
        }
        let fd = sys::open_node(parent.fd.as_fd(), name)?;
        let st = sys::stat(fd.as_fd())?;
        if self.never.hides(&st) {
            return Err(Errno::ENOENT);
        }
        let rel = (st.st_mode & libc::S_IFMT == libc::S_IFDIR).then(|| {
            parent
                .rel
                .clone()
                .unwrap_or_default()
                .join(OsStr::from_bytes(name.to_bytes()))
        });
        let node = lock(&self.nodes).looked_up(parent.export, fd, &st, rel, false);
        Ok(Entry {
            node,
            attr: attr(&st),
        })
    }

    /// A directory node moved: updates the paths the table remembers.
    pub(super) fn moved(&self, export: usize, from: &Path, to: &Path) {
        lock(&self.nodes).moved(export, from, to);
    }

    /// Gives a new node the caller's owner (when root) and exactly `mode`'s
    /// permission bits (the master's umask must not narrow them). A set-gid
    /// bit inherited from the parent directory is kept.
    pub(super) fn settle_new(
        &self,
        fd: BorrowedFd<'_>,
        owner: Owner,
        mode: Option<u32>,
    ) -> SysResult<()> {
        if self.as_root {
            sys::chown(fd, Some(owner.uid), Some(owner.gid))?;
        }
        if let Some(mode) = mode {
            let st = sys::stat(fd)?;
            let want = (mode & 0o7777)
                | (st.st_mode
                    & libc::S_ISGID
                    & if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                        !0
                    } else {
                        0
                    });
            if st.st_mode & 0o7777 != want {
                sys::chmod(self.proc_fds.as_fd(), fd, want)?;
            }
        }
        Ok(())
    }

    pub(super) fn open_file(&self, fh: u64) -> SysResult<Arc<File>> {
        lock(&self.files)
            .get(&fh)
            .map(|f| f.file.clone())
            .ok_or(Errno::EBADF)
    }

    /// An open file of this node (`EBADF` for another node's handle).
    pub(super) fn open_file_of(&self, fh: u64, node: u64) -> SysResult<Arc<File>> {
        match lock(&self.files).get(&fh) {
            Some(f) if f.node == node => Ok(f.file.clone()),
            _ => Err(Errno::EBADF),
        }
    }
}

fn time(secs: i64, nanos: i64) -> Time {
    Time {
        secs,
        nanos: u32::try_from(nanos).unwrap_or(0),
    }
}

/// Attributes for the wire.
pub(super) fn attr(st: &FileStat) -> Attr {
    Attr {
        size: u64::try_from(st.st_size).unwrap_or(0),
        blocks: u64::try_from(st.st_blocks).unwrap_or(0),
        atime: time(st.st_atime, st.st_atime_nsec),
        mtime: time(st.st_mtime, st.st_mtime_nsec),
        ctime: time(st.st_ctime, st.st_ctime_nsec),
        mode: st.st_mode,
        nlink: u32::try_from(st.st_nlink).unwrap_or(u32::MAX),
        uid: st.st_uid,
        gid: st.st_gid,
        rdev: st.st_rdev,
        blksize: u32::try_from(st.st_blksize).unwrap_or(4096),
    }
}

impl From<Entry> for crate::proto::Answer {
    fn from(e: Entry) -> Self {
        crate::proto::Answer::Entry(e)
    }
}
