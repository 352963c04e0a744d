//! The mount plan of a pod: tmpfs masks over private places, then bind mounts of given source
//! directories at given paths.

use crate::error::{Error, Result};
use crate::sys::podns::PreparedMounts;
use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The zombie user's private places, masked with an empty tmpfs inside a pod on a zombie.
pub const ZOMBIE_MASKS: &[&str] = &[
    "/home",
    "/root",
    "/tmp",
    "/var/tmp",
    "/mnt",
    "/media",
    "/srv",
    "/run/user",
];

/// One bind mount: `source` (a path in the caller's view) appears at `target` inside the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    /// What to mount (opened before the masks, so it may lie under one).
    pub source: PathBuf,
    /// Where it appears in the pod: inside a mask (created there) or an existing directory.
    pub target: PathBuf,
}

/// Mounts made in a pod's mount namespace after its own `/proc` and `/dev/pts`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountPlan {
    /// Directories hidden under an empty tmpfs (those that do not exist are skipped).
    pub masks: Vec<PathBuf>,
    /// Bind mounts, made after the masks, in order.
    pub binds: Vec<BindMount>,
}

impl MountPlan {
    /// The zombie's plan: every [`ZOMBIE_MASKS`] place masked, then `binds`.
    pub fn zombie(binds: Vec<BindMount>) -> MountPlan {
        MountPlan {
            masks: ZOMBIE_MASKS.iter().map(PathBuf::from).collect(),
            binds,
        }
    }
}

/// A C string of `s` (refused if it holds a NUL byte).
pub(crate) fn cstring(s: &OsStr) -> Result<CString> {
    CString::new(s.as_bytes())
        .map_err(|_| Error::Restore(format!("pod: {s:?} contains a NUL byte")))
}

/// Check the plan against the file system and turn it into what the pod's root runs: masks
/// that exist as directories, and for each bind mount its source, the directories to create
/// (inside a mask) and its target. A target outside every mask must be an existing directory.
pub(crate) fn prepare(plan: &MountPlan) -> Result<PreparedMounts> {
    let refuse = |m: String| Error::Restore(format!("pod mount plan: {m}"));
    let masks: Vec<&PathBuf> = plan
        .masks
        .iter()
        .filter(|m| m.is_absolute() && m.is_dir())
        .collect();
    let mut out = PreparedMounts::default();
    for m in &masks {
        out.masks.push(cstring(m.as_os_str())?);
    }
    for b in &plan.binds {
        if !b.source.is_absolute() || !b.target.is_absolute() {
            return Err(refuse(format!(
                "{} → {}: paths must be absolute",
                b.source.display(),
                b.target.display()
            )));
        }
        if !b.source.exists() {
            return Err(refuse(format!("{} does not exist", b.source.display())));
        }
        let clean = |p: &Path| {
            p.components().all(|c| {
                matches!(
                    c,
                    std::path::Component::RootDir | std::path::Component::Normal(_)
                )
            })
        };
        if !clean(&b.target) {
            return Err(refuse(format!(
                "{}: no . or .. in a target",
                b.target.display()
            )));
        }
        let mut dirs = Vec::new();
        match masks
            .iter()
            .find(|m| b.target.starts_with(m) && b.target.as_path() != m.as_path())
        {
            Some(mask) => {
                let mut p = mask.to_path_buf();
                for c in b
                    .target
                    .strip_prefix(mask)
                    .unwrap_or(&b.target)
                    .components()
                {
                    p.push(c);
                    dirs.push(cstring(p.as_os_str())?);
                }
            }
            None if b.target.is_dir() => {}
            None => {
                return Err(refuse(format!(
                    "{} is outside the masked places and not an existing directory",
                    b.target.display()
                )));
            }
        }
        out.binds.push((
            cstring(b.source.as_os_str())?,
            dirs,
            cstring(b.target.as_os_str())?,
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(source: &str, target: &str) -> BindMount {
        BindMount {
            source: source.into(),
            target: target.into(),
        }
    }

    #[test]
    fn targets_inside_a_mask_are_created_step_by_step() {
        let plan = MountPlan {
            masks: vec!["/tmp".into(), "/no/such/mask".into()],
            binds: vec![bind("/usr", "/tmp/home/u/work")],
        };
        let p = prepare(&plan).unwrap();
        assert_eq!(p.masks, vec![cstring(OsStr::new("/tmp")).unwrap()]);
        let dirs: Vec<&str> = p.binds[0].1.iter().map(|c| c.to_str().unwrap()).collect();
        assert_eq!(dirs, ["/tmp/home", "/tmp/home/u", "/tmp/home/u/work"]);
    }

    #[test]
    fn targets_outside_masks_must_exist_and_paths_must_be_plain() {
        let outside = MountPlan {
            masks: vec!["/tmp".into()],
            binds: vec![bind("/usr", "/opt/zos-no-such-dir")],
        };
        let e = prepare(&outside).unwrap_err().to_string();
        assert!(e.contains("not an existing directory"), "{e}");
        let existing = MountPlan {
            masks: vec![],
            binds: vec![bind("/usr", "/srv")],
        };
        if std::path::Path::new("/srv").is_dir() {
            assert!(prepare(&existing).is_ok());
        }
        for (s, t) in [
            ("/usr", "/tmp/../etc"),
            ("usr", "/tmp/x"),
            ("/no/such/src", "/tmp/x"),
        ] {
            let plan = MountPlan {
                masks: vec!["/tmp".into()],
                binds: vec![bind(s, t)],
            };
            assert!(prepare(&plan).is_err(), "{s} -> {t} accepted");
        }
    }
}
