//! The master's policy against a zombie that tries to get out: through the
//! mount (as the zombie's kernel would) and with raw protocol calls (as a
//! hostile zombie could).

mod common;

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use common::{RawShare, Setup, Share, errno};
use serde_bytes::ByteBuf;
use zos_fileshare::proto::{Answer, Op, Owner, SetAttr};

fn b(s: &str) -> ByteBuf {
    ByteBuf::from(s.as_bytes().to_vec())
}

/// A master tree with a secret outside every export.
fn with_outside(m: &Path) {
    fs::create_dir_all(m.join("outside")).unwrap();
    fs::write(m.join("outside/secret"), b"outside secret").unwrap();
}

/// Runs `script` with `sh` in a new mount namespace in which the master's
/// `outside` directory is covered by an empty tmpfs: what the zombie's own
/// namespace would show. Returns (success, stdout).
fn in_zombie_namespace(master: &Path, script: &str) -> (bool, String) {
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount -t tmpfs none '{}/outside' && {script}",
            master.display()
        ))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn raw_names_cannot_climb_or_contain_slashes() {
    let mut s = RawShare::start(Setup::rw(), with_outside);
    let root = s.client.exports[0].node;
    for bad in ["..", ".", "a/b", "../outside", ""] {
        let r = s.rt.block_on(s.client.lookup(root, bad));
        assert_eq!(r, Err(libc::EINVAL), "lookup {bad:?}");
    }
    let bad_create = s.call(Op::Create {
        parent: root,
        name: b("../outside/x"),
        mode: 0o644,
        flags: libc::O_RDWR,
        owner: Owner { uid: 0, gid: 0 },
    });
    assert_eq!(bad_create, Err(libc::EINVAL));
    assert!(!s.master.join("outside/x").exists());
    // Node ids the server never handed out are refused: the master's own
    // inode numbers are no way in.
    let outside_ino = fs::metadata(s.master.join("outside")).unwrap().ino();
    assert_eq!(
        s.rt.block_on(s.client.lookup(outside_ino, "secret")),
        Err(libc::ESTALE)
    );
    assert_eq!(s.call(Op::GetAttr { node: 1 }), Err(libc::ESTALE));
    assert_eq!(
        s.call(Op::Read {
            fh: 77,
            offset: 0,
            size: 10
        }),
        Err(libc::EBADF)
    );
}

#[test]
fn symlinks_are_never_followed_by_the_server() {
    let mut s = RawShare::start(Setup::rw(), |m| {
        with_outside(m);
        let outside = m.join("outside");
        std::os::unix::fs::symlink(&outside, m.join("rw/linkdir")).unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), m.join("rw/abs")).unwrap();
        std::os::unix::fs::symlink("..", m.join("rw/up")).unwrap();
        std::os::unix::fs::symlink(outside.join("new"), m.join("rw/dangle")).unwrap();
    });
    let linkdir = s.resolve(0, "linkdir").unwrap();
    assert_eq!(
        s.rt.block_on(s.client.lookup(linkdir, "secret")),
        Err(libc::ENOTDIR)
    );
    assert_eq!(s.call(Op::OpenDir { node: linkdir }), Err(libc::ENOTDIR));
    let abs = s.resolve(0, "abs").unwrap();
    assert!(matches!(
        s.call(Op::Open {
            node: abs,
            flags: libc::O_RDONLY
        }),
        Err(libc::EACCES)
    ));
    match s.call(Op::ReadLink { node: abs }).unwrap() {
        Answer::Data(d) => assert_eq!(
            d.as_slice(),
            s.master
                .join("outside/secret")
                .as_os_str()
                .as_encoded_bytes()
        ),
        other => panic!("{other:?}"),
    }
    // Through a symlink to "..", still nothing above the export.
    let up = s.resolve(0, "up").unwrap();
    assert_eq!(
        s.rt.block_on(s.client.lookup(up, "outside")),
        Err(libc::ENOTDIR)
    );
    // chmod / truncate / chown / times of a symlink node touch the link only.
    let set = SetAttr {
        size: Some(0),
        ..SetAttr::default()
    };
    assert_eq!(
        s.call(Op::SetAttr {
            node: abs,
            fh: None,
            set
        }),
        Err(libc::EINVAL)
    );
    let set = SetAttr {
        mode: Some(0o777),
        ..SetAttr::default()
    };
    assert!(
        s.call(Op::SetAttr {
            node: abs,
            fh: None,
            set
        })
        .is_err()
    );
    // Owners never change (owners.rs); naming the link's own works.
    for (uid, want) in [(65534, Err(libc::EPERM)), (0, Ok(()))] {
        let set = SetAttr {
            uid: Some(uid),
            ..SetAttr::default()
        };
        let r = s.call(Op::SetAttr {
            node: abs,
            fh: None,
            set,
        });
        assert_eq!(r.map(drop), want, "chown {uid} of a symlink node");
    }
    let secret = fs::metadata(s.master.join("outside/secret")).unwrap();
    assert_eq!(secret.len(), 14, "the target was not truncated");
    assert_eq!(secret.uid(), 0, "the target was not chowned");
    assert_eq!(secret.mode() & 0o777, 0o644, "the target was not chmodded");
    // Creating over a dangling symlink never creates its target.
    let root = s.client.exports[0].node;
    let r = s.call(Op::Create {
        parent: root,
        name: b("dangle"),
        mode: 0o644,
        flags: libc::O_RDWR,
        owner: Owner { uid: 0, gid: 0 },
    });
    assert_eq!(r, Err(libc::ELOOP));
    assert!(!s.master.join("outside/new").exists());
    // A hard link to the symlink links the symlink, not its target.
    s.call(Op::Link {
        node: abs,
        parent: root,
        name: b("abs2"),
    })
    .unwrap();
    assert!(
        fs::symlink_metadata(s.master.join("rw/abs2"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        fs::metadata(s.master.join("outside/secret"))
            .unwrap()
            .nlink(),
        1
    );
}

#[test]
fn symlinks_resolve_in_the_zombies_namespace() {
    let s = Share::start(Setup::rw(), |m| {
        with_outside(m);
        let outside = m.join("outside");
        std::os::unix::fs::symlink(&outside, m.join("rw/linkdir")).unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), m.join("rw/abs")).unwrap();
        std::os::unix::fs::symlink("..", m.join("rw/up")).unwrap();
        std::os::unix::fs::symlink(outside.join("new"), m.join("rw/dangle")).unwrap();
    });
    assert!(
        fs::symlink_metadata(s.at("rw/abs"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    // Where the zombie has no such path, the links lead nowhere.
    let mnt = s.mnt.display();
    let (ok, _) = in_zombie_namespace(&s.master, &format!("cat '{mnt}/rw/abs'"));
    assert!(!ok, "an absolute symlink reached the master's file");
    let (ok, listing) = in_zombie_namespace(&s.master, &format!("ls -A '{mnt}/rw/linkdir/'"));
    assert!(ok && listing.is_empty(), "linkdir showed {listing:?}");
    let (ok, _) = in_zombie_namespace(&s.master, &format!("echo x > '{mnt}/rw/dangle'"));
    assert!(ok, "the zombie writes through its own namespace");
    assert!(
        !s.master.join("outside/new").exists(),
        "the server created the target"
    );
    // "up" is the mount's own root on the zombie.
    let names: Vec<_> = fs::read_dir(s.at("rw/up/"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec!["rw"]);
    assert_eq!(fs::metadata(s.at("rw/..")).unwrap().ino(), 1);
}

#[test]
fn hard_links_stay_inside_one_writable_export() {
    let s = Share::start(
        Setup {
            exports: vec![("a", false), ("b", false), ("ro", true)],
            never: vec!["a/never"],
        },
        |m| {
            fs::write(m.join("a/f"), b"a").unwrap();
            fs::write(m.join("ro/f"), b"ro").unwrap();
            fs::create_dir(m.join("a/never")).unwrap();
            fs::write(m.join("a/never/key"), b"key").unwrap();
        },
    );
    assert_eq!(errno(fs::hard_link(s.at("a/f"), s.at("b/f"))), libc::EXDEV);
    assert_eq!(errno(fs::hard_link(s.at("ro/f"), s.at("a/g"))), libc::EXDEV);
    assert_eq!(
        errno(fs::hard_link(s.at("ro/f"), s.at("ro/g"))),
        libc::EROFS
    );
    assert_eq!(
        errno(fs::hard_link(s.at("a/never/key"), s.at("a/k"))),
        libc::ENOENT
    );
    assert_eq!(
        errno(fs::hard_link(s.at("a/f"), s.at("a/never"))),
        libc::EACCES
    );
    assert_eq!(errno(fs::rename(s.at("a/f"), s.at("b/f"))), libc::EXDEV);
    fs::hard_link(s.at("a/f"), s.at("a/g")).unwrap();
    assert_eq!(fs::metadata(s.on_master("a/f")).unwrap().nlink(), 2);
}

#[test]
fn raw_link_of_a_node_from_another_export_is_refused() {
    let mut s = RawShare::start(
        Setup {
            exports: vec![("a", false), ("ro", true)],
            never: vec![],
        },
        |m| fs::write(m.join("ro/f"), b"ro").unwrap(),
    );
    let f = s.resolve(1, "f").unwrap();
    let a = s.client.exports[0].node;
    assert_eq!(
        s.call(Op::Link {
            node: f,
            parent: a,
            name: b("stolen")
        }),
        Err(libc::EXDEV)
    );
    assert!(!s.master.join("a/stolen").exists());
}

#[test]
fn a_hard_link_to_a_never_file_is_hidden_too() {
    let s = Share::start(
        Setup {
            exports: vec![("rw", false)],
            never: vec!["rw/never", "private"],
        },
        |m| {
            fs::create_dir_all(m.join("rw/never")).unwrap();
            fs::write(m.join("rw/never/key"), b"key").unwrap();
            fs::create_dir_all(m.join("private")).unwrap();
            fs::write(m.join("private/token"), b"token").unwrap();
            // Linked before serving: found by the index at start.
            fs::hard_link(m.join("private/token"), m.join("rw/pre")).unwrap();
            fs::write(m.join("rw/plain"), b"plain").unwrap();
        },
    );
    // Linked on the master while serving, into the export.
    fs::hard_link(s.on_master("rw/never/key"), s.on_master("rw/innocent")).unwrap();
    let listed: Vec<String> = fs::read_dir(s.at("rw"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(listed, vec!["plain"], "readdir shows only the plain file");
    for hidden in ["rw/pre", "rw/innocent", "rw/never", "rw/never/key"] {
        assert_eq!(errno(fs::metadata(s.at(hidden))), libc::ENOENT, "{hidden}");
    }
    assert_eq!(fs::read(s.at("rw/plain")).unwrap(), b"plain");
    // Other hard links made by the master's user are served like any file.
    fs::hard_link(s.on_master("rw/plain"), s.on_master("rw/plain2")).unwrap();
    assert_eq!(fs::read(s.at("rw/plain2")).unwrap(), b"plain");
}

#[test]
fn read_only_exports_refuse_every_change() {
    let s = Share::start(
        Setup {
            exports: vec![("ro", true)],
            never: vec![],
        },
        |m| {
            fs::write(m.join("ro/f"), b"data").unwrap();
            fs::create_dir(m.join("ro/d")).unwrap();
        },
    );
    let f = s.at("ro/f");
    assert_eq!(fs::read(&f).unwrap(), b"data");
    let erofs = libc::EROFS;
    assert_eq!(errno(OpenOptions::new().write(true).open(&f)), erofs);
    assert_eq!(
        errno(OpenOptions::new().read(true).write(true).open(&f)),
        erofs
    );
    assert_eq!(
        errno(OpenOptions::new().write(true).truncate(true).open(&f)),
        erofs
    );
    assert_eq!(errno(File::create(s.at("ro/new"))), erofs);
    assert_eq!(errno(fs::create_dir(s.at("ro/nd"))), erofs);
    assert_eq!(errno(fs::remove_file(&f)), erofs);
    assert_eq!(errno(fs::remove_dir(s.at("ro/d"))), erofs);
    assert_eq!(errno(fs::rename(&f, s.at("ro/g"))), erofs);
    assert_eq!(errno(std::os::unix::fs::symlink("f", s.at("ro/l"))), erofs);
    assert_eq!(errno(fs::hard_link(&f, s.at("ro/h"))), erofs);
    assert_eq!(
        errno(fs::set_permissions(&f, fs::Permissions::from_mode(0o600))),
        erofs
    );
    assert_eq!(errno(std::os::unix::fs::chown(&f, Some(1), None)), erofs);
    assert_eq!(
        errno(
            File::open(&f)
                .unwrap()
                .set_times(fs::FileTimes::new().set_modified(std::time::UNIX_EPOCH))
        ),
        erofs
    );
    let c = std::ffi::CString::new(s.at("ro/fifo").into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: a valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, -1);
    assert_eq!(std::io::Error::last_os_error().raw_os_error(), Some(erofs));
    // The root itself is read-only too.
    assert_eq!(errno(fs::create_dir(s.at("x"))), erofs);
    let m = fs::metadata(s.on_master("ro/f")).unwrap();
    assert_eq!((m.len(), m.mode() & 0o777), (4, 0o644));
    assert_eq!(fs::read_dir(s.on_master("ro")).unwrap().count(), 2);
}

#[test]
fn never_paths_are_hidden_inside_exports() {
    let s = Share::start(
        Setup {
            exports: vec![("rw", false)],
            never: vec!["rw/secret", "rw/deep/er/key.pem"],
        },
        |m| {
            fs::create_dir_all(m.join("rw/secret")).unwrap();
            fs::write(m.join("rw/secret/data"), b"s").unwrap();
            fs::create_dir_all(m.join("rw/deep/er")).unwrap();
            fs::write(m.join("rw/deep/er/key.pem"), b"k").unwrap();
            fs::write(m.join("rw/deep/er/ok"), b"ok").unwrap();
            fs::write(m.join("rw/f"), b"f").unwrap();
        },
    );
    let names = |p: &str| -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(s.at(p))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names("rw"), vec!["deep", "f"]);
    assert_eq!(names("rw/deep/er"), vec!["ok"]);
    assert_eq!(errno(fs::metadata(s.at("rw/secret"))), libc::ENOENT);
    assert_eq!(errno(fs::read(s.at("rw/secret/data"))), libc::ENOENT);
    assert_eq!(
        errno(fs::metadata(s.at("rw/deep/er/key.pem"))),
        libc::ENOENT
    );
    // Nothing can be created, renamed or linked onto a never-path.
    assert_eq!(errno(fs::create_dir(s.at("rw/secret"))), libc::EACCES);
    assert_eq!(
        errno(File::create(s.at("rw/deep/er/key.pem"))),
        libc::EACCES
    );
    assert_eq!(
        errno(fs::rename(s.at("rw/f"), s.at("rw/secret"))),
        libc::EACCES
    );
    assert_eq!(
        errno(fs::hard_link(s.at("rw/f"), s.at("rw/deep/er/key.pem"))),
        libc::EACCES
    );
    assert_eq!(
        errno(std::os::unix::fs::symlink("f", s.at("rw/secret"))),
        libc::EACCES
    );
    // Moving the parent keeps its never-path hidden under the new name.
    fs::rename(s.at("rw/deep"), s.at("rw/moved")).unwrap();
    assert_eq!(
        errno(fs::metadata(s.at("rw/moved/er/key.pem"))),
        libc::ENOENT
    );
    assert_eq!(fs::read(s.on_master("rw/moved/er/key.pem")).unwrap(), b"k");
    assert_eq!(fs::read(s.on_master("rw/secret/data")).unwrap(), b"s");
}
