//! POSIX conformance: `packaging/pjdfstest.sh` runs pjdfstest (the Rust
//! rewrite, 398 cases) inside a real share. Measured 2026-12-02: 298 passed;
//! the 86 failures are all the character/block device cases (the server
//! refuses to create device nodes on the master, by design); 14 skipped
//! (read-only remounts and the link-count limit, skipped on tmpfs too).
//! Anchors with the same configuration: tmpfs 384, ext4 385, sshfs 129.
//! A drop below the measured figure fails; one case (`open::etxtbsy`, whose
//! `sleep` copy is sometimes still busy) failed once in four full runs, so
//! the bar is one below the figure.

use std::process::Command;

/// The pass count measured when this test was written.
const MEASURED_PASSES: u32 = 298;
/// Cases seen to fail now and then under load.
const FLAKY: u32 = 1;

#[test]
fn pjdfstest_passes_do_not_regress() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../packaging/pjdfstest.sh");
    let out = Command::new("sh")
        .arg(script)
        .output()
        .expect("run pjdfstest.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pjdfstest.sh failed:\n{stdout}\n{stderr}"
    );
    let last = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("pjdfstest: "))
        .unwrap_or_else(|| panic!("no summary line:\n{stdout}\n{stderr}"));
    let passed: u32 = last
        .trim_start_matches("pjdfstest: ")
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unreadable summary {last:?}"));
    println!("{stdout}");
    assert!(
        passed + FLAKY >= MEASURED_PASSES,
        "pjdfstest inside a share: {passed} passed, fewer than the {MEASURED_PASSES} measured\n{stdout}"
    );
}
