//! `zos checkpoint` / `zos restore` used as a user would: real programs that
//! no one here wrote, checkpointed and restored through the command line.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Run `zos ARGS` as root with its home (and image key) in `scratch`.
fn zos(scratch: &Scratch, args: &[&str]) -> Output {
    zos_as(scratch, &[], args)
}

/// Run `zos ARGS` through `wrapper` (`setpriv …` to run as another user, or nothing) with its
/// home in `scratch`.
fn zos_as(scratch: &Scratch, wrapper: &[&str], args: &[&str]) -> Output {
    let mut cmd = match wrapper.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(env!("CARGO_BIN_EXE_zos"));
            c
        }
        None => Command::new(env!("CARGO_BIN_EXE_zos")),
    };
    cmd.args(args)
        .env("ZOS_HOME", scratch.0.join("home"))
        .stdin(Stdio::null());
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
    let out = zos(&c.dir, &args);
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
    let check = zos(&c.dir, &["checkpoint", "--check", &pid.to_string()]);
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
        let new = restored_pid(&zos(&c.dir, &["restore", image.to_str().unwrap()]));
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
    let check = zos(&dir, &["checkpoint", "--check", &pid.to_string()]);
    assert_eq!(check.status.code(), Some(2), "{}", text(&check));
    assert!(
        text(&check).to_lowercase().contains("socket"),
        "{}",
        text(&check)
    );
    let image = dir.0.join("image");
    let out = zos(
        &dir,
        &[
            "checkpoint",
            &pid.to_string(),
            "--out",
            image.to_str().unwrap(),
        ],
    );
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
    let r = zos(&c.dir, &["restore", image.to_str().unwrap()]);
    assert!(!r.status.success(), "a corrupt image must be refused");
    assert!(!alive(pid), "nothing was created from the corrupt image");
    eprintln!("corrupt: {}", text(&r));

    std::fs::write(&file, &good[..good.len() * 2 / 3]).unwrap();
    let r = zos(&c.dir, &["restore", image.to_str().unwrap()]);
    assert!(!r.status.success(), "a truncated image must be refused");
    assert!(!alive(pid));
    eprintln!("truncated: {}", text(&r));

    let mut foreign = good.clone();
    foreign[8] = foreign[8].wrapping_add(7); // the version field after the 8-byte magic
    std::fs::write(&file, &foreign).unwrap();
    let r = zos(&c.dir, &["restore", image.to_str().unwrap()]);
    assert!(
        !r.status.success(),
        "a foreign-version image must be refused"
    );
    assert!(text(&r).to_lowercase().contains("version"), "{}", text(&r));
    assert!(!alive(pid));
}

const AS_NOBODY: [&str; 4] = [
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
];

/// `sleep 1000` (as nobody through `wrapper`, or as root), once it sleeps.
fn sleeper(wrapper: &[&str]) -> (Child, Kill) {
    let mut cmd = match wrapper.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg("sleep");
            c
        }
        None => Command::new("sleep"),
    };
    cmd.arg("1000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = spawn_clean(&mut cmd);
    let pid = child.id() as i32;
    wait_until("sleep to sleep", Duration::from_secs(10), || {
        std::fs::read_to_string(format!("/proc/{pid}/syscall")).is_ok_and(|s| s.starts_with("230 "))
    });
    (child, Kill(pid))
}

/// A `sleep 1000` (through `wrapper`) checkpointed by root's `zos` into `dir/name`; the
/// image directory.
fn sleeper_image(dir: &Scratch, wrapper: &[&str], name: &str) -> PathBuf {
    let (mut p, _kill) = sleeper(wrapper);
    let image = dir.0.join(name);
    let pid = p.id().to_string();
    let out = zos(dir, &["checkpoint", &pid, "--out", image.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    p.wait().unwrap();
    image
}

fn uids_of(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn chown_nobody(p: &Path) {
    let st = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(p)
        .status()
        .unwrap();
    assert!(st.success());
}

/// A non-root caller restores its own process (under a new PID: choosing PIDs needs
/// CAP_CHECKPOINT_RESTORE), never root's.
#[test]
fn non_root_caller_restores_its_own_image_but_not_roots() {
    let dir = Scratch::new("nonroot");
    let image = sleeper_image(&dir, &AS_NOBODY, "own");
    chown_nobody(&image);
    let r = zos_as(&dir, &AS_NOBODY, &["restore", image.to_str().unwrap()]);
    let pid = restored_pid(&r);
    let _copy = Kill(pid);
    assert_eq!(uids_of(pid), "Uid: 65534 65534 65534 65534");
    wait_until("the copy to sleep again", Duration::from_secs(10), || {
        std::fs::read_to_string(format!("/proc/{pid}/syscall")).is_ok_and(|s| s.starts_with("230 "))
    });
    eprintln!("{}", text(&r));

    let image = sleeper_image(&dir, &[], "roots");
    // Readable by nobody, so that only the credentials rule stands in the way.
    let st = Command::new("chmod")
        .args(["-R", "go+rX"])
        .arg(&image)
        .status()
        .unwrap();
    assert!(st.success());
    let r = zos_as(&dir, &AS_NOBODY, &["restore", image.to_str().unwrap()]);
    assert!(!r.status.success(), "nobody restored root's process");
    let t = text(&r);
    assert!(
        t.contains("only root may restore") && t.contains("uids 0/0/0/0"),
        "{t}"
    );
}

/// Root restores another user's process only from an image this machine's key signed.
#[test]
fn root_restores_another_users_process_only_from_images_signed_here() {
    let dir = Scratch::new("signed");
    let elsewhere = Scratch::new("signed-elsewhere");
    let image = sleeper_image(&dir, &AS_NOBODY, "image");
    let key = dir.0.join("home/image.key");
    let md = std::fs::metadata(&key).expect("the image key was made");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&md.permissions()) & 0o777,
        0o600
    );

    let r = zos(&elsewhere, &["restore", image.to_str().unwrap()]);
    assert!(!r.status.success(), "restored with another machine's key");
    assert!(text(&r).contains("not this machine's"), "{}", text(&r));
    let pid = restored_pid(&zos(&dir, &["restore", image.to_str().unwrap()]));
    let _copy = Kill(pid);
    assert_eq!(uids_of(pid), "Uid: 65534 65534 65534 65534");
}

/// Finding 7 from the command line: a directory another user made, with a link planted where
/// the image is written, is refused and the link's target is left alone.
#[test]
fn checkpoint_out_refuses_a_directory_another_user_made() {
    let c = counting("planted", 1);
    let secret = c.dir.0.join("secret");
    std::fs::write(&secret, "root only").unwrap();
    let theirs = c.dir.0.join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::symlink(&secret, theirs.join("image.zckpt.part")).unwrap();
    chown_nobody(&theirs);
    let pid = c.pid.to_string();
    let out = zos(
        &c.dir,
        &["checkpoint", &pid, "--out", theirs.to_str().unwrap()],
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("uid 65534"), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "root only");
    assert!(alive(c.pid), "the process runs on");
}

/// Finding 13 from the command line: the original still runs → refused, naming it; --force
/// starts a second copy.
#[test]
fn restore_while_the_original_runs_needs_force() {
    let c = counting("force", 1);
    let image = checkpoint_ok(&c, &["--leave-running"]);
    let r = zos(&c.dir, &["restore", image.to_str().unwrap()]);
    assert!(!r.status.success(), "a second copy started silently");
    let t = text(&r);
    assert!(
        t.contains(&format!("PID {}", c.pid)) && t.contains("--force"),
        "{t}"
    );
    let pid = restored_pid(&zos(
        &c.dir,
        &["restore", "--force", image.to_str().unwrap()],
    ));
    let _copy = Kill(pid);
    assert_ne!(pid, c.pid);
    assert!(alive(pid) && alive(c.pid));
    let help = zos(&c.dir, &["restore", "--help"]);
    assert!(text(&help).contains("--force"), "{}", text(&help));
}
