//! Running commands inside a daemon's mount namespace (each host's daemon
//! has its own, from `ip netns exec`): what the zombie's processes see.

use std::process::{Command, Output};

/// Runs `sh -c SCRIPT` in the mount and network namespaces of `pid`.
pub fn sh_in(pid: i32, script: &str) -> Output {
    Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-m", "-n", "--", "sh", "-c", script])
        .output()
        .expect("run nsenter")
}

/// Like [`sh_in`], and panics unless the script succeeds; returns stdout.
pub fn sh_ok(pid: i32, script: &str) -> String {
    let out = sh_in(pid, script);
    assert!(
        out.status.success(),
        "`{script}` in pid {pid}'s namespaces failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
