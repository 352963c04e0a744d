//! Issue 10, the daemon's first part: `zos run --migrant` starts a task in a pod on the master
//! (its own PID namespace with `zos-pod-init` as PID 1, the caller's directory and
//! environment, a terminal of its own); `zos tasks` lists it; `zos attach` shows its terminal
//! and types into it; `zos logs` prints what it wrote; `zos stop` ends every pod.

mod common;

use std::time::Duration;

use common::host::ZOS;
use common::pty::PtyProc;
use common::zos::{self, text};
use common::{Lan, secs};
use serde_json::Value;

/// The master's name in these tests.
const MASTER: &str = "laptop";

/// Host PIDs of `pid`'s children.
fn children(pid: i64) -> Vec<i64> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[test]
fn migrant_runs_in_its_own_pod_and_its_terminal_is_attachable_and_logged() {
    common::require_root();
    common::pod_init::ensure_built();
    let lan = Lan::new(&["m"]);
    let m = lan.host("m");
    let _master = zos::start_master_with(m, &["--name", MASTER]);
    let work = m.home.join("work dir");
    std::fs::create_dir_all(&work).unwrap();

    let script = "echo \"pid=$$ init=$(cat /proc/1/comm) cwd=$(pwd) mark=$ZOS_TEST_MARK\"; \
                  echo hello; read x; echo \"got $x\"; echo \"size $(stty size)\"";
    let id = common::migrate::run_migrant_with(
        m,
        &work,
        &[("ZOS_TEST_MARK", "m4rk")],
        &["sh", "-c", script],
    );

    let t = common::migrate::task_of(m, id);
    assert_eq!(t["kind"], "migrant", "{t}");
    assert_eq!(t["where"], MASTER, "{t}");
    assert_eq!(t["state"], "home", "{t}");
    assert_eq!(t["command"][0], "sh", "{t}");
    assert_eq!(t["epoch"], 1, "{t}");
    assert!(
        t["since"].as_u64().is_some_and(|s| s > 1_600_000_000),
        "{t}"
    );

    // Attach from a terminal of 100 columns × 30 rows: the recent output, then typing.
    let mut attach = PtyProc::start(m.command(ZOS, &["attach", &id.to_string()]), 100, 30);
    attach.wait_for("hello", secs(20));
    attach.type_bytes(b"42\r");
    attach.wait_for("got 42", secs(20));
    // The task's terminal took the attached window's size.
    attach.wait_for("size 30 100", secs(20));
    // The task ended: attach shows how and exits.
    attach.wait_for("exit 0", secs(20));
    assert!(
        attach.wait_exit(secs(10)).is_some_and(|s| s.success()),
        "{}",
        attach.screen()
    );

    let t = common::poll::until(secs(10), || {
        let t = common::migrate::task_of(m, id);
        (t["state"] == "exited").then_some(t)
    })
    .unwrap_or_else(|| {
        panic!(
            "task {id} never shown as exited: {}",
            common::migrate::task_of(m, id)
        )
    });
    assert_eq!(t["exit"], 0, "{t}");

    // The log has everything, and shows the pod: the task is PID 2 under our init as PID 1,
    // in the caller's directory with the caller's environment.
    let log = m.run_ok(&["logs", &id.to_string()]);
    let expected = format!("pid=2 init=zos-pod-init cwd={} mark=m4rk", work.display());
    assert!(
        log.contains(&expected),
        "expected {expected:?} in the log:\n{log}"
    );
    for line in ["hello", "got 42", "size 30 100"] {
        assert!(log.contains(line), "{line:?} missing from the log:\n{log}");
    }
}

#[test]
fn logs_follow_prints_new_output_and_ends_with_the_task() {
    common::require_root();
    common::pod_init::ensure_built();
    let lan = Lan::new(&["m"]);
    let m = lan.host("m");
    let _master = zos::start_master_with(m, &["--name", MASTER]);
    let id = common::migrate::run_migrant_with(
        m,
        &m.home,
        &[],
        &[
            "sh",
            "-c",
            "for i in 1 2 3 4 5; do echo line-$i; sleep 0.3; done",
        ],
    );
    let out = m.run_ok(&["logs", "-f", &id.to_string()]);
    for i in 1..=5 {
        assert!(
            out.contains(&format!("line-{i}")),
            "line-{i} missing:\n{out}"
        );
    }
}

#[test]
fn stopping_the_master_ends_every_pod() {
    common::require_root();
    common::pod_init::ensure_built();
    let lan = Lan::new(&["m"]);
    let m = lan.host("m");
    let mut master = zos::start_master_with(m, &["--name", MASTER]);
    let polite = common::migrate::run_migrant_with(m, &m.home, &[], &["sleep", "1000"]);
    // This one ignores SIGTERM and SIGHUP (the hang-up of its terminal when the daemon goes),
    // and its child inherits that: only SIGKILL ends it.
    let stubborn = common::migrate::run_migrant_with(
        m,
        &m.home,
        &[],
        &["sh", "-c", "trap '' TERM HUP; sleep 1000; sleep 1000"],
    );
    let mut pids = Vec::new();
    for id in [polite, stubborn] {
        let init = common::migrate::task_of(m, id)["pid"]
            .as_i64()
            .expect("a pod init pid");
        let task_pids = common::poll::until(secs(10), || {
            let c = children(init);
            (!c.is_empty()).then_some(c)
        })
        .expect("the task runs under the pod's init");
        pids.push(init);
        pids.extend(task_pids);
    }
    for &p in &pids {
        assert!(common::pid_alive(p as i32), "pid {p} should run");
    }
    // `zos stop` says what ends and, without a terminal, needs --force.
    let out = m.run(&["stop"]);
    assert!(!out.status.success(), "zos stop ended tasks unasked");
    assert!(text(&out).contains("--force"), "{}", text(&out));
    let out = m.run(&["stop", "--force"]);
    assert!(out.status.success(), "zos stop --force: {}", text(&out));
    assert!(
        master.wait_exit(secs(20)).is_some(),
        "the master did not stop:\n{}",
        master.log()
    );
    for &p in &pids {
        assert!(
            common::poll::until(Duration::from_secs(5), || (!common::pid_alive(p as i32))
                .then_some(()))
            .is_some(),
            "pid {p} of a pod outlived the master:\n{}",
            master.log()
        );
    }
    let log = master.log();
    assert!(
        log.contains("SIGKILL"),
        "the stubborn pod needed SIGKILL:\n{log}"
    );
}

/// `setpriv` arguments that run a program as `nobody`, without a login.
const AS_NOBODY: [&str; 3] = ["--reuid=nobody", "--regid=nogroup", "--clear-groups"];

/// Runs `zos ARGS` as nobody on `m`; its output.
fn zos_as_nobody(m: &common::Host, args: &[&str]) -> std::process::Output {
    let mut all: Vec<&str> = AS_NOBODY.to_vec();
    all.push(ZOS);
    all.extend_from_slice(args);
    m.exec("setpriv", &all)
}

#[test]
fn a_master_run_by_an_ordinary_user_runs_a_migrant_in_a_pod_of_its_own() {
    use std::os::unix::fs::PermissionsExt;
    common::require_root();
    common::pod_init::ensure_built();
    let lan = Lan::new(&["m"]);
    let m = lan.host("m");
    // nobody owns this host's home and runtime dir (and may pass through to them).
    let parent = m.home.parent().unwrap();
    std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o711)).unwrap();
    for dir in [&m.home, &m.runtime] {
        std::os::unix::fs::chown(dir, Some(65534), Some(65534)).unwrap();
    }
    let mut args: Vec<&str> = AS_NOBODY.to_vec();
    args.extend_from_slice(&[ZOS, "master", "--name", MASTER]);
    let master = m.spawn_program("setpriv", &args, &[]);
    master.wait_log("master daemon ready", zos::STARTUP);

    let script =
        "echo \"uid=$(id -u) pid=$$ map=$(cat /proc/self/uid_map | tr -s ' ')\"; sleep 1000";
    let out = zos_as_nobody(m, &["run", "--migrant", "--", "sh", "-c", script]);
    assert!(
        out.status.success(),
        "zos run --migrant as nobody:\n{}",
        text(&out)
    );
    let tasks: Value = serde_json::from_slice(&zos_as_nobody(m, &["tasks", "--json"]).stdout)
        .expect("zos tasks --json as nobody");
    let t = &tasks[0];
    assert_eq!(t["kind"], "migrant", "{tasks}");
    assert_eq!(t["state"], "home", "{tasks}");
    let id = t["id"].as_u64().unwrap().to_string();
    let init = t["pid"].as_i64().expect("a pod init pid");

    let log = common::poll::until(secs(10), || {
        let out = zos_as_nobody(m, &["logs", &id]);
        let log = String::from_utf8_lossy(&out.stdout).into_owned();
        log.contains("uid=").then_some(log)
    })
    .expect("the task wrote its line");
    // Inside: the daemon's own uid, mapped to itself; the task is PID 2.
    assert!(
        log.contains("uid=65534 pid=2 map= 65534 65534 1"),
        "unexpected pod view: {log:?}"
    );
    // Outside: the pod's init runs as nobody, in a user namespace that is not the host's.
    let status = std::fs::read_to_string(format!("/proc/{init}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line.split_whitespace().skip(1).all(|u| u == "65534"),
        "{uid_line}"
    );
    let ours = std::fs::read_link("/proc/self/ns/user").unwrap();
    let pods = std::fs::read_link(format!("/proc/{init}/ns/user")).unwrap();
    assert_ne!(ours, pods, "the pod has a user namespace of its own");

    let out = zos_as_nobody(m, &["stop", "--force"]);
    assert!(out.status.success(), "zos stop as nobody: {}", text(&out));
    assert!(
        common::poll::until(secs(10), || (!common::pid_alive(init as i32)).then_some(())).is_some(),
        "the pod outlived the master"
    );
}

#[test]
fn a_migrant_that_cannot_start_is_refused_with_the_reason_and_leaves_no_task() {
    common::require_root();
    common::pod_init::ensure_built();
    let lan = Lan::new(&["m"]);
    let m = lan.host("m");
    let _master = zos::start_master_with(m, &["--name", MASTER]);
    let out = m.run(&["run", "--migrant", "--", "zos-no-such-program"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("cannot find \"zos-no-such-program\""),
        "{}",
        text(&out)
    );
    let tasks = zos::json(m, &["tasks", "--json"]);
    assert_eq!(tasks, serde_json::json!([]), "no task is left of it");
}
