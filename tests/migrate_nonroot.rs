//! Issue 10: the same moves with both daemons run by an ordinary user (not root): the pods
//! are user namespaces that user owns, on the master and on the zombie; the task comes back
//! with the result of an uninterrupted run.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Output;

use common::host::ZOS;
use common::migrate::{PYTHON, in_netns_of, processes_with};
use common::zos::{self, text};
use common::{Host, Lan, secs};

/// `setpriv` arguments that run a program as `nobody`, without a login.
const AS_NOBODY: [&str; 3] = ["--reuid=nobody", "--regid=nogroup", "--clear-groups"];

/// Runs `zos ARGS` as nobody on `host`.
fn zos_as_nobody(host: &Host, args: &[&str]) -> Output {
    let mut all: Vec<&str> = AS_NOBODY.to_vec();
    all.push(ZOS);
    all.extend_from_slice(args);
    host.exec("setpriv", &all)
}

fn ok(host: &Host, args: &[&str]) -> String {
    let out = zos_as_nobody(host, args);
    assert!(
        out.status.success(),
        "zos {} as nobody: {}",
        args.join(" "),
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A slow, deterministic computation (about 20 s, mostly asleep).
const WORK: &str = "import hashlib, time\n\
h = hashlib.sha256()\n\
for i in range(2000):\n    h.update(str(i).encode()); time.sleep(0.01)\n\
print('result', h.hexdigest(), flush=True)\n";

#[test]
fn a_migrant_moves_there_and_back_with_both_daemons_run_by_an_ordinary_user() {
    common::require_root();
    common::pod_init::ensure_built();
    let lan = Lan::new(&["m", "z1"]);
    let (m, z) = (lan.host("m"), lan.host("z1"));
    for h in [m, z] {
        let parent = h.home.parent().unwrap();
        std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o711)).unwrap();
        for dir in [&h.home, &h.runtime] {
            std::os::unix::fs::chown(dir, Some(65534), Some(65534)).unwrap();
        }
    }
    let mut args: Vec<&str> = AS_NOBODY.to_vec();
    args.extend_from_slice(&[ZOS, "master", "--name", "laptop"]);
    let master = m.spawn_program("setpriv", &args, &[]);
    master.wait_log("master daemon ready", zos::STARTUP);
    let mut args: Vec<&str> = AS_NOBODY.to_vec();
    args.extend_from_slice(&[
        ZOS,
        "zombie",
        "--name",
        "z1",
        "--auto-accept",
        "--no-viewers",
    ]);
    let zombie = z.spawn_program("setpriv", &args, &[]);
    zombie.wait_log("listening on", zos::STARTUP);
    common::poll::until(zos::DISCOVERY, || {
        ok(m, &["hosts", "--json"]).contains("\"z1\"").then_some(())
    })
    .expect("the master sees z1");
    let code = ok(z, &["pair-code", "--level", "complete"]);
    ok(
        m,
        &["pair", "z1", "--code", code.lines().next().unwrap().trim()],
    );
    ok(m, &["dominate", "z1"]);

    // The uninterrupted run, meanwhile.
    let uninterrupted = std::thread::spawn(|| {
        let out = std::process::Command::new(PYTHON)
            .args(["-c", WORK])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    });
    // Started in `/`: the zombie hides the master's homes and /tmp (nothing is exported here).
    let mut run: Vec<&str> = AS_NOBODY.to_vec();
    run.extend_from_slice(&[ZOS, "run", "--migrant", "--", PYTHON, "-c", WORK]);
    let out = m
        .command("setpriv", &run)
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let id = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .map(|s| s.trim_end_matches(':').to_string())
        .expect("a task id");
    // A task working in the master's home (hidden in the zombie's pods, not exported) is
    // refused before it is touched, saying why.
    let out = zos_as_nobody(m, &["run", "--migrant", "--", "sleep", "600"]);
    assert!(out.status.success(), "{}", text(&out));
    let sleeper = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .map(|s| s.trim_end_matches(':').to_string())
        .unwrap();
    let out = zos_as_nobody(m, &["migrate", &sleeper, "z1"]);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("which the zombie hides") && said.contains("zos export"),
        "{said}"
    );

    std::thread::sleep(secs(1));
    ok(m, &["migrate", &id, "z1"]);
    // On the zombie: nobody's, in a user namespace of its own, in z1's network namespace.
    let procs: Vec<i32> = processes_with("hashlib")
        .into_iter()
        .filter(|p| in_netns_of(*p, z))
        .collect();
    assert!(!procs.is_empty(), "the task runs on z1");
    for p in &procs {
        let status = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap();
        let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        assert!(
            uid.split_whitespace().skip(1).all(|u| u == "65534"),
            "{uid}"
        );
        let ours = std::fs::read_link("/proc/self/ns/user").unwrap();
        assert_ne!(
            std::fs::read_link(format!("/proc/{p}/ns/user")).unwrap(),
            ours
        );
    }
    std::thread::sleep(secs(1));
    ok(m, &["home", &id]);
    let log = common::poll::until(secs(120), || {
        let tasks: serde_json::Value = serde_json::from_str(&ok(m, &["tasks", "--json"])).unwrap();
        (tasks[0]["state"] == "exited").then(|| ok(m, &["logs", &id]))
    })
    .expect("the task ends");
    let expected = uninterrupted.join().unwrap();
    assert!(log.contains(&expected), "expected {expected:?} in {log:?}");
    ok(m, &["release", "z1"]);
    let _ = (master, zombie);
}
