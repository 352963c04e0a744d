//! The master's last image of each migrant: `HOME/images/task-<id>.zpod` (directory 0700,
//! files 0600; the image holds the task's memory).
//!
//! Kept in the home rather than the runtime dir, which is often a small tmpfs
//! (`/run/user/UID`, 10 % of RAM by default): an image is as large as the task's memory. Only
//! the newest image of a task is kept: each move writes `.task-<id>.zpod.part` beside it and
//! renames it over the old one once complete. Images of tasks the registry no longer lists are
//! removed at the daemon's start and at each move (the registry lives as long as the daemon).

use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{DaemonError, Result};

/// The master's image directory.
pub struct ImageStore {
    dir: PathBuf,
}

/// An image being written.
pub struct PendingImage {
    part: PathBuf,
    dest: PathBuf,
    done: bool,
}

impl ImageStore {
    /// The store under `home` (made on first use).
    pub fn new(home: &Path) -> ImageStore {
        ImageStore {
            dir: home.join("images"),
        }
    }

    /// Where task `id`'s image lives.
    pub fn path_of(&self, id: u64) -> PathBuf {
        self.dir.join(format!("task-{id}.zpod"))
    }

    /// A new image file for task `id` (0600, created afresh), and its pending record.
    pub fn create(&self, id: u64) -> Result<(File, PendingImage)> {
        self.ensure_dir()?;
        let part = self.dir.join(format!(".task-{id}.zpod.part"));
        let _ = std::fs::remove_file(&part);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&part)
            .map_err(|e| DaemonError::io(format!("create {}", part.display()), e))?;
        Ok((
            file,
            PendingImage {
                part,
                dest: self.path_of(id),
                done: false,
            },
        ))
    }

    /// Reads task `id`'s image (for `zos home --from-image`), as a whole image (the kept
    /// container of a live move is flattened: its rounds under its delta image).
    pub fn read(&self, id: u64) -> Result<Vec<u8>> {
        let path = self.path_of(id);
        let md = std::fs::symlink_metadata(&path)
            .map_err(|e| DaemonError::io(format!("the image {}", path.display()), e))?;
        if !md.is_file() || md.uid() != nix::unistd::geteuid().as_raw() || md.mode() & 0o077 != 0 {
            return Err(DaemonError::User(format!(
                "{} is not a private image file of ours",
                path.display()
            )));
        }
        let bytes = std::fs::read(&path)
            .map_err(|e| DaemonError::io(format!("read {}", path.display()), e))?;
        super::engine::unpack_kept(bytes).map_err(DaemonError::User)
    }

    /// Removes the images of tasks not in `live`.
    pub fn sweep(&self, live: &[u64]) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            let id = name
                .trim_start_matches('.')
                .strip_prefix("task-")
                .and_then(|r| r.split('.').next())
                .and_then(|n| n.parse::<u64>().ok());
            if id.is_some_and(|id| !live.contains(&id)) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    fn ensure_dir(&self) -> Result<()> {
        match std::fs::DirBuilder::new().mode(0o700).create(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let md = std::fs::symlink_metadata(&self.dir)
                    .map_err(|e| DaemonError::io(format!("stat {}", self.dir.display()), e))?;
                if md.is_dir()
                    && md.uid() == nix::unistd::geteuid().as_raw()
                    && md.mode() & 0o077 == 0
                {
                    Ok(())
                } else {
                    Err(DaemonError::User(format!(
                        "{} is not a private directory of ours",
                        self.dir.display()
                    )))
                }
            }
            Err(e) => Err(DaemonError::io(format!("create {}", self.dir.display()), e)),
        }
    }
}

impl PendingImage {
    /// The image is complete: it replaces the task's previous one. Its path.
    pub fn keep(mut self) -> Result<PathBuf> {
        std::fs::rename(&self.part, &self.dest)
            .map_err(|e| DaemonError::io(format!("keep {}", self.dest.display()), e))?;
        self.done = true;
        Ok(self.dest.clone())
    }
}

impl Drop for PendingImage {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.part);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn an_image_replaces_the_last_one_only_when_complete_and_others_are_swept() {
        let home = std::env::temp_dir().join(format!("zos-images-{}", std::process::id()));
        std::fs::create_dir_all(&home).unwrap();
        let store = ImageStore::new(&home);
        let (mut f, pending) = store.create(3).unwrap();
        f.write_all(b"first").unwrap();
        pending.keep().unwrap();
        let (mut f, pending) = store.create(3).unwrap();
        f.write_all(b"second, unfinished").unwrap();
        drop(pending);
        assert_eq!(store.read(3).unwrap(), b"first");
        assert_eq!(
            std::fs::metadata(store.path_of(3)).unwrap().mode() & 0o777,
            0o600
        );
        let (_, pending) = store.create(4).unwrap();
        pending.keep().unwrap();
        store.sweep(&[4]);
        assert!(store.read(3).is_err());
        assert!(store.read(4).is_ok());
        let _ = std::fs::remove_dir_all(&home);
    }
}
