//! Where an instance keeps its files.
//!
//! The **home** (`--home`, `ZOS_HOME`, default `$XDG_CONFIG_HOME/zos` or
//! `~/.config/zos`) holds what must persist: `identity.key`, `trust.toml`,
//! `zombies.toml`. The **runtime dir** holds sockets and other per-boot state:
//! `$XDG_RUNTIME_DIR/zos-<hash of home>` (or `/tmp/zos-<uid>/…` without
//! `XDG_RUNTIME_DIR`), mode 0700, so several instances run side by side and
//! each CLI call finds its daemon from the home alone.
//!
//! Each of these directories (and `XDG_RUNTIME_DIR` itself) must be a real
//! directory owned by us and closed to others (see [`private`]): one that
//! another local user planted, say `/tmp/zos-UID` made before our first run,
//! is refused with an error naming it and its owner.

mod private;

use std::path::{Path, PathBuf};

use nix::unistd::geteuid;
use sha2::{Digest, Sha256};

use crate::error::{DaemonError, Result};
use private::{Privacy, check_private_dir, ensure_private_dir};

/// The resolved directories of one instance.
#[derive(Clone, Debug)]
pub struct Paths {
    /// Persistent state.
    pub home: PathBuf,
    /// Sockets, mode 0700.
    pub runtime: PathBuf,
}

impl Paths {
    /// Resolves the home (creating it, 0700) and the runtime dir (creating
    /// it and, without `XDG_RUNTIME_DIR`, its base `/tmp/zos-EUID`, both
    /// 0700); refuses any of them that is not a private directory of ours.
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
        let base = runtime_base()?;
        let runtime = base.join(format!("zos-{}", hex::encode(&digest[..6])));
        ensure_private_dir(&runtime, Privacy::OwnerOnly)?;
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

    /// A master's settings file.
    pub fn master_settings(&self) -> PathBuf {
        self.home.join("master.toml")
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

/// `XDG_RUNTIME_DIR` if set (it must exist, be ours and be 0700: we do not
/// create it), else `/tmp/zos-EUID`, made 0700 if missing and refused if
/// anyone else made it or can look into it.
fn runtime_base() -> Result<PathBuf> {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            check_private_dir(&dir, Privacy::OwnerOnly).map_err(|e| {
                DaemonError::User(format!(
                    "XDG_RUNTIME_DIR: {e} (unset it to use /tmp/zos-{})",
                    geteuid()
                ))
            })?;
            Ok(dir)
        }
        None => {
            let dir = PathBuf::from(format!("/tmp/zos-{}", geteuid()));
            ensure_private_dir(&dir, Privacy::OwnerOnly)?;
            Ok(dir)
        }
    }
}

/// Creates `dir` (and parents) with mode 0700 if missing; refuses a
/// symbolic link, a directory of another user, or one others can write.
pub fn make_private_dir(dir: &Path) -> Result<()> {
    ensure_private_dir(dir, Privacy::NoOthersWrite)
}
