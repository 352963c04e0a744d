//! Shared objects of every kind inside a pod, across a checkpoint and a restore: each C
//! program sets its state up, prints READY, and after "go" checks every bit of it as an
//! uninterrupted run would see it (printing PASS, or FAIL lines).

mod common;

use common::pods::*;
use common::*;

/// Run test program `name` in a pod, checkpoint it at READY (ending it), restore it, type
/// "go": it checks itself, and must print PASS and exit with 0.
fn passes_after_restore(name: &str, args: &[&str]) {
    let (text, code) = restored_run_for(name, args, None);
    assert!(text.contains("\nPASS"), "{text}");
    assert_eq!(code, 0, "{text}");
}

/// Checkpoint program `name` at READY (ending it), restore it (for outside user `outside`,
/// uid = gid, when given), type "go"; what it wrote after the restore and its exit code.
fn restored_run_for(name: &str, args: &[&str], outside: Option<u32>) -> (String, i32) {
    let run = start_prog(name, args);
    run.wait_for("READY", 20);
    let (image, _) = run.checkpoint_and_end();
    let opts = zos_checkpoint::TreeRestoreOptions {
        outside_uid: outside,
        outside_gid: outside,
        ..Default::default()
    };
    let held = zos_checkpoint::restore_tree(&image, &opts).expect("restore_tree");
    let after = PodRun::adopt(held.resume().expect("resume"));
    after.type_in("go\n");
    let (code, text) = after.finish(30);
    (text, code)
}

#[test]
fn eventfd_timerfd_signalfd_and_epoll_keep_their_state() {
    passes_after_restore("anonfds", &[]);
}

#[test]
fn unix_socket_pairs_keep_queued_data_boundaries_and_shutdown_state() {
    // The parent checks its child's status too.
    passes_after_restore("unixpairs", &[]);
}

#[test]
fn refused_descriptors_name_process_descriptor_and_reason_and_the_pod_runs_on() {
    let dir = TempDir::new("refusals");
    let outside_path = dir.join("outside.sock");
    let outside = std::os::unix::net::UnixListener::bind(&outside_path).expect("listener");
    let run = start_prog("refusals", &[&dir.path(), &outside_path.to_string_lossy()]);
    run.wait_for("READY", 20);
    let _accepted = outside.accept().expect("the pod's connection");
    let text = run.text();
    let held: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| {
            let mut w = l.strip_prefix("HOLD ")?.split_whitespace();
            let (what, pid, fd) = (w.next()?, w.next()?, w.next()?);
            Some((what.to_string(), format!("pid {pid} (refusals): fd {fd}: ")))
        })
        .collect();
    assert_eq!(held.len(), 6, "{text}");
    let report = zos_checkpoint::check_tree(run.pod.pid()).expect("check");
    let listener = dir.join("listener");
    let want = |what: &str| -> Vec<String> {
        match what {
            "tcp" => vec![
                "socket:[".into(),
                "is a TCP socket: network connections do not migrate yet".into(),
            ],
            "bound" => vec![format!(
                "is a unix socket bound to {}: network connections do not migrate yet",
                listener.display()
            )],
            "inflight" => vec!["has 1 descriptor(s) in flight (SCM_RIGHTS) in its queue".into()],
            "creds" => vec!["has credentials in flight (SO_PASSCRED with data queued)".into()],
            "outside" => vec!["outside the pod: network connections do not migrate yet".into()],
            "stale" => vec![
                "epoll: registration of fd".into(),
                "whose target is not an open descriptor of this process any more".into(),
            ],
            _ => unreachable!(),
        }
    };
    for (what, prefix) in &held {
        let line = report
            .reasons
            .iter()
            .find(|r| r.starts_with(prefix.as_str()))
            .unwrap_or_else(|| panic!("no reason for {what} ({prefix}): {:#?}", report.reasons));
        for part in want(what) {
            assert!(line.contains(&part), "{what}: {line:?} lacks {part:?}");
        }
    }
    assert!(
        report
            .reasons
            .iter()
            .any(|r| r == "/dev/shm/zos-fifo is a FIFO (not carried)"),
        "{:#?}",
        report.reasons
    );
    let mut image = Vec::new();
    let err = zos_checkpoint::checkpoint_tree(
        run.pod.pid(),
        &zos_checkpoint::TreeDumpOptions::default(),
        &mut image,
    )
    .unwrap_err();
    assert!(
        matches!(err, zos_checkpoint::Error::Refused { ref reasons, .. } if *reasons == report.reasons),
        "{err}"
    );
    run.type_in("go\n");
    let (code, text) = run.finish(20);
    assert!(text.contains("DONE 6"), "{text}");
    assert_eq!(code, 0);
}

#[test]
fn memfds_keep_name_content_seals_and_stay_shared_between_mappings_and_descriptors() {
    passes_after_restore("memfds", &[]);
}

#[test]
fn posix_timers_keep_ids_clocks_notification_and_time_left() {
    passes_after_restore("timers", &[]);
}

#[test]
fn posix_ofd_and_flock_locks_are_held_again_by_their_owners() {
    let dir = TempDir::new("locks");
    passes_after_restore("locks", &[&dir.path()]);
}

#[test]
fn every_thread_keeps_its_own_capability_sets() {
    passes_after_restore("caps", &[]);
}

#[test]
fn system_v_and_posix_shared_memory_semaphores_and_queues_keep_ids_and_contents() {
    passes_after_restore("ipc", &[]);
}

/// `argv` in a pod: its RESULT line, run uninterrupted or checkpointed when it printed `cut`
/// and restored.
fn job_result(argv: &[&str], cut: Option<&str>) -> String {
    let run = PodRun::start(&spec(argv));
    let run = match cut {
        None => run,
        Some(step) => {
            run.wait_for(step, 30);
            let (image, before) = run.checkpoint_and_end();
            assert!(!before.contains("RESULT"), "finished before the checkpoint");
            restore_running(&image)
        }
    };
    let (code, text) = run.finish(60);
    assert_eq!(code, 0, "{text}");
    text.lines()
        .find(|l| l.starts_with("RESULT"))
        .unwrap_or_else(|| panic!("no RESULT:\n{text}"))
        .to_string()
}

#[test]
fn python_asyncio_job_checkpointed_mid_way_finishes_with_the_uninterrupted_result() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/progs/asyncio_job.py");
    let argv = ["/usr/bin/python3", script];
    let want = job_result(&argv, None);
    assert_eq!(job_result(&argv, Some("STEP 150")), want);
}

#[test]
fn node_job_checkpointed_mid_way_finishes_with_the_uninterrupted_result() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/progs/node_job.js");
    let argv = ["/usr/bin/node", script];
    let want = job_result(&argv, None);
    assert_eq!(job_result(&argv, Some("STEP 100")), want);
}

#[test]
fn every_kind_comes_back_in_a_pod_of_another_outside_user() {
    let dir = TempDir::new("kinds-nobody");
    let mut failed = Vec::new();
    for (name, args) in [
        ("anonfds", vec![]),
        ("unixpairs", vec![]),
        ("memfds", vec![]),
        ("timers", vec![]),
        ("locks", vec![dir.path()]),
        ("caps", vec![]),
        ("ipc", vec![]),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (text, code) = restored_run_for(name, &args, Some(65534));
        if code != 0 || !text.contains("\nPASS") {
            failed.push(format!("{name} (exit {code}):\n{text}"));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn restored_multithreaded_pod_killed_before_resume_ends() {
    let run = start_prog("timers", &[]);
    run.wait_for("READY", 20);
    let (image, _) = run.checkpoint_and_end();
    let (tx, rx) = std::sync::mpsc::channel();
    // ptrace is per thread: restore and kill on one thread, watched from here.
    std::thread::spawn(move || {
        let held = zos_checkpoint::restore_tree(&image, &Default::default()).expect("restore");
        let hosts: Vec<i32> = held.pids().iter().map(|p| p.1).collect();
        held.kill();
        let _ = tx.send(hosts);
    });
    let hosts = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("kill of a restored pod with a threaded process hangs");
    for h in hosts {
        assert!(
            !std::path::Path::new(&format!("/proc/{h}")).exists(),
            "{h} left"
        );
    }
}

#[test]
fn a_frozen_checkpoint_then_resume_leaves_every_kind_as_it_was() {
    let dir = TempDir::new("kinds-frozen");
    for (name, args) in [
        ("unixpairs", vec![]),
        ("anonfds", vec![]),
        ("memfds", vec![]),
        ("ipc", vec![]),
        ("timers", vec![]),
        ("locks", vec![dir.path()]),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = start_prog(name, &args);
        run.wait_for("READY", 20);
        let (image, stats) = run.checkpoint(zos_checkpoint::AfterDump::KeepFrozen);
        assert!(!image.is_empty());
        stats.held.expect("held").resume().expect("resume");
        run.type_in("go\n");
        let (code, text) = run.finish(30);
        assert!(code == 0 && text.contains("\nPASS"), "{name}: {text}");
    }
}
