//! `zos-pod-init --pty-sock FD -- CMD [ARG…]`: PID 1 of a ZOS pod.
//!
//! 1. Becomes a session leader, blocks the signals it handles (SIGCHLD, SIGTERM, SIGINT,
//!    SIGHUP) and creates the pod's pseudo-terminal through `/dev/ptmx` (index 0 of the pod's
//!    own devpts instance).
//! 2. Forks the task: a new session whose controlling terminal is the pty slave, on
//!    stdin/stdout/stderr, then `execvp(CMD)` with init's own environment and directory.
//! 3. Sends the pty master over the unix socket `FD` (SCM_RIGHTS; one byte of data) and closes
//!    both, keeping no descriptor but `/dev/null` on 0–2 — so the engine can checkpoint it.
//! 4. Loops in `sigwaitinfo`: SIGCHLD reaps every child that ended (orphans included);
//!    SIGTERM/SIGINT/SIGHUP go to the task's process group; when the task's main process has
//!    ended, init exits with its exit code (128 + signal if it was killed), which ends the pod.
//!
//! Every blocking call is retried on `EINTR`, so a freeze by the checkpoint engine (which
//! interrupts `sigwaitinfo`) changes nothing. It never panics on bad input: it reports on
//! stderr and exits 127.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStringExt;

/// Exit code when the task could not be started.
const CANNOT_RUN: i32 = 127;

fn main() {
    // A panic must not unwind through the pod's PID 1: abort at once.
    std::panic::set_hook(Box::new(|_| std::process::abort()));
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let (sock, argv) = match parse(&args) {
        Some(v) => v,
        None => {
            eprintln!("usage: zos-pod-init --pty-sock FD -- CMD [ARG...]");
            std::process::exit(CANNOT_RUN);
        }
    };
    match run(sock, &argv) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("zos-pod-init: {e}");
            std::process::exit(CANNOT_RUN);
        }
    }
}

/// `--pty-sock FD -- CMD…` → (FD, CMD…).
fn parse(args: &[OsString]) -> Option<(i32, Vec<CString>)> {
    let [flag, fd, dashes, cmd @ ..] = args else {
        return None;
    };
    if flag != "--pty-sock" || dashes != "--" || cmd.is_empty() {
        return None;
    }
    let fd = fd.to_str()?.parse().ok()?;
    let argv = cmd
        .iter()
        .map(|a| CString::new(a.clone().into_vec()).ok())
        .collect::<Option<Vec<_>>>()?;
    Some((fd, argv))
}

fn os_err(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

/// The signals init waits for.
fn handled() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise and fill it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

fn run(sock: i32, argv: &[CString]) -> Result<i32, String> {
    let set = handled();
    // SAFETY: setsid and sigprocmask take no pointers but the valid `set`.
    unsafe {
        libc::setsid();
        if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(os_err("sigprocmask"));
        }
    }
    let (master, slave) = open_pty()?;
    let task = start_task(argv, master, slave, sock)?;
    // SAFETY: closing the slave, which only the task needs.
    unsafe { libc::close(slave) };
    let sent = send_fd(sock, master);
    // SAFETY: closing descriptors we own; chdir with a valid C string (so init does not keep
    // the task's directory busy).
    unsafe {
        libc::close(master);
        libc::close(sock);
        libc::chdir(c"/".as_ptr());
    }
    sent?;
    Ok(supervise(task, &set))
}

/// A new pty: (master, slave), both close-on-exec.
fn open_pty() -> Result<(i32, i32), String> {
    // SAFETY: open with a valid C string; ioctls on the descriptor we just opened, with an
    // int argument (TIOCSPTLCK takes a pointer to an int that lives across the call).
    unsafe {
        let master = libc::open(
            c"/dev/ptmx".as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        if master < 0 {
            return Err(os_err("open /dev/ptmx"));
        }
        let unlock: libc::c_int = 0;
        if libc::ioctl(master, libc::TIOCSPTLCK, &unlock) != 0 {
            return Err(os_err("unlock the pty"));
        }
        let slave = libc::ioctl(
            master,
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        if slave < 0 {
            return Err(os_err("open the pty slave"));
        }
        Ok((master, slave))
    }
}

/// Fork the task on the pty slave; returns its PID.
fn start_task(argv: &[CString], master: i32, slave: i32, sock: i32) -> Result<i32, String> {
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let prog = argv[0].as_ptr();
    let mut msg = b"zos-pod-init: cannot run ".to_vec();
    msg.extend_from_slice(argv[0].as_bytes());
    msg.push(b'\n');
    // SAFETY: init is single-threaded, so the child may call anything; it only makes plain
    // system calls on descriptors it owns and on data prepared before the fork.
    unsafe {
        let pid = libc::fork();
        if pid < 0 {
            return Err(os_err("fork"));
        }
        if pid > 0 {
            return Ok(pid);
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        // Rust's runtime ignores SIGPIPE in init; an ignored disposition survives exec, and a
        // pipeline's writer must die of SIGPIPE as usual.
        for sig in 1..libc::SIGRTMIN() {
            libc::signal(sig, libc::SIG_DFL);
        }
        libc::setsid();
        libc::ioctl(slave, libc::TIOCSCTTY, 0);
        for fd in 0..3 {
            libc::dup2(slave, fd);
        }
        libc::close(slave);
        libc::close(master);
        libc::close(sock);
        libc::execvp(prog, ptrs.as_ptr());
        libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::_exit(CANNOT_RUN);
    }
}

/// Send `fd` over the unix socket `sock` with one byte of data.
fn send_fd(sock: i32, fd: i32) -> Result<(), String> {
    // SAFETY: msghdr, iovec and the control buffer are local and outlive the sendmsg call;
    // CMSG_* compute offsets inside `control`, which is large enough for one int.
    unsafe {
        let mut byte = 0u8;
        let mut iov = libc::iovec {
            iov_base: (&mut byte as *mut u8).cast(),
            iov_len: 1,
        };
        let mut control = [0u64; 4];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(4) as usize;
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(4) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<i32>(), fd);
        loop {
            if libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) == 1 {
                return Ok(());
            }
            if *libc::__errno_location() != libc::EINTR {
                return Err(os_err("send the pty master"));
            }
        }
    }
}

/// Reap children and forward signals until the task's main process ends; its exit code.
fn supervise(task: i32, set: &libc::sigset_t) -> i32 {
    loop {
        // SAFETY: `set` is a valid signal set; the siginfo out pointer may be null.
        let sig = unsafe { libc::sigwaitinfo(set, std::ptr::null_mut()) };
        match sig {
            libc::SIGCHLD => {
                if let Some(code) = reap(task) {
                    return code;
                }
            }
            libc::SIGTERM | libc::SIGINT | libc::SIGHUP => {
                // SAFETY: kill takes no pointers.
                unsafe {
                    if libc::kill(-task, sig) != 0 {
                        libc::kill(task, sig);
                    }
                }
            }
            // EINTR (a freeze, a stop) or a signal we do not wait for: wait again.
            _ => {}
        }
    }
}

/// Reap every child that has ended; the exit code once `task` is among them.
fn reap(task: i32) -> Option<i32> {
    let mut ended = None;
    loop {
        let mut status = 0;
        // SAFETY: status is a valid out pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return ended;
        }
        if pid == task {
            ended = Some(if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                128 + libc::WTERMSIG(status)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn command_line_is_parsed_strictly() {
        let (fd, argv) = parse(&os(&["--pty-sock", "3", "--", "sh", "-c", "x"])).unwrap();
        assert_eq!(fd, 3);
        assert_eq!(argv.len(), 3);
        for bad in [
            &["--pty-sock", "3", "--"][..],
            &["--pty-sock", "x", "--", "sh"],
            &["--pty", "3", "--", "sh"],
            &["--pty-sock", "3", "sh"],
        ] {
            assert!(parse(&os(bad)).is_none(), "{bad:?}");
        }
    }
}
