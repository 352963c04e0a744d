//! Files deleted while open (finding 12): they come back under their name with " (deleted)",
//! their mode and their owner; beside it when the name was taken meanwhile; refused when their
//! directory is gone.

mod common;

use common::*;
use std::fs;
use zos_checkpoint::{DumpOptions, Error, RestoreOptions, checkpoint, restore};

/// Start the `deleted` program on `dir` as uid `owner`, checkpoint it (signed) into `img`.
fn saved(dir: &std::path::Path, owner: u32, img: &std::path::Path) -> Running {
    let mut p = Running::start(&[&prog("deleted"), &dir.to_string_lossy(), &owner.to_string()]);
    p.wait_line("READY");
    let opts = DumpOptions {
        key: Some(test_key()),
        ..Default::default()
    };
    checkpoint(p.pid, img, &opts).expect("checkpoint");
    p.reap();
    p
}

fn restore_opts(dir: &TempDir) -> RestoreOptions {
    RestoreOptions {
        stdin: Some(go_file(dir)),
        stdout: Some(dir.join("out.txt")),
        key: Some(test_key()),
        ..Default::default()
    }
}

/// The lines the program printed after it was restored.
fn report(p: &mut Running, dir: &TempDir, pid: i32) -> String {
    p.track(pid);
    assert_eq!(wait_exit(pid, 10), 0);
    fs::read_to_string(dir.join("out.txt")).unwrap()
}

#[test]
fn deleted_file_keeps_its_name_mode_and_owner() {
    let dir = TempDir::new("deleted");
    let files = dir.join("files");
    fs::create_dir(&files).unwrap();
    chown(&files, 65534);
    let mut p = saved(&files, 65534, &dir.join("img"));
    let r = restore(&dir.join("img"), &restore_opts(&dir)).expect("restore");
    let out = report(&mut p, &dir, r.pid);
    let want = format!("LINK {}/ghost.txt (deleted)\n", files.display());
    assert!(out.contains(&want), "{out}");
    assert!(out.contains("MODE 645\n"), "{out}");
    assert!(out.contains("OWNER 65534:65534\n"), "{out}");
    assert!(out.contains("CONTENT boo\n"), "{out}");
    assert!(r.notes.is_empty(), "{:?}", r.notes);
    assert_eq!(
        fs::read_dir(&files).unwrap().count(),
        0,
        "a name was left behind"
    );
}

#[test]
fn deleted_file_whose_name_was_taken_comes_back_beside_it() {
    let dir = TempDir::new("deleted-taken");
    let files = dir.join("files");
    fs::create_dir(&files).unwrap();
    let mut p = saved(&files, 0, &dir.join("img"));
    fs::write(files.join("ghost.txt"), "newer").unwrap();
    let r = restore(&dir.join("img"), &restore_opts(&dir)).expect("restore");
    let out = report(&mut p, &dir, r.pid);
    let beside = format!("LINK {}/.ghost.txt.zckpt-", files.display());
    assert!(
        out.contains(&beside) && out.contains(" (deleted)\n"),
        "{out}"
    );
    assert!(
        out.contains("MODE 645\n") && out.contains("CONTENT boo\n"),
        "{out}"
    );
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("ghost.txt") && n.contains("taken")),
        "{:?}",
        r.notes
    );
    assert_eq!(
        fs::read_to_string(files.join("ghost.txt")).unwrap(),
        "newer"
    );
    assert_eq!(
        fs::read_dir(&files).unwrap().count(),
        1,
        "a name was left behind"
    );
}

#[test]
fn deleted_file_whose_directory_is_gone_is_refused() {
    let dir = TempDir::new("deleted-gone");
    let files = dir.join("files");
    fs::create_dir(&files).unwrap();
    let _p = saved(&files, 0, &dir.join("img"));
    fs::remove_dir(&files).unwrap();
    match restore(&dir.join("img"), &restore_opts(&dir)) {
        Err(Error::Restore(m)) => {
            assert!(m.contains("ghost.txt") && m.contains("directory"), "{m}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(!files.exists());
}
