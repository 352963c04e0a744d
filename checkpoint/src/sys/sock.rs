//! Socket calls for the unix-socket kind: options, peeking and sending with flags, shutdown,
//! and one `sock_diag` (NETLINK_SOCK_DIAG) query that says what `/proc` cannot: a unix
//! socket's peer, bound name, state, queue length, shutdown bits and buffer sizes.

use super::cvt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const NETLINK_SOCK_DIAG: i32 = 4;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 1;
const NLMSG_ERROR: u16 = 2;
/// `UDIAG_SHOW_NAME | VFS | PEER | RQLEN | MEMINFO`.
const UDIAG_SHOW: u32 = 0x01 | 0x02 | 0x04 | 0x10 | 0x20;

fn owned(fd: i64) -> io::Result<OwnedFd> {
    let fd = cvt(fd)? as RawFd;
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `getsockopt(fd, level, opt)` of an `int` option.
pub fn get_int(fd: &OwnedFd, level: i32, opt: i32) -> io::Result<i32> {
    let mut v: i32 = 0;
    let mut len = std::mem::size_of::<i32>() as libc::socklen_t;
    // SAFETY: `v` and `len` are valid out pointers of the sizes given.
    cvt(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            (&mut v as *mut i32).cast(),
            &mut len,
        )
    } as i64)?;
    Ok(v)
}

/// `setsockopt(fd, level, opt, &value)` of an `int` option.
pub fn set_int(fd: &OwnedFd, level: i32, opt: i32, value: i32) -> io::Result<()> {
    // SAFETY: the kernel reads one int from a local that lives across the call.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    } as i64)
    .map(drop)
}

/// `recv(fd, buf, flags)`; with `MSG_TRUNC` a datagram's full length.
pub fn recv(fd: &OwnedFd, buf: &mut [u8], flags: i32) -> io::Result<usize> {
    // SAFETY: the kernel writes at most buf.len() bytes into buf.
    cvt(unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), flags) } as i64)
        .map(|n| n as usize)
}

/// `send(fd, buf, flags)`.
pub fn send(fd: &OwnedFd, buf: &[u8], flags: i32) -> io::Result<usize> {
    // SAFETY: the kernel reads buf.len() bytes from buf.
    cvt(unsafe { libc::send(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), flags) } as i64)
        .map(|n| n as usize)
}

/// `shutdown(fd, how)`.
pub fn shutdown(fd: &OwnedFd, how: i32) -> io::Result<()> {
    // SAFETY: integers only.
    cvt(unsafe { libc::shutdown(fd.as_raw_fd(), how) } as i64).map(drop)
}

/// A connected pair of unix sockets of `kind` (`SOCK_STREAM`, …), close-on-exec.
pub fn unix_pair(kind: i32) -> io::Result<(OwnedFd, OwnedFd)> {
    let mut p = [0i32; 2];
    let flags = kind | libc::SOCK_CLOEXEC;
    // SAFETY: p is a valid array of two ints.
    let r = unsafe { libc::socketpair(libc::AF_UNIX, flags, 0, p.as_mut_ptr()) };
    cvt(r as i64)?;
    // SAFETY: both descriptors were just created for us.
    Ok(unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) })
}

/// A new unconnected unix socket of `kind`, close-on-exec.
pub fn unix_socket(kind: i32) -> io::Result<OwnedFd> {
    // SAFETY: integers only.
    owned(unsafe { libc::socket(libc::AF_UNIX, kind | libc::SOCK_CLOEXEC, 0) } as i64)
}

/// The `sock_diag` answer for one unix socket: the message after the netlink header
/// (`struct unix_diag_msg` and its attributes), or `None` if no such unix socket exists.
pub fn unix_diag_raw(ino: u32) -> io::Result<Option<Vec<u8>>> {
    let sock = owned(
        // SAFETY: integers only.
        unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                NETLINK_SOCK_DIAG,
            )
        } as i64,
    )?;
    let mut req = Vec::with_capacity(40);
    req.extend(40u32.to_ne_bytes()); // nlmsg_len
    req.extend(SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    req.extend(NLM_F_REQUEST.to_ne_bytes());
    req.extend(1u32.to_ne_bytes()); // seq
    req.extend(0u32.to_ne_bytes()); // pid
    req.extend([libc::AF_UNIX as u8, 0, 0, 0]); // family, protocol, pad
    req.extend(u32::MAX.to_ne_bytes()); // every state
    req.extend(ino.to_ne_bytes());
    req.extend(UDIAG_SHOW.to_ne_bytes());
    req.extend([u32::MAX.to_ne_bytes(), u32::MAX.to_ne_bytes()].concat()); // no cookie
    send(&sock, &req, 0)?;
    let mut buf = vec![0u8; 16384];
    let n = recv(&sock, &mut buf, 0)?;
    buf.truncate(n);
    if n < 16 {
        return Err(io::Error::from_raw_os_error(libc::EPROTO));
    }
    let len = (u32::from_ne_bytes(buf[0..4].try_into().unwrap()) as usize).min(n);
    let kind = u16::from_ne_bytes(buf[4..6].try_into().unwrap());
    if kind == NLMSG_ERROR {
        let errno = if n >= 20 {
            -i32::from_ne_bytes(buf[16..20].try_into().unwrap())
        } else {
            libc::EPROTO
        };
        if errno == libc::ENOENT {
            return Ok(None);
        }
        return Err(io::Error::from_raw_os_error(errno));
    }
    Ok(Some(buf[16..len].to_vec()))
}
