//! What a host holds on disk, in its mount table and in its process tree,
//! to compare before domination and after release ("nothing stays behind").

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// One entry of a file tree: its type, mode, size and (for small regular
/// files) a digest of its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    kind: char,
    mode: u32,
    size: u64,
    digest: Option<u64>,
}

/// Every entry under some roots, by path.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Tree(pub BTreeMap<PathBuf, Entry>);

/// Files up to this size are compared by content too.
const DIGEST_LIMIT: u64 = 1 << 20;

impl Tree {
    /// Walks `roots` (not following symlinks, not crossing into `skip`).
    pub fn of(roots: &[&Path], skip: &[&Path]) -> Tree {
        let mut tree = Tree::default();
        for root in roots {
            walk(root, skip, &mut tree.0);
        }
        tree
    }

    /// The differences from `before`, one line each ("+ path", "- path",
    /// "~ path: before → after").
    pub fn diff(&self, before: &Tree) -> Vec<String> {
        let mut out = Vec::new();
        for (path, entry) in &self.0 {
            match before.0.get(path) {
                None => out.push(format!("+ {}", path.display())),
                Some(old) if old != entry => {
                    out.push(format!("~ {}: {old:?} → {entry:?}", path.display()))
                }
                Some(_) => {}
            }
        }
        for path in before.0.keys() {
            if !self.0.contains_key(path) {
                out.push(format!("- {}", path.display()));
            }
        }
        out
    }
}

fn walk(path: &Path, skip: &[&Path], out: &mut BTreeMap<PathBuf, Entry>) {
    if skip.contains(&path) {
        return;
    }
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    let ft = meta.file_type();
    let kind = if ft.is_dir() {
        'd'
    } else if ft.is_symlink() {
        'l'
    } else if ft.is_file() {
        'f'
    } else {
        'o'
    };
    let digest = (kind == 'f' && meta.size() <= DIGEST_LIMIT)
        .then(|| std::fs::read(path).ok().map(|b| fnv(&b)))
        .flatten();
    out.insert(
        path.to_path_buf(),
        Entry {
            kind,
            mode: meta.mode(),
            // A directory's size says little and changes with its history.
            size: if kind == 'd' { 0 } else { meta.size() },
            digest,
        },
    );
    if kind == 'd'
        && let Ok(entries) = std::fs::read_dir(path)
    {
        for e in entries.flatten() {
            walk(&e.path(), skip, out);
        }
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// The mount points seen by process `pid` (its mount namespace).
pub fn mounts(pid: i32) -> Vec<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default();
    let mut points: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4).map(str::to_string))
        // Network namespace handles: any `ip netns add` on the machine (other
        // tests running beside this one) shows up here; not the zombie's.
        .filter(|p| !p.starts_with("/run/netns/"))
        .collect();
    points.sort();
    points
}

/// The descendants of process `pid`, as "pid comm" lines.
pub fn descendants(pid: i32) -> Vec<String> {
    let mut parents: BTreeMap<i32, Vec<(i32, String)>> = BTreeMap::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let Some((left, right)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = left.split_once('(').map(|x| x.1).unwrap_or("").to_string();
        let ppid = right
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        parents.entry(ppid).or_default().push((p, comm));
    }
    let mut out = Vec::new();
    let mut stack = vec![pid];
    while let Some(p) = stack.pop() {
        for (child, comm) in parents.get(&p).cloned().unwrap_or_default() {
            out.push(format!("{child} {comm}"));
            stack.push(child);
        }
    }
    out.sort();
    out
}
