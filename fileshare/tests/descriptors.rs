//! The master's descriptors (issue 9, item 5): everything the server holds
//! for one zombie fits under [`MAX_DESCRIPTORS`]; files opened beyond it
//! fail with `EMFILE` on the zombie, the master goes on, and a tree with
//! more files than the cap can still be walked and read.
//!
//! The server runs in this test process, so the master's descriptors are
//! counted as this process's descriptors that point into the master's
//! directory (the zombie's own ones point into the mount).

mod common;

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Setup, Share};
use zos_fileshare::server::MAX_DESCRIPTORS;

/// Descriptors a call may hold for a moment beyond the cap (see the
/// server's documentation): a few per call in flight.
const IN_FLIGHT_SLACK: usize = 3 * zos_fileshare::server::MAX_IN_FLIGHT;

/// This process's descriptors that point at or below `dir`.
fn descriptors_into(dir: &Path) -> usize {
    fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.starts_with(dir))
        .count()
}

fn raise_own_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid out/in pointer.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    assert!(
        lim.rlim_cur >= 12_000,
        "this test opens 10,000 files on the zombie's side: RLIMIT_NOFILE {} is too low",
        lim.rlim_cur
    );
}

const MANY: usize = 10_000;

fn many(i: usize) -> String {
    format!("rw/many/f{i:05}")
}

#[test]
fn files_opened_beyond_the_cap_fail_with_emfile_and_the_master_goes_on() {
    raise_own_fd_limit();
    let s = Share::start(Setup::rw(), |m| {
        fs::create_dir(m.join("rw/many")).unwrap();
        for i in 0..MANY {
            fs::write(m.join(many(i)), i.to_string()).unwrap();
        }
    });
    let mut held = Vec::new();
    let mut refused = None;
    for i in 0..MANY {
        match File::open(s.at(&many(i))) {
            Ok(f) => held.push(f),
            Err(e) => {
                refused = Some((i, e.raw_os_error()));
                break;
            }
        }
    }
    let (at, errno) = refused.expect("10,000 files opened: no cap");
    assert_eq!(errno, Some(libc::EMFILE), "refused at file {at}");
    assert!(
        at + 16 >= MAX_DESCRIPTORS && at <= MAX_DESCRIPTORS,
        "the zombie got {at} files open, the cap is {MAX_DESCRIPTORS}"
    );
    let master_fds = descriptors_into(&s.master);
    assert!(
        master_fds <= MAX_DESCRIPTORS + IN_FLIGHT_SLACK,
        "the master holds {master_fds} descriptors for one zombie"
    );
    // More attempts are refused too, and cost the master nothing. A node
    // descriptor a lookup cached is closed to make room for an open, so one
    // of them may slip into a slot a lookup freed; never more than a
    // lookup's worth, and the master stays within its cap.
    let mut slipped = Vec::new();
    for i in at..at + 100 {
        match File::open(s.at(&many(i))) {
            Ok(f) => slipped.push(f),
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "file {i}"),
        }
    }
    assert!(
        slipped.len() <= 2,
        "{} of 100 opens beyond the cap succeeded",
        slipped.len()
    );
    assert!(descriptors_into(&s.master) <= MAX_DESCRIPTORS + IN_FLIGHT_SLACK);
    drop(slipped);
    // What needs no descriptor still works for this zombie.
    assert_eq!(fs::metadata(s.at(&many(MANY - 1))).unwrap().len(), 4);
    // The files it holds still read.
    let mut text = String::new();
    held[17].read_to_string(&mut text).unwrap();
    assert_eq!(text, "17");
    // Another zombie of the same master is served as usual meanwhile.
    let other = Share::start(Setup::rw(), |m| {
        fs::write(m.join("rw/f"), b"other").unwrap()
    });
    assert_eq!(fs::read(other.at("rw/f")).unwrap(), b"other");
    drop(other);

    // Once the zombie closes them, opening works again (the kernel's
    // releases reach the master shortly after the closes).
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(20);
    let reopened: Vec<File> = loop {
        let tries: Vec<_> = (0..MAX_DESCRIPTORS / 2)
            .map(|i| File::open(s.at(&many(i))))
            .collect();
        if tries.iter().all(Result::is_ok) {
            break tries.into_iter().map(Result::unwrap).collect();
        }
        assert!(
            Instant::now() < deadline,
            "opening never worked again after the zombie closed its files"
        );
        drop(tries);
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(reopened.len(), MAX_DESCRIPTORS / 2);
}

/// Directories × files per directory: more files than the cap.
const DIRS: usize = 60;
const PER_DIR: usize = 100;

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if fs::symlink_metadata(&p).unwrap().is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn a_tree_with_more_files_than_the_cap_is_walked_and_read_twice() {
    const { assert!(DIRS * PER_DIR > MAX_DESCRIPTORS) };
    let s = Share::start(Setup::rw(), |m| {
        for d in 0..DIRS {
            let dir = m.join(format!("rw/tree/d{d:02}"));
            fs::create_dir_all(&dir).unwrap();
            for f in 0..PER_DIR {
                fs::write(dir.join(format!("f{f:03}")), format!("{d}/{f}")).unwrap();
            }
        }
    });
    let mut most = 0;
    for round in 0..2 {
        let mut files = Vec::new();
        walk(&s.at("rw/tree"), &mut files);
        assert_eq!(files.len(), DIRS * PER_DIR, "round {round}");
        for (n, path) in files.iter().enumerate() {
            let (d, f) = (n / PER_DIR, n % PER_DIR);
            assert_eq!(
                fs::read_to_string(path).unwrap(),
                format!("{d}/{f}"),
                "round {round}: {}",
                path.display()
            );
            if n % 250 == 0 {
                most = most.max(descriptors_into(&s.master));
            }
        }
        // A file seen long ago (its node's descriptor long since given
        // back) still answers by its old node: stat and reopen.
        let first = s.at("rw/tree/d00/f000");
        assert_eq!(fs::metadata(&first).unwrap().len(), 3);
        assert_eq!(fs::read_to_string(&first).unwrap(), "0/0");
    }
    assert!(
        most <= MAX_DESCRIPTORS + IN_FLIGHT_SLACK,
        "the master held up to {most} descriptors while the zombie walked {} files",
        DIRS * PER_DIR
    );
    // The walk still sees changes made on the master meanwhile.
    fs::write(s.on_master("rw/tree/d00/new"), b"new").unwrap();
    let seen = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        fs::read(s.at("rw/tree/d00/new")).is_ok_and(|b| b == b"new")
    });
    assert!(seen, "a file the master added never showed");
}

#[test]
fn directory_listings_held_open_are_capped_and_the_master_goes_on() {
    use zos_fileshare::server::MAX_LISTED_ENTRIES;
    const ENTRIES: usize = 20_000;
    let s = Share::start(Setup::rw(), |m| {
        fs::create_dir(m.join("rw/big")).unwrap();
        for i in 0..ENTRIES {
            File::create(m.join(format!("rw/big/{i:05}"))).unwrap();
        }
    });
    // Each open directory holds its listing on the master until closed.
    let fits = MAX_LISTED_ENTRIES / (ENTRIES + 2);
    let mut held = Vec::new();
    let refused = loop {
        match File::open(s.at("rw/big")) {
            Ok(dir) => held.push(dir),
            Err(e) => break e.raw_os_error(),
        }
        assert!(
            held.len() <= fits,
            "{} listings of {ENTRIES} held",
            held.len()
        );
    };
    assert_eq!(refused, Some(libc::ENOMEM));
    assert_eq!(held.len(), fits);
    // Small listings and everything else go on.
    assert_eq!(fs::read_dir(s.at("rw")).unwrap().count(), 1);
    fs::write(s.at("rw/f"), b"x").unwrap();
    drop(held);
    let again = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        fs::read_dir(s.at("rw/big")).is_ok_and(|d| d.count() == ENTRIES)
    });
    assert!(again, "the big directory never listed again");
}
