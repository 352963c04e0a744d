//! Issue 10: migrant tasks move to a dominated zombie and back, working on both sides between
//! moves, and finish with exactly the result of an uninterrupted run; while away they run in
//! the zombie's network namespace, at home in the master's, and never in both.

mod common;

use std::path::Path;

use common::migrate::{FINISH, MoveLan, PYTHON, processes_with, s, wait_log};

/// The network namespace (inode) of process `pid`.
fn netns_of(pid: i32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/ns/net"))
        .ok()
        .map(|p| p.display().to_string())
}

/// Checks that the processes of the program `marker` all run in the network namespace of the
/// daemon `daemon_pid` (one copy of the task, where it should be).
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

/// A counter: 10 stages of counting (each waits for its step file `DIR/step-K`; the result
/// for `step-11`), its state a hash of every number counted.
const COUNTER: &str = r#"
import hashlib, os, sys, time
n, steps = int(sys.argv[1]), sys.argv[2]
h = hashlib.sha256()
i = 0
for stage in range(1, 11):
    while not os.path.exists(os.path.join(steps, 'step-%d' % stage)):
        time.sleep(0.02)
    for _ in range(n // 10):
        h.update(i.to_bytes(8, 'little'))
        i += 1
    print('stage', stage, 'done', flush=True)
while not os.path.exists(os.path.join(steps, 'step-11')):
    time.sleep(0.02)
print('result', i, h.hexdigest(), flush=True)
"#;

/// A checksum over 1 GiB held in memory (blocks of SHA-256 output: nothing a codec shrinks
/// within a chunk), hashed a tenth per stage.
const CHECKSUM: &str = r#"
import hashlib, os, sys, time
size, steps = int(sys.argv[1]) << 20, sys.argv[2]
block = b''.join(hashlib.sha256(i.to_bytes(4, 'little')).digest() for i in range(1 << 15))
data = bytearray(size)
for off in range(0, size, len(block)):
    data[off:off + len(block)] = block
    data[off] = (off >> 20) & 0xff
print('filled', flush=True)
h = hashlib.sha256()
part = size // 10
view = memoryview(data)
for stage in range(1, 11):
    while not os.path.exists(os.path.join(steps, 'step-%d' % stage)):
        time.sleep(0.02)
    h.update(view[(stage - 1) * part:stage * part])
    print('stage', stage, 'done', flush=True)
while not os.path.exists(os.path.join(steps, 'step-11')):
    time.sleep(0.02)
print('result', size, h.hexdigest(), flush=True)
"#;

/// The result line of an uninterrupted run of `script` with `arg` (its steps all there).
fn uninterrupted(script: &Path, arg: &str, dir: &Path) -> String {
    let steps = dir.join("all-steps");
    std::fs::create_dir_all(&steps).unwrap();
    for k in 1..=11 {
        std::fs::write(steps.join(format!("step-{k}")), "").unwrap();
    }
    let out = std::process::Command::new(PYTHON)
        .arg(script)
        .arg(arg)
        .arg(&steps)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find(|l| l.starts_with("result"))
        .unwrap_or_else(|| panic!("no result in {text:?}"))
        .to_string()
}

/// Runs `script ARG` as a migrant and moves it to the zombie and back five times, a stage of
/// its work done before each move (at home, then on the zombie); checks where it runs, its
/// epochs and its final result against an uninterrupted run.
fn five_round_trips(lan: &MoveLan, name: &str, script_text: &str, arg: &str) {
    let script = lan.work.join(format!("{name}.py"));
    std::fs::write(&script, script_text).unwrap();
    let expected = uninterrupted(&script, arg, &lan.work);
    let steps = lan.work.join(format!("{name}-steps"));
    std::fs::create_dir_all(&steps).unwrap();
    let id = lan.run_migrant(
        &lan.work,
        &[
            PYTHON,
            script.to_str().unwrap(),
            arg,
            steps.to_str().unwrap(),
        ],
    );
    let marker = script.to_str().unwrap();
    let step = |k: u32| {
        std::fs::write(steps.join(format!("step-{k}")), "").unwrap();
        wait_log(lan, id, &format!("stage {k} done"), s(120));
    };
    for round in 1..=5 {
        step(2 * round - 1);
        let shown = lan.migrate(id);
        assert!(shown.contains("send-image"), "round {round}: {shown}");
        runs_only_beside(marker, lan.zombie.proc.pid());
        let t = lan.task(id);
        assert_eq!(t["epoch"], 2 * round as u64, "{t}");
        step(2 * round);
        lan.home(id);
        runs_only_beside(marker, lan.master.pid());
    }
    std::fs::write(steps.join("step-11"), "").unwrap();
    assert_eq!(lan.wait_exit(id, FINISH), 0);
    let log = lan.logs(id);
    assert!(
        log.lines().any(|l| l.trim() == expected),
        "expected {expected:?} in the task's output: {log:?}"
    );
}

#[test]
fn a_counter_moves_to_the_zombie_and_back_five_times_and_ends_with_the_uninterrupted_result() {
    let lan = MoveLan::new();
    five_round_trips(&lan, "counter", COUNTER, "2000000");
}

#[test]
fn a_checksum_over_1_gib_moves_to_the_zombie_and_back_five_times_and_ends_with_the_uninterrupted_result()
 {
    let lan = MoveLan::new();
    five_round_trips(&lan, "checksum", CHECKSUM, "1024");
}
