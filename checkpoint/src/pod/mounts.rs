//! The mount plan of a pod: tmpfs masks over private places, then bind mounts of given source
//! directories at given paths.

use std::path::PathBuf;

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
