//! Process trees in pods across a checkpoint and a restore: parents and children, waitpid,
//! pipes and FIFOs with their bytes, defunct and stopped children, sessions and groups, the
//! pty, shared files and memory, refusals, two restores of one image at once, a bash loop.

mod common;

use common::pods::*;
use common::*;
use zos_checkpoint::{AfterDump, Error};

/// Checkpoint a pod running a test program once it printed `ready`, restore it, type "go";
/// returns everything it wrote before and after, and its exit code.
fn go_across_restore(run: PodRun, ready: &str) -> (String, String, i32) {
    run.wait_for(ready, 20);
    let (image, before) = run.checkpoint_and_end();
    let after = restore_running(&image);
    after.type_in("go\n");
    let (code, text) = after.finish(20);
    (before, text, code)
}

#[test]
fn parent_waiting_for_its_child_collects_its_status_after_restore() {
    let run = start_prog("forkwait", &[]);
    let (before, after, code) = go_across_restore(run, "READY");
    assert!(before.contains("CHILD 3 READY"), "{before}");
    assert!(after.contains("REAPED 3 pid-ok=1 exit=42"), "{after}");
    assert_eq!(code, 0);
}

#[test]
fn pipeline_with_bytes_in_the_pipe_gives_the_uninterrupted_result() {
    let reference = start_prog("pipeline", &["200000"]);
    reference.wait_for("READY", 20);
    reference.type_in("go\n");
    let (_, ref_text) = reference.finish(30);
    let want = ref_text
        .lines()
        .find(|l| l.starts_with("RESULT"))
        .expect("reference result")
        .to_string();
    let (_, after, code) = go_across_restore(start_prog("pipeline", &["200000"]), "READY");
    assert!(after.contains(&want), "want {want}, got:\n{after}");
    assert_eq!(code, 0);
}

#[test]
fn fifo_keeps_its_unread_bytes() {
    let dir = TempDir::new("fifo");
    let (_, after, code) = go_across_restore(start_prog("fifo", &[&dir.path()]), "READY");
    assert!(after.contains("PASS got=50000"), "{after}");
    assert_eq!(code, 0);
}

#[test]
fn defunct_children_are_reaped_after_restore_with_their_status() {
    let run = start_prog("defunct", &[]);
    let (before, after, code) = go_across_restore(run, "READY");
    assert!(before.contains("READY a=3 b=4"), "{before}");
    assert!(after.contains("REAPED a=1:23 b=1:15"), "{after}");
    assert_eq!(code, 0);
}

#[test]
fn stopped_child_is_still_stopped_after_restore() {
    let run = start_prog("stopped", &[]);
    run.wait_for("READY", 20);
    let (image, _) = run.checkpoint_and_end();
    let after = restore_running(&image);
    let table = tree_table(after.pod.pid());
    assert_eq!(table.len(), 3, "{table:?}");
    after.type_in("go\n");
    let (code, text) = after.finish(20);
    assert!(
        text.contains("STATES before=T after=") && !text.contains("after=T"),
        "{text}"
    );
    assert!(text.contains("killed=1"), "{text}");
    assert_eq!(code, 0);
}

#[test]
fn sessions_and_process_groups_are_unchanged() {
    let run = start_prog("groups", &[]);
    run.wait_for("READY", 20);
    let before = tree_table(run.pod.pid());
    let (image, _) = run.checkpoint_and_end();
    let after = restore_running(&image);
    assert_eq!(tree_table(after.pod.pid()), before);
    after.type_in("go\n");
    let (code, text) = after.finish(20);
    assert!(
        text.contains("GROUPS sid(a)=3 pgid(b)=4 pgid(c)=2"),
        "{text}"
    );
    assert_eq!(code, 0);
}

#[test]
fn shared_file_offset_and_shared_memory_stay_shared() {
    let dir = TempDir::new("shared");
    let file = dir.join("lines.txt");
    let run = start_prog("shared", &[&file.to_string_lossy()]);
    let (_, after, code) = go_across_restore(run, "READY");
    assert!(after.contains("PASS child=0"), "{after}");
    assert_eq!(code, 0);
}

#[test]
fn threads_in_a_pod_are_restored() {
    let run = start_prog("threads", &[]);
    let (_, after, code) = go_across_restore(run, "READY");
    assert!(after.contains("PASS"), "{after}");
    assert_eq!(code, 0);
}

#[test]
fn pty_output_is_complete_and_in_order_and_its_settings_survive() {
    let script = "stty -echo; i=0; while [ $i -lt 60 ]; do echo line $i; i=$((i+1)); \
                  sleep 0.02; done; stty size; stty -a | grep -o -- '-echo '; exit 3";
    let run = PodRun::start(&spec(&["sh", "-c", script]));
    let ws = libc::winsize {
        ws_row: 33,
        ws_col: 111,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ with a valid winsize on the pty master we hold.
    let r = unsafe { libc::ioctl(run.master_fd(), libc::TIOCSWINSZ, &ws) };
    assert_eq!(r, 0);
    run.wait_for("line 20\r\n", 20);
    let (image, before) = run.checkpoint_and_end();
    let after = restore_running(&image);
    let (code, rest) = after.finish(20);
    let all = before + &rest;
    let lines: Vec<&str> = all.lines().filter(|l| l.starts_with("line ")).collect();
    let want: Vec<String> = (0..60).map(|i| format!("line {i}")).collect();
    assert_eq!(lines, want, "output:\n{all}");
    assert!(rest.contains("33 111"), "window size lost: {rest}");
    assert!(rest.contains("-echo"), "termios lost: {rest}");
    assert_eq!(code, 3);
}

#[test]
fn unsupported_descriptor_is_refused_naming_process_and_fd_and_the_pod_runs_on() {
    let run = start_prog("sockchild", &[]);
    run.wait_for("READY", 20);
    let report = zos_checkpoint::check_tree(run.pod.pid()).expect("check");
    let all = report.reasons.join("\n");
    assert!(
        all.contains("pid 3 (sockchild): fd 3: socket:[") && all.contains("fd 4: socket:["),
        "{all}"
    );
    let mut image = Vec::new();
    let err = zos_checkpoint::checkpoint_tree(
        run.pod.pid(),
        &zos_checkpoint::TreeDumpOptions::default(),
        &mut image,
    )
    .unwrap_err();
    match err {
        Error::Refused { reasons, .. } => assert_eq!(reasons, report.reasons),
        e => panic!("expected a refusal, got {e}"),
    }
    run.type_in("go\n");
    let (code, text) = run.finish(20);
    assert!(text.contains("DONE 0"), "{text}");
    assert_eq!(code, 0);
}

#[test]
fn one_image_restores_into_two_pods_at_once() {
    let run = start_prog("forkwait", &[]);
    run.wait_for("READY", 20);
    let (image, _) = run.checkpoint_and_end();
    let a = restore(&image);
    let b = restore(&image);
    let pods_a: Vec<i32> = a.pids().iter().map(|p| p.0).collect();
    let pods_b: Vec<i32> = b.pids().iter().map(|p| p.0).collect();
    assert_eq!(pods_a, pods_b, "PIDs inside are equal");
    assert_ne!(a.pid(), b.pid(), "different host PIDs");
    let (a, b) = (
        PodRun::adopt(a.resume().unwrap()),
        PodRun::adopt(b.resume().unwrap()),
    );
    a.type_in("go\n");
    b.type_in("go\n");
    for run in [a, b] {
        let (code, text) = run.finish(20);
        assert!(text.contains("REAPED 3 pid-ok=1 exit=42"), "{text}");
        assert_eq!(code, 0);
    }
}

#[test]
fn bash_loop_with_a_pipe_finishes_with_the_uninterrupted_result() {
    let script = "for i in $(seq 1 400); do echo $i | sha256sum; done";
    let reference = std::process::Command::new("bash")
        .args(["-c", script])
        .output()
        .expect("bash");
    let want = String::from_utf8(reference.stdout).unwrap();
    let run = PodRun::start(&spec(&["bash", "-c", script]));
    run.wait_for(want.lines().nth(60).unwrap(), 30);
    let (image, before) = run.checkpoint_and_end();
    let after = restore_running(&image);
    let (code, rest) = after.finish(60);
    assert_eq!(code, 0);
    assert_eq!((before + &rest).replace("\r\n", "\n"), want);
}

#[test]
fn frozen_checkpoint_resumes_the_tree() {
    let run = start_prog("forkwait", &[]);
    run.wait_for("READY", 20);
    let (image, stats) = run.checkpoint(AfterDump::KeepFrozen);
    assert!(!image.is_empty() && stats.processes == 3);
    let held = stats.held.expect("held tree");
    held.resume().expect("resume");
    run.type_in("go\n");
    let (code, text) = run.finish(20);
    assert!(text.contains("REAPED 3 pid-ok=1 exit=42"), "{text}");
    assert_eq!(code, 0);
}

#[test]
fn new_processes_after_restore_continue_the_pod_pid_sequence() {
    let script = "for i in $(seq 1 20); do /bin/true; done; echo READY; read go; \
                  sh -c 'echo newpid=$$'";
    let run = PodRun::start(&spec(&["sh", "-c", script]));
    run.wait_for("READY", 20);
    let (image, _) = run.checkpoint_and_end();
    let after = restore_running(&image);
    after.type_in("go\n");
    let (code, text) = after.finish(20);
    let pid: i32 = text
        .split("newpid=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        pid > 22,
        "a new process got PID {pid}, a PID freed before the checkpoint"
    );
    assert_eq!(code, 0);
}

#[test]
fn executables_that_travelled_are_mapped_from_their_substitutes() {
    let dir = TempDir::new("subst");
    let original = dir.join("forkwait-here");
    let travelled = dir.join("files-sha256");
    std::fs::copy(prog("forkwait"), &original).unwrap();
    let run = PodRun::start(&spec(&[&original.to_string_lossy()]));
    run.wait_for("READY", 20);
    let (image, _) = run.checkpoint_and_end();
    std::fs::rename(&original, &travelled).unwrap();
    let missing = zos_checkpoint::restore_tree(&image, &Default::default());
    assert!(missing.is_err(), "restored without its executable");
    let opts = zos_checkpoint::TreeRestoreOptions {
        substitutions: [(original.to_string_lossy().into_owned(), travelled.clone())]
            .into_iter()
            .collect(),
        ..Default::default()
    };
    let held = zos_checkpoint::restore_tree(&image, &opts).expect("restore with substitutes");
    let task = held.pids().iter().find(|p| p.0 == 2).unwrap().1;
    let exe = std::fs::read_link(format!("/proc/{task}/exe")).unwrap();
    assert_eq!(exe, travelled);
    let after = PodRun::adopt(held.resume().unwrap());
    after.type_in("go\n");
    let (code, text) = after.finish(20);
    assert!(text.contains("REAPED 3 pid-ok=1 exit=42"), "{text}");
    assert_eq!(code, 0);
}

#[test]
fn frozen_tree_killed_after_commit_ends_and_its_image_restores() {
    let run = start_prog("forkwait", &[]);
    run.wait_for("READY", 20);
    let (image, stats) = run.checkpoint(AfterDump::KeepFrozen);
    stats.held.expect("held").kill();
    let (code, _) = run.finish(10);
    assert_eq!(code, 128 + 9);
    let after = restore_running(&image);
    after.type_in("go\n");
    let (code, text) = after.finish(20);
    assert!(text.contains("REAPED 3 pid-ok=1 exit=42"), "{text}");
    assert_eq!(code, 0);
}

#[test]
fn restored_tree_killed_before_resume_leaves_no_process() {
    let run = start_prog("groups", &[]);
    run.wait_for("READY", 20);
    let (image, _) = run.checkpoint_and_end();
    let held = restore(&image);
    let hosts: Vec<i32> = held.pids().iter().map(|p| p.1).collect();
    assert_eq!(hosts.len(), 7, "{:?}", held.pids());
    held.kill();
    for h in hosts {
        let stat = std::fs::read_to_string(format!("/proc/{h}/stat"));
        assert!(stat.is_err(), "process {h} left: {stat:?}");
    }
}

#[test]
fn root_restores_a_pod_for_another_outside_user_who_then_owns_it() {
    let script = "read go; echo inside=$(id -u) map=$(cat /proc/self/uid_map | tr -s ' ' | \
                  sed 's/^ //')";
    let run = PodRun::start(&spec(&["sh", "-c", script]));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (image, _) = run.checkpoint_and_end();
    let opts = zos_checkpoint::TreeRestoreOptions {
        outside_uid: Some(65534),
        outside_gid: Some(65534),
        ..Default::default()
    };
    let held = zos_checkpoint::restore_tree(&image, &opts).expect("restore for nobody");
    let init = held.pid();
    let owner = std::fs::read_link(format!("/proc/{init}/ns/user")).unwrap();
    let status = std::fs::read_to_string(format!("/proc/{init}/status")).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.ends_with("65534")),
        "{status}"
    );
    // The pod's user namespace belongs to nobody: nobody may enter it (needs to own it).
    let ns = format!("/proc/{init}/ns/user");
    let entered = std::process::Command::new("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "nsenter",
        ])
        .args([format!("--user={ns}").as_str(), "--preserve-credentials"])
        .arg("true")
        .output()
        .unwrap();
    assert!(
        entered.status.success(),
        "nobody cannot enter {owner:?}: {}",
        String::from_utf8_lossy(&entered.stderr)
    );
    let after = PodRun::adopt(held.resume().unwrap());
    after.type_in("go\n");
    let (code, text) = after.finish(20);
    assert!(text.contains("inside=0 map=0 65534 1"), "{text}");
    assert_eq!(code, 0);
}

#[test]
fn file_deleted_while_open_comes_back_deleted_with_name_mode_and_content() {
    let dir = TempDir::new("pod-deleted");
    let run = start_prog("deleted", &[&dir.path(), "0"]);
    let (_, after, code) = go_across_restore(run, "READY");
    let want = format!("LINK {}/ghost.txt (deleted)", dir.path());
    assert!(after.contains(&want), "want {want}:\n{after}");
    assert!(
        after.contains("MODE 645") && after.contains("CONTENT boo"),
        "{after}"
    );
    assert!(after.contains("PASS"), "{after}");
    assert_eq!(code, 0);
    assert!(
        std::fs::read_dir(&dir.0).unwrap().next().is_none(),
        "a name was left"
    );
}

#[test]
fn stopped_child_stays_stopped_after_a_checkpoint_that_leaves_the_tree_running() {
    let run = start_prog("stopped", &[]);
    run.wait_for("READY", 20);
    let (_, stats) = run.checkpoint(AfterDump::LeaveRunning);
    assert_eq!(stats.processes, 3);
    run.type_in("go\n");
    let (code, text) = run.finish(20);
    assert!(text.contains("STATES before=T after="), "{text}");
    assert!(
        !text.contains("after=T") && text.contains("killed=1"),
        "{text}"
    );
    assert_eq!(code, 0);
}
