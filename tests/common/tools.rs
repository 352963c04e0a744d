//! The outside programs the tests run, and the Debian package of each: a
//! missing one fails the test with a message saying what to install
//! (`packaging/system-packages.txt` lists them all, and
//! `packaging/install-system-packages.sh` installs them; CI runs it first).
//!
//! Shared by the end-to-end tests and, through `#[path]`, by the window
//! tests of `app/gui` and `app/viewer`, so every test names the same package.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The Debian package that provides `program`.
pub fn package_of(program: &str) -> &'static str {
    match program {
        "Xvfb" => "xvfb",
        "Xvnc" => "tigervnc-standalone-server",
        "Xephyr" => "xserver-xephyr",
        "xclip" => "xclip",
        "barriers" | "barrierc" => "barrier",
        "vncviewer" => "tigervnc-viewer",
        "xwininfo" | "xdpyinfo" | "xev" | "xmessage" | "xprop" => "x11-utils",
        "xclock" | "xeyes" => "x11-apps",
        "xsetroot" | "xrandr" => "x11-xserver-utils",
        "xdotool" => "xdotool",
        "openbox" => "openbox",
        "xterm" => "xterm",
        "import" | "convert" => "imagemagick",
        "dbus-run-session" | "dbus-daemon" => "dbus",
        "dunst" | "dunstctl" => "dunst",
        "avahi-daemon" => "avahi-daemon",
        "avahi-browse" => "avahi-utils",
        "python3" | "/usr/bin/python3" => "python3",
        "ip" | "ss" => "iproute2",
        "unshare" | "nsenter" | "setpriv" | "mountpoint" => "util-linux",
        "mount" | "umount" => "mount",
        "kill" => "procps",
        "timeout" | "stdbuf" | "sha256sum" | "stat" => "coreutils",
        "fusermount3" => "fuse3",
        "sshfs" => "sshfs",
        "make" => "make",
        "gcc" => "gcc",
        "sqlite3" => "sqlite3",
        "gzip" => "gzip",
        _ => "listed in packaging/system-packages.txt",
    }
}

/// Where `program` is: itself if it names a path, else the first
/// executable of that name on `PATH`.
pub fn find(program: &str) -> Option<PathBuf> {
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = PathBuf::from(program);
        return executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
}

/// Fails the test unless `program` is installed, naming its package.
pub fn require(program: &str) -> PathBuf {
    find(program).unwrap_or_else(|| {
        panic!(
            "{program} is not installed (Debian package {}); \
             `sh packaging/install-system-packages.sh` installs every tool the tests need",
            package_of(program)
        )
    })
}

/// [`require`] for each of `programs`.
pub fn require_all(programs: &[&str]) {
    for program in programs {
        require(program);
    }
}
