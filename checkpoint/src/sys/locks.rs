//! File locks taken by the restorer on an open file description it holds (flock and
//! open-file-description locks belong to the description, which the pod's processes share).

use super::cvt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

/// `flock(fd, LOCK_SH or LOCK_EX | LOCK_NB)`.
pub fn flock(fd: &OwnedFd, exclusive: bool) -> io::Result<()> {
    let op = if exclusive {
        libc::LOCK_EX
    } else {
        libc::LOCK_SH
    } | libc::LOCK_NB;
    // SAFETY: integers only.
    cvt(unsafe { libc::flock(fd.as_raw_fd(), op) } as i64).map(drop)
}

/// `fcntl(fd, F_OFD_SETLK)` on `start..start+len` (`len` 0: to the end of the file).
pub fn ofd_lock(fd: &OwnedFd, write: bool, start: u64, len: u64) -> io::Result<()> {
    // SAFETY: flock is plain data; zeroed is valid.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = if write { libc::F_WRLCK } else { libc::F_RDLCK } as i16;
    fl.l_whence = libc::SEEK_SET as i16;
    fl.l_start = start as libc::off_t;
    fl.l_len = len as libc::off_t;
    // SAFETY: `fl` is a valid struct flock for the call.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_SETLK, &fl) } as i64).map(drop)
}
