//! Real programs: python3 with state in memory, `sleep 1000`, a bash loop appending to a
//! file, `md5sum` of a large file, and a 1 GiB running checksum that must match an
//! uninterrupted run.

mod common;

use common::*;
use std::fs;
use std::time::Duration;
use zos_checkpoint::{DumpOptions, RestoreOptions, checkpoint, restore};

fn opts(dir: &TempDir, stdin: bool) -> (RestoreOptions, std::path::PathBuf) {
    let out = dir.join("out.txt");
    let o = RestoreOptions {
        stdin: stdin.then(|| go_file(dir)),
        stdout: Some(out.clone()),
        stderr: None,
        ..Default::default()
    };
    (o, out)
}

#[test]
fn python_loop_keeps_its_state() {
    let dir = TempDir::new("python");
    let script = r#"
import sys
data = {i: str(i) * 3 for i in range(200000)}
acc = sum(len(v) for v in data.values())
print("READY", flush=True)
line = sys.stdin.readline()
ok = line == "go\n" and acc == sum(len(v) for v in data.values()) and data[12345] == "123451234512345"
data.update({i: i for i in range(100000)})
print("PASS" if ok else "FAIL", flush=True)
"#;
    let mut p = Running::start(&["python3", "-c", script]);
    p.wait_line("READY");
    checkpoint(p.pid, &dir.join("img"), &DumpOptions::default()).expect("checkpoint");
    p.reap();
    let (o, out) = opts(&dir, true);
    let r = restore(&dir.join("img"), &o).expect("restore");
    p.track(r.pid);
    assert_eq!(wait_exit(r.pid, 20), 0);
    assert_eq!(fs::read_to_string(out).unwrap().trim(), "PASS");
}

#[test]
fn sleep_1000_goes_on_sleeping() {
    let dir = TempDir::new("sleep");
    let mut p = Running::start(&["sleep", "1000"]);
    assert!(wait_until(5, || fs::read_to_string(format!(
        "/proc/{}/syscall",
        p.pid
    ))
    .is_ok_and(|s| s.starts_with("230 "))));
    checkpoint(p.pid, &dir.join("img"), &DumpOptions::default()).expect("checkpoint");
    p.reap();
    let (o, _) = opts(&dir, false);
    let r = restore(&dir.join("img"), &o).expect("restore");
    p.track(r.pid);
    assert_eq!(r.pid, p.pid);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        zos_checkpoint::wait_child(r.pid, Duration::ZERO)
            .unwrap()
            .is_none(),
        "sleep ended"
    );
    let cmdline = fs::read(format!("/proc/{}/cmdline", r.pid)).unwrap();
    assert_eq!(cmdline, b"sleep\x001000\x00");
    let syscall = fs::read_to_string(format!("/proc/{}/syscall", r.pid)).unwrap();
    assert!(
        syscall.starts_with("230 "),
        "not back in clock_nanosleep: {syscall}"
    );
    let exe = fs::read_link(format!("/proc/{}/exe", r.pid)).unwrap();
    assert!(exe.ends_with("sleep"), "{exe:?}");
}

#[test]
fn bash_loop_appends_without_gaps() {
    let dir = TempDir::new("bash");
    let file = dir.join("count.txt");
    let script = format!(
        // Appending through stdout itself: `echo >&3` would make bash park
        // stdout (a pipe) on fd 10 around each echo, which a checkpoint
        // rightly refuses if it lands inside that moment.
        "exec >>{}; i=0; while :; do echo $i; i=$((i+1)); done",
        file.display()
    );
    let mut p = Running::start(&["bash", "-c", &script]);
    assert!(wait_until(5, || fs::metadata(&file).is_ok_and(|m| m.len() > 10_000)));
    checkpoint(p.pid, &dir.join("img"), &DumpOptions::default()).expect("checkpoint");
    p.reap();
    let before = fs::metadata(&file).unwrap().len();
    let (o, _) = opts(&dir, false);
    let r = restore(&dir.join("img"), &o).expect("restore");
    p.track(r.pid);
    assert!(wait_until(5, || fs::metadata(&file).unwrap().len() > before + 10_000));
    kill(r.pid);
    wait_exit(r.pid, 5);
    let text = fs::read_to_string(&file).unwrap();
    for (i, line) in text.lines().enumerate() {
        assert_eq!(
            line,
            i.to_string(),
            "line {i} after a checkpoint at byte {before}"
        );
    }
}

#[test]
fn md5sum_of_large_file_resumes_midway() {
    let dir = TempDir::new("md5");
    let big = dir.join("big.bin");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(fs::File::create(&big).unwrap());
        let mut x: u64 = 88172645463325252;
        for _ in 0..(384 << 20) / 8 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            f.write_all(&x.to_le_bytes()).unwrap();
        }
    }
    let path = big.to_string_lossy().into_owned();
    let reference = std::process::Command::new("md5sum")
        .arg(&path)
        .output()
        .unwrap();
    let expected = String::from_utf8(reference.stdout).unwrap();
    let mut p = Running::start(&["md5sum", &path]);
    let pos = || -> u64 {
        fs::read_to_string(format!("/proc/{}/fdinfo/3", p.pid))
            .ok()
            .and_then(|s| s.lines().next()?.strip_prefix("pos:")?.trim().parse().ok())
            .unwrap_or(0)
    };
    assert!(wait_until(10, || pos() > 32 << 20), "md5sum did not start");
    checkpoint(p.pid, &dir.join("img"), &DumpOptions::default()).expect("checkpoint");
    p.reap();
    let (o, out) = opts(&dir, false);
    let r = restore(&dir.join("img"), &o).expect("restore");
    p.track(r.pid);
    assert_eq!(wait_exit(r.pid, 30), 0);
    assert_eq!(fs::read_to_string(out).unwrap(), expected);
}

#[test]
fn checksum_over_1gib_matches_uninterrupted_run() {
    let dir = TempDir::new("sum1g");
    let reference = std::thread::spawn(|| {
        let out = std::process::Command::new(prog("sum1g")).output().unwrap();
        String::from_utf8(out.stdout).unwrap()
    });
    let mut p = Running::start(&[&prog("sum1g")]);
    p.wait_line("FILLED");
    let stats = checkpoint(p.pid, &dir.join("img"), &DumpOptions::default()).expect("checkpoint");
    assert!(stats.pages >= 262_144, "only {} pages", stats.pages);
    p.reap();
    let (o, out) = opts(&dir, false);
    let r = restore(&dir.join("img"), &o).expect("restore");
    p.track(r.pid);
    let _ = fs::remove_dir_all(dir.join("img"));
    assert_eq!(wait_exit(r.pid, 60), 0);
    let expected = reference.join().unwrap();
    let sum = expected
        .lines()
        .find(|l| l.starts_with("SUM"))
        .unwrap()
        .to_string();
    assert_eq!(fs::read_to_string(out).unwrap().trim(), sum);
}

#[test]
fn restored_process_can_be_checkpointed_again() {
    let dir = TempDir::new("again");
    let mut p = Running::start(&["sleep", "1000"]);
    assert!(wait_until(5, || fs::read_to_string(format!(
        "/proc/{}/syscall",
        p.pid
    ))
    .is_ok_and(|s| s.starts_with("230 "))));
    checkpoint(p.pid, &dir.join("img1"), &DumpOptions::default()).expect("checkpoint 1");
    p.reap();
    let (o, _) = opts(&dir, false);
    let r1 = restore(&dir.join("img1"), &o).expect("restore 1");
    p.track(r1.pid);
    checkpoint(r1.pid, &dir.join("img2"), &DumpOptions::default()).expect("checkpoint 2");
    wait_exit(r1.pid, 5);
    let r2 = restore(&dir.join("img2"), &o).expect("restore 2");
    p.track(r2.pid);
    assert_eq!(r2.pid, p.pid);
    std::thread::sleep(Duration::from_millis(200));
    let syscall = fs::read_to_string(format!("/proc/{}/syscall", r2.pid)).unwrap();
    assert!(syscall.starts_with("230 "), "not sleeping: {syscall}");
    assert_eq!(
        fs::read(format!("/proc/{}/cmdline", r2.pid)).unwrap(),
        b"sleep\x001000\x00"
    );
}
