//! Shared objects of every kind inside a pod, across a checkpoint and a restore: each C
//! program sets its state up, prints READY, and after "go" checks every bit of it as an
//! uninterrupted run would see it (printing PASS, or FAIL lines).

mod common;

use common::pods::*;

/// Run test program `name` in a pod, checkpoint it at READY (ending it), restore it, type
/// "go"; returns what it wrote after the restore and its exit code.
fn restored_run(name: &str, args: &[&str]) -> (String, i32) {
    let run = start_prog(name, args);
    run.wait_for("READY", 20);
    let (image, _) = run.checkpoint_and_end();
    let after = restore_running(&image);
    after.type_in("go\n");
    let (code, text) = after.finish(30);
    (text, code)
}

#[test]
fn eventfd_timerfd_signalfd_and_epoll_keep_their_state() {
    let (text, code) = restored_run("anonfds", &[]);
    assert!(text.contains("PASS"), "{text}");
    assert_eq!(code, 0, "{text}");
}
