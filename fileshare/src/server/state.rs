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
//! - **Places**: every call checks that the nodes and handles it uses are
//!   still inside their export and not under a never-path, wherever the
//!   master's user moved them meanwhile (see `place`).
//! - **Read-only exports** refuse every modification, and opening for write,
//!   with `EROFS`.
//! - **Across exports**: rename and link give `EXDEV`; link needs a
//!   writable export.
//! - **Special files**: only regular files and directories are ever opened
//!   on the master; device nodes cannot be created (`EPERM`).
//! - **Owners and set-id bits**: new nodes belong to the server's user;
//!   owners never change; no set-id bit is ever added (see `modes`).
//! - **Descriptors**: what the server holds for a zombie is charged to its
//!   budget; an open beyond it fails with `EMFILE` (see `budget`, `nodes`).

use std::collections::HashMap;
use std::ffi::{CStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use nix::errno::Errno;
use nix::sys::stat::FileStat;

use super::budget::{Budget, Charge, Listing};
use super::modes;
use super::never::NeverIndex;
use super::nodes::{self, Node, NodeTable};
use super::place::{Checked, Place, Places};
use crate::policy::ExportPolicy;
use crate::proto::{Attr, Entry, ExportInfo, Time};
use crate::sys::{self, SysResult};

/// One export being served.
pub struct Root {
    pub(super) name: String,
    pub(super) read_only: bool,
    pub(super) node: u64,
}

/// An open file.
pub(super) struct OpenFile {
    pub file: Arc<File>,
    /// The node it was opened from, and that node's export.
    pub node: u64,
    pub export: usize,
    pub _charge: Charge,
    /// The last place check of the open file.
    pub checked: Arc<Checked>,
}

/// An open directory: its node and the entries read at open.
pub(super) struct DirHandle {
    pub node: u64,
    pub entries: Arc<Vec<crate::proto::DirEntry>>,
    pub _charge: Charge,
    pub _listing: Listing,
}

/// The state of one [`serve`](super::serve).
pub struct Server {
    pub(super) roots: Vec<Root>,
    nodes: Mutex<NodeTable>,
    pub(super) files: Mutex<HashMap<u64, OpenFile>>,
    pub(super) dirs: Mutex<HashMap<u64, DirHandle>>,
    next_handle: AtomicU64,
    pub(super) never: NeverIndex,
    pub(super) places: Places,
    budget: Arc<Budget>,
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
        // Never wins, also over exports added to the policy's fields later.
        let policy = ExportPolicy {
            zombie: policy.zombie.clone(),
            ..ExportPolicy::new(policy.exports.clone(), policy.never.clone())
        };
        let proc_fds = sys::open_proc_fds().expect("/proc is mounted");
        let budget = Budget::for_zombie(policy.zombie.as_ref());
        let mut nodes = NodeTable::new(budget.clone());
        let mut roots = Vec::new();
        let mut root_paths = Vec::new();
        let mut never = policy.never.clone();
        for (export, name) in policy.exports.iter().zip(policy.names()) {
            let opened = sys::open_root(&export.path).and_then(|fd| {
                let st = sys::stat(fd.as_fd())?;
                let real = sys::fd_path(proc_fds.as_fd(), fd.as_fd())?;
                Ok((fd, st, PathBuf::from(OsString::from_vec(real))))
            });
            let (fd, st, real) = match opened {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("export {} left out: {e}", export.path.display());
                    continue;
                }
            };
            // Never-paths as the kernel names them below this root.
            for n in &policy.never {
                if let Ok(rel) = n.strip_prefix(&export.path) {
                    never.push(real.join(rel));
                }
            }
            let node = nodes.root(roots.len(), fd, &st);
            roots.push(Root {
                name,
                read_only: export.read_only,
                node,
            });
            root_paths.push(real);
        }
        never.sort();
        never.dedup();
        Server {
            roots,
            nodes: Mutex::new(nodes),
            files: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
            never: NeverIndex::build(policy.never.clone()),
            places: Places::new(proc_fds, root_paths, never),
            budget,
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

    /// How many descriptors are charged to the zombie now.
    pub fn descriptors(&self) -> usize {
        self.budget.held()
    }

    pub(super) fn next_handle(&self) -> u64 {
        self.next_handle.fetch_add(1, Ordering::Relaxed)
    }

    /// A node the zombie holds, with a descriptor: cached, else reopened
    /// from its parent by name, else (the master renamed it meanwhile) from
    /// a file the zombie has open of it; `ESTALE` for ids it was never given
    /// and nodes that cannot be found again.
    fn node(&self, id: u64) -> SysResult<Node> {
        let cached = lock(&self.nodes).lookup_cached(id)?;
        let walk = match cached {
            Ok(node) => return Ok(node),
            Err(walk) => walk,
        };
        let opened = match nodes::walk(&walk) {
            Ok(opened) => opened,
            Err(e) => {
                let open = lock(&self.files)
                    .values()
                    .find(|f| f.node == id)
                    .map(|f| f.file.clone())
                    .ok_or(e)?;
                let fd = sys::path_of(self.places.proc_fds(), open.as_fd())?;
                vec![(id, fd)]
            }
        };
        lock(&self.nodes).walked(id, opened)
    }

    /// A node and where it is, refused once it left its export or went
    /// under a never-path.
    pub(super) fn located(&self, id: u64) -> SysResult<(Node, Place)> {
        let node = self.node(id)?;
        let place = self
            .places
            .check_cached(node.export, node.fd.as_fd(), &node.fd.checked)?;
        Ok((node, place))
    }

    /// A directory node and its path on the master.
    pub(super) fn dir(&self, id: u64) -> SysResult<(Node, PathBuf)> {
        let (node, place) = self.located(id)?;
        if !node.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        Ok((node, place.path()?))
    }

    /// `EROFS` for a read-only export.
    pub(super) fn writable(&self, export: usize) -> SysResult<()> {
        if self.roots[export].read_only {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }

    /// Whether `dir/name` is a never-path.
    pub(super) fn is_never_name(&self, dir: &Path, name: &CStr) -> bool {
        self.places.is_never_name(dir, name.to_bytes())
    }

    /// The attributes of the existing, visible entry `parent/name` (the
    /// parent at `dir`).
    pub(super) fn stat_visible(
        &self,
        parent: &Node,
        dir: &Path,
        name: &CStr,
    ) -> SysResult<FileStat> {
        let st = sys::stat_at(parent.fd.as_fd(), name)?;
        if self.is_never_name(dir, name) || self.never.hides(&st) {
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

    /// Resolves `parent/name` (the parent at `dir`) and records the lookup.
    pub(super) fn lookup_name(&self, parent: &Node, dir: &Path, name: &CStr) -> SysResult<Entry> {
        if self.is_never_name(dir, name) {
            return Err(Errno::ENOENT);
        }
        let fd = sys::open_node(parent.fd.as_fd(), name)?;
        let st = sys::stat(fd.as_fd())?;
        if self.never.hides(&st) {
            return Err(Errno::ENOENT);
        }
        let node = lock(&self.nodes).looked_up(parent.export, parent.id, name, fd, &st)?;
        Ok(Entry {
            node,
            attr: attr(&st),
        })
    }

    /// The inode `st` of `export` was renamed through the share to
    /// `parent/name`: re-opening its node goes there now.
    pub(super) fn renamed(&self, export: usize, st: &FileStat, parent: u64, name: &CStr) {
        lock(&self.nodes).renamed((export, st.st_dev, st.st_ino), parent, name);
    }

    /// Gives a new node exactly the permission bits of `mode` without set-id
    /// bits (the master's umask must not narrow them). A set-gid bit a
    /// directory inherited from its parent is kept.
    pub(super) fn settle_new(&self, fd: BorrowedFd<'_>, mode: u32) -> SysResult<()> {
        let st = sys::stat(fd)?;
        let inherited = if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            st.st_mode & libc::S_ISGID
        } else {
            0
        };
        let want = modes::creation_mode(mode) | inherited;
        if st.st_mode & 0o7777 != want {
            sys::chmod(self.places.proc_fds(), fd, want)?;
        }
        Ok(())
    }

    /// One descriptor of the zombie's budget for a new handle: a node's
    /// cached descriptor is closed to make room if need be; `EMFILE` when
    /// the zombie's open handles fill the budget.
    pub(super) fn charge_handle(&self) -> SysResult<Charge> {
        if let Some(charge) = self.budget.try_charge() {
            return Ok(charge);
        }
        while lock(&self.nodes).close_one() {
            if let Some(charge) = self.budget.try_charge() {
                return Ok(charge);
            }
        }
        self.budget.refused("descriptors");
        Err(Errno::EMFILE)
    }

    /// The zombie's budget for a listing of `entries` kept while its
    /// directory is open; `ENOMEM` past the cap.
    pub(super) fn charge_listing(&self, entries: usize) -> SysResult<Listing> {
        self.budget.try_list(entries).ok_or_else(|| {
            self.budget.refused("listed entries");
            Errno::ENOMEM
        })
    }

    /// An open file, refused once it left its export.
    pub(super) fn open_file(&self, fh: u64) -> SysResult<Arc<File>> {
        let (file, export, checked) = lock(&self.files)
            .get(&fh)
            .map(|f| (f.file.clone(), f.export, f.checked.clone()))
            .ok_or(Errno::EBADF)?;
        self.places.check_cached(export, file.as_fd(), &checked)?;
        Ok(file)
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
