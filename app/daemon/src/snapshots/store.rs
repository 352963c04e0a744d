//! The snapshots on disk: `HOME/snapshots/task-<id>/` (0700), one file per snapshot,
//! `NNNN-<name>.zpod` (`NNNN.zpod` unnamed; 0600), and `index.json` (0600): every snapshot's
//! number, name, time, kind (`whole`, or `delta` over its parent), sizes and stop time.
//! Each file and the index are written to a `.part` file and renamed into place, so a crash
//! leaves the last complete state. Nothing here is swept at the daemon's start: snapshots
//! outlive the daemon and the machine's restarts (`zos snapshots --prune` removes those of
//! tasks the master no longer has).

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zos_netproto::control::SnapshotInfo;

use crate::error::{DaemonError, Result};

/// `kind` of a snapshot holding the whole pod.
pub const WHOLE: &str = "whole";
/// `kind` of a snapshot holding only what changed since its parent.
pub const DELTA: &str = "delta";
/// The longest snapshot name.
const MAX_NAME: usize = 64;
/// The most snapshots one task may have (the rolling set stays far below).
pub const MAX_SNAPSHOTS: usize = 4096;
/// The largest index file read.
const MAX_INDEX_BYTES: u64 = 4 << 20;

/// A task's index file.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Index {
    /// The number the next snapshot gets.
    pub next: u32,
    /// The task's command (to tell what a directory is about once the task is gone).
    #[serde(default)]
    pub command: Vec<String>,
    /// The snapshots, oldest first.
    pub snapshots: Vec<Entry>,
    /// The task's `--every` schedule, armed again when a daemon starts (seconds, kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<(u64, u32)>,
}

/// One snapshot in the index.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    /// What `zos snapshots` shows.
    #[serde(flatten)]
    pub info: SnapshotInfo,
    /// Its file's name in the task's directory.
    pub file: String,
}

impl Index {
    /// The snapshot `what` names: its number, else its name.
    pub fn find(&self, what: &str) -> Option<&Entry> {
        match what.parse::<u32>() {
            Ok(id) => self.snapshots.iter().find(|e| e.info.id == id),
            Err(_) => self
                .snapshots
                .iter()
                .find(|e| e.info.name.as_deref() == Some(what)),
        }
    }

    /// The chain that restores snapshot `id`: its whole ancestor first, `id` last.
    pub fn chain(&self, id: u32) -> Result<Vec<&Entry>> {
        let mut out = Vec::new();
        let mut at = Some(id);
        while let Some(id) = at {
            let e = self
                .snapshots
                .iter()
                .find(|e| e.info.id == id)
                .ok_or_else(|| DaemonError::User(format!("snapshot {id} is missing")))?;
            if out.len() > self.snapshots.len() {
                return Err(DaemonError::User("the snapshot index loops".into()));
            }
            out.push(e);
            at = if e.info.kind == WHOLE {
                None
            } else {
                Some(e.info.parent.ok_or_else(|| {
                    DaemonError::User(format!("delta snapshot {id} names no parent"))
                })?)
            };
        }
        out.reverse();
        Ok(out)
    }

    /// The snapshots since the newest whole one, that one included.
    pub fn open_chain_len(&self) -> usize {
        self.snapshots
            .iter()
            .rev()
            .position(|e| e.info.kind == WHOLE)
            .map_or(0, |p| p + 1)
    }
}

/// Whether `name` may name a snapshot: 1–64 of `A-Z a-z 0-9 . _ -`, not starting with `.`
/// or `-`, not all digits (a number names a snapshot by its id).
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !name.starts_with(['.', '-'])
        && !name.bytes().all(|b| b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(DaemonError::User(format!(
            "{name:?} cannot name a snapshot: use 1–{MAX_NAME} letters, digits, '.', '_' or '-', not all digits, not starting with '.' or '-'"
        )))
    }
}

/// The snapshot directory of a master.
pub struct Store {
    dir: PathBuf,
}

/// A snapshot file being written.
pub struct Pending {
    part: PathBuf,
    dest: PathBuf,
    /// The snapshot's number.
    pub id: u32,
    /// Its file name.
    pub file: String,
    done: bool,
}

impl Store {
    /// The store under `home` (`HOME/snapshots`, made on first use).
    pub fn new(home: &Path) -> Store {
        Store {
            dir: home.join("snapshots"),
        }
    }

    /// `HOME/snapshots`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Task `task`'s directory.
    pub fn task_dir(&self, task: u64) -> PathBuf {
        self.dir.join(format!("task-{task}"))
    }

    /// Task `task`'s index (empty if it has none).
    pub fn load(&self, task: u64) -> Result<Index> {
        let path = self.task_dir(task).join("index.json");
        let text = match read_private(&path, MAX_INDEX_BYTES) {
            Ok(t) => t,
            Err(DaemonError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(Index {
                    next: 1,
                    ..Default::default()
                });
            }
            Err(e) => return Err(e),
        };
        serde_json::from_slice(&text).map_err(|e| {
            DaemonError::User(format!("{} is not a snapshot index: {e}", path.display()))
        })
    }

    /// Writes task `task`'s index (to a `.part` file, renamed over the old one), making its
    /// directory (0700) if it has none yet (a schedule set before the first snapshot).
    pub fn save(&self, task: u64, index: &Index) -> Result<()> {
        crate::paths::make_private_dir(&self.dir)?;
        let dir = self.task_dir(task);
        crate::paths::make_private_dir(&dir)?;
        let text = serde_json::to_vec_pretty(index).expect("an index serialises");
        write_replacing(&dir.join("index.json"), &text)
    }

    /// A new snapshot file for task `task` (numbered by `index`, named `name`), 0600,
    /// created afresh as a `.part` file.
    pub fn create(&self, task: u64, index: &Index, name: Option<&str>) -> Result<(File, Pending)> {
        if index.snapshots.len() >= MAX_SNAPSHOTS {
            return Err(DaemonError::User(format!(
                "task {task} has {MAX_SNAPSHOTS} snapshots: remove some first"
            )));
        }
        if let Some(name) = name {
            check_name(name)?;
            if index.find(name).is_some() {
                return Err(DaemonError::User(format!(
                    "task {task} has a snapshot named {name:?} already"
                )));
            }
        }
        crate::paths::make_private_dir(&self.dir)?;
        let dir = self.task_dir(task);
        crate::paths::make_private_dir(&dir)?;
        let id = index.next.max(1);
        let file = match name {
            Some(n) => format!("{id:04}-{n}.zpod"),
            None => format!("{id:04}.zpod"),
        };
        let part = dir.join(format!(".{file}.part"));
        let _ = std::fs::remove_file(&part);
        let f = create_private(&part)?;
        Ok((
            f,
            Pending {
                part,
                dest: dir.join(&file),
                id,
                file,
                done: false,
            },
        ))
    }

    /// Reads the files of `chain` (from [`Index::chain`]) of task `task`.
    pub fn read_chain(&self, task: u64, chain: &[&Entry]) -> Result<Vec<Vec<u8>>> {
        let dir = self.task_dir(task);
        chain
            .iter()
            .map(|e| {
                if e.file.contains('/') || e.file.starts_with('.') {
                    return Err(DaemonError::User(format!(
                        "snapshot {}: bad file name {:?}",
                        e.info.id, e.file
                    )));
                }
                read_private(&dir.join(&e.file), u64::MAX)
            })
            .collect()
    }

    /// Removes snapshot files of task `task` (by name); bytes freed.
    pub fn remove_files(&self, task: u64, files: &[String]) -> u64 {
        let dir = self.task_dir(task);
        let mut freed = 0;
        for f in files {
            let path = dir.join(f);
            let size = std::fs::symlink_metadata(&path).map_or(0, |m| m.len());
            if std::fs::remove_file(&path).is_ok() {
                freed += size;
            }
        }
        freed
    }

    /// The tasks that have a snapshot directory.
    pub fn tasks_on_disk(&self) -> Vec<u64> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out: Vec<u64> = entries
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_prefix("task-")?
                    .parse::<u64>()
                    .ok()
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// Removes task `task`'s directory; bytes freed.
    pub fn remove_task(&self, task: u64) -> Result<u64> {
        let dir = self.task_dir(task);
        let md = std::fs::symlink_metadata(&dir)
            .map_err(|e| DaemonError::io(format!("stat {}", dir.display()), e))?;
        if !md.is_dir() || md.uid() != nix::unistd::geteuid().as_raw() {
            return Err(DaemonError::User(format!(
                "{} is not a snapshot directory of ours",
                dir.display()
            )));
        }
        let freed = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0);
        std::fs::remove_dir_all(&dir)
            .map_err(|e| DaemonError::io(format!("remove {}", dir.display()), e))?;
        Ok(freed)
    }
}

impl Pending {
    /// The snapshot's file is complete (and synced): it takes its name.
    pub fn keep(mut self) -> Result<()> {
        std::fs::rename(&self.part, &self.dest)
            .map_err(|e| DaemonError::io(format!("keep {}", self.dest.display()), e))?;
        self.done = true;
        Ok(())
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.part);
        }
    }
}

/// Creates `path` afresh, 0600, not following a symbolic link.
pub fn create_private(path: &Path) -> Result<File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| DaemonError::io(format!("create {}", path.display()), e))
}

/// Writes `bytes` to `path` through a `.part` file renamed over it (synced first).
pub fn write_replacing(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let part = path.with_file_name(format!(".{name}.part"));
    let _ = std::fs::remove_file(&part);
    let mut f = create_private(&part)?;
    let written = f.write_all(bytes).and_then(|()| f.sync_all());
    if let Err(e) = written.and_then(|()| std::fs::rename(&part, path)) {
        let _ = std::fs::remove_file(&part);
        return Err(DaemonError::io(format!("write {}", path.display()), e));
    }
    Ok(())
}

/// Reads a regular file of ours that only we may read or write (at most `limit` bytes).
pub fn read_private(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| DaemonError::io(format!("open {}", path.display()), e))?;
    let md = f
        .metadata()
        .map_err(|e| DaemonError::io(format!("stat {}", path.display()), e))?;
    if !md.is_file() || md.uid() != nix::unistd::geteuid().as_raw() || md.mode() & 0o077 != 0 {
        return Err(DaemonError::User(format!(
            "{} is not a private file of ours",
            path.display()
        )));
    }
    if md.len() > limit {
        return Err(DaemonError::User(format!(
            "{} is too large ({} bytes)",
            path.display(),
            md.len()
        )));
    }
    let mut out = Vec::with_capacity(md.len() as usize);
    f.read_to_end(&mut out)
        .map_err(|e| DaemonError::io(format!("read {}", path.display()), e))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u32, kind: &str, parent: Option<u32>) -> Entry {
        Entry {
            info: SnapshotInfo {
                id,
                kind: kind.into(),
                parent,
                ..Default::default()
            },
            file: format!("{id:04}.zpod"),
        }
    }

    #[test]
    fn a_chain_runs_from_the_whole_snapshot_to_the_one_asked_for() {
        let index = Index {
            next: 5,
            command: vec![],
            schedule: None,
            snapshots: vec![
                entry(1, WHOLE, None),
                entry(2, DELTA, Some(1)),
                entry(3, WHOLE, None),
                entry(4, DELTA, Some(3)),
            ],
        };
        let ids = |id| -> Vec<u32> { index.chain(id).unwrap().iter().map(|e| e.info.id).collect() };
        assert_eq!(ids(2), vec![1, 2]);
        assert_eq!(ids(4), vec![3, 4]);
        assert_eq!(ids(3), vec![3]);
        assert_eq!(index.open_chain_len(), 2);
        assert!(index.chain(9).is_err());
    }

    #[test]
    fn names_are_checked() {
        for good in ["before-upgrade", "v1.2", "a_b"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "12", ".x", "-x", "a/b", "a b", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn files_are_private_and_written_whole() {
        let home = std::env::temp_dir().join(format!("zos-snapstore-{}", std::process::id()));
        std::fs::create_dir_all(&home).unwrap();
        let store = Store::new(&home);
        let index = store.load(7).unwrap();
        assert_eq!(index.next, 1);
        let (mut f, pending) = store.create(7, &index, Some("first")).unwrap();
        std::io::Write::write_all(&mut f, b"image").unwrap();
        assert_eq!(pending.file, "0001-first.zpod");
        pending.keep().unwrap();
        let (_, unfinished) = store.create(7, &index, None).unwrap();
        drop(unfinished);
        let names: Vec<String> = std::fs::read_dir(store.task_dir(7))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["0001-first.zpod".to_string()]);
        let md = std::fs::metadata(store.task_dir(7).join("0001-first.zpod")).unwrap();
        assert_eq!(md.mode() & 0o777, 0o600);
        let md = std::fs::metadata(store.task_dir(7)).unwrap();
        assert_eq!(md.mode() & 0o777, 0o700);
        assert_eq!(store.tasks_on_disk(), vec![7]);
        let _ = std::fs::remove_dir_all(&home);
    }
}
