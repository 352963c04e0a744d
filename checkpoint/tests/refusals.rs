//! Every class of state the engine refuses to save is reported, all at once, and the process
//! is left running untouched.

mod common;

use common::*;
use std::io::Write;
use zos_checkpoint::{DumpOptions, Error, check, checkpoint};

/// The refusal classes of `check.rs` / `fdclass.rs` / `vmas.rs`, each with the words that
/// identify its reason. Classes 12 and 13 have several kinds; every kind is listed.
const CLASSES: [(&str, &[&str]); 13] = [
    ("1 caller is not root", &["checkpointing needs root"]),
    ("2 the caller itself", &["cannot checkpoint itself"]),
    ("3 kernel thread", &["kernel thread"]),
    ("4 foreign tracer", &["already traced by PID"]),
    ("5 stopped process", &["process is stopped"]),
    ("6 seccomp filter", &["seccomp filter active"]),
    ("7 foreign namespace", &["runs in another mnt namespace"]),
    (
        "8 deleted working directory",
        &["working directory", "was deleted"],
    ),
    ("9 child processes", &["has child processes"]),
    ("10 POSIX timers", &["uses POSIX timers"]),
    ("11 file lock", &["holds a file lock"]),
    (
        "12 unsupported descriptor",
        &[
            "socket",
            "pipe/FIFO",
            "anon_inode:[eventfd]",
            "anon_inode:[eventpoll]",
            ": memfd /memfd:zckpt",
            "terminal /dev/ptmx",
            "character device /dev/full",
            "deleted directory",
        ],
    ),
    (
        "13 unsupported mapping",
        &[
            "System V shared memory",
            ": memfd /memfd:zckpt",
            "deleted file",
        ],
    ),
];

/// What `check` says about `pid` when asked by user nobody (this test binary, run again).
fn check_as_nobody(pid: i32) -> String {
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "check_as_this_user", "--ignored", "--nocapture"])
        .env("ZCKPT_CHECK_PID", pid.to_string())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("REASONS "))
        .unwrap_or_else(|| panic!("no answer from the check as nobody:\n{text}"))
        .to_string()
}

/// Run by `every_refusal_class_is_reported` as user nobody: prints what `check` says.
#[test]
#[ignore = "helper: every_refusal_class_is_reported runs it as another user"]
fn check_as_this_user() {
    let pid = std::env::var("ZCKPT_CHECK_PID").unwrap().parse().unwrap();
    let r = check(pid).unwrap();
    println!("REASONS {}", r.reasons.join(" | "));
}

#[test]
fn every_refusal_class_is_reported() {
    let dir = TempDir::new("refuse");
    let mut reasons = Vec::new();

    let nobodys = Running::start_as_nobody(&["sleep", "1000"]);
    assert!(wait_until(5, || ids_of(nobodys.pid).starts_with("Uid: 65534")));
    reasons.push(check_as_nobody(nobodys.pid));
    let me = std::process::id() as i32;
    reasons.extend(check(me).expect("check self").reasons);
    reasons.extend(check(2).expect("check kthreadd").reasons);
    let traced = Running::start(&["sleep", "1000"]);
    let mut tracer = Running::start(&[&prog("tracer"), &traced.pid.to_string()]);
    tracer.wait_line("TRACING");
    reasons.extend(check(traced.pid).expect("check traced").reasons);
    let stopped = Running::start(&["sleep", "1000"]);
    kill_with(stopped.pid, "STOP");
    assert!(wait_until(5, || std::fs::read_to_string(format!(
        "/proc/{}/stat",
        stopped.pid
    ))
    .is_ok_and(|s| s.contains(") T "))));
    reasons.extend(check(stopped.pid).expect("check stopped").reasons);

    let mut p = Running::start(&[&prog("refuse"), &dir.path()]);
    p.wait_line("READY");
    let report = check(p.pid).expect("check");
    match checkpoint(p.pid, &dir.join("img"), &DumpOptions::default()) {
        Err(Error::Refused { reasons: r, .. }) => assert_eq!(r, report.reasons),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(!dir.join("img/image.zckpt").exists());
    reasons.extend(report.reasons);

    let all = reasons.join("\n");
    for (class, words) in CLASSES {
        for w in words {
            assert!(all.contains(w), "class {class}: no {w:?} in:\n{all}");
        }
    }
    p.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    assert_eq!(p.wait_line("PASS"), "PASS", "process untouched and running");
    kill_with(stopped.pid, "CONT");
}
