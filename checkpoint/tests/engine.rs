//! Checkpoint/restore of the C test programs: full state, refusals, clean failures, images.

mod common;

use common::*;
use std::fs;
use zos_checkpoint::{DumpOptions, Error, RestoreOptions, check, checkpoint, restore};

/// Checkpoint a program waiting in read(0), restore it with "go" on stdin, expect PASS. The
/// image is signed with this test's key, so a program that changed its credentials comes
/// back with them.
fn roundtrip(args: &[&str], dir: &TempDir) {
    let mut p = Running::start(args);
    p.wait_line("READY");
    let img = dir.join("img");
    let dump = DumpOptions {
        key: Some(test_key()),
        ..Default::default()
    };
    let stats = checkpoint(p.pid, &img, &dump).expect("checkpoint");
    assert!(stats.pages > 0 && stats.bytes_written > 0);
    p.reap();
    let out = dir.join("out.txt");
    let opts = RestoreOptions {
        stdin: Some(go_file(dir)),
        stdout: Some(out.clone()),
        stderr: None,
        key: Some(test_key()),
        ..Default::default()
    };
    let r = restore(&img, &opts).expect("restore");
    p.track(r.pid);
    assert_eq!(r.pid, p.pid, "restored under the same PID");
    let code = wait_exit(r.pid, 20);
    let text = fs::read_to_string(&out).unwrap_or_default();
    assert!(
        text.contains("PASS") && code == 0,
        "exit {code}, output:\n{text}"
    );
}

#[test]
fn state_program_restores_bit_for_bit() {
    let dir = TempDir::new("state");
    roundtrip(&[&prog("state"), &dir.path()], &dir);
}

/// The state program drops to nobody (uid/gid 65534, groups 100 and 65534) before it is saved;
/// root restores it with those credentials because the image carries this machine's signature.
#[test]
fn state_program_with_other_credentials() {
    let dir = TempDir::new("state-drop");
    roundtrip(&[&prog("state"), &dir.path(), "--drop"], &dir);
}

#[test]
fn same_image_restores_twice() {
    let dir = TempDir::new("twice");
    let mut p = Running::start(&[&prog("memonly")]);
    p.wait_line("READY");
    let img = dir.join("img");
    checkpoint(p.pid, &img, &DumpOptions::default()).expect("checkpoint");
    p.reap();
    for round in 0..2 {
        let out = dir.join(&format!("out{round}.txt"));
        let opts = RestoreOptions {
            stdin: Some(go_file(&dir)),
            stdout: Some(out.clone()),
            stderr: None,
            ..Default::default()
        };
        let r = restore(&img, &opts).expect("restore");
        p.track(r.pid);
        assert_eq!(r.pid, p.pid);
        assert_eq!(wait_exit(r.pid, 10), 0);
        assert!(
            fs::read_to_string(&out).unwrap().contains("PASS"),
            "round {round}"
        );
    }
}

#[test]
fn leave_running_keeps_original_and_image_restores() {
    use std::io::Write;
    let dir = TempDir::new("leave");
    let mut p = Running::start(&[&prog("memonly")]);
    p.wait_line("READY");
    let img = dir.join("img");
    let opts = DumpOptions {
        leave_running: true,
        ..Default::default()
    };
    let stats = checkpoint(p.pid, &img, &opts).expect("checkpoint");
    assert!(stats.frozen <= stats.total);
    // The original goes on: its read(0) was restarted and still works.
    p.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    assert_eq!(p.wait_line("PASS"), "PASS");
    p.reap();
    let out = dir.join("out.txt");
    let ropts = RestoreOptions {
        stdin: Some(go_file(&dir)),
        stdout: Some(out.clone()),
        stderr: None,
        ..Default::default()
    };
    let r = restore(&img, &ropts).expect("restore");
    p.track(r.pid);
    assert_eq!(wait_exit(r.pid, 10), 0);
    assert!(fs::read_to_string(&out).unwrap().contains("PASS"));
}

#[test]
fn foreign_tracer_is_refused_and_process_untouched() {
    use std::io::Write;
    let dir = TempDir::new("traced");
    let mut p = Running::start(&[&prog("memonly")]);
    p.wait_line("READY");
    let mut t = Running::start(&[&prog("tracer"), &p.pid.to_string()]);
    t.wait_line("TRACING");
    let report = check(p.pid).expect("check");
    assert!(
        report.reasons.iter().any(|r| r.contains("traced")),
        "{:?}",
        report.reasons
    );
    let err = checkpoint(p.pid, &dir.join("img"), &DumpOptions::default()).unwrap_err();
    assert!(err.to_string().contains("traced"), "{err}");
    drop(t);
    p.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    assert_eq!(p.wait_line("PASS"), "PASS");
}

#[test]
fn unwritable_image_dir_fails_cleanly() {
    use std::io::Write;
    let mut p = Running::start(&[&prog("memonly")]);
    p.wait_line("READY");
    let err = checkpoint(p.pid, "/proc/zckpt-nope".as_ref(), &DumpOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    p.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    assert_eq!(p.wait_line("PASS"), "PASS");
}

#[test]
fn process_exiting_mid_checkpoint_fails_cleanly() {
    let dir = TempDir::new("exit");
    let mut p = Running::start(&[&prog("sum1g"), "256"]);
    p.wait_line("FILLED");
    let pid = p.pid;
    let killer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(15));
        kill(pid);
    });
    let r = checkpoint(p.pid, &dir.join("img"), &DumpOptions::default());
    killer.join().unwrap();
    p.reap();
    match r {
        Err(e) => {
            assert!(
                !dir.join("img/image.zckpt").exists(),
                "partial image left: {e}"
            );
            assert!(!dir.join("img/image.zckpt.part").exists());
        }
        // The checkpoint can win the race; then the image must be complete.
        Ok(_) => assert!(
            zos_checkpoint::image::format::parse(&fs::read(dir.join("img/image.zckpt")).unwrap())
                .is_ok()
        ),
    }
}

#[test]
fn corrupt_truncated_and_foreign_images_are_refused() {
    let dir = TempDir::new("corrupt");
    let mut p = Running::start(&[&prog("memonly")]);
    p.wait_line("READY");
    let img = dir.join("img");
    checkpoint(
        p.pid,
        &img,
        &DumpOptions {
            leave_running: true,
            ..Default::default()
        },
    )
    .expect("checkpoint");
    let good = fs::read(img.join("image.zckpt")).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("flipped byte", {
            let mut b = good.clone();
            let i = b.len() / 2;
            b[i] ^= 0x40;
            b
        }),
        ("truncated", good[..good.len() - 100].to_vec()),
        ("version", {
            let mut b = good.clone();
            b[8] = 99;
            b
        }),
        ("not an image", b"hello".to_vec()),
    ];
    for (what, bytes) in cases {
        let d = dir.join(what);
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("image.zckpt"), bytes).unwrap();
        match restore(&d, &RestoreOptions::default()) {
            Err(Error::BadImage(msg)) => eprintln!("{what}: {msg}"),
            other => panic!("{what}: expected BadImage, got {other:?}"),
        }
    }
}

#[test]
fn multithreaded_program_restores() {
    let dir = TempDir::new("threads");
    roundtrip(&[&prog("threads")], &dir);
}

#[test]
fn interrupted_nanosleep_sleeps_only_the_remaining_time() {
    use std::time::{Duration, Instant};
    let dir = TempDir::new("sleeper");
    let mut p = Running::start(&[&prog("sleeper")]);
    p.wait_line("READY");
    std::thread::sleep(Duration::from_millis(1000));
    let img = dir.join("img");
    checkpoint(p.pid, &img, &DumpOptions::default()).expect("checkpoint");
    p.reap();
    std::thread::sleep(Duration::from_millis(500));
    let out = dir.join("out.txt");
    let t = Instant::now();
    let opts = RestoreOptions {
        stdin: None,
        stdout: Some(out.clone()),
        stderr: None,
        ..Default::default()
    };
    let r = restore(&img, &opts).expect("restore");
    p.track(r.pid);
    assert_eq!(wait_exit(r.pid, 10), 0);
    let took = t.elapsed();
    assert_eq!(fs::read_to_string(&out).unwrap().trim(), "DONE r=0 errno=0");
    assert!(
        took > Duration::from_millis(1500) && took < Duration::from_millis(2700),
        "slept {took:?} after restore, expected about 2 s"
    );
}

#[test]
fn image_stream_through_a_writer_restores_from_bytes() {
    let dir = TempDir::new("stream");
    let mut p = Running::start(&[&prog("memonly")]);
    p.wait_line("READY");
    let mut bytes = Vec::new();
    let stats = zos_checkpoint::checkpoint_to_writer(p.pid, &mut bytes, &DumpOptions::default())
        .expect("checkpoint");
    assert_eq!(stats.bytes_written as usize, bytes.len());
    p.reap();
    let out = dir.join("out.txt");
    let opts = RestoreOptions {
        stdin: Some(go_file(&dir)),
        stdout: Some(out.clone()),
        stderr: None,
        ..Default::default()
    };
    let r = zos_checkpoint::restore_from_bytes(&bytes, &opts).expect("restore");
    p.track(r.pid);
    assert_eq!(wait_exit(r.pid, 10), 0);
    assert!(fs::read_to_string(&out).unwrap().contains("PASS"));
}

#[test]
fn checkpoints_under_a_signal_storm_lose_nothing() {
    use std::io::Write;
    let dir = TempDir::new("storm");
    let mut p = Running::start(&[&prog("sigstorm")]);
    p.wait_line("READY");
    let storm = Running::start(&[&prog("signaler"), &p.pid.to_string()]);
    let img = dir.join("img");
    for _ in 0..10 {
        checkpoint(
            p.pid,
            &img,
            &DumpOptions {
                leave_running: true,
                ..Default::default()
            },
        )
        .expect("checkpoint");
    }
    drop(storm);
    p.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    let line = p.wait_line("signals");
    eprintln!("{line}");
    assert_eq!(p.wait_line("PASS"), "PASS", "{line}");
    p.reap();
    let out = dir.join("out.txt");
    let opts = RestoreOptions {
        stdin: Some(go_file(&dir)),
        stdout: Some(out.clone()),
        stderr: None,
        ..Default::default()
    };
    let r = restore(&img, &opts).expect("restore");
    p.track(r.pid);
    assert_eq!(wait_exit(r.pid, 10), 0);
    assert!(fs::read_to_string(&out).unwrap().contains("PASS"));
}

#[test]
fn zero_pages_are_not_saved() {
    let dir = TempDir::new("zero");
    let mut p = Running::start(&[&prog("zeropage")]);
    p.wait_line("READY");
    let img = dir.join("img");
    let stats = checkpoint(p.pid, &img, &DumpOptions::default()).expect("checkpoint");
    assert!(
        stats.bytes_written < 16 << 20,
        "image of {} bytes",
        stats.bytes_written
    );
    p.reap();
    let out = dir.join("out.txt");
    let opts = RestoreOptions {
        stdin: Some(go_file(&dir)),
        stdout: Some(out.clone()),
        stderr: None,
        ..Default::default()
    };
    let r = restore(&img, &opts).expect("restore");
    p.track(r.pid);
    assert_eq!(wait_exit(r.pid, 10), 0);
    assert!(fs::read_to_string(&out).unwrap().contains("PASS"));
}

#[test]
fn multithreaded_copy_restores_under_new_pids_beside_the_original() {
    use std::io::Write;
    let dir = TempDir::new("threads-copy");
    let mut p = Running::start(&[&prog("threads"), "--any-tid"]);
    p.wait_line("READY");
    let img = dir.join("img");
    checkpoint(
        p.pid,
        &img,
        &DumpOptions {
            leave_running: true,
            ..Default::default()
        },
    )
    .expect("checkpoint");
    let out = dir.join("out.txt");
    let opts = RestoreOptions {
        stdin: Some(go_file(&dir)),
        stdout: Some(out.clone()),
        stderr: None,
        force: true,
        ..Default::default()
    };
    let r = restore(&img, &opts).expect("restore");
    p.track(r.pid);
    assert_ne!(r.pid, p.pid, "the original still holds its PID");
    assert_eq!(wait_exit(r.pid, 20), 0);
    assert!(fs::read_to_string(&out).unwrap().contains("PASS"));
    p.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    assert_eq!(p.wait_line("PASS"), "PASS", "the original is unharmed");
}
