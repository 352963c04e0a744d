//! `zos_display::die_with_parent`, the one way ZOS ties a child to the thread that spawned it:
//! the child gets the chosen signal when that thread ends, and a child whose parent died
//! before it could ask for the signal ends by itself instead of running on as an orphan.
//!
//! One of the tests forks, and a fork is safe only while no other thread holds a lock the
//! forked copy needs (malloc's, say): the tests of this file take turns (`ONE_AT_A_TIME`), and
//! it has no others.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use zos_display::die_with_parent;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn the_child_gets_the_chosen_signal_when_the_spawning_thread_ends() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let child = std::thread::spawn(|| {
        let mut cmd = Command::new("sleep");
        cmd.arg("60").stdin(Stdio::null());
        die_with_parent(&mut cmd, libc::SIGTERM);
        cmd.spawn().expect("spawn sleep")
    })
    .join()
    .unwrap();
    let mut child = child;
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("sleep outlived the thread that spawned it by 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status}");
}

/// The race the helper closes: the parent dies after the fork but before the child's
/// `prctl`, so the kernel never sends the signal and the child would run on, reparented.
/// Simulated exactly by spawning from a forked copy of the process that prepared the
/// command: the child's parent is then not the pid recorded when the command was prepared,
/// just as after a reparenting.
#[test]
fn a_child_whose_parent_is_gone_before_it_asked_ends_instead_of_running() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // Exits 7 if it ever runs; the helper must end it with 1 before exec.
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "exit 7"]).stdin(Stdio::null());
    die_with_parent(&mut cmd, libc::SIGKILL);

    // SAFETY: fork while the other threads of this binary (libtest's main thread, the other
    // test waiting for its turn) only wait on a channel or the mutex and hold no lock; the
    // forked copy spawns, waits, and leaves with _exit without returning into the harness.
    let forked = unsafe { libc::fork() };
    assert!(forked >= 0, "fork: {}", std::io::Error::last_os_error());
    if forked == 0 {
        let code = match cmd.spawn().and_then(|mut c| c.wait()) {
            Ok(status) => status.code().unwrap_or(100),
            Err(_) => 101,
        };
        // SAFETY: _exit ends the forked copy at once, running no destructors or atexit
        // hooks of the parent's state.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waitpid on the child we just forked, with a valid pointer for its status.
    let waited = unsafe { libc::waitpid(forked, &mut status, 0) };
    assert_eq!(
        waited,
        forked,
        "waitpid: {}",
        std::io::Error::last_os_error()
    );
    assert!(libc::WIFEXITED(status), "raw status {status:#x}");
    match libc::WEXITSTATUS(status) {
        1 => {}
        7 => panic!("the orphaned child ran its program instead of ending"),
        other => panic!("unexpected result {other} (100: killed by a signal, 101: spawn failed)"),
    }
}
