//! Issue 10: migrant tasks move to a dominated zombie and back, and finish with exactly the
//! result of an uninterrupted run; while away they run in the zombie's network namespace, at
//! home in the master's, and never in both.

mod common;

use std::path::Path;

use common::migrate::{FINISH, MoveLan, processes_with, s};

/// The network namespace (inode) of process `pid`.
fn netns_of(pid: i32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/ns/net"))
        .ok()
        .map(|p| p.display().to_string())
}

/// Checks that exactly one copy of the program `marker` runs (its processes all in one
/// network namespace), and that it is the one of the daemon `daemon_pid`.
fn runs_only_beside(marker: &str, daemon_pid: i32) {
    let procs = processes_with(marker);
    assert!(!procs.is_empty(), "no process of {marker} runs");
    let want = netns_of(daemon_pid);
    for p in &procs {
        assert_eq!(
            netns_of(*p),
            want,
            "process {p} of {marker} runs outside the namespace of daemon {daemon_pid}"
        );
    }
}

/// The system's Python (a pyenv shim in root's home would be hidden in the zombie's pod).
const PYTHON: &str = "/usr/bin/python3";

const COUNTER: &str = r#"
import hashlib, os, sys, time
n, gate = int(sys.argv[1]), sys.argv[2]
h = hashlib.sha256()
for i in range(n):
    h.update(i.to_bytes(8, 'little'))
    if i % 5000 == 0:
        time.sleep(0.001)
while not os.path.exists(gate):
    time.sleep(0.05)
print('result', n, h.hexdigest(), flush=True)
"#;

/// The result line of an uninterrupted run of `script` with `args`.
fn uninterrupted(script: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(PYTHON)
        .arg(script)
        .args(args)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_counter_moves_to_the_zombie_and_back_five_times_and_ends_with_the_uninterrupted_result() {
    let lan = MoveLan::new();
    let script = lan.work.join("counter.py");
    std::fs::write(&script, COUNTER).unwrap();
    let open_gate = lan.work.join("open-gate");
    std::fs::write(&open_gate, "").unwrap();
    let expected = uninterrupted(&script, &["3000000", open_gate.to_str().unwrap()]);

    let gate = lan.work.join("gate");
    let id = lan.run_migrant(
        &lan.work,
        &[
            PYTHON,
            script.to_str().unwrap(),
            "3000000",
            gate.to_str().unwrap(),
        ],
    );
    let marker = script.to_str().unwrap();
    for round in 1..=5 {
        let shown = lan.migrate(id);
        assert!(shown.contains("send-image"), "round {round}: {shown}");
        runs_only_beside(marker, lan.zombie.proc.pid());
        let t = lan.task(id);
        assert_eq!(t["epoch"], 2 * round, "{t}");
        lan.home(id);
        runs_only_beside(marker, lan.master.pid());
    }
    std::fs::write(&gate, "").unwrap();
    assert_eq!(lan.wait_exit(id, FINISH), 0);
    let log = lan.logs(id);
    assert!(
        log.lines().any(|l| l.trim() == expected),
        "expected {expected:?} in the task's output: {log:?}"
    );
    let _ = s(0);
}
