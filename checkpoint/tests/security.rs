//! Images against other local users and attackers: image directories others could plant
//! files in, private images, credentials an image names, the original process still running.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use zos_checkpoint::{
    Credentials, DumpOptions, Error, ImageKey, RestoreOptions, checkpoint, restore,
    restore_from_bytes,
};

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

fn mkdir(p: &Path, mode: u32) {
    fs::create_dir(p).unwrap();
    chmod(p, mode);
}

fn mode_of(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

fn leave_running() -> DumpOptions {
    DumpOptions {
        leave_running: true,
        ..Default::default()
    }
}

/// Finding 7: `--out DIR` followed a planted `DIR/image.zckpt.part` symlink and reused a
/// directory someone else owned.
#[test]
fn checkpoint_refuses_directories_others_could_plant_files_in() {
    use std::io::Write;
    let dir = TempDir::new("plant");
    let secret = dir.join("secret");
    fs::write(&secret, "root only").unwrap();
    chmod(&secret, 0o600);
    let mut p = Running::start(&[&prog("memonly")]);
    p.wait_line("READY");

    let theirs = dir.join("theirs");
    mkdir(&theirs, 0o755);
    symlink(&secret, theirs.join("image.zckpt.part")).unwrap();
    chown(&theirs, 65534);
    let open = dir.join("open");
    mkdir(&open, 0o777);
    symlink(&secret, open.join("image.zckpt.part")).unwrap();
    let real = dir.join("real");
    mkdir(&real, 0o700);
    let link = dir.join("link");
    symlink(&real, &link).unwrap();
    for (what, out, word) in [
        ("another user's directory", &theirs, "uid 65534"),
        ("a world-writable directory", &open, "writable"),
        ("a symbolic link to a directory", &link, "symbolic link"),
    ] {
        match checkpoint(p.pid, out, &leave_running()) {
            Err(Error::Denied(m)) => assert!(m.contains(word), "{what}: {m}"),
            other => panic!("{what}: expected a refusal, got {other:?}"),
        }
        let s = fs::read_to_string(&secret).unwrap();
        assert_eq!(s, "root only", "{what}: the planted link was followed");
    }
    assert!(!real.join("image.zckpt").exists());

    // Our own private directory with a leftover link of that name: removed, not followed.
    let ours = dir.join("ours");
    mkdir(&ours, 0o700);
    symlink(&secret, ours.join("image.zckpt.part")).unwrap();
    checkpoint(p.pid, &ours, &leave_running()).expect("checkpoint");
    assert_eq!(fs::read_to_string(&secret).unwrap(), "root only");
    assert!(
        fs::symlink_metadata(ours.join("image.zckpt"))
            .unwrap()
            .is_file()
    );
    assert!(fs::symlink_metadata(ours.join("image.zckpt.part")).is_err());

    p.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    assert_eq!(p.wait_line("PASS"), "PASS", "the process ran on throughout");
}

/// Finding 8: images were 0644 in 0755 directories, readable by every local user.
#[test]
fn images_are_readable_only_by_their_owner() {
    let dir = TempDir::new("private");
    let mut p = Running::start(&[&prog("memonly")]);
    p.wait_line("READY");
    let img = dir.join("a/b/img");
    checkpoint(p.pid, &img, &leave_running()).expect("checkpoint");
    for d in [dir.join("a"), dir.join("a/b"), img.clone()] {
        assert_eq!(mode_of(&d), 0o700, "{}", d.display());
    }
    let file = img.join("image.zckpt");
    assert_eq!(mode_of(&file), 0o600);
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "cat"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        !out.status.success() && out.stdout.is_empty(),
        "another user read the image"
    );
}

/// `restore` reads only images no one else could have put there.
#[test]
fn restore_refuses_images_others_could_have_planted() {
    let dir = TempDir::new("restore-plant");
    let mut p = Running::start(&[&prog("memonly")]);
    p.wait_line("READY");
    let img = dir.join("img");
    checkpoint(p.pid, &img, &DumpOptions::default()).expect("checkpoint");
    p.reap();
    let bytes = fs::read(img.join("image.zckpt")).unwrap();
    let copy = |name: &str, dmode: u32, fmode: u32| {
        let d = dir.join(name);
        mkdir(&d, dmode);
        fs::write(d.join("image.zckpt"), &bytes).unwrap();
        chmod(&d.join("image.zckpt"), fmode);
        d
    };
    let theirs = copy("theirs", 0o700, 0o600);
    chown(&theirs, 65534);
    let open = copy("open", 0o777, 0o600);
    let writable_file = copy("writable-file", 0o700, 0o666);
    let link = dir.join("link");
    symlink(&img, &link).unwrap();
    let file_link = dir.join("file-link");
    mkdir(&file_link, 0o700);
    symlink(img.join("image.zckpt"), file_link.join("image.zckpt")).unwrap();
    for (what, d, word) in [
        ("another user's directory", &theirs, "uid 65534"),
        ("a world-writable directory", &open, "writable"),
        ("a world-writable image", &writable_file, "writable"),
        ("a symbolic link to the directory", &link, "symbolic link"),
        ("a symbolic link to the image", &file_link, "symbolic link"),
    ] {
        match restore(d, &RestoreOptions::default()) {
            Err(Error::Denied(m)) => assert!(m.contains(word), "{what}: {m}"),
            Ok(r) => {
                p.track(r.pid);
                panic!("{what}: restored as {}", r.pid)
            }
            Err(e) => panic!("{what}: expected a refusal, got {e}"),
        }
    }
}

fn restore_opts(dir: &TempDir, key: Option<ImageKey>) -> RestoreOptions {
    RestoreOptions {
        stdin: Some(go_file(dir)),
        stdout: Some(dir.join("out.txt")),
        key,
        ..Default::default()
    }
}

/// Finding 11: an edited image (credentials changed, CRC fixed) restored a user's process
/// under other credentials.
#[test]
fn other_users_images_need_root_and_this_machines_signature() {
    let dir = TempDir::new("forge");
    let mut p = Running::start_as_nobody(&[&prog("memonly")]);
    p.wait_line("READY");
    let img = dir.join("img");
    let dump = DumpOptions {
        key: Some(test_key()),
        ..Default::default()
    };
    checkpoint(p.pid, &img, &dump).expect("checkpoint");
    p.reap();
    let good = fs::read(img.join("image.zckpt")).unwrap();
    let forged = forge::edit_meta(&good, |m| m.attrs.creds.uids = [1000; 4]);
    let other_key = ImageKey::from_bytes([9; 32]);
    for (what, bytes, key, word) in [
        ("no key given", &good, None, "no image key"),
        (
            "another machine's key",
            &good,
            Some(other_key),
            "not this machine's",
        ),
        (
            "forged uids",
            &forged,
            Some(test_key()),
            "not this machine's",
        ),
        (
            "forged, unsigned",
            &forge::unsign(&forged),
            Some(test_key()),
            "not signed",
        ),
        (
            "unsigned",
            &forge::unsign(&good),
            Some(test_key()),
            "not signed",
        ),
    ] {
        match restore_from_bytes(bytes, &restore_opts(&dir, key)) {
            Err(Error::Denied(m)) => assert!(m.contains(word) && m.contains("uids"), "{what}: {m}"),
            Ok(r) => {
                p.track(r.pid);
                panic!("{what}: restored with {}", ids_of(r.pid))
            }
            Err(e) => panic!("{what}: expected a refusal, got {e}"),
        }
    }
    let e = restore_from_bytes(&forged, &restore_opts(&dir, Some(test_key()))).unwrap_err();
    assert!(e.to_string().contains("1000/1000/1000/1000"), "{e}");

    // Signed here, restored by root: the saved credentials come back.
    let r = restore_from_bytes(&good, &restore_opts(&dir, Some(test_key()))).expect("restore");
    p.track(r.pid);
    assert!(
        ids_of(r.pid).starts_with("Uid: 65534 65534 65534 65534; Gid: 65534 65534 65534 65534"),
        "{}",
        ids_of(r.pid)
    );
    assert_eq!(wait_exit(r.pid, 10), 0);

    // As the caller, whatever the image says (how the zombie daemon will restore migrants).
    let opts = RestoreOptions {
        credentials: Credentials::Caller,
        ..restore_opts(&dir, None)
    };
    let r = restore_from_bytes(&forge::unsign(&forged), &opts).expect("restore as caller");
    p.track(r.pid);
    let caller = ids_of(std::process::id() as i32);
    assert_eq!(ids_of(r.pid), caller);
    assert_eq!(wait_exit(r.pid, 10), 0);
    assert!(
        fs::read_to_string(dir.join("out.txt"))
            .unwrap()
            .contains("PASS")
    );
}

/// Finding 13: restoring while the original still ran silently started a second copy.
#[test]
fn restoring_while_the_original_runs_is_refused_unless_forced() {
    use std::io::Write;
    let dir = TempDir::new("origin");
    let mut p = Running::start(&[&prog("memonly")]);
    p.wait_line("READY");
    let img = dir.join("img");
    checkpoint(p.pid, &img, &leave_running()).expect("checkpoint");
    match restore(&img, &restore_opts(&dir, None)) {
        Err(e @ Error::OriginalRunning(pid)) => {
            assert_eq!(pid, p.pid);
            assert!(e.to_string().contains(&p.pid.to_string()), "{e}");
        }
        Ok(r) => {
            p.track(r.pid);
            panic!("a second copy was started as {}", r.pid)
        }
        Err(e) => panic!("expected OriginalRunning, got {e}"),
    }
    let forced = RestoreOptions {
        force: true,
        ..restore_opts(&dir, None)
    };
    let r = restore(&img, &forced).expect("forced restore");
    p.track(r.pid);
    assert_ne!(r.pid, p.pid);
    assert!(
        r.notes.iter().any(|n| n.contains("in use")),
        "{:?}",
        r.notes
    );
    assert_eq!(wait_exit(r.pid, 10), 0);

    p.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    assert_eq!(p.wait_line("PASS"), "PASS");
    p.reap();
    let r = restore(&img, &restore_opts(&dir, None)).expect("restore once it ended");
    p.track(r.pid);
    assert_eq!(r.pid, p.pid);
    assert_eq!(wait_exit(r.pid, 10), 0);
}
