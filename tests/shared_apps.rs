//! Issue 4 (first part): `zos run --shared -- CMD` starts the app in its own
//! virtual display on the master; `zos tasks` lists it; the task and its
//! display go when the app exits; nothing outlives the daemon.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::zos::{self, text};
use common::{Lan, secs};

/// Xvnc processes serving sockets under `runtime` (this host's, not those
/// of any other test running beside us).
fn xvnc_pids(runtime: &Path) -> Vec<u32> {
    let needle = runtime.to_string_lossy().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "Xvnc")
                && std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&needle))
        })
        .collect()
}

/// Unix sockets of shared apps under the host's runtime dir.
fn rfb_sockets(runtime: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for dir in std::fs::read_dir(runtime).unwrap().flatten() {
        if let Ok(entries) = std::fs::read_dir(dir.path()) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if name.starts_with("xvnc-") && name.ends_with(".sock") {
                    out.push(e.path());
                }
            }
        }
    }
    out
}

#[test]
fn shared_app_gets_a_private_display_and_leaves_nothing() {
    if std::process::Command::new("xterm")
        .arg("-version")
        .output()
        .is_err()
    {
        panic!("xterm is needed (packaging/system-packages.txt lists it)");
    }
    let lan = Lan::new(&["m"]);
    let m = lan.host("m");
    let mut master = zos::start_master(m);

    let out = m.run(&["run", "--shared", "--", "xterm", "-e", "sleep", "1000"]);
    assert!(out.status.success(), "zos run failed:\n{}", text(&out));
    let tasks = zos::json(m, &["tasks", "--json"]);
    let tasks = tasks.as_array().expect("a JSON array");
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    let task = &tasks[0];
    assert_eq!(task["kind"], "shared");
    assert_eq!(task["state"], "running");
    assert_eq!(task["command"][0], "xterm");
    let display = task["display"].as_str().expect("a display").to_string();
    assert!(display.starts_with(':'), "{display}");

    // Its display is served only on a private unix socket.
    let sockets = rfb_sockets(&m.runtime);
    assert_eq!(sockets.len(), 1, "{sockets:?}");
    let mode = std::fs::metadata(&sockets[0]).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "RFB socket mode");
    let tcp = m.exec("ss", &["-ltnp"]);
    assert!(
        !text(&tcp).contains("Xvnc"),
        "Xvnc must not listen on TCP:\n{}",
        text(&tcp)
    );
    assert_eq!(xvnc_pids(&m.runtime).len(), 1, "one Xvnc for the app");

    // The app exits: the task and its display go.
    let pid = task["pid"].as_u64().expect("app pid") as i32;
    // SAFETY: kill(2) on the app the daemon started for this test.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let gone = common::until(secs(10), || {
        zos::json(m, &["tasks", "--json"])
            .as_array()
            .is_some_and(|a| a.is_empty())
            .then_some(())
    });
    assert!(gone.is_some(), "the task stays listed after its app exited");
    let cleaned = common::until(secs(10), || {
        (rfb_sockets(&m.runtime).is_empty()).then_some(())
    });
    assert!(cleaned.is_some(), "the display's socket was not removed");

    // A second app, then the daemon stops: no Xvnc is left behind.
    let out = m.run(&["run", "--shared", "--", "xterm"]);
    assert!(
        out.status.success(),
        "second zos run failed:\n{}",
        text(&out)
    );
    assert_eq!(xvnc_pids(&m.runtime).len(), 1);
    master.term();
    assert!(
        master.wait_exit(secs(10)).is_some(),
        "the master did not stop"
    );
    let none = common::until(secs(10), || xvnc_pids(&m.runtime).is_empty().then_some(()));
    assert!(none.is_some(), "an Xvnc outlived the daemon");
    assert!(rfb_sockets(&m.runtime).is_empty(), "sockets left behind");
}
