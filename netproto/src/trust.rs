//! Who trusts whom.
//!
//! A zombie's `trust.toml` (the paper's `zpasswd`) lists the masters that may
//! dominate it, each with a name and a control [`Level`]. A master's
//! `zombies.toml` lists the zombies it has paired with, so that it only talks
//! to the key it paired with. Both are a [`PeerStore`]: TOML, mode 0600,
//! replaced atomically on every change.

use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::identity::PublicKey;

/// How much a master may do on a zombie.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Viewers and shared folders only; no foreign processes run there.
    Partial,
    /// Also the master's own session and migrant tasks.
    Complete,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Partial => "partial",
            Level::Complete => "complete",
        })
    }
}

impl FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "partial" => Ok(Level::Partial),
            "complete" => Ok(Level::Complete),
            other => Err(format!(
                "unknown control level {other:?} (partial or complete)"
            )),
        }
    }
}

/// One trusted peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerEntry {
    /// Its static public key, hex.
    pub key: String,
    /// Its name, as it gave it when pairing.
    pub name: String,
    /// The control level granted (for zombies' entries: the level we hold).
    pub level: Level,
    /// When it was added, seconds since the Unix epoch.
    pub added: u64,
}

impl PeerEntry {
    /// The entry's key.
    pub fn public_key(&self) -> Result<PublicKey> {
        PublicKey::from_hex(&self.key)
    }
}

#[derive(Default, Serialize, Deserialize)]
struct StoreFile {
    #[serde(default, rename = "peer")]
    peers: Vec<PeerEntry>,
}

/// A list of trusted peers kept in one TOML file.
#[derive(Debug)]
pub struct PeerStore {
    path: PathBuf,
    peers: Vec<PeerEntry>,
}

impl PeerStore {
    /// Loads the store, or an empty one if the file does not exist yet.
    pub fn load(path: &Path) -> Result<Self> {
        let peers = match fs::read_to_string(path) {
            Ok(text) => {
                let file: StoreFile = toml::from_str(&text).map_err(|e| Error::BadFile {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                for p in &file.peers {
                    PublicKey::from_hex(&p.key).map_err(|e| Error::BadFile {
                        path: path.display().to_string(),
                        reason: e.to_string(),
                    })?;
                }
                file.peers
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io(format!("read {}", path.display()), e)),
        };
        Ok(PeerStore {
            path: path.to_path_buf(),
            peers,
        })
    }

    /// All entries.
    pub fn entries(&self) -> &[PeerEntry] {
        &self.peers
    }

    /// The entry for a key.
    pub fn get(&self, key: &PublicKey) -> Option<&PeerEntry> {
        let hex = key.to_hex();
        self.peers.iter().find(|p| p.key == hex)
    }

    /// Adds or replaces the entry for `key`, and saves.
    pub fn insert(&mut self, key: &PublicKey, name: &str, level: Level) -> Result<()> {
        let hex = key.to_hex();
        self.peers.retain(|p| p.key != hex);
        self.peers.push(PeerEntry {
            key: hex,
            name: name.to_string(),
            level,
            added: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        });
        self.save()
    }

    /// Removes the entries whose key, fingerprint (or a prefix of it) or
    /// name is `what`; returns them. Refuses an ambiguous match.
    pub fn remove(&mut self, what: &str) -> Result<Vec<PeerEntry>> {
        let matching: Vec<usize> = self
            .peers
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                p.key == what
                    || p.name == what
                    || p.public_key()
                        .map(|k| k.fingerprint().matches(what))
                        .unwrap_or(false)
            })
            .map(|(i, _)| i)
            .collect();
        if matching.len() > 1 {
            let keys: std::collections::BTreeSet<String> = matching
                .iter()
                .map(|i| self.peers[*i].key.clone())
                .collect();
            if keys.len() > 1 {
                return Err(Error::Refused(format!(
                    "{what:?} matches {} entries; give more of the fingerprint",
                    matching.len()
                )));
            }
        }
        let removed: Vec<PeerEntry> = matching
            .iter()
            .rev()
            .map(|i| self.peers.remove(*i))
            .collect();
        if !removed.is_empty() {
            self.save()?;
        }
        Ok(removed)
    }

    fn save(&self) -> Result<()> {
        let text = toml::to_string(&StoreFile {
            peers: self.peers.clone(),
        })
        .map_err(|e| Error::BadFile {
            path: self.path.display().to_string(),
            reason: e.to_string(),
        })?;
        write_private_atomically(&self.path, text.as_bytes())
    }
}

/// Replaces `path` with `bytes` atomically (a sibling `.new` file, synced,
/// renamed over it), mode 0600: readers see the old or the new file, never
/// half of one. For the stores of this and other crates.
pub fn write_private_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".new");
    let tmp = std::path::PathBuf::from(tmp);
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| Error::io(format!("create {}", tmp.display()), e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io(format!("write {}", tmp.display()), e))?;
    fs::rename(&tmp, path).map_err(|e| Error::io(format!("replace {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    #[test]
    fn store_persists_and_revokes() {
        let dir = std::env::temp_dir().join(format!("zos-trust-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("trust.toml");
        let a = Identity::generate().unwrap().public();
        let b = Identity::generate().unwrap().public();
        let mut store = PeerStore::load(&path).unwrap();
        store.insert(&a, "laptop", Level::Complete).unwrap();
        store.insert(&b, "desk", Level::Partial).unwrap();
        let store2 = PeerStore::load(&path).unwrap();
        assert_eq!(store2.get(&a).unwrap().level, Level::Complete);
        let mut store3 = store2;
        let fp = b.fingerprint().0;
        let gone = store3.remove(&fp[..9]).unwrap();
        assert_eq!(gone.len(), 1);
        assert!(PeerStore::load(&path).unwrap().get(&b).is_none());
        fs::write(
            &path,
            "[[peer]]\nkey = \"zz\"\nname = \"x\"\nlevel = \"partial\"\nadded = 0\n",
        )
        .unwrap();
        assert!(PeerStore::load(&path).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
