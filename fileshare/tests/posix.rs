//! POSIX behaviour inside a real mount: ordinary file-system calls on the
//! zombie's side, checked against the master's directory.

mod common;

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::Path;

use common::{Setup, Share, errno};

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2654435761) ^ seed) as u8)
        .collect()
}

#[test]
fn write_then_read_back_on_both_sides() {
    let s = Share::start(Setup::rw(), |m| {
        fs::write(m.join("rw/old"), b"from the master").unwrap()
    });
    assert_eq!(fs::read(s.at("rw/old")).unwrap(), b"from the master");
    let data = pattern(3 << 20, 1);
    fs::write(s.at("rw/new"), &data).unwrap();
    assert!(
        fs::read(s.on_master("rw/new")).unwrap() == data,
        "master has the bytes"
    );
    assert!(
        fs::read(s.at("rw/new")).unwrap() == data,
        "read back through the mount"
    );
    // Writes at offsets, in pieces, overwrite in place.
    let f = OpenOptions::new().write(true).open(s.at("rw/new")).unwrap();
    f.write_all_at(b"XYZ", 1000).unwrap();
    f.sync_all().unwrap();
    assert_eq!(
        &fs::read(s.on_master("rw/new")).unwrap()[1000..1003],
        b"XYZ"
    );
}

#[test]
fn create_mkdir_rename_unlink_rmdir() {
    let s = Share::start(Setup::rw(), |_| {});
    fs::create_dir(s.at("rw/d")).unwrap();
    File::create(s.at("rw/d/f")).unwrap();
    assert!(s.on_master("rw/d/f").is_file());
    assert_eq!(errno(fs::create_dir(s.at("rw/d"))), libc::EEXIST);
    assert_eq!(
        errno(
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(s.at("rw/d/f"))
        ),
        libc::EEXIST
    );
    fs::rename(s.at("rw/d/f"), s.at("rw/g")).unwrap();
    assert!(!s.on_master("rw/d/f").exists() && s.on_master("rw/g").is_file());
    // Renaming a directory moves what is below it.
    fs::create_dir(s.at("rw/d/sub")).unwrap();
    fs::write(s.at("rw/d/sub/x"), b"x").unwrap();
    fs::rename(s.at("rw/d"), s.at("rw/e")).unwrap();
    assert_eq!(fs::read(s.at("rw/e/sub/x")).unwrap(), b"x");
    fs::write(s.at("rw/e/sub/y"), b"y").unwrap();
    assert_eq!(fs::read(s.on_master("rw/e/sub/y")).unwrap(), b"y");
    assert_eq!(errno(fs::remove_dir(s.at("rw/e"))), libc::ENOTEMPTY);
    fs::remove_file(s.at("rw/e/sub/x")).unwrap();
    fs::remove_file(s.at("rw/e/sub/y")).unwrap();
    fs::remove_dir(s.at("rw/e/sub")).unwrap();
    fs::remove_dir(s.at("rw/e")).unwrap();
    fs::remove_file(s.at("rw/g")).unwrap();
    assert_eq!(fs::read_dir(s.on_master("rw")).unwrap().count(), 0);
    assert_eq!(errno(fs::remove_file(s.at("rw/g"))), libc::ENOENT);
}

fn renameat2(from: &Path, to: &Path, flags: u32) -> std::io::Result<()> {
    let (a, b) = (cpath(from), cpath(to));
    // SAFETY: two valid NUL-terminated paths; renameat2 retains nothing.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            flags,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[test]
fn rename_noreplace_and_exchange() {
    let s = Share::start(Setup::rw(), |m| {
        fs::write(m.join("rw/a"), b"A").unwrap();
        fs::write(m.join("rw/b"), b"B").unwrap();
    });
    assert_eq!(
        errno(renameat2(
            &s.at("rw/a"),
            &s.at("rw/b"),
            libc::RENAME_NOREPLACE
        )),
        libc::EEXIST
    );
    renameat2(&s.at("rw/a"), &s.at("rw/b"), libc::RENAME_EXCHANGE).unwrap();
    assert_eq!(fs::read(s.on_master("rw/a")).unwrap(), b"B");
    assert_eq!(fs::read(s.at("rw/b")).unwrap(), b"A");
    renameat2(&s.at("rw/a"), &s.at("rw/c"), libc::RENAME_NOREPLACE).unwrap();
    assert_eq!(fs::read(s.on_master("rw/c")).unwrap(), b"B");
}

#[test]
fn symlinks_and_hard_links() {
    let s = Share::start(Setup::rw(), |m| {
        fs::write(m.join("rw/t"), b"target").unwrap()
    });
    std::os::unix::fs::symlink("t", s.at("rw/l")).unwrap();
    assert_eq!(fs::read_link(s.on_master("rw/l")).unwrap(), Path::new("t"));
    assert_eq!(fs::read_link(s.at("rw/l")).unwrap(), Path::new("t"));
    assert_eq!(fs::read(s.at("rw/l")).unwrap(), b"target");
    assert!(
        fs::symlink_metadata(s.at("rw/l"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    fs::hard_link(s.at("rw/t"), s.at("rw/h")).unwrap();
    let (a, b) = (
        fs::metadata(s.at("rw/t")).unwrap(),
        fs::metadata(s.at("rw/h")).unwrap(),
    );
    assert_eq!((a.nlink(), a.ino()), (2, b.ino()));
    assert_eq!(fs::metadata(s.on_master("rw/h")).unwrap().nlink(), 2);
    fs::write(s.at("rw/h"), b"changed").unwrap();
    assert_eq!(fs::read(s.on_master("rw/t")).unwrap(), b"changed");
    fs::remove_file(s.at("rw/t")).unwrap();
    assert_eq!(fs::metadata(s.at("rw/h")).unwrap().nlink(), 1);
}

#[test]
fn chmod_chown_truncate_utimens() {
    let s = Share::start(Setup::rw(), |m| {
        fs::write(m.join("rw/f"), b"0123456789").unwrap()
    });
    let f = s.at("rw/f");
    fs::set_permissions(&f, fs::Permissions::from_mode(0o640)).unwrap();
    assert_eq!(
        fs::metadata(s.on_master("rw/f")).unwrap().mode() & 0o7777,
        0o640
    );
    assert_eq!(fs::metadata(&f).unwrap().mode() & 0o7777, 0o640);
    // Owners stay (owners.rs); naming the current ones is fine.
    std::os::unix::fs::lchown(&f, Some(0), Some(0)).unwrap();
    // truncate by path and ftruncate by descriptor.
    OpenOptions::new()
        .write(true)
        .open(&f)
        .unwrap()
        .set_len(4)
        .unwrap();
    assert_eq!(fs::read(s.on_master("rw/f")).unwrap(), b"0123");
    let c = cpath(&f);
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::truncate(c.as_ptr(), 2) }, 0);
    assert_eq!(fs::read(s.on_master("rw/f")).unwrap(), b"01");
    assert_eq!(fs::metadata(&f).unwrap().len(), 2);
    // utimensat.
    let file = File::open(&f).unwrap();
    let times = fs::FileTimes::new()
        .set_accessed(std::time::UNIX_EPOCH + std::time::Duration::new(1_000_000, 5))
        .set_modified(std::time::UNIX_EPOCH + std::time::Duration::new(2_000_000, 7));
    file.set_times(times).unwrap();
    let m = fs::metadata(s.on_master("rw/f")).unwrap();
    assert_eq!(
        (m.atime(), m.atime_nsec(), m.mtime(), m.mtime_nsec()),
        (1_000_000, 5, 2_000_000, 7)
    );
    let z = fs::metadata(&f).unwrap();
    assert_eq!((z.mtime(), z.mtime_nsec()), (2_000_000, 7));
    // A symlink's own times (AT_SYMLINK_NOFOLLOW) leave the target alone.
    std::os::unix::fs::symlink("f", s.at("rw/l")).unwrap();
    let l = cpath(&s.at("rw/l"));
    let ts = [
        libc::timespec {
            tv_sec: 42,
            tv_nsec: 0,
        },
        libc::timespec {
            tv_sec: 43,
            tv_nsec: 0,
        },
    ];
    // SAFETY: valid path, two timespecs.
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            l.as_ptr(),
            ts.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(r, 0);
    assert_eq!(
        fs::symlink_metadata(s.on_master("rw/l")).unwrap().mtime(),
        43
    );
    assert_eq!(
        fs::metadata(s.on_master("rw/f")).unwrap().mtime(),
        2_000_000
    );
}

#[test]
fn fsync_statfs_and_append() {
    let s = Share::start(Setup::rw(), |m| {
        fs::write(m.join("rw/log"), b"one\n").unwrap()
    });
    let mut f = OpenOptions::new()
        .append(true)
        .open(s.at("rw/log"))
        .unwrap();
    f.write_all(b"two\n").unwrap();
    // The master appends too; O_APPEND writes land at the true end.
    OpenOptions::new()
        .append(true)
        .open(s.on_master("rw/log"))
        .unwrap()
        .write_all(b"three\n")
        .unwrap();
    f.write_all(b"four\n").unwrap();
    f.sync_all().unwrap();
    f.sync_data().unwrap();
    assert_eq!(
        fs::read(s.on_master("rw/log")).unwrap(),
        b"one\ntwo\nthree\nfour\n"
    );
    let d = File::open(s.at("rw")).unwrap();
    d.sync_all().unwrap();
    // SAFETY: statvfs is plain data; all zeros is a valid value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let c = cpath(&s.at("rw"));
    // SAFETY: valid path and out-pointer.
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut st) }, 0);
    // SAFETY: as above.
    let mut local: libc::statvfs = unsafe { std::mem::zeroed() };
    let cm = cpath(&s.on_master("rw"));
    // SAFETY: as above.
    assert_eq!(unsafe { libc::statvfs(cm.as_ptr(), &mut local) }, 0);
    assert_eq!(st.f_blocks * st.f_frsize, local.f_blocks * local.f_frsize);
    assert!(st.f_bsize > 0);
}

#[test]
fn readdir_lists_a_large_directory() {
    const N: usize = 3000;
    let s = Share::start(Setup::rw(), |m| {
        for i in 0..N {
            fs::write(m.join(format!("rw/file-with-a-longish-name-{i:05}")), b"").unwrap();
        }
    });
    let mut names: Vec<String> = fs::read_dir(s.at("rw"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let want: Vec<String> = (0..N)
        .map(|i| format!("file-with-a-longish-name-{i:05}"))
        .collect();
    assert_eq!(names, want);
    // The root lists the exports.
    let root: Vec<String> = fs::read_dir(&s.mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(root, vec!["rw"]);
}

#[test]
fn mmap_read_and_shared_write() {
    let s = Share::start(Setup::rw(), |m| {
        fs::write(m.join("rw/map"), pattern(1 << 20, 9)).unwrap()
    });
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(s.at("rw/map"))
        .unwrap();
    let len = 1 << 20;
    // SAFETY: a fresh shared mapping of an open file of `len` bytes, unmapped
    // below; nothing else maps it in this test.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED);
    // SAFETY: the mapping is `len` bytes long and lives until munmap.
    let bytes = unsafe { std::slice::from_raw_parts_mut(p as *mut u8, len) };
    assert!(bytes[..] == pattern(len, 9)[..], "mapped bytes match");
    bytes[4096..4096 + 11].copy_from_slice(b"via mmap!!!");
    bytes[len - 1] = 0xAB;
    // SAFETY: same mapping.
    assert_eq!(unsafe { libc::msync(p, len, libc::MS_SYNC) }, 0);
    let on_master = fs::read(s.on_master("rw/map")).unwrap();
    assert_eq!(&on_master[4096..4096 + 11], b"via mmap!!!");
    assert_eq!(on_master[len - 1], 0xAB);
    // SAFETY: unmapping what was mapped above.
    assert_eq!(unsafe { libc::munmap(p, len) }, 0);
}

#[test]
fn sparse_and_beyond_4_gib() {
    let s = Share::start(Setup::rw(), |_| {});
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(s.at("rw/big"))
        .unwrap();
    let far = (5u64 << 30) + 12345;
    f.write_all_at(b"far away", far).unwrap();
    f.write_all_at(b"start", 0).unwrap();
    let m = fs::metadata(s.on_master("rw/big")).unwrap();
    assert_eq!(m.len(), far + 8);
    assert!(
        m.blocks() * 512 < 1 << 20,
        "sparse on the master: {} blocks",
        m.blocks()
    );
    let mut buf = [0u8; 8];
    f.read_exact_at(&mut buf, far).unwrap();
    assert_eq!(&buf, b"far away");
    f.read_exact_at(&mut buf, 1 << 30).unwrap();
    assert_eq!(buf, [0; 8], "holes read as zeros");
    // SEEK_DATA / SEEK_HOLE go to the master.
    // SAFETY: lseek on an open descriptor.
    let hole = unsafe { libc::lseek(f.as_raw_fd(), 0, libc::SEEK_HOLE) };
    assert!(hole > 0 && (hole as u64) < far, "hole at {hole}");
    // SAFETY: as above.
    let data = unsafe { libc::lseek(f.as_raw_fd(), hole, libc::SEEK_DATA) };
    assert!(
        data as u64 <= far && data as u64 > (4 << 30),
        "data at {data}"
    );
    f.seek(SeekFrom::Start(far)).unwrap();
    let mut s8 = String::new();
    f.read_to_string(&mut s8).unwrap();
    assert_eq!(s8, "far away");
}

#[test]
fn mode_bits_are_checked_by_the_kernel() {
    let s = Share::start(Setup::rw(), |m| {
        fs::write(m.join("rw/private"), b"secret").unwrap();
        fs::set_permissions(m.join("rw/private"), fs::Permissions::from_mode(0o600)).unwrap();
    });
    let p = s.at("rw/private");
    // As nobody (in a child, so this test's threads keep their ids).
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "cat"])
        .arg(&p)
        .output()
        .unwrap();
    assert!(!out.status.success(), "nobody read a 0600 root file");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"));
}

#[test]
fn many_readers_and_writers_at_once() {
    let s = Share::start(Setup::rw(), |_| {});
    let threads: Vec<_> = (0..8u32)
        .map(|i| {
            let path = s.at(&format!("rw/par-{i}"));
            std::thread::spawn(move || {
                let data = pattern(5 << 20, i);
                fs::write(&path, &data).unwrap();
                for _ in 0..3 {
                    assert!(fs::read(&path).unwrap() == data, "file {i} intact");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for i in 0..8u32 {
        assert!(fs::read(s.on_master(&format!("rw/par-{i}"))).unwrap() == pattern(5 << 20, i));
    }
}

#[test]
fn unmounting_ends_the_masters_service() {
    let mut s = Share::start(Setup::rw(), |m| fs::write(m.join("rw/f"), b"x").unwrap());
    assert_eq!(fs::read(s.at("rw/f")).unwrap(), b"x");
    s.mount.take().unwrap().unmount().unwrap();
    assert!(common::mounts_under(&s.mnt).is_empty());
    let server = s.server.take().unwrap();
    let ended =
        s.rt.as_ref().unwrap().block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(10), server).await
        });
    let result = ended.expect("serve ended after the unmount").unwrap();
    assert!(result.is_ok(), "a clean end: {result:?}");
}
