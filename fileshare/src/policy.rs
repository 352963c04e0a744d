//! The master's export list and the policy one zombie gets from it.
//!
//! [`ExportStore`] keeps the list in one TOML file (the lead puts it at
//! `<master home>/exports.toml`), mode 0600, replaced atomically on every
//! change, like the trust stores in `zos_netproto::trust`. Each entry names
//! an absolute canonical path, an [`Access`] and optionally one zombie (`to`:
//! its name or key fingerprint; none means every zombie).
//!
//! [`ExportStore::policy_for`] turns the list into the [`ExportPolicy`] of one
//! zombie: the folders it may see (read-write or read-only) and the
//! never-paths hidden from it even inside those folders. For each path the
//! entry aimed at this zombie wins over the one for every zombie.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use zos_netproto::Fingerprint;

use crate::error::{Error, Result};

/// What a zombie may do with an exported path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    /// Read and write.
    ReadWrite,
    /// Read only: every modifying operation fails with `EROFS`.
    ReadOnly,
    /// Hidden: the path (and what is under it) does not exist for the zombie.
    Never,
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Access::ReadWrite => "read-write",
            Access::ReadOnly => "read-only",
            Access::Never => "never",
        })
    }
}

impl FromStr for Access {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "read-write" | "rw" => Ok(Access::ReadWrite),
            "read-only" | "ro" => Ok(Access::ReadOnly),
            "never" => Ok(Access::Never),
            other => Err(format!(
                "unknown access {other:?} (read-write, read-only or never)"
            )),
        }
    }
}

/// One line of the export list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportEntry {
    /// Absolute, canonical path on the master.
    pub path: PathBuf,
    /// What the zombie may do with it.
    pub access: Access,
    /// The one zombie this entry is for (name or fingerprint); `None`: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

impl ExportEntry {
    fn is_for(&self, name: &str, fingerprint: &Fingerprint) -> bool {
        match &self.to {
            None => true,
            Some(to) => to == name || fingerprint.matches(to),
        }
    }
}

#[derive(Default, Serialize, Deserialize)]
struct StoreFile {
    #[serde(default, rename = "export")]
    exports: Vec<ExportEntry>,
}

/// The master's export list, kept in one TOML file.
#[derive(Debug)]
pub struct ExportStore {
    path: PathBuf,
    entries: Vec<ExportEntry>,
}

impl ExportStore {
    /// Loads the store, or an empty one if the file does not exist yet.
    pub fn load(path: &Path) -> Result<Self> {
        let bad = |reason: String| Error::BadFile {
            path: path.display().to_string(),
            reason,
        };
        let entries = match fs::read_to_string(path) {
            Ok(text) => {
                let file: StoreFile = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
                for e in &file.exports {
                    if !e.path.is_absolute() {
                        return Err(bad(format!("{} is not absolute", e.path.display())));
                    }
                }
                file.exports
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io(format!("read {}", path.display()), e)),
        };
        Ok(ExportStore {
            path: path.to_path_buf(),
            entries,
        })
    }

    /// All entries, in the order they were added.
    pub fn entries(&self) -> &[ExportEntry] {
        &self.entries
    }

    /// Adds an entry and saves; returns it as stored (with the canonical
    /// path). Re-adding a path for the same target replaces its entry.
    ///
    /// Refuses relative or missing paths, `/`, and (for read-write and
    /// read-only) anything but a directory. A never-path need not lie inside
    /// any export.
    pub fn add(&mut self, path: &Path, access: Access, to: Option<&str>) -> Result<ExportEntry> {
        if !path.is_absolute() {
            return Err(Error::BadExport(format!(
                "{} is not an absolute path",
                path.display()
            )));
        }
        let canonical = fs::canonicalize(path)
            .map_err(|e| Error::BadExport(format!("{}: {e}", path.display())))?;
        if canonical == Path::new("/") {
            return Err(Error::BadExport(format!(
                "{} is the root directory; export a folder below it",
                path.display()
            )));
        }
        if access != Access::Never && !canonical.is_dir() {
            return Err(Error::BadExport(format!(
                "{} is not a directory",
                canonical.display()
            )));
        }
        if let Some(to) = to
            && to.trim().is_empty()
        {
            return Err(Error::BadExport("an empty zombie name".into()));
        }
        let entry = ExportEntry {
            path: canonical,
            access,
            to: to.map(str::to_string),
        };
        self.entries
            .retain(|e| !(e.path == entry.path && e.to == entry.to));
        self.entries.push(entry.clone());
        self.save()?;
        Ok(entry)
    }

    /// Removes the entries for `path` (for target `to` only, when given);
    /// returns them. The path is compared canonicalised when it still exists.
    pub fn remove(&mut self, path: &Path, to: Option<&str>) -> Result<Vec<ExportEntry>> {
        let wanted = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let (gone, kept): (Vec<_>, Vec<_>) = self.entries.drain(..).partition(|e| {
            (e.path == wanted || e.path == path) && (to.is_none() || e.to.as_deref() == to)
        });
        self.entries = kept;
        if !gone.is_empty() {
            self.save()?;
        }
        Ok(gone)
    }

    /// The exports and never-paths that the zombie with this name and key
    /// fingerprint gets.
    pub fn policy_for(&self, zombie_name: &str, zombie_fingerprint: &Fingerprint) -> ExportPolicy {
        // For each path: the last entry aimed at this zombie, else the last
        // entry for every zombie.
        let mut chosen: BTreeMap<&Path, &ExportEntry> = BTreeMap::new();
        for e in self
            .entries
            .iter()
            .filter(|e| e.to.is_none())
            .chain(self.entries.iter().filter(|e| e.to.is_some()))
        {
            if e.is_for(zombie_name, zombie_fingerprint) {
                chosen.insert(&e.path, e);
            }
        }
        let never: Vec<PathBuf> = chosen
            .values()
            .filter(|e| e.access == Access::Never)
            .map(|e| e.path.clone())
            .collect();
        let exports = chosen
            .values()
            .filter(|e| e.access != Access::Never)
            .map(|e| Export {
                path: e.path.clone(),
                read_only: e.access == Access::ReadOnly,
            })
            .collect();
        ExportPolicy::new(exports, never).for_zombie(zombie_fingerprint.clone())
    }

    fn save(&self) -> Result<()> {
        let text = toml::to_string(&StoreFile {
            exports: self.entries.clone(),
        })
        .map_err(|e| Error::BadFile {
            path: self.path.display().to_string(),
            reason: e.to_string(),
        })?;
        zos_netproto::trust::write_private_atomically(&self.path, text.as_bytes()).map_err(|e| {
            Error::BadFile {
                path: self.path.display().to_string(),
                reason: e.to_string(),
            }
        })
    }
}

/// One folder a zombie may see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Export {
    /// Absolute path on the master.
    pub path: PathBuf,
    /// Whether every modifying operation is refused with `EROFS`.
    pub read_only: bool,
}

/// What one zombie may see: its exports and the never-paths.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportPolicy {
    /// The folders, each shown as one entry of the mount's root.
    pub exports: Vec<Export>,
    /// Paths hidden even inside an export (with what lies under them).
    pub never: Vec<PathBuf>,
    /// The zombie this policy is for (its key's fingerprint), when known:
    /// every server for it shares one descriptor budget.
    pub zombie: Option<Fingerprint>,
}

impl ExportPolicy {
    /// A policy from its parts. Exports that are a never-path or lie inside
    /// one are dropped: never wins.
    pub fn new(exports: Vec<Export>, never: Vec<PathBuf>) -> Self {
        let exports = exports
            .into_iter()
            .filter(|x| !never.iter().any(|n| x.path.starts_with(n)))
            .collect();
        ExportPolicy {
            exports,
            never,
            zombie: None,
        }
    }

    /// The same policy, for the zombie with this key fingerprint.
    pub fn for_zombie(mut self, fingerprint: Fingerprint) -> Self {
        self.zombie = Some(fingerprint);
        self
    }

    /// The name each export has in the mount's root: its base name, with
    /// `-2`, `-3` … appended to later duplicates.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::with_capacity(self.exports.len());
        for x in &self.exports {
            let base = x
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "export".into());
            let mut name = base.clone();
            let mut n = 2;
            while names.contains(&name) {
                name = format!("{base}-{n}");
                n += 1;
            }
            names.push(name);
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zos_netproto::Identity;

    struct TempDir(PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
    fn temp(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("zos-policy-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        TempDir(fs::canonicalize(&d).unwrap())
    }

    #[test]
    fn store_persists_replaces_and_removes() {
        let d = temp("store");
        let docs = d.0.join("docs");
        fs::create_dir_all(docs.join("secret")).unwrap();
        let file = d.0.join("exports.toml");
        let mut store = ExportStore::load(&file).unwrap();
        store.add(&docs, Access::ReadWrite, None).unwrap();
        store.add(&docs, Access::ReadOnly, None).unwrap();
        store
            .add(&docs.join("secret"), Access::Never, Some("desk"))
            .unwrap();
        assert_eq!(store.entries().len(), 2, "re-adding replaced the entry");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let again = ExportStore::load(&file).unwrap();
        assert_eq!(again.entries(), store.entries());
        assert_eq!(again.entries()[0].access, Access::ReadOnly);
        let mut again = again;
        let gone = again.remove(&docs, None).unwrap();
        assert_eq!(gone.len(), 1);
        assert_eq!(ExportStore::load(&file).unwrap().entries().len(), 1);
    }

    #[test]
    fn nonsense_is_refused() {
        let d = temp("refuse");
        let mut store = ExportStore::load(&d.0.join("exports.toml")).unwrap();
        let err = |r: Result<ExportEntry>| r.unwrap_err().to_string();
        assert!(
            err(store.add(Path::new("rel/path"), Access::ReadWrite, None)).contains("absolute")
        );
        assert!(err(store.add(&d.0.join("missing"), Access::ReadOnly, None)).contains("missing"));
        assert!(err(store.add(Path::new("/"), Access::ReadWrite, None)).contains("root"));
        fs::write(d.0.join("f"), b"x").unwrap();
        assert!(
            err(store.add(&d.0.join("f"), Access::ReadWrite, None)).contains("not a directory")
        );
        // A never-path outside every export is fine.
        store.add(&d.0.join("f"), Access::Never, None).unwrap();
        // A symlinked path is stored canonical.
        fs::create_dir(d.0.join("real")).unwrap();
        std::os::unix::fs::symlink(d.0.join("real"), d.0.join("link")).unwrap();
        let e = store
            .add(&d.0.join("link"), Access::ReadWrite, None)
            .unwrap();
        assert_eq!(e.path, d.0.join("real"));
    }

    #[test]
    fn policy_picks_entries_for_the_zombie() {
        let d = temp("policy");
        for p in ["a", "a/never", "b", "c", "x/a"] {
            fs::create_dir_all(d.0.join(p)).unwrap();
        }
        let desk = Identity::generate().unwrap().public().fingerprint();
        let other = Identity::generate().unwrap().public().fingerprint();
        let mut store = ExportStore::load(&d.0.join("exports.toml")).unwrap();
        store.add(&d.0.join("a"), Access::ReadWrite, None).unwrap();
        store
            .add(&d.0.join("a/never"), Access::Never, None)
            .unwrap();
        store.add(&d.0.join("b"), Access::ReadOnly, None).unwrap();
        store
            .add(&d.0.join("b"), Access::ReadWrite, Some(&desk.0[..9]))
            .unwrap();
        store.add(&d.0.join("c"), Access::ReadWrite, None).unwrap();
        store
            .add(&d.0.join("c"), Access::Never, Some("desk"))
            .unwrap();
        store.add(&d.0.join("x/a"), Access::ReadOnly, None).unwrap();

        let p = store.policy_for("desk", &desk);
        let shown: Vec<(PathBuf, bool)> = p
            .exports
            .iter()
            .map(|x| (x.path.clone(), x.read_only))
            .collect();
        assert_eq!(
            shown,
            vec![
                (d.0.join("a"), false),
                (d.0.join("b"), false),
                (d.0.join("x/a"), true)
            ]
        );
        assert!(p.never.contains(&d.0.join("a/never")));
        assert!(p.never.contains(&d.0.join("c")));
        assert_eq!(p.names(), vec!["a", "b", "a-2"]);

        let q = store.policy_for("laptop", &other);
        assert_eq!(q.exports.len(), 4);
        assert!(
            q.exports
                .iter()
                .any(|x| x.path == d.0.join("b") && x.read_only)
        );
        assert_eq!(q.never, vec![d.0.join("a/never")]);
    }
}
