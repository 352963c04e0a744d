//! Issue 13, snapshots: `zos snapshot` saves a migrant at home while it runs (whole, then
//! only what changed), `zos rollback` brings it back to a snapshot in place of its running
//! copy (same task, same terminal), a broken snapshot leaves the task running as it was,
//! `zos snapshot --every` keeps a rolling set, and `zos suspend` / `zos resume` carry every
//! migrant across a restart of the master daemon. A master alone (no zombie), real pods;
//! with a zombie, a snapshot of a task away is taken there and sent home.

mod common;

use std::time::Duration;

use common::host::ZOS;
use common::migrate::{PYTHON, run_migrant_on, task_of};
use common::pty::PtyProc;
use common::zos::{self, text};
use common::{Host, Lan, secs};
use serde_json::Value;

/// The master's name in these tests.
const MASTER: &str = "laptop";

/// A counter holding 64 MiB: `inc` counts, `show TAG` prints `SHOW TAG n`.
const COUNTER: &str = r#"
import sys
data = bytearray(64 << 20)
for off in range(0, len(data), 4096):
    data[off] = 1
i = 0
print('ready', flush=True)
while True:
    line = sys.stdin.readline()
    if not line:
        break
    words = line.split()
    if words == ['inc']:
        i += 1
    elif len(words) == 2 and words[0] == 'show':
        print('SHOW', words[1], i, flush=True)
"#;

/// A master alone, a counter started as a migrant, and a terminal attached to it.
struct Counter {
    lan: Lan,
    master: common::Proc,
    id: u64,
    attach: PtyProc,
}

impl Counter {
    fn start() -> Counter {
        common::require_root();
        common::pod_init::ensure_built();
        let lan = Lan::new(&["m"]);
        let m = lan.host("m");
        let master = zos::start_master_with(m, &["--name", MASTER]);
        std::fs::write(m.home.join("counter.py"), COUNTER).unwrap();
        let id = run_migrant_on(m, &m.home, &[PYTHON, "counter.py"]);
        let attach = attach(m, id);
        attach.wait_for("ready", secs(30));
        Counter {
            lan,
            master,
            id,
            attach,
        }
    }

    fn m(&self) -> &Host {
        self.lan.host("m")
    }

    /// Types `inc` `n` times.
    fn inc(&mut self, n: u32) {
        for _ in 0..n {
            self.attach.type_bytes(b"inc\r");
        }
    }

    /// Asks the counter (`show TAG`, each tag used once) and waits until it says `value`.
    fn expect(&mut self, tag: &str, value: u32) {
        self.attach.type_bytes(format!("show {tag}\r").as_bytes());
        self.attach
            .wait_for(&format!("SHOW {tag} {value}\r"), secs(20));
    }

    fn snapshot(&self, extra: &[&str]) -> String {
        let id = self.id.to_string();
        let mut args = vec!["snapshot", id.as_str()];
        args.extend_from_slice(extra);
        self.m().run_ok(&args)
    }

    fn snapshots(&self) -> Vec<Value> {
        let out = self
            .m()
            .run_ok(&["snapshots", &self.id.to_string(), "--json"]);
        serde_json::from_str::<Value>(&out)
            .unwrap_or_else(|e| panic!("zos snapshots --json: {e}: {out}"))
            .as_array()
            .cloned()
            .unwrap()
    }

    fn task(&self) -> Value {
        task_of(self.m(), self.id)
    }
}

fn attach(m: &Host, id: u64) -> PtyProc {
    PtyProc::start(m.command(ZOS, &["attach", &id.to_string()]), 100, 30)
}

#[test]
fn rollback_brings_back_the_snapshots_memory_and_an_incremental_snapshot_is_small() {
    let mut c = Counter::start();
    c.inc(2);
    c.expect("a", 2);
    let first = c.snapshot(&["--name", "at-two"]);
    assert!(first.contains("whole"), "{first}");
    c.inc(3);
    c.expect("b", 5);
    let second = c.snapshot(&[]);
    assert!(second.contains("incremental over 1"), "{second}");
    c.inc(1);
    c.expect("c", 6);

    let list = c.snapshots();
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0]["kind"], "whole", "{list:?}");
    assert_eq!(list[0]["name"], "at-two", "{list:?}");
    assert_eq!(list[1]["kind"], "delta", "{list:?}");
    assert_eq!(list[1]["parent"], 1, "{list:?}");
    let whole = list[0]["bytes"].as_u64().unwrap();
    let delta = list[1]["bytes"].as_u64().unwrap();
    assert!(
        whole > 64 << 20,
        "the whole snapshot holds the 64 MiB: {whole}"
    );
    assert!(
        delta * 20 < whole,
        "little changed, so the incremental snapshot is small: {delta} vs {whole}"
    );
    // On disk where the help says, private.
    let dir = c.m().home.join(format!("snapshots/task-{}", c.id));
    for (name, mode) in [
        ("", 0o700),
        ("0001-at-two.zpod", 0o600),
        ("0002.zpod", 0o600),
    ] {
        use std::os::unix::fs::MetadataExt;
        let md = std::fs::metadata(dir.join(name)).unwrap();
        assert_eq!(md.mode() & 0o777, mode, "{}", dir.join(name).display());
    }

    // Back to the delta (a chain), then to the named whole one, in the same terminal.
    let pid_before = c.task()["pid"].as_i64().unwrap();
    let out = c.m().run_ok(&["rollback", &c.id.to_string(), "2"]);
    assert!(out.contains("not rolled back"), "{out}");
    let t = c.task();
    assert_eq!(t["state"], "home", "{t}");
    assert_ne!(t["pid"].as_i64().unwrap(), pid_before, "a new pod: {t}");
    assert!(
        common::poll::until(secs(10), || (!common::pid_alive(pid_before as i32))
            .then_some(()))
        .is_some(),
        "the old pod ended"
    );
    c.expect("d", 5);
    c.m().run_ok(&["rollback", &c.id.to_string(), "at-two"]);
    c.expect("e", 2);
    // It runs on from there.
    c.inc(1);
    c.expect("f", 3);

    // Clear errors, and nothing changes.
    let id = c.id.to_string();
    let id = id.as_str();
    for (args, says) in [
        (vec!["rollback", id, "nope"], "no snapshot \"nope\""),
        (vec!["rollback", "99", "1"], "no migrant task 99"),
        (vec!["snapshot", "99"], "no migrant task 99"),
        (vec!["snapshot", id, "--name", "at-two"], "already"),
        (vec!["snapshot", id, "--name", "12"], "not all digits"),
    ] {
        let out = c.m().run(&args);
        assert!(!out.status.success(), "zos {args:?} succeeded");
        assert!(text(&out).contains(says), "zos {args:?}: {}", text(&out));
    }
    assert_eq!(c.task()["state"], "home");
    c.expect("g", 3);
}

#[test]
fn a_broken_snapshot_leaves_the_task_running_as_it_was() {
    let mut c = Counter::start();
    c.inc(1);
    c.expect("a", 1);
    c.snapshot(&[]);
    c.inc(3);
    c.expect("b", 4);
    let file = c
        .m()
        .home
        .join(format!("snapshots/task-{}/0001.zpod", c.id));
    let mut bytes = std::fs::read(&file).unwrap();
    let half = bytes.len() / 2;
    bytes.truncate(half);
    std::fs::write(&file, &bytes).unwrap();
    let pid = c.task()["pid"].as_i64().unwrap();

    let out = c.m().run(&["rollback", &c.id.to_string(), "1"]);
    assert!(!out.status.success(), "a truncated snapshot was restored");
    assert!(text(&out).contains("snapshot 1"), "{}", text(&out));
    let t = c.task();
    assert_eq!(t["state"], "home", "{t}");
    assert_eq!(t["pid"].as_i64().unwrap(), pid, "the same pod runs on: {t}");
    c.expect("c", 4);
}

#[test]
fn scheduled_snapshots_keep_a_rolling_set_that_stays_restorable() {
    let mut c = Counter::start();
    c.inc(1);
    c.expect("a", 1);
    let out = c.snapshot(&["--every", "1s", "--keep", "2"]);
    assert!(out.contains("every 1s"), "{out}");
    // Enough ticks for several chains to come and go.
    std::thread::sleep(Duration::from_secs(9));
    c.snapshot(&["--every", "off"]);
    let list = c.snapshots();
    let autos: Vec<&Value> = list.iter().filter(|s| s["auto"] == true).collect();
    assert!(
        autos.len() >= 2 && autos.len() <= 3,
        "at least the newest 2, at most 2·2 − 1: {list:?}"
    );
    let newest = autos.last().unwrap()["id"].as_u64().unwrap();
    assert!(newest >= 5, "the schedule went on: {list:?}");
    // Every file listed is there, and nothing else.
    let dir = c.m().home.join(format!("snapshots/task-{}", c.id));
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".zpod"))
        .collect();
    files.sort();
    let expected: Vec<String> = list
        .iter()
        .map(|s| format!("{:04}.zpod", s["id"].as_u64().unwrap()))
        .collect();
    assert_eq!(files, expected, "{list:?}");
    c.inc(3);
    c.expect("b", 4);
    c.m()
        .run_ok(&["rollback", &c.id.to_string(), &newest.to_string()]);
    c.expect("c", 1);
}

#[test]
fn suspend_then_a_master_restart_then_resume_runs_the_task_on_with_its_state() {
    let mut c = Counter::start();
    c.inc(2);
    c.expect("a", 2);
    c.snapshot(&[]);
    c.inc(3);
    c.expect("b", 5);
    // A schedule, slow enough to take nothing before the suspend: it outlives the restart.
    let id = c.id.to_string();
    c.m()
        .run_ok(&["snapshot", "--every", "1h", "--keep", "3", &id]);
    let pid = c.task()["pid"].as_i64().unwrap();
    let out = c.m().run_ok(&["suspend"]);
    assert!(
        out.contains(&format!("suspended: task(s) {}", c.id)),
        "{out}"
    );
    let t = c.task();
    assert_eq!(t["state"], "suspended", "{t}");
    assert!(
        common::poll::until(secs(10), || (!common::pid_alive(pid as i32)).then_some(())).is_some(),
        "the suspended pod still runs"
    );
    let list = c.snapshots();
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(
        list[1]["kind"], "delta",
        "suspend saves incrementally: {list:?}"
    );

    // Nothing runs, so the master stops without --force; a new one lists the task.
    c.m().run_ok(&["stop"]);
    assert!(c.master.wait_exit(secs(20)).is_some(), "{}", c.master.log());
    let master = zos::start_master_with(c.m(), &["--name", MASTER]);
    master.wait_log("suspended task(s) from before", secs(10));
    let t = task_of(c.m(), c.id);
    assert_eq!(t["state"], "suspended", "{t}");
    let out = c.m().run(&["resume", "99"]);
    assert!(!out.status.success() && text(&out).contains("not suspended"));

    let out = c.m().run_ok(&["resume"]);
    assert!(out.contains(&format!("resumed: task(s) {}", c.id)), "{out}");
    let t = task_of(c.m(), c.id);
    assert_eq!(t["state"], "home", "{t}");
    let mut again = attach(c.m(), c.id);
    again.type_bytes(b"show c\r");
    again.wait_for("SHOW c 5\r", secs(20));
    let listed = c.m().run_ok(&["snapshots", &id]);
    assert!(
        listed.contains("(a snapshot every 1h, the newest 3 kept)"),
        "the schedule came back with the daemon: {listed}"
    );
    c.m().run_ok(&["snapshot", "--every", "off", &id]);
    let listed = c.m().run_ok(&["snapshots", &id]);
    assert!(!listed.contains("a snapshot every"), "{listed}");
    // Its id stays its own: a new task gets another.
    let next = run_migrant_on(c.m(), &c.m().home, &["sleep", "60"]);
    assert!(next > c.id, "new task {next} after {}", c.id);
}

#[test]
fn a_task_away_is_snapshotted_by_its_zombie_and_rolled_back_to_that_at_home() {
    let lan = common::migrate::MoveLan::new();
    let m = lan.m();
    let w = common::migrate::Worker::start(&lan, "snapped-away", 64);
    let id = w.id.to_string();
    let out = m.run_ok(&["snapshot", &id]);
    assert!(out.contains("snapshot 1 (whole)"), "{out}");
    w.step(&lan, 1);
    lan.migrate(w.id);
    w.step(&lan, 2);
    // Taken on the zombie while the task runs on there: whole, kept at home.
    let out = m.run_ok(&["snapshot", &id, "--name", "away"]);
    let zombie = common::migrate::ZOMBIE;
    assert!(
        out.contains("snapshot 2 \"away\" (whole)") && out.contains(&format!("taken on {zombie}")),
        "{out}"
    );
    let t = lan.task(w.id);
    assert_eq!(t["where"], zombie, "it runs on where it was: {t}");
    w.step(&lan, 3);
    // A rollback needs the task at home.
    let out = m.run(&["rollback", &id, "away"]);
    assert!(!out.status.success());
    let expected = format!("task {id} runs on {zombie}: bring it home first (zos home {id})");
    assert!(text(&out).contains(&expected), "{}", text(&out));
    lan.home(w.id);
    let out = m.run_ok(&["rollback", &id, "away"]);
    assert!(out.contains("runs from snapshot 2 \"away\""), "{out}");
    // Back at the zombie's moment: stage 3 is done again, the result is an uninterrupted run's.
    w.finish(&lan, 4);
    let log = lan.logs(w.id);
    assert_eq!(log.matches("stage 2 done").count(), 1, "{log}");
    assert_eq!(log.matches("stage 3 done").count(), 2, "{log}");
    let listed = m.run_ok(&["snapshots", &id]);
    assert!(listed.contains(&format!("on {zombie}")), "{listed}");
}

#[test]
fn snapshots_of_a_task_gone_outlive_the_daemon_until_pruned() {
    common::require_root();
    common::pod_init::ensure_built();
    let lan = Lan::new(&["m"]);
    let m = lan.host("m");
    let mut master = zos::start_master_with(m, &["--name", MASTER]);
    let id = run_migrant_on(m, &m.home, &["sleep", "600"]);
    m.run_ok(&["snapshot", &id.to_string(), "--name", "kept"]);
    m.run_ok(&["stop", "--force"]);
    assert!(master.wait_exit(secs(20)).is_some(), "{}", master.log());

    let _master = zos::start_master_with(m, &["--name", MASTER]);
    let listed = m.run_ok(&["snapshots", &id.to_string()]);
    assert!(listed.contains("kept"), "{listed}");
    let next = run_migrant_on(m, &m.home, &["sleep", "600"]);
    assert!(
        next > id,
        "a new task ({next}) does not take the id of {id}'s snapshots"
    );
    let dir = m.home.join(format!("snapshots/task-{id}"));
    assert!(dir.is_dir());
    let out = m.run_ok(&["snapshots", "--prune"]);
    assert!(out.contains(&format!("task(s) {id}:")), "{out}");
    assert!(!dir.exists(), "{} stayed", dir.display());
    let out = m.run(&["snapshots", &id.to_string()]);
    assert!(!out.status.success(), "{}", text(&out));
}
