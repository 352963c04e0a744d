//! Descriptor-level system calls for trees and pods: comparing open files across processes
//! (`kcmp`), taking descriptors out of a process (`pidfd_getfd`), passing them over unix
//! sockets, opening inside another root (`openat2`), peeking into pipes (`tee`), and the
//! terminal ioctls.

use super::cvt;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const KCMP_FILE: i32 = 0;
/// `kcmp` type: the address space.
pub const KCMP_VM: i32 = 1;
/// `kcmp` type: the descriptor table.
pub const KCMP_FILES: i32 = 2;
/// `kcmp` type: root, cwd and umask.
pub const KCMP_FS: i32 = 3;
/// `kcmp` type: the signal handler table.
pub const KCMP_SIGHAND: i32 = 4;
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;

fn owned(fd: i64) -> io::Result<OwnedFd> {
    let fd = cvt(fd)? as RawFd;
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Do descriptor `fd1` of `pid1` and `fd2` of `pid2` refer to one open file description?
pub fn same_file(pid1: i32, fd1: i32, pid2: i32, fd2: i32) -> io::Result<bool> {
    // SAFETY: kcmp takes integers only.
    let r = cvt(unsafe { libc::syscall(libc::SYS_kcmp, pid1, pid2, KCMP_FILE, fd1, fd2) })?;
    Ok(r == 0)
}

/// Do `pid1` and `pid2` share the kernel object of `kind` (one of the `KCMP_*` types)?
pub fn shares(pid1: i32, pid2: i32, kind: i32) -> io::Result<bool> {
    // SAFETY: kcmp takes integers only.
    let r = cvt(unsafe { libc::syscall(libc::SYS_kcmp, pid1, pid2, kind, 0, 0) })?;
    Ok(r == 0)
}

/// A pidfd for process `pid`.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: integers only.
    owned(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })
}

/// A copy of descriptor `fd` of the process behind `pidfd` (same open file description).
pub fn pidfd_getfd(pidfd: &OwnedFd, fd: i32) -> io::Result<OwnedFd> {
    // SAFETY: integers only.
    owned(unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) })
}

/// Open `path` beneath the directory `root` as if it were `/` (symlinks and `..` cannot
/// leave it; no magic links), with `flags` (close-on-exec added).
pub fn open_in_root(root: &OwnedFd, path: &str, flags: i32) -> io::Result<OwnedFd> {
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    let p = CString::new(path).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `p` and `how` live across the call; size matches the struct.
    owned(unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            p.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    })
}

/// Open `path` (no special resolution) with `flags` | `O_CLOEXEC`.
pub fn open(path: &str, flags: i32) -> io::Result<OwnedFd> {
    let p = CString::new(path).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `p` is a valid C string for the call.
    owned(unsafe { libc::open(p.as_ptr(), flags | libc::O_CLOEXEC) } as i64)
}

/// A new pipe: (read end, write end), close-on-exec, with `flags` (e.g. `O_NONBLOCK`).
pub fn pipe(flags: i32) -> io::Result<(OwnedFd, OwnedFd)> {
    let mut p = [0i32; 2];
    // SAFETY: p is a valid array of two ints.
    cvt(unsafe { libc::pipe2(p.as_mut_ptr(), flags | libc::O_CLOEXEC) } as i64)?;
    // SAFETY: both descriptors were just created for us.
    Ok(unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) })
}

/// Copy up to `len` bytes buffered in pipe `src` into pipe `dst` without consuming them.
pub fn tee(src: &OwnedFd, dst: &OwnedFd, len: usize) -> io::Result<usize> {
    // SAFETY: integers only.
    let r = unsafe {
        libc::tee(
            src.as_raw_fd(),
            dst.as_raw_fd(),
            len,
            libc::SPLICE_F_NONBLOCK,
        )
    };
    cvt(r as i64).map(|n| n as usize)
}

/// `fcntl(fd, cmd, arg)` with an integer argument.
pub fn fcntl(fd: &OwnedFd, cmd: i32, arg: i32) -> io::Result<i32> {
    // SAFETY: integer argument only.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), cmd, arg) } as i64).map(|r| r as i32)
}

/// `fchmod(fd, mode)`.
pub fn fchmod(fd: &OwnedFd, mode: u32) -> io::Result<()> {
    // SAFETY: integers only.
    cvt(unsafe { libc::fchmod(fd.as_raw_fd(), mode) } as i64).map(drop)
}

/// `lseek(fd, pos, SEEK_SET)`.
pub fn seek(fd: &OwnedFd, pos: u64) -> io::Result<()> {
    // SAFETY: integers only.
    cvt(unsafe { libc::lseek(fd.as_raw_fd(), pos as libc::off_t, libc::SEEK_SET) }).map(drop)
}

/// An ioctl whose argument is a pointer to one `int` (read or written by the kernel).
pub fn ioctl_int(fd: RawFd, req: u64, value: i32) -> io::Result<i32> {
    let mut v = value;
    // SAFETY: `v` is a valid int for the kernel to read or write during the call.
    cvt(unsafe { libc::ioctl(fd, req as _, &mut v as *mut i32) } as i64)?;
    Ok(v)
}

/// The terminal attributes of `fd` (a pty master or slave).
pub fn get_termios(fd: RawFd) -> io::Result<libc::termios> {
    // SAFETY: termios is plain data; tcgetattr fills it.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `t` is a valid out pointer.
    cvt(unsafe { libc::tcgetattr(fd, &mut t) } as i64)?;
    Ok(t)
}

/// Set the terminal attributes of `fd` at once.
pub fn set_termios(fd: RawFd, t: &libc::termios) -> io::Result<()> {
    // SAFETY: `t` is a valid pointer for the call.
    cvt(unsafe { libc::tcsetattr(fd, libc::TCSANOW, t) } as i64).map(drop)
}

/// The window size of the terminal `fd`: rows, columns, x pixels, y pixels.
pub fn get_winsize(fd: RawFd) -> io::Result<[u16; 4]> {
    // SAFETY: winsize is plain data, filled by the kernel.
    let mut w: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: `w` is a valid out pointer.
    cvt(unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut w) } as i64)?;
    Ok([w.ws_row, w.ws_col, w.ws_xpixel, w.ws_ypixel])
}

/// Set the window size of the terminal `fd`.
pub fn set_winsize(fd: RawFd, s: [u16; 4]) -> io::Result<()> {
    let w = libc::winsize {
        ws_row: s[0],
        ws_col: s[1],
        ws_xpixel: s[2],
        ws_ypixel: s[3],
    };
    // SAFETY: `w` is a valid pointer for the call.
    cvt(unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &w) } as i64).map(drop)
}

/// A pair of connected unix sequenced-packet sockets, close-on-exec.
pub fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut p = [0i32; 2];
    // SAFETY: p is a valid array of two ints.
    cvt(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            p.as_mut_ptr(),
        )
    } as i64)?;
    // SAFETY: both descriptors were just created for us.
    Ok(unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) })
}

/// Send `fd` over the unix socket `sock` (SCM_RIGHTS) with one byte of data.
pub fn send_fd(sock: RawFd, fd: RawFd) -> io::Result<()> {
    let mut byte = 0u8;
    let mut iov = libc::iovec {
        iov_base: (&mut byte as *mut u8).cast(),
        iov_len: 1,
    };
    let mut control = [0u64; 4];
    // SAFETY: msghdr is plain data; every pointer set below refers to locals that outlive the
    // sendmsg call, and CMSG_* compute offsets inside `control` (32 bytes ≥ CMSG_SPACE(4)).
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(4) as usize;
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(4) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<i32>(), fd);
        cvt(libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) as i64).map(drop)
    }
}

/// Receive one descriptor sent with [`send_fd`] (or by `zos-pod-init`), waiting up to
/// `timeout_ms`; `None` if the peer closed without sending one.
pub fn recv_fd(sock: RawFd, timeout_ms: i32) -> io::Result<Option<OwnedFd>> {
    let mut pfd = libc::pollfd {
        fd: sock,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    if cvt(unsafe { libc::poll(&mut pfd, 1, timeout_ms) } as i64)? == 0 {
        return Err(io::Error::from_raw_os_error(libc::ETIMEDOUT));
    }
    let mut byte = 0u8;
    let mut iov = libc::iovec {
        iov_base: (&mut byte as *mut u8).cast(),
        iov_len: 1,
    };
    let mut control = [0u64; 4];
    // SAFETY: as in send_fd; the kernel writes at most msg_controllen bytes into `control`,
    // and CMSG_* only walk inside it.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control);
        let n = cvt(libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) as i64)?;
        let c = libc::CMSG_FIRSTHDR(&msg);
        if n == 0 || c.is_null() || (*c).cmsg_type != libc::SCM_RIGHTS {
            return Ok(None);
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<i32>());
        Ok(Some(OwnedFd::from_raw_fd(fd)))
    }
}
