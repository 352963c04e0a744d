//! Executables and libraries by content: the files a pod maps, their SHA-256 (cached by
//! device, inode, size and times), and the store of files that travelled
//! (`RUNTIME/migrants/<task>/files/<sha256>`).
//!
//! Paths are the pod's: a file is opened inside the pod's root (`/proc/INIT/root`) with
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, so a symbolic link the task made can
//! never lead the daemon to one of its own files.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use zos_netproto::migration::{Executable, sha_hex};

use crate::error::{DaemonError, Result};

/// Entries the hash cache keeps before it starts over.
const CACHE_ENTRIES: usize = 8192;

/// Host PIDs of the pod whose init is `root` and of all its descendants.
pub fn pod_pids(root: i32) -> Vec<i32> {
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() && out.len() < 100_000 {
        let pid = out[i];
        i += 1;
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(t.path().join("children")) {
                out.extend(
                    text.split_whitespace()
                        .filter_map(|p| p.parse::<i32>().ok()),
                );
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The pod's resident memory (the sum over its processes; shared pages counted once per
/// process): about how large its image will be.
pub fn pod_resident_bytes(root: i32) -> u64 {
    pod_pids(root)
        .iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/statm")).ok())
        .filter_map(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum::<u64>()
        * 4096
}

/// Paths (in the pod's view) of every file the pod's processes map, and their executables.
pub fn mapped_paths(root: i32) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for pid in pod_pids(root) {
        if let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) {
            for line in maps.lines() {
                let mut f = line.split_ascii_whitespace();
                let inode = f.nth(4).and_then(|i| i.parse::<u64>().ok()).unwrap_or(0);
                let path = f.collect::<Vec<_>>().join(" ");
                if inode != 0 && path.starts_with('/') && !path.ends_with(" (deleted)") {
                    out.insert(path);
                }
            }
        }
        if let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe"))
            && let Some(exe) = exe.to_str()
            && exe.starts_with('/')
            && !exe.ends_with(" (deleted)")
        {
            out.insert(exe.to_string());
        }
    }
    out
}

/// Whether `path` is `dir` or lies below it.
pub fn is_under(path: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    path == dir || (path.starts_with(dir) && path.as_bytes().get(dir.len()) == Some(&b'/'))
}

/// Opens `path` read-only inside the root of process `root`, never leaving that root.
pub fn open_in_pod(root: i32, path: &str) -> std::io::Result<File> {
    let dir = File::open(format!("/proc/{root}/root"))?;
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = nix::fcntl::openat2(&dir, path, how).map_err(std::io::Error::from)?;
    Ok(File::from(fd))
}

/// SHA-256 of files, remembered by (device, inode, size, mtime, ctime).
#[derive(Default)]
pub struct HashCache {
    map: Mutex<HashMap<[i64; 7], [u8; 32]>>,
}

impl HashCache {
    /// The SHA-256 and size of the regular file `file`.
    pub fn hash(&self, file: &mut File) -> std::io::Result<([u8; 32], u64)> {
        let md = file.metadata()?;
        if !md.is_file() {
            return Err(std::io::Error::other("not a regular file"));
        }
        let key = [
            md.dev() as i64,
            md.ino() as i64,
            md.size() as i64,
            md.mtime(),
            md.mtime_nsec(),
            md.ctime(),
            md.ctime_nsec(),
        ];
        if let Some(sha) = self.map.lock().get(&key) {
            return Ok((*sha, md.size()));
        }
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => h.update(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let sha: [u8; 32] = h.finalize().into();
        let mut map = self.map.lock();
        if map.len() >= CACHE_ENTRIES {
            map.clear();
        }
        map.insert(key, sha);
        Ok((sha, md.size()))
    }
}

/// Describes the files in `paths` (the pod's view of the pod at `root`), leaving out those
/// under `skip` (the exports: the same files on both sides). `originals` names where a file
/// that travelled earlier came from. Files that cannot be read are left out (the restore on
/// the other side says what is missing).
pub fn describe(
    root: i32,
    paths: &BTreeSet<String>,
    skip: &[String],
    originals: &HashMap<String, String>,
    cache: &HashCache,
) -> Vec<Executable> {
    let mut out = Vec::new();
    for path in paths {
        if skip.iter().any(|d| is_under(path, d)) {
            continue;
        }
        let described = open_in_pod(root, path).and_then(|mut f| cache.hash(&mut f));
        match described {
            Ok((sha256, size)) => out.push(Executable {
                path: path.clone(),
                original: originals.get(path).cloned(),
                sha256,
                size,
            }),
            Err(e) => tracing::warn!("pod {root}: cannot read its mapped file {path}: {e}"),
        }
    }
    out
}

/// Reads the file `path` of the pod at `root` into `send`, in pieces of at most `chunk`
/// bytes; checks it still has the SHA-256 `sha` announced.
pub fn read_pieces(
    root: i32,
    path: &str,
    sha: &[u8; 32],
    chunk: usize,
    mut send: impl FnMut(Vec<u8>, bool) -> Result<()>,
) -> Result<()> {
    let mut file =
        open_in_pod(root, path).map_err(|e| DaemonError::io(format!("open {path}"), e))?;
    let size = file
        .metadata()
        .map_err(|e| DaemonError::io(format!("stat {path}"), e))?
        .len();
    let mut h = Sha256::new();
    let mut done = 0u64;
    loop {
        let mut buf = vec![0u8; chunk.min((size - done).max(1) as usize)];
        let n = file
            .read(&mut buf)
            .map_err(|e| DaemonError::io(format!("read {path}"), e))?;
        buf.truncate(n);
        done += n as u64;
        h.update(&buf);
        let last = n == 0 || done >= size;
        if last && <[u8; 32]>::from(h.clone().finalize()) != *sha {
            return Err(DaemonError::User(format!(
                "{path} changed while it was sent"
            )));
        }
        send(buf, last)?;
        if last {
            return Ok(());
        }
    }
}

/// The files of one task that travelled to this host: `RUNTIME/migrants/<task>/files/<sha256>`
/// (0700 directories, read-only files).
pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    /// The store of `task` under `runtime` (made on first use).
    pub fn new(runtime: &Path, task: u64) -> FileStore {
        FileStore {
            dir: runtime
                .join("migrants")
                .join(task.to_string())
                .join("files"),
        }
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the file with `sha` lives.
    pub fn path_of(&self, sha: &[u8; 32]) -> PathBuf {
        self.dir.join(sha_hex(sha))
    }

    /// Whether the file with `sha` is here already, with `size` bytes.
    pub fn has(&self, sha: &[u8; 32], size: u64) -> bool {
        std::fs::symlink_metadata(self.path_of(sha)).is_ok_and(|m| m.is_file() && m.len() == size)
    }

    /// Starts receiving the file with `sha` of `size` bytes.
    pub fn incoming(&self, sha: [u8; 32], size: u64) -> Result<IncomingFile> {
        for d in [self.dir.parent().and_then(Path::parent), self.dir.parent()]
            .into_iter()
            .flatten()
            .chain([self.dir.as_path()])
        {
            make_private_dir(d)?;
        }
        let part = self.dir.join(format!(".{}.part", sha_hex(&sha)));
        let _ = std::fs::remove_file(&part);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&part)
            .map_err(|e| DaemonError::io(format!("create {}", part.display()), e))?;
        Ok(IncomingFile {
            file,
            part,
            dest: self.path_of(&sha),
            sha,
            size,
            written: 0,
            hasher: Sha256::new(),
        })
    }

    /// Removes the store (the master let go), and the task's directory if nothing else is
    /// in it.
    pub fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(task_dir) = self.dir.parent() {
            let _ = std::fs::remove_dir(task_dir);
        }
    }
}

/// A file being received: bounded by its announced size, checked against its SHA-256, then
/// renamed into place.
pub struct IncomingFile {
    file: File,
    part: PathBuf,
    dest: PathBuf,
    sha: [u8; 32],
    size: u64,
    written: u64,
    hasher: Sha256,
}

impl IncomingFile {
    /// Appends a piece.
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        if self.written + data.len() as u64 > self.size {
            return Err(DaemonError::User(format!(
                "file {} is longer than announced",
                sha_hex(&self.sha)
            )));
        }
        self.file
            .write_all(data)
            .map_err(|e| DaemonError::io(format!("write {}", self.part.display()), e))?;
        self.hasher.update(data);
        self.written += data.len() as u64;
        Ok(())
    }

    /// Checks length and content, then puts the file in place (read and execute for us only).
    pub fn finish(self) -> Result<PathBuf> {
        let sha: [u8; 32] = self.hasher.clone().finalize().into();
        if self.written != self.size || sha != self.sha {
            let _ = std::fs::remove_file(&self.part);
            return Err(DaemonError::User(format!(
                "file {} arrived damaged ({} of {} bytes)",
                sha_hex(&self.sha),
                self.written,
                self.size
            )));
        }
        self.file
            .set_permissions(std::fs::Permissions::from_mode(0o500))
            .map_err(|e| DaemonError::io("chmod a travelled file", e))?;
        std::fs::rename(&self.part, &self.dest)
            .map_err(|e| DaemonError::io(format!("rename {}", self.dest.display()), e))?;
        Ok(self.dest.clone())
    }
}

impl Drop for IncomingFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.part);
    }
}

fn make_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let md = std::fs::symlink_metadata(dir)
                .map_err(|e| DaemonError::io(format!("stat {}", dir.display()), e))?;
            if md.is_dir() && md.uid() == nix::unistd::geteuid().as_raw() {
                Ok(())
            } else {
                Err(DaemonError::User(format!(
                    "{} is not a directory of ours",
                    dir.display()
                )))
            }
        }
        Err(e) => Err(DaemonError::io(format!("create {}", dir.display()), e)),
    }
}

/// What of the pod at `root` the zombie's pod would not have: working directories and open
/// regular files or directories in a place the zombie hides (`masks`) and outside every
/// export (`exports`), each naming the process and descriptor.
pub fn hidden_on_zombie(root: i32, masks: &[&str], exports: &[String]) -> Vec<String> {
    let hidden = |path: &str| {
        masks.iter().any(|m| is_under(path, m)) && !exports.iter().any(|e| is_under(path, e))
    };
    let mut reasons = Vec::new();
    for pid in pod_pids(root) {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let who = format!("process {} ({})", pod_pid(pid).unwrap_or(pid), comm.trim());
        if let Ok(cwd) = std::fs::read_link(format!("/proc/{pid}/cwd"))
            && let Some(cwd) = cwd.to_str()
            && hidden(cwd)
        {
            reasons.push(format!(
                "{who} works in {cwd}, which the zombie hides (export it: `zos export DIR`)"
            ));
        }
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let Some(target) = target.to_str() else {
                continue;
            };
            let regular = std::fs::metadata(fd.path()).is_ok_and(|m| m.is_file() || m.is_dir());
            if regular && !target.ends_with(" (deleted)") && hidden(target) {
                reasons.push(format!(
                    "{who} has {target} open (fd {}), which the zombie hides (export it: `zos export DIR`)",
                    fd.file_name().to_string_lossy()
                ));
            }
        }
    }
    reasons
}

/// The PID a host process has inside its pod (the last of `NSpid`).
fn pod_pid(pid: i32) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("NSpid:"))?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_means_the_directory_or_below_it() {
        assert!(is_under("/home/u/work/a.out", "/home/u/work"));
        assert!(is_under("/home/u/work", "/home/u/work/"));
        assert!(!is_under("/home/u/workshop/a", "/home/u/work"));
        assert!(is_under("/x", "/"));
    }

    #[test]
    fn mapped_paths_of_this_process_include_its_executable_and_libc() {
        let me = std::process::id() as i32;
        let paths = mapped_paths(me);
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        assert!(paths.contains(exe.to_str().unwrap()), "{paths:?}");
        assert!(paths.iter().any(|p| p.contains("libc")), "{paths:?}");
    }

    #[test]
    fn a_symlink_inside_the_root_cannot_lead_outside_it() {
        // A magic link (/proc/self/root) would lead to the daemon's own root: refused.
        let me = std::process::id() as i32;
        assert!(open_in_pod(me, "/proc/self/root/etc/hostname").is_err());
        assert!(open_in_pod(me, "/etc/hostname").is_ok());
    }

    #[test]
    fn a_received_file_is_checked_and_put_in_place_read_only() {
        let dir = std::env::temp_dir().join(format!("zos-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = FileStore::new(&dir, 7);
        let data = b"#!/bin/sh\necho hi\n";
        let sha: [u8; 32] = Sha256::digest(data).into();
        assert!(!store.has(&sha, data.len() as u64));
        let mut f = store.incoming(sha, data.len() as u64).unwrap();
        f.write(&data[..5]).unwrap();
        f.write(&data[5..]).unwrap();
        let at = f.finish().unwrap();
        assert_eq!(std::fs::read(&at).unwrap(), data);
        assert_eq!(
            std::fs::metadata(&at).unwrap().permissions().mode() & 0o777,
            0o500
        );
        assert!(store.has(&sha, data.len() as u64));
        // Longer than announced, or different: refused, nothing left behind.
        let mut f = store.incoming([1; 32], 3).unwrap();
        assert!(f.write(b"four").is_err());
        let mut f = store.incoming([2; 32], 4).unwrap();
        f.write(b"four").unwrap();
        assert!(f.finish().is_err());
        assert!(!store.path_of(&[2; 32]).exists());
        store.remove();
        assert!(!dir.join("migrants/7").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
