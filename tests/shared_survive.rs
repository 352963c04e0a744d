//! Issue 11: shared apps survive the master daemon. Each app runs with its
//! Xvnc under a supervisor of its own; a master killed with SIGKILL leaves
//! them running, and the next master adopts them (same task ids, same
//! pids) and serves views again — the xterm still shows what was typed
//! before. What a dead supervisor left (its sockets, X cookie, record) is
//! removed at the next start. `zos stop` says what ends and needs `--force`
//! without a terminal.

mod common;

use std::path::{Path, PathBuf};

use common::view::{View, XK_RETURN, XTERM_RED, bar_command, count_rgb};
use common::zos::{self, text};
use common::{Lan, secs};

/// The master's runtime dir (`XDG_RUNTIME_DIR/zos-HASH`).
fn runtime_dir(m: &common::Host) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(&m.runtime)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.into_iter().next().unwrap()
}

/// The supervisor's pid in task `id`'s record.
fn supervisor_pid(runtime: &Path, id: u64) -> i32 {
    let record = std::fs::read_to_string(runtime.join(format!("apps/{id}.json")))
        .unwrap_or_else(|e| panic!("no record of task {id}: {e}"));
    let record: serde_json::Value = serde_json::from_str(&record).unwrap();
    record["supervisor_pid"].as_i64().expect("a supervisor pid") as i32
}

/// Names of the display files (`xvnc-*`) in the runtime dir.
fn display_files(runtime: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(runtime)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("xvnc-"))
        .collect();
    names.sort();
    names
}

fn tasks(m: &common::Host) -> Vec<serde_json::Value> {
    zos::json(m, &["tasks", "--json"])
        .as_array()
        .cloned()
        .expect("a JSON array")
}

#[test]
fn a_shared_xterm_outlives_a_killed_master_and_is_adopted_with_what_was_typed() {
    let lan = Lan::new(&["m"]);
    let m = lan.host("m");
    let master = zos::start_master(m);
    m.run_ok(&[
        "run",
        "--shared",
        "--",
        "xterm",
        "-e",
        "bash",
        "--norc",
        "--noprofile",
    ]);
    m.run_ok(&["run", "--shared", "--", "xterm"]);
    let before = tasks(m);
    assert_eq!(before.len(), 2, "{before:?}");
    let xterm_pid = before[0]["pid"].as_i64().expect("a pid") as i32;
    let runtime = runtime_dir(m);
    let doomed = supervisor_pid(&runtime, 2);

    // Something typed into the app before the daemon goes.
    {
        let view = View::open(m, 1);
        view.wait_prompt(secs(30)).expect("the shell's prompt");
        view.type_text(&bar_command(41, 40));
        view.key(XK_RETURN);
        view.wait_frame(secs(10), |f| count_rgb(f, XTERM_RED) > 2000)
            .expect("the red bar typed into the xterm");
    }

    // The daemon dies without cleaning up; so does task 2's supervisor.
    master.kill9();
    let mut master = master;
    assert!(
        master.wait_exit(secs(10)).is_some(),
        "the master survived SIGKILL"
    );
    // SAFETY: kill(2) on the supervisor this test's daemon started.
    unsafe { libc::kill(doomed, libc::SIGKILL) };
    assert!(
        common::until(secs(10), || (!common::pid_alive(doomed)).then_some(())).is_some(),
        "task 2's supervisor survived SIGKILL"
    );
    std::thread::sleep(secs(1));
    assert!(
        common::pid_alive(xterm_pid),
        "task 1's xterm died with the daemon"
    );
    let left_by_2: Vec<String> = display_files(&runtime)
        .into_iter()
        .filter(|n| n.starts_with(&format!("xvnc-{doomed}-")))
        .collect();
    assert_eq!(
        left_by_2.len(),
        2,
        "task 2's socket and cookie stay until the next start: {left_by_2:?}"
    );

    // A new daemon adopts task 1 and cleans up after task 2.
    let again = zos::start_master(m);
    let after = tasks(m);
    assert_eq!(after.len(), 1, "only the live app is adopted: {after:?}");
    assert_eq!(after[0]["id"], 1);
    assert_eq!(after[0]["state"], "running");
    assert_eq!(
        after[0]["pid"].as_i64(),
        Some(xterm_pid as i64),
        "{after:?}"
    );
    assert_eq!(after[0]["command"][0], "xterm");
    let log = again.log();
    assert!(log.contains("adopted task 1"), "{log}");
    for name in &left_by_2 {
        assert!(!runtime.join(name).exists(), "{name} was not removed");
        assert!(log.contains(name.as_str()), "its removal is logged: {log}");
    }
    assert!(!runtime.join("apps/2.sock").exists() && !runtime.join("apps/2.json").exists());

    // The same app, with what was typed before.
    let view = View::open(m, 1);
    let seen = view.wait_frame(secs(10), |f| count_rgb(f, XTERM_RED) > 2000);
    assert!(seen.is_ok(), "the adopted xterm lost its screen");
    drop(view);
    // New tasks get new ids.
    let out = m.run_ok(&["run", "--shared", "--", "xterm"]);
    assert!(out.contains("task 3 started"), "{out}");

    // `zos stop` says what would end and, without a terminal, needs --force.
    let out = m.run(&["stop"]);
    assert!(!out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("task 1 (shared, xterm -e bash --norc --noprofile)"),
        "{said}"
    );
    assert!(said.contains("--force"), "{said}");
    assert!(!again.exited(), "the daemon stopped without --force");
    let out = m.run(&["stop", "--force"]);
    assert!(out.status.success(), "{}", text(&out));
    let mut again = again;
    assert!(
        again.wait_exit(secs(20)).is_some(),
        "the master did not stop"
    );
    assert!(
        common::until(secs(10), || (!common::pid_alive(xterm_pid)).then_some(())).is_some(),
        "zos stop --force left the app running"
    );
    assert!(
        common::until(secs(5), || display_files(&runtime).is_empty().then_some(())).is_some(),
        "display files left: {:?}",
        display_files(&runtime)
    );
}

#[test]
fn zos_stop_keep_apps_leaves_them_for_the_next_master() {
    let lan = Lan::new(&["m"]);
    let m = lan.host("m");
    let mut master = zos::start_master(m);
    m.run_ok(&["run", "--shared", "--", "xterm"]);
    let pid = tasks(m)[0]["pid"].as_i64().unwrap() as i32;
    let out = m.run(&["stop", "--keep-apps"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("task 1 (shared, xterm) keeps running"),
        "{}",
        text(&out)
    );
    assert!(
        master.wait_exit(secs(20)).is_some(),
        "the master did not stop"
    );
    std::thread::sleep(secs(1));
    assert!(common::pid_alive(pid), "the app ended with the daemon");
    let _again = zos::start_master(m);
    let after = tasks(m);
    assert_eq!(
        (after[0]["id"].as_i64(), after[0]["pid"].as_i64()),
        (Some(1), Some(pid as i64))
    );
}

#[test]
fn a_viewer_on_the_master_is_titled_with_the_masters_configured_name() {
    let lan = Lan::new(&["m"]);
    let m = lan.host("m");
    let _master = zos::start_master_with(m, &["--name", "laptop"]);
    m.run_ok(&["run", "--shared", "--", "xterm"]);
    let screen = m.xvfb();
    let _viewer = m.spawn_env(&["view", "1"], &[("DISPLAY", &screen.display)]);
    let titled = common::until(secs(20), || {
        let out = m.exec_env(
            "xdotool",
            // A seamless viewer window: "WINDOW TITLE — xterm on laptop (task 1)".
            &["search", "--name", "xterm on laptop \\(task 1\\)$"],
            &[("DISPLAY", &screen.display)],
        );
        (!out.stdout.is_empty()).then_some(())
    });
    assert!(
        titled.is_some(),
        "no viewer titled with the master's name (its host name is {})",
        zos_daemon_hostname()
    );
}

/// This machine's host name (what the title said before).
fn zos_daemon_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .to_string()
}
