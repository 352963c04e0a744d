//! Inodes hidden because they are (also) reachable under a never-path.
//!
//! Serving starts by walking every never-path (never following a symlink)
//! and noting the never-path's own inode and every non-directory inode below
//! it with more than one link. A file in an export is hidden when its inode
//! is in that set, so a hard link cannot carry a never-path file into view.
//!
//! Links made on the master after the walk are caught too: a file with more
//! than one link whose inode changed (`ctime`) after the last walk started,
//! and that has not been checked at its current link count, makes the index
//! walk again before it is shown. Other hard links (between files that are
//! not under a never-path) are served like any file.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::stat::FileStat;

/// The hidden-inode index of one server.
pub struct NeverIndex {
    roots: Vec<PathBuf>,
    state: Mutex<State>,
}

struct State {
    hidden: HashSet<(u64, u64)>,
    /// When the last walk started.
    walked_at: SystemTime,
    /// Linked files checked since: inode → link count then.
    checked: HashMap<(u64, u64), u64>,
}

impl NeverIndex {
    /// Walks the never-paths (those that exist) and builds the index.
    pub fn build(roots: Vec<PathBuf>) -> Self {
        let walked_at = SystemTime::now();
        let hidden = walk(&roots);
        tracing::debug!(
            roots = roots.len(),
            hidden = hidden.len(),
            "never-path index built"
        );
        NeverIndex {
            roots,
            state: Mutex::new(State {
                hidden,
                walked_at,
                checked: HashMap::new(),
            }),
        }
    }

    /// Whether there are no never-paths at all (nothing to check).
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// Whether the inode with these attributes must be hidden.
    pub fn hides(&self, st: &FileStat) -> bool {
        if self.is_empty() {
            return false;
        }
        let key = (st.st_dev, st.st_ino);
        let mut state = self.lock();
        if state.hidden.contains(&key) {
            return true;
        }
        let nlink = st.st_nlink;
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR || nlink <= 1 {
            return false;
        }
        let changed = UNIX_EPOCH
            + Duration::new(
                u64::try_from(st.st_ctime).unwrap_or(0),
                u32::try_from(st.st_ctime_nsec).unwrap_or(0),
            );
        // Timestamps are coarse: treat a change within a second of the walk
        // as after it.
        let seen_by_walk = changed + Duration::from_secs(1) < state.walked_at;
        if seen_by_walk || state.checked.get(&key) == Some(&nlink) {
            return false;
        }
        state.walked_at = SystemTime::now();
        state.hidden = walk(&self.roots);
        state.checked.insert(key, nlink);
        tracing::debug!(
            dev = key.0,
            ino = key.1,
            "linked file changed since the last walk: walked again"
        );
        state.hidden.contains(&key)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn walk(roots: &[PathBuf]) -> HashSet<(u64, u64)> {
    let mut hidden = HashSet::new();
    for root in roots {
        if let Ok(md) = std::fs::symlink_metadata(root) {
            hidden.insert((md.dev(), md.ino()));
            if md.is_dir() {
                walk_dir(root, &mut hidden);
            }
        }
    }
    hidden
}

fn walk_dir(dir: &Path, hidden: &mut HashSet<(u64, u64)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        // DirEntry::metadata does not follow symlinks.
        let Ok(md) = entry.metadata() else { continue };
        if md.is_dir() {
            walk_dir(&entry.path(), hidden);
        } else if md.nlink() > 1 {
            hidden.insert((md.dev(), md.ino()));
        }
    }
}
