//! Pods checkpointed and restored by an ordinary user (no root): run as root, this test
//! compiles what it needs and re-runs itself under `setpriv` as `nobody` for each scenario;
//! a scenario that fails (or a missing `setpriv`) fails the test.

mod common;

use common::pods::*;
use common::*;
use std::process::Command;

const NOBODY: u32 = 65534;

/// A scenario, run as `nobody`; panics on failure.
type Scenario = fn(&std::path::Path);

/// The whole cycle as nobody: spawn a pod (inside and outside uid: nobody's), a parent
/// waiting for its child; checkpoint, restore, the parent collects the child's status.
fn cycle_as_ordinary_user(_: &std::path::Path) {
    let run = start_prog("forkwait", &[]);
    run.wait_for("READY", 20);
    let (image, _) = run.checkpoint_and_end();
    let after = restore_running(&image);
    after.type_in("go\n");
    let (code, text) = after.finish(20);
    assert!(text.contains("REAPED 3 pid-ok=1 exit=42"), "{text}");
    assert_eq!(code, 0);
}

/// A pipeline with bytes in its pipe, checkpointed and restored as nobody.
fn pipeline_as_ordinary_user(_: &std::path::Path) {
    let reference = start_prog("pipeline", &["100000"]);
    reference.wait_for("READY", 20);
    reference.type_in("go\n");
    let (_, ref_text) = reference.finish(30);
    let want = ref_text
        .lines()
        .find(|l| l.starts_with("RESULT"))
        .unwrap()
        .to_string();
    let run = start_prog("pipeline", &["100000"]);
    run.wait_for("READY", 20);
    let (image, _) = run.checkpoint_and_end();
    let after = restore_running(&image);
    after.type_in("go\n");
    let (code, text) = after.finish(30);
    assert!(text.contains(&want), "want {want}:\n{text}");
    assert_eq!(code, 0);
}

/// Restore, as nobody, a pod root checkpointed (inside uid 0, outside 0): inside it is still
/// uid 0, outside it is nobody.
fn restore_of_roots_pod_maps_the_new_outside_uid(dir: &std::path::Path) {
    let image = std::fs::read(dir.join("root-pod.img")).expect("image made by root");
    let after = restore_running(&image);
    let host = after.pod.pid();
    let status = std::fs::read_to_string(format!("/proc/{host}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line.ends_with(&format!("{NOBODY}")),
        "outside: {uid_line}"
    );
    after.type_in("go\n");
    let (code, text) = after.finish(20);
    assert!(text.contains("inside=0 map=0 65534 1"), "{text}");
    assert_eq!(code, 0);
}

/// Every kind of shared object (programs of tests/kinds.rs) and a python3 asyncio job,
/// checkpointed and restored by an ordinary user.
fn kinds_as_ordinary_user(dir: &std::path::Path) {
    let dir = dir.to_string_lossy();
    for (name, args) in [
        ("anonfds", vec![]),
        ("unixpairs", vec![]),
        ("memfds", vec![]),
        ("timers", vec![]),
        ("locks", vec![dir.as_ref()]),
        ("ipc", vec![]),
    ] {
        let run = start_prog(name, &args);
        run.wait_for("READY", 20);
        let (image, _) = run.checkpoint_and_end();
        let after = restore_running(&image);
        after.type_in("go\n");
        let (code, text) = after.finish(30);
        assert!(code == 0 && text.contains("\nPASS"), "{name}: {text}");
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/progs/asyncio_job.py");
    let run = PodRun::start(&spec(&["/usr/bin/python3", script]));
    run.wait_for("STEP 150", 30);
    let (image, _) = run.checkpoint_and_end();
    let (code, text) = restore_running(&image).finish(60);
    assert!(code == 0 && text.contains("RESULT [('executor'"), "{text}");
}

const SCENARIOS: &[(&str, Scenario)] = &[
    ("kinds_as_ordinary_user", kinds_as_ordinary_user),
    ("cycle_as_ordinary_user", cycle_as_ordinary_user),
    ("pipeline_as_ordinary_user", pipeline_as_ordinary_user),
    (
        "restore_of_roots_pod_maps_the_new_outside_uid",
        restore_of_roots_pod_maps_the_new_outside_uid,
    ),
];

/// As root: the image of a pod of root's whose task prints its uid and uid map after "go".
fn make_root_image(dir: &TempDir) {
    let script = "read go; echo inside=$(id -u) map=$(cat /proc/self/uid_map | tr -s ' ' | \
                  sed 's/^ //')";
    let run = PodRun::start(&spec(&["sh", "-c", script]));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (image, _) = run.checkpoint_and_end();
    let path = dir.join("root-pod.img");
    std::fs::write(&path, image).unwrap();
    Command::new("chmod")
        .arg("644")
        .arg(&path)
        .status()
        .unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--scenario") {
        let name = &args[i + 1];
        let dir = std::path::PathBuf::from(&args[i + 2]);
        let (_, f) = SCENARIOS.iter().find(|s| s.0 == name).expect("scenario");
        f(&dir);
        return;
    }
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    assert_eq!(uid, 0, "run this test as root: it drops to nobody");
    let filter: Vec<&String> = args
        .iter()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let progs = progs();
    let init = pod_init();
    let dir = TempDir::new("unpriv");
    make_root_image(&dir);
    let me = std::env::current_exe().unwrap();
    let mut failed = Vec::new();
    for (name, _) in SCENARIOS {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let st = Command::new("setpriv")
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .arg(&me)
            .args(["--scenario", name, &dir.path()])
            .env("ZCKPT_PROGS", &progs)
            .env("ZCKPT_INIT", &init)
            .current_dir("/")
            .status()
            .expect("setpriv (util-linux) is needed to run as nobody");
        println!(
            "test {name} (as nobody) ... {}",
            if st.success() { "ok" } else { "FAILED" }
        );
        if !st.success() {
            failed.push(*name);
        }
    }
    if !failed.is_empty() {
        eprintln!("failed: {failed:?}");
        std::process::exit(1);
    }
}
