//! `zos-pod-init`, which the daemon runs as PID 1 of each pod, built next to the `zos` binary
//! under test (the daemon looks for it there, as an installation has it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// Builds (or finds up to date) `zos-pod-init` beside the `zos` under test; its path.
pub fn ensure_built() -> PathBuf {
    static BUILT: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.as_ref() {
        return p.clone();
    }
    let zos = Path::new(super::host::ZOS);
    let profile_dir = zos.parent().expect("zos has a directory");
    let target = profile_dir.parent().expect("a target directory");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--quiet",
        "--locked",
        "-p",
        "zos-pod-init",
        "--target-dir",
    ])
    .arg(target)
    .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("run cargo to build zos-pod-init");
    assert!(status.success(), "building zos-pod-init failed");
    let init = profile_dir.join("zos-pod-init");
    assert!(init.is_file(), "{} missing after the build", init.display());
    *built = Some(init.clone());
    init
}
