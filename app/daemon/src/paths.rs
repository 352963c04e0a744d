//! Where an instance keeps its files.
//!
//! The **home** (`--home`, `ZOS_HOME`, default `$XDG_CONFIG_HOME/zos` or
//! `~/.config/zos`) holds what must persist: `identity.key`, `trust.toml`,
//! `zombies.toml`. The **runtime dir** holds sockets and other per-boot state:
//! `$XDG_RUNTIME_DIR/zos-<hash of home>` (or `/tmp/zos-<uid>/…` without
//! `XDG_RUNTIME_DIR`), mode 0700, so several instances run side by side and
//! each CLI call finds its daemon from the home alone.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{DaemonError, Result};

/// The resolved directories of one instance.
#[derive(Clone, Debug)]
pub struct Paths {
    /// Persistent state.
    pub home: PathBuf,
    /// Sockets, mode 0700.
    pub runtime: PathBuf,
}

impl Paths {
    /// Resolves the home (creating it, 0700) and the runtime dir.
    pub fn resolve(home: Option<PathBuf>) -> Result<Paths> {
        let home = match home {
            Some(h) => h,
            None => default_home()?,
        };
        make_private_dir(&home)?;
        let home = home
            .canonicalize()
            .map_err(|e| DaemonError::io(format!("resolve {}", home.display()), e))?;
        let digest = Sha256::digest(home.as_os_str().as_encoded_bytes());
        let base = match std::env::var_os("XDG_RUNTIME_DIR") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => {
                // Our uid is the owner of the home we just created.
                let uid = fs::metadata(&home)
                    .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
                    .unwrap_or(0);
                let dir = PathBuf::from(format!("/tmp/zos-{uid}"));
                make_private_dir(&dir)?;
                dir
            }
        };
        let runtime = base.join(format!("zos-{}", hex::encode(&digest[..6])));
        make_private_dir(&runtime)?;
        Ok(Paths { home, runtime })
    }

    /// A master's export list.
    pub fn exports(&self) -> PathBuf {
        self.home.join("exports.toml")
    }

    /// A zombie's settings file.
    pub fn zombie_settings(&self) -> PathBuf {
        self.home.join("zombie.toml")
    }

    /// The control socket.
    pub fn socket(&self) -> PathBuf {
        self.runtime.join("control.sock")
    }

    /// The identity key file.
    pub fn identity(&self) -> PathBuf {
        self.home.join("identity.key")
    }

    /// The zombie's trust store.
    pub fn trust(&self) -> PathBuf {
        self.home.join("trust.toml")
    }

    /// The master's paired zombies.
    pub fn zombies(&self) -> PathBuf {
        self.home.join("zombies.toml")
    }
}

fn default_home() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("zos"));
    }
    match std::env::var_os("HOME") {
        Some(home) => Ok(PathBuf::from(home).join(".config/zos")),
        None => Err(DaemonError::User(
            "neither --home, ZOS_HOME, XDG_CONFIG_HOME nor HOME is set".into(),
        )),
    }
}

/// Creates `dir` (and parents) with mode 0700 if missing; refuses a
/// directory others can write.
pub fn make_private_dir(dir: &Path) -> Result<()> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| DaemonError::io(format!("create {}", dir.display()), e))?;
    }
    let mode = fs::metadata(dir)
        .map_err(|e| DaemonError::io(format!("stat {}", dir.display()), e))?
        .permissions()
        .mode();
    if mode & 0o022 != 0 {
        return Err(DaemonError::User(format!(
            "{} is writable by others (mode {:o}); refusing to keep keys or sockets there",
            dir.display(),
            mode & 0o777
        )));
    }
    Ok(())
}
