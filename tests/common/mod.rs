//! The end-to-end test harness: a LAN of network namespaces on this machine,
//! hosts with their own directories, processes that are always cleaned up,
//! Xvfb displays, an avahi observer, and helpers for the `zos` CLI.
//!
//! Everything a test makes is owned by a guard whose `Drop` removes it, so
//! a failing or panicking test leaves nothing behind; namespaces and temp
//! dirs of crashed runs are removed by the next run (their names carry the
//! creating pid).
#![allow(dead_code)]

pub mod attacker;
pub mod avahi;
pub mod dominated;
pub mod drive;
pub mod host;
pub mod lan;
pub mod migrate;
pub mod notifications;
pub mod nsenter;
pub mod pod_init;
pub mod poll;
pub mod proc;
pub mod pty;
pub mod screen;
pub mod snapshot;
pub mod tmp;
pub mod tools;
pub mod view;
pub mod xvfb;
pub mod zos;

#[allow(unused_imports)]
pub use host::Host;
#[allow(unused_imports)]
pub use lan::Lan;
#[allow(unused_imports)]
pub use poll::{secs, until};
#[allow(unused_imports)]
pub use proc::Proc;

/// Whether a process with this pid exists.
pub fn pid_alive(pid: i32) -> bool {
    // SAFETY: kill(2) with signal 0 only checks for existence.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Network namespaces need root; say so instead of failing obscurely.
pub fn require_root() {
    // SAFETY: geteuid(2) has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the end-to-end tests build network namespaces and must run as root"
    );
}

/// Removes ANSI colour sequences (`ESC [ … letter`) from log text.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
