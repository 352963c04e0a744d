//! Anonymous-inode descriptors the restorer creates and inspects: eventfd, timerfd,
//! signalfd and epoll, plus the clock and `kcmp` calls their kinds need.

use super::cvt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// `kcmp` type: a file registered in an epoll set.
const KCMP_EPOLL_TFD: i32 = 7;
/// `TFD_IOC_SET_TICKS` (`_IOW('T', 0, u64)`).
const TFD_IOC_SET_TICKS: u64 = 0x4008_5400;

/// Seconds and nanoseconds.
pub type Timespec = [i64; 2];

fn owned(fd: i64) -> io::Result<OwnedFd> {
    let fd = cvt(fd)? as RawFd;
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `eventfd2(0, flags | EFD_CLOEXEC)`.
pub fn eventfd(flags: i32) -> io::Result<OwnedFd> {
    // SAFETY: integers only.
    owned(unsafe { libc::eventfd(0, flags | libc::EFD_CLOEXEC) } as i64)
}

/// `timerfd_create(clock, flags | TFD_CLOEXEC)`.
pub fn timerfd_create(clock: i32, flags: i32) -> io::Result<OwnedFd> {
    // SAFETY: integers only.
    owned(unsafe { libc::timerfd_create(clock, flags | libc::TFD_CLOEXEC) } as i64)
}

fn itimerspec(value: Timespec, interval: Timespec) -> libc::itimerspec {
    let ts = |t: Timespec| libc::timespec {
        tv_sec: t[0],
        tv_nsec: t[1],
    };
    libc::itimerspec {
        it_interval: ts(interval),
        it_value: ts(value),
    }
}

/// `timerfd_settime(fd, flags, {interval, value})`.
pub fn timerfd_settime(
    fd: &OwnedFd,
    flags: i32,
    value: Timespec,
    interval: Timespec,
) -> io::Result<()> {
    let new = itimerspec(value, interval);
    // SAFETY: `new` is a valid itimerspec for the call; no old value is asked for.
    cvt(unsafe { libc::timerfd_settime(fd.as_raw_fd(), flags, &new, std::ptr::null_mut()) } as i64)
        .map(drop)
}

/// `timerfd_gettime(fd)`: (time left, interval). It also accounts the expirations of a
/// periodic timer that nobody has read yet (as a `read` would), so `ticks` in fdinfo is
/// exact afterwards.
pub fn timerfd_gettime(fd: &OwnedFd) -> io::Result<(Timespec, Timespec)> {
    let mut cur = itimerspec([0, 0], [0, 0]);
    // SAFETY: `cur` is a valid out pointer.
    cvt(unsafe { libc::timerfd_gettime(fd.as_raw_fd(), &mut cur) } as i64)?;
    Ok((
        [cur.it_value.tv_sec, cur.it_value.tv_nsec],
        [cur.it_interval.tv_sec, cur.it_interval.tv_nsec],
    ))
}

/// Set the expirations a timerfd reports on its next `read` (`TFD_IOC_SET_TICKS`).
pub fn timerfd_set_ticks(fd: &OwnedFd, ticks: u64) -> io::Result<()> {
    let t = ticks;
    // SAFETY: the ioctl reads one u64 from `t`, which lives across the call.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), TFD_IOC_SET_TICKS as _, &t as *const u64) } as i64)
        .map(drop)
}

/// `clock_gettime(clock)`.
pub fn clock_now(clock: i32) -> io::Result<Timespec> {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid out pointer.
    cvt(unsafe { libc::clock_gettime(clock, &mut t) } as i64)?;
    Ok([t.tv_sec, t.tv_nsec])
}

/// `signalfd4(-1, mask, flags | SFD_CLOEXEC)`; `mask` has bit `n - 1` for signal `n`.
pub fn signalfd(mask: u64, flags: i32) -> io::Result<OwnedFd> {
    // SAFETY: the raw call reads 8 bytes of mask from a local that outlives it.
    owned(unsafe {
        libc::syscall(
            libc::SYS_signalfd4,
            -1,
            &mask as *const u64,
            8usize,
            flags | libc::SFD_CLOEXEC,
        )
    })
}

/// `epoll_create1(EPOLL_CLOEXEC)`.
pub fn epoll_create() -> io::Result<OwnedFd> {
    // SAFETY: integers only.
    owned(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) } as i64)
}

/// Is descriptor `fd` of `pid` the file registered as target `tfd` in the epoll set `epfd`
/// of the same process (`kcmp(KCMP_EPOLL_TFD)`)?
pub fn epoll_target_is(pid: i32, fd: i32, epfd: i32, tfd: i32) -> io::Result<bool> {
    #[repr(C)]
    struct Slot {
        efd: u32,
        tfd: u32,
        toff: u32,
    }
    let slot = Slot {
        efd: epfd as u32,
        tfd: tfd as u32,
        toff: 0,
    };
    // SAFETY: kcmp reads the slot from a local that lives across the call.
    let r = cvt(unsafe {
        libc::syscall(
            libc::SYS_kcmp,
            pid,
            pid,
            KCMP_EPOLL_TFD,
            fd,
            &slot as *const Slot,
        )
    })?;
    Ok(r == 0)
}

/// `lseek(fd, off, whence)` for `SEEK_DATA` / `SEEK_HOLE`; `None` at the end (ENXIO).
pub fn seek_to(fd: &OwnedFd, off: u64, whence: i32) -> io::Result<Option<u64>> {
    // SAFETY: integers only.
    match cvt(unsafe { libc::lseek(fd.as_raw_fd(), off as libc::off_t, whence) }) {
        Ok(p) => Ok(Some(p as u64)),
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => Ok(None),
        Err(e) => Err(e),
    }
}
