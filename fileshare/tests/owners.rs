//! Owners and set-id bits (issue 9, item 4): root on a dominated zombie may
//! not give the master's files another owner, nor plant a setuid or setgid
//! program there. The master serves files as its own user; these tests run
//! the server as root (as the e2e daemons do), so the server has to enforce
//! this itself: the kernel would let root do all of it.

mod common;

use std::ffi::CString;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use common::{Setup, Share, errno};

const SET_ID: u32 = libc::S_ISUID | libc::S_ISGID;

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

fn mode_on(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

/// The uid and gid the server runs as (this test process).
fn server_owner() -> (u32, u32) {
    // SAFETY: geteuid/getegid have no preconditions.
    unsafe { (libc::geteuid(), libc::getegid()) }
}

fn owner_on(path: &Path) -> (u32, u32) {
    let m = fs::symlink_metadata(path).unwrap();
    (m.uid(), m.gid())
}

#[test]
fn zombie_root_cannot_give_a_master_file_another_owner() {
    let s = Share::start(Setup::rw(), |m| {
        fs::write(m.join("rw/theirs"), b"the master user's file").unwrap();
        std::os::unix::fs::chown(m.join("rw/theirs"), Some(1000), Some(1000)).unwrap();
    });
    fs::copy("/bin/sh", s.at("rw/sh")).unwrap();
    let me = server_owner();
    assert_eq!(owner_on(&s.on_master("rw/sh")), me);
    for (what, path, uid, gid) in [
        (
            "chown 0:0 of another user's file",
            "rw/theirs",
            Some(0),
            Some(0),
        ),
        ("chgrp 0 of another user's file", "rw/theirs", None, Some(0)),
        ("chown to nobody", "rw/sh", Some(65534), None),
        ("chgrp to nogroup", "rw/sh", None, Some(65534)),
        ("chown 1000:1000", "rw/sh", Some(1000), Some(1000)),
    ] {
        let r = std::os::unix::fs::chown(s.at(path), uid, gid);
        assert_eq!(errno(r), libc::EPERM, "{what}");
    }
    assert_eq!(owner_on(&s.on_master("rw/theirs")), (1000, 1000));
    assert_eq!(owner_on(&s.on_master("rw/sh")), me);
    // Naming the current owner and group changes nothing and is allowed
    // (tools that preserve owners do this).
    std::os::unix::fs::chown(s.at("rw/theirs"), Some(1000), Some(1000)).unwrap();
    std::os::unix::fs::chown(s.at("rw/sh"), Some(me.0), Some(me.1)).unwrap();
    std::os::unix::fs::lchown(s.at("rw/sh"), None, None).unwrap();
    assert_eq!(owner_on(&s.on_master("rw/theirs")), (1000, 1000));
}

#[test]
fn zombie_root_cannot_set_a_setuid_or_setgid_bit() {
    let s = Share::start(Setup::rw(), |m| {
        fs::create_dir(m.join("rw/dir")).unwrap();
    });
    fs::copy("/bin/sh", s.at("rw/sh")).unwrap();
    for mode in [0o4755, 0o2755, 0o6755, 0o4700] {
        let r = fs::set_permissions(s.at("rw/sh"), fs::Permissions::from_mode(mode));
        assert_eq!(errno(r), libc::EPERM, "chmod {mode:o}");
        assert_eq!(mode_on(&s.on_master("rw/sh")) & SET_ID, 0, "chmod {mode:o}");
    }
    let r = fs::set_permissions(s.at("rw/dir"), fs::Permissions::from_mode(0o2775));
    assert_eq!(errno(r), libc::EPERM, "chmod g+s of a directory");
    // Ordinary modes still change, the sticky bit included.
    fs::set_permissions(s.at("rw/sh"), fs::Permissions::from_mode(0o750)).unwrap();
    assert_eq!(mode_on(&s.on_master("rw/sh")), 0o750);
    fs::set_permissions(s.at("rw/dir"), fs::Permissions::from_mode(0o1777)).unwrap();
    assert_eq!(mode_on(&s.on_master("rw/dir")), 0o1777);
}

#[test]
fn set_id_bits_asked_for_at_creation_are_dropped() {
    let s = Share::start(Setup::rw(), |_| {});
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o4755)
        .open(s.at("rw/created"))
        .unwrap();
    f.write_all(b"#!/bin/sh\n").unwrap();
    drop(f);
    assert_eq!(mode_on(&s.on_master("rw/created")), 0o755);
    // SAFETY: valid NUL-terminated paths.
    unsafe {
        assert_eq!(libc::mkdir(cpath(&s.at("rw/d")).as_ptr(), 0o2755), 0);
        assert_eq!(
            libc::mknod(cpath(&s.at("rw/node")).as_ptr(), libc::S_IFREG | 0o6755, 0),
            0
        );
    }
    assert_eq!(mode_on(&s.on_master("rw/d")), 0o755);
    assert_eq!(mode_on(&s.on_master("rw/node")), 0o755);
    // What the zombie sees is what the master has.
    assert_eq!(mode_on(&s.at("rw/created")), 0o755);
}

#[test]
fn writing_through_the_share_clears_a_masters_set_id_bits() {
    let s = Share::start(Setup::rw(), |m| {
        for name in ["rw/prog", "rw/cut"] {
            fs::copy("/bin/sh", m.join(name)).unwrap();
            fs::set_permissions(m.join(name), fs::Permissions::from_mode(0o6755)).unwrap();
        }
    });
    // The server runs as root, whose writes the kernel leaves set-id bits
    // on; a zombie's write must not.
    let mut f = OpenOptions::new()
        .write(true)
        .open(s.at("rw/prog"))
        .unwrap();
    f.write_all(b"#!/bin/sh\nexec cat /etc/shadow\n").unwrap();
    f.sync_all().unwrap();
    drop(f);
    assert_eq!(mode_on(&s.on_master("rw/prog")), 0o755);
    let c = cpath(&s.at("rw/cut"));
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::truncate(c.as_ptr(), 10) }, 0);
    assert_eq!(mode_on(&s.on_master("rw/cut")), 0o755);
}

#[test]
fn files_made_by_any_zombie_user_belong_to_the_masters_user() {
    let s = Share::start(Setup::rw(), |m| {
        fs::set_permissions(m.join("rw"), fs::Permissions::from_mode(0o777)).unwrap();
    });
    let as_nobody = |args: &[&str]| {
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?} as nobody: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let at = |rel: &str| s.at(rel).to_str().unwrap().to_string();
    as_nobody(&["sh", "-c", &format!(": > {}", at("rw/file"))]);
    as_nobody(&["mkdir", &at("rw/dir")]);
    as_nobody(&["ln", "-s", "file", &at("rw/link")]);
    as_nobody(&["mkfifo", &at("rw/fifo")]);
    let me = server_owner();
    for name in ["rw/file", "rw/dir", "rw/link", "rw/fifo"] {
        assert_eq!(owner_on(&s.on_master(name)), me, "{name}");
    }
}
