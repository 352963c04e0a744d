//! The server's table of nodes the zombie holds.
//!
//! A node is an `O_PATH` descriptor of one inode as reached inside one export,
//! keyed by (export, device, inode): hard links within an export share a
//! node, the same inode in two exports is two nodes (each with its own
//! access). A node lives while the zombie's kernel holds lookups of it; the
//! export roots are pinned. Node ids are the inode number when that is free
//! (so `st_ino` on the zombie is the master's), otherwise one from a high
//! range.
//!
//! Directory nodes remember their path relative to the export root, to
//! recognise never-paths by name; renames through the share update it, and
//! every lookup refreshes it.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::sys::stat::FileStat;

/// Node ids allocated when the inode number is taken or unusable.
const ALLOCATED: u64 = 1 << 63;

/// What the server knows of a node.
#[derive(Clone)]
pub struct Node {
    /// Index of its export.
    pub export: usize,
    /// `O_PATH | O_NOFOLLOW` descriptor of the inode.
    pub fd: Arc<OwnedFd>,
    /// `st_mode & S_IFMT`.
    pub kind: u32,
    /// For directories: the path below the export root (empty for the root).
    pub rel: Option<PathBuf>,
}

impl Node {
    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.kind == libc::S_IFDIR
    }
}

struct Slot {
    node: Node,
    key: (usize, u64, u64),
    lookups: u64,
    pinned: bool,
}

/// All nodes, by id and by (export, dev, ino).
#[derive(Default)]
pub struct NodeTable {
    by_id: HashMap<u64, Slot>,
    by_key: HashMap<(usize, u64, u64), u64>,
    next: u64,
}

impl NodeTable {
    /// The node with this id.
    pub fn get(&self, id: u64) -> Option<Node> {
        self.by_id.get(&id).map(|s| s.node.clone())
    }

    /// Records one lookup of an inode reached in `export` (as `fd`, with
    /// `st`), returning its id. A known inode keeps its descriptor.
    pub fn looked_up(
        &mut self,
        export: usize,
        fd: OwnedFd,
        st: &FileStat,
        rel: Option<PathBuf>,
        pinned: bool,
    ) -> u64 {
        let key = (export, st.st_dev, st.st_ino);
        if let Some(&id) = self.by_key.get(&key) {
            let slot = self.by_id.get_mut(&id).expect("tables agree");
            slot.lookups += 1;
            if rel.is_some() {
                slot.node.rel = rel;
            }
            return id;
        }
        let id = if st.st_ino > 1 && st.st_ino < ALLOCATED && !self.by_id.contains_key(&st.st_ino) {
            st.st_ino
        } else {
            loop {
                let id = ALLOCATED + self.next;
                self.next += 1;
                if !self.by_id.contains_key(&id) {
                    break id;
                }
            }
        };
        self.by_key.insert(key, id);
        self.by_id.insert(
            id,
            Slot {
                node: Node {
                    export,
                    fd: Arc::new(fd),
                    kind: st.st_mode & libc::S_IFMT,
                    rel,
                },
                key,
                lookups: 1,
                pinned,
            },
        );
        id
    }

    /// Drops `count` lookups of a node; the last one frees it.
    pub fn forget(&mut self, id: u64, count: u64) {
        let Some(slot) = self.by_id.get_mut(&id) else {
            return;
        };
        slot.lookups = slot.lookups.saturating_sub(count);
        if slot.lookups == 0 && !slot.pinned {
            let key = slot.key;
            self.by_id.remove(&id);
            self.by_key.remove(&key);
        }
    }

    /// A directory of `export` moved from `from` to `to` (relative paths):
    /// updates it and every directory below it.
    pub fn moved(&mut self, export: usize, from: &Path, to: &Path) {
        for slot in self.by_id.values_mut() {
            if slot.node.export != export {
                continue;
            }
            if let Some(rel) = &slot.node.rel
                && let Ok(rest) = rel.strip_prefix(from)
            {
                slot.node.rel = Some(to.join(rest));
            }
        }
    }

    /// How many nodes are held.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }
}
