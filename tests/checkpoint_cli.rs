//! `zos checkpoint` / `zos restore` used as a user would: real programs that
//! no one here wrote, checkpointed and restored through the command line.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn zos(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zos"));
    cmd.args(args).stdin(Stdio::null());
    // SAFETY: as in spawn_clean: only close_range(2) between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            Ok(())
        });
    }
    cmd.output().expect("run zos")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!("zos-ckpt-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Kills a pid on drop (the original or a restored copy).
struct Kill(i32);

impl Drop for Kill {
    fn drop(&mut self) {
        // SAFETY: kill(2) with a pid we started; a stale pid fails harmlessly.
        unsafe { libc::kill(self.0, libc::SIGKILL) };
    }
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z ") && !s.contains(") X "))
        .unwrap_or(false)
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Spawns with only stdin/stdout/stderr: whatever descriptors the test
/// runner itself inherited (a CI pipe, say) must not leak into the program.
fn spawn_clean(cmd: &mut Command) -> Child {
    // SAFETY: runs between fork and exec and only calls close_range(2),
    // which is async-signal-safe and touches no memory of ours.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(cmd, || {
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            Ok(())
        });
    }
    cmd.spawn().expect("spawn test program")
}

fn read_counter(p: &Path) -> u64 {
    std::fs::read_to_string(p)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// python3 counting in memory and writing the count to a file.
fn start_counter(file: &Path) -> Child {
    let script = format!(
        "import time\nn = 0\nwhile True:\n    n += 1\n    open({:?}, 'w').write(str(n))\n    time.sleep(0.02)\n",
        file.display().to_string()
    );
    spawn_clean(
        Command::new("python3")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

/// A python3 counter running in its own scratch directory.
struct Counting {
    dir: Scratch,
    file: PathBuf,
    child: Child,
    pid: i32,
    _kill: Kill,
}

/// Starts a counter and waits until it has counted past `at_least`.
fn counting(tag: &str, at_least: u64) -> Counting {
    let dir = Scratch::new(tag);
    let file = dir.0.join("count");
    let child = start_counter(&file);
    let pid = child.id() as i32;
    wait_until("the counter to start", Duration::from_secs(10), || {
        read_counter(&file) > at_least
    });
    Counting {
        dir,
        file,
        child,
        pid,
        _kill: Kill(pid),
    }
}

/// `zos checkpoint PID --out DIR/image [extra…]`, which must succeed.
fn checkpoint_ok(c: &Counting, extra: &[&str]) -> PathBuf {
    let image = c.dir.0.join("image");
    let pid = c.pid.to_string();
    let mut args = vec!["checkpoint", &pid, "--out", image.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = zos(&args);
    assert!(out.status.success(), "{}", text(&out));
    image
}

fn restored_pid(o: &Output) -> i32 {
    assert!(o.status.success(), "restore failed: {}", text(o));
    String::from_utf8_lossy(&o.stdout)
        .trim()
        .parse()
        .expect("restore prints the pid")
}

#[test]
fn python_state_survives_checkpoint_and_restore_twice() {
    let mut c = counting("py", 5);
    let (pid, counter) = (c.pid, c.file.clone());
    let check = zos(&["checkpoint", "--check", &pid.to_string()]);
    assert!(check.status.success(), "{}", text(&check));

    let image = checkpoint_ok(&c, &[]);
    c.child.wait().unwrap(); // the original ended with the checkpoint
    let at_checkpoint = read_counter(&counter);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        read_counter(&counter),
        at_checkpoint,
        "nothing runs between checkpoint and restore"
    );

    for round in 0..2 {
        let new = restored_pid(&zos(&["restore", image.to_str().unwrap()]));
        let _copy = Kill(new);
        assert_eq!(new, pid, "same pid while it is free (round {round})");
        // The count goes on from where it was, not from zero: memory survived.
        wait_until(
            "the restored counter to advance",
            Duration::from_secs(10),
            || read_counter(&counter) > at_checkpoint + 5,
        );
        // SAFETY: kill(2) on the restored copy we own.
        unsafe { libc::kill(new, libc::SIGKILL) };
        // Its pid is free again once init has reaped it.
        wait_until("the copy to be reaped", Duration::from_secs(10), || {
            !Path::new(&format!("/proc/{new}")).exists()
        });
        std::fs::write(&counter, at_checkpoint.to_string()).unwrap();
    }
}

#[test]
fn leave_running_takes_a_snapshot() {
    let mut c = counting("snap", 3);
    let counter = c.file.clone();
    checkpoint_ok(&c, &["--leave-running"]);
    let after = read_counter(&counter);
    wait_until("the original to go on", Duration::from_secs(10), || {
        read_counter(&counter) > after + 3
    });
    assert!(
        c.child.try_wait().unwrap().is_none(),
        "the original still runs"
    );
}

#[test]
fn unsupported_process_is_refused_with_reasons_and_left_running() {
    let dir = Scratch::new("refuse");
    // python3 holding a listening TCP socket: sockets are refused up front.
    let mut child = spawn_clean(Command::new("python3").args([
            "-c",
            "import socket, time\ns = socket.socket()\ns.bind(('127.0.0.1', 0))\ns.listen()\nprint('ready', flush=True)\ntime.sleep(1000)\n",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null()));
    let pid = child.id() as i32;
    let _guard = Kill(pid);
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let check = zos(&["checkpoint", "--check", &pid.to_string()]);
    assert_eq!(check.status.code(), Some(2), "{}", text(&check));
    assert!(
        text(&check).to_lowercase().contains("socket"),
        "{}",
        text(&check)
    );
    let image = dir.0.join("image");
    let out = zos(&[
        "checkpoint",
        &pid.to_string(),
        "--out",
        image.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(text(&out).contains("left running"), "{}", text(&out));
    assert!(alive(pid), "the refused process runs on");
    assert!(child.try_wait().unwrap().is_none());
}

#[test]
fn corrupt_or_truncated_image_is_refused_before_anything_runs() {
    let mut c = counting("corrupt", 3);
    let pid = c.pid;
    let image = checkpoint_ok(&c, &[]);
    c.child.wait().unwrap();
    let file = image.join("image.zckpt");
    let good = std::fs::read(&file).unwrap();

    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x10;
    std::fs::write(&file, &flipped).unwrap();
    let r = zos(&["restore", image.to_str().unwrap()]);
    assert!(!r.status.success(), "a corrupt image must be refused");
    assert!(!alive(pid), "nothing was created from the corrupt image");
    eprintln!("corrupt: {}", text(&r));

    std::fs::write(&file, &good[..good.len() * 2 / 3]).unwrap();
    let r = zos(&["restore", image.to_str().unwrap()]);
    assert!(!r.status.success(), "a truncated image must be refused");
    assert!(!alive(pid));
    eprintln!("truncated: {}", text(&r));

    let mut foreign = good.clone();
    foreign[8] = foreign[8].wrapping_add(7); // the version field after the 8-byte magic
    std::fs::write(&file, &foreign).unwrap();
    let r = zos(&["restore", image.to_str().unwrap()]);
    assert!(
        !r.status.success(),
        "a foreign-version image must be refused"
    );
    assert!(text(&r).to_lowercase().contains("version"), "{}", text(&r));
    assert!(!alive(pid));
}
