//! The server's table of nodes the zombie holds.
//!
//! A node is one inode as reached inside one export, keyed by (export,
//! device, inode): hard links within an export share a node, the same inode
//! in two exports is two nodes (each with its own access). A node lives while
//! the zombie's kernel holds lookups of it, or while a node below it does;
//! the export roots are pinned. Node ids are the inode number when that is
//! free (so `st_ino` on the zombie is the master's), otherwise one from a
//! high range. At most [`MAX_NODES`] are held; lookups beyond fail with
//! `ENFILE`.
//!
//! Descriptors: the zombie's kernel may hold far more nodes than the master
//! may hold descriptors for it, so a node remembers its parent and name and
//! keeps an `O_PATH | O_NOFOLLOW` descriptor only while it is among the
//! [`NODE_FDS`] most recently used (each charged to the zombie's budget).
//! A node without one is opened again from its parent by name — the parent
//! opened the same way if need be, up to a node that has one — and must
//! still be the same (device, inode), or the call fails with `ESTALE` (the
//! zombie's kernel then looks the name up afresh) — unless the zombie has
//! the node open: the server then takes the inode from that open file.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use nix::errno::Errno;
use nix::sys::stat::FileStat;

use super::budget::{Budget, Charge};
use super::place::Checked;

/// Node ids allocated when the inode number is taken or unusable.
const ALLOCATED: u64 = 1 << 63;

/// Node descriptors kept open at most (the least recently used is closed).
pub const NODE_FDS: usize = 512;

/// Nodes one zombie may hold at most (a few hundred bytes each).
pub const MAX_NODES: usize = 1 << 20;

/// Directories between a node and its export root at most.
const MAX_DEPTH: usize = 4096;

/// `(export, st_dev, st_ino)`.
type Key = (usize, u64, u64);

/// A node's `O_PATH` descriptor, what it costs the budget, and where it
/// was last found.
pub struct NodeFd {
    fd: OwnedFd,
    /// `None` for a descriptor held only for one call.
    _charge: Option<Charge>,
    /// The last place check of this descriptor.
    pub checked: Checked,
}

impl AsFd for NodeFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A node as a call uses it.
#[derive(Clone)]
pub struct Node {
    /// Its id.
    pub id: u64,
    /// Index of its export.
    pub export: usize,
    /// Its descriptor (cached, or opened for this call).
    pub fd: Arc<NodeFd>,
    /// `st_mode & S_IFMT`.
    pub kind: u32,
}

impl Node {
    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.kind == libc::S_IFDIR
    }
}

struct Slot {
    key: Key,
    kind: u32,
    /// The directory it was last reached from (0 for an export root).
    parent: u64,
    /// Its name there.
    name: CString,
    lookups: u64,
    pinned: bool,
    /// Nodes whose `parent` is this one.
    children: u64,
    fd: Option<Arc<NodeFd>>,
    /// When it was last used (a tick), while it has a descriptor.
    used: u64,
}

/// How to open a node that has no descriptor now: from `from` (an ancestor
/// that has one), name by name, each checked against its (dev, ino).
pub struct Walk {
    from: Arc<NodeFd>,
    steps: Vec<(u64, CString, u64, u64)>,
}

/// All nodes, by id and by (export, dev, ino).
pub struct NodeTable {
    by_id: HashMap<u64, Slot>,
    by_key: HashMap<Key, u64>,
    /// Nodes with a descriptor that may be closed, by last use.
    recent: BTreeMap<u64, u64>,
    tick: u64,
    next: u64,
    budget: Arc<Budget>,
}

impl NodeTable {
    /// An empty table charging its descriptors to `budget`.
    pub fn new(budget: Arc<Budget>) -> NodeTable {
        NodeTable {
            by_id: HashMap::new(),
            by_key: HashMap::new(),
            recent: BTreeMap::new(),
            tick: 0,
            next: 0,
            budget,
        }
    }

    /// The node if it has a descriptor (`Ok(Ok)`), else the walk that opens
    /// it (`Ok(Err)`); `ESTALE` for an id never handed out (or forgotten).
    pub fn lookup_cached(&mut self, id: u64) -> Result<Result<Node, Walk>, Errno> {
        let slot = self.by_id.get(&id).ok_or(Errno::ESTALE)?;
        if let Some(fd) = &slot.fd {
            let node = Node {
                id,
                export: slot.key.0,
                fd: fd.clone(),
                kind: slot.kind,
            };
            self.touch(id);
            return Ok(Ok(node));
        }
        let mut steps = Vec::new();
        let mut at = id;
        let from = loop {
            let slot = self.by_id.get(&at).ok_or(Errno::ESTALE)?;
            if let Some(fd) = &slot.fd {
                break fd.clone();
            }
            if slot.parent == 0 || steps.len() >= MAX_DEPTH {
                return Err(Errno::ESTALE);
            }
            steps.push((at, slot.name.clone(), slot.key.1, slot.key.2));
            at = slot.parent;
        };
        steps.reverse();
        Ok(Err(Walk { from, steps }))
    }

    /// Keeps the descriptors a walk opened (those of nodes still held and
    /// still without one) and returns the walked node.
    pub fn walked(&mut self, id: u64, opened: Vec<(u64, OwnedFd)>) -> Result<Node, Errno> {
        let mut last = None;
        for (at, fd) in opened {
            let fd = self.keep(at, fd);
            if at == id {
                last = Some(fd);
            }
        }
        let slot = self.by_id.get(&id).ok_or(Errno::ESTALE)?;
        Ok(Node {
            id,
            export: slot.key.0,
            fd: last.ok_or(Errno::ESTALE)?,
            kind: slot.kind,
        })
    }

    /// Records one lookup of the inode `st` reached as `parent/name` (`fd`
    /// opened so), returning its id. A known inode takes the fresh
    /// descriptor and remembers where it was reached last. `ESTALE` when
    /// the parent is no longer held.
    pub fn looked_up(
        &mut self,
        export: usize,
        parent: u64,
        name: &CStr,
        fd: OwnedFd,
        st: &FileStat,
    ) -> Result<u64, Errno> {
        if !self.by_id.contains_key(&parent) {
            return Err(Errno::ESTALE);
        }
        let key = (export, st.st_dev, st.st_ino);
        let id = match self.by_key.get(&key) {
            Some(&id) => {
                self.by_id.get_mut(&id).expect("tables agree").lookups += 1;
                self.reparent(id, parent, name);
                self.drop_fd(id);
                id
            }
            None => self.insert(key, st, parent, name)?,
        };
        self.keep(id, fd);
        Ok(id)
    }

    /// Records an export root, pinned, its descriptor charged even beyond
    /// the cap (a server cannot do without it); returns its id.
    pub fn root(&mut self, export: usize, fd: OwnedFd, st: &FileStat) -> u64 {
        let key = (export, st.st_dev, st.st_ino);
        let id = self.insert(key, st, 0, c"").expect("roots come first");
        let slot = self.by_id.get_mut(&id).expect("just added");
        slot.pinned = true;
        slot.fd = Some(Arc::new(NodeFd {
            fd,
            _charge: Some(self.budget.force_charge()),
            checked: Checked::default(),
        }));
        id
    }

    /// The node of `key` (if held) now is `to_parent/to_name`: renamed
    /// through the share.
    pub fn renamed(&mut self, key: Key, to_parent: u64, to_name: &CStr) {
        if let Some(&id) = self.by_key.get(&key)
            && self.by_id.contains_key(&to_parent)
        {
            self.reparent(id, to_parent, to_name);
        }
    }

    /// Drops `count` lookups of a node; the last one frees it (and parents
    /// that only it kept).
    pub fn forget(&mut self, id: u64, count: u64) {
        let Some(slot) = self.by_id.get_mut(&id) else {
            return;
        };
        slot.lookups = slot.lookups.saturating_sub(count);
        self.release_if_unused(id);
    }

    /// Closes the least recently used node descriptor, giving its charge
    /// back; `false` when none can be closed.
    pub fn close_one(&mut self) -> bool {
        let Some((_, id)) = self.recent.pop_first() else {
            return false;
        };
        if let Some(slot) = self.by_id.get_mut(&id) {
            slot.fd = None;
        }
        true
    }

    /// How many nodes are held.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    fn insert(&mut self, key: Key, st: &FileStat, parent: u64, name: &CStr) -> Result<u64, Errno> {
        if self.by_id.len() >= MAX_NODES {
            return Err(Errno::ENFILE);
        }
        let id = self.new_id(st.st_ino);
        self.by_key.insert(key, id);
        self.by_id.insert(
            id,
            Slot {
                key,
                kind: st.st_mode & libc::S_IFMT,
                parent,
                name: name.to_owned(),
                lookups: 1,
                pinned: false,
                children: 0,
                fd: None,
                used: 0,
            },
        );
        if let Some(p) = self.by_id.get_mut(&parent) {
            p.children += 1;
        }
        Ok(id)
    }

    fn new_id(&mut self, ino: u64) -> u64 {
        if ino > 1 && ino < ALLOCATED && !self.by_id.contains_key(&ino) {
            return ino;
        }
        loop {
            let id = ALLOCATED + self.next;
            self.next += 1;
            if !self.by_id.contains_key(&id) {
                return id;
            }
        }
    }

    fn touch(&mut self, id: u64) {
        let slot = self.by_id.get_mut(&id).expect("held");
        if slot.pinned {
            return;
        }
        self.recent.remove(&slot.used);
        self.tick += 1;
        slot.used = self.tick;
        self.recent.insert(self.tick, id);
    }

    /// Caches `fd` for a node that has none (charging the budget, closing
    /// the least recently used one past [`NODE_FDS`] or when the budget is
    /// spent); returns the descriptor to use for this call.
    fn keep(&mut self, id: u64, fd: OwnedFd) -> Arc<NodeFd> {
        let Some(slot) = self.by_id.get(&id) else {
            return Arc::new(NodeFd {
                fd,
                _charge: None,
                checked: Checked::default(),
            });
        };
        if let Some(cached) = &slot.fd {
            return cached.clone();
        }
        if self.recent.len() >= NODE_FDS {
            self.close_one();
        }
        let charge = self.budget.try_charge().or_else(|| {
            // Open files come first: give one of ours back for this one.
            self.close_one().then(|| self.budget.try_charge()).flatten()
        });
        let fd = Arc::new(NodeFd {
            fd,
            _charge: charge,
            checked: Checked::default(),
        });
        if fd._charge.is_some() {
            self.by_id.get_mut(&id).expect("held").fd = Some(fd.clone());
            self.touch(id);
        }
        fd
    }

    fn drop_fd(&mut self, id: u64) {
        let slot = self.by_id.get_mut(&id).expect("held");
        if slot.pinned {
            return;
        }
        if slot.fd.take().is_some() {
            self.recent.remove(&slot.used);
        }
    }

    /// Remembers `parent/name` as where a node is; the parent must be held.
    /// A parent below the node itself (possible when the master moved
    /// directories around) is not taken: the node keeps its old place.
    fn reparent(&mut self, id: u64, parent: u64, name: &CStr) {
        let slot = &self.by_id[&id];
        if slot.pinned || (slot.parent == parent && slot.name.as_c_str() == name) {
            return;
        }
        let mut at = parent;
        for _ in 0..MAX_DEPTH {
            if at == id {
                return;
            }
            match self.by_id.get(&at) {
                Some(s) if s.parent != 0 => at = s.parent,
                _ => break,
            }
        }
        let slot = self.by_id.get_mut(&id).expect("held");
        let old = std::mem::replace(&mut slot.parent, parent);
        slot.name = name.to_owned();
        if old != parent {
            self.by_id.get_mut(&parent).expect("parent held").children += 1;
            if let Some(p) = self.by_id.get_mut(&old) {
                p.children = p.children.saturating_sub(1);
            }
            self.release_if_unused(old);
        }
    }

    fn release_if_unused(&mut self, mut id: u64) {
        while let Some(slot) = self.by_id.get(&id) {
            if slot.lookups > 0 || slot.children > 0 || slot.pinned {
                return;
            }
            let slot = self.by_id.remove(&id).expect("present");
            self.by_key.remove(&slot.key);
            if slot.fd.is_some() {
                self.recent.remove(&slot.used);
            }
            id = slot.parent;
            match self.by_id.get_mut(&id) {
                Some(parent) => parent.children = parent.children.saturating_sub(1),
                None => return,
            }
        }
    }
}

/// Opens the nodes of a walk, outside the table's lock: each step by name
/// from the one before, and each must be the inode it was.
pub fn walk(walk: &Walk) -> Result<Vec<(u64, OwnedFd)>, Errno> {
    let mut opened: Vec<(u64, OwnedFd)> = Vec::with_capacity(walk.steps.len());
    for (id, name, dev, ino) in &walk.steps {
        let dir = match opened.last() {
            Some((_, fd)) => fd.as_fd(),
            None => walk.from.as_fd(),
        };
        let fd = crate::sys::open_node(dir, name).map_err(|_| Errno::ESTALE)?;
        let st = crate::sys::stat(fd.as_fd())?;
        if (st.st_dev, st.st_ino) != (*dev, *ino) {
            return Err(Errno::ESTALE);
        }
        opened.push((*id, fd));
    }
    Ok(opened)
}
