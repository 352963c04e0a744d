//! Nodes the master moves away (issue 9, item 10): a directory the zombie
//! holds stops answering once the master moves it out of the export or into
//! a never-path (within [`RECHECK_AFTER`]), and so do files in it, whether
//! the zombie had looked them up, opened them, or names them afresh.

mod common;

use std::ffi::CString;
use std::fs::{self, File};
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use common::{Setup, Share};
use zos_fileshare::server::RECHECK_AFTER;

/// `openat(dir, name, flags, 0644)`: the errno on failure.
fn open_at(dir: &File, name: &str, flags: i32) -> Result<OwnedFd, i32> {
    let c = CString::new(name).unwrap();
    // SAFETY: a valid directory descriptor and NUL-terminated name.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags | libc::O_CLOEXEC, 0o644) };
    if fd < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap())
    } else {
        // SAFETY: a descriptor just returned to us and owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

/// `statx(dir, name)` asking the master (`AT_STATX_FORCE_SYNC`: the
/// zombie's kernel may otherwise answer from its 1 s attribute cache): the
/// errno on failure.
fn stat_at(dir: &File, name: &str) -> Result<(), i32> {
    let c = CString::new(name).unwrap();
    // SAFETY: statx is plain data; all zeros is a valid value.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: valid descriptor, name and out-pointer.
    let r = unsafe {
        libc::statx(
            dir.as_raw_fd(),
            c.as_ptr(),
            libc::AT_STATX_FORCE_SYNC,
            libc::STATX_BASIC_STATS,
            &mut st,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap())
    }
}

/// Lists a held directory afresh through `openat(dir, ".")`.
fn list(dir: &File) -> Result<Vec<String>, i32> {
    let fd = open_at(dir, ".", libc::O_RDONLY | libc::O_DIRECTORY)?;
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    match fs::read_dir(&path) {
        Ok(entries) => entries
            .map(|e| {
                e.map(|e| e.file_name().into_string().unwrap())
                    .map_err(|e| e.raw_os_error().unwrap_or(-1))
            })
            .collect(),
        Err(e) => Err(e.raw_os_error().unwrap_or(-1)),
    }
}

/// The zombie's view of a held directory after the master moved it to
/// `moved_to` (a path on the master): nothing in it can be read, listed or
/// created.
fn assert_cut_off(dir: &File, old_file: &mut File, moved_to: &Path, what: &str) {
    let r = open_at(dir, "a", libc::O_RDONLY);
    assert!(r.is_err(), "{what}: a file in it opened again");
    assert!(stat_at(dir, "a").is_err(), "{what}: a file in it stat'ed");
    let r = open_at(dir, "new", libc::O_WRONLY | libc::O_CREAT);
    assert!(r.is_err(), "{what}: a file was created in it");
    assert!(
        !moved_to.join("new").exists(),
        "{what}: new file on the master"
    );
    let r = open_at(dir, "sub", libc::O_RDONLY | libc::O_DIRECTORY);
    assert!(r.is_err(), "{what}: a directory in it opened");
    let listing = list(dir);
    assert!(listing.is_err(), "{what}: it was listed again: {listing:?}");
    // A file opened before the move (nothing of it read yet) no longer
    // reads: open handles are cut off too.
    let mut text = String::new();
    let r = old_file.read_to_string(&mut text);
    assert!(r.is_err(), "{what}: an open file read {text:?}");
    assert_eq!(
        fs::read_to_string(moved_to.join("a")).unwrap(),
        "master data",
        "{what}: the master's file is untouched"
    );
}

fn prepare(m: &Path) {
    fs::create_dir_all(m.join("outside")).unwrap();
    fs::create_dir_all(m.join("rw/private")).unwrap();
    for d in ["rw/away", "rw/hidden"] {
        fs::create_dir_all(m.join(d).join("sub")).unwrap();
        fs::write(m.join(d).join("a"), "master data").unwrap();
    }
}

#[test]
fn a_held_directory_moved_out_of_the_export_or_into_a_never_path_is_cut_off() {
    let setup = Setup {
        exports: vec![("rw", false)],
        never: vec!["rw/private"],
    };
    let s = Share::start(setup, prepare);
    for (what, dir, to) in [
        ("moved out of the export", "rw/away", "outside/away"),
        ("moved into a never-path", "rw/hidden", "rw/private/hidden"),
    ] {
        let held = File::open(s.at(dir)).unwrap();
        // The zombie knows the file (a cached name) and has it open.
        stat_at(&held, "a").unwrap();
        let mut opened = File::from(open_at(&held, "a", libc::O_RDONLY).unwrap());
        assert!(list(&held).unwrap().contains(&"a".to_string()));

        fs::rename(s.on_master(dir), s.on_master(to)).unwrap();
        // The server looks where its nodes are at most this long ago.
        std::thread::sleep(2 * RECHECK_AFTER);
        assert_cut_off(&held, &mut opened, &s.on_master(to), what);
        // Its old place is empty for the zombie.
        assert!(!s.at(dir).exists(), "{what}: still at its old path");
    }
    // A directory moved within the export is served where it now is.
    fs::create_dir(s.on_master("rw/stays")).unwrap();
    fs::write(s.on_master("rw/stays/a"), "still here").unwrap();
    let held = File::open(s.at("rw/stays")).unwrap();
    stat_at(&held, "a").unwrap();
    fs::create_dir(s.on_master("rw/inner")).unwrap();
    fs::rename(s.on_master("rw/stays"), s.on_master("rw/inner/stays")).unwrap();
    let mut text = String::new();
    File::from(open_at(&held, "a", libc::O_RDONLY).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, "still here");
    drop(open_at(&held, "made", libc::O_WRONLY | libc::O_CREAT).unwrap());
    assert!(s.on_master("rw/inner/stays/made").exists());
}

#[test]
fn an_open_file_renamed_on_the_master_keeps_answering_after_its_node_was_evicted() {
    let s = Share::start(Setup::rw(), |m| {
        fs::write(m.join("rw/doc"), "first\n").unwrap();
        fs::create_dir(m.join("rw/many")).unwrap();
        for i in 0..2 * zos_fileshare::server::NODE_FDS {
            fs::write(m.join(format!("rw/many/{i}")), "").unwrap();
        }
    });
    let mut doc = fs::OpenOptions::new()
        .append(true)
        .read(true)
        .open(s.at("rw/doc"))
        .unwrap();
    fs::create_dir(s.on_master("rw/elsewhere")).unwrap();
    fs::rename(s.on_master("rw/doc"), s.on_master("rw/elsewhere/doc")).unwrap();
    // The zombie uses many other nodes: the master gives back the
    // descriptor of the open file's node.
    for i in 0..2 * zos_fileshare::server::NODE_FDS {
        fs::metadata(s.at(&format!("rw/many/{i}"))).unwrap();
    }
    let c = CString::new("").unwrap();
    // SAFETY: statx is plain data; all zeros is a valid value.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: an open descriptor, an empty path with AT_EMPTY_PATH, and an
    // out-pointer.
    let r = unsafe {
        libc::statx(
            doc.as_raw_fd(),
            c.as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_STATX_FORCE_SYNC,
            libc::STATX_BASIC_STATS,
            &mut st,
        )
    };
    assert_eq!(r, 0, "fstat: {}", std::io::Error::last_os_error());
    assert_eq!(st.stx_size, 6);
    std::io::Write::write_all(&mut doc, b"second\n").unwrap();
    assert_eq!(
        fs::read_to_string(s.on_master("rw/elsewhere/doc")).unwrap(),
        "first\nsecond\n"
    );
}
